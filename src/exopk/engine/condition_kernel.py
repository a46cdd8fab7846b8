"""The 1-norm condition number ``||V||_1 ||V^-1||_1`` of a stack of eigenvector matrices, in
compiled code (numba).

numpy forms it from six array operations (absolute values, column sums and maxima of ``V`` and
``V^-1``, a product, a finiteness mask), each a pass over the batch with its own temporary and
a microsecond or more of call overhead: for one 18-compartment matrix, more than the inverse
itself. Here it is one pass per member. Column sums add the rows in order, as numpy's column
sums do; the absolute value of a complex entry is numba's, which can differ from numpy's in the
last bit (the number is only compared with a limit).
Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["one_norm_condition", "one_norm_conditions"]


@compile_kernel
def _one_norm(M):
    """Largest column sum of absolute values of ``M`` (NaN when any entry is NaN)."""
    n = M.shape[0]
    largest = 0.0
    for j in range(M.shape[1]):
        total = 0.0
        for i in range(n):
            total += abs(M[i, j])
        if total != total:          # NaN: so is the norm
            return total
        if total > largest:
            largest = total
    return largest


@compile_kernel
def one_norm_condition(V, V_inv):
    """``||V||_1 ||V_inv||_1`` of one matrix and its inverse (n, n), real or complex;
    infinite where it is not finite."""
    condition = _one_norm(V) * _one_norm(V_inv)
    return condition if np.isfinite(condition) else np.inf


@compile_kernel
def one_norm_conditions(V, V_inv, out):
    """Write :func:`one_norm_condition` of each member of the stacks ``V`` and ``V_inv``
    (batch, n, n) into ``out`` (batch,)."""
    for b in range(V.shape[0]):
        out[b] = one_norm_condition(V[b], V_inv[b])
