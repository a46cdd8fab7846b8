"""Collect every problem found in a data file and raise them together as one error."""

from __future__ import annotations

from dataclasses import dataclass

from exopk.errors import DataFileError

__all__ = ["DataValidationError", "Problem", "ProblemCollector"]

_LISTED = 50


@dataclass(frozen=True)
class Problem:
    """One problem: what is wrong, in which file, at which line and column.

    ``row`` is the line number as a text editor shows it (the header is line 1); ``row`` or
    ``column`` is None when the problem concerns a whole line or the whole file.

    Examples
    --------
    >>> from exopk.data import Problem
    >>> print(Problem("non-numeric value 'ten'", file="mine.csv", row=3, column="value"))
    mine.csv, line 3, column 'value': non-numeric value 'ten'
    """

    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None

    def as_error(self) -> DataFileError:
        """The problem as a :class:`~exopk.errors.DataFileError`."""
        return DataFileError(self.message, file=self.file, row=self.row, column=self.column)

    def __str__(self) -> str:
        return str(self.as_error())


class DataValidationError(DataFileError):
    """One or more problems in a data file.

    The message's first line is the first problem, with its file, line and column; when there
    are more, the following lines list them (the first 50). ``file``, ``row`` and ``column`` are
    those of the first problem.

    Attributes
    ----------
    problems : tuple of Problem
        Every problem found, in file order.

    Examples
    --------
    >>> from exopk.data import DataValidationError, Problem
    >>> error = DataValidationError([Problem("missing value", "mine.csv", 2, "unit"),
    ...                              Problem("non-numeric value 'ten'", "mine.csv", 3, "value")])
    >>> print(error)
    mine.csv, line 2, column 'unit': missing value
    2 problems in total:
      mine.csv, line 2, column 'unit': missing value
      mine.csv, line 3, column 'value': non-numeric value 'ten'
    >>> error.row, error.column, len(error.problems)
    (2, 'unit', 2)
    """

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        first = self.problems[0]
        message = first.message
        if len(self.problems) > 1:
            listed = [f"  {p}" for p in self.problems[:_LISTED]]
            if len(self.problems) > _LISTED:
                listed.append(f"  ... and {len(self.problems) - _LISTED} more")
            message += f"\n{len(self.problems)} problems in total:\n" + "\n".join(listed)
        super().__init__(message, file=first.file, row=first.row, column=first.column)


class ProblemCollector:
    """Gather the problems of one data file, then raise them all at once.

    Parameters
    ----------
    file : str
        The file name used in messages when a problem does not name its own.
    """

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, message: str, *, row: int | None = None, column: str | None = None,
            file: str | None = None) -> None:
        """Record one problem at line ``row`` (header = 1) and ``column``."""
        self.problems.append(Problem(message, file or self.file, row, column))

    def raise_if_any(self) -> None:
        """Raise :class:`DataValidationError` when at least one problem was recorded."""
        if self.problems:
            raise DataValidationError(self.problems)
