"""One parameter set by right eigenvectors and one LU factorisation in one compiled call (what
evaluate takes for one set without sensitivities), against the general dense path."""

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model
from exopk.engine.linear import CONDITION_LIMIT
from exopk.engine.simulation import ROUTE_SUM_TOLERANCE, evaluate
from exopk.engine.single_set import SingleSetPlan, single_set_outputs
from exopk.errors import SimulationError

from conftest import exercised_parameters
from test_engine_gradients import mixed_batch

TIMES = np.array([0.0, 1.0, 5.0, 30.0, 120.0, 240.0, 250.0, 1440.0])


def fast_outputs(compiled, theta, regimen):
    """The single-set path's outputs and amounts (None where it hands the set on)."""
    plan = SingleSetPlan.build(compiled, regimen, TIMES, *plan_arguments(compiled, regimen))
    assert plan is not None, "no plan for a bolus regimen of a linear model"
    values = compiled.evaluate_expressions(theta, derivatives=False)[0]
    return single_set_outputs(plan, values, len(compiled.state_names))


def plan_arguments(compiled, regimen):
    from exopk.engine.simulation import _administered, _given_so_far, percent_scale
    return (percent_scale(compiled, regimen), _given_so_far(compiled, regimen, TIMES),
            _administered(compiled, regimen, TIMES), ROUTE_SUM_TOLERANCE)


def assert_as_the_dense_path(compiled, theta, regimen):
    found = fast_outputs(compiled, theta, regimen)
    assert found is not None, "the single-set path handed the set to the general path"
    fast = evaluate(compiled, theta, TIMES, regimen)
    dense = evaluate(compiled, theta, TIMES, regimen, path="dense")
    for computed, expected in ((found[0], dense.outputs), (found[1], dense.amounts),
                               (fast.amounts, dense.amounts), (fast.outputs, dense.outputs)):
        scale = np.max(np.abs(expected), axis=1, keepdims=True)     # per quantity, over times
        error = np.abs(computed - expected) / np.where(scale > 0, scale, 1.0)
        assert np.max(error) < 1e-12
    np.testing.assert_array_equal(fast.administered, dense.administered)
    assert fast.output_sensitivities is None and fast.amount_sensitivities is None


LINEAR = [m for m in exopk.available_models() if "saturable" not in m and m != "m0_one_compartment"]


@pytest.mark.parametrize("name", LINEAR)
def test_one_set_after_boluses_is_the_dense_path_on_every_linear_model(name):
    """A bolus by each route, and repeated boluses (one after the last time: the percent of
    dose refers to the doses given by each time)."""
    model = exopk.load_model(exopk.model_path(name))
    compiled = compile_model(model)
    theta = exercised_parameters(model, seed=1)[None]
    for route in model.routes:
        assert_as_the_dense_path(compiled, theta, exopk.Regimen.bolus(route.name, 100.0))
    repeated = exopk.Regimen.repeated(model.routes[-1].name, 50.0, interval=240.0, count=8)
    assert_as_the_dense_path(compiled, theta, repeated)


def test_complex_pairs_and_ill_conditioned_sets():
    """A set with a complex pair is solved here; an ill-conditioned one goes to the general
    path (which solves it exactly)."""
    from exopk.engine.eigen import eigendecompose
    compiled, theta = mixed_batch()
    values = compiled.evaluate_expressions(theta)[0]
    lam, _, _, condition = eigendecompose(compiled.linear_system.matrix(
        values[:, compiled.rate_rows]))
    pair = int(np.flatnonzero(lam.imag.any(axis=1) & (condition < CONDITION_LIMIT))[0])
    ill = int(np.flatnonzero(~(condition < CONDITION_LIMIT))[0])
    bolus = exopk.Regimen.bolus("intranasal", 100.0)
    assert_as_the_dense_path(compiled, theta[pair:pair + 1], bolus)
    two_routes = exopk.Regimen((exopk.Dose("intranasal", 60.0), exopk.Dose("iv", 40.0, 30.0)))
    assert_as_the_dense_path(compiled, theta[pair:pair + 1], two_routes)
    assert fast_outputs(compiled, theta[ill:ill + 1], bolus) is None
    single = evaluate(compiled, theta[ill:ill + 1], TIMES, bolus)
    np.testing.assert_allclose(single.outputs, evaluate(compiled, theta[ill:ill + 1], TIMES,
                                                        bolus, path="expm").outputs,
                               rtol=1e-9, atol=1e-12)


def test_regimens_and_models_it_does_not_cover_have_no_plan():
    """Infusions, steady-state doses, saturable transfers and endogenous secretion in an
    output go to the general path."""
    compiled = compile_model(exopk.load_model(exopk.model_path("m5_intranasal")))
    arguments = plan_arguments(compiled, exopk.Regimen.bolus("iv", 100.0))
    assert SingleSetPlan.build(compiled, exopk.Regimen.infusion("iv", 100.0, duration=30.0),
                               TIMES, *arguments) is None
    steady = exopk.Regimen((exopk.Dose("iv", 100.0, steady_state_interval=240.0),))
    assert SingleSetPlan.build(compiled, steady, TIMES, *arguments) is None
    for name in ("m2_mps_saturable", "m0_one_compartment"):
        other = compile_model(exopk.load_model(exopk.model_path(name)))
        regimen = exopk.Regimen.bolus("iv", 100.0)
        assert SingleSetPlan.build(other, regimen, TIMES, *plan_arguments(other, regimen)) is None


@pytest.mark.parametrize("split", [{"nasal_respiratory": "0.9 - f_olfactory"},
                                   {"nasal_olfactory": "1 + f_olfactory",
                                    "nasal_respiratory": "-f_olfactory"}])
def test_a_dose_split_that_is_no_partition_raises_as_on_the_general_path(split):
    """The compiled call checks the split of a route whose shares depend on parameters (their
    sum; each share in [0, 1]) and hands a bad one to the general path, which names it."""
    model = exopk.load_model(exopk.model_path("m5_intranasal_olfactory"))
    theta = exercised_parameters(model, seed=1)[None]
    bolus = exopk.Regimen.bolus("intranasal", 100.0)
    assert fast_outputs(compile_model(model), theta, bolus) is not None
    bad = model.replace(routes=tuple(
        exopk.model.Route(r.name, {**r.targets, **split})
        if r.name == "intranasal" else r for r in model.routes))
    compiled = compile_model(bad)
    assert fast_outputs(compiled, theta, bolus) is None
    with pytest.raises(SimulationError, match="route 'intranasal' splits the dose"):
        evaluate(compiled, theta, TIMES, bolus)


def test_a_negative_rate_raises_as_on_the_general_path():
    """A rate expression that goes negative is handed to the general path, which names the
    transfer."""
    import dataclasses
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    bad = model.replace(transfers=tuple(
        dataclasses.replace(t, clearance="CL - 1000") if t.clearance == "CL" else t
        for t in model.transfers))
    compiled = compile_model(bad)
    theta = compiled.parameter_matrix()
    bolus = exopk.Regimen.bolus("iv", 100.0)
    assert fast_outputs(compiled, theta, bolus) is None
    with pytest.raises(SimulationError, match="transfer plasma -> eliminated has negative rate"):
        evaluate(compiled, theta, TIMES, bolus)
