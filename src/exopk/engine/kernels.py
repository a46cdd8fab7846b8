"""Compiling the engine's numba kernels (:mod:`exopk.engine.saturable_kernels`,
:mod:`exopk.engine.halving_kernel`).

A kernel is compiled once per machine and cached next to its module (or in numba's user cache,
or in ``NUMBA_CACHE_DIR``); where no cache folder is writable, once per process instead.
"""

from __future__ import annotations

from numba import njit

__all__ = ["compile_kernel"]


def compile_kernel(function=None, *, ieee_division: bool = False):
    """``function`` compiled by numba, its machine code cached on disk where a cache folder is
    writable (numba refuses to cache, at compile time, when none is: a read-only installation
    with no writable home).

    With ``ieee_division`` (as ``@compile_kernel(ieee_division=True)``), a division by zero
    gives an infinity or NaN, as in numpy, instead of raising ``ZeroDivisionError``: for
    algorithms written for IEEE arithmetic, whose degenerate cases end in a NaN or an infinity
    that the caller checks.
    """
    if function is None:
        return lambda f: compile_kernel(f, ieee_division=ieee_division)
    options = {"error_model": "numpy"} if ieee_division else {}
    try:
        return njit(cache=True, **options)(function)
    except RuntimeError:
        return njit(**options)(function)
