"""Log-posterior of measured time courses under residual error models.

A user's measurements (each an :class:`~exopk.observation.Observation` of kind ``value`` under
the regimen its subject received, :func:`exopk.observation.event_observations`) are compared
with the model's predictions through a :class:`~exopk.observation.error_models.ResidualError`
per output, whose parameters are estimated beside the model's. The packaged-evidence posterior
(:class:`~exopk.inference.posterior.LogPosterior`, log-normal with a between-study ``tau``) is a
different object and is not changed by this one.

Coordinates: every estimated parameter in the unconstrained coordinates of its bounds
(:class:`~exopk.inference.coordinates.BoundedCoordinates`: log for positive parameters, logit
for bounded ones), then every error parameter on the log scale. The density is that of the
coordinates (the prior of the natural values times the Jacobian); its mode is the MAP that
:func:`exopk.fit_observations` reports, so that a parameter whose data say nothing has a mode
at its prior's median on the log scale instead of running to 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pints

from exopk.errors import ExopkError, SimulationError
from exopk.inference.coordinates import BoundedCoordinates
from exopk.model.priors import Prior, PriorSet
from exopk.observation.error_models import ResidualError
from exopk.observation.likelihood import Likelihood
from exopk.observation.predictions import predict

__all__ = ["TimeCoursePosterior", "DEFAULT_ERROR_PRIORS"]

#: default priors of the error parameters (documented defaults; override with ``error_priors``)
DEFAULT_ERROR_PRIORS = {
    "b": Prior("halfnormal", {"scale": 0.5},
               justification="Proportional error: a coefficient of variation below about 100% "
                             "at 2 sd"),
    "sigma": Prior("halfnormal", {"scale": 0.5},
                   justification="Log-normal error: a factor of e**0.5 at one sd"),
}


class TimeCoursePosterior(pints.LogPDF):
    """Log-posterior of time-course observations with estimated residual errors.

    Parameters
    ----------
    model : Model
    observations : list of Observation
        Kind ``value``; ``censoring == "upper"`` marks a value below the limit of
        quantification (``value`` is the limit).
    errors : mapping
        Output name -> :class:`ResidualError` (or its kind, a str), one per measured output.
    priors : mapping, optional
        Parameter -> :class:`Prior`, overriding the model file's priors.
    fixed : mapping, optional
        Parameters held at a value.
    error_priors : mapping, optional
        Error parameter name (``a_<output>``, ...) -> :class:`Prior`. The additive ``a`` is in
        the observations' unit, so it has no default and must be given; ``b`` and ``sigma``
        default to :data:`DEFAULT_ERROR_PRIORS`.

    Raises
    ------
    ExopkError
        Before any evaluation, naming what is wrong: an output without an error model, an
        error model of an output the model does not have, an observation a log-normal error
        cannot take (zero or negative, with its file and line), a missing prior.
    """

    def __init__(self, model, observations, errors: Mapping, *, priors: Mapping | None = None,
                 fixed: Mapping | None = None, error_priors: Mapping | None = None):
        super().__init__()
        self.model = model
        self.observations = tuple(observations)
        if not self.observations:
            raise ExopkError("a time-course fit needs at least one observation")
        priors, fixed, error_priors = dict(priors or {}), dict(fixed or {}), dict(error_priors or {})
        self.errors = {}
        for output, error in errors.items():
            if output not in model.output_names:
                raise ExopkError(f"error model for '{output}': model '{model.name}' has no such "
                                 f"output; outputs: {', '.join(model.output_names)}")
            self.errors[output] = error if isinstance(error, ResidualError) else \
                ResidualError(str(error), output)
        outputs = np.array([o.request.output for o in self.observations])
        self._members = {}
        for output, error in self.errors.items():
            members = np.flatnonzero(outputs == output)
            values = np.array([self.observations[i].value for i in members])
            censored = np.array([self.observations[i].censoring == "upper" for i in members])
            bad = error.check_values(values, censored)
            if bad is not None:
                obs = self.observations[members[bad]]
                raise ExopkError(
                    f"{obs.source or 'observations'} line {obs.line} (study '{obs.study}'): value "
                    f"{obs.value:g} of '{output}' cannot enter a log-normal error model; use "
                    "an additive or combined error, or mark it below the limit of "
                    "quantification")
            self._members[output] = (members, values, censored)
        unmodelled = sorted(set(outputs) - set(self.errors))
        if unmodelled:
            raise ExopkError(f"observations of {', '.join(unmodelled)} have no error model; "
                             "give one per measured output")
        with np.errstate(divide="ignore", invalid="ignore"):
            self.likelihood = Likelihood(model, list(self.observations))
        compiled = self.likelihood.compiled
        index = compiled.parameter_index
        for name in (*priors, *fixed):
            if name not in index:
                raise ExopkError(f"model '{model.name}' has no parameter '{name}'; its "
                                 f"parameters: {', '.join(model.parameter_names)}")
        self.base = compiled.nominal.copy()
        for name, value in fixed.items():
            self.base[index[name]] = float(value)
        self.free = [p.name for p in model.parameters if not p.fixed and p.name not in fixed]
        self._free_index = np.array([index[n] for n in self.free], dtype=int)
        self.priors = {}
        for name in self.free:
            prior = priors.get(name) or model.parameter(name).prior
            if prior is None:
                raise ExopkError(f"parameter '{name}' is estimated but has no prior; give one")
            self.priors[name] = prior
        self.error_names = [n for e in self.errors.values() for n in e.parameter_names]
        for error in self.errors.values():
            for name in error.parameter_names:
                kind = name[:-len(error.output) - 1]
                prior = error_priors.get(name) or DEFAULT_ERROR_PRIORS.get(kind)
                if prior is None:
                    raise ExopkError(f"the additive error '{name}' is in the unit of the "
                                     f"observations of '{error.output}', so it has no default "
                                     "prior; give one in error_priors")
                self.priors[name] = prior
        unknown = sorted(set(error_priors) - set(self.error_names))
        if unknown:
            raise ExopkError(f"error_priors names {', '.join(unknown)}, not error parameters "
                             f"of this fit ({', '.join(self.error_names)})")
        lower = np.concatenate([compiled.lower[self._free_index], np.zeros(len(self.error_names))])
        upper = np.concatenate([compiled.upper[self._free_index],
                                np.full(len(self.error_names), np.inf)])
        self.coordinates = BoundedCoordinates(lower, upper)
        self._prior_set = PriorSet([self.priors[n] for n in self.natural_names()])
        prefix = {"log": "log ", "logit": "logit ", "log_below": "log_below ", "identity": ""}
        self.names = [f"{prefix[k]}{n}" for k, n in zip(self.coordinates.kinds,
                                                        self.natural_names())]

    def n_parameters(self) -> int:
        return len(self.names)

    def natural_names(self) -> list[str]:
        """The estimated model parameters, then the error parameters."""
        return self.free + self.error_names

    @property
    def error_units(self) -> dict:
        """Units of the error parameters: ``a`` in the output's, ``b`` and ``sigma`` none."""
        output_units = dict(zip(self.model.output_names,
                                (o.unit for o in self.model.quantities.outputs)))
        units = {}
        for error in self.errors.values():
            for name in error.parameter_names:
                units[name] = (output_units[error.output] if name.startswith("a_") else
                               "1 (fraction)" if name.startswith("b_") else "1 (sd of log)")
        return units

    def natural_priors(self) -> dict:
        return dict(self.priors)

    def natural(self, phi) -> dict[str, float]:
        """Natural values of every coordinate, by name."""
        x = self.coordinates.to_model(np.asarray(phi, dtype=float))
        return {name: float(v) for name, v in zip(self.natural_names(), x)}

    def theta(self, x) -> np.ndarray:
        """The full model parameter vector for natural values ``x`` of the coordinates."""
        theta = self.base.copy()
        theta[self._free_index] = x[:len(self.free)]
        return theta

    # -- density --------------------------------------------------------------------------------
    def log_jacobian(self, phi, *, gradient: bool = False):
        value, slope = self.coordinates.log_jacobian_det_S1(np.asarray(phi, dtype=float))
        return (float(value), slope) if gradient else float(value)

    def __call__(self, phi):
        return self.evaluate(phi, gradients=False)[0]

    def evaluateS1(self, phi):
        return self.evaluate(phi, gradients=True)

    def evaluate(self, phi, *, gradients: bool = True):
        """Log density of the coordinates and its gradient (``-inf`` outside the support)."""
        phi = np.asarray(phi, dtype=float)
        outside = -math.inf, np.zeros(self.n_parameters())
        x, dx = self.coordinates.to_model_and_derivative(phi)
        log_prior, slope = self._prior_set.log_density_and_gradient(x)
        if not np.isfinite(log_prior):
            return outside
        value, gradient = self.log_jacobian(phi, gradient=True)
        value += log_prior
        d_x = slope.copy()
        try:
            with np.errstate(all="ignore"):
                y, dy = self.likelihood.predictions(self.theta(x), gradients=gradients)
                terms, d_y, d_error = self._terms(y, x)
        except (SimulationError, FloatingPointError, np.linalg.LinAlgError):
            return outside
        value += float(terms.sum())
        if gradients:
            d_x[:len(self.free)] += (d_y @ dy)[self._free_index]
            d_x[len(self.free):] += d_error
        gradient = gradient + d_x * dx
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return outside
        return value, gradient

    def _terms(self, y, x):
        """Log-likelihood term of every observation, d term / d y, d sum / d error parameters."""
        terms = np.empty(len(self.observations))
        d_y = np.empty(len(self.observations))
        d_error = np.empty(len(self.error_names))
        offset = len(self.free)
        for error in self.errors.values():
            members, values, censored = self._members[error.output]
            n = len(error.parameter_names)
            t, dt_dy, dt_dp = error.terms(y[members], values, censored, x[offset:offset + n])
            terms[members], d_y[members] = t, dt_dy
            d_error[offset - len(self.free):offset - len(self.free) + n] = dt_dp.sum(axis=0)
            offset += n
        return terms, d_y, d_error

    def predictions_and_terms(self, phi):
        """Prediction and log-likelihood term of every observation at ``phi``."""
        x = self.coordinates.to_model(np.asarray(phi, dtype=float))
        with np.errstate(all="ignore"):
            y = self.likelihood.predictions(self.theta(x))[0]
            return y, self._terms(y, x)[0]

    def predictions_of_draws(self, phi_draws):
        """Prediction and log-likelihood term of every observation, per draw (n_draws, n_obs).

        The model is solved once per regimen for all draws together.
        """
        phi_draws = np.atleast_2d(np.asarray(phi_draws, dtype=float))
        x = self.coordinates.to_model(phi_draws)
        thetas = np.repeat(self.base[None], len(phi_draws), axis=0)
        thetas[:, self._free_index] = x[:, :len(self.free)]
        y = np.empty((len(phi_draws), len(self.observations)))
        compiled = self.likelihood.compiled
        with np.errstate(all="ignore"):
            for group in self.likelihood._groups:
                values = predict(compiled, thetas, group.design, group.requests)[0]
                pick_g, pick_i, pick_r = group.picks
                y[:, pick_i] = values[:, pick_r]
            terms = np.array([self._terms(row, xk)[0] for row, xk in zip(y, x)])
        return y, terms

    def log_densities(self, phi_draws) -> np.ndarray:
        """The log density of many draws at once (the values :meth:`__call__` gives)."""
        phi_draws = np.atleast_2d(np.asarray(phi_draws, dtype=float))
        x = self.coordinates.to_model(phi_draws)
        terms = self.predictions_of_draws(phi_draws)[1].sum(axis=1)
        prior = np.array([self._prior_set.log_density_and_gradient(xk)[0] for xk in x])
        values = self.coordinates.log_jacobian_det(phi_draws) + prior + terms
        return np.where(np.isfinite(values), values, -np.inf)

    def replicates(self, phi_draws, mean, rng: np.random.Generator) -> np.ndarray:
        """One noisy replicate of every observation per draw, around the predictions ``mean``
        (n_draws, n_obs), under each output's error model."""
        x = self.coordinates.to_model(np.atleast_2d(phi_draws))
        noisy = np.empty_like(mean)
        offset = len(self.free)
        for error in self.errors.values():
            members = self._members[error.output][0]
            n = len(error.parameter_names)
            for k in range(mean.shape[0]):
                y = mean[k, members]
                sd = error.sd(y, x[k, offset:offset + n])[0]
                z = rng.normal(size=members.size)
                noisy[k, members] = y * np.exp(sd * z) if error.kind == "lognormal" else y + sd * z
            offset += n
        return noisy

    # -- starting points ------------------------------------------------------------------------
    def prior_centre(self) -> np.ndarray:
        """Coordinates of the prior medians (clipped into the bounds)."""
        rng = np.random.default_rng(0)
        medians = np.array([np.median(self.priors[n].sample(rng, 4001))
                            for n in self.natural_names()])
        return self._to_search(medians)

    def sample_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` prior draws in coordinates, shape (n, n_parameters)."""
        draws = np.column_stack([np.asarray(self.priors[name].sample(rng, size=n), dtype=float)
                                 for name in self.natural_names()])
        return self._to_search(draws)

    def _to_search(self, x):
        c = self.coordinates
        x = np.clip(x, np.nextafter(c.lower, np.inf), np.nextafter(c.upper, -np.inf))
        return c.to_search(x)
