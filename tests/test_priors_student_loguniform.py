"""Student-t and log-uniform priors against scipy.stats: log density, slope, draws."""

import numpy as np
import pytest
import scipy.stats

from exopk.errors import ModelFileError
from exopk.model.priors import Prior, PriorSet

CASES = [
    (Prior("studentt", {"df": 3.0, "mean": 1.0, "scale": 2.0}),
     scipy.stats.t(df=3.0, loc=1.0, scale=2.0), np.array([-30.0, -1.0, 0.5, 1.0, 7.0])),
    (Prior("loguniform", {"lower": 1e-3, "upper": 1e2}),
     scipy.stats.loguniform(1e-3, 1e2), np.array([1e-3, 0.02, 1.0, 55.0, 1e2])),
]


@pytest.mark.parametrize("prior, reference, x", CASES)
def test_log_density_matches_scipy(prior, reference, x):
    np.testing.assert_allclose(prior.logpdf(x), reference.logpdf(x), rtol=1e-12)
    value, _ = PriorSet([prior]).log_density_and_gradient(x[2:3])
    assert value == pytest.approx(reference.logpdf(x[2]), rel=1e-12)


@pytest.mark.parametrize("prior, reference, x", CASES)
def test_slope_matches_finite_differences_of_scipy(prior, reference, x):
    inner = x[1:-1]
    h = 1e-6 * np.maximum(np.abs(inner), 1e-3)
    numeric = (reference.logpdf(inner + h) - reference.logpdf(inner - h)) / (2 * h)
    np.testing.assert_allclose(prior.dlogpdf(inner), numeric, rtol=1e-6)
    _, gradient = PriorSet([prior]).log_density_and_gradient(inner[:1])
    assert gradient[0] == pytest.approx(numeric[0], rel=1e-6)


@pytest.mark.parametrize("prior, reference, x", CASES)
def test_draws_follow_the_distribution(prior, reference, x):
    draws = prior.sample(np.random.default_rng(1), 20000)
    assert scipy.stats.kstest(draws, reference.cdf).pvalue > 1e-3
    again = prior.sample(np.random.default_rng(1), 20000)
    np.testing.assert_array_equal(draws, again)


def test_outside_the_log_uniform_support_has_zero_density():
    prior = Prior("loguniform", {"lower": 1.0, "upper": 10.0})
    assert prior.logpdf(0.5) == -np.inf and prior.logpdf(11.0) == -np.inf


@pytest.mark.parametrize("distribution, arguments, message", [
    ("loguniform", {"lower": 0.0, "upper": 1.0}, "'lower' must be positive"),
    ("loguniform", {"lower": 2.0, "upper": 1.0}, "lower < upper"),
    ("studentt", {"df": 0.0, "mean": 0.0, "scale": 1.0}, "'df' must be positive"),
    ("studentt", {"df": 3.0, "mean": 0.0}, "needs exactly"),
])
def test_bad_arguments_are_named(distribution, arguments, message):
    with pytest.raises(ModelFileError, match=message):
        Prior(distribution, arguments)
