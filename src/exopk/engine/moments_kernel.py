"""Areas and first moments of a bolus response, with parameter derivatives (numba).

On the draining compartments ``N``, ``int x dt = -A_NN^-1 b`` and ``int t x dt = A_NN^-2 b``;
``d(-A^-1 b) = -A^-1 (dA area + db)`` and, for the first moment ``m = -A^-1 area``,
``dm = -A^-1 (dA m + d area)``. ``(dA_p v)_N`` is taken transfer by transfer: transfer ``j``
moves ``(d rate_j / dp) v[source_j]`` from its source to its target (sinks, which receive but
never send, are not in ``N``). For the few parameter sets of one posterior evaluation these are
some 15 numpy operations on small arrays; here one loop per member.

The structured path's values-only moments (:func:`exopk.engine.structured.forward_moments`)
solve with the core block in its block-triangular order and give each leaf its moments from the
core's (:func:`core_and_leaf_moments`); in numpy that was a stacked solve and some ten array
operations per block of the core, for batches of thousands of parameter sets.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel
from exopk.engine.lu_kernel import factor_blocks, solve_factored

__all__ = ["bolus_moments", "core_and_leaf_moments"]


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


@compile_kernel
def core_and_leaf_moments(A_flat, n, vector, core, starts, fed, leaves, area, moment):
    """Areas and first moments of the core and the leaves of each member, values only
    (:func:`exopk.engine.structured.forward_moments`).

    On the core, ``-A_CC^-1 b_C`` and ``A_CC^-2 b_C`` by block forward substitution in the
    core's block order; a leaf ``l`` then has area ``-(b_l + A_lC area_C) / a_l`` and first
    moment ``-(area_l + A_lC moment_C) / a_l``.

    Parameters
    ----------
    A_flat : ndarray (batch, n * n)
        The system matrices, row by row.
    n : int
    vector : ndarray (batch, n)
        The bolus.
    core : ndarray of int
        The core compartments in block order.
    starts, fed : ndarray
        Where each block of the core starts (in block order, and its size), and whether it
        receives from an earlier block.
    leaves : ndarray of int
    area, moment : ndarray (batch, n)
        Output at the core and the leaves (other entries are left as they are).

    Returns
    -------
    int
        The first member with an exactly singular core block, or -1.
    """
    m = core.shape[0]
    P = np.empty((m, m))
    area_C = np.empty(m)
    moment_C = np.empty(m)
    pivot = np.empty(m, dtype=np.int64)
    area_column, moment_column = area_C.reshape((m, 1)), moment_C.reshape((m, 1))   # views
    for b in range(A_flat.shape[0]):
        for i in range(m):
            for j in range(m):
                P[i, j] = A_flat[b, core[i] * n + core[j]]
            area_C[i] = vector[b, core[i]]
        if not factor_blocks(P, starts, pivot):
            return b
        solve_factored(P, starts, fed, pivot, area_column)
        for i in range(m):
            area_C[i] = -area_C[i]
            moment_C[i] = area_C[i]
        solve_factored(P, starts, fed, pivot, moment_column)
        for i in range(m):
            moment_C[i] = -moment_C[i]
            area[b, core[i]] = area_C[i]
            moment[b, core[i]] = moment_C[i]
        for leaf in leaves:
            into_area = 0.0
            into_moment = 0.0
            for i in range(m):
                rate = A_flat[b, leaf * n + core[i]]
                into_area += rate * area_C[i]
                into_moment += rate * moment_C[i]
            a_l = A_flat[b, leaf * n + leaf]
            area[b, leaf] = -(vector[b, leaf] + into_area) / a_l
            moment[b, leaf] = -(area[b, leaf] + into_moment) / a_l
    return -1
