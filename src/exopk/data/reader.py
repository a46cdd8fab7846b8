"""Read and check data files in the evidence schema, and build their :class:`xarray.Dataset`."""

from __future__ import annotations

import difflib
import os
import warnings
from collections import Counter
from collections.abc import Iterable

import numpy as np
import xarray as xr

from exopk.data import schema
from exopk.data.fields import parse_count, parse_dose, parse_nonnegative, parse_value
from exopk.data.organs import to_percent_id_per_organ
from exopk.data.problems import ProblemCollector
from exopk.data.table import Table, parse_table, read_text
from exopk.units import UnitError, canonical_unit, convert, to_minutes
from exopk.errors import ExopkWarning, PhysiologyError

__all__ = ["read_csv", "evidence_dataset", "unusable_summary", "UnusableRecordsWarning"]

_DERIVED = ("time_min", "value_canonical", "error_canonical", "unit_canonical", "usable",
            "unusable_reason", "is_proxy", "line", "source_file")
_VOCABULARIES = {
    "vesicle_class": schema.VESICLE_CLASSES,
    "proxy_type": schema.PROXY_TYPES,
    "species": schema.SPECIES,
    "route": schema.ROUTES,
    "statistic": schema.STATISTICS,
    "error_type": schema.ERROR_TYPES,
}


class UnusableRecordsWarning(ExopkWarning):
    """Some records of a user data file cannot enter a fit; they are kept and flagged.

    Examples
    --------
    A %ID/g value without its time cannot be fitted:

    >>> import pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "mine.csv"
    >>> _ = path.write_text(
    ...     "study_key,species,route,matrix,quantity,statistic,value,unit,time,time_unit\\n"
    ...     "mine,mouse,iv,liver,percent_id_per_g,mean,10,%ID/g,2,h\\n"
    ...     "mine,mouse,iv,plasma,half_life,point,1.5,h,,\\n"
    ...     "mine,mouse,iv,spleen,percent_id_per_g,mean,8,%ID/g,,\\n")
    >>> import warnings
    >>> from exopk.data import read_csv, UnusableRecordsWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     records = read_csv(path)
    >>> caught[0].category is UnusableRecordsWarning
    True
    >>> records.attrs["unusable_summary"]
    '1 of 3 records not usable for fitting: time_not_stated 1'
    >>> folder.cleanup()
    """


