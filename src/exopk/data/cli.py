"""The ``exopk data`` command: list and show packaged studies, validate a user's file."""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings

__all__ = ["register"]

_SHOW_COLUMNS = ("line", "species", "route", "matrix", "quantity", "statistic", "value_text",
                 "error_text", "error_type", "unit", "time_text", "time_unit", "usable_for_fit",
                 "location")


def register(subparsers: argparse._SubParsersAction, extra=()) -> argparse.ArgumentParser:
    """Add the ``data`` command (``list``, ``show STUDY``, ``validate FILE``) to a CLI.

    Every subcommand sets ``func``; ``args.func(args)`` returns the exit status.

    Parameters
    ----------
    subparsers
        The object returned by :meth:`argparse.ArgumentParser.add_subparsers`.
    extra : sequence of callables, optional
        Each adds one more subcommand to the ``data`` command's subparsers: those that need
        the layers above the data (``usable MODEL`` reads models and observations).

    Returns
    -------
    argparse.ArgumentParser
        The ``data`` parser.
    """
    parser = subparsers.add_parser(
        "data", help="packaged evidence tables and user data files",
        description="Browse the packaged evidence tables or check a data file.")
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="studies with record counts")
    listing.set_defaults(func=list_studies)
    show = commands.add_parser("show", help="records of one study, with provenance")
    show.add_argument("study", metavar="STUDY", help="study key, as in 'exopk data list'")
    show.set_defaults(func=show_study)
    validate = commands.add_parser("validate", help="check a data file and list every problem")
    validate.add_argument("file", metavar="FILE", help="CSV file in the evidence schema")
    validate.add_argument("--events", action="store_true",
                          help="FILE is a NONMEM-style event table (TIME, AMT, CMT, DV, EVID)")
    validate.set_defaults(func=validate_file)
    for add in extra:
        add(commands)
    return parser


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def list_studies(args: argparse.Namespace) -> int:
    """Print every packaged study with its table, record count, usable count and proxy flag."""
    from exopk.data.packaged import load
    ds = load("all")
    keys = ds["study_key"].values
    rows = [["study_key", "table", "records", "usable", "proxy"]]
    for key in dict.fromkeys(keys.tolist()):
        mine = keys == key
        rows.append([key, str(ds["source_file"].values[mine][0]), str(int(mine.sum())),
                     str(int(ds["usable"].values[mine].sum())),
                     "yes" if ds["is_proxy"].values[mine].all() else "no"])
    print(_table(rows))
    print(f"\n{len(rows) - 1} studies, {ds.sizes['record']} records "
          f"({int(ds['usable'].sum())} usable for fitting).")
    print(ds.attrs["caveat"])
    return 0


def show_study(args: argparse.Namespace) -> int:
    """Print the records of one packaged study as a table, after its provenance."""
    import numpy as np

    from exopk.data.packaged import load
    ds = load("all")
    keys = ds["study_key"].values
    if args.study not in keys:
        close = difflib.get_close_matches(args.study, sorted(set(keys.tolist())), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"unknown study {args.study!r}{hint} (see 'exopk data list')", file=sys.stderr)
        return 1
    study = ds.isel(record=np.flatnonzero(keys == args.study))
    first = {name: str(study[name].values[0]) for name in ("citation", "doi", "url",
                                                            "source_file")}
    print(f"{args.study}  ({first['source_file']})")
    print(f"  citation: {first['citation']}")
    print(f"  doi:      {first['doi'] or '-'}")
    for url in dict.fromkeys(study["url"].values.tolist()):
        print(f"  url:      {url}")
    if bool(study["is_proxy"].values.all()):
        print(f"  proxy type: {', '.join(dict.fromkeys(study['proxy_type'].values.tolist()))}"
              " (not an EV)")
    else:
        print(f"  vesicle class: "
              f"{', '.join(dict.fromkeys(study['vesicle_class'].values.tolist()))}")
    rows = [list(_SHOW_COLUMNS)]
    for i in range(study.sizes["record"]):
        rows.append([str(study[name].values[i]) for name in _SHOW_COLUMNS])
    print()
    print(_table(rows))
    notes = [(int(line), note)
             for line, note in zip(study["line"].values, study["note"].values, strict=True)
             if note]
    if notes:
        print("\nnotes:")
        for line, note in notes:
            print(f"  line {line}: {note}")
    return 0


def validate_file(args: argparse.Namespace) -> int:
    """Check a user's file; print every problem and return 1, or a summary and return 0."""
    from exopk.data.events import read_events
    from exopk.data.problems import DataValidationError
    from exopk.data.reader import UnusableRecordsWarning, read_csv
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusableRecordsWarning)
            ds = read_events(args.file) if args.events else read_csv(args.file)
    except DataValidationError as exc:
        for problem in exc.problems:
            print(problem)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found in {args.file}")
        return 1
    print(f"{args.file}: {ds.sizes['record']} records, no problems found")
    if not args.events:
        print(ds.attrs["unusable_summary"])
    return 0
