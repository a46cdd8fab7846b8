"""The single-bolus plan of predictions with derivatives against the general evaluation."""

import warnings

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model
from exopk.errors import IllConditionedWarning, SimulationError
from exopk.observation import Request, predict
from exopk.observation.predictions import _evaluated
from exopk.observation.single_bolus import SingleBolusPlan

from conftest import exercised_parameters
from test_engine_gradients import mixed_batch

TIMES = (0.0, 5.0, 60.0, 240.0, 1440.0)

# some outputs of the requests below are never reached by the bolus of a route: their areas
# are 0 and mean residence times and clearances 0 / 0 and D / 0 (in both paths alike)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                                        "ignore:invalid value:RuntimeWarning")


def planned_requests(compiled, route):
    """Values at ``TIMES`` of every output without endogenous secretion, the moment kinds of
    every draining output, and the fraction cleared and the time to half of the outputs that
    read where the bolus lands."""
    model = compiled.model
    landing = set(model.route(route).targets)
    requests = []
    for o, output in enumerate(model.outputs):
        if not compiled.output_endogenous[o]:
            requests += [Request("value", output.name, t) for t in TIMES]
        if compiled.output_drains[o]:
            requests += [Request(kind, output.name, scale=0.5)
                         for kind in ("auc", "mrt", "clearance", "vss")]
        if landing & set(output.compartments) and not compiled.output_endogenous[o]:
            requests += [Request("fraction_cleared", output.name, 60.0),
                         Request("time_to_half", output.name)]
    return requests


def assert_same_as_general(compiled, theta, regimen, requests):
    """The plan answers, with the general evaluation's numbers to rounding: values to 1e-12
    of the largest value of the same kind of the same output, and derivatives to 1e-10 of
    their largest (a value that is 0 in exact arithmetic, at time 0 away from where the bolus
    lands, is rounding in both); the same maths, with outputs summed term by term instead of
    by the output matrix."""
    plan = SingleBolusPlan.of(compiled, regimen, requests)
    assert plan is not None
    planned = plan.predict(theta)
    general = _evaluated(compile_model(compiled.model), theta, regimen, requests, True)
    assert planned is not None, "the plan handed the batch to the general path"
    values, derivatives = planned
    finite = np.isfinite(general[0])
    np.testing.assert_array_equal(np.isfinite(values), finite)
    for kind, output in {(r.kind, r.output) for r in requests}:
        same = [i for i, r in enumerate(requests) if (r.kind, r.output) == (kind, output)]
        expected, found = general[0][:, same], values[:, same]
        scale = np.max(np.abs(np.where(np.isfinite(expected), expected, 0)), axis=1,
                       keepdims=True)
        ok = np.isfinite(expected)
        assert np.all(np.abs(found - expected)[ok] <= 1e-12 * np.broadcast_to(scale, ok.shape)[ok]
                      ), f"{kind} of {output}"
        expected, found = general[1][:, same], derivatives[:, same]
        scale = np.max(np.abs(np.where(np.isfinite(expected), expected, 0)), axis=(1, 2),
                       keepdims=True)
        scale = np.broadcast_to(np.where(scale > 0, scale, 1.0), expected.shape)
        error = np.abs(found - expected)[ok] / scale[ok]
        assert np.all(error <= 1e-10), f"derivatives of the {kind} of {output}"


@pytest.mark.parametrize("name", [m for m in exopk.available_models() if "saturable" not in m])
def test_the_plan_agrees_with_the_general_path_on_every_linear_model(name):
    """Every linear shipped model, a bolus by each route, three parameter sets together."""
    model = exopk.load_model(exopk.model_path(name))
    compiled = compile_model(model)
    theta = np.stack([exercised_parameters(model, seed) for seed in range(3)])
    for route in model.routes:
        regimen = exopk.Regimen.bolus(route.name, 100.0)
        requests = planned_requests(compiled, route.name)
        try:
            _evaluated(compiled, theta, regimen, requests, True)
        except SimulationError as error:       # an output that never falls to half, say
            with pytest.raises(SimulationError, match=str(error)[:40]):
                SingleBolusPlan.of(compiled, regimen, requests).predict(theta)
            continue
        assert_same_as_general(compiled, theta, regimen, requests)


def complex_and_ill_members():
    """From the mixed batch of m5_intranasal: members with complex pairs, members with real
    spectra, and the one with an ill-conditioned eigenvector matrix."""
    from exopk.engine.eigen import eigendecompose
    from exopk.engine.linear import CONDITION_LIMIT
    compiled, theta = mixed_batch()
    values = compiled.evaluate_expressions(theta)[0]
    lam, _, _, condition = eigendecompose(
        compiled.linear_system.matrix(values[:, compiled.rate_rows]))
    good = condition < CONDITION_LIMIT
    pairs = np.flatnonzero(lam.imag.any(axis=1) & good)
    real = np.flatnonzero(~lam.imag.any(axis=1) & good)
    return compiled, theta[pairs], theta[real[:2]], theta[~good]


def test_members_with_complex_pairs_are_planned_in_complex_arithmetic():
    compiled, pairs, _, _ = complex_and_ill_members()
    regimen = exopk.Regimen.bolus("iv", 100.0)
    assert_same_as_general(compiled, pairs, regimen, planned_requests(compiled, "iv"))


@pytest.mark.parametrize("batch", ["mixed spectra", "ill-conditioned", "too many"])
def test_batches_the_general_path_splits_are_handed_to_it(batch):
    """Real and complex spectra together, an ill-conditioned member, or more sets than the
    engine solves together with gradients: the plan answers None, and predict answers as the
    general evaluation does."""
    from exopk.engine.linear import CHUNK
    compiled, pairs, real, ill = complex_and_ill_members()
    theta = {"mixed spectra": np.concatenate([real, pairs]),
             "ill-conditioned": np.concatenate([real, ill]),
             "too many": np.repeat(real, CHUNK, axis=0)}[batch]
    regimen = exopk.Regimen.bolus("iv", 100.0)
    requests = planned_requests(compiled, "iv")
    plan = SingleBolusPlan.of(compiled, regimen, requests)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)    # the member solved by expm
        assert plan.predict(theta) is None
        found = predict(compiled, theta, regimen, requests, gradients=True)
        general = _evaluated(compile_model(compiled.model), theta, regimen, requests, True)
    np.testing.assert_array_equal(found[0], general[0])
    np.testing.assert_array_equal(found[1], general[1])


def test_designs_the_plan_does_not_cover_get_no_plan():
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled = compile_model(model)
    bolus = exopk.Regimen.bolus("iv", 100.0)
    values = [Request("value", "plasma_percent_id", 60.0)]
    assert SingleBolusPlan.of(compiled, bolus, values) is not None
    for regimen in (exopk.Regimen.infusion("iv", 100.0, duration=10.0),
                    exopk.Regimen.repeated("iv", 100.0, interval=60.0, count=2),
                    exopk.Regimen.bolus("iv", 100.0, time=5.0)):
        assert SingleBolusPlan.of(compiled, regimen, values) is None
    modal = values + [Request("half_life", "plasma_percent_id")]
    assert SingleBolusPlan.of(compiled, bolus, modal) is None
    secreted = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    total = [Request("value", "plasma_total_concentration", 60.0)]
    assert SingleBolusPlan.of(secreted, bolus, total) is None
    assert SingleBolusPlan.of(secreted, bolus,
                              [Request("auc", "plasma_total_concentration")]) is not None
    saturable = compile_model(exopk.load_model(exopk.model_path("m2_mps_saturable")))
    assert SingleBolusPlan.of(saturable, bolus, values) is None
