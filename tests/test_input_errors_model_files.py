"""Malformed model files: an error naming the file and the key (or line), never a traceback."""

from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.cli import main
from exopk.errors import ModelFileError

M0 = Path(exopk.model_path("m0_one_compartment")).read_text()
CONCENTRATION = 'compartments = ["plasma"]\ndescription = "Plasma concentration'


def _write(tmp_path, text, name="model.toml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _load_error(tmp_path, text) -> ModelFileError:
    path = _write(tmp_path, text)
    with pytest.raises(ModelFileError) as info:
        exopk.load_model(path)
    assert info.value.file == str(path)
    return info.value


@pytest.mark.parametrize("old, new, key, reason", [
    ('volume = "V_plasma"', 'volume = "0"', "compartments.plasma.volume", "'0' is 0"),
    ('volume = "V_plasma"', 'volume = "-1.5"', "compartments.plasma.volume", "is -1.5"),
    ('volume = "V_plasma"', 'volume = "V_plasma - 2"', "compartments.plasma.volume",
     "nominal parameter values"),
    (CONCENTRATION, CONCENTRATION.replace("description", 'volume = "0"\ndescription'),
     "outputs.plasma_concentration.volume", "must be positive"),
    (CONCENTRATION, CONCENTRATION.replace("description", 'volume = "-2"\ndescription'),
     "outputs.plasma_concentration.volume", "is -2"),
    ('time_unit = "min"', 'time_unit = "banana"', "model.time_unit", "not a unit of time"),
    ('time_unit = "min"', 'time_unit = "mL"', "model.time_unit", "not a unit of time"),
    ('clearance = "CL"', 'clearance = "CL / 0"', "transfers[0].clearance", "division by zero"),
])
def test_model_file_errors_name_the_key(tmp_path, old, new, key, reason):
    assert old in M0
    error = _load_error(tmp_path, M0.replace(old, new, 1))
    assert error.key == key
    assert reason in error.reason


def test_hour_time_unit_is_accepted(tmp_path):
    model = exopk.load_model(_write(tmp_path, M0.replace('time_unit = "min"', 'time_unit = "h"')))
    assert model.time_unit == "h"


@pytest.mark.parametrize("encoded, line, column", [
    (M0.replace("One plasma", "Un plasma \u00e9").encode("latin-1"), 17, 26),
    (b"[model]\nname = \"x\"\n\xff\xfe\x00binary", 3, 1),
    (bytes(range(256)), 2, 118),   # byte 10 is a newline
])
def test_non_utf8_model_file_reports_line_and_byte(tmp_path, encoded, line, column):
    error = _load_error(tmp_path, encoded)
    assert f"line {line}, column {column}" in error.reason
    assert "UTF-8" in error.reason


def test_model_file_time_unit_is_blamed_on_the_file_not_the_cli_option(tmp_path, capsys):
    path = _write(tmp_path, M0.replace('time_unit = "min"', 'time_unit = "banana"'))
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.time_unit" in err and str(path) in err and "--time-unit" not in err


def test_zero_volume_is_named_as_the_volume_key_from_the_cli(tmp_path, capsys):
    path = _write(tmp_path, M0.replace('volume = "V_plasma"', 'volume = "0"'))
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "compartments.plasma.volume" in err and "evaluates to inf" not in err


def test_extends_with_transfers_not_an_array(tmp_path):
    _write(tmp_path, M0, "base.toml")
    child = 'transfers = 3\n[model]\nname = "child"\nextends = "base.toml"\n'
    error = _load_error(tmp_path, child)
    assert error.key == "transfers"


def test_positive_volumes_still_simulate(tmp_path):
    doubled = CONCENTRATION.replace("description", 'volume = "2 * V_plasma"\ndescription')
    model = exopk.load_model(_write(tmp_path, M0.replace(CONCENTRATION, doubled)))
    result = exopk.simulate(model, None, np.array([0.0]), exopk.Regimen.bolus("iv", 100.0))
    assert float(result.value.sel(output="plasma_concentration")[0]) == pytest.approx(50.0)
