"""Prior distributions: closed-form densities and slopes against scipy and quadrature."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from exopk.model import Prior


@pytest.mark.parametrize("distribution,arguments,points", [
    ("lognormal", {"median": 0.2, "sigma": 1.5}, [1e-3, 0.2, 5.0]),
    ("normal", {"mean": 0.75, "sd": 0.1}, [0.5, 0.75, 1.2]),
    ("uniform", {"lower": 1.0, "upper": 3.0}, [1.5, 2.9]),
    ("halfnormal", {"scale": 0.5}, [0.01, 0.4, 2.0]),
    ("halfcauchy", {"scale": 1.0}, [0.01, 0.4, 2.0]),
    ("beta", {"a": 2.0, "b": 5.0}, [0.05, 0.3, 0.9]),
    ("logitnormal", {"median": 0.3, "sigma": 1.0}, [0.05, 0.3, 0.9]),
])
def test_prior_log_densities_and_derivatives_match_scipy(distribution, arguments, points):
    prior = Prior(distribution, arguments)
    frozen = {"lognormal": lambda a: scipy.stats.lognorm(s=a["sigma"], scale=a["median"]),
              "normal": lambda a: scipy.stats.norm(a["mean"], a["sd"]),
              "uniform": lambda a: scipy.stats.uniform(a["lower"], a["upper"] - a["lower"]),
              "halfnormal": lambda a: scipy.stats.halfnorm(scale=a["scale"]),
              "halfcauchy": lambda a: scipy.stats.halfcauchy(scale=a["scale"]),
              "beta": lambda a: scipy.stats.beta(a["a"], a["b"]),
              # logit-normal: the density of expit(Z), Z normal, by change of variables
              "logitnormal": lambda a: _LogitNormal(a["median"], a["sigma"])}[distribution](arguments)
    for x in points:
        assert float(prior.logpdf(x)) == pytest.approx(frozen.logpdf(x), rel=1e-12)
        h = 1e-6 * x
        fd = (frozen.logpdf(x + h) - frozen.logpdf(x - h)) / (2 * h)
        assert float(prior.dlogpdf(x)) == pytest.approx(fd, rel=1e-6, abs=1e-9)
        density, slope = prior.log_density_and_slope(x)
        assert density == pytest.approx(frozen.logpdf(x), rel=1e-12)
        assert slope == pytest.approx(fd, rel=1e-6, abs=1e-9)


class _LogitNormal:
    """Density of expit(Z), Z normal, by change of variables."""

    def __init__(self, median, sigma):
        self._normal = scipy.stats.norm(scipy.special.logit(median), sigma)

    def logpdf(self, x):
        return self._normal.logpdf(math.log(x / (1 - x))) - math.log(x * (1 - x))


def test_logitnormal_prior_density_integrates_to_one():
    prior = Prior("logitnormal", {"median": 0.3, "sigma": 1.0})
    total, _ = scipy.integrate.quad(lambda x: float(np.exp(prior.logpdf(x))), 0, 1)
    assert total == pytest.approx(1.0, rel=1e-8)


def test_prior_set_sums_the_priors_and_their_slopes():
    from exopk.model.priors import PriorSet
    priors = [Prior("lognormal", {"median": 0.2, "sigma": 1.5}),
              Prior("logitnormal", {"median": 0.3, "sigma": 1.0}),
              Prior("halfcauchy", {"scale": 1.0}),
              Prior("lognormal", {"median": 3.0, "sigma": 0.3}),
              Prior("beta", {"a": 2.0, "b": 5.0}),
              Prior("logitnormal", {"median": 0.8, "sigma": 0.5})]
    joint = PriorSet(priors)
    x = np.array([0.05, 0.6, 2.0, 2.5, 0.4, 0.9])
    value, gradient = joint.log_density_and_gradient(x)
    assert value == pytest.approx(sum(float(p.logpdf(v)) for p, v in zip(priors, x)), rel=1e-13)
    np.testing.assert_allclose(gradient, [float(p.dlogpdf(v)) for p, v in zip(priors, x)],
                               rtol=1e-12)
    for outside in ([-0.1, 0.6, 2.0, 2.5, 0.4, 0.9], [0.05, 1.0, 2.0, 2.5, 0.4, 0.9],
                    [0.05, 0.6, -2.0, 2.5, 0.4, 0.9]):
        value, gradient = joint.log_density_and_gradient(np.array(outside))
        assert value == -math.inf and not gradient.any()
