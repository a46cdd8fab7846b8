"""The fused log-posterior: exact gradient with random effects, covariates and species scaling."""

import math

import numpy as np
import pytest

import exopk
import exopk.data
from exopk.inference.posterior import Covariate, LogPosterior, PosteriorSpec
from exopk.model import Prior
from exopk.observation import build_observations


@pytest.fixture(scope="module")
def structured_posterior():
    model = exopk.load_model(exopk.model_path("m2_mps"))
    evidence = exopk.data.load("ev")
    chosen = evidence.isel(record=np.flatnonzero(
        np.isin(evidence.species.values.astype(str), ["mouse", "rat"])
        & (evidence.route.values.astype(str) == "iv")))
    observations, _ = build_observations(chosen, model)
    species = tuple("rat" if o.study.startswith("willekens") else "mouse" for o in observations)
    labels = tuple("radio" if o.study.startswith(("morishita", "kim2019_review_ref26", "willekens"))
                   else "other" for o in observations)
    spec = PosteriorSpec(
        conditions={"macrophage_depleted": {"macrophage_depletion": 1.0}, "parkinson_model": {}},
        random_effects=("k_uptake_liver",),
        covariates=(Covariate("label", labels, ("k_free_label_clearance",), reference="other"),),
        species_scaling=("k_uptake_spleen",),
        body_weights_kg=tuple(0.273 if s == "rat" else 0.025 for s in species),
        exponent_prior=Prior("normal", {"mean": -0.25, "sd": 0.1}))
    return LogPosterior(model, observations, spec)


def test_coordinates_name_every_structure(structured_posterior):
    names = structured_posterior.names
    assert "log omega_k_uptake_liver" in names
    assert any(n.startswith("z_k_uptake_liver[") for n in names)
    assert "beta_label[radio]" in names and "allometric_exponent" in names


def test_gradient_matches_finite_differences(structured_posterior):
    lp = structured_posterior
    phi = lp.sample_prior(np.random.default_rng(4), 1)[0] * 0.5 + 0.5 * lp.prior_centre()
    value, gradient = lp.evaluateS1(phi)
    assert np.isfinite(value)
    for j, name in enumerate(lp.names):
        h = 1e-6
        up, down = phi.copy(), phi.copy()
        up[j] += h
        down[j] -= h
        fd = (lp(up) - lp(down)) / (2 * h)
        assert gradient[j] == pytest.approx(fd, rel=1e-5, abs=1e-6), name


def test_predictions_of_many_draws_equal_those_of_each_draw(structured_posterior):
    lp = structured_posterior
    draws = 0.5 * lp.sample_prior(np.random.default_rng(5), 7) + 0.5 * lp.prior_centre()
    predicted, terms = lp.predictions_of_draws(draws, chunk=3)
    for k, phi in enumerate(draws):
        one_y, one_terms = lp.predictions_and_terms(phi)
        np.testing.assert_allclose(predicted[k], one_y, rtol=1e-12)
        np.testing.assert_allclose(terms[k], one_terms, rtol=1e-12, atol=1e-12)


def test_log_posterior_is_prior_plus_jacobian_plus_likelihood():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    from exopk.observation import Observation, Request
    observation = Observation("s", 2, Request("half_life", "plasma_concentration"), "iv", "", 3.0,
                              math.nan, "none", 0.1)
    lp = LogPosterior(model, [observation])
    cl, v, tau = 0.4, 1.5, 0.2
    phi = lp.to_unconstrained({"CL": cl, "V_plasma": v, "tau": tau})
    assert lp.natural(phi)["CL"] == pytest.approx(cl, rel=1e-12)
    # bounded parameters use scaled logit coordinates: |dx/dphi| by finite differences
    log_jacobian = math.log(tau)
    for j in range(2):
        h = 1e-6
        up, down = phi.copy(), phi.copy()
        up[j] += h
        down[j] -= h
        log_jacobian += math.log((lp.to_natural(up)[0][j] - lp.to_natural(down)[0][j]) / (2 * h))
    expected = (float(model.parameter("CL").prior.logpdf(cl)) + float(model.parameter("V_plasma").prior.logpdf(v))
                + float(lp.spec.tau_prior.logpdf(tau)) + log_jacobian)
    y = math.log(2) * v / cl
    sigma = math.sqrt(0.1**2 + tau**2)
    expected += -0.5 * ((math.log(3.0) - math.log(y)) / sigma) ** 2 - math.log(sigma * 3.0 * math.sqrt(2 * math.pi))
    assert lp(phi) == pytest.approx(expected, rel=1e-8)


