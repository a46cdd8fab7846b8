"""NONMEM-style event tables: reading, located errors and dose expansion."""

import numpy as np
import pytest

from exopk.data import DataValidationError, DoseRecord, UnitError, expand_doses, read_events

TABLE = """\
ID,TIME,AMT,CMT,DV,EVID,MDV,RATE,II,ADDL,SS,WT
1,0,100,1,.,1,1,0,12,2,0,25
1,0.5,.,2,5.2,0,0,.,.,.,.,25
1,1,50,1,.,1,1,25,.,.,.,25
2,0,80,1,.,1,1,.,.,.,.,30
2,2,.,2,3.1,0,.,.,.,.,.,30
"""


def write(tmp_path, text, name="events.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def replace_cell(text, line, column, new):
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = new
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_reads_columns_defaults_and_extra_columns(tmp_path):
    ds = read_events(write(tmp_path, TABLE))
    assert ds.sizes["record"] == 5
    assert ds["evid"].values.tolist() == [1, 0, 1, 1, 0]
    assert ds["amt"].values.tolist() == [100, 0, 50, 80, 0]
    assert np.isnan(ds["dv"].values[0])
    assert ds["dv"].values[1] == 5.2
    assert ds["mdv"].values.tolist() == [1, 0, 1, 1, 0]
    assert ds["time_min"].values.tolist() == [0, 30, 60, 0, 120]
    assert ds["line"].values.tolist() == [2, 3, 4, 5, 6]
    assert ds["wt"].values.tolist() == ["25", "25", "25", "30", "30"]
    assert ds.attrs["time_unit"] == "h"


def test_negative_observations_are_allowed(tmp_path):
    ds = read_events(write(tmp_path, replace_cell(TABLE, 3, "DV", "-1.5")))
    assert ds["dv"].values[1] == -1.5


def test_column_names_are_case_insensitive_and_id_is_optional(tmp_path):
    ds = read_events(write(tmp_path, "time,Amt,cmt,dv,evid\n0,5,1,.,1\n10,.,1,2.0,0\n"),
                     time_unit="min")
    assert ds["id"].values.tolist() == [1, 1]
    assert ds["time_min"].values.tolist() == [0, 10]


def test_expand_doses_spells_out_addl_and_infusions(tmp_path):
    doses = expand_doses(read_events(write(tmp_path, TABLE)))
    assert doses == [
        DoseRecord(id=1, time_min=0, amount=100, compartment=1, rate=0, duration_min=0, line=2),
        DoseRecord(id=1, time_min=60, amount=50, compartment=1, rate=25 / 60,
                   duration_min=120, line=4),
        DoseRecord(id=1, time_min=720, amount=100, compartment=1, rate=0, duration_min=0,
                   line=2),
        DoseRecord(id=1, time_min=1440, amount=100, compartment=1, rate=0, duration_min=0,
                   line=2),
        DoseRecord(id=2, time_min=0, amount=80, compartment=1, rate=0, duration_min=0, line=5),
    ]


def test_steady_state_cannot_be_expanded(tmp_path):
    events = read_events(write(tmp_path, replace_cell(TABLE, 2, "SS", "1")))
    with pytest.raises(DataValidationError, match=r"line 2, column 'SS': steady-state"):
        expand_doses(events)


EVENT_CORRUPTIONS = [
    (3, "TIME", "-0.5", "negative TIME '-0.5'"),
    (2, "AMT", "-100", "negative AMT '-100'"),
    (2, "EVID", "5", "EVID '5' is not one of 0, 1, 2, 3, 4"),
    (2, "EVID", "1.5", "EVID '1.5' is not a whole number"),
    (2, "II", ".", "ADDL 2 additional doses need II > 0"),
    (3, "DV", "high", "non-numeric value 'high'"),
    (3, "DV", ".", "observation record (EVID 0, MDV 0) without DV"),
    (4, "AMT", ".", "dosing record (EVID 1) without a positive AMT"),
    (4, "CMT", "0", "CMT must be a compartment number from 1"),
    (2, "TIME", "nan", "'nan' is not allowed"),
    (3, "MDV", "2", "MDV '2' is not one of 0, 1"),
    (3, "TIME", ".", "missing value"),
    (2, "ADDL", "1000000000", "ADDL 1e+09 gives more than 10000 doses"),
]


@pytest.mark.parametrize("line, column, text, words", EVENT_CORRUPTIONS,
                         ids=[f"{c[1]}={c[2]!r}" for c in EVENT_CORRUPTIONS])
def test_corrupted_event_cell_is_located(tmp_path, line, column, text, words):
    path = write(tmp_path, replace_cell(TABLE, line, column, text))
    with pytest.raises(DataValidationError) as caught:
        read_events(path)
    first = str(caught.value).splitlines()[0]
    expected_column = "ADDL" if "ADDL" in words else column
    assert first.startswith(f"{path}, line {line}, column '{expected_column}': ")
    assert words in first


def test_time_going_backwards_within_a_subject(tmp_path):
    path = write(tmp_path, replace_cell(TABLE, 4, "TIME", "0.25"))
    with pytest.raises(DataValidationError, match=r"line 4, column 'TIME': TIME 0.25 is before"):
        read_events(path)


def test_missing_required_column(tmp_path):
    path = write(tmp_path, "ID,TIME,AMT,CMT,DV\n1,0,5,1,.\n")
    with pytest.raises(DataValidationError) as caught:
        read_events(path)
    assert str(caught.value).splitlines()[0] == (
        f"{path}, line 1, column 'EVID': missing required column")


def test_duplicate_header_and_bad_time_unit(tmp_path):
    path = write(tmp_path, "TIME,time,AMT,CMT,DV,EVID\n0,0,5,1,.,1\n")
    with pytest.raises(DataValidationError, match=r"line 1, column 'time': column 'time' appears"):
        read_events(path)
    with pytest.raises(UnitError):
        read_events(write(tmp_path, TABLE), time_unit="mL")
