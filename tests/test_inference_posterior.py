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
