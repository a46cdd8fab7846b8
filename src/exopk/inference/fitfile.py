"""Fit files (TOML): which model, which evidence, which priors, which sampler, which seed.

A fit file is the unit a user shares. Layout (every key but ``fit.model`` optional)::

    [fit]
    name = "mouse_iv_mps"
    description = "..."
    model = "../models/m2_mps.toml"     # path relative to this file, or a shipped model name
    seed = 20261127

    [evidence]
    tables = ["ev"]                     # "ev", "proxies", or a user CSV path (relative)
    species = ["mouse"]
    routes = ["iv"]
    studies = []                        # study keys; empty: all that match
    quantities = []                     # evidence quantities; empty: all
    proxies = false                     # proxies must be allowed explicitly
    proxy_studies = []                  # proxy studies added whatever their species and route
    proxy_matrices = []                 # keep only the proxy records of these matrices
    proxy_carriers = []                 # ... and of these carriers (their ev_source)
    opt_in = []                         # studies whose records marked not usable are used
                                        # anyway, whatever their species and route; each
                                        # record's caveat is printed in the fit summary
    signal = "label"                    # organ readout: "label" or "vesicle"
    unstated_error_as = "sem"           # reading of +/- without a type: "sem" or "sd"

    [conditions]                        # condition -> parameter values
    macrophage_depleted = { macrophage_depletion = 1.0 }

    [fixed]                             # parameter -> value held fixed
    [free]
    parameters = ["k_release_liver"]    # parameters the model file fixes, estimated here
    [priors]                            # parameter -> prior table (overrides the model file)
    [dispersion]
    prior = { distribution = "halfnormal", scale = 0.5 }   # between-study tau

    [random_effects]
    parameters = ["k_uptake_liver"]     # study-level log-normal, non-centred
    sd_prior = { distribution = "halfnormal", scale = 0.5 }

    [covariates.label]                  # categorical covariates from evidence columns
                                        # (also the derived carrier_class: "ev" for EV
                                        # records, the ev_source of proxy records)
    parameters = ["k_free_label_clearance"]
    reference = "125I"
    prior_sd = 1.0

    [species_scaling]                   # clearances scaled by body weight
    parameters = ["k_uptake_liver"]
    reference_body_weight_kg = 0.025
    body_weight_kg = { mouse = 0.025, rat = 0.273 }
    exponent_prior = { distribution = "normal", mean = -0.25, sd = 0.1 }

    [sampler]
    method = "nuts"                     # or "haario_bardenet"
    chains = 4
    warmup = 1000
    draws = 1000
    map_starts = 4
    max_tree_depth = 10
    target_acceptance = 0.8
    metric = "diagonal"                 # NUTS mass matrix adapted in warm-up: or "dense"
    thin = 1                            # keep every thin-th iteration after warm-up

The schema is strict: every key has a type (a string is never read as a boolean, a single
string never as a list), values are checked against the allowed set, and unknown keys are
errors with the closest allowed name suggested. What a fit file names in the model or the
evidence (parameters, studies, covariate levels) is checked against them by
:mod:`exopk.inference.preparation` before anything is sampled. Errors name the file and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from exopk.errors import ModelFileError
from exopk.io import read_toml
from exopk.limits import MIN_CHAINS, MIN_DRAWS
from exopk.inference.samplers import SAMPLERS
from exopk.model.priors import Prior
from exopk.observation.error_models import ERROR_MODELS

__all__ = ["FitFile", "EventData", "DATA_FITS", "SamplerSettings", "read_fit_file", "parse_fit", "parse_prior",
           "did_you_mean", "known_names", "MIN_CHAINS", "MIN_DRAWS", "MAX_TREE_DEPTH", "SIGNALS",
           "METHODS", "METRICS"]

_SECTIONS = {"fit", "evidence", "conditions", "fixed", "free", "priors", "dispersion",
             "random_effects", "covariates", "species_scaling", "sampler", "data"}
_DATA = {"events", "output", "error", "time_unit", "amount_unit", "dv_unit", "routes",
         "route_column", "censored_column", "fit", "error_priors"}
#: how a fit of event data treats its individuals (IDs)
DATA_FITS = ("pooled", "individual", "population")
_FIT = {"name", "description", "model", "seed"}
_EVIDENCE_LISTS = ("tables", "species", "routes", "studies", "quantities", "proxy_studies",
                   "proxy_matrices", "proxy_carriers", "opt_in")
_EVIDENCE = {*_EVIDENCE_LISTS, "proxies", "signal", "unstated_error_as"}
_SAMPLER = {"method", "chains", "warmup", "draws", "map_starts", "max_tree_depth",
            "target_acceptance", "metric", "thin"}
_COVARIATE = {"parameters", "reference", "prior_sd"}
_SCALING = {"parameters", "reference_body_weight_kg", "body_weight_kg", "exponent_prior"}
SIGNALS = ("label", "vesicle")
METHODS = tuple(SAMPLERS)
METRICS = ("diagonal", "dense")
MAX_TREE_DEPTH = 20  # 2**20 leapfrog steps per draw: beyond this a run never ends


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    by_lower = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(str(name).lower(), by_lower, n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def known_names(values, limit: int = 25) -> str:
    """Sorted, comma-separated names for an error message (the first ``limit``, then a count)."""
    values = sorted({str(v) for v in values})
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


class Schema:
    """Typed reading of TOML values (fit files, batch files); every error names the file and key.

    Parameters
    ----------
    file : str or None
        The file the values come from, named in every :class:`~exopk.errors.ModelFileError`.
    """

    def __init__(self, file: str | None):
        self.file = file

    def error(self, message: str, key: str) -> ModelFileError:
        return ModelFileError(message, file=self.file, key=key)

    def table(self, value, key: str, allowed=None) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"expected a table, got {_kind(value)}", key)
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                hint = did_you_mean(unknown[0], allowed)
                raise self.error(f"unknown key(s) {', '.join(unknown)}{hint}; allowed: "
                                 f"{', '.join(sorted(allowed))}", key)
        return value

    def text(self, value, key: str, choices=None) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {_kind(value)}", key)
        if choices is not None and value not in choices:
            raise self.error(f"unknown {key.rsplit('.', 1)[-1]} '{value}'"
                             f"{did_you_mean(value, choices)}; use {' or '.join(choices)}", key)
        return value

    def names(self, value, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.error(f"expected a list of strings such as [\"a\", \"b\"], got "
                             f"{_kind(value)}", key)
        for item in value:
            if not isinstance(item, str):
                raise self.error(f"expected a list of strings, found {_kind(item)}", key)
        return tuple(value)

    def flag(self, value, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"expected true or false (without quotes), got {_kind(value)}", key)
        return value

    def integer(self, value, key: str, minimum: int, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer, got {_kind(value)}", key)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise self.error(f"must be an integer {bound}, got {value}", key)
        return value

    def number(self, value, key: str, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.error(f"expected a finite number, got {_kind(value)}", key)
        if positive and not value > 0:
            raise self.error(f"must be positive, got {value}", key)
        return float(value)


def _kind(value) -> str:
    """A value as the user wrote it, with its TOML type."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 60 else shown[:60] + '...'}"


