"""Reading user files in the evidence schema: normalisation, flags, and located errors."""

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

from exopk.data import DataValidationError, UnusableRecordsWarning, read_csv
from exopk.data.schema import COLUMNS
from exopk.errors import DataFileError, PhysiologyError

VALID = Path(__file__).parent / "data" / "user_valid.csv"


def rows_of(path=VALID):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write(tmp_path, rows, name="user.csv"):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def with_cell(tmp_path, line, column, text):
    """The valid fixture with one cell replaced (line as an editor counts, header = 1)."""
    rows = rows_of()
    rows[line - 1][rows[0].index(column)] = text
    return write(tmp_path, rows)


def read_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusableRecordsWarning)
        return read_csv(path, **kwargs)


def first_line(error):
    return str(error).splitlines()[0]


# -- a clean file ---------------------------------------------------------------------------

def test_valid_file_reads_with_every_schema_column():
    ds = read_quietly(VALID)
    assert ds.sizes["record"] == 7
    for column in COLUMNS:
        assert column in ds
    assert (ds["vesicle_class"].values == "").all()
    assert ds["line"].values.tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert ds["value_text"].values[5] == "<20"
    assert ds["value"].values[5] == 20.0
    assert ds["dose"].values[6] == "18-37"
    assert np.isnan(ds["error"].values[2])
    assert ds["n"].values[0] == 4.0


def test_normalised_columns():
    ds = read_quietly(VALID)
    assert ds["time_min"].values[0] == 120.0
    assert ds["time_min"].values[1] == 30.0
    assert np.isnan(ds["time_min"].values[2])
    assert ds["unit_canonical"].values.tolist()[:5] == [
        "%ID/g", "%ID/mL", "min", "mL/min", "%ID*min/mL"]
    assert ds["value_canonical"].values[2] == 120.0
    assert ds["value_canonical"].values[3] == pytest.approx(0.5 / 60, rel=1e-14)
    assert ds["value_canonical"].values[4] == pytest.approx(180.0, rel=1e-14)
    assert ds["error_canonical"].values[0] == 1.5
    assert ds["unit"].values[3] == "mL/h"
    assert ds["value"].values[3] == 0.5


def test_unusable_records_are_kept_flagged_and_reported():
    with pytest.warns(UnusableRecordsWarning, match="2 of 7 records not usable"):
        ds = read_csv(VALID)
    assert ds.sizes["record"] == 7
    assert ds["usable"].values.tolist() == [True] * 5 + [False, False]
    assert ds["unusable_reason"].values.tolist()[5:] == ["time_not_stated", "qualitative"]
    assert ds.attrs["n_unusable"] == 2
    assert "time_not_stated 1" in ds.attrs["unusable_summary"]
    assert "qualitative 1" in ds.attrs["unusable_summary"]


def test_no_warning_when_every_record_is_usable(tmp_path):
    path = write(tmp_path, rows_of()[:6])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_csv(path)
    assert ds.attrs["unusable_summary"] == "all 5 records usable for fitting"


def test_required_columns_alone_are_enough(tmp_path):
    path = write(tmp_path, [
        ["study_key", "species", "route", "matrix", "quantity", "statistic", "value", "unit"],
        ["synthetic_c", "rat", "iv", "plasma", "half_life", "point", "90", "s"],
    ])
    ds = read_quietly(path)
    assert ds["citation"].values.tolist() == [""]
    assert ds["value_canonical"].values[0] == 1.5
    assert bool(ds["usable"].values[0])
    assert not bool(ds["is_proxy"].values[0])


def test_proxy_type_marks_proxies(tmp_path):
    rows = rows_of()
    rows[0].append("proxy_type")
    for row in rows[1:]:
        row.append("liposome")
    ds = read_quietly(write(tmp_path, rows))
    assert ds["is_proxy"].values.all()


def test_multiline_quoted_field_keeps_line_numbers(tmp_path):
    rows = rows_of()
    rows[1][rows[0].index("note")] = "first line\nsecond line"
    rows[3][rows[0].index("value")] = "oops"
    with pytest.raises(DataFileError) as caught:
        read_quietly(write(tmp_path, rows))
    assert first_line(caught.value).startswith(f"{tmp_path / 'user.csv'}, line 5, column 'value'")


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.read_bytes().replace(b"\n", b"\r\n"))
    ds = read_quietly(path)
    assert ds["line"].values.tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert ds["study_key"].values[0] == "synthetic_a"


def test_matrix_sub_sites_of_known_organs(tmp_path):
    ds = read_quietly(with_cell(tmp_path, 8, "matrix", "kidney:cortex"))
    assert ds["matrix"].values[6] == "kidney:cortex"


# -- one corrupted file per kind of problem ----------------------------------------------------

