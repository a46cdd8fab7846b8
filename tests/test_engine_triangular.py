"""Block-by-block eigendecompositions of block lower-triangular matrices
(:mod:`exopk.engine.triangular`), against LAPACK's and by their defining identities.

The structured path's values with such cores are checked against 50-digit references in
``test_engine_reference.py`` (cases ``one_way_mps`` and ``blocks_around_a_cycle``).
"""

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model, evaluate, triangular
from exopk.engine.eigen import eigendecompose
from exopk.engine.moments_kernel import core_and_leaf_moments
from exopk.engine.triangular import BlockOrder, block_triangular_eigendecompose

# flows[i, j]: a transfer from j into i. A depot (0) feeding a cycle 1 -> 2 -> 3 -> 1 and 4;
# the cycle feeds 5, which feeds 6; 4 feeds 6
MIXED = [(1, 0), (4, 0), (2, 1), (3, 2), (1, 3), (5, 2), (6, 5), (6, 4)]
# plasma (0) -> five organs, no way back; organ 1 -> organ 2 as well
ONE_WAY = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (2, 1)]


def flows_of(n, edges):
    flows = np.zeros((n, n), dtype=bool)
    for i, j in edges:
        flows[i, j] = True
    return flows


def random_matrices(n, edges, batch, seed, cycle_scale=1.0):
    """Compartmental matrices with the given transfers: nonzero rates, diagonal the outflows
    plus an elimination."""
    rng = np.random.default_rng(seed)
    A = np.zeros((batch, n, n))
    i, j = np.array(edges).T
    A[:, i, j] = rng.lognormal(-3.0, 1.0, size=(batch, len(edges))) * cycle_scale
    A[:, np.arange(n), np.arange(n)] = -(A.sum(axis=1) + rng.lognormal(-4.0, 1.0, (batch, n)))
    return A


@pytest.mark.parametrize("edges,n,blocks", [
    (MIXED, 7, [[0], [1, 2, 3], [4], [5], [6]]),
    (ONE_WAY, 6, [[0], [1], [2], [3], [4], [5]]),
    ([(0, 1), (1, 0)], 2, [[0, 1]]),
])
def test_blocks_are_strongly_connected_and_ordered_upstream_first(edges, n, blocks):
    order = BlockOrder.of(flows_of(n, edges))
    assert [b.tolist() for b in order.blocks] == blocks
    position = {int(c): k for k, b in enumerate(order.blocks) for c in b}
    for i, j in edges:                      # block lower triangular: flows go downstream
        assert position[j] <= position[i]
        if position[j] < position[i]:
            assert (position[i], position[j]) in order.coupled
    assert order.trivial == (len(blocks) == 1)


@pytest.mark.parametrize("edges,n,cycle_scale", [(MIXED, 7, 1.0), (MIXED, 7, 30.0),
                                                 (ONE_WAY, 6, 1.0)])
def test_decomposition_matches_lapack_and_its_identities(edges, n, cycle_scale):
    """``A V = V diag(lam)``, ``V^-1 V = I``, unit columns, LAPACK's eigenvalues and condition
    numbers; a fast cycle (scale 30) gives complex pairs to some members."""
    A = random_matrices(n, edges, 300, seed=2, cycle_scale=cycle_scale)
    lam, V, V_inv, condition = block_triangular_eigendecompose(A, BlockOrder.of(flows_of(n, edges)))
    scale = np.abs(A).max(axis=(1, 2))[:, None, None]
    assert np.abs(A @ V - V * lam[:, None, :]).max() / scale.min() < 1e-12
    np.testing.assert_allclose(V_inv @ V, np.broadcast_to(np.eye(n), V.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, rtol=1e-14)
    lam_lapack, _, _, condition_lapack = eigendecompose(A)
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(lam_lapack), rtol=1e-11,
                               atol=1e-14)
    np.testing.assert_allclose(condition, condition_lapack, rtol=1e-8)
    if cycle_scale > 1:
        assert np.iscomplexobj(lam) and (lam.imag != 0).any(axis=1).sum() > 10
        real = ~(lam.imag != 0).any(axis=1)
        assert not V[real].imag.any()       # real members stay real (eigen_groups relies on it)