@dataclass(frozen=True)
class SamplerSettings:
    """MCMC settings of a fit, checked when made.

    Raises
    ------
    ModelFileError
        A setting has the wrong type or is outside its range (key ``sampler.<name>``; the
        file is added by :func:`parse_fit`). NUTS needs
        :data:`exopk.inference.samplers.NUTS_MIN_WARMUP` warm-up iterations.

    Notes
    -----
    ``draws`` counts kept draws: a chain runs ``warmup + draws * thin`` iterations and keeps
    every ``thin``-th after the warm-up (the last of each run of ``thin``).
    """

    method: str = "nuts"
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    map_starts: int = 4
    max_tree_depth: int = 10
    target_acceptance: float = 0.8
    metric: str = "diagonal"
    thin: int = 1

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Raise a :class:`ModelFileError` naming ``sampler.<setting>`` for an invalid setting."""
        prefix = "sampler."
        schema = Schema(None)
        schema.text(self.method, f"{prefix}method", METHODS)
        schema.text(self.metric, f"{prefix}metric", METRICS)
        schema.integer(self.chains, f"{prefix}chains", MIN_CHAINS)
        schema.integer(self.draws, f"{prefix}draws", MIN_DRAWS)
        schema.integer(self.map_starts, f"{prefix}map_starts", 1)
        schema.integer(self.warmup, f"{prefix}warmup", SAMPLERS[self.method].min_warmup)
        schema.integer(self.max_tree_depth, f"{prefix}max_tree_depth", 1, MAX_TREE_DEPTH)
        schema.integer(self.thin, f"{prefix}thin", 1)
        value = self.target_acceptance
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise schema.error(f"target_acceptance must be a number between 0 and 1, got "
                               f"{_kind(value)}", f"{prefix}target_acceptance")


@dataclass(frozen=True)
class EventData:
    """The ``[data]`` table of a fit file: the user's own event table and how it is measured.

    Attributes
    ----------
    events : str
        A NONMEM-style event table (CSV, :func:`exopk.data.read_events`), relative to the fit
        file.
    output : str
        The model output every DV measures.
    error : str
        Residual error model of the DVs (:data:`exopk.observation.error_models.ERROR_MODELS`).
    time_unit : str
        Unit of TIME and II (converted to the model's time unit).
    amount_unit, dv_unit : str or None
        Units of AMT and DV, converted with pint to the model's amount unit and to the unit of
        the output (None: already in them).
    routes : dict
        CMT (or ``route_column`` value) -> model route.
    route_column, censored_column : str or None
        See :func:`exopk.observation.event_observations`.
    fit : str
        ``"pooled"`` (every ID shares the parameters), ``"individual"`` (every ID fitted
        separately: a table of estimates, one row per ID) or ``"population"`` (IDs with
        random effects on the parameters under ``[random_effects]``, log-normal error).
    error_priors : dict
        Error parameter -> :class:`Prior`.
    """

    events: str
    output: str
    error: str
    time_unit: str = "h"
    amount_unit: str | None = None
    dv_unit: str | None = None
    routes: dict = field(default_factory=dict)
    route_column: str | None = None
    censored_column: str | None = None
    fit: str = "pooled"
    error_priors: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FitFile:
    """A parsed fit file."""

    name: str
    path: str | None
    text: str
    model: str
    seed: int
    description: str = ""
    evidence: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    free: tuple = ()
    priors: dict = field(default_factory=dict)
    tau_prior: Prior | None = None
    random_effects: tuple = ()
    random_effect_sd_prior: Prior | None = None
    covariates: dict = field(default_factory=dict)
    species_scaling: dict = field(default_factory=dict)
    sampler: SamplerSettings = SamplerSettings()
    data: EventData | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def resolve(self, reference: str) -> Path:
        """A path named in the file, relative to the file's folder."""
        base = Path(self.path).parent if self.path else Path.cwd()
        return (base / reference).resolve()


def parse_prior(spec, file, key) -> Prior:
    """A prior from a fit-file table (log-normal unless ``distribution`` says otherwise)."""
    if not isinstance(spec, dict):
        raise ModelFileError("expected a prior table such as { median = 0.1, sigma = 1.0 }",
                             file=file, key=key)
    schema = Schema(file)
    for name in ("distribution", "justification", "source"):
        if name in spec:
            schema.text(spec[name], f"{key}.{name}")
    arguments = {k: v for k, v in spec.items() if k not in ("distribution", "justification",
                                                            "source")}
    try:
        return Prior(spec.get("distribution", "lognormal"), arguments,
                     justification=spec.get("justification", ""), source=spec.get("source", ""))
    except ModelFileError as exc:
        raise ModelFileError(exc.reason, file=file, key=key) from None


def _evidence(schema: Schema, table) -> dict:
    evidence = dict(schema.table(table, "evidence", _EVIDENCE))
    for name in _EVIDENCE_LISTS:
        if name in evidence:
            evidence[name] = list(schema.names(evidence[name], f"evidence.{name}"))
    if "tables" in evidence and not evidence["tables"]:
        raise schema.error("name at least one table (\"ev\", \"proxies\" or a CSV file)",
                           "evidence.tables")
    if "proxies" in evidence:
        schema.flag(evidence["proxies"], "evidence.proxies")
    if "signal" in evidence:
        schema.text(evidence["signal"], "evidence.signal", SIGNALS)
    if "unstated_error_as" in evidence:
        schema.text(evidence["unstated_error_as"], "evidence.unstated_error_as", ("sem", "sd"))
    return evidence


def _values(schema: Schema, table, key: str) -> dict:
    """A table of parameter -> finite number."""
    return {name: schema.number(value, f"{key}.{name}")
            for name, value in schema.table(table, key).items()}


def _covariates(schema: Schema, table) -> dict:
    covariates = {}
    for name, spec in schema.table(table, "covariates").items():
        key = f"covariates.{name}"
        spec = schema.table(spec, key, _COVARIATE)
        parsed = {"parameters": list(schema.names(spec.get("parameters", []),
                                                  f"{key}.parameters"))}
        if not parsed["parameters"]:
            raise schema.error("name the parameters the covariate acts on", f"{key}.parameters")
        if "reference" in spec:
            parsed["reference"] = schema.text(spec["reference"], f"{key}.reference")
        if "prior_sd" in spec:
            parsed["prior_sd"] = schema.number(spec["prior_sd"], f"{key}.prior_sd", positive=True)
        covariates[name] = parsed
    return covariates


def _species_scaling(schema: Schema, table) -> dict:
    spec = schema.table(table, "species_scaling", _SCALING)
    if not spec:
        return {}
    parsed = {"parameters": list(schema.names(spec.get("parameters", []),
                                              "species_scaling.parameters"))}
    if "reference_body_weight_kg" in spec:
        parsed["reference_body_weight_kg"] = schema.number(
            spec["reference_body_weight_kg"], "species_scaling.reference_body_weight_kg",
            positive=True)
    weights = schema.table(spec.get("body_weight_kg", {}), "species_scaling.body_weight_kg")
    parsed["body_weight_kg"] = {
        species: schema.number(value, f"species_scaling.body_weight_kg.{species}", positive=True)
        for species, value in weights.items()}
    if "exponent_prior" in spec:
        parsed["exponent_prior"] = spec["exponent_prior"]
    return parsed


def parse_fit(text: str, *, path: str | None = None) -> FitFile:
    """Parse the text of a fit file.

    Raises
    ------
    ModelFileError
        The text is not valid TOML or breaks the schema (the module docstring); the message
        names the file and the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"not valid TOML: {exc}", file=path) from None
    return _parse(data, text, path)


def _parse(data: dict, text: str, path: str | None) -> FitFile:
    schema = Schema(path)
    schema.table(data, "", _SECTIONS)
    fit = schema.table(data.get("fit", {}), "fit", _FIT)
    if "model" not in fit:
        raise schema.error("missing required key 'model'", "fit.model")
    model = schema.text(fit["model"], "fit.model")
    seed = fit.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise schema.error(f"seed must be a non-negative integer, got {_kind(seed)}", "fit.seed")
    evidence = _evidence(schema, data.get("evidence", {}))
    sampler_table = schema.table(data.get("sampler", {}), "sampler", _SAMPLER)
    try:
        sampler = SamplerSettings(**sampler_table)
    except ModelFileError as exc:
        raise schema.error(exc.reason, exc.key) from None
    priors_table = schema.table(data.get("priors", {}), "priors")
    priors = {name: parse_prior(spec, path, f"priors.{name}")
              for name, spec in priors_table.items()}
    conditions = {name: _values(schema, overrides, f"conditions.{name}")
                  for name, overrides in schema.table(data.get("conditions", {}),
                                                      "conditions").items()}
    dispersion = schema.table(data.get("dispersion", {}), "dispersion", {"prior"})
    free = schema.table(data.get("free", {}), "free", {"parameters"})
    random = schema.table(data.get("random_effects", {}), "random_effects",
                          {"parameters", "sd_prior"})
    event_data = _event_data(schema, data["data"], path) if "data" in data else None
    if event_data is not None and "evidence" in data:
        raise schema.error("a fit of your own event table ([data]) takes no [evidence]; fit "
                           "them in separate fit files", "data")
    return FitFile(
        name=schema.text(fit["name"], "fit.name") if "name" in fit else
        (Path(path).stem if path else "fit"),
        path=path, text=text, model=model, seed=seed,
        description=schema.text(fit.get("description", ""), "fit.description"),
        evidence=evidence, conditions=conditions,
        fixed=_values(schema, data.get("fixed", {}), "fixed"),
        free=schema.names(free.get("parameters", []), "free.parameters"), priors=priors,
        tau_prior=parse_prior(dispersion["prior"], path, "dispersion.prior")
        if "prior" in dispersion else None,
        random_effects=schema.names(random.get("parameters", []), "random_effects.parameters"),
        random_effect_sd_prior=parse_prior(random["sd_prior"], path, "random_effects.sd_prior")
        if "sd_prior" in random else None,
        covariates=_covariates(schema, data.get("covariates", {})),
        species_scaling=_species_scaling(schema, data.get("species_scaling", {})),
        sampler=sampler, data=event_data)


def _event_data(schema: "Schema", table, path) -> EventData:
    table = schema.table(table, "data", _DATA)
    for key in ("events", "output", "error"):
        if key not in table:
            raise schema.error(f"missing required key '{key}'", f"data.{key}")
    optional = {key: schema.text(table[key], f"data.{key}") for key in
                ("amount_unit", "dv_unit", "route_column", "censored_column") if key in table}
    routes = schema.table(table.get("routes", {}), "data.routes")
    for key, route in routes.items():
        schema.text(route, f"data.routes.{key}")
    error_priors = schema.table(table.get("error_priors", {}), "data.error_priors")
    return EventData(
        events=schema.text(table["events"], "data.events"),
        output=schema.text(table["output"], "data.output"),
        error=schema.text(table["error"], "data.error", tuple(ERROR_MODELS)),
        time_unit=schema.text(table.get("time_unit", "h"), "data.time_unit"),
        routes=dict(routes), fit=schema.text(table.get("fit", "pooled"), "data.fit", DATA_FITS),
        error_priors={name: parse_prior(spec, path, f"data.error_priors.{name}")
                      for name, spec in error_priors.items()},
        **optional)


def read_fit_file(path: str | Path) -> FitFile:
    """Read and parse a fit file (UTF-8 TOML)."""
    text, data = read_toml(path, what="fit file")
    return _parse(data, text, str(path))
