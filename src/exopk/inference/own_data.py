"""Fit a model object to a user's time-course observations from Python, without a fit file.

:func:`fit_observations` takes a :class:`~exopk.model.Model`, observations of kind ``value``
(each under the regimen its subject received, for example from
:func:`exopk.observation.event_observations`) and a residual error model per output, and
returns the same :class:`~exopk.inference.fit.FitResult` as :func:`exopk.fit`: the ArviZ-layout
tree with its ``diagnostics`` group. :func:`fit_individuals` fits every subject separately and
tabulates the estimates, one row per subject.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from exopk.data.events import read_events
from exopk.units import UnitError, convert
from exopk.errors import ExopkError, ModelFileError
from exopk.io import write_atomically
from exopk.inference.assembly import FitResult
from exopk.inference.fitfile import FitFile, SamplerSettings
from exopk.inference.preparation import Prepared, model_of, output_path
from exopk.inference.result import as_attr, write_fit
from exopk.inference.posterior import LogPosterior, PosteriorSpec
from exopk.inference.running import run_prepared
from exopk.inference.timecourse import TimeCoursePosterior
from exopk.observation.events import event_observations

__all__ = ["fit_observations", "fit_individuals", "fit_event_data", "event_data_observations",
           "IndividualFits", "METHODS"]

METHODS = ("map", "nuts")


def fit_observations(model, observations, *, errors: Mapping, priors: Mapping | None = None,
                     fixed: Mapping | None = None, error_priors: Mapping | None = None,
                     method: str = "map", seed: int = 1, chains: int = 4, draws: int = 1000,
                     warmup: int = 500, thin: int = 1, map_starts: int = 4,
                     processes: int | None = None, progress: bool = False,
                     name: str = "observations",
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
    thin : int
        NUTS: keep every ``thin``-th iteration after the warm-up.
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
                               warmup=max(warmup, 150), thin=thin)
    fit_file = FitFile(name=name, path=None, text="", model=model.name, seed=seed,
                       sampler=settings)
    prepared = Prepared(fit_file, model, None, list(observations), [], lp)
    path = Path(out) if out else Path(f"{name}.nc")
    result = run_prepared(prepared, path=path, method=method, seed=seed, chains=chains,
                          warmup=warmup, draws=draws, map_starts=map_starts,
                          processes=processes, progress=progress, write=False)
    result.tree.attrs["error_models"] = ", ".join(f"{e.output}: {e.kind}"
                                                  for e in lp.errors.values())
    if out:
        write_fit(result.tree, path)
        result.path = path
    return result


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
        Dims ``individual`` and ``parameter``: ``median``, ``lower``, ``upper``; NaN for an
        individual that could not be fitted, with the reason in ``attrs["not_fitted"]`` (a
        JSON object, ID -> message).
    fits : dict
        Subject -> :class:`FitResult`.
    """
    studies = list(dict.fromkeys(o.study for o in observations))
    fits, failed = {}, {}
    for study in studies:
        members = [o for o in observations if o.study == study]
        try:
            fits[study] = fit_observations(model, members, errors=errors,
                                           **{"name": study, **options})
        except ExopkError as exc:      # too few observations for this individual, say
            failed[study] = str(exc)
    if not fits:
        raise ExopkError(f"no individual could be fitted; the first: {next(iter(failed.items()))}")
    names = list(next(iter(fits.values())).tree.posterior.data_vars)
    q = (0.5 - interval / 2, 0.5, 0.5 + interval / 2)
    values = np.array([[np.quantile(fits[s].tree.posterior[n].values, q) if s in fits
                        else np.full(3, np.nan) for n in names]
                       for s in studies])                    # (individual, parameter, 3)
    table = xr.Dataset({"lower": (("individual", "parameter"), values[..., 0]),
                        "median": (("individual", "parameter"), values[..., 1]),
                        "upper": (("individual", "parameter"), values[..., 2])},
                       coords={"individual": studies, "parameter": names})
    table.attrs["interval"] = interval
    table.attrs["not_fitted"] = as_attr(failed)
    return table, fits


@dataclass
class IndividualFits:
    """Every individual of an event table fitted separately.

    Attributes
    ----------
    table : xarray.Dataset
        See :func:`fit_individuals`.
    fits : dict
        ID -> :class:`FitResult`.
    path : Path or None
        Where the table was written.
    """

    table: xr.Dataset
    fits: dict
    path: Path | None

    def summary(self) -> str:
        """One row per individual: median and interval of every parameter."""
        table = self.table
        percent = round(100 * float(table.attrs["interval"]))
        names = list(table["parameter"].values)
        lines = [f"{len(table['individual'])} individuals fitted separately; median "
                 f"[{percent}% interval]",
                 f"{'individual':<16}" + "".join(f"{n:>34}" for n in names)]
        for individual in table["individual"].values:
            row = table.sel(individual=individual)
            cells = [f"{float(row['median'].sel(parameter=n)):.4g} "
                     f"[{float(row['lower'].sel(parameter=n)):.3g}, "
                     f"{float(row['upper'].sel(parameter=n)):.3g}]" for n in names]
            lines.append(f"{individual:<16}" + "".join(f"{c:>34}" for c in cells))
        for individual, reason in json.loads(table.attrs["not_fitted"]).items():
            lines.append(f"not fitted: {individual}: {reason}")
        return "\n".join(lines)


