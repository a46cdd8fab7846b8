"""The log-posterior of a fit, in unconstrained coordinates, with its exact gradient.

One fused PINTS :class:`pints.LogPDF` (priors, transformation Jacobians, random effects and the
likelihood in one ``evaluateS1``): composing PINTS' stock prior, likelihood and transformation
objects gave the same numbers at about twice the cost per gradient.

Coordinates (``phi``), in order:

1. each free model parameter, by its model bounds (as Stan does):
   ``logit((x - lower) / (upper - lower))`` when both are finite, ``log(x - lower)`` when only
   the lower one is, ``log(upper - x)`` when only the upper one is, ``x`` itself otherwise. Every
   coordinate value is inside the bounds, so samplers never step out of the model's support; for
   a rate far below its upper bound the logit coordinate is the log of the rate up to a shift;
2. ``log tau``, the between-study dispersion of the likelihood;
3. for each parameter with study-level random effects, ``log omega`` (the random effects' sd on
   the log scale) and then one standard-normal ``z`` per study (non-centred:
   ``x_study = x * exp(omega * z_study)``);
4. for each categorical covariate level other than the reference, an effect ``beta`` on the log
   scale of the parameters it acts on (``x_level = x * exp(beta_level)``);
5. for species scaling, the allometric exponent ``b``: parameters scaled by body weight are
   ``x * (BW / BW_reference) ** b`` for a study of a species of body weight BW.

The log-posterior is the sum of the log-priors of the natural values, the log-Jacobians of the
transformations, and the log-likelihood of :class:`exopk.observation.Likelihood` terms. Its
parts live where their job is: the coordinates of the free parameters in
:class:`~exopk.inference.coordinates.BoundedCoordinates` (a PINTS ``Transformation``), the
coordinates 3-5, their hyper-priors and each observation's parameter set in
:class:`~exopk.inference.hierarchy.Hierarchy`, the grouping of observations by the parameter
values they need in :func:`~exopk.observation.likelihood.group_observations` (the groups of one
design are predicted as one batch, by the ``predictor``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pints
import scipy.special
import xarray as xr

from exopk.engine import compile_model
from exopk.errors import SimulationError
from exopk.inference.coordinates import BoundedCoordinates
from exopk.inference.hierarchy import Hierarchy, check_positive
from exopk.model.priors import Prior
from exopk.observation import Likelihood, predict
from exopk.observation.likelihood import group_observations

__all__ = ["Covariate", "PosteriorSpec", "LogPosterior", "engine_predictor"]


def engine_predictor(compiled, thetas, design, requests, *, gradients, parameters):
    """Predictions by exopk's engine: the default ``predictor`` of :class:`LogPosterior`.

    Parameters
    ----------
    compiled : CompiledModel
    thetas : ndarray, shape (batch, n_parameters)
        Parameter sets.
    design : Regimen
    requests : list of Request
    gradients : bool
    parameters : ndarray of int
        Indices of the parameters whose derivatives the posterior uses (the engine gives every
        derivative anyway).

    Returns
    -------
    values : ndarray, shape (batch, n_requests)
    jacobian : ndarray, shape (batch, n_requests, n_parameters), or None
    """
    return predict(compiled, thetas, design, requests, gradients=gradients)



@dataclass(frozen=True)
class Covariate:
    """A categorical covariate acting multiplicatively on some parameters.

    Attributes
    ----------
    name : str
        For example ``label`` or ``ev_source``.
    levels : tuple of str
        The covariate's value for every observation, in observation order.
    parameters : tuple of str
        Parameters it acts on (positive ones).
    reference : str
        Level with no effect.
    prior_sd : float
        Sd of the normal prior of each level's effect on the log scale.
    """

    name: str
    levels: tuple
    parameters: tuple
    reference: str
    prior_sd: float = 1.0


@dataclass(frozen=True)
class PosteriorSpec:
    """Everything a log-posterior needs besides the model and its observations.

    Attributes
    ----------
    conditions : dict
        ``condition -> {parameter: value}`` for studies under an intervention.
    fixed : dict
        Parameters held at a value (besides the model's fixed ones).
    free : tuple of str
        Parameters the model file fixes (switched-off paths such as release) that this fit
        estimates; each needs a prior in the model file or in ``priors``.
    priors : dict
        ``parameter -> Prior`` overriding the model file.
    tau_prior : Prior
        Prior of the between-study dispersion.
    random_effects : tuple of str
        Parameters with study-level log-normal random effects.
    random_effect_sd_prior : Prior
    covariates : tuple of Covariate
    species_scaling : tuple of str
        Parameters scaled by body weight to an estimated exponent.
    body_weights_kg : tuple of float
        Body weight of every observation's species (used with ``species_scaling``).
    reference_body_weight_kg : float
    exponent_prior : Prior
    """

    conditions: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    free: tuple = ()
    priors: dict = field(default_factory=dict)
    tau_prior: Prior = Prior("halfnormal", {"scale": 0.5},
                             justification="Between-study spread of EV tracer readouts: a factor "
                                           "of about e**0.5 at one sd")
    random_effects: tuple = ()
    random_effect_sd_prior: Prior = Prior("halfnormal", {"scale": 0.5})
    covariates: tuple = ()
    species_scaling: tuple = ()
    body_weights_kg: tuple = ()
    reference_body_weight_kg: float = 0.025
    exponent_prior: Prior = Prior("normal", {"mean": 0.75, "sd": 0.1},
                                  justification="Allometric exponent of clearance, near 3/4")


class LogPosterior(pints.LogPDF):
    """Fused log-posterior over unconstrained coordinates (see the module docstring).

    Parameters
    ----------
    model : Model
    observations : list of Observation
    spec : PosteriorSpec
    predictor : callable, optional
        How predictions are computed, with the signature of :func:`engine_predictor` (the
        default); for example a reference ODE solver in a benchmark.

    Raises
    ------
    DataFileError
        If the model cannot predict an observation at any parameter values (a misspelt output,
        a PK summary of a saturable model), naming its file, line, study and request.
    SimulationError
        If the specification names an unknown parameter or an estimated one without a prior.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> from exopk.inference.posterior import LogPosterior
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> half_life = Observation("demo", 2, Request("half_life", "plasma_concentration"), "iv",
    ...                         "", value=3.0, upper=float("nan"), censoring="none",
    ...                         sigma_log=0.1)
    >>> lp = LogPosterior(model, [half_life])
    >>> lp.names
    ['logit CL', 'logit V_plasma', 'log tau']
    >>> value, gradient = lp.evaluateS1(lp.prior_centre())
    >>> bool(np.isfinite(value)), gradient.shape
    (True, (3,))
    """

    def __init__(self, model, observations, spec: PosteriorSpec | None = None, *,
                 predictor=engine_predictor):
        super().__init__()
        spec = spec or PosteriorSpec()
        self.predictor = predictor
        self.model = model
        self.spec = spec
        self.compiled = compiled = compile_model(model)
        self.observations = tuple(observations)
        self.likelihood = Likelihood(model, observations, conditions=spec.conditions)
        index = compiled.parameter_index
        for name in (*spec.fixed, *spec.free, *spec.priors, *spec.random_effects,
                     *spec.species_scaling,
                     *(p for c in spec.covariates for p in c.parameters)):
            if name not in index:
                raise SimulationError(f"fit refers to unknown parameter '{name}' of model "
                                      f"'{model.name}'")
        self.base = compiled.nominal.copy()
        for name, value in spec.fixed.items():
            self.base[index[name]] = float(value)
        self.free = [p.name for p in model.parameters
                     if (not p.fixed or p.name in spec.free) and p.name not in spec.fixed]
        self._free_index = np.array([index[n] for n in self.free], dtype=int)
        self._lower = compiled.lower[self._free_index]
        self._upper = compiled.upper[self._free_index]
        self.priors = {}
        for name in self.free:
            prior = spec.priors.get(name) or model.parameter(name).prior
            if prior is None:
                raise SimulationError(f"parameter '{name}' is estimated but has no prior")
            self.priors[name] = prior
        self.transforms = dict(zip(self.free, BoundedCoordinates(self._lower, self._upper).kinds))
        kinds = [self.transforms[name] for name in self.free]
        self._logit, self._log, self._log_below = (
            np.array([j for j, k in enumerate(kinds) if k == kind], dtype=int)
            for kind in ("logit", "log", "log_below"))
        self._width = (self._upper - self._lower)[self._logit]
        self._log_width = float(np.log(self._width).sum())
        self._density_arguments, self._other_priors = self._free_density_arguments(kinds)
        check_positive(spec, self.free, self._lower)

        # coordinates: free parameters, log tau, the hierarchy's
        self.names = [f"{self._prefix(n)}{n}" for n in self.free] + ["log tau"]
        self.hierarchy = Hierarchy(spec, self.observations, index, len(self.names))
        self.names += self.hierarchy.names
        self.studies = self.hierarchy.studies
        lower = np.full(len(self.names), -np.inf)
        upper = np.full(len(self.names), np.inf)
        lower[:len(self.free)], upper[:len(self.free)] = self._lower, self._upper
        lower[[k for k, n in enumerate(self.names) if k >= len(self.free)
               and n.startswith("log ")]] = 0.0   # tau and the random effects' sds
        self.coordinates = BoundedCoordinates(lower, upper)
        self._groups = self._build_groups()

    def _free_density_arguments(self, kinds):
        """The free parameters' transforms and priors as the arrays of
        :func:`~exopk.inference.density_kernel.free_parameter_density`, and the priors of the
        other families with their positions."""
        from exopk.inference.density_kernel import PRIOR_CODES, TRANSFORM_CODES

        families = np.array([PRIOR_CODES.get(self.priors[n].distribution, 0) for n in self.free],
                            dtype=np.int64)
        location, sigma = np.zeros((2, len(self.free)))
        for j, name in enumerate(self.free):
            arguments = self.priors[name].arguments
            if families[j] == PRIOR_CODES["lognormal"]:
                location[j], sigma[j] = math.log(arguments["median"]), arguments["sigma"]
            elif families[j] == PRIOR_CODES["logitnormal"]:
                median = arguments["median"]
                location[j], sigma[j] = math.log(median / (1 - median)), arguments["sigma"]
        others = [(j, self.priors[n]) for j, n in enumerate(self.free) if not families[j]]
        return (np.array([TRANSFORM_CODES[k] for k in kinds], dtype=np.int64), self._lower,
                self._upper, families, location, sigma), others

    @staticmethod
    def _prefix_for(transform):
        return {"log": "log ", "logit": "logit ", "log_below": "log_below ", "identity": ""}[
            transform]

    def _prefix(self, name):
        return self._prefix_for(self.transforms[name])

    def n_parameters(self) -> int:
        return len(self.names)

    # -- groups of observations sharing parameter values ----------------------------------------
    def _build_groups(self):
        return group_observations(self.observations, [self.hierarchy.group_key(i)
                                                      for i in range(len(self.observations))])

    # -- transformations ------------------------------------------------------------------------
    def to_natural(self, phi):
        """Natural values of the free parameters and their d x / d phi."""
        x, dx = self.coordinates.to_model_and_derivative(np.asarray(phi, dtype=float))
        return x[:len(self.free)], dx[:len(self.free)]

    def to_unconstrained(self, natural: dict) -> np.ndarray:
        """Coordinates for natural values (missing ones at the model's nominal values)."""
        phi = np.zeros(self.n_parameters())
        for j, name in enumerate(self.free):
            value = natural.get(name, self.base[self.compiled.parameter_index[name]])
            t = self.transforms[name]
            if t == "logit":
                phi[j] = scipy.special.logit((value - self._lower[j]) / (self._upper[j] - self._lower[j]))
            elif t == "log":
                phi[j] = math.log(value - self._lower[j])
            elif t == "log_below":
                phi[j] = math.log(self._upper[j] - value)
            else:
                phi[j] = value
        phi[len(self.free)] = math.log(natural.get("tau", 0.3))
        return phi

    def log_jacobian(self, phi, *, gradient: bool = False):
        """Log-Jacobian of the map from coordinates to natural values, and its gradient.

        Covers the free parameters, ``tau`` and the random-effect sds (log coordinates).
        """
        phi = np.asarray(phi, dtype=float)
        grad = np.zeros(self.n_parameters())
        value = 0.0
        if self._logit.size:
            # log(width * s * (1 - s)), s = expit(phi), without overflow or underflow
            p = phi[self._logit]
            value += self._log_width - float(np.logaddexp(0.0, -p).sum() + np.logaddexp(0.0, p).sum())
            grad[self._logit] = 1 - 2 * scipy.special.expit(p)
        shifted = np.concatenate([self._log, self._log_below])
        value += float(phi[shifted].sum())
        grad[shifted] = 1.0
        for position in [len(self.free)] + self.hierarchy.log_sd_positions:
            value += phi[position]
            grad[position] = 1.0
        return (value, grad) if gradient else value

    def prior_centre(self) -> np.ndarray:
        """Coordinates of the prior medians (tau and omegas at their prior medians, z = 0)."""
        natural = {name: float(np.median(self.priors[name].sample(np.random.default_rng(0), 4001)))
                   for name in self.free}
        phi = self.to_unconstrained(natural)
        phi[len(self.free)] = math.log(float(np.median(
            self.spec.tau_prior.sample(np.random.default_rng(0), 4001))))
        self.hierarchy.centre(phi)
        return phi

    # -- evaluation -----------------------------------------------------------------------------
    def __call__(self, phi):
        try:
            return self._evaluate(np.asarray(phi, dtype=float), gradients=False)[0]
        except (SimulationError, FloatingPointError):
            return -np.inf

    def evaluateS1(self, phi):
        """Log-posterior and its gradient (``-inf`` and zeros outside the support)."""
        phi = np.asarray(phi, dtype=float)
        try:
            return self._evaluate(phi, gradients=True)
        except (SimulationError, FloatingPointError):
            return -np.inf, np.zeros(self.n_parameters())

    def _evaluate(self, phi, *, gradients):
        from exopk.inference.density_kernel import free_parameter_density   # numba: on first use

        n_free = len(self.free)
        x, dx = np.empty((2, n_free))
        gradient = np.zeros(self.n_parameters())
        # the free parameters' natural values, log-Jacobian and log-normal and logit-normal
        # priors (the same as to_natural, log_jacobian and the PriorSet, compiled)
        value = free_parameter_density(phi, *self._density_arguments, x, dx, gradient)
        if value == -np.inf:
            return -np.inf, np.zeros(self.n_parameters())
        for j, prior in self._other_priors:
            density, slope = prior.log_density_and_slope(float(x[j]))
            value += density
            gradient[j] += slope * dx[j]
        for position in [n_free] + self.hierarchy.log_sd_positions:
            value += phi[position]
            gradient[position] = 1.0

        tau = math.exp(phi[n_free])
        density, slope = self.spec.tau_prior.log_density_and_slope(tau)
        value += density
        gradient[n_free] += slope * tau

        value = self.hierarchy.add_log_prior(phi, value, gradient)
        if not np.isfinite(value):
            return -np.inf, np.zeros(self.n_parameters())

        theta = self.base.copy()
        theta[self._free_index] = x
        with np.errstate(over="ignore", invalid="ignore"):
            value += self._log_likelihood(theta, phi, dx, tau, gradients, gradient)
        # far in the tails (a censored term with sigma near 0, say) the gradient can overflow:
        # such points are outside the region the sampler may visit
        if not (math.isfinite(value) and np.isfinite(gradient).all()):
            return -np.inf, np.zeros(self.n_parameters())
        return value, gradient

    def _describe(self, i) -> str:
        obs = self.observations[i]
        time = "" if obs.request.time is None else f" at t = {obs.request.time:g}"
        return (f"study '{obs.study}' ({obs.source or 'no file'}, line {obs.line}), "
                f"{obs.request.kind} of '{obs.request.output}'{time}")

    def explain(self, phi) -> str:
        """Why the log-posterior is not finite at ``phi``: the part that fails, by name.

        For error messages (a MAP search that found no finite value, say): names the parameter
        outside its bounds or with a zero prior density, the prior of the dispersion, or the
        observations whose prediction cannot be computed or whose likelihood term is not finite.
        """
        phi = np.asarray(phi, dtype=float)
        x, _ = self.to_natural(phi)
        for name, value, low, high in zip(self.free, x, self._lower, self._upper):
            if not low <= value <= high:
                return f"parameter '{name}' = {value:g} is outside its bounds [{low:g}, {high:g}]"
            if not np.isfinite(self.priors[name].log_density_and_slope(value)[0]):
                return f"parameter '{name}' = {value:g} has zero prior density"
        tau = math.exp(phi[len(self.free)])
        if not np.isfinite(self.spec.tau_prior.log_density_and_slope(tau)[0]):
            return f"the dispersion tau = {tau:g} has zero prior density"
        try:
            with np.errstate(all="ignore"):
                y, terms = self.predictions_and_terms(phi)
        except (SimulationError, FloatingPointError) as exc:
            return f"a prediction cannot be computed: {exc}"
        bad = np.flatnonzero(~np.isfinite(terms) | ~(y > 0))
        if bad.size:
            return "; ".join(f"{self._describe(i)}: prediction {y[i]:g}, log-likelihood term "
                             f"{terms[i]:g}" for i in bad[:5])
        value = self(phi)
        return "nothing: the log-posterior is finite here" if np.isfinite(value) else \
            "the sum of finite terms is not finite"

    def predictions_and_terms(self, phi):
        """Predicted value and log-likelihood term of every observation at ``phi``."""
        x, _ = self.to_natural(phi)
        theta = self.base.copy()
        theta[self._free_index] = x
        y = self._predict(theta, phi, None, gradients=False)[0]
        terms = self.likelihood.terms(np.log(y), math.exp(phi[len(self.free)]))[0]
        return y, terms

    def predictions_of_draws(self, phi_draws, *, chunk: int = 1000):
        """Predicted value and log-likelihood term of every observation for many draws.

        The same numbers as :meth:`predictions_and_terms` draw by draw, with the model solved
        for ``chunk`` draws at a time (one batch per design).

        Parameters
        ----------
        phi_draws : ndarray, shape (n_draws, n_coordinates)
        chunk : int

        Returns
        -------
        predictions, terms : ndarray, shape (n_draws, n_observations)
        """
        phi_draws = np.atleast_2d(np.asarray(phi_draws, dtype=float))
        n_draws, n_obs = phi_draws.shape[0], len(self.observations)
        y = np.empty((n_draws, n_obs))
        thetas = np.repeat(self.base[None], n_draws, axis=0)
        thetas[:, self._free_index] = self.coordinates.to_model(phi_draws)[:, :len(self.free)]
        for begin in range(0, n_draws, chunk):
            block = slice(begin, begin + chunk)
            for group in self._groups:
                stacked = self.hierarchy.parameters(thetas[block], phi_draws[block],
                                                    group.representatives)[0]
                draws = stacked.shape[0]
                values = self.predictor(
                    self.compiled, self.compiled.parameter_matrix(stacked.reshape(
                        -1, thetas.shape[1])), group.design, group.requests, gradients=False,
                    parameters=self._free_index)[0]
                values = values.reshape(draws, len(group.representatives), len(group.requests))
                pick_g, pick_i, pick_r = group.picks
                y[block, pick_i] = values[:, pick_g, pick_r]
        taus = np.exp(phi_draws[:, len(self.free)])
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = self.likelihood.terms(np.log(y), taus[:, None])[0]
        return y, terms

    def _predict(self, theta, phi, dx, *, gradients):
        """Predictions (n_obs,) and, with gradients, d y / d phi (n_obs, n_coordinates).

        ``dx`` is d x / d phi of the free parameters (needed with gradients only).
        """
        x = theta[self._free_index]
        n_obs = len(self.observations)
        y = np.empty(n_obs)
        dy_dphi = np.zeros((n_obs, self.n_parameters())) if gradients else None
        for group in self._groups:
            thetas, extra, overridden = self.hierarchy.parameters(theta, phi, group.representatives)
            values, jacobian = self.predictor(self.compiled,
                                              self.compiled.parameter_matrix(thetas),
                                              group.design, group.requests, gradients=gradients,
                                              parameters=self._free_index)
            pick_g, pick_i, pick_r = group.picks
            y[pick_i] = values[pick_g, pick_r]
            if not gradients:
                continue
            if overridden.any():
                jacobian = np.where(overridden[:, None, :], 0.0, jacobian)      # (G, R, P)
            # d theta_g / d phi_free = theta_g / theta * dx  (multiplicative shifts)
            chain = thetas[:, self._free_index] / np.where(x != 0, x, 1.0) * dx   # (G, free)
            dy_dphi[pick_i, :len(self.free)] = \
                jacobian[pick_g, pick_r][:, self._free_index] * chain[pick_g]
            for g, p_index, position, d_log in extra:
                for i, r in group.picks_of_group[g]:
                    dy_dphi[i, position] += jacobian[g, r, p_index] * thetas[g, p_index] * d_log
        return y, dy_dphi

    def _log_likelihood(self, theta, phi, dx, tau, gradients, gradient):
        y, dy_dphi = self._predict(theta, phi, dx, gradients=gradients)
        if gradients and self.likelihood.values_only:
            from exopk.observation.likelihood_kernel import value_terms_and_slopes  # numba
            slope_y = np.empty(len(y))
            total, d_tau, ok = value_terms_and_slopes(y, self.likelihood._log_value,
                                                      self.likelihood._sigma_log, tau, slope_y)
            if ok:
                gradient += slope_y @ dy_dphi
                gradient[len(self.free)] += d_tau * tau
                return total
        if not (y > 0).all():
            i = int(np.flatnonzero(~(y > 0))[0])
            raise SimulationError(f"{self._describe(i)}: prediction {y[i]:g} is not positive")
        terms, d_log_y, d_sigma = self.likelihood.terms(np.log(y), tau)
        if gradients:
            gradient += (d_log_y / y) @ dy_dphi
            sigma = np.sqrt(self.likelihood._sigma_log**2 + tau**2)
            gradient[len(self.free)] += float(np.sum(d_sigma * tau / sigma)) * tau
        return float(terms.sum())

    # -- prior draws ----------------------------------------------------------------------------
    def sample_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws from the prior, in unconstrained coordinates."""
        draws = np.zeros((n, self.n_parameters()))
        for j, name in enumerate(self.free):
            values = np.asarray(self.priors[name].sample(rng, size=n), dtype=float)
            values = np.clip(values, np.nextafter(self._lower[j], np.inf),
                             np.nextafter(self._upper[j], -np.inf))
            for k in range(n):
                draws[k, j] = self.to_unconstrained({name: values[k]})[j]
        draws[:, len(self.free)] = np.log(np.maximum(self.spec.tau_prior.sample(rng, size=n), 1e-12))
        self.hierarchy.sample(rng, draws)
        return draws

    def natural_names(self) -> list[str]:
        """Name of the natural value of every coordinate, in coordinate order.

        The free parameters, ``tau``, ``omega_<parameter>`` (random-effect sds), and the
        coordinates that are their own natural values (``z_...``, ``beta_...``,
        ``allometric_exponent``): the variables of a fit result's ``posterior`` group.
        """
        return self.free + [name[4:] if name.startswith("log ") else name
                            for name in self.names[len(self.free):]]

    def natural_priors(self) -> dict:
        """The prior of every natural value, by the names of :meth:`natural_names`."""
        return {**self.priors, "tau": self.spec.tau_prior, **self.hierarchy.priors()}

    def natural(self, phi) -> dict[str, float]:
        """Natural values of every coordinate: parameters, tau, omegas, z, betas, exponent."""
        x, _ = self.to_natural(phi)
        out = dict(zip(self.free, x))
        out["tau"] = math.exp(phi[len(self.free)])
        for name, value in zip(self.names[len(self.free) + 1:], phi[len(self.free) + 1:]):
            out[name[4:] if name.startswith("log ") else name] = \
                math.exp(value) if name.startswith("log ") else value
        return out

    def parameter_sets(self, draws, *, per: str = "population") -> xr.DataArray:
        """Full natural model parameter sets of posterior (or prior) draws.

        Parameters
        ----------
        draws : xarray.Dataset or DataTree, or ndarray of shape (chain, draw, n_coordinates)
            A fit result's ``posterior`` (or ``prior``) group: natural values named as
            :meth:`natural_names`, with dims ``(chain, draw)``; or draws in the sampling
            coordinates.
        per : {"population", "observation"}
            ``"population"``: the model's parameters with the free ones at their drawn values
            and the others at their nominal or fixed values, before random effects, covariate
            effects, species scaling and conditions (the parameters of a typical study at the
            reference covariate levels and reference body weight, under normal conditions).
            ``"observation"``: the parameter set behind every observation's prediction, with
            its study's random effects, its covariate levels, its species' scaling and its
            condition's overrides applied.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, parameter)`` or ``(chain, draw, observation, parameter)``, in
            the model's units (``units`` attribute per parameter in ``attrs["units"]``); the
            ``parameter`` coordinate lists every model parameter in model order.

        Examples
        --------
        >>> import numpy as np, exopk
        >>> from exopk.inference.posterior import LogPosterior
        >>> from exopk.observation import Observation, Request
        >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
        >>> design = [Observation("demo", 2, Request("half_life", "plasma_concentration"), "iv",
        ...                       "", value=3.0, upper=float("nan"), censoring="none",
        ...                       sigma_log=0.1)]
        >>> lp = LogPosterior(model, design)
        >>> sets = lp.parameter_sets(np.zeros((2, 5, lp.n_parameters())))
        >>> sets.dims, sets.sizes["parameter"] == len(model.parameter_names)
        (('chain', 'draw', 'parameter'), True)
        """
        if per not in ("population", "observation"):
            raise ValueError(f"per must be 'population' or 'observation', got {per!r}")
        if isinstance(draws, (xr.Dataset, xr.DataTree)):
            missing = [n for n in self.natural_names() if n not in draws]
            if missing:
                raise ValueError(f"draws have no variable {', '.join(missing)}")
            natural = np.stack([np.asarray(draws[n].transpose("chain", "draw"))
                                for n in self.natural_names()], axis=-1)
            phi = self.coordinates.to_search(natural)
        else:
            phi = np.asarray(draws, dtype=float)
        if phi.ndim != 3 or phi.shape[-1] != self.n_parameters():
            raise ValueError(f"draws must have shape (chain, draw, {self.n_parameters()}), got "
                             f"{phi.shape}")
        flat = phi.reshape(-1, phi.shape[-1])
        thetas = np.repeat(self.base[None], len(flat), axis=0)
        thetas[:, self._free_index] = self.coordinates.to_model(flat)[:, :len(self.free)]
        names = list(self.model.parameter_names)
        attrs = {"units": {p.name: p.unit for p in self.model.parameters}}
        coords = {"chain": np.arange(phi.shape[0]), "draw": np.arange(phi.shape[1]),
                  "parameter": names}
        if per == "population":
            return xr.DataArray(thetas.reshape(phi.shape[:2] + (len(names),)),
                                dims=("chain", "draw", "parameter"), coords=coords, attrs=attrs)
        out = np.empty((len(flat), len(self.observations), len(names)))
        for group in self._groups:
            pick_g, pick_i, _ = group.picks
            for k in range(len(flat)):
                out[k, pick_i] = self.hierarchy.parameters(thetas[k], flat[k],
                                                        group.representatives)[0][pick_g]
        return xr.DataArray(out.reshape(phi.shape[:2] + out.shape[1:]),
                            dims=("chain", "draw", "observation", "parameter"),
                            coords={**coords, "observation": np.arange(len(self.observations))},
                            attrs=attrs)
