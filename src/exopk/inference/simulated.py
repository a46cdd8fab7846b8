"""Simulated data with a fit's own design, for parameter recovery and calibration checks.

:func:`simulate_observations` draws a new value for every observation of a log-posterior from
the model's own observation model at known coordinates ``phi_true``: the model prediction ``y``
times a log-normal error, ``log(value) ~ Normal(log(y), sigma)`` with
``sigma**2 = sigma_log**2 + tau**2`` (:mod:`exopk.observation.likelihood`). The design is kept:
requests, routes, regimens, conditions, reported ``sigma_log``, source and line. Censored and
interval observations become plain ones, since the simulated value is known exactly.

Every simulated observation is labelled: its study is renamed ``simulated:<study>``
(:data:`SIMULATED_PREFIX`), so a simulated dataset cannot be mistaken for evidence in any table
or result built from it. The prefix is common to all studies, so the studies keep their sorted
order and a posterior built on simulated data (:func:`simulated_posterior`) has its coordinates
in the same order as the original one (random-effect names read ``z_x[simulated:<study>]``).

:func:`fit_simulated` runs one replicate of a recovery or calibration study: a truth drawn from
the prior, data simulated at it, and the MAP and NUTS draws of the posterior on those data.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from exopk.errors import SimulationError
from exopk.inference.posterior import LogPosterior
from exopk.inference.sampling import chain_starts, find_map, run_chains

__all__ = ["SIMULATED_PREFIX", "SimulatedFit", "fit_simulated", "simulate_observations",
           "simulated_posterior"]

SIMULATED_PREFIX = "simulated:"
MAX_PRIOR_ATTEMPTS = 100


def _log_posterior(prepared_or_log_posterior) -> LogPosterior:
    """The log-posterior of a :class:`~exopk.inference.fit.Prepared` fit, or the argument itself."""
    return getattr(prepared_or_log_posterior, "log_posterior", prepared_or_log_posterior)


def simulate_observations(log_posterior, phi_true, rng: np.random.Generator) -> list:
    """Observations with the design of ``log_posterior`` and values simulated at ``phi_true``.

    Parameters
    ----------
    log_posterior : LogPosterior or Prepared
        Gives the design (its observations), the model and the coordinates.
    phi_true : array_like, shape (n_parameters,)
        Unconstrained coordinates of the truth, for example a draw of
        :meth:`LogPosterior.sample_prior`; ``tau`` is taken from them.
    rng : numpy.random.Generator
        Source of the observation noise.

    Returns
    -------
    list of Observation
        One per original observation, in the same order, with study ``simulated:<study>``,
        ``censoring="none"``, ``upper=nan`` and the simulated value.

    Raises
    ------
    SimulationError
        If a prediction at ``phi_true`` is not positive and finite.

    Examples
    --------
    >>> import numpy as np
    >>> import exopk
    >>> from exopk.inference.posterior import LogPosterior
    >>> from exopk.inference.simulated import simulate_observations
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> design = [Observation("demo", 2, Request("value", "plasma_percent_id", 30.0), "iv", "",
    ...                       value=40.0, upper=float("nan"), censoring="none", sigma_log=0.1)]
    >>> lp = LogPosterior(model, design)
    >>> phi_true = lp.to_unconstrained({"CL": 0.02, "V_plasma": 1.0, "tau": 0.05})
    >>> simulated = simulate_observations(lp, phi_true, np.random.default_rng(1))
    >>> simulated[0].study, simulated[0].request == design[0].request
    ('simulated:demo', True)
    >>> 40 < simulated[0].value < 70     # 100 exp(-0.6) = 54.9 %ID, sigma about 0.11
    True
    """
    lp = _log_posterior(log_posterior)
    phi_true = np.asarray(phi_true, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted, _ = lp.predictions_and_terms(phi_true)
    if not np.all(np.isfinite(predicted) & (predicted > 0)):
        raise SimulationError("a prediction at the true parameters is not positive and finite; "
                              "log-normal observations need y > 0")
    tau = lp.natural(phi_true)["tau"]
    sigma = np.sqrt(np.array([o.sigma_log for o in lp.observations]) ** 2 + tau**2)
    values = predicted * np.exp(sigma * rng.normal(size=predicted.size))
    return [dataclasses.replace(obs, study=f"{SIMULATED_PREFIX}{obs.study}", value=float(value),
                                censoring="none", upper=float("nan"))
            for obs, value in zip(lp.observations, values)]


def simulated_posterior(prepared_or_log_posterior, observations) -> LogPosterior:
    """The log-posterior of the same model and specification on other (simulated) observations.

    Parameters
    ----------
    prepared_or_log_posterior : Prepared or LogPosterior
        Gives the model and the :class:`PosteriorSpec` (priors, fixed values, conditions,
        random effects, covariates, species scaling).
    observations : list of Observation
        Usually from :func:`simulate_observations` on the same posterior: per-observation
        specifications (covariate levels, body weights) are matched by position.

    Returns
    -------
    LogPosterior

    Raises
    ------
    SimulationError
        If the number of observations differs from the original design's.

    Examples
    --------
    >>> import numpy as np
    >>> import exopk
    >>> from exopk.inference.posterior import LogPosterior
    >>> from exopk.inference.simulated import simulate_observations, simulated_posterior
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> design = [Observation("demo", 2, Request("half_life", "plasma_concentration"), "iv", "",
    ...                       value=3.0, upper=float("nan"), censoring="none", sigma_log=0.1)]
    >>> lp = LogPosterior(model, design)
    >>> phi_true = lp.sample_prior(np.random.default_rng(0), 1)[0]
    >>> simulated = simulate_observations(lp, phi_true, np.random.default_rng(1))
    >>> lp_simulated = simulated_posterior(lp, simulated)
    >>> lp_simulated.names == lp.names, lp_simulated.studies
    (True, ['simulated:demo'])
    """
    lp = _log_posterior(prepared_or_log_posterior)
    if len(observations) != len(lp.observations):
        raise SimulationError(f"the design has {len(lp.observations)} observations, got "
                              f"{len(observations)}: per-observation specifications would not "
                              "line up")
    return LogPosterior(lp.model, observations, lp.spec)


@dataclasses.dataclass(frozen=True)
class SimulatedFit:
    """One fit to data simulated at a known truth.

    Attributes
    ----------
    phi_true : ndarray, shape (n_parameters,)
        The truth, in unconstrained coordinates.
    observations : list of Observation
        The simulated data.
    map_phi : ndarray, shape (n_parameters,)
        MAP estimate of the natural parameters, in unconstrained coordinates.
    draws : ndarray, shape (chains, draws, n_parameters)
        Post-warm-up NUTS draws, in unconstrained coordinates.
    divergences : int
        Divergent NUTS iterations after warm-up, over all chains.
    seconds : float
        Wall-clock time of the MAP search and the chains.
    """

    phi_true: np.ndarray
    observations: list
    map_phi: np.ndarray
    draws: np.ndarray
    divergences: int
    seconds: float


def _prior_truth_and_data(lp, rng):
    """A prior draw at which every prediction is positive and finite, and data simulated there.

    The log-posterior is ``-inf`` where a prediction is not positive, so the prior it samples
    from is truncated to that region: drawing truths from the same truncated prior keeps a
    calibration check exact.
    """
    for _ in range(MAX_PRIOR_ATTEMPTS):
        phi_true = lp.sample_prior(rng, 1)[0]
        try:
            return phi_true, simulate_observations(lp, phi_true, rng)
        except SimulationError:
            continue
    raise SimulationError(f"none of {MAX_PRIOR_ATTEMPTS} prior draws gives positive finite "
                          "predictions")


def fit_simulated(prepared_or_log_posterior, seed: int, *, chains: int = 2, warmup: int = 150,
                  draws: int = 200, map_starts: int = 4, settings=None,
                  processes: int = 1, truth: dict | None = None, thin: int = 1) -> SimulatedFit:
    """Draw a truth from the prior (or take ``truth``), simulate the design's data at it, and
    fit them.

    Prior draws at which a prediction is not positive and finite (outside the support of the
    log-posterior, for example a concentration that underflows) are drawn again. As in
    :func:`exopk.inference.fit.fit`, the MAP (:func:`~exopk.inference.sampling.find_map`) leads
    to the chains' starting points (:func:`~exopk.inference.sampling.chain_starts`) and the NUTS
    chains (:func:`~exopk.inference.sampling.run_chains`).

    Parameters
    ----------
    prepared_or_log_posterior : Prepared or LogPosterior
        Gives the design, the model and the priors.
    seed : int
        Seeds the truth, the noise, the MAP starts and the chains: the same seed gives the same
        fit.
    chains, warmup, draws : int
        NUTS chains and iterations per chain (``warmup`` >= 150).
    map_starts : int
    settings : NutsSettings, optional
        NUTS settings (default: :class:`~exopk.inference.samplers.NutsSettings`' defaults).
    processes : int
        Worker processes for the chains (1: one after another in this process, as needed inside
        a worker process of a pool of replicates).
    truth : dict, optional
        Natural values of the free parameters and ``tau`` (:meth:`LogPosterior.to_unconstrained`;
        a parameter left out takes the model's nominal value) instead of a prior draw.
    thin : int
        Keep every ``thin``-th post-warm-up iteration (``draws`` are kept per chain).

    Returns
    -------
    SimulatedFit

    Examples
    --------
    >>> import numpy as np
    >>> import exopk
    >>> from exopk.inference.posterior import LogPosterior
    >>> from exopk.inference.simulated import fit_simulated
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> design = [Observation("demo", 2, Request("half_life", "plasma_concentration"), "iv", "",
    ...                       value=3.0, upper=float("nan"), censoring="none", sigma_log=0.1)]
    >>> result = fit_simulated(LogPosterior(model, design), seed=3, chains=1, draws=50)
    >>> result.draws.shape, result.observations[0].study
    ((1, 50, 3), 'simulated:demo')
    """
    start = time.perf_counter()
    lp = _log_posterior(prepared_or_log_posterior)
    rng = np.random.default_rng(seed)
    if truth is None:
        phi_true, observations = _prior_truth_and_data(lp, rng)
    else:
        phi_true = lp.to_unconstrained(truth)
        observations = simulate_observations(lp, phi_true, rng)
    target = simulated_posterior(lp, observations)
    map_result = find_map(target, seed=seed, starts=map_starts)
    x0s = chain_starts(target, map_result.phi, chains, seed=seed)
    results = run_chains(target, x0s, seed=seed, method="nuts", warmup=warmup, draws=draws,
                         settings=settings, processes=processes, progress=False, thin=thin)
    return SimulatedFit(phi_true=phi_true, observations=observations, map_phi=map_result.phi,
                        draws=np.stack([r.draws for r in results]),
                        divergences=int(sum(r.diverging.sum() for r in results)),
                        seconds=time.perf_counter() - start)
