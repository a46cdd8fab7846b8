"""The first time a modal sum falls to half its value at 0, member by member (numba).

For each member ``b`` of a batch, ``y(t) = Re sum_i w_i exp(lam_i t)`` is evaluated on a
log-spaced grid from ``1e-4`` of the fastest to 100 of the slowest time constant of its ``span``
rates, up to the first grid time at which ``y`` is not above ``y(0) / 2``. From the point where
``log y``, linear between the two bracketing grid times, meets ``log(y(0) / 2)``, safeguarded
Newton steps on ``log y(t)`` (bisection of the bracket where a step would leave it) run until a
step is at most ``1e-13`` of ``t``. Only modes of nonzero weight are summed (in block-triangular
cores most weights of an output are exactly zero: modes of blocks its compartments do not
reach). A member whose modes and weights are then all real is evaluated in real arithmetic;
when, moreover, no mode is above 0 and no weight below 0, ``y`` cannot rise and the grid is
bisected (7 of its 64 times evaluated) instead of scanned.

The search of :func:`exopk.engine.summaries.halving_time`. As whole-array numpy operations it
cost about 65 us for the two parameter sets of one posterior evaluation of ``mouse_iv_mps``
(some 40 operations on arrays of a few elements; 8 us here) and 1.6 us per set for the 8,000
core sets of a posterior predictive of ``iv_vs_intranasal``, where every member took Newton
steps until the slowest had converged (0.74 us here, where each stops at its own and sums only
its modes of nonzero weight).
"""

from __future__ import annotations

import math

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["FOUND", "NOT_FINITE", "NOT_POSITIVE", "NO_DECAY", "NEVER_FALLS", "halving_times"]

FOUND, NOT_FINITE, NOT_POSITIVE, NO_DECAY, NEVER_FALLS = 0, 1, 2, 3, 4   # a member's status


@compile_kernel
def _value_and_slope(lam, w, m, t, real):
    """``y(t)`` and ``y'(t)`` of the first ``m`` modes and weights, in real arithmetic where
    ``real``."""
    y = 0.0
    slope = 0.0
    if real:
        for i in range(m):
            term = w[i].real * math.exp(lam[i].real * t)
            y += term
            slope += term * lam[i].real
    else:
        for i in range(m):
            term = w[i] * np.exp(lam[i] * t)
            y += term.real
            slope += (term * lam[i]).real
    return y, slope


@compile_kernel
def _never_rises(lam, w, m):
    """Whether the first ``m`` modes and weights (real) have no mode above 0 and no weight below
    0, so that their sum cannot rise."""
    for i in range(m):
        if lam[i].real > 0.0 or w[i].real < 0.0:
            return False
    return True


@compile_kernel
def _scan_grid(lam, w, m, start, width, fractions, half, y_start, real):
    """The first grid time at which the modal sum is not above ``half``, scanning the grid:
    ``(found, low, y(low), high, y(high))`` with ``low`` the grid time before (or 0)."""
    low, y_low, high, y_high = 0.0, y_start, 0.0, 0.0
    for k in range(fractions.shape[0]):
        high = math.exp(start + width * fractions[k])
        y_high = _value_and_slope(lam, w, m, high, real)[0]
        if not y_high > half:
            return True, low, y_low, high, y_high
        low, y_low = high, y_high
    return False, low, y_low, high, y_high


@compile_kernel
def _bisect_grid(lam, w, m, start, width, fractions, half, y_start):
    """:func:`_scan_grid` of a modal sum that cannot rise, by bisection of the grid (the first
    fall is then the only grid index where ``y`` goes from above ``half`` to not above it)."""
    last = fractions.shape[0] - 1
    low_k, y_low, high_k = -1, y_start, last           # index -1: time 0
    y_high = _value_and_slope(lam, w, m, math.exp(start + width * fractions[last]), True)[0]
    if y_high > half:
        return False, 0.0, y_low, 0.0, y_high
    while high_k - low_k > 1:
        middle = (low_k + high_k) // 2
        y_middle = _value_and_slope(lam, w, m, math.exp(start + width * fractions[middle]),
                                    True)[0]
        if y_middle > half:
            low_k, y_low = middle, y_middle
        else:
            high_k, y_high = middle, y_middle
    low = 0.0 if low_k < 0 else math.exp(start + width * fractions[low_k])
    return True, low, y_low, math.exp(start + width * fractions[high_k]), y_high


