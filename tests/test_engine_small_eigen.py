"""The compiled small-matrix eigendecomposition (:mod:`exopk.engine.small_eigen_kernel`)
against LAPACK, against 40-digit eigenvalues and by its defining identities.

The structured path's values, which use it for the diagonal blocks of block-triangular cores,
are checked against 50-digit references in ``test_engine_reference.py``.
"""

import mpmath
import numpy as np
import pytest

from exopk.engine import eigen, small_eigen_kernel
from exopk.engine.eigen import small_eigendecompose, stacked_eigendecompose
from exopk.engine.triangular import BlockOrder, block_triangular_eigendecompose


def rate_matrices(k, batch, seed, *, spread=2.0, density=0.6):
    """Compartmental matrices: random transfers (some absent), the diagonal their outflows
    plus an elimination."""
    rng = np.random.default_rng(seed)
    A = rng.lognormal(-3.0, spread, (batch, k, k)) * (rng.uniform(size=(batch, k, k)) < density)
    A[:, np.arange(k), np.arange(k)] = 0.0
    A[:, np.arange(k), np.arange(k)] = -(A.sum(axis=1) + rng.lognormal(-4.0, spread, (batch, k)))
    return A


def matched(found, reference):
    """``found`` reordered to the nearest of ``reference`` (each member a set of eigenvalues)."""
    out = np.empty_like(reference)
    for b in range(len(reference)):
        free = list(range(reference.shape[1]))
        for x in found[b]:
            j = min(free, key=lambda j: abs(reference[b, j] - x))
            out[b, j] = x
            free.remove(j)
    return out


@pytest.mark.parametrize("k", [2, 3, 4, 6, 9, 12])
@pytest.mark.parametrize("kind", ["rates", "general"])
def test_eigenpairs_match_lapack_and_satisfy_their_identities(k, kind):
    rng = np.random.default_rng(k)
    A = rate_matrices(k, 400, k) if kind == "rates" else rng.normal(size=(400, k, k))
    lam, V, V_inv = small_eigendecompose(A)
    # these batches hold complex pairs, except 2 x 2 compartmental matrices (real spectra)
    assert np.iscomplexobj(lam) == (kind == "general" or k > 2)
    scale = np.abs(A).max(axis=(1, 2))
    residual = np.abs(A @ V - V * lam[:, None, :]).max(axis=(1, 2)) / scale
    assert residual.max() < 1e-13
    assert np.allclose(np.linalg.norm(V, axis=1), 1.0, rtol=0, atol=1e-14)
    condition = eigen.condition_number(V, V_inv)
    good = condition < 1e4
    assert good.mean() > 0.9
    identity = np.abs(V_inv[good] @ V[good] - np.eye(k)).max(axis=(1, 2))
    assert (identity < 1e-15 * condition[good] * k).all()
    reference = np.linalg.eigvals(A).astype(complex)
    difference = np.abs(matched(lam, reference) - reference).max(axis=1) / scale
    assert difference.max() < 1e-12
    pairs = lam.imag > 0                              # a pair: lam, conj(lam), conjugate vectors
    b, j = np.nonzero(pairs)
    assert pairs.any() == np.iscomplexobj(lam)
    assert np.array_equal(lam[b, j + 1], np.conj(lam[b, j]))
    assert np.array_equal(V[b, :, j + 1], np.conj(V[b, :, j]))


def test_real_spectra_give_real_arrays_like_lapack():
    rng = np.random.default_rng(3)
    # exchange along a chain (a tree) is similar to a symmetric matrix: real eigenvalues
    A = np.zeros((200, 4, 4))
    for i in range(3):
        forward, back = rng.lognormal(-3, 1, (2, 200))
        A[:, i + 1, i], A[:, i, i + 1] = forward, back
    A[:, np.arange(4), np.arange(4)] = -(A.sum(axis=1) + rng.lognormal(-4, 1, (200, 4)))
    lam, V, V_inv = small_eigendecompose(A)
    lapack = stacked_eigendecompose(A)
    assert not np.iscomplexobj(lapack[0])
    for mine, theirs in zip((lam, V, V_inv), lapack):
        assert mine.dtype == theirs.dtype == float
    assert np.allclose(np.sort(lam, axis=1), np.sort(lapack[0], axis=1), rtol=1e-12, atol=0)
    assert np.abs(V_inv @ V - np.eye(4)).max() < 1e-12