CORRUPTIONS = [
    # (line, column, new text, expected words in the message)
    (3, "unit", "%ID/mll", "unknown unit '%ID/mll'"),
    (4, "unit", "mL", "does not fit quantity 'half_life'"),
    (4, "matrix", "livr", "unknown matrix 'livr'"),
    (4, "matrix", "gizzard:lining", "unknown matrix 'gizzard:lining'"),
    (4, "matrix", "Liver", "unknown matrix 'Liver'"),
    (5, "quantity", "halflife", "unknown quantity 'halflife'"),
    (5, "quantity", "other:Bad Name", "unknown quantity 'other:Bad Name'"),
    (2, "statistic", "average", "unknown statistic 'average'"),
    (6, "route", "oral", "unknown route 'oral'"),
    (7, "species", "Mouse", "unknown species 'Mouse'"),
    (2, "error_type", "SE", "unknown error_type 'SE'"),
    (2, "time", "-1", "negative time '-1'"),
    (3, "dose", "-5", "negative dose '-5'"),
    (3, "dose", "ten", "neither a number nor a range"),
    (5, "value", "abc", "non-numeric value 'abc'"),
    (5, "value", "1,5", "non-numeric value '1,5'"),
    (5, "value", "nan", "'nan' is not allowed"),
    (5, "value", "-inf", "'-inf' is not allowed"),
    (5, "value", "1e999", "too large"),
    (2, "error", "-0.3", "negative error"),
    (2, "error_type", "", "given without its error_type"),
    (2, "error_type", "none", "given without its error_type"),
    (2, "n", "2.5", "not a positive whole number"),
    (2, "time_unit", "", "time given without its time_unit"),
    (2, "time_unit", "hx", "unknown unit 'hx'"),
    (2, "time_unit", "mL", "'mL' is not a unit of time"),
    (4, "time_unit", "h", "time_unit given without a time"),
    (2, "species", "", "missing value in a required column"),
    (2, "usable_for_fit", "maybe", "must be 'yes' or 'no:<reason>'"),
    (2, "study_key", "Synthetic A", "study key 'Synthetic A'"),
]


@pytest.mark.parametrize("line, column, text, words", CORRUPTIONS,
                         ids=[f"{c[1]}={c[2]!r}" for c in CORRUPTIONS])
def test_corrupted_cell_is_located(tmp_path, line, column, text, words):
    path = with_cell(tmp_path, line, column, text)
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    error = caught.value
    assert first_line(error).startswith(f"{path}, line {line}, column '{column}': ")
    assert words in first_line(error)
    assert (error.file, error.row, error.column) == (str(path), line, column)
    assert len(error.problems) == 1


def test_missing_required_column(tmp_path):
    rows = [row[:-3] + row[-2:] for row in rows_of()]  # drop 'unit'
    path = write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value) == f"{path}, line 1, column 'unit': missing required column"


def test_unknown_column_is_not_silently_ignored(tmp_path):
    rows = rows_of()
    rows[0][rows[0].index("error")] = "eror"
    path = write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value).startswith(
        f"{path}, line 1, column 'eror': unknown column 'eror' (did you mean 'error'")


def test_duplicated_record(tmp_path):
    rows = rows_of()
    rows.append(list(rows[2]))
    path = write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value) == (
        f"{path}, line 9: duplicate record: same text in every column as line 3")


def test_records_differing_in_one_column_are_not_duplicates(tmp_path):
    rows = rows_of()
    rows.append(list(rows[2]))
    rows[-1][rows[0].index("note")] = "second measurement"
    assert read_quietly(write(tmp_path, rows)).sizes["record"] == 8


def test_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, rows_of())
    text = path.read_text().splitlines()
    text[3] += ",extra"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value) == f"{path}, line 4: 19 fields, but the header has 18"


def test_unclosed_quote(tmp_path):
    path = write(tmp_path, rows_of())
    text = path.read_text().splitlines()
    text[5] = text[5].replace('"Synthetic', '"Synthetic"x', 1)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value).startswith(f"{path}, line 6: malformed CSV")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(VALID.read_bytes().replace(b"not a measurement", b"pas mesur\xe9", 3))
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    assert first_line(caught.value).startswith(f"{path}, line 2: not UTF-8 text")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataValidationError, match="cannot read the file"):
        read_csv(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError) as caught:
        read_csv(empty)
    assert first_line(caught.value).startswith(f"{empty}, line 1: empty file")


def test_every_problem_is_listed_and_the_first_comes_first(tmp_path):
    rows = rows_of()
    rows[2][rows[0].index("value")] = "abc"
    rows[5][rows[0].index("species")] = "dog"
    rows[6][rows[0].index("unit")] = "parsec"
    path = write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        read_quietly(path)
    error = caught.value
    lines = str(error).splitlines()
    assert lines[0] == f"{path}, line 3, column 'value': non-numeric value 'abc'"
    assert lines[1] == "3 problems in total:"
    assert [(p.row, p.column) for p in error.problems] == [
        (3, "value"), (6, "species"), (7, "unit")]
    assert all(str(p) in str(error) for p in error.problems)


# -- species presets --------------------------------------------------------------------------

def test_species_preset_adds_organ_conversions(tmp_path):
    path = write(tmp_path, rows_of()[:3])
    ds = read_csv(path, species_preset="mouse_brown1997", body_weight_kg=0.025)
    liver_g = 0.055 * 25.0  # organ_volume_fraction:liver (brown1997) x body weight in g
    assert ds["organ_mass_g"].values[0] == pytest.approx(liver_g, rel=1e-14)
    assert ds["value_percent_id_per_organ"].values[0] == pytest.approx(10 * liver_g, rel=1e-14)
    assert np.isnan(ds["value_percent_id_per_organ"].values[1])


def test_body_weight_without_preset():
    with pytest.raises(PhysiologyError, match="without species_preset"):
        read_csv(VALID, body_weight_kg=0.025)


def test_species_preset_rejects_sub_sites_without_mass():
    with pytest.raises(DataValidationError) as caught:
        read_quietly(VALID, species_preset="mouse_brown1997", body_weight_kg=0.025)
    assert first_line(caught.value).startswith(
        f"{VALID}, line 8, column 'matrix': no organ mass for 'brain:striatum'")
