"""Sampling coordinates as a PINTS Transformation, and the parameter sets of posterior draws."""

import numpy as np
import pints
import pytest

from exopk.inference.coordinates import BoundedCoordinates
from exopk.inference.fit import prepare
from exopk.inference.result import load_fit
from exopk.observation import predict

LOWER = np.array([0.0, 0.0, -np.inf, 2.0])
UPPER = np.array([1.0, np.inf, 5.0, 1e3])


def test_round_trip_and_vectorisation():
    coordinates = BoundedCoordinates(LOWER, UPPER)
    assert coordinates.kinds == ("logit", "log", "log_below", "logit")
    q = np.random.default_rng(1).normal(size=(3, 7, 4))
    p = coordinates.to_model(q)
    assert np.all((p > LOWER) & (p < UPPER))
    np.testing.assert_allclose(coordinates.to_search(p), q, rtol=1e-10, atol=1e-10)
    for point_q, point_p in zip(q.reshape(-1, 4), p.reshape(-1, 4)):   # one point at a time
        np.testing.assert_array_equal(coordinates.to_model(point_q), point_p)


def test_jacobian_matches_finite_differences_and_pints_conventions():
    coordinates = BoundedCoordinates(LOWER, UPPER)
    q = np.array([0.3, -1.2, 0.7, 2.5])
    h = 1e-6
    numeric = np.array([(coordinates.to_model(q + h * e) - coordinates.to_model(q - h * e))
                        / (2 * h) for e in np.eye(4)]).T
    np.testing.assert_allclose(coordinates.jacobian(q), numeric, rtol=1e-7)
    value, gradient = coordinates.log_jacobian_det_S1(q)
    assert value == pytest.approx(np.log(abs(np.linalg.det(numeric))), rel=1e-8)
    numeric_gradient = [(coordinates.log_jacobian_det(q + h * e)
                         - coordinates.log_jacobian_det(q - h * e)) / (2 * h) for e in np.eye(4)]
    np.testing.assert_allclose(gradient, numeric_gradient, rtol=1e-6)
    # PINTS composes it like any of its own transformations
    composed = pints.ComposedTransformation(BoundedCoordinates(LOWER[:2], UPPER[:2]),
                                            BoundedCoordinates(LOWER[2:], UPPER[2:]))
    np.testing.assert_array_equal(composed.to_model(q), coordinates.to_model(q))
    assert composed.log_jacobian_det(q) == pytest.approx(value, rel=1e-12)


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="coordinate 1: lower bound 3.0"):
        BoundedCoordinates([0.0, 3.0], [1.0, 3.0])


@pytest.fixture(scope="module")
def shipped():
    return prepare("fits/mouse_iv_mps.toml").log_posterior, load_fit("fits/mouse_iv_mps.nc")


def test_log_jacobian_of_the_posterior_is_the_transformation_s(shipped):
    lp, _ = shipped
    phi = lp.prior_centre() + 0.3
    value, gradient = lp.log_jacobian(phi, gradient=True)
    expected, expected_gradient = lp.coordinates.log_jacobian_det_S1(phi)
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_array_equal(gradient, expected_gradient)


def test_parameter_sets_of_the_shipped_draws(shipped):
    lp, tree = shipped
    posterior = tree["posterior"].to_dataset()
    sets = lp.parameter_sets(posterior)
    assert sets.dims == ("chain", "draw", "parameter")
    assert sets.shape == (4, 1000, len(lp.model.parameter_names))
    phi = lp.coordinates.to_search(np.stack([posterior[n].values for n in lp.natural_names()], -1))
    for chain, draw in [(0, 0), (2, 517), (3, 999)]:
        natural, _ = lp.to_natural(phi[chain, draw])
        np.testing.assert_array_equal(sets.sel(parameter=lp.free)[chain, draw].values, natural)
    for name in lp.free:
        np.testing.assert_allclose(sets.sel(parameter=name).values, posterior[name].values,
                                   rtol=1e-12)
    fixed = [n for n in lp.model.parameter_names if n not in lp.free]
    np.testing.assert_array_equal(
        sets.sel(parameter=fixed).values,
        np.broadcast_to(lp.base[[lp.model.parameter_names.index(n) for n in fixed]],
                        (4, 1000, len(fixed))))


def test_parameter_sets_per_observation_reproduce_the_shipped_predictions(shipped):
    lp, tree = shipped
    some = tree["posterior"].to_dataset().isel(draw=slice(0, 3))
    sets = lp.parameter_sets(some, per="observation")
    assert sets.dims == ("chain", "draw", "observation", "parameter")
    depletion = lp.model.parameter_names.index("macrophage_depletion")
    stored = tree["posterior_predictive"]["mean"].isel(draw=slice(0, 3)).values
    for i, obs in enumerate(lp.observations):
        expected = 1.0 if obs.condition == "macrophage_depleted" else lp.base[depletion]
        assert np.all(sets[..., i, depletion] == expected)
        theta = sets[:, :, i].values.reshape(-1, sets.sizes["parameter"])
        values, _ = predict(lp.compiled, theta, obs.design, [obs.request], gradients=False)
        np.testing.assert_allclose(values[:, 0], stored[..., i].ravel(), rtol=1e-9)
