"""%ID/g and %ID/organ converted into each other with species-preset organ masses."""

import csv
import io
import warnings

import numpy as np
import pytest

from exopk.data import (DataValidationError, UnusableRecordsWarning, load, read_csv,
                        to_percent_id_per_organ)
from exopk.errors import PhysiologyError
from exopk.physiology import load_species

HEADER = ["study_key", "species", "route", "time", "time_unit", "matrix", "quantity",
          "statistic", "value", "error", "error_type", "unit"]
# physiology.csv, mouse organ_volume_fraction: liver (brown1997), spleen (davies_morris1993)
MOUSE_LIVER_FRACTION = 0.055
MOUSE_SPLEEN_FRACTION = 0.005


def user_file(tmp_path, rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([HEADER, *rows])
    path = tmp_path / "organs.csv"
    path.write_text(buffer.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusableRecordsWarning)
        return read_csv(path)


def test_percent_id_per_g_to_per_organ_by_hand(tmp_path):
    ds = user_file(tmp_path, [
        ["synthetic_o", "mouse", "iv", "1", "h", "liver", "percent_id_per_g", "mean", "12", "2",
         "SD", "%ID/g"],
        ["synthetic_o", "mouse", "iv", "1", "h", "spleen", "percent_id_per_organ", "mean",
         "0.5", "0.1", "SD", "%ID/organ"],
        ["synthetic_o", "mouse", "iv", "", "", "circulation", "half_life", "point", "3", "",
         "none", "min"],
    ])
    out = to_percent_id_per_organ(ds, "mouse_brown1997", body_weight_kg=0.025)
    liver_g = MOUSE_LIVER_FRACTION * 25.0  # 1.375 g
    spleen_g = MOUSE_SPLEEN_FRACTION * 25.0  # 0.125 g
    np.testing.assert_allclose(out["organ_mass_g"].values[:2], [liver_g, spleen_g], rtol=1e-14)
    assert out["value_percent_id_per_organ"].values[0] == pytest.approx(12 * 1.375, rel=1e-14)
    assert out["error_percent_id_per_organ"].values[0] == pytest.approx(2 * 1.375, rel=1e-14)
    assert out["value_percent_id_per_g"].values[0] == 12.0
    assert out["value_percent_id_per_organ"].values[1] == 0.5
    assert out["value_percent_id_per_g"].values[1] == pytest.approx(0.5 / 0.125, rel=1e-14)
    assert np.isnan(out["value_percent_id_per_organ"].values[2])
    assert np.isnan(out["organ_mass_g"].values[2])
    assert out.attrs["species_preset"] == "mouse_brown1997"
    assert out["value_percent_id_per_organ"].attrs["units"] == "%ID/organ"
    assert "organ_mass_g" not in ds


def test_a_built_physiology_can_be_passed(tmp_path):
    ds = user_file(tmp_path, [["synthetic_o", "mouse", "iv", "1", "h", "liver",
                               "percent_id_per_g", "point", "10", "", "none", "%ID/g"]])
    mouse = load_species("mouse_brown1997", body_weight_kg=0.02)
    out = to_percent_id_per_organ(ds, mouse)
    assert out["value_percent_id_per_organ"].values[0] == pytest.approx(10 * 0.055 * 20.0)
    with pytest.raises(PhysiologyError, match="body_weight_kg"):
        to_percent_id_per_organ(ds, mouse, body_weight_kg=0.02)


def test_organ_without_mass_and_wrong_species_are_located(tmp_path):
    ds = user_file(tmp_path, [
        ["synthetic_o", "mouse", "iv", "1", "h", "tumour", "percent_id_per_g", "point", "4", "",
         "none", "%ID/g"],
        ["synthetic_o", "rat", "iv", "1", "h", "liver", "percent_id_per_g", "point", "4", "",
         "none", "%ID/g"],
    ])
    with pytest.raises(DataValidationError) as caught:
        to_percent_id_per_organ(ds, "mouse_brown1997", body_weight_kg=0.025)
    error = caught.value
    first = str(error).splitlines()[0]
    assert first.startswith(f"{tmp_path / 'organs.csv'}, line 2, column 'matrix': "
                            "no organ mass for 'tumour' in preset 'mouse_brown1997'")
    assert "liver" in first
    assert [(p.row, p.column) for p in error.problems] == [(2, "matrix"), (3, "species")]


def test_packaged_records_convert_with_their_own_file_and_line():
    ev = load("ev")
    morishita = ev.isel(record=np.flatnonzero(ev["study_key"].values == "morishita2015"))
    out = to_percent_id_per_organ(morishita, "mouse_brown1997", body_weight_kg=0.025)
    liver = out["matrix"].values == "liver"
    assert out["value_percent_id_per_g"].values[liver][0] == pytest.approx(28 / 1.375)
    with pytest.raises(DataValidationError, match=r"^ev\.csv, line \d+, column 'species'"):
        to_percent_id_per_organ(ev, "mouse_brown1997", body_weight_kg=0.025)
