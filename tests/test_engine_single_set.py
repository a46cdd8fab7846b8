"""One parameter set by right eigenvectors and one LU solve (what evaluate takes for one set
without sensitivities), against the general dense path."""

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model
from exopk.engine.simulation import evaluate
from exopk.engine.single_set import single_set_amounts
from exopk.engine.simulation import dose_inputs

from conftest import exercised_parameters
from test_engine_gradients import mixed_batch

TIMES = np.array([0.0, 1.0, 5.0, 30.0, 120.0, 240.0, 250.0, 1440.0])


def fast_amounts(compiled, theta, regimen):
    values = compiled.evaluate_expressions(theta, derivatives=False)[0]
    return single_set_amounts(compiled.linear_system, values[:, compiled.rate_rows],
                              dose_inputs(compiled, regimen, values, None), TIMES)


def assert_as_the_dense_path(compiled, theta, regimen):
    amounts = fast_amounts(compiled, theta, regimen)
    assert amounts is not None, "the single-set path handed the set to the general path"
    fast = evaluate(compiled, theta, TIMES, regimen)
    dense = evaluate(compiled, theta, TIMES, regimen, path="dense")
    for found, expected in ((amounts, dense.amounts), (fast.amounts, dense.amounts),
                            (fast.outputs, dense.outputs)):
        scale = np.max(np.abs(expected), axis=1, keepdims=True)     # per quantity, over times
        error = np.abs(found - expected) / np.where(scale > 0, scale, 1.0)
        assert np.max(error) < 1e-12
    np.testing.assert_array_equal(fast.administered, dense.administered)
    assert fast.output_sensitivities is None and fast.amount_sensitivities is None


@pytest.mark.parametrize("name", [m for m in exopk.available_models() if "saturable" not in m])
def test_one_set_after_boluses_is_the_dense_path_on_every_linear_model(name):
    """A bolus by each route, and repeated boluses (one after the last time)."""
    model = exopk.load_model(exopk.model_path(name))
    compiled = compile_model(model)
    theta = exercised_parameters(model, seed=1)[None]
    for route in model.routes:
        assert_as_the_dense_path(compiled, theta, exopk.Regimen.bolus(route.name, 100.0))
    repeated = exopk.Regimen.repeated(model.routes[-1].name, 50.0, interval=240.0, count=8)
    assert_as_the_dense_path(compiled, theta, repeated)


def test_complex_pairs_and_ill_conditioned_sets():
    """A set with a complex pair is solved here; an ill-conditioned one goes to the general
    path (which solves it exactly), as do infusions and sensitivities."""
    from exopk.engine.eigen import eigendecompose
    from exopk.engine.linear import CONDITION_LIMIT
    compiled, theta = mixed_batch()
    values = compiled.evaluate_expressions(theta)[0]
    lam, _, _, condition = eigendecompose(compiled.linear_system.matrix(
        values[:, compiled.rate_rows]))
    pair = int(np.flatnonzero(lam.imag.any(axis=1) & (condition < CONDITION_LIMIT))[0])
    ill = int(np.flatnonzero(~(condition < CONDITION_LIMIT))[0])
    bolus = exopk.Regimen.bolus("intranasal", 100.0)
    assert_as_the_dense_path(compiled, theta[pair:pair + 1], bolus)
    assert fast_amounts(compiled, theta[ill:ill + 1], bolus) is None
    infusion = exopk.Regimen.infusion("iv", 100.0, duration=30.0)
    assert fast_amounts(compiled, theta[pair:pair + 1], infusion) is None
