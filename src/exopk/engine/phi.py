"""Exponential functions of eigenvalues and their divided differences, evaluated stably.

With ``A = V diag(lam) V^-1`` the linear system x' = A x + u has

* bolus response      ``exp(A t) b = V diag(exp(lam t)) V^-1 b``;
* unit step response  ``int_0^t exp(A s) ds u = V diag(t E1(lam t)) V^-1 u``,
  with ``E1(z) = (exp(z) - 1) / z`` (``E1(0) = 1``: sinks, lam = 0, accumulate ``t u``).

Their derivatives along a direction ``dA`` follow the Daleckii-Krein formula
``d f(A) = V ((V^-1 dA V) o F) V^-1`` where ``F[i, k]`` is the divided difference of ``f`` at
``lam_i, lam_k``. For the bolus this is ``t exp[a, b]`` and for the step ``t**2 exp[0, a, b]``
(``a = lam_i t``, ``b = lam_k t``; ``exp[...]`` the divided differences of ``exp``).
Both are computed here without cancellation for equal, close and far-apart eigenvalues,
including complex ones, and without overflow for large negative ``lam t``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bolus_factor", "step_factor", "bolus_divided_difference", "bolus_divided_differences",
           "step_divided_difference", "integrated_factor", "integrated_divided_difference",
           "phi2"]

# Below this separation two nodes are treated as close and a midpoint Taylor series is used.
_CLOSE = 1e-4
_SERIES_RADIUS = 2.0
_SERIES_TERMS = 30
_UNDERFLOW = -700.0     # exp(-700) = 9.9e-305; numpy's fast exp ends between -705 and -708


def e1(z: np.ndarray) -> np.ndarray:
    """``(exp(z) - 1) / z`` with the limit 1 at ``z = 0``."""
    z = np.asarray(z)
    zero = z == 0
    with np.errstate(invalid="ignore"):
        result = np.asarray(np.expm1(z) / z)
    result[zero] = 1.0
    return result


def _moments(z: np.ndarray, order: int) -> list[np.ndarray]:
    """``M_k(z) = int_0^1 s^k exp(z s) ds`` for ``k = 0..order``, accurate for every z."""
    z = np.asarray(z)
    small = np.abs(z) < _SERIES_RADIUS
    result = []
    # series for small |z|: sum_j z^j / (j! (k + j + 1))
    zs = np.where(small, z, 0)
    # every order at once: totals[k] = sum_j term_j / (k + j + 1), term_j = z^j / j!
    k = np.arange(order + 1).reshape((-1,) + (1,) * zs.ndim)
    term = np.ones_like(zs)
    series = term / (k + 1)
    for j in range(1, _SERIES_TERMS):
        term = term * zs / j
        series = series + term / (k + j + 1)
    # recurrence for larger |z|: M_k = (exp(z) - k M_{k-1}) / z, stable for |z| > k
    zl = np.where(small, 1.0, z)
    with np.errstate(over="ignore", invalid="ignore"):
        previous = np.expm1(zl) / zl
        ez = np.exp(zl)
        for k in range(order + 1):
            if k > 0:
                previous = (ez - k * previous) / zl
            result.append(np.where(small, series[k], previous))
    return result


def exp_flushed(z: np.ndarray) -> np.ndarray:
    """``exp(z)``, with 0 where the real part of ``z`` is below ``_UNDERFLOW``.

    The exponential of such ``z`` is below 1e-304: lost in any sum with a number above 1e-288,
    but numpy computes it 7 to 30 times slower than a larger result (its fast path ends near
    -707), and ``lam t`` of a fast mode at a late time lands there often.
    """
    z = np.asarray(z)
    low = z.real < _UNDERFLOW
    if not low.any():
        return np.exp(z)
    if np.iscomplexobj(z):
        return np.where(low, 0.0, np.exp(np.where(low, _UNDERFLOW + 0j, z)))
    result = np.asarray(np.exp(np.maximum(z, _UNDERFLOW)))
    result[low] = 0.0
    return result


def bolus_factor(lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``exp(lam tau)`` for ``tau >= 0`` and 0 before the dose (``tau < 0``)."""
    factor = exp_flushed(lam * np.maximum(tau, 0.0))
    # no mask when the dose is before every time (the usual case)
    return factor if (tau >= 0).all() else np.where(tau >= 0, factor, 0.0)


