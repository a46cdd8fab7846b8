"""Divided differences of ``exp(lam tau)`` between every pair of modes, in compiled code (numba).

The numbers of :func:`exopk.engine.phi.bolus_divided_differences` (same formulas: the node with
the larger real part factored out, ``exp[a, b] = exp(a) E1(b - a)`` with ``E1(z) = expm1(z) / z``,
exponentials below ``exp(-700)`` flushed to 0, and 0 before the dose), for each member at its own
times. For the few parameter sets of one posterior evaluation, numpy's version costs some 25
array operations on arrays of a few hundred elements (15-25 us a call); here one loop.

Complex ``expm1`` is numpy's formula, ``expm1(x) cos(y) - 2 sin(y / 2)**2 + i exp(x) sin(y)``
(numba's own is ``exp(z) - 1``, which loses the digits of a small ``z``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from exopk.engine.kernels import compile_kernel

__all__ = ["bolus_divided_differences_at"]

_UNDERFLOW = -700.0       # as exopk.engine.phi: exp below this real part is flushed to 0


def _expm1(z):
    """``exp(z) - 1`` without cancellation, real or complex (compiled through the overload)."""
    raise NotImplementedError("compiled code only")


@overload(_expm1)
def _expm1_of(z):
    if isinstance(z, types.Complex):
        def complex_expm1(z):
            half = math.sin(z.imag / 2)
            return complex(math.expm1(z.real) * math.cos(z.imag) - 2 * half * half,
                           math.exp(z.real) * math.sin(z.imag))
        return complex_expm1
    return lambda z: math.expm1(z)


@compile_kernel
def _e1(z):
    """``(exp(z) - 1) / z``, 1 at ``z = 0``."""
    if z == 0:
        return z + 1
    return _expm1(z) / z


@compile_kernel
def _exp_flushed(z):
    """``exp(z)``, 0 where the real part of ``z`` is below ``_UNDERFLOW``."""
    if z.real < _UNDERFLOW:
        return z - z
    return np.exp(z)


@compile_kernel
def bolus_divided_differences_at(lam, times, K):
    """Fill ``K[b, i, t, k]`` with the divided difference of ``exp(lam tau_bt)`` at ``lam_bi``,
    ``lam_bk`` (``tau_bt exp[lam_bi tau_bt, lam_bk tau_bt]``; ``exp(lam_bi tau_bt)`` on the
    diagonal; 0 where ``tau_bt < 0``).

    Parameters
    ----------
    lam : ndarray (batch, n)
        Modes, real or complex.
    times : ndarray (batch, n_times)
        Times since the dose, per member.
    K : ndarray (batch, n, n_times, n)
        Output, of ``lam``'s type.
    """
    batch, n = lam.shape
    z = np.empty(n, lam.dtype)
    e = np.empty(n, lam.dtype)
    for b in range(batch):
        for s in range(times.shape[1]):
            tau = times[b, s]
            if not tau >= 0:
                for i in range(n):
                    for k in range(n):
                        K[b, i, s, k] = 0
                continue
            for i in range(n):
                z[i] = lam[b, i] * tau
                e[i] = _exp_flushed(z[i])
            for i in range(n):
                K[b, i, s, i] = tau * e[i]
                for k in range(i + 1, n):
                    # the node with the larger real part is factored out (E1 of a difference
                    # whose real part is not positive); with equal real parts (a conjugate
                    # pair) each order factors out its own first node
                    if z[i].real > z[k].real:
                        K[b, i, s, k] = K[b, k, s, i] = tau * (e[i] * _e1(z[k] - z[i]))
                    elif z[i].real < z[k].real:
                        K[b, i, s, k] = K[b, k, s, i] = tau * (e[k] * _e1(z[i] - z[k]))
                    else:
                        K[b, i, s, k] = tau * (e[i] * _e1(z[k] - z[i]))
                        K[b, k, s, i] = tau * (e[k] * _e1(z[i] - z[k]))