def test_equal_eigenvalues_of_connected_blocks_are_defective_not_wrong():
    """Organ 1 draining exactly as fast as plasma: a Jordan block, infinite condition (the
    dense path's ``expm`` takes over); organs 3 and 4, not connected, may share a rate."""
    A = random_matrices(6, ONE_WAY, 4, seed=3)
    A[:, 3, 3] = A[:, 4, 4]
    A[2:, 1, 1] = A[2:, 0, 0]
    lam, V, V_inv, condition = block_triangular_eigendecompose(A, BlockOrder.of(
        flows_of(6, ONE_WAY)))
    assert np.isfinite(condition[:2]).all() and np.isinf(condition[2:]).all()
    np.testing.assert_allclose(A[:2] @ V[:2], V[:2] * lam[:2, None, :], atol=1e-15)
    np.testing.assert_allclose(V_inv[:2] @ V[:2], np.broadcast_to(np.eye(6), (2, 6, 6)),
                               atol=1e-13)


def block_moments(A, edges, right):
    """``(-A^-1 b, A^-2 b)`` of each member by the compiled block substitution of the
    structured moments (every compartment in the core, in block order), and the index of the
    first member with a singular block (-1 for none)."""
    batch, n = right.shape
    order = BlockOrder.of(flows_of(n, edges))
    core = np.concatenate(order.blocks)
    starts = np.cumsum([0] + [len(block) for block in order.blocks])
    fed = np.isin(np.arange(len(order.blocks)), list(order.fed))
    area, moment = np.full((2, batch, n), np.nan)
    singular = core_and_leaf_moments(A.reshape(batch, n * n), n, right, core, starts, fed,
                                     np.zeros(0, dtype=int), area, moment)
    return area, moment, singular


@pytest.mark.parametrize("edges,n", [(MIXED, 7), (ONE_WAY, 6)])
def test_block_substitution_solves_like_lapack(edges, n):
    A = random_matrices(n, edges, 200, seed=5, cycle_scale=30.0)
    right = np.random.default_rng(6).normal(size=(200, n))
    area, moment, singular = block_moments(A, edges, right)
    exact_area = -np.linalg.solve(A, right[..., None])
    np.testing.assert_allclose(area, exact_area[..., 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(moment, -np.linalg.solve(A, exact_area)[..., 0], rtol=1e-12,
                               atol=0)
    assert singular == -1


@pytest.mark.parametrize("compartment", [0, 2])
def test_block_substitution_of_a_singular_matrix_is_reported(compartment):
    """A compartment that does not drain (a zero diagonal) makes the matrix singular, as
    LAPACK's solve reports: in a block of one (0), and in the cycle (2, with its way on)."""
    A = random_matrices(7, MIXED, 3, seed=5)
    A[1, :, compartment] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.solve(A[1], np.ones(7))
    assert block_moments(A, MIXED, np.ones((3, 7)))[2] == 1


def test_a_one_way_core_is_solved_without_lapack(monkeypatch):
    """``m2_mps`` with release off: every core block is one compartment, no eigensolver runs;
    the values are those of the dense path."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled = compile_model(model)
    rng = np.random.default_rng(8)
    theta = np.repeat(compiled.parameter_matrix({}), 64, axis=0)
    uptake = [compiled.parameter_names.index(name) for name in compiled.parameter_names
              if name.startswith(("k_uptake", "k_degradation"))]
    theta[:, uptake] *= rng.lognormal(0.0, 0.5, size=(64, len(uptake)))
    times = np.array([1.0, 30.0, 240.0, 1440.0])
    regimen = exopk.Regimen.bolus("iv", 100.0)
    dense = evaluate(compiled, theta, times, regimen, path="dense").amounts
    calls = []
    real_eig = np.linalg.eig

    def counted(A):
        calls.append(A.shape)
        return real_eig(A)
    monkeypatch.setattr(np.linalg, "eig", counted)
    blocks = []
    real_block = triangular.block_triangular_eigendecompose
    monkeypatch.setattr(
        "exopk.engine.linear.block_triangular_eigendecompose",
        lambda A, order: blocks.append([len(b) for b in order.blocks]) or real_block(A, order))
    structured = evaluate(compiled, theta, times, regimen).amounts
    assert blocks == [[1] * 6] and calls == []
    peak = np.abs(dense).max(axis=(1, 2), keepdims=True)
    assert (np.abs(structured - dense) / peak).max() < 1e-12
