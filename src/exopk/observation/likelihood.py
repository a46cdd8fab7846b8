"""Log-likelihood of observations and its exact gradient.

Every observation is log-normal around the model's prediction ``y``:
``log(observed) ~ Normal(log(y), sigma)`` with ``sigma**2 = sigma_log**2 + tau**2``, where
``sigma_log`` is the study's reported error (:mod:`exopk.observation.records`) and ``tau`` an
extra between-study dispersion (log scale) shared by all observations, so that heterogeneous
studies cannot over-claim. Censored observations contribute probabilities:

* ``upper`` (the true value is below ``v``): ``log Phi((log v - log y) / sigma)``;
* ``lower``: ``log Phi((log y - log v) / sigma)``;
* ``interval`` (between ``lo`` and ``hi``, e.g. a range across groups):
  ``log(Phi((log hi - log y) / sigma) - Phi((log lo - log y) / sigma))``.

Uncensored terms are densities of the observed value (including the ``-log v`` of the
log-normal), so the log-likelihood is a proper one. The gradient with respect to the model
parameters is the chain rule through the engine's exact sensitivities:
``d l / d p = (d l / d log y) (d y / d p) / y``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from exopk.engine import compile_model
from exopk.errors import DataFileError, SimulationError
from exopk.observation.predictions import predict
from exopk.observation.records import Observation

__all__ = ["Likelihood", "ObservationGroup", "check_predictable", "group_observations"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _value_terms(z, sigma, log_value):
    """Log-normal terms of observed values and their derivatives in ``log y`` and sigma, for
    ``z = (log v - log y) / sigma``."""
    return (-0.5 * z**2 - np.log(sigma) - _LOG_SQRT_2PI - log_value, z / sigma,
            (z**2 - 1.0) / sigma)


def _mills(z):
    """``phi(z) / Phi(z)`` computed in log space (stable for very negative z)."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


@dataclass(frozen=True)
class ObservationGroup:
    """Observations of one design, split into sets that share one parameter set each.

    Attributes
    ----------
    design : Regimen
    representatives : list of int
        One observation index per parameter set (its first member).
    requests : list of Request
        Every distinct request of the design, in order of first appearance.
    picks : tuple of three int arrays ``(g, i, r)``
        Observation ``i`` is the prediction of request ``r`` under parameter set ``g``.
    picks_of_group : list of list of (int, int)
        ``(i, r)`` of every member, per parameter set.
    """

    design: object
    representatives: list
    requests: list
    picks: tuple
    picks_of_group: list


def group_observations(observations, keys) -> list[ObservationGroup]:
    """Group observations by design, then by the parameter set they need.

    The one grouping of the observation layer: :class:`Likelihood` keys observations by their
    condition's overrides, :class:`~exopk.inference.posterior.LogPosterior` adds the study,
    covariate levels and body weight its hierarchy distinguishes. Every design's parameter
    sets are then predicted in one batch.

    Parameters
    ----------
    observations : sequence of Observation
    keys : sequence of hashable
        Per observation, what its parameter set depends on besides the design.

    Returns
    -------
    list of ObservationGroup
        In order of first appearance of each design.
    """
    by_design = defaultdict(lambda: defaultdict(list))
    for i, (obs, key) in enumerate(zip(observations, keys)):
        by_design[obs.design][key].append(i)
    groups = []
    for design, keyed in by_design.items():
        requests = list(dict.fromkeys(observations[i].request
                                      for members in keyed.values() for i in members))
        position = {r: j for j, r in enumerate(requests)}
        members = list(keyed.values())
        picks = [(g, i, position[observations[i].request])
                 for g, ms in enumerate(members) for i in ms]
        picks_of_group = [[(i, r) for gg, i, r in picks if gg == g] for g in range(len(members))]
        groups.append(ObservationGroup(
            design, [ms[0] for ms in members], requests,
            tuple(np.array(column, dtype=int) for column in zip(*picks)), picks_of_group))
    return groups


def check_predictable(compiled, observations) -> None:
    """Raise if the model cannot predict an observation whatever its parameter values.

    Each request is predicted for zero parameter sets: what fails there (an output the model
    does not have, a transfer it does not have, a PK summary of a saturable model or of a design
    that is not a bolus at time 0) fails at every parameter set, so it is a configuration error,
    not a region of the parameter space to avoid. :func:`~exopk.observation.predict` checks
    these before any numerical work; the numerical work itself need not accept an empty batch,
    so its other errors are not errors of the request.

    Raises
    ------
    DataFileError
        Naming the observation's file, line, study and request.
    """
    empty = np.empty((0, len(compiled.model.parameter_names)))
    for obs in observations:
        try:
            predict(compiled, empty, obs.design, [obs.request], gradients=False)
        except SimulationError as exc:
            time = "" if obs.request.time is None else f" at t = {obs.request.time:g}"
            raise DataFileError(
                f"study '{obs.study}': model '{compiled.model.name}' cannot predict "
                f"{obs.request.kind} of '{obs.request.output}'{time}: {exc}",
                file=obs.source or None, row=obs.line) from None
        except (ValueError, IndexError):   # numerical code reached: the request is well formed
            continue


