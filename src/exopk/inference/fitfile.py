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

Errors name the file and the key.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from exopk.errors import ModelFileError
from exopk.model.priors import Prior

__all__ = ["FitFile", "SamplerSettings", "read_fit_file", "parse_fit", "parse_prior"]

_SECTIONS = {"fit", "evidence", "conditions", "fixed", "free", "priors", "dispersion",
             "random_effects", "covariates", "species_scaling", "sampler"}
_FIT = {"name", "description", "model", "seed"}
_EVIDENCE = {"tables", "species", "routes", "studies", "quantities", "proxies", "proxy_studies",
             "signal", "unstated_error_as"}
_SAMPLER = {"method", "chains", "warmup", "draws", "map_starts", "max_tree_depth",
            "target_acceptance", "metric"}


@dataclass(frozen=True)
class SamplerSettings:
    """MCMC settings of a fit."""

    method: str = "nuts"
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    map_starts: int = 4
    max_tree_depth: int = 10
    target_acceptance: float = 0.8
    metric: str = "diagonal"


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
    arguments = {k: v for k, v in spec.items() if k not in ("distribution", "justification",
                                                            "source")}
    try:
        return Prior(spec.get("distribution", "lognormal"), arguments,
                     justification=spec.get("justification", ""), source=spec.get("source", ""))
    except ModelFileError as exc:
        raise ModelFileError(exc.reason, file=file, key=key) from None


def _check(table, allowed, file, key):
    if not isinstance(table, dict):
        raise ModelFileError("expected a table", file=file, key=key)
    unknown = set(table) - set(allowed)
    if unknown:
        raise ModelFileError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                             f"{', '.join(sorted(allowed))}", file=file, key=key)
    return table


def parse_fit(text: str, *, path: str | None = None) -> FitFile:
    """Parse the text of a fit file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"not valid TOML: {exc}", file=path) from None
    _check(data, _SECTIONS, path, "")
    fit = _check(data.get("fit", {}), _FIT, path, "fit")
    if "model" not in fit:
        raise ModelFileError("missing required key 'model'", file=path, key="fit.model")
    seed = fit.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelFileError(f"seed must be a non-negative integer, got {seed!r}", file=path,
                             key="fit.seed")
    evidence = _check(data.get("evidence", {}), _EVIDENCE, path, "evidence")
    sampler_table = _check(data.get("sampler", {}), _SAMPLER, path, "sampler")
    try:
        sampler = SamplerSettings(**sampler_table)
    except TypeError as exc:
        raise ModelFileError(str(exc), file=path, key="sampler") from None
    if sampler.method not in ("nuts", "haario_bardenet"):
        raise ModelFileError(f"unknown method '{sampler.method}'; use nuts or haario_bardenet",
                             file=path, key="sampler.method")
    if sampler.metric not in ("diagonal", "dense"):
        raise ModelFileError(f"unknown metric '{sampler.metric}'; use diagonal or dense",
                             file=path, key="sampler.metric")
    if not (isinstance(sampler.target_acceptance, float) and 0 < sampler.target_acceptance < 1):
        raise ModelFileError("target_acceptance must be a number between 0 and 1",
                             file=path, key="sampler.target_acceptance")
    for name in ("chains", "warmup", "draws", "map_starts"):
        value = getattr(sampler, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "chains" else 1):
            raise ModelFileError(f"{name} must be an integer >= {2 if name == 'chains' else 1}",
                                 file=path, key=f"sampler.{name}")
    priors = {name: parse_prior(spec, path, f"priors.{name}")
              for name, spec in _check(data.get("priors", {}), data.get("priors", {}), path,
                                       "priors").items()}
    dispersion = _check(data.get("dispersion", {}), {"prior"}, path, "dispersion")
    free = _check(data.get("free", {}), {"parameters"}, path, "free")
    random = _check(data.get("random_effects", {}), {"parameters", "sd_prior"}, path,
                    "random_effects")
    return FitFile(
        name=fit.get("name", Path(path).stem if path else "fit"), path=path, text=text,
        model=fit["model"], seed=seed, description=fit.get("description", ""),
        evidence=evidence, conditions=data.get("conditions", {}), fixed=data.get("fixed", {}),
        free=tuple(free.get("parameters", ())), priors=priors,
        tau_prior=parse_prior(dispersion["prior"], path, "dispersion.prior") if "prior" in dispersion else None,
        random_effects=tuple(random.get("parameters", ())),
        random_effect_sd_prior=parse_prior(random["sd_prior"], path, "random_effects.sd_prior")
        if "sd_prior" in random else None,
        covariates=data.get("covariates", {}), species_scaling=data.get("species_scaling", {}),
        sampler=sampler)


def read_fit_file(path: str | Path) -> FitFile:
    """Read and parse a fit file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFileError(f"cannot read fit file: {exc.strerror}", file=str(path)) from None
    return parse_fit(text, path=str(path))