@compile_kernel
def halving_times(lam, w, speed, fractions, times, status):
    """Fill ``times[b]`` with the first time member ``b``'s modal sum falls to half its value at
    0, and ``status[b]`` with :data:`FOUND` or why there is none.

    Parameters
    ----------
    lam, w : ndarray (batch, n)
        Modes and weights, both real or both complex.
    speed : ndarray (batch, k)
        ``|Re|`` of the rates whose time scales the grid spans.
    fractions : ndarray (K,)
        Grid positions between ``log`` of the shortest and the longest time, from 0 to 1.
    times : ndarray (batch,)
        Output.
    status : ndarray of int8 (batch,)
        Output: :data:`FOUND`; :data:`NOT_FINITE` (a mode, weight or rate is NaN or infinite);
        :data:`NOT_POSITIVE` (``y(0) <= 0``); :data:`NO_DECAY` (no rate above 0);
        :data:`NEVER_FALLS` (not at half by the end of the grid).
    """
    batch, n = lam.shape
    lam_b = np.empty(n, lam.dtype)           # the member's modes of nonzero weight
    w_b = np.empty(n, w.dtype)
    for b in range(batch):
        times[b] = np.nan
        finite = True
        for i in range(n):
            finite = finite and np.isfinite(lam[b, i]) and np.isfinite(w[b, i])
        for i in range(speed.shape[1]):
            finite = finite and np.isfinite(speed[b, i])
        if not finite:
            status[b] = NOT_FINITE
            continue
        real = True
        m = 0
        y_start = 0.0
        for i in range(n):
            y_start += w[b, i].real
            if w[b, i] != 0.0:
                lam_b[m], w_b[m] = lam[b, i], w[b, i]
                m += 1
                if lam[b, i].imag != 0.0 or w[b, i].imag != 0.0:
                    real = False
        if not y_start > 0.0:
            status[b] = NOT_POSITIVE
            continue
        fastest = 0.0
        for i in range(speed.shape[1]):
            fastest = max(fastest, speed[b, i])
        slowest = np.inf
        for i in range(speed.shape[1]):
            if speed[b, i] > 1e-12 * fastest:
                slowest = min(slowest, speed[b, i])
        if not slowest < np.inf:
            status[b] = NO_DECAY
            continue
        start = math.log(1e-4 / fastest)
        width = math.log(100.0 / slowest) - start
        half = 0.5 * y_start
        if real and _never_rises(lam_b, w_b, m):
            found, low, y_low, high, y_high = _bisect_grid(lam_b, w_b, m, start, width,
                                                           fractions, half, y_start)
        else:
            found, low, y_low, high, y_high = _scan_grid(lam_b, w_b, m, start, width,
                                                         fractions, half, y_start, real)
        if not found:
            status[b] = NEVER_FALLS
            continue
        status[b] = FOUND
        log_half = math.log(half)
        if y_high > 0.0:
            log_low, log_high = math.log(y_low), math.log(y_high)
            share = (log_low - log_half) / (log_low - log_high) if log_low > log_high else \
                log_low - log_half
            t = low + min(max(share, 0.0), 1.0) * (high - low)
        else:
            t = 0.5 * (low + high)
        for _ in range(100):
            y, slope = _value_and_slope(lam_b, w_b, m, t, real)
            if y > 0.0 and slope < 0.0:
                g = math.log(y) - log_half
                step = g * y / slope                               # Newton on log y(t)
                if g > 0.0:
                    low = t
                else:
                    high = t
                newton = t - step
                if low <= newton <= high:
                    t = newton
                    if abs(step) <= 1e-13 * t:
                        break
                    continue
            elif y > 0.0 and math.log(y) > log_half:
                low = t
            else:
                high = t
            t = 0.5 * (low + high)
        times[b] = t