def test_chains_start_at_the_mode_of_the_sampled_density():
    """The MAP maximises the natural density; chains start where the sampled density (with
    the coordinates' Jacobian) peaks, found from the MAP."""
    from exopk.inference.sampling import chain_starts, find_map
    from exopk.observation import Observation, Request
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    observation = Observation("s", 2, Request("time_to_half", "plasma_concentration"), "iv", "",
                              3.0, math.nan, "none", 0.1)
    lp = LogPosterior(model, [observation])
    map_phi = find_map(lp, seed=1, starts=2).phi
    start = chain_starts(lp, map_phi, 1, seed=1, jitter=0.0)[0]
    assert np.abs(lp.evaluateS1(start)[1]).max() < 0.05          # iRprop- stops near the mode
    assert lp(start) > lp(map_phi) + 0.1
    jittered = chain_starts(lp, map_phi, 3, seed=1)
    assert np.std(np.array(jittered) - start) == pytest.approx(0.05, rel=0.6)


def test_likelihood_and_posterior_share_one_grouping_and_agree():
    lp = __import__("exopk.inference.fit", fromlist=["prepare"]).prepare(
        "fits/mouse_iv_mps.toml").log_posterior
    phi = lp.prior_centre() + 0.2
    y, terms = lp.predictions_and_terms(phi)
    theta = lp.base.copy()
    theta[lp._free_index] = lp.to_natural(phi)[0]
    y_likelihood, jacobian = lp.likelihood.predictions(theta, gradients=True)
    np.testing.assert_allclose(y_likelihood, y, rtol=1e-12)
    # the macrophage-depleted condition fixes its switch: no derivative through it
    depleted = [i for i, o in enumerate(lp.observations) if o.condition == "macrophage_depleted"]
    switch = lp.model.parameter_names.index("macrophage_depletion")
    assert depleted and np.all(jacobian[depleted, switch] == 0.0)
    normal = [i for i, o in enumerate(lp.observations) if o.condition == ""]
    assert np.any(jacobian[normal, switch] != 0.0)
    # both group the design's observations the same way (conditions with equal overrides merge)
    assert [len(g.representatives) for g in lp.likelihood._groups] == \
        [len(g.representatives) for g in lp._groups]


