"""Prior distributions of model parameters.

Log-normal is the default for positive rate constants, clearances and volumes: it is described by
the median and the standard deviation of the logarithm (``sigma``), so "median 0.1/min, within a
factor of e**1.5 at one sd" reads directly off the model file. Fractions (dose splits, macrophage
shares) use logit-normal or beta priors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import scipy.stats

from exopk.errors import ModelFileError
from exopk.model.frozen import FrozenMapping

__all__ = ["Prior", "PriorSet", "PRIOR_ARGUMENTS"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

PRIOR_ARGUMENTS = {
    "lognormal": ("median", "sigma"),
    "normal": ("mean", "sd"),
    "uniform": ("lower", "upper"),
    "logitnormal": ("median", "sigma"),
    "beta": ("a", "b"),
    "halfnormal": ("scale",),
    "halfcauchy": ("scale",),
    "studentt": ("df", "mean", "scale"),
    "loguniform": ("lower", "upper"),
}


@dataclass(frozen=True)
class Prior:
    """A univariate prior.

    Attributes
    ----------
    distribution : str
        One of ``lognormal`` (median, sigma of log), ``normal`` (mean, sd), ``uniform``
        (lower, upper), ``logitnormal`` (median in (0, 1), sigma of logit), ``beta`` (a, b),
        ``halfnormal`` (scale), ``halfcauchy`` (scale), ``studentt`` (df, mean, scale: a
        heavy-tailed alternative to the normal, weakly informative with df 3 to 7),
        ``loguniform`` (lower, upper > 0: density proportional to 1/x, flat on the log scale,
        for a positive parameter whose order of magnitude is unknown within the bounds).
    arguments : mapping
        The distribution's arguments by name (kept as a read-only, hashable copy).
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
    arguments: Mapping = field(default_factory=dict)
    justification: str = ""
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "arguments", FrozenMapping(self.arguments))
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
                    "uniform": (), "studentt": ("df", "scale"), "loguniform": ("lower",)}
        for name in positive[self.distribution]:
            if a[name] <= 0:
                raise ModelFileError(f"{self.distribution} prior argument '{name}' must be positive")
        if self.distribution in ("uniform", "loguniform") and not a["lower"] < a["upper"]:
            raise ModelFileError(f"{self.distribution} prior needs lower < upper")
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
        if d == "studentt":
            return scipy.stats.t(df=a["df"], loc=a["mean"], scale=a["scale"])
        if d == "loguniform":
            return scipy.stats.loguniform(a["lower"], a["upper"])
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
            if d == "studentt":
                nu, z = a["df"], (x - a["mean"]) / a["scale"]
                return (scipy.special.gammaln((nu + 1) / 2) - scipy.special.gammaln(nu / 2)
                        - 0.5 * math.log(nu * math.pi) - math.log(a["scale"])
                        - (nu + 1) / 2 * np.log1p(z**2 / nu))
            if d == "loguniform":
                inside = (x >= a["lower"]) & (x <= a["upper"])
                out = -np.log(x) - math.log(math.log(a["upper"] / a["lower"]))
                return np.where(inside, out, -np.inf)
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
            if d == "studentt":
                nu, u = a["df"], x - a["mean"]
                return -(nu + 1) * u / (nu * a["scale"] ** 2 + u**2)
            if d == "loguniform":
                return np.where((x >= a["lower"]) & (x <= a["upper"]), -1.0 / x, 0.0)
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


class PriorSet:
    """Independent priors on a vector of parameters: joint log density and its gradient.

    Samplers evaluate this at every step, so the common families (log-normal, logit-normal) are
    evaluated together in arrays; other families go through
    :meth:`Prior.log_density_and_slope` one by one.

    Parameters
    ----------
    priors : sequence of Prior
        One per parameter, in order.

    Examples
    --------
    >>> priors = PriorSet([Prior("lognormal", {"median": 2.0, "sigma": 0.5}),
    ...                    Prior("normal", {"mean": 0.0, "sd": 1.0})])
    >>> value, gradient = priors.log_density_and_gradient(np.array([2.0, 0.0]))
    >>> round(value, 6), gradient.round(6).tolist()
    (-1.837877, [-0.5, -0.0])
    """

    def __init__(self, priors):
        self.priors = tuple(priors)
        lognormal = [j for j, p in enumerate(self.priors) if p.distribution == "lognormal"]
        logit = [j for j, p in enumerate(self.priors) if p.distribution == "logitnormal"]
        self._lognormal = np.array(lognormal, dtype=int)
        self._lognormal_log_median = np.array(
            [math.log(self.priors[j].arguments["median"]) for j in lognormal])
        self._lognormal_sigma = np.array([self.priors[j].arguments["sigma"] for j in lognormal])
        self._logit = np.array(logit, dtype=int)
        self._logit_median = np.array(
            [scipy.special.logit(self.priors[j].arguments["median"]) for j in logit])
        self._logit_sigma = np.array([self.priors[j].arguments["sigma"] for j in logit])
        # normalising constants of both families: -log sigma - log sqrt(2 pi) per parameter
        self._constant = -float(np.log(self._lognormal_sigma).sum() + np.log(self._logit_sigma).sum()
                                + (len(lognormal) + len(logit)) * _LOG_SQRT_2PI)
        self._others = [(j, p) for j, p in enumerate(self.priors)
                        if p.distribution not in ("lognormal", "logitnormal")]

    def log_density_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Sum of the log densities at ``x`` and its gradient (``-inf`` and zeros outside the
        support)."""
        x = np.asarray(x, dtype=float)
        gradient = np.empty(len(self.priors))
        total = self._constant
        if self._lognormal.size:
            v = x[self._lognormal]
            if not (v > 0).all():
                return -math.inf, np.zeros(len(self.priors))
            log_v = np.log(v)
            z = (log_v - self._lognormal_log_median) / self._lognormal_sigma
            total += -0.5 * float(z @ z) - float(log_v.sum())
            gradient[self._lognormal] = -(z / self._lognormal_sigma + 1.0) / v
        if self._logit.size:
            v = x[self._logit]
            if not ((v > 0) & (v < 1)).all():
                return -math.inf, np.zeros(len(self.priors))
            log_v, log_w = np.log(v), np.log1p(-v)
            z = (log_v - log_w - self._logit_median) / self._logit_sigma
            total += -0.5 * float(z @ z) - float(log_v.sum() + log_w.sum())
            gradient[self._logit] = -z / self._logit_sigma / (v * (1 - v)) - 1.0 / v + 1.0 / (1 - v)
        for j, prior in self._others:
            density, slope = prior.log_density_and_slope(float(x[j]))
            total += density
            gradient[j] = slope
        if not math.isfinite(total):
            return -math.inf, np.zeros(len(self.priors))
        return total, gradient
