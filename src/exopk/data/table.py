"""Read a CSV file into its header and rows, keeping the line number of every row."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from exopk.data.problems import ProblemCollector

__all__ = ["Table", "read_text", "parse_table"]


@dataclass(frozen=True)
class Table:
    """Header and rows of a CSV file.

    Attributes
    ----------
    header : tuple of str
        Column names as written.
    header_line : int
        Line of the header: 1 unless blank lines come first.
    rows : tuple of (int, tuple of str)
        Each row with the line where it starts, as a text editor counts. Rows whose number of
        fields differs from the header's are left out here and reported as problems.
    """

    header: tuple[str, ...]
    header_line: int
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def _line_count(text: str) -> int:
    return len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def read_text(path: str | os.PathLike, problems: ProblemCollector) -> str | None:
    """Read a UTF-8 text file (a byte-order mark is allowed).

    Returns None, after recording the problem, when the file cannot be read or decoded.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problems.add(f"cannot read the file: {exc.strerror or exc}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_count(data[:exc.start].decode("utf-8-sig"))
        problems.add(f"not UTF-8 text: byte {data[exc.start]:#04x} cannot be decoded", row=line)
        return None


def parse_table(text: str, problems: ProblemCollector) -> Table:
    """Split CSV text into header and rows.

    Blank lines are skipped. A row with more or fewer fields than the header, malformed
    quoting and an empty file are recorded in ``problems``; reading stops at malformed quoting.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: tuple[str, ...] | None = None
    header_line = 1
    rows = []
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not cells:
                continue
            if header is None:
                header, header_line = tuple(cells), start
            elif len(cells) != len(header):
                problems.add(f"{len(cells)} fields, but the header has {len(header)}", row=start)
            else:
                rows.append((start, tuple(cells)))
    except csv.Error as exc:
        problems.add(f"malformed CSV in the record starting here: {exc}", row=end + 1)
    if header is None:
        problems.add("empty file: no header line", row=1)
        header = ()
    return Table(header=header, header_line=header_line, rows=tuple(rows))