def test_eigenvalues_against_40_digits():
    """Prior-like 4 x 4 exchange blocks (rates over four orders of magnitude, complex pairs)
    against mpmath's eigenvalues at 40 digits: within 1e-14 of the largest rate."""
    A = rate_matrices(4, 40, 11, spread=1.0, density=0.8)
    lam, _, _ = small_eigendecompose(A)
    worst = 0.0
    with mpmath.workdps(40):
        for b in range(len(A)):
            exact = np.array([complex(x) for x in mpmath.eig(mpmath.matrix(A[b].tolist()),
                                                             left=False, right=False)])
            error = np.abs(matched(lam[b:b + 1], exact[None])[0] - exact).max()
            worst = max(worst, error / np.abs(A[b]).max())
    assert np.iscomplexobj(lam) and worst < 1e-14


def test_zero_and_diagonal_blocks():
    A = np.zeros((2, 3, 3))
    A[1] = np.diag([-1.0, -2.0, -3.0])
    lam, V, V_inv = small_eigendecompose(A)
    assert not np.iscomplexobj(lam)
    assert np.array_equal(lam[0], np.zeros(3))
    assert np.array_equal(np.sort(lam[1]), [-3.0, -2.0, -1.0])
    for b in range(2):
        assert np.array_equal(np.abs(V[b]) @ np.ones(3), np.ones(3))   # unit coordinate vectors
        assert np.allclose(V_inv[b] @ V[b], np.eye(3), rtol=0, atol=1e-15)


def test_a_defective_matrix_is_flagged_by_its_condition_number():
    """``[[-1, 1], [-1/4, -2]]`` has the double eigenvalue -3/2 and one eigenvector: the
    computed vectors are (nearly) parallel, so the condition number is beyond any limit and
    the member goes to another path."""
    A = np.array([[[-1.0, 1.0, 0.0], [-0.25, -2.0, 0.0], [0.5, 0.5, -3.0]]])
    lam, V, V_inv = small_eigendecompose(A)
    assert np.allclose(np.sort(lam[0].real), [-3.0, -1.5, -1.5], rtol=0, atol=1e-7)
    assert not eigen.condition_number(V, V_inv)[0] < 1e6
    # a block-triangular core with it as a block gets the same verdict
    flows = A[0] != 0
    np.fill_diagonal(flows, False)
    _, _, _, condition = block_triangular_eigendecompose(A, BlockOrder.of(flows))
    assert not condition[0] < 1e6


def test_members_that_do_not_converge_are_decomposed_by_lapack(monkeypatch):
    real_kernel = small_eigen_kernel.eigendecompose_small

    def failing_on_member_1(A, lam, V, V_inv, status):
        real_kernel(A, lam, V, V_inv, status)
        status[1] = small_eigen_kernel.NOT_CONVERGED
        lam[1], V[1], V_inv[1] = np.nan, np.nan, np.nan

    monkeypatch.setattr(small_eigen_kernel, "eigendecompose_small", failing_on_member_1)
    A = rate_matrices(4, 3, 5)
    lam, V, V_inv = small_eigendecompose(A)
    lapack = stacked_eigendecompose(A[1:2])
    assert np.array_equal(lam[1], lapack[0][0].astype(lam.dtype))
    assert np.array_equal(V[1], lapack[1][0].astype(V.dtype))
    assert np.isfinite(lam).all() and np.isfinite(V_inv).all()


@pytest.mark.parametrize("entry", [np.nan, np.inf])
def test_a_matrix_that_is_not_finite_is_refused_as_lapack_refuses_it(entry):
    A = rate_matrices(3, 2, 7)
    A[1, 0, 2] = entry
    with pytest.raises(np.linalg.LinAlgError, match="infs or NaNs"):
        stacked_eigendecompose(A)
    with pytest.raises(np.linalg.LinAlgError, match="infs or NaNs"):
        small_eigendecompose(A)
