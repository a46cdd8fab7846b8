"""Exact sensitivities against finite differences, for every shipped model."""

import numpy as np
import pytest

import exopk
from exopk.engine.simulation import evaluate
from exopk.engine import compile_model

from conftest import exercised_parameters, mixed_regimen

TIMES = np.array([0.0, 1.0, 5.0, 15.0, 30.0, 60.0, 125.0, 240.0, 1440.0, 2880.0])


def central_difference(f, theta, p, relative_step, richardson):
    """d f / d theta[p]; with Richardson extrapolation the truncation error is O(h^4)."""
    def diff(h):
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        return (f(up) - f(down)) / (2 * h)
    h = relative_step * abs(theta[p])
    if not richardson:
        return diff(h)
    return (4 * diff(h / 2) - diff(h)) / 3


def test_sensitivities_match_finite_differences(shipped_model):
    compiled = compile_model(shipped_model)
    regimen = mixed_regimen(shipped_model)
    theta = exercised_parameters(shipped_model)
    exact = evaluate(compiled, theta[None], TIMES, regimen, gradients=True).output_sensitivities[0]

    def outputs(t):
        return evaluate(compiled, t[None], TIMES, regimen).outputs[0]

    linear = shipped_model.is_linear
    for p, name in enumerate(compiled.parameter_names):
        # an adaptive ODE solver makes extrapolation amplify its noise: plain differences there
        fd = central_difference(outputs, theta, p, 1e-3, richardson=linear)
        scale = np.max(np.abs(fd))
        if scale == 0:
            assert np.max(np.abs(exact[..., p])) == 0, name
            continue
        error = np.max(np.abs(exact[..., p] - fd)) / scale
        assert error < 1e-6, f"{shipped_model.name}: d/d{name} relative error {error:.2e}"


def test_eigen_and_expm_paths_agree_on_values_and_sensitivities(shipped_model):
    if not shipped_model.is_linear:
        pytest.skip("saturable models have one solver")
    compiled = compile_model(shipped_model)
    theta = exercised_parameters(shipped_model, seed=3)
    regimen = mixed_regimen(shipped_model)
    eigen = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="eigen")
    expm = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="expm")
    np.testing.assert_allclose(eigen.amounts, expm.amounts, rtol=1e-9, atol=1e-10)
    scale = np.max(np.abs(expm.output_sensitivities), axis=(0, 1, 2), keepdims=True)
    np.testing.assert_allclose(eigen.output_sensitivities / np.where(scale > 0, scale, 1),
                               expm.output_sensitivities / np.where(scale > 0, scale, 1), atol=1e-9)


def test_close_but_distinct_eigenvalues_keep_exact_gradients():
    """Rates that differ by 1e-7 relative stress the divided differences."""
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    compiled = compile_model(model)
    theta = np.array([0.2, 1.0, 0.2 * (1 + 1e-7), 1.0])   # CL/V = Q/V_peripheral almost
    regimen = exopk.Regimen.bolus("iv", 100.0) + exopk.Regimen.infusion("iv", 10.0, 20.0, 5.0)
    eigen = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="eigen")
    expm = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="expm")
    np.testing.assert_allclose(eigen.output_sensitivities, expm.output_sensitivities,
                               rtol=1e-8, atol=1e-10)
