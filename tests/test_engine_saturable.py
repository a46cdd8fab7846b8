"""The saturable (Michaelis-Menten) engine against an independent tight-tolerance integration
and central differences, at a stiff parameter set drawn from the priors, and its evaluation
budget."""

import time

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import exopk
import exopk.engine.nonlinear as nonlinear
from exopk.engine import compile_model
from exopk.engine.kernels import compile_kernel
from exopk.engine.simulation import evaluate
from exopk.errors import SimulationError

TIMES = np.array([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 1440.0, 2880.0])
MODEL = exopk.load_model(exopk.model_path("m2_mps_saturable"))
# a prior draw with Vmax/Km = 1400 for the liver: the old solver ran for minutes here
STIFF = {"k_uptake_liver": 0.135747, "k_degradation_liver": 0.00214, "k_uptake_spleen": 0.006572,
         "k_degradation_spleen": 0.080849, "k_uptake_lung": 0.04644,
         "k_degradation_lung": 0.004766, "k_uptake_kidney": 0.054515,
         "k_degradation_kidney": 0.01792, "k_uptake_rest": 0.031682,
         "k_degradation_rest": 0.002199, "k_free_label_clearance": 0.000878,
         "f_macrophage_liver": 0.68256, "f_macrophage_spleen": 0.45598,
         "Vmax_liver": 1450.750826, "Km_liver": 1.019033, "Vmax_spleen": 2.702626,
         "Km_spleen": 59.245752}


def theta_of(values):
    compiled = compile_model(MODEL)
    theta = compiled.nominal.copy()
    for name, value in values.items():
        theta[compiled.parameter_names.index(name)] = value
    return theta


def reference(theta, dose):
    """Amounts after an IV bolus: Radau at rtol 1e-13 on a right-hand side written out transfer
    by transfer."""
    compiled = compile_model(MODEL)
    v = compiled.evaluate_expressions(theta[None], derivatives=False)[0][0]
    n = len(compiled.state_names)
    linear = list(zip(compiled.linear_sources, compiled.linear_targets, compiled.rate_rows))

    def rhs(t, x):
        f = np.zeros(n)
        for s, d, row in linear:
            f[s] -= v[row] * x[s]
            f[d] += v[row] * x[s]
        for s, d, vmax, km, volume in compiled.saturable:
            c = x[s] / v[volume]
            flux = v[vmax] * c / (v[km] + c)
            f[s] -= flux
            f[d] += flux
        return f

    x0 = np.zeros(n)
    states, rows = compiled.route_rows["iv"]
    x0[states] = dose * v[rows]
    return solve_ivp(rhs, (0, TIMES[-1]), x0, method="Radau", t_eval=TIMES, rtol=1e-13,
                     atol=1e-13).y.T


@pytest.mark.parametrize("values", [{}, {"Vmax_liver": 40.0, "Km_liver": 5.0}, STIFF],
                         ids=["nominal", "saturated", "stiff"])
def test_saturable_amounts_match_independent_integration_and_gradients_differences(values):
    theta = theta_of(values)
    regimen = exopk.Regimen.bolus("iv", 100.0)
    start = time.process_time()
    result = evaluate(compile_model(MODEL), theta[None], TIMES, regimen, gradients=True)
    assert time.process_time() - start < 10.0
    x = result.amounts[0]
    ref_x = reference(theta, 100.0)
    assert np.max(np.abs(x - ref_x)) < 1e-9 * np.max(np.abs(ref_x))
    assert np.max(np.abs(result.mass_balance_residual)) < 1e-9 * 100.0
    # sensitivities by the saturable and the liver uptake parameters against central differences.
    # The differences carry the adaptive solver's forward error (about 3e-11 of the dose) over
    # the step h: up to a few 1e-6 relative here, so 1e-5 catches a wrong or missing term; the
    # accuracy itself (1e-10) is checked against the 70-digit reference in
    # test_engine_saturable_reference.py.
    for name in ("Vmax_liver", "Km_liver", "Vmax_spleen", "k_uptake_liver"):
        p = compile_model(MODEL).parameter_names.index(name)
        h = 1e-4 * theta[p]
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        fd = (evaluate(compile_model(MODEL), up[None], TIMES, regimen).amounts[0]
              - evaluate(compile_model(MODEL), down[None], TIMES, regimen).amounts[0]) / (2 * h)
        exact = result.amount_sensitivities[0, :, :, p]
        assert np.max(np.abs(exact - fd)) < 1e-5 * np.max(np.abs(fd)), name


def test_saturable_solver_stops_with_a_clear_error_when_the_budget_is_spent(monkeypatch):
    monkeypatch.setattr(nonlinear, "MAX_RHS_CALLS", 50)
    with pytest.raises(SimulationError, match=r"more than 50 right-hand-side.*too stiff.*"
                                              r"parameter set 0"):
        evaluate(compile_model(MODEL), theta_of(STIFF)[None], TIMES,
                 exopk.Regimen.bolus("iv", 100.0))


def test_kernels_compile_where_numba_cannot_cache_them():
    """numba refuses, at compile time, to cache a function that no writable folder can hold
    (here: one defined from a string, like a module in a read-only installation with no
    writable home); the kernel is then compiled without a cache and still computes."""
    namespace = {}
    exec("def scaled_sum(x, factor):\n    return factor * x.sum()\n", namespace)
    kernel = compile_kernel(namespace["scaled_sum"])
    assert kernel(np.arange(4.0), 2.5) == 15.0
