"""Block substitution for the eigenvectors of block lower-triangular matrices, member by member
in compiled code (numba).

The maths of :mod:`exopk.engine.triangular`: with the diagonal blocks decomposed, block row
``I`` of ``V`` for the eigenvalues of every earlier block is ``V_I diag(1 / (lam - mu_I)) V_I^-1
sum_J A_IJ V_J``, block column ``J`` of ``V^-1`` for every later block is ``(sum_I w_I A_IJ)
V_J diag(1 / (lam - mu_J)) V_J^-1``, a quotient being exactly zero where its numerator is (an
entry of a block that the eigenvalue's block does not reach). Columns are scaled to unit 2-norm.
In numpy each step is a batched product of small matrices with its own temporaries, and
blocks of one compartment and blocks of several go through the same products; here each
member is done in one pass that skips the products with a block of one. A zero difference
(a defective matrix) gives NaN vectors and an infinite condition number.
Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.condition_kernel import one_norm_condition
from exopk.engine.kernels import compile_kernel

__all__ = ["substitute"]


@compile_kernel
def _quotient(numerator, difference):
    """``numerator / difference``, exactly zero where the numerator is, NaN for a zero
    difference."""
    if numerator == 0:
        return numerator * 0
    if difference == 0:
        return numerator * np.nan
    return numerator / difference


@compile_kernel
def substitute(permuted, lam, diagonal_V, diagonal_W, starts, fed, feeding, members, back,
               V, W, condition):
    """Unit right eigenvectors, their inverse and the 1-norm condition number of members of a
    batch of block lower-triangular matrices.

    Parameters
    ----------
    permuted : ndarray (batch, n, n)
        The matrices in block order.
    lam : ndarray (batch, n)
        Their eigenvalues, block by block (each block's own, in block order).
    diagonal_V, diagonal_W : ndarray (batch, n, n)
        Block diagonal: each block's eigenvectors and their inverse, in the arithmetic of the
        result (real or complex).
    starts : ndarray of int (n_blocks + 1,)
        Where each block starts in block order (and ``n``).
    fed, feeding : ndarray of bool (n_blocks,)
        Blocks that receive from an earlier block; that send to a later one.
    members : ndarray of int
        The members to do.
    back : ndarray of int (n,)
        Position in block order of each compartment.
    V, W : ndarray (batch, n, n)
        Out, at the rows ``members``: the eigenvectors (rows by compartment, columns by
        eigenvalue) and their inverse (rows by eigenvalue, columns by compartment); complex
        arrays take real results with zero imaginary parts.
    condition : ndarray (batch,)
        Out: ``||V||_1 ||V^-1||_1`` at ``members``.
    """
    n = permuted.shape[1]
    n_blocks = starts.shape[0] - 1
    Vb = np.zeros_like(diagonal_V[0])
    Wb = np.zeros_like(diagonal_V[0])
    total = np.zeros_like(diagonal_V[0])
    y = np.zeros_like(diagonal_V[0])
    scaled_V = np.zeros_like(diagonal_V[0])
    scaled_W = np.zeros_like(diagonal_V[0])
    norms = np.empty(n)
    zero = np.zeros_like(diagonal_V[0, 0, :1])[0]
    for b in members:
        A = permuted[b]
        Vb[:, :] = 0
        Wb[:, :] = 0
        for k in range(n_blocks):
            for i in range(starts[k], starts[k + 1]):
                for j in range(starts[k], starts[k + 1]):
                    Vb[i, j] = diagonal_V[b, i, j]
                    Wb[i, j] = diagonal_W[b, i, j]
        # block rows of V, upstream first: rows of block k for the eigenvalues before it
        for k in range(n_blocks):
            if not fed[k]:
                continue
            s0, s1 = starts[k], starts[k + 1]
            for i in range(s0, s1):
                for m in range(s0):
                    acc = zero
                    for j in range(s0):
                        acc += A[i, j] * Vb[j, m]
                    total[i, m] = acc
            if s1 - s0 == 1:
                for m in range(s0):
                    Vb[s0, m] = _quotient(total[s0, m], lam[b, m] - lam[b, s0])
                continue
            for q in range(s0, s1):                  # y = V_k^-1 total, divided
                for m in range(s0):
                    acc = zero
                    for i in range(s0, s1):
                        acc += Wb[q, i] * total[i, m]
                    y[q, m] = _quotient(acc, lam[b, m] - lam[b, q])
            for i in range(s0, s1):                  # V rows = V_k y
                for m in range(s0):
                    acc = zero
                    for q in range(s0, s1):
                        acc += Vb[i, q] * y[q, m]
                    Vb[i, m] = acc
        # block columns of W, downstream first: columns of block k for the eigenvalues after it
        for k in range(n_blocks - 1, -1, -1):
            if not feeding[k]:
                continue
            s0, s1 = starts[k], starts[k + 1]
            for m in range(s1, n):
                for q in range(s0, s1):
                    acc = zero
                    for j in range(s1, n):
                        acc += Wb[m, j] * A[j, q]
                    total[m, q] = acc
            if s1 - s0 == 1:
                for m in range(s1, n):
                    Wb[m, s0] = _quotient(total[m, s0], lam[b, m] - lam[b, s0])
                continue
            for m in range(s1, n):                   # y = total V_k, divided
                for q in range(s0, s1):
                    acc = zero
                    for i in range(s0, s1):
                        acc += total[m, i] * Vb[i, q]
                    y[m, q] = _quotient(acc, lam[b, m] - lam[b, q])
            for m in range(s1, n):                   # W columns = y V_k^-1
                for q in range(s0, s1):
                    acc = zero
                    for i in range(s0, s1):
                        acc += y[m, i] * Wb[i, q]
                    Wb[m, q] = acc
        for j in range(n):
            squares = 0.0
            for i in range(n):
                squares += Vb[i, j].real * Vb[i, j].real + Vb[i, j].imag * Vb[i, j].imag
            norms[j] = np.sqrt(squares)
        for i in range(n):
            for j in range(n):
                scaled_V[i, j] = Vb[back[i], j] / norms[j]
                scaled_W[i, j] = Wb[i, back[j]] * norms[i]
        # in the arithmetic of the substitution: a real member's condition number needs no
        # complex absolute values (the same bits as from the complex result)
        condition[b] = one_norm_condition(scaled_V, scaled_W)
        for i in range(n):
            for j in range(n):
                V[b, i, j] = scaled_V[i, j]
                W[b, i, j] = scaled_W[i, j]
