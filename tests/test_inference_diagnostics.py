"""MCMC convergence diagnostics: agreement with ArviZ, behaviour on known chains, bad input."""

import json
import math
import warnings

import numpy as np
import pytest

from exopk.inference.diagnostics import ess_bulk, ess_tail, mcse_mean, split_rhat

from conftest import DATA

REFERENCE = json.loads((DATA / "diagnostics_reference.json").read_text())
FUNCTIONS = {"rhat": split_rhat, "ess_bulk": ess_bulk, "ess_tail": ess_tail,
             "mcse_mean": mcse_mean}


def ar1(rng, rho, shape):
    """Stationary Gaussian AR(1) chains with unit innovations, started at stationarity."""
    noise = rng.standard_normal(shape)
    x = np.empty(shape)
    x[:, 0] = noise[:, 0] / math.sqrt(1.0 - rho**2)
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def recipe_draws(case):
    """The draws of a reference case, from its recipe (see its 'formula')."""
    rng = np.random.default_rng(case["seed"])
    shape = tuple(case["shape"])
    params = case["params"]
    if case["kind"] == "normal":
        return (np.asarray(params["loc"])[:, None]
                + np.asarray(params["scale"])[:, None] * rng.standard_normal(shape))
    if case["kind"] == "ar1":
        return ar1(rng, params["rho"], shape)
    if case["kind"] == "cauchy":
        return rng.standard_cauchy(shape)
    if case["kind"] == "poisson":
        return rng.poisson(params["lam"], shape).astype(float)
    assert case["kind"] == "constant"
    return np.full(shape, params["value"])


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda case: case["name"])
def test_matches_arviz(case):
    draws = recipe_draws(case)
    assert draws.sum() == pytest.approx(case["draws_sum"], rel=1e-12, abs=1e-12)
    assert draws[0, 0] == pytest.approx(case["draws_first"], rel=1e-12, abs=1e-12)
    for key, function in FUNCTIONS.items():
        expected = case["arviz"][key]
        got = function(draws)
        if expected is None:  # ArviZ's NaN
            assert math.isnan(got), key
        else:  # same algorithm, same operations up to the FFT length: rounding only
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), key


def test_reference_cases_cover_the_interesting_regimes():
    names = {case["name"] for case in REFERENCE["cases"]}
    assert {"iid_normal", "ar1_rho_0.9", "shifted_means", "cauchy", "constant"} <= names
    assert REFERENCE["versions"]["arviz"]
    assert REFERENCE["source"]


@pytest.mark.parametrize("seed", range(5))
def test_iid_normal_draws_look_converged(seed):
    draws = np.random.default_rng(seed).standard_normal((4, 1000))
    assert abs(split_rhat(draws) - 1.0) < 0.01
    # independent draws: ESS is the number of draws up to sampling noise (about 5 %)
    assert ess_bulk(draws) == pytest.approx(4000, rel=0.2)
    assert ess_tail(draws) == pytest.approx(4000, rel=0.25)
    assert mcse_mean(draws) == pytest.approx(1 / math.sqrt(4000), rel=0.2)


@pytest.mark.parametrize("rho", [0.9, 0.5, -0.3])
def test_ar1_ess_matches_theory(rho):
    # ESS of the mean of a stationary AR(1) chain is n (1 - rho) / (1 + rho). One estimate from
    # 4 x 2000 draws scatters by about 15 % (rho = 0.9); the mean of 20 scatters by about 3 %.
    n_chain, n_draw, replicates = 4, 2000, 20
    theory = n_chain * n_draw * (1 - rho) / (1 + rho)
    sd_mean = math.sqrt((1 + rho) / (1 - rho) / (n_chain * n_draw)) / math.sqrt(1 - rho**2)
    rng = np.random.default_rng(12345)
    ess, mcse = [], []
    for _ in range(replicates):
        draws = ar1(rng, rho, (n_chain, n_draw))
        ess.append(ess_bulk(draws))
        mcse.append(mcse_mean(draws))
    assert np.mean(ess) == pytest.approx(theory, rel=0.1)
    assert np.mean(mcse) == pytest.approx(sd_mean, rel=0.1)


def test_chains_with_different_means_give_large_rhat():
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4, 500)) + np.array([[0.0], [0.0], [0.0], [2.0]])
    assert split_rhat(draws) > 1.1
    assert ess_bulk(draws) < 0.2 * draws.size


def test_chains_with_different_scales_are_caught_by_folding():
    rng = np.random.default_rng(5)
    draws = rng.standard_normal((4, 1000)) * np.array([[1.0], [1.0], [1.0], [3.0]])
    assert split_rhat(draws) > 1.1
    assert ess_tail(draws) < 0.05 * draws.size


def test_trend_within_chains_is_caught_by_splitting():
    rng = np.random.default_rng(8)
    draws = rng.standard_normal((4, 1000)) + np.linspace(0.0, 3.0, 1000)
    assert split_rhat(draws) > 1.1


def test_rank_diagnostics_are_invariant_to_reparametrisation():
    draws = ar1(np.random.default_rng(9), 0.7, (4, 300))
    for function in (ess_bulk, ess_tail):  # ranks and quantile indicators: any increasing map
        assert function(np.exp(draws)) == pytest.approx(function(draws), rel=1e-12)
    for function in (split_rhat, ess_bulk, ess_tail):  # folding about the median: affine maps
        assert function(2.0 - 3.0 * draws) == pytest.approx(function(draws), rel=1e-12)


def test_constant_draws_follow_arviz_convention_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        constant = np.full((3, 9), 2.5)
        assert math.isnan(split_rhat(constant))
        assert ess_bulk(constant) == ess_tail(constant) == 3 * 2 * 4  # split draws, odd one out
        assert mcse_mean(constant) == 0.0
        stuck = np.repeat(np.array([[0.0], [1.0], [2.0]]), 10, axis=1)  # each chain constant
        assert split_rhat(stuck) == math.inf
        assert ess_bulk(stuck) < 10
        binary = np.random.default_rng(1).integers(0, 2, (4, 100)).astype(float)
        assert math.isfinite(split_rhat(binary))  # folded draws are constant: bulk R-hat only
        assert math.isfinite(ess_tail(binary))


@pytest.mark.parametrize("draws, message", [
    (np.zeros(100), "shape"),
    (np.zeros((2, 50, 3)), "shape"),
    (np.zeros((1, 100)), "at least 2 chains"),
    (np.zeros((4, 3)), "at least 4 draws"),
])
@pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=list(FUNCTIONS))
def test_bad_shapes_raise(function, draws, message):
    with pytest.raises(ValueError, match=message):
        function(draws)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=list(FUNCTIONS))
def test_non_finite_draws_raise(function, bad):
    draws = np.random.default_rng(0).standard_normal((2, 10))
    draws[1, 7] = bad
    with pytest.raises(ValueError, match="chain 1, draw 7"):
        function(draws)


