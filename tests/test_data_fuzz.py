"""Malformed input makes the readers fail only with exopk's own errors, never with a crash."""

import csv
import io
import warnings
from pathlib import Path

import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exopk.data import read_csv, read_events
from exopk.errors import ExopkError

VALID = (Path(__file__).parent / "data" / "user_valid.csv").read_text(encoding="utf-8")
EVENTS = ("ID,TIME,AMT,CMT,DV,EVID,MDV,RATE,II,ADDL,SS\n"
          "1,0,100,1,.,1,1,0,12,2,0\n"
          "1,1,.,2,5,0,0,.,.,.,.\n")
PIECES = [",", '"', "\n", "\r\n", "\r", " ", "-", "<", ">", ".", "e", "nan", "inf", "%ID/g",
          "h", "min", "mL/h", "no:", "yes", ":", "mouse", "liver", "\x00", "\ufeff", "é", "0",
          "1e999", "9^9^9", "(", "**", "other:", "\t"]
TEXT = st.text(st.characters(codec="utf-8"), max_size=3)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw, text):
    """``text`` with a few random deletions, insertions and replacements."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.sampled_from(PIECES) | TEXT)
        if action == "delete":
            del chars[position:position + draw(st.integers(1, 20))]
        elif action == "insert":
            chars[position:position] = piece
        else:
            chars[position:position + 1] = piece
    return "".join(chars)


@st.composite
def cells_replaced(draw):
    """The valid file, parsed, with a few cells replaced by random text, written back as CSV."""
    rows = list(csv.reader(io.StringIO(VALID, newline="")))
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.integers(0, len(rows) - 1))
        column = draw(st.integers(0, len(rows[0]) - 1))
        pieces = draw(st.lists(st.sampled_from(PIECES) | TEXT, min_size=0, max_size=4))
        rows[row][column] = "".join(pieces)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def check(reader, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = reader(path)
        except ExopkError:
            return
    assert isinstance(result, xr.Dataset)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "fuzz.csv"


@SETTINGS
@given(text=mutated(VALID))
def test_mutated_evidence_file(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    check(read_csv, path)


@SETTINGS
@given(text=cells_replaced())
def test_evidence_file_with_random_cells(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    check(read_csv, path)


@SETTINGS
@given(pieces=st.lists(st.sampled_from(PIECES) | st.characters(codec="utf-8"), max_size=120))
def test_random_text_as_evidence_file(path, pieces):
    path.write_text(VALID.splitlines()[0] + "\n" + "".join(pieces), encoding="utf-8",
                    newline="")
    check(read_csv, path)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_as_evidence_file(path, data):
    path.write_bytes(data)
    check(read_csv, path)


@SETTINGS
@given(text=mutated(EVENTS))
def test_mutated_event_table(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    check(read_events, path)
