"""Fit a model object to a user's time-course observations from Python, without a fit file.

:func:`fit_observations` takes a :class:`~exopk.model.Model`, observations of kind ``value``
(each under the regimen its subject received, for example from
:func:`exopk.observation.event_observations`) and a residual error model per output, and
returns the same :class:`~exopk.inference.fit.FitResult` as :func:`exopk.fit`: the ArviZ-layout
tree with its ``diagnostics`` group. :func:`fit_individuals` fits every subject separately and
tabulates the estimates, one row per subject.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from exopk.errors import ExopkError
from exopk.inference.fit import FitResult, _assemble
from exopk.inference.fitfile import FitFile, SamplerSettings
from exopk.inference.laplace import laplace_chains, polish_mode
from exopk.inference.preparation import Prepared
from exopk.inference.result import write_fit
from exopk.inference.samplers import sampler_settings
from exopk.inference.sampling import chain_starts, find_map, run_chains
from exopk.inference.timecourse import TimeCoursePosterior

__all__ = ["fit_observations", "fit_individuals", "METHODS"]

METHODS = ("map", "nuts")


def fit_observations(model, observations, *, errors: Mapping, priors: Mapping | None = None,
                     fixed: Mapping | None = None, error_priors: Mapping | None = None,
                     method: str = "map", seed: int = 1, chains: int = 4, draws: int = 1000,
                     warmup: int = 500, map_starts: int = 4, processes: int | None = None,
                     progress: bool = False, name: str = "observations",
                     out: str | Path | None = None) -> FitResult:
    """Fit ``model`` to time-course ``observations`` with estimated residual errors.

    Parameters
    ----------
    model : Model
    observations : list of Observation
    errors : mapping
        Output -> error model (``"additive"``, ``"proportional"``, ``"combined"``,
        ``"lognormal"`` or a :class:`~exopk.observation.error_models.ResidualError`).
    priors, fixed, error_priors : mapping, optional
        See :class:`~exopk.inference.timecourse.TimeCoursePosterior`.
    method : {"map", "nuts"}
        ``"map"``: the mode of the density of the sampling coordinates (log or logit of each
        parameter, log of each error parameter) with a Laplace approximation there
        (:mod:`exopk.inference.laplace`); ``"nuts"``: MCMC started at that mode.
    seed : int
    chains, draws : int
        Layout of the draws (Laplace draws are independent).
    warmup : int
        NUTS warm-up iterations per chain.
    map_starts : int
    processes : int, optional
        Worker processes for NUTS chains.
    progress : bool
    name : str
        The fit's name in the result.
    out : path, optional
        Write the result here (NetCDF).

    Returns
    -------
    FitResult

    Raises
    ------
    ExopkError
        For an unknown method, or a configuration the posterior refuses (before any work).

    Examples
    --------
    >>> import numpy as np, exopk
    >>> from exopk.observation import Observation, Request
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> dose = exopk.Regimen.bolus("iv", 100.0)
    >>> times = np.array([5.0, 15.0, 30.0, 60.0, 90.0, 120.0])
    >>> noise = 1 + 0.1 * np.random.default_rng(4).normal(size=times.size)
    >>> observed = 100.0 * np.exp(-0.2 * times / 1.0) * noise     # CL 0.2 mL/min, V 1 mL
    >>> observations = [Observation("demo", i, Request("value", "plasma_concentration", t), "iv",
    ...                             "", value=v, upper=float("nan"), censoring="none",
    ...                             sigma_log=0.0, regimen=dose)
    ...                 for i, (t, v) in enumerate(zip(times, observed))]
    >>> result = exopk.fit_observations(model, observations,
    ...                                 errors={"plasma_concentration": "proportional"})
    >>> round(float(result.tree.posterior["CL"].median()), 1)
    0.2
    """
    if method not in METHODS:
        raise ExopkError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    lp = TimeCoursePosterior(model, observations, errors, priors=priors, fixed=fixed,
                             error_priors=error_priors)
    settings = SamplerSettings(chains=chains, draws=draws, map_starts=map_starts,
                               warmup=max(warmup, 150))
    fit_file = FitFile(name=name, path=None, text="", model=model.name, seed=seed,
                       sampler=settings)
    prepared = Prepared(fit_file, model, None, list(observations), [], lp)
    path = Path(out) if out else Path(f"{name}.nc")
    map_result = find_map(lp, seed=seed, starts=map_starts, natural=False)
    phi, value = polish_mode(lp, map_result.phi)
    map_result = dataclasses.replace(map_result, phi=phi, log_posterior=value)
    if method == "map":
        results, approximation = laplace_chains(lp, map_result.phi, chains=chains, draws=draws,
                                                seed=seed)
        tree = _assemble(prepared, results, map_result, seed, chains, 0, draws, path,
                         sampler="laplace", approximation=approximation)
    else:
        x0s = chain_starts(lp, map_result.phi, chains, seed=seed)
        results = run_chains(lp, x0s, seed=seed, method="nuts", warmup=warmup, draws=draws,
                             settings=sampler_settings("nuts"), processes=processes,
                             progress=progress)
        tree = _assemble(prepared, results, map_result, seed, chains, warmup, draws, path)
    tree.attrs["error_models"] = ", ".join(f"{e.output}: {e.kind}" for e in lp.errors.values())
    if out:
        write_fit(tree, path)
    return FitResult(tree=tree, diagnostics=tree["diagnostics"].to_dataset(),
                     path=path if out else None)


def fit_individuals(model, observations, *, errors: Mapping, interval: float = 0.9,
                    **options) -> tuple[xr.Dataset, dict]:
    """Fit every subject (study) separately; a table of estimates, one row per subject.

    Parameters
    ----------
    model, observations, errors
        As for :func:`fit_observations`; observations are split by their ``study``.
    interval : float
        Central interval of the table (0.9: 5% and 95%).
    **options
        Passed to :func:`fit_observations` (``method``, ``seed``, ``priors``, ...).

    Returns
    -------
    table : xarray.Dataset
        Dims ``individual`` and ``parameter``: ``median``, ``lower``, ``upper``.
    fits : dict
        Subject -> :class:`FitResult`.
    """
    studies = list(dict.fromkeys(o.study for o in observations))
    fits = {}
    for study in studies:
        members = [o for o in observations if o.study == study]
        fits[study] = fit_observations(model, members, errors=errors,
                                       **{"name": study, **options})
    names = list(fits[studies[0]].tree.posterior.data_vars)
    q = (0.5 - interval / 2, 0.5, 0.5 + interval / 2)
    values = np.array([[np.quantile(fits[s].tree.posterior[n].values, q) for n in names]
                       for s in studies])                    # (individual, parameter, 3)
    table = xr.Dataset({"lower": (("individual", "parameter"), values[..., 0]),
                        "median": (("individual", "parameter"), values[..., 1]),
                        "upper": (("individual", "parameter"), values[..., 2])},
                       coords={"individual": studies, "parameter": names})
    table.attrs["interval"] = interval
    return table, fits
