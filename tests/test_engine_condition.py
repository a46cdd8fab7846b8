"""The compiled 1-norm condition number of eigenvector matrices against numpy's formula
``||V||_1 ||V^-1||_1`` (largest column sum of absolute values), and its non-finite cases."""

import numpy as np
import pytest

from exopk.engine.eigen import condition_number, eigendecompose


def numpy_condition(V, V_inv):
    with np.errstate(invalid="ignore", over="ignore"):
        condition = np.abs(V).sum(axis=1).max(axis=-1) * np.abs(V_inv).sum(axis=1).max(axis=-1)
    return np.where(np.isfinite(condition), condition, np.inf)


@pytest.mark.parametrize("n", [1, 4, 18])
def test_condition_numbers_of_real_and_complex_stacks_match_numpy(n):
    rng = np.random.default_rng(n)
    real = rng.standard_normal((40, n, n)) * np.exp(rng.normal(0, 3, (40, 1, 1)))
    # real entries: the same sums in the same order, so the same bits
    assert np.array_equal(condition_number(real, np.linalg.inv(real)),
                          numpy_condition(real, np.linalg.inv(real)))
    complex_ = real + 1j * rng.standard_normal((40, n, n))
    found = condition_number(complex_, np.linalg.inv(complex_))
    np.testing.assert_allclose(found, numpy_condition(complex_, np.linalg.inv(complex_)),
                               rtol=4e-16 * n, atol=0)


def test_condition_numbers_of_real_decompositions_batched_and_alone():
    """The number a batch member gets is the number it gets alone (one ``geev`` path)."""
    rng = np.random.default_rng(7)
    A = -np.abs(rng.standard_normal((6, 5, 5)))
    batch = eigendecompose(A)[3]
    alone = np.array([eigendecompose(A[b:b + 1])[3][0] for b in range(len(A))])
    np.testing.assert_allclose(batch, alone, rtol=1e-10)
    assert np.all(np.isfinite(batch)) and np.all(batch >= 1.0)


@pytest.mark.parametrize("spoil", ["nan_inverse", "inf_entry", "zero_times_inf", "overflow"])
def test_non_finite_condition_numbers_are_infinite(spoil):
    V = np.tile(np.eye(3), (3, 1, 1))
    V_inv = V.copy()
    if spoil == "nan_inverse":        # a singular V: the inverse is NaN
        V_inv[1] = np.nan
    elif spoil == "inf_entry":
        V[1, 2, 0] = np.inf
    elif spoil == "zero_times_inf":   # a zero norm against an infinite one gives NaN
        V[1] = 0.0
        V_inv[1, 0, 0] = np.inf
    else:
        V[1] *= 1e300
        V_inv[1] *= 1e300
    found = condition_number(V, V_inv)
    assert found[1] == np.inf
    assert found[0] == found[2] == 1.0
    assert np.array_equal(found, numpy_condition(V, V_inv))