def step_factor(lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``int_0^tau exp(lam s) ds`` for ``tau >= 0`` and 0 before the input starts."""
    t = np.maximum(tau, 0.0)
    return t * e1(lam * t)


def _first_divided_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``exp[a, b] = (exp(a) - exp(b)) / (a - b)``, limit ``exp(a)`` at ``a = b``."""
    # factor out the node with the larger real part so that expm1 of a non-positive number is taken
    a_first = a.real >= b.real
    big = np.where(a_first, a, b)
    small = np.where(a_first, b, a)
    return exp_flushed(big) * e1(small - big)


def _second_divided_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``exp[0, a, b] = (E1(a) - E1(b)) / (a - b)``, with ``E1'`` at ``a = b``."""
    # near a = b the midpoint Taylor series E1'(m) + E1'''(m) h^2 / 6 + E1^(5)(m) h^4 / 120,
    # with E1^(k) = M_k
    return _divided_difference_of(e1, (1, 3, 5), a, b)


def _divided_difference_of(g, orders, a, b):
    """``(g(a) - g(b)) / (a - b)`` for ``g(z) = int_0^1 w(s) exp(z s) ds``.

    For close nodes (separation below ``_CLOSE`` times their scale) the midpoint Taylor series
    ``g'(m) + g'''(m) h^2 / 6 + g^(5)(m) h^4 / 120`` is used; ``orders`` names those three odd
    derivatives as moments of :func:`_moments`: an index ``k`` for ``M_k`` or a pair ``(k, l)``
    for ``M_k - M_l``.
    """
    a, b = np.broadcast_arrays(a, b)
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    close = np.abs(a - b) <= _CLOSE * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        result = (g(a) - g(b)) / np.where(close, 1.0, a - b)
    if close.any():
        # the series only where it is used: its terms cost more than all the rest
        m = 0.5 * (a[close] + b[close])
        h = 0.5 * (a[close] - b[close])
        moments = _moments(m, max(np.max(k) for k in orders))
        derivative = [moments[k] if np.ndim(k) == 0 else moments[k[0]] - moments[k[1]]
                      for k in orders]
        result = np.array(result, dtype=np.result_type(result, m))
        result[close] = derivative[0] + derivative[1] * h**2 / 6.0 + derivative[2] * h**4 / 120.0
    return result


def phi2(z: np.ndarray) -> np.ndarray:
    """``exp[0, 0, z] = (exp(z) - 1 - z) / z**2 = int_0^1 (1 - s) exp(z s) ds`` (1/2 at 0)."""
    z = np.asarray(z)
    small = np.abs(z) < _SERIES_RADIUS
    out = np.empty(z.shape, dtype=np.result_type(z, float))
    large = z[~small]
    out[~small] = (np.expm1(large) - large) / (large * large)
    near = z[small]
    term = np.full(near.shape, 0.5, dtype=out.dtype)
    total = term.copy()
    for j in range(1, _SERIES_TERMS):
        term = term * near / (j + 2)
        total = total + term
    out[small] = total
    return out


def _third_divided_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``exp[0, 0, a, b] = (phi2(a) - phi2(b)) / (a - b)``; the odd derivatives of
    ``phi2(z) = int_0^1 (1 - s) exp(z s) ds`` are ``M_1 - M_2``, ``M_3 - M_4``, ``M_5 - M_6``."""
    return _divided_difference_of(phi2, ((1, 2), (3, 4), (5, 6)), a, b)


def bolus_divided_difference(lam_i: np.ndarray, lam_k: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Divided difference of ``exp(lam tau)`` at ``lam_i, lam_k``; 0 for ``tau < 0``.

    Equal to ``tau exp[lam_i tau, lam_k tau]``.
    """
    t = np.maximum(tau, 0.0)
    return np.where(tau >= 0, t * _first_divided_difference(lam_i * t, lam_k * t), 0.0)


def bolus_divided_differences(lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """:func:`bolus_divided_difference` between every pair of modes of each member at once.

    The same formulas in compiled code (:mod:`exopk.engine.phi_kernel`): ``exp`` is taken once
    per mode and time and shared by the pairs. Complex modes take every ordered pair: the order
    of two nodes with equal real parts (a conjugate pair) decides the rounding.

    Parameters
    ----------
    lam : ndarray (batch, n)
        Each member's modes.
    tau : ndarray (n_times,) or (batch, n_times)
        Times since the dose, shared by the batch or per member; the divided differences are 0
        at negative times (before it).

    Returns
    -------
    ndarray (batch, n, n_times, n)
        ``K[b, i, t, k]``: the divided difference of ``exp(lam tau_t)`` at ``lam_i, lam_k``.
    """
    from exopk.engine import phi_kernel            # numba: imported on first use

    batch, n = lam.shape
    times = np.ascontiguousarray(np.broadcast_to(np.asarray(tau, dtype=float),
                                                 (batch, np.shape(tau)[-1])))
    K = np.empty((batch, n, times.shape[1], n), dtype=lam.dtype)
    phi_kernel.bolus_divided_differences_at(np.ascontiguousarray(lam), times, K)
    return K


def step_divided_difference(lam_i: np.ndarray, lam_k: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Divided difference of ``int_0^tau exp(lam s) ds`` at ``lam_i, lam_k``; 0 for ``tau < 0``.

    Equal to ``tau**2 exp[0, lam_i tau, lam_k tau]``.
    """
    t = np.maximum(tau, 0.0)
    return t * t * _second_divided_difference(lam_i * t, lam_k * t)



def integrated_factor(order: int, lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``exp(lam tau)`` integrated ``order`` times from the dose on (0 before it).

    Order 0 is the bolus response, 1 the unit step response, 2 what a unit step delivers to a
    sink through a compartment of rate ``lam`` (``tau**2 exp[0, 0, lam tau]``).
    """
    if order == 0:
        return bolus_factor(lam, tau)
    if order == 1:
        return step_factor(lam, tau)
    if order == 2:
        t = np.maximum(tau, 0.0)
        return t * t * phi2(lam * t)
    raise ValueError(f"integration order {order} is not implemented (0, 1 or 2)")


def integrated_divided_difference(order: int, lam_i: np.ndarray, lam_k: np.ndarray,
                                  tau: np.ndarray) -> np.ndarray:
    """Divided difference at ``lam_i, lam_k`` of :func:`integrated_factor`; 0 before the dose.

    ``tau**(order + 1) exp[0 (order times), lam_i tau, lam_k tau]``: what a compartment of rate
    ``lam_k`` fed by a mode ``lam_i`` holds, integrated ``order`` times.
    """
    if order == 0:
        return bolus_divided_difference(lam_i, lam_k, tau)
    if order == 1:
        return step_divided_difference(lam_i, lam_k, tau)
    if order == 2:
        t = np.maximum(tau, 0.0)
        return t ** 3 * _third_divided_difference(lam_i * t, lam_k * t)
    raise ValueError(f"integration order {order} is not implemented (0, 1 or 2)")
