"""Eigendecompositions of one or many system matrices, with a condition number for each.

Shared by the dense solution path (:mod:`exopk.engine.linear`) and the structured one
(:mod:`exopk.engine.structured`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack

from exopk.errors import SimulationError

__all__ = ["condition_number", "eigendecompose", "eigen_groups", "small_eigendecompose",
           "stacked_eigendecompose", "MEMBER_BY_MEMBER"]

MEMBER_BY_MEMBER = 4
"""Batches up to this size are decomposed member by member (LAPACK ``geev`` and one inverse
each, without numpy's per-call checks); larger ones by numpy's stacked ``eig`` and ``inv``."""


def eigen_groups(lam, V, V_inv, good):
    """The well-conditioned members (``good``) in groups solved together: those with a real
    spectrum in real arithmetic, the others in complex arithmetic.

    A batch's stacked eigendecomposition is complex as soon as one member has a complex pair;
    the members with real eigenvalues have real eigenvectors and inverses (zero imaginary
    parts), so they are solved with the real parts at a quarter of the cost.

    Returns
    -------
    list of (members, lam, V, V_inv)
        ``members`` a boolean mask over the batch, or None for the whole batch.
    """
    if not good.any():
        return []
    if np.iscomplexobj(lam):
        real = ~lam.imag.any(axis=1)
        if real.any():
            real_members, complex_members = good & real, good & ~real
            groups = []
            if real_members.any():
                groups.append((real_members, lam.real[real_members], V.real[real_members],
                               V_inv.real[real_members]))
            if complex_members.any():
                groups.append((complex_members, lam[complex_members], V[complex_members],
                               V_inv[complex_members]))
            return groups
    if good.all():
        return [(None, lam, V, V_inv)]
    return [(good, lam[good], V[good], V_inv[good])]


def eigendecompose(A: np.ndarray):
    """Eigenvalues, right eigenvectors, their inverse and a condition number, for each member.

    Up to ``MEMBER_BY_MEMBER`` parameter sets (a posterior evaluation's few): member by member,
    LAPACK ``geev`` for the right eigenvectors only (complex pairs assembled) and one inverse
    (LAPACK ``getrf`` and ``getri``) of ``V``; when one member has a complex pair, every
    member is given in complex arithmetic. A larger batch: numpy's stacked ``eig`` and ``inv``
    (vectorised over the batch in compiled code; members with real eigenvectors inverted in
    real arithmetic). The condition number is the exact 1-norm one,
    ``||V||_1 ||V^-1||_1``, cheap once ``V^-1`` is at hand; singular or defective eigenvector
    matrices get an infinite condition number (and NaN inverses).

    Returns
    -------
    lam : ndarray (batch, n), real when every member's eigenvalues are real, else complex
    V, V_inv : ndarray (batch, n, n)
    condition : ndarray (batch,)
    """
    if A.shape[0] <= MEMBER_BY_MEMBER:
        members = [_geev(member) for member in A]
        dtype = np.result_type(*(lam for lam, _ in members))
        lam = np.array([lam for lam, _ in members], dtype=dtype)
        V = np.array([V for _, V in members], dtype=dtype)
        V_inv = np.array([_inverse(V_b) for V_b in V])
    else:
        lam, V, V_inv = stacked_eigendecompose(A)
    return lam, V, V_inv, condition_number(V, V_inv)


def stacked_eigendecompose(A: np.ndarray):
    """Eigenvalues, right eigenvectors and their inverse of each member of a batch, without a
    condition number: numpy's stacked ``eig`` and ``inv``, members with real eigenvectors
    inverted in real arithmetic (the batch part of :func:`eigendecompose`)."""
    lam, V = np.linalg.eig(A)
    if np.iscomplexobj(V):
        # members with real eigenvectors (zero imaginary parts) are inverted in real arithmetic
        real = ~V.imag.any(axis=(1, 2))
        V_inv = np.empty_like(V)
        if real.any():
            V_inv[real] = _stacked_inverse(V[real].real)
        if not real.all():
            V_inv[~real] = _stacked_inverse(V[~real])
    else:
        V_inv = _stacked_inverse(V)
    return lam, V, V_inv


def small_eigendecompose(A: np.ndarray):
    """The result of :func:`stacked_eigendecompose` for a batch of small matrices, from
    compiled EISPACK-style QR iterations (:mod:`exopk.engine.small_eigen_kernel`): about a
    quarter of LAPACK's time for 4 x 4 matrices, whose cost through numpy is mostly per call.

    The same eigenvalues and eigenvectors to rounding (in another order or with another phase);
    a member whose iteration does not converge, or that is not finite, is decomposed by LAPACK
    (which raises :class:`numpy.linalg.LinAlgError` for the latter).
    """
    from exopk.engine.small_eigen_kernel import eigendecompose_small   # numba: on first use

    batch, k = A.shape[0], A.shape[1]
    lam = np.empty((batch, k), dtype=complex)
    V, V_inv = np.empty((2, batch, k, k), dtype=complex)
    status = np.zeros(batch, dtype=np.int8)
    eigendecompose_small(np.ascontiguousarray(A, dtype=float), lam, V, V_inv, status)
    failed = np.flatnonzero(status)
    if failed.size:
        lam[failed], V[failed], V_inv[failed] = stacked_eigendecompose(A[failed])
    if lam.imag.any():
        return lam, V, V_inv
    return lam.real.copy(), V.real.copy(), V_inv.real.copy()


def condition_number(V, V_inv):
    """``||V||_1 ||V^-1||_1`` of each member (batch, n, n); infinite where not finite
    (:mod:`exopk.engine.condition_kernel`)."""
    from exopk.engine.condition_kernel import one_norm_conditions   # numba: imported on first use

    condition = np.empty(V.shape[0])
    one_norm_conditions(np.ascontiguousarray(V), np.ascontiguousarray(V_inv), condition)
    return condition


def _stacked_inverse(V):
    """Inverses of a stack of matrices; NaN for the singular ones."""
    try:
        return np.linalg.inv(V)
    except np.linalg.LinAlgError:
        V_inv = np.empty_like(V)
        for b in range(V.shape[0]):
            try:
                V_inv[b] = np.linalg.inv(V[b])
            except np.linalg.LinAlgError:
                V_inv[b] = np.nan
        return V_inv


_GETRF_GETRI = {np.dtype(float): (scipy.linalg.lapack.dgetrf, scipy.linalg.lapack.dgetri),
                np.dtype(complex): (scipy.linalg.lapack.zgetrf, scipy.linalg.lapack.zgetri)}


def _inverse(V):
    """Inverse of one real or complex matrix by LAPACK ``getrf`` and ``getri`` (an LU
    factorisation, without numpy's per-call checks); NaN when ``V`` is singular."""
    getrf, getri = _GETRF_GETRI[V.dtype]
    lu, pivots, info = getrf(V)
    if info != 0:
        return np.full_like(V, np.nan)
    inverse, info = getri(lu, pivots)
    return inverse if info == 0 else np.full_like(V, np.nan)


def _geev(A):
    """Eigenvalues and right unit eigenvectors of one real matrix (complex pairs assembled)."""
    wr, wi, _, vr, info = scipy.linalg.lapack.dgeev(A, compute_vl=0, compute_vr=1)
    if info != 0:
        raise SimulationError(f"eigendecomposition failed (LAPACK dgeev info {info})")
    if not wi.any():
        return wr, vr
    right = vr.astype(complex)
    pairs = np.flatnonzero(wi > 0)
    right[:, pairs] = vr[:, pairs] + 1j * vr[:, pairs + 1]
    right[:, pairs + 1] = vr[:, pairs] - 1j * vr[:, pairs + 1]
    return wr + 1j * wi, right
