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

__all__ = ["bolus_factor", "step_factor", "bolus_divided_difference", "step_divided_difference"]

# Below this separation two nodes are treated as close and a midpoint Taylor series is used.
_CLOSE = 1e-4
_SERIES_RADIUS = 2.0
_SERIES_TERMS = 30


def e1(z: np.ndarray) -> np.ndarray:
    """``(exp(z) - 1) / z`` with the limit 1 at ``z = 0``."""
    z = np.asarray(z)
    zero = z == 0
    return np.where(zero, 1.0, np.expm1(z) / np.where(zero, 1.0, z))


def _moments(z: np.ndarray, order: int) -> list[np.ndarray]:
    """``M_k(z) = int_0^1 s^k exp(z s) ds`` for ``k = 0..order``, accurate for every z."""
    z = np.asarray(z)
    small = np.abs(z) < _SERIES_RADIUS
    result = []
    # series for small |z|: sum_j z^j / (j! (k + j + 1))
    zs = np.where(small, z, 0)
    series = []
    for k in range(order + 1):
        term = np.ones_like(zs)
        total = term / (k + 1)
        for j in range(1, _SERIES_TERMS):
            term = term * zs / j
            total = total + term / (k + j + 1)
        series.append(total)
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


def bolus_factor(lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``exp(lam tau)`` for ``tau >= 0`` and 0 before the dose (``tau < 0``)."""
    lt = lam * np.maximum(tau, 0.0)
    return np.where(tau >= 0, np.exp(lt), 0.0)


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
    return np.exp(big) * e1(small - big)


def _second_divided_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``exp[0, a, b] = (E1(a) - E1(b)) / (a - b)``, with ``E1'`` at ``a = b``."""
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    close = np.abs(a - b) <= _CLOSE * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        far = (e1(a) - e1(b)) / np.where(close, 1.0, a - b)
    # midpoint Taylor series: D = E1'(m) + E1'''(m) h^2 / 6 + E1^(5)(m) h^4 / 120
    m = np.where(close, 0.5 * (a + b), 0.0)
    h = np.where(close, 0.5 * (a - b), 0.0)
    moments = _moments(m, 5)
    near = moments[1] + moments[3] * h**2 / 6.0 + moments[5] * h**4 / 120.0
    return np.where(close, near, far)


def bolus_divided_difference(lam_i: np.ndarray, lam_k: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Divided difference of ``exp(lam tau)`` at ``lam_i, lam_k``; 0 for ``tau < 0``.

    Equal to ``tau exp[lam_i tau, lam_k tau]``.
    """
    t = np.maximum(tau, 0.0)
    return np.where(tau >= 0, t * _first_divided_difference(lam_i * t, lam_k * t), 0.0)


def step_divided_difference(lam_i: np.ndarray, lam_k: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Divided difference of ``int_0^tau exp(lam s) ds`` at ``lam_i, lam_k``; 0 for ``tau < 0``.

    Equal to ``tau**2 exp[0, lam_i tau, lam_k tau]``.
    """
    t = np.maximum(tau, 0.0)
    return t * t * _second_divided_difference(lam_i * t, lam_k * t)

