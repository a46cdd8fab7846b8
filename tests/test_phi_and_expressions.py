"""Divided differences of the exponential and symbolic derivatives of model expressions."""

import mpmath
import numpy as np
import pytest

from exopk.engine.phi import (bolus_divided_difference, bolus_divided_differences,
                              integrated_divided_difference, integrated_factor,
                              step_divided_difference)
from exopk.errors import ModelFileError
from exopk.model.expressions import ExpressionSet, parse_expression

NODES = [(-1.0, -1.0), (-1.0, -1.0 - 1e-9), (-1.0, -1.0 - 1e-5), (-0.3, -2.0), (0.0, 0.0),
         (0.0, -1e-12), (-50.0, -50.0 + 1e-6), (-700.0, -1.0), (-1 + 2j, -1 - 2j),
         (-0.5 + 1e-8j, -0.5)]


def exact_in_high_precision(a, b, tau):
    """Divided differences of exp(lam tau) and of its integral, with 60 significant digits."""
    mpmath.mp.dps = 60
    a, b, tau = mpmath.mpmathify(a), mpmath.mpmathify(b), mpmath.mpmathify(tau)

    def step(lam):
        return tau if lam == 0 else (mpmath.exp(lam * tau) - 1) / lam

    def step_derivative(lam):
        if lam == 0:
            return tau**2 / 2
        return (mpmath.exp(lam * tau) * (lam * tau - 1) + 1) / lam**2

    if a == b:
        return complex(tau * mpmath.exp(a * tau)), complex(step_derivative(a))
    return (complex((mpmath.exp(a * tau) - mpmath.exp(b * tau)) / (a - b)),
            complex((step(a) - step(b)) / (a - b)))


@pytest.mark.parametrize("a,b", NODES)
@pytest.mark.parametrize("tau", [0.0, 0.3, 7.0])
def test_divided_differences_match_matrix_exponential(a, b, tau):
    bolus, step = exact_in_high_precision(a, b, tau)
    got_bolus = bolus_divided_difference(np.array(a), np.array(b), np.array(tau))
    got_step = step_divided_difference(np.array(a), np.array(b), np.array(tau))
    assert abs(got_bolus - bolus) <= 1e-12 * abs(bolus) + 1e-300
    assert abs(got_step - step) <= 1e-12 * abs(step) + 1e-300


def twice_integrated_in_high_precision(a, b, tau):
    """``int_0^tau int_0^s exp(lam u) du ds`` at ``lam = a`` and its divided difference at
    ``a, b``, with 60 significant digits (the divided difference by a derivative at a = b)."""
    mpmath.mp.dps = 60
    a, b, tau = mpmath.mpmathify(a), mpmath.mpmathify(b), mpmath.mpmathify(tau)

    def twice(lam):
        return tau**2 / 2 if lam == 0 else (mpmath.exp(lam * tau) - 1 - lam * tau) / lam**2

    def derivative(lam):
        if lam == 0:
            return tau**3 / 6
        return (tau * mpmath.exp(lam * tau) - tau - 2 * lam * twice(lam)) / lam**2

    difference = derivative(a) if a == b else (twice(a) - twice(b)) / (a - b)
    return complex(twice(a)), complex(difference)


@pytest.mark.parametrize("a,b", NODES)
@pytest.mark.parametrize("tau", [0.0, 0.3, 7.0])
def test_twice_integrated_response_matches_high_precision(a, b, tau):
    factor, difference = twice_integrated_in_high_precision(a, b, tau)
    got_factor = integrated_factor(2, np.array(a), np.array(tau))
    got_difference = integrated_divided_difference(2, np.array(a), np.array(b), np.array(tau))
    assert abs(got_factor - factor) <= 1e-13 * abs(factor) + 1e-300
    assert abs(got_difference - difference) <= 1e-12 * abs(difference) + 1e-300
    assert integrated_divided_difference(2, np.array(a), np.array(b), np.array(-0.5)) == 0


MODE_SETS = {
    "real, with a tie, a sink and a flushed mode": [[-0.02, -1.3, -1.3, 0.0, -2e5, -1e-9],
                                                    [-5.0, -0.4, -0.4 - 1e-12, -3e-3, -7.0, -1.0]],
    "complex, with conjugate pairs and equal real parts": [
        [-1 + 2j, -1 - 2j, -0.5 + 0j, -1 + 0.5j, -3e4 + 1j, 0j],
        [-0.2 + 1e-9j, -0.2 - 1e-9j, -4 + 3j, -4 - 3j, -4 + 0j, -1e-3 + 0j]],
}


