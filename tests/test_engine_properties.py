"""Mass balance, batches, saturable vs linear engines, input checks."""

import numpy as np
import pytest

import exopk
from exopk.engine.simulation import evaluate
from exopk.errors import SimulationError
from exopk.model import Compartment, Model, Output, Parameter, Prior, Route, Transfer
from exopk.engine import compile_model
from exopk.engine.linear import SCATTER_BATCH, LinearSystem

from conftest import exercised_parameters, mixed_regimen

TIMES = np.array([0.0, 0.5, 10.0, 39.9, 40.0, 200.0, 2880.0])


def test_mass_balance_holds_to_1e10_of_the_dose(shipped_model):
    regimen = mixed_regimen(shipped_model)
    theta = exercised_parameters(shipped_model, seed=7)
    result = evaluate(compile_model(shipped_model), theta[None], TIMES, regimen)
    assert np.max(np.abs(result.mass_balance_residual)) <= 1e-10 * regimen.total_amount
    expected = np.array([100, 100, 100 + 0, 100 + 50 * 29.9 / 30, 150, 250, 250], dtype=float)
    np.testing.assert_allclose(result.administered[0], expected, rtol=1e-12)


def test_batch_of_parameter_sets_equals_one_at_a_time(shipped_model):
    compiled = compile_model(shipped_model)
    regimen = mixed_regimen(shipped_model)
    thetas = np.stack([exercised_parameters(shipped_model, seed=s) for s in range(4)])
    batch = evaluate(compiled, thetas, TIMES, regimen, gradients=True)
    for b in range(4):
        one = evaluate(compiled, thetas[b][None], TIMES, regimen, gradients=True)
        # a batch is decomposed by a different LAPACK route: agreement to rounding of %ID values
        np.testing.assert_allclose(batch.outputs[b], one.outputs[0], rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(batch.output_sensitivities[b], one.output_sensitivities[0],
                                   rtol=1e-8, atol=1e-9)


def test_system_matrices_of_a_large_batch_equal_each_set_assembled_alone(shipped_model):
    """From ``SCATTER_BATCH`` sets only the nonzero entries of ``A`` are formed; each member's
    matrix is the one assembled alone, to the rounding of a sum of a few rates."""
    compiled = compile_model(shipped_model)
    thetas = np.stack([exercised_parameters(shipped_model, seed=s)
                       for s in range(SCATTER_BATCH + 3)])
    rates = compiled.evaluate_expressions(thetas, derivatives=False)[0][:, compiled.rate_rows]
    system = compiled.linear_system
    stacked = system.matrix(rates)
    for b in range(len(rates)):
        np.testing.assert_allclose(stacked[b], system.matrix(rates[b:b + 1])[0], rtol=1e-15,
                                   atol=0)


def test_system_matrix_with_parallel_transfers_and_several_outflows():
    """0 -> 1 twice (two rates on one entry), 0 -> 2, 1 -> 0, 2 -> sink 3."""
    system = LinearSystem(4, [0, 0, 0, 1, 2], [1, 1, 2, 0, 3])
    rates = np.array([[0.1, 0.2, 0.4, 0.8, 1.6]])
    expected = np.array([[-0.7, 0.8, 0.0, 0.0],
                         [0.1 + 0.2, -0.8, 0.0, 0.0],
                         [0.4, 0.0, -1.6, 0.0],
                         [0.0, 0.0, 1.6, 0.0]])
    for batch in (1, SCATTER_BATCH):
        A = system.matrix(np.repeat(rates, batch, axis=0))
        np.testing.assert_allclose(A, np.repeat(expected[None], batch, axis=0), rtol=1e-15)


def test_simulate_with_arrays_of_parameters_returns_a_draw_dimension():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    ds = exopk.simulate(model, {"CL": [0.1, 0.2, 0.4]}, [0, 10], exopk.Regimen.bolus("iv", 100.0))
    assert ds.value.dims == ("draw", "time", "output")
    np.testing.assert_allclose(ds.value.sel(output="plasma_percent_id", time=10),
                               100 * np.exp(-np.array([0.1, 0.2, 0.4]) * 10), rtol=1e-12)
    np.testing.assert_array_equal(ds.CL, [0.1, 0.2, 0.4])


def saturable_pair(km):
    """One compartment with Michaelis-Menten elimination, and its linear limit Vmax/Km."""
    prior = Prior("lognormal", {"median": 1.0, "sigma": 1.0})
    common = dict(compartments=(Compartment("plasma", kind="plasma", volume="V"),
                                Compartment("out", kind="sink")),
                  routes=(Route("iv", {"plasma": "1"}),),
                  outputs=(Output("c", kind="concentration", compartments=("plasma",)),))
    params = (Parameter("V", 2.0, prior=prior), Parameter("Vmax", 5.0, prior=prior),
              Parameter("Km", km, upper=1e12, prior=prior))
    saturable = Model("mm", transfers=(Transfer("plasma", "out", vmax="Vmax", km="Km"),),
                      parameters=params, **common)
    linear = Model("lin", transfers=(Transfer("plasma", "out", rate="Vmax / (Km * V)"),),
                   parameters=params, **common)
    return saturable, linear


def test_saturable_engine_matches_linear_when_km_far_above_concentrations():
    saturable, linear = saturable_pair(km=1e7)
    regimen = exopk.Regimen.bolus("iv", 10.0) + exopk.Regimen.infusion("iv", 5.0, 3.0, 1.0)
    t = np.linspace(0, 2e6, 9)
    a = exopk.simulate(saturable, None, t, regimen, gradients=True)
    b = exopk.simulate(linear, None, t, regimen, gradients=True)
    # concentrations <= 7.5 / 2 so the saturable flux differs from linear by c / Km < 4e-7
    np.testing.assert_allclose(a.value, b.value, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(a.sensitivity.sel(parameter="Vmax"), b.sensitivity.sel(parameter="Vmax"),
                               rtol=1e-5, atol=1e-12)


def test_saturable_elimination_is_zero_order_far_above_km():
    saturable, _ = saturable_pair(km=1e-6)
    ds = exopk.simulate(saturable, None, [0.0, 1.0, 2.0], exopk.Regimen.bolus("iv", 100.0))
    # amount falls by Vmax = 5 per unit time while the concentration stays far above Km
    np.testing.assert_allclose(ds.amount.sel(compartment="plasma"), [100.0, 95.0, 90.0], rtol=1e-8)


@pytest.mark.parametrize("times,message", [
    ([0, -1.0], "negative"),
    ([0, np.nan], "not finite"),
    ([], "non-empty"),
])
def test_bad_times_are_rejected_with_a_clear_message(times, message):
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    with pytest.raises(SimulationError, match=message):
        exopk.simulate(model, None, times)


def test_bad_parameters_and_doses_are_rejected():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    with pytest.raises(SimulationError, match="'CL' = -1 is outside its bounds"):
        exopk.simulate(model, {"CL": -1.0}, [1.0])
    with pytest.raises(SimulationError, match="parameter 'CL' is nan"):
        exopk.simulate(model, {"CL": np.nan}, [1.0])
    with pytest.raises(SimulationError, match="unknown parameter"):
        exopk.simulate(model, {"clearance": 1.0}, [1.0])
    with pytest.raises(SimulationError, match="amount must not be negative"):
        exopk.Regimen.bolus("iv", -5.0)
    with pytest.raises(SimulationError, match="no route 'oral'"):
        exopk.simulate(model, None, [1.0], exopk.Regimen.bolus("oral", 5.0))


def test_dose_split_fractions_must_add_to_one():
    model = exopk.load_model(exopk.model_path("m5_intranasal_olfactory"))
    bad = model.replace(routes=tuple(
        exopk.model.Route(r.name, {**r.targets, "nasal_respiratory": "0.9 - f_olfactory"})
        if r.name == "intranasal" else r for r in model.routes))
    with pytest.raises(SimulationError, match="route 'intranasal'.*add up to 1"):
        exopk.simulate(bad, None, [1.0], exopk.Regimen.bolus("intranasal", 1.0))


def test_endogenous_secretion_adds_its_steady_state_secretion_over_clearance():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    parameters = {"secretion_rate": 5.0, "CL": 0.5, "V_plasma": 2.0}
    ds = exopk.simulate(model, parameters, [0.0, 3.0], exopk.Regimen.bolus("iv", 10.0), gradients=True)
    dosed = 10.0 / 2.0 * np.exp(-0.25 * np.array([0.0, 3.0]))
    np.testing.assert_allclose(ds.value.sel(output="plasma_concentration"), dosed, rtol=1e-12)
    # steady state of the body's own vesicles: secretion / clearance, independent of volume
    np.testing.assert_allclose(ds.value.sel(output="plasma_total_concentration"), dosed + 5.0 / 0.5,
                               rtol=1e-12)
    np.testing.assert_allclose(ds.sensitivity.sel(output="plasma_total_concentration",
                                                  parameter="secretion_rate"), 1 / 0.5, rtol=1e-12)
    # endogenous vesicles are not dose: mass balance of the dose is untouched
    assert float(np.abs(ds.mass_balance_residual).max()) < 1e-12