def _closest(text: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, sorted(choices), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _check_header(table: Table, problems: ProblemCollector) -> dict[str, int]:
    columns: dict[str, int] = {}
    line = table.header_line
    for index, name in enumerate(table.header):
        if name in columns:
            problems.add(f"column {name!r} appears twice in the header", row=line,
                         column=name)
        elif name not in schema.COLUMNS:
            problems.add(f"unknown column {name!r}{_closest(name, schema.COLUMNS)}",
                         row=line, column=name)
        else:
            columns[name] = index
    for name in schema.REQUIRED_COLUMNS:
        if name not in columns:
            problems.add("missing required column", row=line, column=name)
    return columns


class _Row:
    """One record under check: its cells by column, and where to report problems."""

    def __init__(self, cells: dict[str, str], line: int, problems: ProblemCollector):
        self.cells = cells
        self.line = line
        self.problems = problems

    def __getitem__(self, column: str) -> str:
        return self.cells[column]

    def problem(self, column: str, message: str) -> None:
        self.problems.add(message, row=self.line, column=column)

    def number(self, column: str, parse, *args) -> float:
        """Parse a cell, or report it and return NaN; an empty cell is NaN."""
        if not self[column]:
            return float("nan")
        try:
            return float(parse(self[column], *args))
        except ValueError as exc:
            self.problem(column, str(exc))
            return float("nan")


def _check_text(row: _Row, present: dict[str, int]) -> None:
    for column in schema.REQUIRED_COLUMNS:
        if column in present and not row[column]:
            row.problem(column, "missing value in a required column")
    if row["study_key"] and not schema.IDENTIFIER.fullmatch(row["study_key"]):
        row.problem("study_key", f"study key {row['study_key']!r} must use only lowercase "
                                 "letters, digits and '_'")
    for column, allowed in _VOCABULARIES.items():
        text = row[column]
        if text and text not in allowed:
            row.problem(column, f"unknown {column} {text!r}{_closest(text, allowed)}; "
                                f"allowed: {', '.join(sorted(allowed))}")
    if row["vesicle_class"] and row["proxy_type"]:
        row.problem("proxy_type", "a record has a vesicle_class (an EV) or a proxy_type "
                                  "(a comparator), not both")
    if row["condition"] and not schema.IDENTIFIER.fullmatch(row["condition"]):
        row.problem("condition", f"condition {row['condition']!r} must use only lowercase "
                                 "letters, digits and '_'")
    if row["matrix"] and not schema.is_known_matrix(row["matrix"]):
        row.problem("matrix", f"unknown matrix {row['matrix']!r}"
                              f"{_closest(row['matrix'], schema.known_matrices())}; use a "
                              "known matrix or organ:part of a known organ (e.g. brain:striatum)")
    if row["quantity"] and not schema.is_known_quantity(row["quantity"]):
        row.problem("quantity", f"unknown quantity {row['quantity']!r}"
                                f"{_closest(row['quantity'], schema.QUANTITIES)}; allowed: "
                                f"{', '.join(sorted(schema.QUANTITIES))}, or other:<name>")
    usable = row["usable_for_fit"]
    if usable and usable != "yes" and not (
            usable.startswith("no:") and schema.IDENTIFIER.fullmatch(usable[3:])):
        row.problem("usable_for_fit", f"usable_for_fit {usable!r} must be 'yes' or "
                                      "'no:<reason>' (lowercase letters, digits, '_')")


def _time_minutes(row: _Row, time: float) -> float:
    unit = row["time_unit"]
    if not row["time"]:
        if unit:
            row.problem("time_unit", "time_unit given without a time")
        return float("nan")
    if not unit:
        row.problem("time_unit", "time given without its time_unit")
        return float("nan")
    try:
        return to_minutes(time, unit)
    except UnitError as exc:
        row.problem("time_unit", str(exc))
        return float("nan")


def _canonical(row: _Row, value: float, error: float) -> tuple[float, float, str]:
    if not row["unit"]:
        return float("nan"), float("nan"), ""
    try:
        unit = canonical_unit(row["quantity"], row["unit"])
        return convert(value, row["unit"], unit), convert(error, row["unit"], unit), unit
    except UnitError as exc:
        row.problem("unit", str(exc))
        return float("nan"), float("nan"), ""


def _unusable_reasons(row: _Row) -> str:
    reasons = []
    if row["usable_for_fit"].startswith("no:"):
        reasons.append(row["usable_for_fit"][3:])
    if row["quantity"] in schema.TIME_COURSE_QUANTITIES and not row["time"]:
        reasons.append("time_not_stated")
    return "; ".join(dict.fromkeys(reasons))


def _parse_row(row: _Row, present: dict[str, int]) -> dict[str, object]:
    _check_text(row, present)
    if row["dose"]:
        try:
            parse_dose(row["dose"])
        except ValueError as exc:
            row.problem("dose", str(exc))
    time = row.number("time", parse_nonnegative, "time")
    value = row.number("value", parse_value)
    error = row.number("error", parse_nonnegative, "error")
    n = row.number("n", parse_count)
    if row["error"] and row["error_type"] in ("", "none"):
        row.problem("error_type", f"error {row['error']!r} given without its error_type "
                                  "(SD, SEM or unstated)")
    time_min = _time_minutes(row, time)
    value_canonical, error_canonical, unit_canonical = _canonical(row, value, error)
    reason = _unusable_reasons(row)
    return {
        **row.cells,
        "time": time, "value": value, "error": error, "n": n,
        **{f"{column}_text": row[column] for column in schema.NUMERIC_COLUMNS},
        "time_min": time_min, "value_canonical": value_canonical,
        "error_canonical": error_canonical, "unit_canonical": unit_canonical,
        "usable": not reason, "unusable_reason": reason, "is_proxy": bool(row["proxy_type"]),
        "line": row.line,
    }


def unusable_summary(reasons: Iterable[str]) -> str:
    """One line saying how many records cannot enter a fit, and why.

    Parameters
    ----------
    reasons : iterable of str
        ``unusable_reason`` of every record (empty for usable records; several reasons of one
        record are joined by ``"; "``).
    """
    reasons = list(reasons)
    unusable = [r for r in reasons if r]
    if not unusable:
        return f"all {len(reasons)} records usable for fitting"
    counts = Counter(part for r in unusable for part in r.split("; "))
    listed = ", ".join(f"{reason} {count}" for reason, count in counts.most_common())
    return f"{len(unusable)} of {len(reasons)} records not usable for fitting: {listed}"


def _variable_order() -> list[str]:
    order = []
    for column in schema.COLUMNS:
        order.append(column)
        if column in schema.NUMERIC_COLUMNS:
            order.append(f"{column}_text")
    return order + list(_DERIVED)


def _dataset(records: list[dict[str, object]], file: str) -> xr.Dataset:
    numeric = {*schema.NUMERIC_COLUMNS, "time_min", "value_canonical", "error_canonical"}
    data_vars = {}
    for name in _variable_order():
        column = [record[name] for record in records]
        if name in numeric:
            array = np.array(column, dtype=float)
        elif name in ("usable", "is_proxy"):
            array = np.array(column, dtype=bool)
        elif name == "line":
            array = np.array(column, dtype=np.int64)
        else:
            array = np.array(column, dtype=str)
        data_vars[name] = ("record", array)
    ds = xr.Dataset(data_vars)
    ds["time_min"].attrs["units"] = "min"
    ds["value"].attrs["description"] = "number after any '<' or '>' sign, in 'unit'"
    ds["value_canonical"].attrs["description"] = "value in 'unit_canonical'"
    ds["line"].attrs["description"] = "line of the record in 'source_file' (header = 1)"
    reasons = ds["unusable_reason"].values.tolist()
    ds.attrs.update({
        "source_file": file,
        "schema": "exopk evidence schema (exopk/data/SOURCES.md)",
        "n_unusable": int(sum(1 for r in reasons if r)),
        "unusable_summary": unusable_summary(reasons),
    })
    return ds


def evidence_dataset(text: str, file: str, problems: ProblemCollector) -> xr.Dataset:
    """Check CSV text in the evidence schema and build its dataset.

    Parameters
    ----------
    text : str
        The file's content.
    file : str
        Name used in messages and in ``source_file``.
    problems : ProblemCollector
        Receives every problem; raised here when any was found.

    Returns
    -------
    xarray.Dataset
        See :func:`read_csv`.

    Raises
    ------
    exopk.data.DataValidationError
        Any problem in the text, listing all of them.
    """
    table = parse_table(text, problems)
    present = _check_header(table, problems)
    seen: dict[tuple[str, ...], int] = {}
    records = []
    for line, cells in table.rows:
        by_column = {column: cells[present[column]] if column in present else ""
                     for column in schema.COLUMNS}
        key = tuple(by_column.values())
        if key in seen:
            problems.add(f"duplicate record: same text in every column as line {seen[key]}",
                         row=line)
        seen.setdefault(key, line)
        records.append({**_parse_row(_Row(by_column, line, problems), present),
                        "source_file": file})
    problems.raise_if_any()
    return _dataset(records, file)


def read_csv(path: str | os.PathLike, *, species_preset: str | None = None,
             body_weight_kg: float | None = None) -> xr.Dataset:
    """Read and check a data file in the evidence schema.

    The file is UTF-8 CSV with a header line. Required columns, each with a value in every
    row: ``study_key``, ``species``, ``route``, ``matrix``, ``quantity``, ``statistic``,
    ``value``, ``unit``. Every other column of the schema (``citation``, ``doi``, ``url``,
    ``location``, ``vesicle_class``, ``proxy_type``, ``strain``, ``ev_source``, ``label``,
    ``dose``, ``dose_unit``, ``condition``, ``time``, ``time_unit``, ``error``,
    ``error_type``, ``n``, ``usable_for_fit``, ``note``) is optional; a missing one is filled
    with empty text. Columns outside the schema are an error (a misspelt optional column
    would otherwise be lost). The schema is described in ``exopk/data/SOURCES.md``.

    Checked, each reported with file, line and column: missing required columns or values;
    unknown or repeated columns; values outside the controlled vocabularies (``species``,
    ``route``, ``quantity``, ``statistic``, ``error_type``, ``vesicle_class``,
    ``proxy_type``); both ``vesicle_class`` and ``proxy_type`` in one record; ``matrix``
    neither a known matrix nor ``organ:part`` of a known organ
    (:func:`exopk.data.schema.is_known_matrix`); ``study_key`` and ``condition`` not made of
    lowercase letters, digits and ``_``; ``usable_for_fit`` neither ``yes`` nor
    ``no:<reason>``; unknown units, or units that do not fit the quantity
    (:mod:`exopk.units`); non-numeric, NaN or infinite numbers (``time``, ``value``,
    ``error``, ``n``, ``dose``); negative ``time``, ``error`` or ``dose``; ``n`` not a
    positive whole number; a ``time`` without its ``time_unit`` or the reverse; an ``error``
    without its ``error_type`` (empty or ``none``); duplicated records (same text in every
    column, reported without a column); a line with the wrong number of fields; malformed CSV;
    text that is not UTF-8. All problems are collected and raised together.

    No record is dropped. A record is flagged ``usable = False`` when ``usable_for_fit`` is
    ``no:<reason>`` (``unusable_reason`` is that reason) or when a time-course quantity
    (``concentration``, ``percent_id_per_g``, ``percent_id_per_organ``) has no ``time``
    (reason ``time_not_stated``); an empty ``usable_for_fit`` counts as ``yes``. When any
    record is flagged, an :class:`UnusableRecordsWarning` is issued with the summary that is
    also stored in ``attrs["unusable_summary"]`` (and the count in ``attrs["n_unusable"]``).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    species_preset : str, optional
        A preset of :func:`exopk.physiology.available_presets`. When given, %ID/g and
        %ID/organ records are converted into each other with the preset's organ masses (see
        :func:`exopk.data.to_percent_id_per_organ`).
    body_weight_kg : float, optional
        Body weight (kg) for ``species_preset``.

    Returns
    -------
    xarray.Dataset
        One dimension ``record``. Every schema column as a variable (text as strings);
        ``time``, ``value``, ``error`` and ``n`` as floats (NaN when empty; ``value`` is the
        number after any ``<``/``>`` sign) with the printed text in ``time_text``,
        ``value_text``, ``error_text``, ``n_text``. Added: ``time_min`` (time in min),
        ``value_canonical`` and ``error_canonical`` in ``unit_canonical`` (see
        :mod:`exopk.units`), ``usable``, ``unusable_reason``, ``is_proxy`` (the record
        has a ``proxy_type``), ``line`` (line in the file) and ``source_file``.

    Raises
    ------
    exopk.data.DataValidationError
        Any problem in the file (a :class:`~exopk.errors.DataFileError` whose message starts
        with the first problem's file, line and column and lists all of them).
    exopk.errors.PhysiologyError
        Unknown ``species_preset``, or ``body_weight_kg`` without a preset.

    Examples
    --------
    Three records of one study (the spleen value has no time, so it is kept but flagged):

    >>> import pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "mine.csv"
    >>> _ = path.write_text(
    ...     "study_key,species,route,matrix,quantity,statistic,value,unit,time,time_unit\\n"
    ...     "mine,mouse,iv,liver,percent_id_per_g,mean,10,%ID/g,2,h\\n"
    ...     "mine,mouse,iv,plasma,half_life,point,1.5,h,,\\n"
    ...     "mine,mouse,iv,spleen,percent_id_per_g,mean,8,%ID/g,,\\n")
    >>> import warnings
    >>> from exopk.data import read_csv
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     records = read_csv(path)
    >>> records["value_canonical"].values, records["unit_canonical"].values
    (array([10., 90.,  8.]), array(['%ID/g', 'min', '%ID/g'], dtype='<U5'))
    >>> records["time_min"].values, records["usable"].values
    (array([120.,  nan,  nan]), array([ True,  True, False]))

    Problems are collected and raised together, each with its line and column:

    >>> _ = path.write_text(
    ...     "study_key,species,route,matrix,quantity,statistic,value,unit\\n"
    ...     "mine,mouse,iv,livr,percent_id_per_g,mean,10,%ID/g\\n"
    ...     "mine,mouse,iv,liver,percent_id_per_g,mean,ten,%ID/g\\n")
    >>> try:
    ...     read_csv(path)
    ... except Exception as error:
    ...     for problem in error.problems:
    ...         print(problem.row, problem.column, problem.message)
    2 matrix unknown matrix 'livr' (did you mean 'liver'?); use a known matrix or organ:part of a known organ (e.g. brain:striatum)
    3 value non-numeric value 'ten'
    >>> folder.cleanup()
    """
    file = str(path)
    if body_weight_kg is not None and species_preset is None:
        raise PhysiologyError("body_weight_kg was given without species_preset")
    problems = ProblemCollector(file)
    text = read_text(path, problems)
    problems.raise_if_any()
    ds = evidence_dataset(text, file, problems)
    if species_preset is not None:
        ds = to_percent_id_per_organ(ds, species_preset, body_weight_kg=body_weight_kg)
    if ds.attrs["n_unusable"]:
        warnings.warn(f"{file}: {ds.attrs['unusable_summary']} (kept, flagged usable=False)",
                      UnusableRecordsWarning, stacklevel=2)
    return ds
