"""Areas and first moments of a bolus response, with parameter derivatives (numba).

On the draining compartments ``N``, ``int x dt = -A_NN^-1 b`` and ``int t x dt = A_NN^-2 b``;
``d(-A^-1 b) = -A^-1 (dA area + db)`` and, for the first moment ``m = -A^-1 area``,
``dm = -A^-1 (dA m + d area)``. ``(dA_p v)_N`` is taken transfer by transfer: transfer ``j``
moves ``(d rate_j / dp) v[source_j]`` from its source to its target (sinks, which receive but
never send, are not in ``N``). For the few parameter sets of one posterior evaluation these are
some 15 numpy operations on small arrays; here one loop per member.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["bolus_moments"]


@compile_kernel
def _apply(A_inv, member, v, out, scale):
    """``out = scale * A_inv[member] @ v`` for a vector (N,) or a matrix (N, P)."""
    N = A_inv.shape[1]
    if v.ndim == 1:
        for i in range(N):
            total = 0.0
            for k in range(N):
                total += A_inv[member, i, k] * v[k]
            out[i] = scale * total
    else:
        for i in range(N):
            for p in range(v.shape[1]):
                total = 0.0
                for k in range(N):
                    total += A_inv[member, i, k] * v[k, p]
                out[i, p] = scale * total


@compile_kernel
def _add_derivative_times(rate_jacobian, member, sources, targets, v, out):
    """``out += (dA_p v)_N`` for every parameter ``p`` (columns of ``out``)."""
    for j in range(rate_jacobian.shape[1]):
        for p in range(rate_jacobian.shape[2]):
            flux = rate_jacobian[member, j, p] * v[sources[j]]
            out[sources[j], p] -= flux
            if targets[j] >= 0:
                out[targets[j], p] += flux


@compile_kernel
def bolus_moments(A, b, db, rate_jacobian, sources, targets, N, area, d_area, moment,
                  d_moment):
    """Fill the areas and first moments (and derivatives) of each member on ``N``.

    Parameters
    ----------
    A : ndarray (batch, len(N), len(N))
        ``A_NN``; a singular one raises :class:`numpy.linalg.LinAlgError`.
    b, db : ndarray (batch, len(N)), (batch, len(N), P)
        The bolus on ``N`` and its parameter derivative.
    rate_jacobian : ndarray (batch, n_transfers, P)
    sources, targets : ndarray of int (n_transfers,)
        Each transfer's compartments as positions in ``N``; -1 for a target that is a sink.
    N : ndarray of int
        The draining compartments.
    area, moment : ndarray (batch, n)
        Output on ``N``: ``-A^-1 b`` and ``A^-2 b`` (the sinks' entries are left as they are).
    d_area, d_moment : ndarray (batch, n, P)
        Output on ``N``: their parameter derivatives.
    """
    batch, size, _ = A.shape
    inverse = np.empty((1, size, size))
    area_N, moment_N = np.empty(size), np.empty(size)
    parameters = rate_jacobian.shape[2]
    work, d_area_N, d_moment_N = np.empty((3, size, parameters))
    for member in range(batch):
        inverse[0] = np.linalg.inv(A[member])
        _apply(inverse, 0, b[member], area_N, -1.0)
        _apply(inverse, 0, area_N, moment_N, -1.0)
        work[:, :] = db[member]
        _add_derivative_times(rate_jacobian, member, sources, targets, area_N, work)
        _apply(inverse, 0, work, d_area_N, -1.0)
        work[:, :] = d_area_N
        _add_derivative_times(rate_jacobian, member, sources, targets, moment_N, work)
        _apply(inverse, 0, work, d_moment_N, -1.0)
        for i in range(size):
            area[member, N[i]] = area_N[i]
            moment[member, N[i]] = moment_N[i]
            d_area[member, N[i]] = d_area_N[i]
            d_moment[member, N[i]] = d_moment_N[i]
