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

__all__ = ["one_norm", "one_norm_conditions"]


@compile_kernel
def one_norm(M):
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
def one_norm_conditions(V, V_inv, out):
    """Write ``||V_b||_1 ||V_inv_b||_1`` of each member ``b`` of the stacks ``V`` and ``V_inv``
    (batch, n, n), real or complex, into ``out`` (batch,); infinite where it is not finite."""
    for b in range(V.shape[0]):
        condition = one_norm(V[b]) * one_norm(V_inv[b])
        out[b] = condition if np.isfinite(condition) else np.inf
