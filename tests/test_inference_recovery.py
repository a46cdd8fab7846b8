"""Simulated data with a fit's design, and recovery of known parameters from it (m0 model)."""

import dataclasses
import math

import numpy as np
import pytest
import scipy.stats

import exopk
from exopk.errors import SimulationError
from exopk.inference.posterior import LogPosterior, PosteriorSpec
from exopk.inference.sampling import find_map
from exopk.inference.simulated import (SIMULATED_PREFIX, fit_simulated, simulate_observations,
                                       simulated_posterior)
from exopk.observation import Observation, Request

TRUTH = {"CL": 0.05, "V_plasma": 1.5}


@pytest.fixture(scope="module")
def model():
    return exopk.load_model(exopk.model_path("m0_one_compartment"))


def design(sigma_log):
    """AUC (dose / CL), Vss (V) and an upper bound on the half-life (ln 2 V / CL) in plasma."""
    def observation(line, request, value, censoring="none"):
        return Observation("demo2024", line, request, "iv", "", value=value, upper=math.nan,
                           censoring=censoring, sigma_log=sigma_log)

    return [observation(1, Request("auc", "plasma_concentration"), 500.0),
            observation(2, Request("vss", "plasma_concentration"), 1.5),
            observation(3, Request("half_life", "plasma_concentration"), 30.0, "upper")]


def fields_but_value(observation):
    """Every field of an observation except the simulated ones (value, censoring, upper)."""
    return {k: v for k, v in dataclasses.asdict(observation).items()
            if k not in ("value", "censoring", "upper")}


def test_simulated_observations_keep_the_design_and_are_labelled(model):
    lp = LogPosterior(model, design(0.1))
    phi = lp.to_unconstrained({**TRUTH, "tau": 0.2})
    simulated = simulate_observations(lp, phi, np.random.default_rng(7))
    assert [o.study for o in simulated] == [SIMULATED_PREFIX + "demo2024"] * 3
    for original, new in zip(lp.observations, simulated):
        assert fields_but_value(new) == {**fields_but_value(original), "study": new.study}
        assert new.censoring == "none" and math.isnan(new.upper) and new.value > 0


def test_simulation_is_reproducible_for_a_seed(model):
    lp = LogPosterior(model, design(0.1))
    phi = lp.to_unconstrained({**TRUTH, "tau": 0.2})

    def values(seed):
        return [o.value for o in simulate_observations(lp, phi, np.random.default_rng(seed))]

    assert values(11) == values(11)
    assert values(11) != values(12)


def test_simulation_refuses_a_prediction_that_is_not_positive(model):
    late = Observation("demo2024", 1, Request("value", "plasma_concentration", 1e5), "iv", "",
                       value=1.0, upper=math.nan, censoring="none", sigma_log=0.1)
    lp = LogPosterior(model, [late])
    phi = lp.to_unconstrained({"CL": 10.0, "V_plasma": 0.1, "tau": 0.2})   # exp(-1e7) underflows
    with pytest.raises(SimulationError):
        simulate_observations(lp, phi, np.random.default_rng(0))


def test_simulated_noise_is_the_likelihood_noise(model):
    lp = LogPosterior(model, design(0.3)[:1])
    tau = 0.4
    phi = lp.to_unconstrained({**TRUTH, "tau": tau})
    predicted = lp.predictions_and_terms(phi)[0][0]
    rng = np.random.default_rng(3)
    log_ratio = np.log([simulate_observations(lp, phi, rng)[0].value / predicted
                        for _ in range(2000)])
    assert abs(log_ratio.mean()) < 0.03
    assert log_ratio.std() == pytest.approx(math.hypot(0.3, tau), rel=0.05)


def test_simulated_posterior_has_the_same_coordinates_and_spec(model):
    spec = PosteriorSpec(fixed={"V_plasma": 1.5})
    lp = LogPosterior(model, design(0.1), spec)
    phi = lp.to_unconstrained({"CL": 0.05, "tau": 0.2})
    simulated = simulate_observations(lp, phi, np.random.default_rng(0))
    target = simulated_posterior(lp, simulated)
    assert target.names == lp.names and len(lp.names) == 2   # CL and tau
    assert target.spec is spec
    assert target.studies == [SIMULATED_PREFIX + "demo2024"]
    with pytest.raises(SimulationError):
        simulated_posterior(lp, simulated[:2])


def test_map_recovers_parameters_from_precise_data(model):
    lp = LogPosterior(model, design(0.02)[:2])
    phi = lp.to_unconstrained({**TRUTH, "tau": 0.01})
    target = simulated_posterior(lp, simulate_observations(lp, phi, np.random.default_rng(5)))
    estimate = target.natural(find_map(target, seed=1, starts=2).phi)
    for name, value in TRUTH.items():
        assert estimate[name] == pytest.approx(value, rel=0.1)


def test_posterior_intervals_cover_prior_drawn_truths(model):
    lp = LogPosterior(model, design(0.3))
    replicates = 8
    covered = []
    for seed in range(replicates):
        result = fit_simulated(lp, seed, chains=1, warmup=150, draws=150, map_starts=2)
        low, high = np.quantile(result.draws[0], [0.05, 0.95], axis=0)
        covered.extend((low <= result.phi_true) & (result.phi_true <= high))
    trials = replicates * lp.n_parameters()
    # fewer covers than this has probability below 0.001 under 90% coverage
    assert sum(covered) >= scipy.stats.binom.ppf(0.001, trials, 0.9)
