"""The packaged evidence tables load completely and every number round-trips exactly."""

import csv
import hashlib
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from exopk.data import load
from exopk.data.schema import COLUMNS, NUMERIC_COLUMNS
from exopk.errors import DataFileError

REFERENCE = Path(__file__).parent / "data" / "evidence_reference"
FILES = {"ev": "ev.csv", "proxies": "proxies.csv"}


def reference_rows(name):
    with open(REFERENCE / FILES[name], newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def expected_number(text):
    if not text:
        return math.nan
    return float(text.lstrip("<>"))


@pytest.mark.parametrize("name", FILES)
def test_packaged_files_are_byte_copies_of_the_reference(name):
    packaged = resources.files("exopk.data").joinpath(FILES[name]).read_bytes()
    assert packaged == (REFERENCE / FILES[name]).read_bytes()


def test_sources_md_states_the_checksums():
    sources = resources.files("exopk.data").joinpath("SOURCES.md").read_text(encoding="utf-8")
    for file in FILES.values():
        digest = hashlib.sha256((REFERENCE / file).read_bytes()).hexdigest()
        assert digest in sources


@pytest.mark.parametrize("name", FILES)
def test_every_cell_round_trips(name):
    rows = reference_rows(name)
    ds = load(name)
    assert ds.sizes["record"] == len(rows)
    for column in COLUMNS:
        stored = ds[f"{column}_text" if column in NUMERIC_COLUMNS else column].values.tolist()
        assert stored == [row[column] for row in rows], column
    for column in NUMERIC_COLUMNS:
        expected = np.array([expected_number(row[column]) for row in rows])
        np.testing.assert_array_equal(ds[column].values, expected, err_msg=column)


@pytest.mark.parametrize("name", FILES)
def test_lines_point_back_into_the_file(name):
    ds = load(name)
    lines = (REFERENCE / FILES[name]).read_text(encoding="utf-8").splitlines()
    for line, key, value in zip(ds["line"].values, ds["study_key"].values,
                                ds["value_text"].values, strict=True):
        assert lines[line - 1].startswith(key + ",")
        assert f",{value}," in lines[line - 1]


def test_proxy_flag_and_caveat():
    ev, proxies, both = load("ev"), load("proxies"), load("all")
    assert not ev["is_proxy"].values.any()
    assert proxies["is_proxy"].values.all()
    assert "proxies are not evs" in proxies.attrs["caveat"].lower()
    assert "proxies are not evs" in both.attrs["caveat"].lower()
    assert "caveat" not in ev.attrs
    assert both.sizes["record"] == ev.sizes["record"] + proxies.sizes["record"]
    np.testing.assert_array_equal(both["is_proxy"].values,
                                  np.r_[ev["is_proxy"].values, proxies["is_proxy"].values])
    np.testing.assert_array_equal(both["value"].values,
                                  np.r_[ev["value"].values, proxies["value"].values])
    assert set(both["source_file"].values.tolist()) == {"ev.csv", "proxies.csv"}


def test_every_record_has_provenance():
    ds = load("all")
    for column in ("study_key", "citation", "url", "location"):
        assert (ds[column].values != "").all(), column
    assert "doi" in ds


def test_usable_flags_follow_usable_for_fit_and_missing_times():
    ds = load("all")
    judged_no = np.char.startswith(ds["usable_for_fit"].values.astype(str), "no:")
    assert not ds["usable"].values[judged_no].any()
    time_course = np.isin(ds["quantity"].values,
                          ["concentration", "percent_id_per_g", "percent_id_per_organ"])
    no_time = np.isnan(ds["time"].values)
    assert not ds["usable"].values[time_course & no_time].any()
    np.testing.assert_array_equal(ds["usable"].values, ds["unusable_reason"].values == "")
    assert ds.attrs["n_unusable"] == int((~ds["usable"].values).sum())
    assert str(ds.attrs["n_unusable"]) in ds.attrs["unusable_summary"]


def test_known_rows_of_each_table():
    ev = load("ev")
    jy = ev.isel(record=np.flatnonzero(ev["study_key"].values == "jy2018"))
    assert jy["value_text"].values[0].startswith("<")
    assert jy["value"].values[0] == float(jy["value_text"].values[0][1:])
    proxies = load("proxies")
    kumar_auc = proxies.isel(record=np.flatnonzero(
        (proxies["study_key"].values == "kumar2018") & (proxies["quantity"].values == "auc")))
    np.testing.assert_array_equal(kumar_auc["time_min"].values, 30.0)


def test_time_and_canonical_units_are_added():
    ds = load("all")
    hours = ds["time_unit"].values == "h"
    np.testing.assert_allclose(ds["time_min"].values[hours], ds["time"].values[hours] * 60)
    half_lives = ds["quantity"].values == "half_life"
    assert set(ds["unit_canonical"].values[half_lives].tolist()) == {"min"}
    assert ds["time_min"].attrs["units"] == "min"


def test_load_returns_independent_copies():
    first = load("ev")
    first["value"][:] = -1.0
    assert (load("ev")["value"].values != -1.0).any()


def test_unknown_table_name():
    with pytest.raises(DataFileError, match="unknown packaged table 'evs'"):
        load("evs")