class Likelihood:
    """Log-likelihood of a set of observations under one model.

    Parameters
    ----------
    model : Model
    observations : list of Observation
    conditions : dict, optional
        ``condition -> {parameter: value}`` applied to the observations of that condition, for
        example ``{"macrophage_depleted": {"macrophage_depletion": 1.0}}``. Observations whose
        condition is not listed (other than the normal, empty one) raise an error.

    Raises
    ------
    DataFileError
        If the model cannot predict an observation at any parameter values
        (:func:`check_predictable`).
    SimulationError
        For an unmapped condition or a condition setting an unknown parameter.

    Examples
    --------
    >>> import exopk
    >>> from exopk.observation import Likelihood, Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> half_life = Observation("demo", 2, Request("half_life", "plasma_concentration"), "iv", "",
    ...                         value=3.0, upper=float("nan"), censoring="none", sigma_log=0.1)
    >>> likelihood = Likelihood(model, [half_life])
    >>> value, gradient = likelihood.evaluate({"CL": 0.5, "V_plasma": 2.0}, tau=0.0)
    >>> round(float(value), 4)   # model half-life ln 2 * 2 / 0.5 = 2.77 min against 3.0 min
    -0.0257
    """

    def __init__(self, model, observations: list[Observation], *, conditions: dict | None = None):
        if not observations:
            raise SimulationError("a likelihood needs at least one observation")
        self.model = model
        self.compiled = compile_model(model)
        self.observations = tuple(observations)
        check_predictable(self.compiled, self.observations)
        conditions = {"": {}, **(conditions or {})}
        for obs in self.observations:
            if obs.condition not in conditions:
                raise SimulationError(
                    f"study '{obs.study}' (line {obs.line}) has condition '{obs.condition}', "
                    "which this likelihood does not map to parameter values")
        # conditions with the same overrides (or none) share a parameter set
        self._groups = group_observations(self.observations, [
            tuple(sorted(conditions[obs.condition].items())) for obs in self.observations])
        self._overrides = {}
        for condition, values in conditions.items():
            indices = []
            for name, value in values.items():
                if name not in self.compiled.parameter_index:
                    raise SimulationError(f"condition '{condition}' sets unknown parameter '{name}'")
                indices.append((self.compiled.parameter_index[name], float(value)))
            self._overrides[condition] = indices
        self._log_value = np.log([o.value for o in self.observations])
        self._log_upper = np.log([o.upper if o.censoring == "interval" else 1.0
                                  for o in self.observations])
        self._sigma_log = np.array([o.sigma_log for o in self.observations])
        self._censoring = np.array([o.censoring for o in self.observations])
        self._kind_index = {kind: np.flatnonzero(self._censoring == kind)
                            for kind in ("none", "upper", "lower", "interval")}
        # every observation a value (no bounds): the terms of likelihood_kernel apply
        self.values_only = self._kind_index["none"].size == len(self.observations)

    @property
    def n_observations(self) -> int:
        return len(self.observations)

    def predictions(self, theta: np.ndarray, *, gradients: bool = False):
        """Predicted values (n_obs,) and their Jacobian (n_obs, n_parameters) at ``theta``."""
        theta = np.asarray(theta, dtype=float)
        P = theta.shape[0]
        y = np.empty(self.n_observations)
        dy = np.zeros((self.n_observations, P)) if gradients else None
        for group in self._groups:
            thetas = np.repeat(theta[None], len(group.representatives), axis=0)
            fixed = np.zeros_like(thetas, dtype=bool)
            for g, i in enumerate(group.representatives):
                for index, value in self._overrides[self.observations[i].condition]:
                    thetas[g, index] = value
                    fixed[g, index] = True
            values, jacobian = predict(self.compiled, thetas, group.design, group.requests,
                                       gradients=gradients)
            pick_g, pick_i, pick_r = group.picks
            y[pick_i] = values[pick_g, pick_r]
            if gradients:
                # a condition fixes its parameters, so they do not move y
                dy[pick_i] = np.where(fixed[:, None, :], 0.0, jacobian)[pick_g, pick_r]
        return y, dy

    def evaluate(self, parameters, *, tau: float, gradients: bool = True):
        """Log-likelihood and its gradient.

        Parameters
        ----------
        parameters : mapping or sequence
            Model parameters (see :meth:`CompiledModel.parameter_matrix`).
        tau : float
            Between-study dispersion (log scale, >= 0).
        gradients : bool

        Returns
        -------
        value : float
        gradient : ndarray, shape (n_parameters + 1,), or None
            Derivatives with respect to every model parameter and, last, ``tau``.
        """
        if not tau >= 0:
            raise SimulationError(f"between-study dispersion tau must be >= 0, got {tau}")
        theta = self.compiled.parameter_matrix(parameters)[0]
        y, dy = self.predictions(theta, gradients=gradients)
        if np.any(~(y > 0)):
            bad = self.observations[int(np.flatnonzero(~(y > 0))[0])]
            raise SimulationError(f"prediction {y[~(y > 0)][0]:g} for study '{bad.study}' line "
                                  f"{bad.line} is not positive; log-normal terms need y > 0")
        terms, d_log_y, d_sigma = self.terms(np.log(y), tau)
        if not gradients:
            return float(terms.sum()), None
        sigma = np.sqrt(self._sigma_log**2 + tau**2)
        gradient = np.empty(theta.shape[0] + 1)
        gradient[:-1] = (d_log_y / y) @ dy
        gradient[-1] = float(np.sum(d_sigma * np.where(sigma > 0, tau / sigma, 0.0)))
        return float(terms.sum()), gradient

    def terms(self, log_y: np.ndarray, tau):
        """Per-observation log-likelihood terms and their derivatives in ``log y`` and sigma.

        ``log_y`` has the observations on its last axis, with any leading axes (draws, say);
        ``tau`` is a float or an array broadcasting against ``log_y`` (one per draw).
        """
        sigma = np.sqrt(self._sigma_log**2 + tau**2)
        if (sigma <= 0).any():
            bad = self.observations[int(np.nonzero(sigma <= 0)[-1][0])]
            raise SimulationError(f"study '{bad.study}' line {bad.line} has no reported error and "
                                  "tau is 0: its likelihood would be a point mass")
        z = (self._log_value - log_y) / sigma
        if self._kind_index["none"].size == z.shape[-1] and sigma.shape == z.shape:
            # every observation a value with one sigma each (a posterior evaluation): no
            # gathers and scatters
            return _value_terms(z, sigma, self._log_value)
        sigma = np.broadcast_to(sigma, z.shape)
        terms = np.empty_like(z)
        d_log_y = np.empty_like(z)
        d_sigma = np.empty_like(z)

        exact = self._kind_index["none"]
        if exact.size:
            terms[..., exact], d_log_y[..., exact], d_sigma[..., exact] = _value_terms(
                z[..., exact], sigma[..., exact], self._log_value[exact])

        upper = self._kind_index["upper"]   # log Phi(z), z = (log v - log y) / sigma
        if upper.size:
            zu = z[..., upper]
            terms[..., upper] = log_ndtr(zu)
            d_log_y[..., upper] = -_mills(zu) / sigma[..., upper]
            d_sigma[..., upper] = -_mills(zu) * zu / sigma[..., upper]

        lower = self._kind_index["lower"]   # log Phi(-z)
        if lower.size:
            zl = z[..., lower]
            terms[..., lower] = log_ndtr(-zl)
            d_log_y[..., lower] = _mills(-zl) / sigma[..., lower]
            d_sigma[..., lower] = _mills(-zl) * zl / sigma[..., lower]

        interval = self._kind_index["interval"]
        if interval.size:
            s = sigma[..., interval]
            z_lo = z[..., interval]
            z_hi = (self._log_upper[interval] - log_y[..., interval]) / s
            # Phi(b) - Phi(a) from the tail both ends are nearer to, so it cannot round to 0
            upper_tail = z_lo > 0
            a = np.where(upper_tail, -z_hi, z_lo)
            b = np.where(upper_tail, -z_lo, z_hi)
            log_b, log_a = log_ndtr(b), log_ndtr(a)
            log_mass = log_b + np.log1p(-np.exp(log_a - log_b))
            terms[..., interval] = log_mass
            # densities over the interval's mass, in log space
            ratio_hi = np.exp(-0.5 * z_hi**2 - _LOG_SQRT_2PI - log_mass)
            ratio_lo = np.exp(-0.5 * z_lo**2 - _LOG_SQRT_2PI - log_mass)
            d_log_y[..., interval] = -(ratio_hi - ratio_lo) / s
            d_sigma[..., interval] = -(ratio_hi * z_hi - ratio_lo * z_lo) / s
        return terms, d_log_y, d_sigma
