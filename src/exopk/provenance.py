"""Provenance of a result file: what made it, from what, where (as tskit's ``get_provenance_dict``).

:func:`get_provenance_dict` gives one JSON-serialisable record: the schema version of exopk's
result files, exopk's version, the versions of the libraries that shape the numbers, the platform,
the compiled kernels that decide their last bits (:func:`numeric_kernels`), the command, a UTC
timestamp, and every input file with its SHA-256 and its path relative to the
result file (never an absolute path of the machine that wrote it). ``exopk fit`` and
``exopk simulate --netcdf`` store it as the JSON attribute ``provenance`` of their results.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "LIBRARIES", "get_provenance_dict", "numeric_kernels",
           "provenance_json", "relative_path", "sha256_of_file", "software_version"]

SCHEMA_VERSION = "2"   # the layout of result files (2: diagnostics group, provenance attribute)
LIBRARIES = ("numpy", "scipy", "numba", "pints", "xarray", "netCDF4", "pint", "matplotlib")


def software_version(name: str) -> str:
    """Installed version of a distribution, ``"0+unknown"`` when it is not installed.

    Examples
    --------
    >>> from exopk.provenance import software_version
    >>> software_version("numpy").split(".")[0].isdigit(), software_version("no-such-package")
    (True, '0+unknown')
    """
    try:
        return version(name)
    except PackageNotFoundError:
        return "0+unknown"


def sha256_of_file(path) -> str:
    """SHA-256 of a file's bytes, in hex.

    Examples
    --------
    The FIPS 180-2 test vector: the SHA-256 of ``abc``.

    >>> import pathlib, tempfile
    >>> from exopk.provenance import sha256_of_file
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "abc.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_of_file(path)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    >>> folder.cleanup()
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def numeric_kernels() -> dict:
    """The compiled kernels that decide the last bits of the numbers on this machine.

    The same code, library versions and seed give the same draws bit for bit only where these
    agree: BLAS and LAPACK libraries pick kernels for the processor they run on (OpenBLAS's
    ``architecture``), and numpy picks SIMD loops for its ufuncs (``exp`` among them) by the
    processor's instruction sets. A sampler's path is chaotic, so a difference in the last bit
    of one gradient gives other draws.

    Returns
    -------
    dict
        ``blas``: one ``"<library> <version> <architecture> (<file name>)"`` per loaded BLAS
        library (threadpoolctl), sorted; ``numpy_simd``: numpy's SIMD targets in use (its
        baseline and the dispatched targets this processor has).

    Examples
    --------
    >>> import scipy.linalg
    >>> from exopk.provenance import numeric_kernels
    >>> kernels = numeric_kernels()
    >>> sorted(kernels), len(kernels["blas"]) >= 1
    (['blas', 'numpy_simd'], True)
    """
    from threadpoolctl import threadpool_info
    blas = sorted(f"{info.get('internal_api')} {info.get('version')} "
                  f"{info.get('architecture')} ({Path(info.get('filepath', '')).name})"
                  for info in threadpool_info() if info.get("user_api") == "blas")
    try:
        from numpy._core._multiarray_umath import (__cpu_baseline__, __cpu_dispatch__,
                                                   __cpu_features__)
        simd = list(__cpu_baseline__) + [target for target in __cpu_dispatch__
                                         if __cpu_features__.get(target)]
    except ImportError:           # numpy < 2 keeps them elsewhere
        simd = ["unknown"]
    return {"blas": blas, "numpy_simd": simd}


def relative_path(path, start) -> str:
    """``path`` relative to the folder ``start``, with forward slashes.

    A packaged file (inside the installed ``exopk`` package) is named ``exopk:<path in the
    package>`` instead, which does not depend on where the package is installed.

    Examples
    --------
    >>> from exopk.provenance import relative_path
    >>> relative_path("fits/mouse_iv_mps.toml", "docs")
    '../fits/mouse_iv_mps.toml'
    """
    path = Path(path).resolve()
    package = Path(__file__).resolve().parent
    if path.is_relative_to(package):
        return "exopk:" + path.relative_to(package).as_posix()
    return Path(os.path.relpath(path, Path(start).resolve())).as_posix()


def get_provenance_dict(*, inputs: dict | None = None, result_path=None,
                        parameters: dict | None = None, command: list | None = None) -> dict:
    """A provenance record for a result file.

    Parameters
    ----------
    inputs : dict of str to path, optional
        Input files by role (for example ``{"fit_file": ..., "model_file": ...}``); each is
        recorded with its SHA-256 and its path relative to the result's folder.
    result_path : path, optional
        Where the result is written (default: the working directory stands for it).
    parameters : dict, optional
        Settings of the run (seed, chains, ...), JSON-serialisable.
    command : list of str, optional
        The command line (default ``sys.argv``), with its program reduced to its name.

    Returns
    -------
    dict
        ``schema_version``, ``software`` (``name``, ``version``), ``libraries`` (name to
        version, with ``python``), ``platform`` (``system``, ``release``, ``machine``,
        ``python_implementation``), ``numeric_kernels`` (:func:`numeric_kernels`),
        ``command``, ``created_at`` (ISO 8601, UTC), ``inputs`` (role to ``path`` and
        ``sha256``) and ``parameters``.

    Examples
    --------
    >>> from exopk.provenance import get_provenance_dict
    >>> record = get_provenance_dict(parameters={"seed": 1}, command=["/usr/bin/exopk", "fit"])
    >>> record["software"]["name"], record["command"], record["parameters"]
    ('exopk', ['exopk', 'fit'], {'seed': 1})
    """
    folder = Path(result_path).parent if result_path is not None else Path.cwd()
    command = list(sys.argv if command is None else command)
    if command:
        command[0] = Path(command[0]).name
    return {
        "schema_version": SCHEMA_VERSION,
        "software": {"name": "exopk", "version": software_version("exopk")},
        "libraries": {"python": platform.python_version(),
                      **{name: software_version(name) for name in LIBRARIES}},
        "platform": {"system": platform.system(), "release": platform.release(),
                     "machine": platform.machine(),
                     "python_implementation": platform.python_implementation()},
        "numeric_kernels": numeric_kernels(),
        "command": command,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {role: {"path": relative_path(path, folder), "sha256": sha256_of_file(path)}
                   for role, path in (inputs or {}).items()},
        "parameters": parameters or {},
    }


def provenance_json(**options) -> str:
    """:func:`get_provenance_dict` as a JSON string (the ``provenance`` attribute of results).

    Examples
    --------
    >>> import json
    >>> from exopk.provenance import provenance_json
    >>> record = json.loads(provenance_json(parameters={"seed": 1}, command=["exopk", "fit"]))
    >>> sorted(record)
    ['command', 'created_at', 'inputs', 'libraries', 'numeric_kernels', 'parameters', 'platform', 'schema_version', 'software']
    >>> record["parameters"]
    {'seed': 1}
    """
    return json.dumps(get_provenance_dict(**options), sort_keys=True, default=str)
