"""The modal response to a bolus and the divided differences of ``exp(lam tau)`` between every
pair of modes, in compiled code (numba).

The numbers of :func:`exopk.engine.phi.bolus_divided_differences` (same formulas: the node with
the larger real part factored out, ``exp[a, b] = exp(a) E1(b - a)`` with ``E1(z) = expm1(z) / z``,
exponentials below ``exp(-700)`` flushed to 0, and 0 before the dose), for each member at its own
times. For the few parameter sets of one posterior evaluation, numpy's version costs some 25
array operations on arrays of a few hundred elements (15-25 us a call); here one loop.
:func:`bolus_response` takes the amounts after one bolus and their sensitivities (the
Daleckii-Krein formula) in the same loop: one call where numpy needed some 15 more operations.

Complex ``expm1`` is numpy's formula, ``expm1(x) cos(y) - 2 sin(y / 2)**2 + i exp(x) sin(y)``
(numba's own is ``exp(z) - 1``, which loses the digits of a small ``z``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from exopk.engine.kernels import compile_kernel

__all__ = ["bolus_divided_differences_at", "bolus_response", "exp_flushed"]

# exopk.engine.phi's _UNDERFLOW (phi imports this module on first use, so it cannot import phi)
_UNDERFLOW = -700.0


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
def exp_flushed(z):
    """``exp(z)``, 0 where the real part of ``z`` is below ``_UNDERFLOW``."""
    if z.real < _UNDERFLOW:
        return z - z
    return np.exp(z)


@compile_kernel
def _divided_differences(z, e, tau, K):
    """``K[i, k]`` of one member at one time ``tau >= 0``, from ``z = lam tau`` and
    ``e = exp_flushed(z)`` (as :func:`bolus_divided_differences_at`)."""
    n = z.shape[0]
    for i in range(n):
        K[i, i] = tau * e[i]
        for k in range(i + 1, n):
            if z[i].real > z[k].real:
                K[i, k] = K[k, i] = tau * (e[i] * _e1(z[k] - z[i]))
            elif z[i].real < z[k].real:
                K[i, k] = K[k, i] = tau * (e[k] * _e1(z[i] - z[k]))
            else:
                K[i, k] = tau * (e[i] * _e1(z[k] - z[i]))
                K[k, i] = tau * (e[k] * _e1(z[i] - z[k]))


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
                e[i] = exp_flushed(z[i])
            _divided_differences(z, e, tau, K[b, :, s, :])


@compile_kernel
def bolus_response(lam, V, G, c, dc, times, x, dx):
    """Fill the amounts ``x = Re V (exp(lam tau) * c)`` after one bolus and their parameter
    derivatives ``dx = Re V Y``, ``Y[i, p] = sum_k K[i, k] c_k G[i, p, k] + exp(lam_i tau)
    dc[i, p]`` (the Daleckii-Krein formula with the divided differences ``K`` of
    :func:`bolus_divided_differences_at`), for each member at its own times.

    Parameters
    ----------
    lam : ndarray (batch, n)
    V : ndarray (batch, n, n)
        Eigenvectors, of ``lam``'s type.
    G : ndarray (batch, n, P, n)
        ``V^-1 dA_p V`` (P may be 0: amounts only).
    c, dc : ndarray (batch, n), (batch, n, P)
        The bolus in modal coordinates (``V^-1 b``) and its parameter derivative
        (``V^-1 db``; zeros when the bolus does not depend on the parameters).
    times : ndarray (batch, n_times)
        Times since the bolus; before it (``tau < 0``) amounts and derivatives are 0.
    x, dx : ndarray (batch, n_times, n), (batch, n_times, n, P)
        Output, real.
    """
    batch, n = lam.shape
    parameters = G.shape[2]
    z, e, ec = np.empty(n, lam.dtype), np.empty(n, lam.dtype), np.empty(n, lam.dtype)
    K = np.empty((n, n), lam.dtype)
    Kc = np.empty(n, lam.dtype)
    Y = np.empty((parameters, n), lam.dtype)          # transposed: contiguous over modes
    for b in range(batch):
        for s in range(times.shape[1]):
            tau = times[b, s]
            if not tau >= 0:
                x[b, s, :] = 0.0
                dx[b, s, :, :] = 0.0
                continue
            for i in range(n):
                z[i] = lam[b, i] * tau
                e[i] = exp_flushed(z[i])
                ec[i] = e[i] * c[b, i]
            for j in range(n):
                total = ec[0] * 0
                for i in range(n):
                    total += V[b, j, i] * ec[i]
                x[b, s, j] = total.real
            if parameters == 0:
                continue
            _divided_differences(z, e, tau, K)
            for i in range(n):
                for k in range(n):
                    Kc[k] = K[i, k] * c[b, k]
                for p in range(parameters):
                    total = e[i] * dc[b, i, p]
                    for k in range(n):
                        total += Kc[k] * G[b, i, p, k]
                    Y[p, i] = total
            for j in range(n):
                for p in range(parameters):
                    total = Y[p, 0] * 0
                    for i in range(n):
                        total += V[b, j, i] * Y[p, i]
                    dx[b, s, j, p] = total.real
