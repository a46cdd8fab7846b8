"""Exception and warning types raised by exopk.

Every error names where the problem is (file, key, row, column or parameter), so a user can fix
the input without reading exopk's source.
"""

from __future__ import annotations

import signal


class ExopkError(Exception):
    """Base class of every error exopk raises on purpose."""


class ModelFileError(ExopkError, ValueError):
    """A model file (or a model built in Python) is malformed.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The model file, when the model came from one.
    key : str, optional
        Dotted path of the offending key, for example ``transfers[2].to``.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.reason = message
        self.file = file
        self.key = key
        where = ", ".join(part for part in (file, f"key '{key}'" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)


class PhysiologyError(ExopkError, ValueError):
    """A species preset is unknown, incomplete or ambiguous, or an organ is not in it."""


class DataFileError(ExopkError, ValueError):
    """A data file has a problem at a given row and column.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The data file.
    row : int, optional
        Line number in the file as a text editor shows it (the header is line 1).
    column : str, optional
        Column name.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.file = file
        self.row = row
        self.column = column
        parts = [file] if file else []
        if row is not None:
            parts.append(f"line {row}")
        if column is not None:
            parts.append(f"column '{column}'")
        where = ", ".join(parts)
        super().__init__(f"{where}: {message}" if where else message)


class SimulationError(ExopkError, ValueError):
    """A simulation was asked with invalid parameters, times or doses."""


class ExopkWarning(UserWarning):
    """Base class of exopk's warnings."""


class IllConditionedWarning(ExopkWarning):
    """An eigendecomposition was too ill-conditioned and a slower robust path was used."""


class FitInterrupted(ExopkError):
    """A fit was stopped by a signal (Ctrl-C, ``kill``, a job scheduler's time limit).

    Parameters
    ----------
    signal_number : int
        ``signal.SIGINT`` or ``signal.SIGTERM``.
    checkpoint : str or None
        Folder holding the chains so far (``exopk fit --resume CHECKPOINT`` continues them), or
        None when the run kept no checkpoint.
    """

    def __init__(self, signal_number: int, checkpoint: str | None):
        self.signal_number = signal_number
        self.checkpoint = checkpoint
        name = signal.Signals(signal_number).name
        tail = (f"; the chains so far are in {checkpoint} (resume with: exopk fit --resume "
                f"{checkpoint})" if checkpoint else "; no checkpoint was kept")
        super().__init__(f"fit interrupted by {name}{tail}")

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + the signal number."""
        return 128 + self.signal_number
