"""Prior distributions of model parameters.

Log-normal is the default for positive rate constants, clearances and volumes: it is described by
the median and the standard deviation of the logarithm (``sigma``), so "median 0.1/min, within a
factor of e**1.5 at one sd" reads directly off the model file. Fractions (dose splits, macrophage
shares) use logit-normal or beta priors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import scipy.stats

from exopk.errors import ModelFileError

__all__ = ["Prior", "PRIOR_ARGUMENTS"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

PRIOR_ARGUMENTS = {
    "lognormal": ("median", "sigma"),
    "normal": ("mean", "sd"),
    "uniform": ("lower", "upper"),
    "logitnormal": ("median", "sigma"),
    "beta": ("a", "b"),
    "halfnormal": ("scale",),
    "halfcauchy": ("scale",),
}


@dataclass(frozen=True)
class Prior:
    """A univariate prior.

    Attributes
    ----------
    distribution : str
        One of ``lognormal`` (median, sigma of log), ``normal`` (mean, sd), ``uniform``
        (lower, upper), ``logitnormal`` (median in (0, 1), sigma of logit), ``beta`` (a, b),
        ``halfnormal`` (scale), ``halfcauchy`` (scale).
    arguments : dict
        The distribution's arguments by name.
    justification : str
        One line on why this prior.
    source : str
        Citation or DOI behind it, empty where the prior is a modelling judgement.

    Examples
    --------
    >>> prior = Prior("lognormal", {"median": 2.0, "sigma": 0.5})
    >>> round(float(prior.logpdf(2.0)), 6)
    -0.918939
    """

    distribution: str
    arguments: dict = field(default_factory=dict)
    justification: str = ""
    source: str = ""

    def __post_init__(self):
        if self.distribution not in PRIOR_ARGUMENTS:
            raise ModelFileError(f"unknown prior distribution '{self.distribution}'; "
                                 f"known: {', '.join(PRIOR_ARGUMENTS)}")
        expected = set(PRIOR_ARGUMENTS[self.distribution])
        if set(self.arguments) != expected:
            raise ModelFileError(f"{self.distribution} prior needs exactly "
                                 f"{', '.join(sorted(expected))}; got {', '.join(sorted(self.arguments)) or 'nothing'}")
        for name, value in self.arguments.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ModelFileError(f"{self.distribution} prior argument '{name}' must be a finite "
                                     f"number, got {value!r}")
        a = self.arguments
        positive = {"lognormal": ("median", "sigma"), "normal": ("sd",), "logitnormal": ("sigma",),
                    "beta": ("a", "b"), "halfnormal": ("scale",), "halfcauchy": ("scale",),
                    "uniform": ()}
        for name in positive[self.distribution]:
            if a[name] <= 0:
                raise ModelFileError(f"{self.distribution} prior argument '{name}' must be positive")
        if self.distribution == "uniform" and not a["lower"] < a["upper"]:
            raise ModelFileError("uniform prior needs lower < upper")
        if self.distribution == "logitnormal" and not 0 < a["median"] < 1:
            raise ModelFileError("logitnormal prior median must lie in (0, 1)")

    @property
    def _frozen(self):
        a = self.arguments
        d = self.distribution
        if d == "lognormal":
            return scipy.stats.lognorm(s=a["sigma"], scale=a["median"])
        if d == "normal":
            return scipy.stats.norm(loc=a["mean"], scale=a["sd"])
        if d == "uniform":
            return scipy.stats.uniform(loc=a["lower"], scale=a["upper"] - a["lower"])
        if d == "beta":
            return scipy.stats.beta(a["a"], a["b"])
        if d == "halfnormal":
            return scipy.stats.halfnorm(scale=a["scale"])
        if d == "halfcauchy":
            return scipy.stats.halfcauchy(scale=a["scale"])
        return None

    def logpdf(self, x):
        """Log density at ``x`` (-inf outside the support), in closed form."""
        x = np.asarray(x, dtype=float)
        a = self.arguments
        d = self.distribution
        with np.errstate(divide="ignore", invalid="ignore"):
            if d == "lognormal":
                z = (np.log(x) - math.log(a["median"])) / a["sigma"]
                out = -0.5 * z**2 - np.log(x) - math.log(a["sigma"]) - _LOG_SQRT_2PI
                return np.where(x > 0, out, -np.inf)
            if d == "normal":
                z = (x - a["mean"]) / a["sd"]
                return -0.5 * z**2 - math.log(a["sd"]) - _LOG_SQRT_2PI
            if d == "uniform":
                inside = (x >= a["lower"]) & (x <= a["upper"])
                return np.where(inside, -math.log(a["upper"] - a["lower"]), -np.inf)
            if d == "halfnormal":
                z = x / a["scale"]
                out = -0.5 * z**2 - math.log(a["scale"]) - _LOG_SQRT_2PI + math.log(2.0)
                return np.where(x >= 0, out, -np.inf)
            if d == "halfcauchy":
                out = math.log(2 / (math.pi * a["scale"])) - np.log1p((x / a["scale"]) ** 2)
                return np.where(x >= 0, out, -np.inf)
            if d == "beta":
                out = ((a["a"] - 1) * np.log(x) + (a["b"] - 1) * np.log1p(-x)
                       - scipy.special.betaln(a["a"], a["b"]))
                return np.where((x > 0) & (x < 1), out, -np.inf)
            z = (scipy.special.logit(x) - scipy.special.logit(a["median"])) / a["sigma"]
            out = -0.5 * z**2 - math.log(a["sigma"]) - _LOG_SQRT_2PI - np.log(x) - np.log1p(-x)
            return np.where((x > 0) & (x < 1), out, -np.inf)

    def dlogpdf(self, x):
        """Derivative of the log density with respect to ``x``."""
        x = np.asarray(x, dtype=float)
        a = self.arguments
        d = self.distribution
        with np.errstate(divide="ignore", invalid="ignore"):
            if d == "lognormal":
                return -(np.log(x) - math.log(a["median"])) / (a["sigma"] ** 2 * x) - 1.0 / x
            if d == "normal":
                return -(x - a["mean"]) / a["sd"] ** 2
            if d == "uniform":
                return np.zeros_like(x)
            if d == "halfnormal":
                return -x / a["scale"] ** 2
            if d == "halfcauchy":
                return -2 * x / (a["scale"] ** 2 + x**2)
            if d == "beta":
                return (a["a"] - 1) / x - (a["b"] - 1) / (1 - x)
            z = scipy.special.logit(x) - scipy.special.logit(a["median"])
            dlogit = 1.0 / (x * (1 - x))
            return -z / a["sigma"] ** 2 * dlogit - 1.0 / x + 1.0 / (1 - x)

    def log_density_and_slope(self, x: float) -> tuple[float, float]:
        """Log density and its derivative at one point, in plain floats (fast for samplers)."""
        a = self.arguments
        d = self.distribution
        if d == "lognormal":
            if not x > 0:
                return -math.inf, 0.0
            log_x = math.log(x)
            z = (log_x - math.log(a["median"])) / a["sigma"]
            return (-0.5 * z * z - log_x - math.log(a["sigma"]) - _LOG_SQRT_2PI,
                    -(z / a["sigma"] + 1.0) / x)
        if d == "normal":
            z = (x - a["mean"]) / a["sd"]
            return -0.5 * z * z - math.log(a["sd"]) - _LOG_SQRT_2PI, -z / a["sd"]
        if d == "halfnormal":
            if x < 0:
                return -math.inf, 0.0
            z = x / a["scale"]
            return (-0.5 * z * z - math.log(a["scale"]) - _LOG_SQRT_2PI + math.log(2.0),
                    -z / a["scale"])
        if d == "logitnormal":
            if not 0 < x < 1:
                return -math.inf, 0.0
            z = (math.log(x / (1 - x)) - math.log(a["median"] / (1 - a["median"]))) / a["sigma"]
            density = (-0.5 * z * z - math.log(a["sigma"]) - _LOG_SQRT_2PI - math.log(x)
                       - math.log1p(-x))
            return density, -z / a["sigma"] / (x * (1 - x)) - 1.0 / x + 1.0 / (1 - x)
        return float(self.logpdf(x)), float(self.dlogpdf(x))

    def sample(self, rng: np.random.Generator, size=None):
        """Draw from the prior with the given generator."""
        if self.distribution == "logitnormal":
            a = self.arguments
            z = rng.normal(scipy.special.logit(a["median"]), a["sigma"], size=size)
            return scipy.special.expit(z)
        return self._frozen.rvs(size=size, random_state=rng)
