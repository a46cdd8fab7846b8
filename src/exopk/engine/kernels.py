"""Compiling the engine's numba kernels (:mod:`exopk.engine.saturable_kernels`,
:mod:`exopk.engine.halving_kernel`).

A kernel is compiled once per machine and cached next to its module (or in numba's user cache,
or in ``NUMBA_CACHE_DIR``); where no cache folder is writable, once per process instead.
"""

from __future__ import annotations

from numba import njit

__all__ = ["compile_kernel"]


def compile_kernel(function):
    """``function`` compiled by numba, its machine code cached on disk where a cache folder is
    writable (numba refuses to cache, at compile time, when none is: a read-only installation
    with no writable home)."""
    try:
        return njit(cache=True)(function)
    except RuntimeError:
        return njit(function)
