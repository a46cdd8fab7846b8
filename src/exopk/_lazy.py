"""Public names of a package that are imported on first use (PEP 562).

``exopk`` and ``exopk.data`` list their public names in a dict literal ``_LAZY`` (name -> module)
and hand it to :func:`lazy_exports`, so that ``import exopk`` (and so ``exopk --help``) does not
import scipy, xarray, pint or pints; ``exopk.fit`` imports what it needs when it is first used.
The layer test (``tests/test_layers.py``) reads ``_LAZY`` as the imports it stands for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """The module ``__getattr__`` and ``__dir__`` of a package with lazily imported names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        Public name -> the module that defines it under that name.

    Returns
    -------
    (__getattr__, __dir__)
        Assign them at the package's module level.
    """
    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)   # later look-ups bypass __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