@pytest.mark.parametrize("kind", MODE_SETS)
def test_divided_differences_of_all_pairs_are_those_of_each_pair(kind):
    """The compiled all-pairs version against numpy's pair by pair (the same formulas: equal
    to a few units of rounding), with times shared by the batch or per member, and zeros
    (flushed, before the dose) exactly where numpy has them."""
    lam = np.array(MODE_SETS[kind])
    for tau in (np.array([-0.5, 0.0, 0.3, 7.0, 2e3]), np.array([0.0, 1.0, 1e4])):
        each = bolus_divided_difference(lam[:, :, None, None], lam[:, None, None, :],
                                        tau[None, None, :, None])
        pairs = bolus_divided_differences(lam, tau)
        assert pairs.shape == each.shape and pairs.dtype == each.dtype
        np.testing.assert_allclose(pairs, each, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(pairs == 0, each == 0)
        per_member = bolus_divided_differences(lam, np.stack([tau, 2 * tau]))
        np.testing.assert_array_equal(per_member[0], pairs[0])
        np.testing.assert_allclose(per_member[1], bolus_divided_difference(
            lam[1, :, None, None], lam[1, None, None, :], 2 * tau[None, :, None]),
            rtol=1e-14, atol=0)
    # and against 60 digits, entry by entry
    tau = 7.0
    pairs = bolus_divided_differences(lam, np.array([tau]))
    for b, i, k in [(0, 0, 1), (0, 1, 0), (1, 2, 3), (1, 0, 5), (0, 3, 3)]:
        exact = exact_in_high_precision(complex(lam[b, i]), complex(lam[b, k]), tau)[0]
        assert abs(pairs[b, i, 0, k] - exact) <= 1e-12 * abs(exact) + 1e-300


def test_divided_differences_vanish_before_the_dose():
    assert bolus_divided_difference(np.array(-1.0), np.array(-2.0), np.array(-0.5)) == 0
    assert step_divided_difference(np.array(-1.0), np.array(-2.0), np.array(-0.5)) == 0


def test_expression_jacobian_matches_finite_differences():
    texts = ["CL / V", "k * (1 - f * d)", "exp(-a * t0) + log(V) ** 2", "sqrt(V * CL) - 3",
             "-(CL + 2) / (V - 0.5 * CL)"]
    names = ["CL", "V", "k", "f", "a"]
    exprs = [parse_expression(t) for t in texts]
    compiled = ExpressionSet(exprs, names, {"d": 1.0, "t0": 2.0})
    theta = np.array([[0.7, 3.0, 0.2, 0.4, 0.9]])
    values, jac = compiled(theta)
    np.testing.assert_allclose(values[0, 1], 0.2 * (1 - 0.4), rtol=1e-15)
    for p in range(len(names)):
        h = 1e-6
        up, down = theta.copy(), theta.copy()
        up[0, p] += h
        down[0, p] -= h
        fd = (compiled(up)[0] - compiled(down)[0]) / (2 * h)
        np.testing.assert_allclose(jac[0, :, p], fd[0], rtol=1e-7, atol=1e-9)


def test_small_batches_member_by_member_equal_the_array_path():
    """Batches up to SCALAR_BATCH are evaluated with Python floats: same values and Jacobian
    as numpy columns, and a member that divides by zero falls back to numpy's inf."""
    from exopk.model.expressions import SCALAR_BATCH
    exprs = [parse_expression(t) for t in ("CL / V", "exp(-a * t0) + log(V) ** 2",
                                            "sqrt(V * CL) - 3")]
    compiled = ExpressionSet(exprs, ["CL", "V", "a"], {"t0": 2.0})
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.1, 3.0, size=(SCALAR_BATCH + 1, 3))
    big_values, big_jac = compiled(theta)                        # numpy columns
    small_values, small_jac = compiled(theta[:SCALAR_BATCH])    # Python floats
    np.testing.assert_allclose(small_values, big_values[:SCALAR_BATCH], rtol=1e-15)
    np.testing.assert_allclose(small_jac, big_jac[:SCALAR_BATCH], rtol=1e-15)
    theta[1, 1] = 0.0                                            # V = 0: CL / V is inf
    with np.errstate(divide="ignore"):
        values, _ = compiled(theta[:2])
    assert np.isinf(values[1, 0]) and values[0, 0] == pytest.approx(theta[0, 0] / theta[0, 1])


@pytest.mark.parametrize("text,message", [
    ("CL +", "cannot parse"),
    ("__import__('os')", "only exp"),
    ("CL ** V", "exponent must be a number"),
    ("CL if V else 1", "not an arithmetic expression"),
    ("CL % 2", "operator Mod not allowed"),
    ("'text'", "not a number"),
])
def test_bad_expressions_are_rejected(text, message):
    with pytest.raises(ModelFileError, match=message):
        parse_expression(text, where="transfers[0].rate")


def test_unknown_symbols_are_named():
    with pytest.raises(ModelFileError, match="unknown symbol.*Vx"):
        ExpressionSet([parse_expression("CL / Vx")], ["CL"], {})


def test_compiled_and_numpy_divided_differences_flush_at_the_same_exponent():
    from exopk.engine import phi, phi_kernel
    assert phi_kernel._UNDERFLOW == phi._UNDERFLOW
