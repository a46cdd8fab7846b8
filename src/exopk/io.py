"""Writing results atomically: a temporary file in the target folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["write_atomically"]


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result to ``path`` in one rename.

    A reader never sees a half-written file, and an existing file at ``path`` is kept intact if
    writing fails.

    Parameters
    ----------
    path : str or Path
        Final location.
    write : callable
        Writes the complete file to the path it is given.

    Returns
    -------
    Path
        The final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(temporary)
    try:
        write(temporary)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path
