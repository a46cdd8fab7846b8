"""Reading input files and writing results.

TOML inputs are decoded strictly (UTF-8, errors located by line and column); results are
written atomically (a temporary file in the target folder, then a rename), and an output path
can be checked for writability before the expensive work that produces its content.
"""

from __future__ import annotations

import glob
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Callable

from exopk.errors import ExopkError, ModelFileError

__all__ = ["check_writable", "read_toml", "write_atomically"]


def read_toml(path: str | Path, *, what: str) -> tuple[str, dict]:
    """Text and parsed tables of a TOML input file.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is (``"model file"``, ``"fit file"``), for messages.

    Returns
    -------
    text : str
    data : dict

    Raises
    ------
    ModelFileError
        The file cannot be read, is not UTF-8 text (the message gives the line, column and
        byte offset of the first bad byte), or is not valid TOML.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from exopk.io import read_toml
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "fit.toml"
    >>> _ = path.write_bytes(b'[fit]\\nname = "demo"\\n')
    >>> text, data = read_toml(path, what="fit file")
    >>> data
    {'fit': {'name': 'demo'}}
    >>> _ = path.write_bytes(b'[fit]\\nname = "d\\xe9mo"\\n')      # Latin-1, not UTF-8
    >>> try:
    ...     read_toml(path, what="fit file")
    ... except Exception as error:
    ...     print(error.reason)
    line 2, column 10 (byte 15): byte 0xe9 is not UTF-8 text; save the fit file as UTF-8
    >>> folder.cleanup()
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ModelFileError(f"line {line}, column {column} (byte {exc.start}): byte "
                             f"0x{raw[exc.start]:02x} is not UTF-8 text; save the {what} as "
                             "UTF-8", file=str(path)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"not valid TOML: {exc}", file=str(path)) from None


def check_writable(path: str | Path, *, option: str = "output") -> Path:
    """Fail now, not after hours of work, if a file cannot be written at ``path``.

    The folder is created if needed; a probe file is created and removed in it. An existing
    file at ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
    option : str
        Name of the setting or option that gave the path, for the message.

    Returns
    -------
    Path

    Raises
    ------
    ExopkError
        The path is a folder, or its folder cannot be created or written to.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from exopk.io import check_writable
    >>> temporary = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(temporary.name)
    >>> check_writable(folder / "new" / "result.nc") == folder / "new" / "result.nc"
    True
    >>> sorted(p.name for p in (folder / "new").iterdir())       # the probe is gone
    []
    >>> check_writable(folder, option="--out")
    Traceback (most recent call last):
    ...
    exopk.errors.ExopkError: --out '...' is a folder; give a file name
    >>> temporary.cleanup()
    """
    path = Path(path)
    if path.is_dir():
        raise ExopkError(f"{option} '{path}' is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExopkError(f"{option} '{path}' cannot be written: {exc.strerror or exc}") from None
    return path


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result to ``path`` in one rename.

    A reader never sees a half-written file, and an existing file at ``path`` is kept intact if
    writing fails. The temporary file is named ``.NAME.PID.XXXX.tmp``; one left by a process that
    was killed (SIGKILL leaves no chance to clean up) is removed by the next write to ``path``.

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

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from exopk.io import write_atomically
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "table.txt"
    >>> _ = write_atomically(path, lambda temporary: temporary.write_text("complete"))
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('complete', ['table.txt'])
    >>> folder.cleanup()
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_temporaries(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                     suffix=".tmp")
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


def _remove_orphaned_temporaries(path: Path) -> None:
    """Delete temporary files of earlier writes to ``path`` whose process no longer runs."""
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temporary.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            temporary.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    return True