def test_the_compiled_free_parameter_density_is_the_coordinates_and_prior_set():
    """Every transform (logit, log, log below, identity) with log-normal, logit-normal and
    other priors: natural values, dx/dphi, log-Jacobian plus prior densities and their
    gradient as BoundedCoordinates and PriorSet give them; -inf outside a prior's support."""
    from exopk.inference.coordinates import BoundedCoordinates
    from exopk.inference.density_kernel import (PRIOR_CODES, TRANSFORM_CODES,
                                                free_parameter_density)
    from exopk.model.priors import PriorSet
    lower = np.array([0.0, 0.0, -np.inf, -np.inf, 0.0, 0.1])
    upper = np.array([1.0, np.inf, 2.0, np.inf, 5.0, np.inf])
    priors = [Prior("logitnormal", {"median": 0.3, "sigma": 0.8}),
              Prior("lognormal", {"median": 0.02, "sigma": 1.2}),
              Prior("normal", {"mean": 1.0, "sd": 2.0}),
              Prior("normal", {"mean": 0.0, "sd": 1.0}),
              Prior("lognormal", {"median": 1.0, "sigma": 0.5}),
              Prior("lognormal", {"median": 0.5, "sigma": 0.3})]
    coordinates = BoundedCoordinates(lower, upper)
    codes = np.array([TRANSFORM_CODES[k] for k in coordinates.kinds])
    assert sorted(set(coordinates.kinds)) == sorted(TRANSFORM_CODES)
    families = np.array([PRIOR_CODES.get(p.distribution, 0) for p in priors])
    location = np.array([math.log(p.arguments["median"] / (1 - p.arguments["median"]))
                         if p.distribution == "logitnormal" else
                         math.log(p.arguments["median"]) if p.distribution == "lognormal"
                         else 0.0 for p in priors])
    sigma = np.array([p.arguments.get("sigma", 1.0) for p in priors])
    joint = PriorSet(priors)
    rng = np.random.default_rng(3)
    for phi in rng.normal(0.0, 3.0, size=(50, 6)):
        x, dx, gradient = np.empty(6), np.empty(6), np.zeros(6)
        value = free_parameter_density(phi, codes, lower, upper, families, location, sigma, x,
                                       dx, gradient)
        expected_x, expected_dx = coordinates.to_model_and_derivative(phi)
        np.testing.assert_allclose(x, expected_x, rtol=1e-13)
        np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)
        log_j, d_log_j = coordinates.log_jacobian_det_S1(phi)
        prior, slope = joint.log_density_and_gradient(expected_x)
        others = [j for j in range(6) if not families[j]]
        other_value = sum(priors[j].log_density_and_slope(x[j])[0] for j in others)
        other_slope = np.zeros(6)
        other_slope[others] = [priors[j].log_density_and_slope(x[j])[1] for j in others]
        assert value + other_value == pytest.approx(log_j + prior, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(gradient + other_slope * dx, d_log_j + slope * dx,
                                   rtol=1e-11, atol=1e-12)
    x, dx, gradient = np.empty(6), np.empty(6), np.zeros(6)
    outside = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    families_outside = families.copy()
    families_outside[3] = PRIOR_CODES["lognormal"]      # identity coordinate 0: not positive
    assert free_parameter_density(outside, codes, lower, upper, families_outside, location,
                                  sigma, x, dx, gradient) == -np.inf


def test_the_compiled_value_terms_are_the_likelihoods():
    """Sum, d/dy and d/dtau of the log-normal terms of observed values, as Likelihood.terms
    gives them (with and without a reported error, tau near 0 and large); a prediction that is
    not positive is left to the general path."""
    from exopk.observation import Observation, Request
    from exopk.observation.likelihood_kernel import value_terms_and_slopes
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    observations = [Observation("s", k, Request("value", "plasma_percent_id", float(t)), "iv", "",
                                value, math.nan, "none", sigma)
                    for k, (t, value, sigma) in enumerate([(5, 80.0, 0.1), (30, 40.0, 0.0),
                                                          (60, 20.0, 0.3)], start=2)]
    likelihood = LogPosterior(model, observations).likelihood
    assert likelihood.values_only
    rng = np.random.default_rng(4)
    for tau in (1e-3, 0.2, 3.0):
        y = rng.lognormal(3.0, 1.0, size=3)
        terms, d_log_y, d_sigma = likelihood.terms(np.log(y), tau)
        sigma = np.sqrt(likelihood._sigma_log**2 + tau**2)
        slope = np.empty(3)
        total, d_tau, ok = value_terms_and_slopes(y, likelihood._log_value, likelihood._sigma_log,
                                                  tau, slope)
        assert ok
        assert total == pytest.approx(terms.sum(), rel=1e-13)
        np.testing.assert_allclose(slope, d_log_y / y, rtol=1e-13)
        assert d_tau == pytest.approx(np.sum(d_sigma * tau / sigma), rel=1e-12)
    y[1] = 0.0
    assert not value_terms_and_slopes(y, likelihood._log_value, likelihood._sigma_log, 0.2,
                                      slope)[2]