def event_data_observations(fit_file: FitFile, model) -> list:
    """The observations of a fit file's ``[data]`` event table, in the model's units.

    Raises
    ------
    ModelFileError
        Naming the fit file and the ``data.*`` key: a missing event table, a unit pint cannot
        convert to the model's, an output the model does not have.
    exopk.data.DataValidationError
        A problem in the event table (its file, line and column).
    """
    data = fit_file.data
    path = fit_file.resolve(data.events)
    if not path.is_file():
        raise ModelFileError(f"event table '{data.events}' not found (looked for {path})",
                             file=fit_file.path, key="data.events")
    if data.output not in model.output_names:
        raise ModelFileError(f"model '{model.name}' has no output '{data.output}'; outputs: "
                             f"{', '.join(model.output_names)}", file=fit_file.path,
                             key="data.output")
    output_unit = model.quantities.outputs[model.output_names.index(data.output)].unit
    factors = {}
    for key, unit, target in (("amount_unit", data.amount_unit, model.amount_unit),
                              ("dv_unit", data.dv_unit, output_unit)):
        try:
            factors[key] = 1.0 if unit is None else convert(1.0, unit, target)
        except UnitError as exc:
            raise ModelFileError(f"{exc} (the model's unit is '{target}')", file=fit_file.path,
                                 key=f"data.{key}") from None
    try:
        events = read_events(path, time_unit=data.time_unit)
    except UnitError as exc:
        raise ModelFileError(str(exc), file=fit_file.path, key="data.time_unit") from None
    routes = {int(key) if key.isdigit() and data.route_column is None else key: route
              for key, route in data.routes.items()}
    return event_observations(events, model, routes, output=data.output,
                              route_column=data.route_column,
                              censored_column=data.censored_column,
                              positive=data.error == "lognormal",
                              amount_factor=factors["amount_unit"],
                              value_factor=factors["dv_unit"])


def fit_event_data(fit_file: FitFile, *, method: str | None = None, out=None, write=True,
                   seed=None, chains=None, draws=None, warmup=None, map_starts=None,
                   processes=None, progress=True):
    """Fit a fit file's ``[data]`` event table (see :func:`exopk.fit`).

    Returns
    -------
    FitResult
        ``data.fit = "pooled"``.
    IndividualFits
        ``data.fit = "individual"``.

    ``data.fit = "population"`` fits every ID with random effects on the parameters named
    under ``[random_effects]`` (log-normal error only; see :func:`_population_posterior`).
    """
    model = model_of(fit_file)
    data = fit_file.data
    observations = event_data_observations(fit_file, model)
    settings = fit_file.sampler
    options = dict(errors={data.output: data.error}, priors=fit_file.priors,
                   fixed=fit_file.fixed, error_priors=data.error_priors,
                   method=method or "nuts", seed=fit_file.seed if seed is None else seed,
                   chains=chains or settings.chains, draws=draws or settings.draws,
                   warmup=warmup or settings.warmup, map_starts=map_starts or settings.map_starts,
                   thin=settings.thin, processes=processes, progress=progress)
    path = output_path(fit_file, out)
    if data.fit == "population":
        prepared = Prepared(fit_file, model, None, observations, [],
                            _population_posterior(fit_file, model, observations))
        return run_prepared(prepared, path=path, write=write,
                            **{k: v for k, v in options.items()
                               if k not in ("errors", "priors", "fixed", "error_priors", "thin")})
    if data.fit == "individual":
        table, fits = fit_individuals(model, observations, **options)
        if write:
            write_atomically(path, lambda temporary: table.to_netcdf(temporary))
        return IndividualFits(table, fits, path if write else None)
    result = fit_observations(model, observations, name=fit_file.name, **options)
    result.tree.attrs["fit_file_text"] = fit_file.text
    if write:
        write_fit(result.tree, path)
        result.path = path
    return result


def _population_posterior(fit_file: FitFile, model, observations) -> LogPosterior:
    """IDs as the studies of the random-effects posterior (:mod:`exopk.inference.hierarchy`).

    Each ID's parameters named under ``[random_effects]`` are the population's times
    ``exp(omega * z)``; the log-normal likelihood's ``tau`` is then the residual error (sd of
    log) of every concentration, so only ``error = "lognormal"`` fits this way.
    """
    data = fit_file.data
    if data.error != "lognormal":
        raise ModelFileError(f"a population fit of event data uses the log-normal error of the "
                             f"random-effects posterior (tau: the residual sd of log); set "
                             f"error = \"lognormal\", not \"{data.error}\"",
                             file=fit_file.path, key="data.error")
    if not fit_file.random_effects:
        raise ModelFileError("a population fit needs the parameters that vary between IDs "
                             "under [random_effects] parameters", file=fit_file.path,
                             key="random_effects.parameters")
    if data.error_priors:
        raise ModelFileError("a population fit's residual error is tau: give its prior under "
                             "[dispersion] prior, not [data.error_priors]", file=fit_file.path,
                             key="data.error_priors")
    spec = {"fixed": fit_file.fixed, "priors": fit_file.priors,
            "random_effects": fit_file.random_effects}
    if fit_file.tau_prior is not None:
        spec["tau_prior"] = fit_file.tau_prior
    if fit_file.random_effect_sd_prior is not None:
        spec["random_effect_sd_prior"] = fit_file.random_effect_sd_prior
    return LogPosterior(model, observations, PosteriorSpec(**spec))
