"""The command line as people expect it: time units, presets, figures, warnings, unit labels."""

import warnings

import numpy as np
import pytest

import exopk
from exopk import cli
from exopk.cli import main
from exopk.errors import ExopkWarning
from exopk.physiology import available_presets


def _simulated(tmp_path, name, *options):
    path = tmp_path / f"{name}.csv"
    assert main(["simulate", "m0_one_compartment", "--csv", str(path), *options]) == 0
    return path.read_text().splitlines()[0], np.loadtxt(path, delimiter=",", skiprows=1)


@pytest.mark.parametrize("regimen_h,regimen_min", [
    (["--count", "2", "--interval", "1.5", "--duration", "0.25", "--start", "0.5"],
     ["--count", "2", "--interval", "90", "--duration", "15", "--start", "30"]),
    (["--steady-state-interval", "2"], ["--steady-state-interval", "120"]),
])
def test_time_unit_converts_every_time_option(tmp_path, capsys, regimen_h, regimen_min):
    header_h, hours = _simulated(tmp_path, "h", "--time-unit", "h", "--times", "0.5,1,2.25,4",
                                 *regimen_h)
    header_min, minutes = _simulated(tmp_path, "min", "--time-unit", "min", "--times",
                                     "30,60,135,240", *regimen_min)
    assert header_h.startswith("time [h],") and header_min.startswith("time [min],")
    np.testing.assert_allclose(hours[:, 0] * 60, minutes[:, 0], rtol=1e-15)
    np.testing.assert_allclose(hours[:, 1:], minutes[:, 1:], rtol=1e-12)
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    if "--count" in regimen_min:
        regimen = exopk.Regimen(tuple(exopk.Dose("iv", 100.0, t, 15.0) for t in (30.0, 120.0)))
    else:
        regimen = exopk.Regimen((exopk.Dose("iv", 100.0, 0.0, 0.0, 120.0),))
    expected = exopk.simulate(model, None, [30.0, 60.0, 135.0, 240.0], regimen)
    np.testing.assert_allclose(minutes[:, 1:], expected.value.values, rtol=1e-12)


def test_simulate_names_the_unit_of_every_column(capsys):
    assert main(["simulate", "m1_two_compartment", "--times", "1,2", "--time-unit", "h"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.split()[0] == "time")
    assert header.split()[:2] == ["time", "[h]"]
    assert lines[0] == "# m1_two_compartment: iv 100 dose units at 0 h"
    assert "plasma_percent_id [%ID]" in header
    amounts = next(line for line in lines if line.startswith("# amounts in"))
    assert "dose units" in amounts and "percent of the dose given by each time" in amounts
    assert not any(" dose/" in line or line.endswith(" dose") for line in lines)


@pytest.mark.parametrize("preset", sorted(available_presets()))
def test_every_preset_shows_without_a_body_weight(capsys, preset):
    assert main(["presets", preset]) == 0
    out = capsys.readouterr().out
    assert "Brown RP" in out or "White 1968" in out
    if "no body weight" in out.splitlines()[0]:
        marked = [line for line in out.splitlines() if line.startswith(" *")]
        assert marked and all("body_weight" in line or "/kg" in line for line in marked)
        assert f"exopk presets {preset} --body-weight-kg W" in out
    else:
        assert "body weight" in out.splitlines()[0]
    assert main(["presets", preset, "--body-weight-kg", "2"]) == 0
    assert "body weight 2 kg" in capsys.readouterr().out.splitlines()[0]


def test_presets_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["presets", "--help"])
    assert "body weight in kg" in capsys.readouterr().out


def test_figures_without_results_exits_with_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["figures"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "fits") in err and "--fits FOLDER" in err
    (tmp_path / "fits").mkdir()
    assert main(["figures"]) == 2
    err = capsys.readouterr().err
    assert "nothing to draw" in err and str(tmp_path / "fits") in err
    assert not (tmp_path / "docs").exists()


def test_warnings_show_the_message_only(monkeypatch, capsys):
    def warn(args):
        warnings.warn("the thing to know", ExopkWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_models", warn)
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["models"]) == 0
    assert capsys.readouterr().err == "exopk: warning: the thing to know\n"
    assert warnings.showwarning is before


def _row(text, first):
    return next(line for line in text.splitlines() if line.startswith(first + " "))


def test_fit_summary_prints_the_unit_of_every_parameter_and_observation():
    from exopk.inference.result import load_fit
    from exopk.inference.summary import format_summary
    tree = load_fit("fits/mouse_iv_mps.nc")
    text = format_summary(tree)
    model = exopk.load_model(exopk.model_path(tree.attrs["model"]))
    units = {p.name: p.unit for p in model.parameters}
    for name in tree["posterior"].data_vars:
        expected = units.get(name, "1 (sd of log)")
        assert _row(text, name).split()[1:1 + len(expected.split())] == expected.split(), name
    observed = tree["observed_data"]
    for i in range(observed.sizes["observation"]):
        label = f"{observed.study.values[i]}:{observed.line.values[i]}"
        assert _row(text, label).split()[3] == observed.unit_canonical.values[i], label


def test_a_time_course_fit_names_its_observations_and_error_units():
    from exopk.model.priors import Prior
    from exopk.observation import Observation, Request
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    times = [5.0, 15.0, 30.0, 60.0]
    regimen = exopk.Regimen.bolus("iv", 100.0)
    observations = [Observation("s", i, Request("value", "plasma_concentration", t), "iv", "",
                                value=100.0 * np.exp(-0.05 * t) * (1 + 0.05 * (-1) ** i),
                                upper=np.nan, censoring="none", sigma_log=0.0, regimen=regimen)
                    for i, t in enumerate(times)]
    result = exopk.fit_observations(
        model, observations, errors={"plasma_concentration": "additive"},
        error_priors={"a_plasma_concentration": Prior("halfnormal", {"scale": 5.0})},
        draws=200, seed=1)
    text = result.summary()
    unit = "dose units/mL"
    assert _row(text, "a_plasma_concentration").split()[1:3] == unit.split()
    assert _row(text, "CL").split()[1] == "mL/min"
    assert _row(text, "s:0").split()[3:5] == unit.split()


def test_repeated_fallback_notices_are_printed_once_and_counted(capsys):
    from exopk.cli import _WarningPrinter
    from exopk.errors import ExopkWarning, IllConditionedWarning

    printer = _WarningPrinter()
    for k in range(1, 4):
        printer.show(f"{k} of 8 parameter sets gave an ill-conditioned eigendecomposition; "
                     "solved with expm instead", IllConditionedWarning, "engine.py", 1)
    printer.show("the dispersion prior is wide", ExopkWarning, "fit.py", 2)
    printer.finish()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "exopk: warning: 1 of 8 parameter sets gave an ill-conditioned eigendecomposition; "
        "solved with expm instead",
        "exopk: warning: the dispersion prior is wide",
        "exopk: warning: 2 more evaluations solved ill-conditioned parameter sets with expm "
        "(exact, slower); not printed one by one"]
