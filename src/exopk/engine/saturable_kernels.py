"""Compiled right-hand sides of the saturable (Michaelis-Menten) ODE system and its forward
sensitivities, and its banded Jacobian (numba).

LSODA calls the right-hand side some 1,500 times for one solve of a 12-compartment model and
2,600 times with 23 sensitivities; as numpy expressions each call costs 20-90 us in small-array
overhead, as compiled loops a few microseconds. The maths is that of
:class:`exopk.engine.nonlinear._SaturableFluxes`: ``g = c / (km + c)`` for ``c >= 0``,
continued below 0 by its tangent ``c / km``; the flux of transfer ``j`` is ``vmax_j g_j``.
Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

from exopk.engine.kernels import compile_kernel

__all__ = ["state_rhs", "sensitivity_rhs", "banded_jacobian"]


@compile_kernel
def _quotients(x, sources, km, inverse_km, inverse_volume, j):
    """``c``, ``max(c, 0)``, ``km + max(c, 0)`` and ``g`` of transfer ``j``."""
    c = x[sources[j]] * inverse_volume[j]
    positive = max(c, 0.0)
    denominator = km[j] + positive
    return c, positive, denominator, positive / denominator + (c - positive) * inverse_km[j]


@compile_kernel
def _state_jacobian(x, A, incidence_over_volume, sources, km, inverse_km, inverse_volume, J):
    """Write the state Jacobian ``d(dx/dt)/dx = A +`` the saturable part at ``x`` into ``J``."""
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            J[i, j] = A[i, j]
    for j in range(sources.shape[0]):
        denominator = _quotients(x, sources, km, inverse_km, inverse_volume, j)[2]
        slope = km[j] / (denominator * denominator)
        for i in range(n):
            J[i, sources[j]] += incidence_over_volume[i, j] * slope


@compile_kernel
def state_rhs(x, A, w, incidence_vmax, sources, km, inverse_km, inverse_volume, out):
    """Write ``A x + incidence_vmax g(x) + w`` into ``out`` (n,). Nothing is returned: handing
    an array back to Python costs as much as the computation."""
    n = x.shape[0]
    for i in range(n):
        total = w[i]
        for j in range(n):
            total += A[i, j] * x[j]
        out[i] = total
    for j in range(sources.shape[0]):
        g = _quotients(x, sources, km, inverse_km, inverse_volume, j)[3]
        for i in range(n):
            out[i] += incidence_vmax[i, j] * g


@compile_kernel
def sensitivity_rhs(z, A, w, dw, direct, incidence_over_volume, vmax, sources, km, inverse_km,
                    inverse_volume, J, vector, out):
    """Write ``[dx/dt, dS/dt]`` for ``z = [x, S]`` (``S`` as P rows of n) into ``out``.

    ``direct`` (n (1 + P), n + 3k) applied to ``[x, g, vmax g_km, -vmax g_c c / volume]`` gives
    every term free of ``S``; ``S`` enters as ``S J^T`` with the state Jacobian ``J = A +`` the
    saturable part. ``J`` and ``vector`` are work arrays.
    """
    n = A.shape[0]
    k = sources.shape[0]
    P = dw.shape[0]
    _state_jacobian(z, A, incidence_over_volume, sources, km, inverse_km, inverse_volume, J)
    for i in range(n):
        vector[i] = z[i]
    for j in range(k):
        c, positive, denominator, g = _quotients(z, sources, km, inverse_km, inverse_volume, j)
        inverse_square = 1.0 / (denominator * denominator)
        vector[n + j] = g
        vector[n + k + j] = -vmax[j] * (positive * inverse_square
                                        + (c - positive) * inverse_km[j] * inverse_km[j])
        vector[n + 2 * k + j] = -vmax[j] * km[j] * inverse_square * c * inverse_volume[j]
    m = vector.shape[0]
    for row in range(n * (1 + P)):
        total = 0.0
        for a in range(m):
            total += direct[row, a] * vector[a]
        out[row] = total
    for i in range(n):
        out[i] += w[i]
    for p in range(P):
        base = n * (1 + p)
        for i in range(n):
            total = dw[p, i]
            for j in range(n):
                total += J[i, j] * z[base + j]
            out[base + i] += total


@compile_kernel
def banded_jacobian(x, A, incidence_over_volume, sources, km, inverse_km, inverse_volume, J,
                    blocks, packed):
    """Write the state Jacobian at ``x`` (into the work array ``J`` first) into every one of
    ``blocks`` diagonal blocks of ``packed``, LSODA's banded storage of half-bandwidth
    ``n - 1``: ``packed[n - 1 + i - j, b n + j] = J[i, j]``. Entries outside the blocks' bands
    are left as they are (zero)."""
    _state_jacobian(x, A, incidence_over_volume, sources, km, inverse_km, inverse_volume, J)
    n = A.shape[0]
    for b in range(blocks):
        for i in range(n):
            for j in range(n):
                packed[n - 1 + i - j, b * n + j] = J[i, j]
