"""From a fit file to a log-posterior, with every check that can be made before sampling.

:func:`prepare` loads the model and the evidence a fit file names, checks that everything the
file names exists (parameters, studies, species, routes, quantities, conditions, covariate
levels) and that priors, random effects and covariates act on estimated parameters, builds the
observations in the model's time unit and the log-posterior. :func:`check_fit_arguments` checks
the arguments of :func:`exopk.fit` and the output path before any of that work. Errors name the
fit file and the key, and list what does exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from exopk.data import load as load_evidence
from exopk.data import read_csv
from exopk.units import convert
from exopk.errors import ExopkError, ModelFileError
from exopk.inference.fitfile import (FitFile, did_you_mean, known_names, parse_prior,
                                     read_fit_file)
from exopk.inference.posterior import Covariate, LogPosterior, PosteriorSpec
from exopk.io import check_writable
from exopk.model import load_model
from exopk.models_library import available_models, model_path
from exopk.observation.predictions import KINDS
from exopk.observation.records import ErrorModel, build_observations

__all__ = ["Prepared", "prepare", "model_of", "check_fit_arguments", "output_path", "in_model_time_unit"]

_SELECTIONS = (("species", "species"), ("route", "routes"), ("study_key", "studies"),
               ("quantity", "quantities"))


@dataclass
class Prepared:
    """Everything a fit is built from."""

    fit_file: FitFile
    model: object
    records: xr.Dataset
    observations: list
    skipped: list
    log_posterior: LogPosterior
    caveats: list = field(default_factory=list)


def output_path(fit_file: FitFile, out: str | Path | None = None) -> Path:
    """Where a fit's result goes: ``out``, else ``NAME.nc`` in the working directory.

    ``NAME`` is the fit file's name without ``.toml`` (or the fit's name for a fit file built in
    Python). The default never overwrites a result shipped beside its fit file: regenerating
    one is a deliberate ``--out fits/NAME.nc``.
    """
    if out:
        return Path(out)
    return Path(f"{Path(fit_file.path).stem}.nc") if fit_file.path else Path(f"{fit_file.name}.nc")


def check_fit_arguments(fit_file: FitFile | str | Path, *, out=None, write: bool = True,
                        chains=None, warmup=None, draws=None, seed=None, map_starts=None,
                        processes=None) -> FitFile:
    """Read the fit file and check the arguments of :func:`exopk.fit` before any work.

    Parameters
    ----------
    fit_file : FitFile, str or Path
    out, write, chains, warmup, draws, seed, map_starts, processes
        As for :func:`exopk.fit` (None: the fit file's setting).

    Returns
    -------
    FitFile
        The fit file, read if a path was given.

    Raises
    ------
    ExopkError
        An argument has the wrong type or is outside its range (the sampler settings after the
        overrides must be valid, for example NUTS needs its minimum warm-up and the diagnostics
        need 2 chains of 4 draws), or the output cannot be written.
    """
    if not isinstance(fit_file, FitFile):
        fit_file = read_fit_file(fit_file)
    overrides = {name: value for name, value in (("chains", chains), ("warmup", warmup),
                                                 ("draws", draws), ("map_starts", map_starts))
                 if value is not None}
    try:
        dataclasses.replace(fit_file.sampler, **overrides)
    except ModelFileError as exc:
        name = exc.key.removeprefix("sampler.")
        raise ExopkError(f"argument {name} = {overrides[name]!r}: {exc.reason}" if name in overrides
                         else f"{fit_file.path or fit_file.name}: {exc}") from None
    for name, value, minimum in (("seed", seed, 0), ("processes", processes, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < minimum):
            raise ExopkError(f"argument {name} = {value!r}: must be an integer >= {minimum}")
    if write:
        check_writable(output_path(fit_file, out), option="output file")
    return fit_file


def prepare(fit_file: FitFile | str | Path) -> Prepared:
    """Model, evidence, observations and log-posterior of a fit file, without sampling."""
    if not isinstance(fit_file, FitFile):
        fit_file = read_fit_file(fit_file)
    model = model_of(fit_file)
    _check_parameters(fit_file, model)
    records = _evidence(fit_file)
    evidence = fit_file.evidence
    error_model = ErrorModel(unstated_as=evidence.get("unstated_error_as", "sem"))
    observations, skipped = build_observations(records, model, error_model=error_model,
                                               signal=evidence.get("signal", "label"))
    if not observations:
        reasons = "; ".join(f"line {s.line} ({s.study}): {s.reason}" for s in skipped[:3])
        raise ModelFileError(f"none of the {records.sizes['record']} selected records gives an "
                             f"observation for model '{model.name}'"
                             + (f"; for example {reasons}" if reasons else ""),
                             file=fit_file.path, key="evidence")
    unmapped = sorted({o.condition for o in observations if o.condition}
                      - set(fit_file.conditions))
    if unmapped:
        raise ModelFileError(f"observations under condition(s) {', '.join(unmapped)} need an "
                             "entry in [conditions] (an empty table {} when a condition changes "
                             "no parameter)", file=fit_file.path, key="conditions")
    observations = in_model_time_unit(observations, model.time_unit)
    spec = _posterior_spec(fit_file, records, observations)
    return Prepared(fit_file, model, records, observations, skipped,
                    LogPosterior(model, observations, spec), _caveats(records, observations))


def _caveats(records, observations) -> list[str]:
    """For every observation from a record opted in although marked not usable: why it was
    marked, and the record's note."""
    opted = np.flatnonzero(records["opted_in"].values)
    index = {(str(records.source_file.values[i]), int(records.line.values[i])): i for i in opted}
    caveats = []
    for o in observations:
        i = index.get((o.source, o.line))
        if i is not None:
            caveats.append(f"{o.study}:{o.line} ({o.request.kind} {o.request.output}) is marked "
                           f"not usable ({records['unusable_reason'].values[i]}) and opted in: "
                           f"{records['note'].values[i]}")
    return caveats


def in_model_time_unit(observations: list, time_unit: str) -> list:
    """Observations (built in minutes) with times and time-based values in ``time_unit``.

    Half-lives, MRTs and sampling times scale with the unit, rates and clearances inversely,
    AUCs (amount * time / volume) with it. Log-scale standard deviations do not change.
    """
    factor = convert(1.0, "min", time_unit)
    if factor == 1.0:
        return list(observations)
    converted = []
    for obs in observations:
        request = obs.request
        scale = factor ** KINDS[request.kind].time_power
        time = None if request.time is None else request.time * factor
        converted.append(dataclasses.replace(
            obs, request=dataclasses.replace(request, time=time), value=obs.value * scale,
            upper=obs.upper * scale))
    return converted


def model_of(fit_file: FitFile):
    """The model a fit file names (``fit.model``: a model file or a shipped model)."""
    reference = fit_file.model
    if reference.endswith(".toml"):
        path = fit_file.resolve(reference)
        if path.is_file():
            return load_model(path)
        raise ModelFileError(f"model file '{reference}' not found (looked for {path})",
                             file=fit_file.path, key="fit.model")
    if reference not in available_models():
        raise ModelFileError(f"'{reference}' is neither a .toml file nor a shipped model"
                             f"{did_you_mean(reference, available_models())}; shipped: "
                             f"{known_names(available_models())}", file=fit_file.path,
                             key="fit.model")
    return load_model(model_path(reference))


def _check_parameters(fit_file: FitFile, model) -> None:
    """Every parameter the fit file names exists and is used in a way that has an effect."""
    file = fit_file.path
    parameters = {p.name: p for p in model.parameters}

    def known(name, key):
        if name not in parameters:
            raise ModelFileError(f"model '{model.name}' has no parameter '{name}'"
                                 f"{did_you_mean(name, parameters)}; its parameters: "
                                 f"{known_names(parameters)}", file=file, key=key)
        return parameters[name]

    def within_bounds(name, value, key):
        p = known(name, key)
        if not p.lower <= value <= p.upper:
            raise ModelFileError(f"{value:g} is outside the bounds [{p.lower:g}, {p.upper:g}] of "
                                 f"'{name}'", file=file, key=key)

    for name, value in fit_file.fixed.items():
        within_bounds(name, value, f"fixed.{name}")
    for condition, overrides in fit_file.conditions.items():
        for name, value in overrides.items():
            within_bounds(name, value, f"conditions.{condition}.{name}")
    for name in fit_file.free:
        p = known(name, "free.parameters")
        if not p.fixed:
            raise ModelFileError(f"'{name}' is not fixed by the model, so it is estimated "
                                 "already", file=file, key="free.parameters")
        if name in fit_file.fixed:
            raise ModelFileError(f"'{name}' is both freed and fixed", file=file,
                                 key="free.parameters")
        if p.prior is None and name not in fit_file.priors:
            raise ModelFileError(f"freed parameter '{name}' needs a prior: the model file has "
                                 "none; add one under [priors]", file=file, key="free.parameters")
    estimated = {name for name, p in parameters.items()
                 if (not p.fixed or name in fit_file.free) and name not in fit_file.fixed}

    def estimated_parameter(name, key, positive=False):
        p = known(name, key)
        if name not in estimated:
            how = "this fit file" if name in fit_file.fixed else "the model (free it under [free])"
            raise ModelFileError(f"'{name}' is fixed by {how}; a fixed parameter cannot take a "
                                 "prior, random effect, covariate or scaling", file=file, key=key)
        if positive and not p.lower >= 0:
            raise ModelFileError(f"'{name}' may be negative (lower bound {p.lower:g}); random "
                                 "effects, covariates and scaling act on positive parameters",
                                 file=file, key=key)

    for name in fit_file.priors:
        estimated_parameter(name, f"priors.{name}")
    for name in fit_file.random_effects:
        estimated_parameter(name, "random_effects.parameters", positive=True)
    for name in fit_file.species_scaling.get("parameters", ()):
        estimated_parameter(name, "species_scaling.parameters", positive=True)
    for covariate, table in fit_file.covariates.items():
        for name in table["parameters"]:
            estimated_parameter(name, f"covariates.{covariate}.parameters", positive=True)


def _tables(fit_file: FitFile) -> xr.Dataset:
    tables = []
    for table in fit_file.evidence.get("tables", ["ev"]):
        if table in ("ev", "proxies"):
            tables.append(load_evidence(table))
            continue
        path = fit_file.resolve(table)
        if not path.is_file():
            raise ModelFileError(f"'{table}' is neither \"ev\", \"proxies\" nor a CSV file "
                                 f"(looked for {path}){did_you_mean(table, ('ev', 'proxies'))}",
                                 file=fit_file.path, key="evidence.tables")
        tables.append(read_csv(path))
    records = xr.concat(tables, dim="record") if len(tables) > 1 else tables[0]
    is_proxy = records["is_proxy"].values.astype(bool)
    carrier = np.where(is_proxy, records["ev_source"].values.astype(str), "ev")
    return records.assign(carrier_class=("record", carrier.astype(object)))


def _evidence(fit_file: FitFile) -> xr.Dataset:
    spec = fit_file.evidence
    records = _tables(fit_file)
    columns = {column: records[column].values.astype(str) for column, _ in _SELECTIONS}
    for column, key in _SELECTIONS:
        present = set(columns[column])
        for value in spec.get(key, []):
            if value not in present:
                raise ModelFileError(f"no record of the selected tables has {column} '{value}'"
                                     f"{did_you_mean(value, present)}; present: "
                                     f"{known_names(present)}", file=fit_file.path,
                                     key=f"evidence.{key}")
    conditions = set(records["condition"].values.astype(str))
    for condition in fit_file.conditions:
        if condition not in conditions:
            raise ModelFileError(f"no record of the selected tables has condition '{condition}'"
                                 f"{did_you_mean(condition, conditions)}; present: "
                                 f"{known_names(conditions - {''})}", file=fit_file.path,
                                 key=f"conditions.{condition}")
    keep = np.ones(records.sizes["record"], dtype=bool)
    for column, key in _SELECTIONS:
        if spec.get(key):
            keep &= np.isin(columns[column], spec[key])
    is_proxy = records["is_proxy"].values.astype(bool)
    if not spec.get("proxies", False):
        keep &= ~is_proxy
    for study in spec.get("studies", []):
        if not keep[columns["study_key"] == study].any():
            raise ModelFileError(f"study '{study}' has no record left by the other selections "
                                 "(species, routes, quantities, proxies)", file=fit_file.path,
                                 key="evidence.studies")
    added = spec.get("proxy_studies", [])
    if added:
        chosen = np.isin(columns["study_key"], added)
        proxies = set(columns["study_key"][is_proxy])
        unknown = sorted(set(added) - set(columns["study_key"][chosen & is_proxy]))
        if unknown:
            raise ModelFileError(f"{', '.join(unknown)} are not proxy studies of the selected "
                                 f"tables{did_you_mean(unknown[0], proxies)}; proxy studies: "
                                 f"{known_names(proxies)}", file=fit_file.path,
                                 key="evidence.proxy_studies")
        keep |= chosen & is_proxy
    for column, key in (("matrix", "proxy_matrices"), ("carrier_class", "proxy_carriers")):
        wanted = spec.get(key, [])
        values = records[column].values.astype(str)
        present = set(values[keep & is_proxy])
        for value in wanted:
            if value not in present:
                raise ModelFileError(f"no selected proxy record has {column} '{value}'"
                                     f"{did_you_mean(value, present)}; present: "
                                     f"{known_names(present)}", file=fit_file.path,
                                     key=f"evidence.{key}")
        if wanted:
            keep &= ~is_proxy | np.isin(values, wanted)
    opted = np.zeros(records.sizes["record"], dtype=bool)
    for study in spec.get("opt_in", []):
        if study not in set(columns["study_key"]):
            raise ModelFileError(f"no record of the selected tables has study_key '{study}'"
                                 f"{did_you_mean(study, set(columns['study_key']))}",
                                 file=fit_file.path, key="evidence.opt_in")
        opted |= columns["study_key"] == study
    keep |= opted
    unusable = ~records["usable"].values.astype(bool)
    records = records.assign(usable=("record", records["usable"].values.astype(bool) | opted),
                             opted_in=("record", opted & unusable))
    if not keep.any():
        raise ModelFileError("no evidence record matches all the selections together",
                             file=fit_file.path, key="evidence")
    return records.isel(record=np.flatnonzero(keep))


def _record_column(records, observations, column):
    index = {(str(records.source_file.values[i]), int(records.line.values[i])): i
             for i in range(records.sizes["record"])}
    return tuple(str(records[column].values[index[(o.source, o.line)]]) for o in observations)


def _posterior_spec(fit_file: FitFile, records, observations) -> PosteriorSpec:
    kwargs = dict(conditions=fit_file.conditions, fixed=fit_file.fixed, free=fit_file.free,
                  priors=fit_file.priors, random_effects=fit_file.random_effects)
    if fit_file.tau_prior is not None:
        kwargs["tau_prior"] = fit_file.tau_prior
    if fit_file.random_effect_sd_prior is not None:
        kwargs["random_effect_sd_prior"] = fit_file.random_effect_sd_prior
    covariates = []
    for name, table in fit_file.covariates.items():
        if name not in records:
            raise ModelFileError(f"covariate '{name}' is not an evidence column"
                                 f"{did_you_mean(name, records.data_vars)}", file=fit_file.path,
                                 key=f"covariates.{name}")
        levels = _record_column(records, observations, name)
        reference = table.get("reference", levels[0])
        if reference not in levels:
            raise ModelFileError(f"reference level '{reference}' does not occur among the "
                                 f"observations{did_you_mean(reference, levels)}; levels: "
                                 f"{known_names(levels)}", file=fit_file.path,
                                 key=f"covariates.{name}.reference")
        covariates.append(Covariate(name=name, levels=levels,
                                    parameters=tuple(table["parameters"]), reference=reference,
                                    prior_sd=float(table.get("prior_sd", 1.0))))
    kwargs["covariates"] = tuple(covariates)
    scaling = fit_file.species_scaling
    if scaling:
        weights = scaling.get("body_weight_kg", {})
        species = _record_column(records, observations, "species")
        missing = sorted(set(species) - set(weights))
        if missing:
            raise ModelFileError(f"no body weight for species {', '.join(missing)}",
                                 file=fit_file.path, key="species_scaling.body_weight_kg")
        kwargs.update(species_scaling=tuple(scaling.get("parameters", ())),
                      body_weights_kg=tuple(float(weights[s]) for s in species),
                      reference_body_weight_kg=float(scaling.get("reference_body_weight_kg",
                                                                 0.025)))
        if "exponent_prior" in scaling:
            kwargs["exponent_prior"] = parse_prior(scaling["exponent_prior"], fit_file.path,
                                                   "species_scaling.exponent_prior")
    return PosteriorSpec(**kwargs)
