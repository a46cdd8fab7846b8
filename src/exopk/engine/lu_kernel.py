"""LU factorisation with partial pivoting of the diagonal blocks of a block lower-triangular
matrix, and solves by block forward substitution, for one small matrix at a time in compiled
code (numba); real or complex.

Shared by the structured moments (:func:`exopk.engine.moments_kernel.core_and_leaf_moments`,
the core in its block order) and the inverse of small eigenvector matrices
(:mod:`exopk.engine.small_eigen_kernel`, one block). A matrix of one block is an ordinary LU.
Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

from exopk.engine.kernels import compile_kernel

__all__ = ["factor_blocks", "solve_factored"]


@compile_kernel
def factor_blocks(P, starts, pivot):
    """LU factorisation with partial pivoting of each diagonal block of ``P`` (m, m), in place
    (rows exchanged within the block's columns; ``pivot`` holds each exchange, in block
    positions). False where a diagonal block is exactly singular."""
    for k in range(starts.shape[0] - 1):
        s0, s1 = starts[k], starts[k + 1]
        for c in range(s0, s1):
            best = c
            for i in range(c + 1, s1):
                if abs(P[i, c]) > abs(P[best, c]):
                    best = i
            pivot[c] = best
            if P[best, c] == 0.0:
                return False
            if best != c:
                for j in range(s0, s1):
                    P[c, j], P[best, j] = P[best, j], P[c, j]
            for i in range(c + 1, s1):
                P[i, c] = P[i, c] / P[c, c]
                for j in range(c + 1, s1):
                    P[i, j] -= P[i, c] * P[c, j]
    return True


@compile_kernel
def solve_factored(P, starts, fed, pivot, X):
    """``X <- P^-1 X`` for ``X`` (m, r), column by column, by block forward substitution, with
    the diagonal blocks of ``P`` factored by :func:`factor_blocks` (the blocks below the
    diagonal as they were)."""
    for r in range(X.shape[1]):
        for k in range(starts.shape[0] - 1):
            s0, s1 = starts[k], starts[k + 1]
            if fed[k]:
                for i in range(s0, s1):
                    total = 0 * X[i, r]
                    for j in range(s0):
                        total += P[i, j] * X[j, r]
                    X[i, r] -= total
            for c in range(s0, s1):
                if pivot[c] != c:
                    X[c, r], X[pivot[c], r] = X[pivot[c], r], X[c, r]
            for i in range(s0, s1):
                total = X[i, r]
                for j in range(s0, i):
                    total -= P[i, j] * X[j, r]
                X[i, r] = total
            for i in range(s1 - 1, s0 - 1, -1):
                total = X[i, r]
                for j in range(i + 1, s1):
                    total -= P[i, j] * X[j, r]
                X[i, r] = total / P[i, i]
