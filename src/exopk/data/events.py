"""NONMEM-style event tables (doses and observations), the doses they describe, and the
regimen each subject received."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from exopk.data.fields import parse_number
from exopk.data.problems import ProblemCollector
from exopk.data.table import Table, parse_table, read_text
from exopk.units import to_minutes
from exopk.dosing import MAX_DOSES, Dose, Regimen

__all__ = ["read_events", "expand_doses", "regimens", "DoseRecord"]

_REQUIRED = ("time", "amt", "cmt", "dv", "evid")
_OPTIONAL = ("id", "mdv", "rate", "ii", "addl", "ss")
_RESERVED = ("time_min", "line")
_MISSING = ("", ".")
_DOSING_EVIDS = (1, 4)


@dataclass(frozen=True)
class DoseRecord:
    """One dose, after ADDL/II expansion.

    Attributes
    ----------
    id : float
        Subject (``ID``; 1 when the table has no ``ID`` column).
    time_min : float
        Dosing time in min.
    amount : float
        Dose (``AMT``), in the table's amount unit.
    compartment : int
        Compartment number (``CMT``).
    rate : float
        Infusion rate in amount per min; 0 for a bolus.
    duration_min : float
        Infusion duration in min (``AMT / RATE``); 0 for a bolus.
    line : int
        Line of the dosing record in the file (header = 1).

    Examples
    --------
    The first two doses of the first infant of the shipped phenobarbital table (TIME in h, AMT
    in mg/kg):

    >>> from exopk.data import read_events, expand_doses
    >>> first, second = expand_doses(read_events("fits/pheno.csv", time_unit="h"))[:2]
    >>> first
    DoseRecord(id=1.0, time_min=0.0, amount=17.85714286, compartment=1, rate=0.0, duration_min=0.0, line=2)
    >>> second.time_min, second.amount, second.line       # TIME 12.5 h
    (750.0, 2.5, 4)
    """

    id: float
    time_min: float
    amount: float
    compartment: int
    rate: float
    duration_min: float
    line: int


class _Cells:
    """The cells of one event record, read by lowercase column name."""

    def __init__(self, cells: dict[str, str], names: dict[str, str], line: int,
                 problems: ProblemCollector):
        self.cells, self.names, self.line, self.problems = cells, names, line, problems

    def problem(self, column: str, message: str) -> None:
        self.problems.add(message, row=self.line, column=self.names.get(column, column.upper()))

    def number(self, column: str, *, default: float = np.nan, required: bool = False,
               whole: bool = False, allowed: tuple[int, ...] | None = None,
               signed: bool = False) -> float:
        """Parse a cell; report it and return NaN when invalid, ``default`` when not given.

        ``whole`` asks for a whole number, ``allowed`` for one of a few codes, ``signed``
        lets the number be negative.
        """
        text = self.cells.get(column, "").strip()
        if text in _MISSING:
            if required:
                self.problem(column, "missing value")
            return default
        try:
            number = parse_number(text)
        except ValueError as exc:
            self.problem(column, str(exc))
            return np.nan
        if number < 0 and not signed:
            self.problem(column, f"negative {column.upper()} {text!r}")
        elif whole and number != int(number):
            self.problem(column, f"{column.upper()} {text!r} is not a whole number")
        elif allowed is not None and number not in allowed:
            self.problem(column, f"{column.upper()} {text!r} is not one of "
                                 f"{', '.join(str(a) for a in allowed)}")
        return number


def _check_header(table: Table, problems: ProblemCollector) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(table.header):
        key = name.strip().lower()
        if key in columns:
            problems.add(f"column {name!r} appears twice in the header (names are "
                         "case-insensitive)", row=table.header_line, column=name)
        elif key in _RESERVED:
            problems.add(f"column name {name!r} is reserved for a column exopk adds",
                         row=table.header_line, column=name)
        else:
            columns[key] = index
    for key in _REQUIRED:
        if key not in columns:
            problems.add("missing required column", row=table.header_line,
                         column=key.upper())
    return columns


def _parse_record(row: _Cells) -> dict[str, float]:
    evid = row.number("evid", required=True, whole=True, allowed=(0, 1, 2, 3, 4))
    dosing = evid in _DOSING_EVIDS
    values = {
        "id": row.number("id", default=1.0, required="id" in row.names),
        "time": row.number("time", required=True),
        "evid": evid,
        "amt": row.number("amt", default=0.0),
        "cmt": row.number("cmt", required=evid in (0, 1, 4), whole=True),
        "dv": row.number("dv", signed=True),
        "mdv": row.number("mdv", default=float(evid != 0), whole=True, allowed=(0, 1)),
        "rate": row.number("rate", default=0.0),
        "ii": row.number("ii", default=0.0),
        "addl": row.number("addl", default=0.0, whole=True),
        "ss": row.number("ss", default=0.0, whole=True, allowed=(0, 1, 2)),
    }
    if values["cmt"] == 0:
        row.problem("cmt", "CMT must be a compartment number from 1")
    if dosing and not values["amt"] > 0:
        row.problem("amt", f"dosing record (EVID {evid:g}) without a positive AMT")
    if evid == 0 and values["mdv"] == 0 and np.isnan(values["dv"]):
        row.problem("dv", "observation record (EVID 0, MDV 0) without DV")
    if values["addl"] > 0 and not values["ii"] > 0:
        row.problem("addl", f"ADDL {values['addl']:g} additional doses need II > 0")
    if values["addl"] + 1 > MAX_DOSES:
        row.problem("addl", f"ADDL {values['addl']:g} gives more than {MAX_DOSES} doses, the most "
                            "a regimen may hold")
    return values


def read_events(path: str | os.PathLike, *, time_unit: str = "h") -> xr.Dataset:
    """Read and check a NONMEM-style event table.

    Columns (names case-insensitive): ``TIME``, ``AMT``, ``CMT``, ``DV``, ``EVID`` required;
    ``ID``, ``MDV``, ``RATE``, ``II``, ``ADDL``, ``SS`` optional. Other columns (covariates)
    are kept as text. ``.`` or an empty cell means "not given": AMT, RATE, II, ADDL and SS
    then read as 0 (as NONMEM reads ``.``), DV and CMT as NaN, MDV as 1 for non-observation
    records and 0 for observations, ID as 1 when there is no ``ID`` column.

    Checked, each reported with file, line and column: missing required columns or values;
    non-numeric, NaN or infinite numbers; any negative number but DV; EVID not
    in {0, 1, 2, 3, 4}; MDV not 0 or 1; SS not 0, 1 or 2; non-whole CMT, EVID, ADDL; dosing
    records (EVID 1 or 4) without a positive AMT; observations (EVID 0, MDV 0) without DV;
    ADDL without a positive II; TIME decreasing within a subject (allowed at EVID 3 or 4
    resets); repeated column names, or the names ``time_min`` and ``line`` (added here);
    malformed CSV. All problems are collected and raised together.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    time_unit : str, default "h"
        Unit of TIME and II (and the time unit of RATE), as a pint unit string.

    Returns
    -------
    xarray.Dataset
        One dimension ``record``: ``id``, ``time``, ``amt``, ``cmt``, ``dv``, ``evid``,
        ``mdv``, ``rate``, ``ii``, ``addl``, ``ss`` (floats), ``time_min`` (TIME in min),
        ``line`` (line in the file), extra columns as text under their lowercase names.
        ``attrs``: ``source_file``, ``time_unit``.

    Raises
    ------
    exopk.data.DataValidationError
        Any problem in the file.
    exopk.data.UnitError
        ``time_unit`` is not a unit of time.

    Examples
    --------
    The shipped phenobarbital event table (59 infants; TIME in h, covariates ``WGT`` and
    ``APGR``):

    >>> from exopk.data import read_events
    >>> events = read_events("fits/pheno.csv", time_unit="h")
    >>> events.sizes["record"], len(set(events["id"].values.tolist()))
    (744, 59)
    >>> int((events["evid"] == 1).sum()), int((events["evid"] == 0).sum())    # doses, samples
    (589, 155)
    >>> events[["time", "time_min", "dv", "wgt"]].isel(record=1).to_pandas().to_dict()
    {'time': 2.0, 'time_min': 120.0, 'dv': 17.3, 'wgt': '1.4'}

    Every problem is reported with its line and column:

    >>> import pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "events.csv"
    >>> _ = path.write_text("ID,TIME,AMT,CMT,DV,EVID\\n1,0,-5,1,.,1\\n1,2,0,1,.,0\\n")
    >>> try:
    ...     read_events(path)
    ... except Exception as error:
    ...     print([(p.row, p.column, p.message) for p in error.problems])
    [(2, 'AMT', "negative AMT '-5'"), (2, 'AMT', 'dosing record (EVID 1) without a positive AMT'), (3, 'DV', 'observation record (EVID 0, MDV 0) without DV')]
    >>> folder.cleanup()
    """
    minutes = to_minutes(1.0, time_unit)
    file = str(path)
    problems = ProblemCollector(file)
    text = read_text(path, problems)
    problems.raise_if_any()
    table = parse_table(text, problems)
    columns = _check_header(table, problems)
    names = {key: table.header[index] for key, index in columns.items()}
    extra = [key for key in columns if key not in _REQUIRED + _OPTIONAL]
    records, lines = [], []
    last_time: dict[float, float] = {}
    for line, cells in table.rows:
        row = _Cells({key: cells[index] for key, index in columns.items()}, names, line,
                     problems)
        values = _parse_record(row)
        previous = last_time.get(values["id"])
        if previous is not None and values["time"] < previous and values["evid"] not in (3, 4):
            row.problem("time", f"TIME {values['time']:g} is before the previous record's "
                                f"{previous:g} for ID {values['id']:g}")
        last_time[values["id"]] = values["time"]
        records.append({**values, **{key: cells[columns[key]] for key in extra}})
        lines.append(line)
    problems.raise_if_any()
    data_vars = {key: ("record", np.array([r[key] for r in records], dtype=float))
                 for key in ("id", *_REQUIRED, *_OPTIONAL[1:])}
    times = np.array([r["time"] for r in records], dtype=float)
    data_vars["time_min"] = ("record", times * minutes, {"units": "min"})
    data_vars["line"] = ("record", np.array(lines, dtype=np.int64))
    for key in extra:
        data_vars[key] = ("record", np.array([r[key] for r in records], dtype=str))
    return xr.Dataset(data_vars, attrs={"source_file": file, "time_unit": time_unit})


def expand_doses(events: xr.Dataset) -> list[DoseRecord]:
    """List every dose of an event table, with ADDL additional doses spelt out.

    A dosing record (EVID 1 or 4) at time ``t`` with ``ADDL = k`` and interval ``II`` gives
    doses at ``t, t + II, ..., t + k II``. ``RATE > 0`` makes an infusion of duration
    ``AMT / RATE``.

    Parameters
    ----------
    events : xarray.Dataset
        From :func:`read_events`.

    Returns
    -------
    list of DoseRecord
        Sorted by subject, then time (min), then line.

    Raises
    ------
    exopk.data.DataValidationError
        A dosing record asks for steady state (SS 1 or 2), which is not a finite list of doses.

    Examples
    --------
    One record of 100 every 12 h given twice (``ADDL 1``) and a 2-h infusion of 50 (``RATE``
    25 per h):

    >>> import pathlib, tempfile
    >>> from exopk.data import read_events, expand_doses
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "events.csv"
    >>> _ = path.write_text("ID,TIME,AMT,CMT,DV,EVID,RATE,II,ADDL\\n"
    ...                     "1,0,100,1,.,1,.,12,1\\n1,1,50,2,.,1,25,.,.\\n")
    >>> for dose in expand_doses(read_events(path, time_unit="h")):
    ...     print(dose.time_min, dose.amount, dose.compartment, dose.duration_min, dose.line)
    0.0 100.0 1 0.0 2
    60.0 50.0 2 120.0 3
    720.0 100.0 1 0.0 2
    >>> folder.cleanup()
    """
    minutes = to_minutes(1.0, events.attrs["time_unit"])
    problems = ProblemCollector(events.attrs["source_file"])
    doses = []
    for i in np.flatnonzero(np.isin(events["evid"].values, _DOSING_EVIDS)):
        record = {key: float(events[key].values[i])
                  for key in ("id", "time", "amt", "cmt", "rate", "ii", "addl", "ss")}
        line = int(events["line"].values[i])
        if record["ss"] != 0:
            problems.add(f"steady-state dosing (SS {record['ss']:g}) cannot be expanded into "
                         "single doses", row=line, column="SS")
            continue
        rate = record["rate"] / minutes
        duration = record["amt"] / rate if rate > 0 else 0.0
        for k in range(int(record["addl"]) + 1):
            doses.append(DoseRecord(
                id=record["id"], time_min=(record["time"] + k * record["ii"]) * minutes,
                amount=record["amt"], compartment=int(record["cmt"]), rate=rate,
                duration_min=duration, line=line))
    problems.raise_if_any()
    return sorted(doses, key=lambda d: (d.id, d.time_min, d.line))


def regimens(events: xr.Dataset, routes: Mapping, *, route_column: str | None = None,
             time_unit: str = "min") -> dict[float, Regimen]:
    """The regimen each subject of an event table received.

    Every dose of :func:`expand_doses` (ADDL repeats spelt out) becomes a :class:`~exopk.Dose`:
    a bolus, or with ``RATE > 0`` a zero-order infusion of duration ``AMT / RATE``. Its route is
    ``routes[CMT]``, or with ``route_column`` ``routes[value of that column]``.

    Parameters
    ----------
    events : xarray.Dataset
        From :func:`read_events`.
    routes : mapping
        Compartment number (``CMT``), or value of ``route_column``, -> route name of the model.
    route_column : str, optional
        A column of the table naming each dose's route (lowercase, as :func:`read_events` keeps
        extra columns).
    time_unit : str, default "min"
        The model's time unit, which dose times and durations are given in.

    Returns
    -------
    dict
        Subject (``ID``) -> :class:`~exopk.Regimen`, in the order of the subjects' first dose.

    Raises
    ------
    exopk.data.DataValidationError
        A dose whose CMT or route value has no route in ``routes`` (naming its line and column),
        or a dose at steady state (see :func:`expand_doses`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from exopk.data import read_events, regimens
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "events.csv"
    >>> _ = path.write_text("ID,TIME,AMT,CMT,DV,EVID,RATE,II,ADDL\\n"
    ...                     "1,0,100,1,.,1,.,12,1\\n1,1,50,2,.,1,25,.,.\\n")
    >>> for dose in regimens(read_events(path), {1: "oral", 2: "iv"})[1].doses:
    ...     print(dose.route, dose.amount, dose.time, dose.duration)
    oral 100.0 0.0 0.0
    iv 50.0 60.0 120.0
    oral 100.0 720.0 0.0
    >>> folder.cleanup()
    """
    per_minute = 1.0 / to_minutes(1.0, time_unit)
    problems = ProblemCollector(events.attrs["source_file"])
    if route_column is not None and route_column not in events:
        problems.add(f"no column {route_column!r} naming the routes", column=route_column)
        problems.raise_if_any()
    keys = {}
    if route_column is not None:
        keys = dict(zip(events["line"].values.tolist(), events[route_column].values.tolist()))
    by_subject: dict[float, list[Dose]] = {}
    for dose in expand_doses(events):
        key = keys[dose.line] if route_column is not None else dose.compartment
        route = routes.get(key)
        if route is None:
            column = route_column if route_column is not None else "CMT"
            problems.add(f"{column} {key!r} has no route; routes are given for "
                         f"{', '.join(repr(k) for k in routes) or 'nothing'}",
                         row=dose.line, column=column)
            continue
        by_subject.setdefault(dose.id, []).append(
            Dose(route, dose.amount, dose.time_min * per_minute, dose.duration_min * per_minute))
    problems.raise_if_any()
    return {subject: Regimen(tuple(doses)) for subject, doses in by_subject.items()}
