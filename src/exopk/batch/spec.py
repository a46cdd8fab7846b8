"""Batch files (TOML): many fit files, one fit file crossed with a grid of settings, or simulated
replicates of one fit file.

A list of fit files, each crossed with every combination of the ``[grid]`` values (one task per
fit file without a grid)::

    [batch]
    name = "seeds"                      # default: the file's name without .toml
    out = "seeds.batch"                 # output folder, relative to this file
                                        # (default: NAME.batch in the working directory)
    fits = ["../fits/mouse_iv_mps.toml"]   # fit files, relative to this file

    [settings]                          # applied to every task
    chains = 2
    draws = 200

    [grid]                              # every combination, in the order written
    seed = [1, 2, 3]
    target_acceptance = [0.8, 0.95]
    priors.tau = [{ median = 0.7, sigma = 0.5 }, { median = 0.3, sigma = 0.5 }]

Simulated replicates of one fit file (simulation-based calibration and parameter recovery):
each replicate draws the truth from the fit's prior (or takes the given true values), simulates
the fit's observations at it with the observation model, fits them (MAP, then NUTS) and records
the rank of the truth among ``thin_to`` posterior draws and whether the central ``level``
interval covers it::

    [batch]
    name = "sbc_m0"

    [simulate]
    fit = "m0.toml"
    replicates = 200
    seed = 1                            # default: the fit file's seed
    truth = "prior"                     # or true values: { CL = 0.02, V_plasma = 1.0, tau = 0.3 }
    thin_to = 99                        # ranks take the values 0 .. thin_to
    level = 0.9                         # central posterior interval checked for coverage

    [settings]
    chains = 1
    warmup = 150
    draws = 300

Settings (in ``[settings]``, or lists of values in ``[grid]``): ``seed`` and ``method``
(``"nuts"`` or ``"map"``, fit-file tasks only), ``chains``, ``warmup``, ``draws``,
``map_starts``, ``max_tree_depth``, ``target_acceptance``, ``metric`` (the fit file's
``[sampler]`` keys) and ``priors.NAME`` (a prior table replacing the fit file's prior of
``NAME``). Unset settings keep the fit file's values. Simulated replicates always use NUTS and
may run a single chain (R-hat and ESS need two). The schema is strict like the fit file's: an
unknown key is an error naming the file and the key, with the closest allowed name.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from exopk.errors import ModelFileError
from exopk.inference.fitfile import (MAX_TREE_DEPTH, METRICS, MIN_CHAINS, MIN_DRAWS, Schema,
                                     parse_prior)
from exopk.io import read_toml

__all__ = ["BatchSpec", "SimulateSpec", "read_batch_file", "parse_batch", "SETTINGS",
           "TRUTH_FROM_PRIOR"]

_SECTIONS = {"batch", "settings", "grid", "simulate"}
_BATCH = {"name", "out", "fits"}
_SIMULATE = {"fit", "replicates", "seed", "truth", "thin_to", "level"}
#: settings a batch may set or vary, in the order of the summary table's columns
SETTINGS = ("seed", "method", "chains", "warmup", "draws", "map_starts", "max_tree_depth",
            "target_acceptance", "metric", "priors")
_FIT_ONLY = ("seed", "method")
TRUTH_FROM_PRIOR = "prior"


@dataclass(frozen=True)
class SimulateSpec:
    """The ``[simulate]`` table: replicates of one fit file on simulated data.

    Attributes
    ----------
    fit : str
        The fit file (absolute path) whose design, model and priors are used.
    replicates : int
    seed : int or None
        Seeds replicate ``i`` with ``SeedSequence([seed, i])`` (None: the fit file's seed).
    truth : "prior" or dict
        Truths drawn from the prior, or the natural values of every estimated parameter and
        ``tau``, in the parameters' units.
    thin_to : int
        Posterior draws the truth is ranked among (evenly spaced over the pooled draws).
    level : float
        Probability of the central posterior interval whose coverage of the truth is recorded.
    """

    fit: str
    replicates: int
    seed: int | None = None
    truth: str | dict = TRUTH_FROM_PRIOR
    thin_to: int = 99
    level: float = 0.9


@dataclass(frozen=True)
class BatchSpec:
    """A parsed batch file.

    Attributes
    ----------
    name : str
    path : str or None
        The batch file (None for a batch built in Python).
    out : Path
        Output folder.
    fits : tuple of str
        Fit files (absolute paths); empty for a simulated batch.
    settings : dict
        Settings applied to every task (``priors`` maps a parameter to its prior table).
    grid : tuple of (str, tuple)
        Setting (``"priors.NAME"`` for a prior) and its values, in the file's order.
    simulate : SimulateSpec or None
    """

    name: str
    path: str | None
    out: Path
    fits: tuple = ()
    settings: dict = field(default_factory=dict)
    grid: tuple = ()
    simulate: SimulateSpec | None = None

    def combinations(self) -> list[dict]:
        """The settings of every grid point (``settings`` updated with one value per axis).

        Examples
        --------
        >>> from exopk.batch.spec import parse_batch
        >>> spec = parse_batch('[batch]\\nfits = ["a.toml"]\\n[settings]\\ndraws = 50\\n'
        ...                    '[grid]\\nseed = [1, 2]\\nchains = [2, 4]\\n', path="b.toml")
        >>> [(c["seed"], c["chains"], c["draws"]) for c in spec.combinations()]
        [(1, 2, 50), (1, 4, 50), (2, 2, 50), (2, 4, 50)]
        """
        points = []
        for values in itertools.product(*(v for _, v in self.grid)):
            settings = {**self.settings, "priors": dict(self.settings.get("priors", {}))}
            for (name, _), value in zip(self.grid, values):
                if name.startswith("priors."):
                    settings["priors"][name.removeprefix("priors.")] = value
                else:
                    settings[name] = value
            if not settings["priors"]:
                del settings["priors"]
            points.append(settings)
        return points


def _setting(schema: Schema, name: str, value, key: str, simulated: bool):
    """One checked setting value (a prior table for ``priors.NAME``)."""
    if name.startswith("priors."):
        parse_prior(value, schema.file, key)
        return value
    if name == "seed":
        return schema.integer(value, key, 0)
    if name == "method":
        return schema.text(value, key, ("nuts", "map"))
    if name == "metric":
        return schema.text(value, key, METRICS)
    if name == "target_acceptance":
        number = schema.number(value, key)
        if not 0 < number < 1:
            raise schema.error(f"must be a number between 0 and 1, got {value}", key)
        return number
    minimum = {"chains": 1 if simulated else MIN_CHAINS, "warmup": 1, "draws": MIN_DRAWS,
               "map_starts": 1, "max_tree_depth": 1}[name]
    return schema.integer(value, key, minimum,
                          MAX_TREE_DEPTH if name == "max_tree_depth" else None)


def _flat(schema: Schema, table, section: str, simulated: bool) -> list[tuple[str, object]]:
    """``(name, value)`` of a settings or grid table, with ``priors.NAME`` flattened."""
    allowed = [s for s in SETTINGS if not (simulated and s in _FIT_ONLY)]
    items = []
    for name, value in schema.table(table, section, allowed).items():
        if name == "priors":
            items += [(f"priors.{parameter}", prior) for parameter, prior in
                      schema.table(value, f"{section}.priors").items()]
        else:
            items.append((name, value))
    return items


def parse_batch(text: str, *, path: str | None = None) -> BatchSpec:
    """Parse the text of a batch file (paths in it are relative to ``path``'s folder).

    Raises
    ------
    ModelFileError
        The text is not TOML or breaks the schema of the module docstring; the message names
        the file and the key.

    Examples
    --------
    >>> from exopk.batch.spec import parse_batch
    >>> spec = parse_batch('[simulate]\\nfit = "m0.toml"\\nreplicates = 20\\n', path="sbc.toml")
    >>> spec.name, spec.simulate.replicates, spec.simulate.truth, spec.out.name
    ('sbc', 20, 'prior', 'sbc.batch')
    >>> parse_batch('[simulate]\\nfit = "m0.toml"\\nreplicate = 20\\n', path="sbc.toml")
    Traceback (most recent call last):
    ...
    exopk.errors.ModelFileError: sbc.toml, key 'simulate': unknown key(s) replicate (did you mean 'replicates'?); allowed: fit, level, replicates, seed, thin_to, truth
    """
    import tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"not valid TOML: {exc}", file=path) from None
    return _parse(data, path)


def read_batch_file(path: str | Path) -> BatchSpec:
    """Read and parse a batch file (UTF-8 TOML)."""
    _, data = read_toml(path, what="batch file")
    return _parse(data, str(path))


def _parse(data: dict, path: str | None) -> BatchSpec:
    schema = Schema(path)
    schema.table(data, "", _SECTIONS)
    batch = schema.table(data.get("batch", {}), "batch", _BATCH)
    base = Path(path).resolve().parent if path else Path.cwd()
    name = schema.text(batch["name"], "batch.name") if "name" in batch else \
        (Path(path).stem if path else "batch")
    out = Path(schema.text(batch["out"], "batch.out")) if "out" in batch else None
    out = (base / out if out is not None else Path(f"{name}.batch")).resolve()
    fits = tuple(str((base / f).resolve()) for f in schema.names(batch.get("fits", []),
                                                                 "batch.fits"))
    simulated = "simulate" in data
    if simulated == bool(fits):
        raise schema.error("give either fit files (batch.fits) or simulated replicates "
                           "([simulate]), one of the two", "batch.fits" if fits else "batch")
    settings = {}
    for setting, value in _flat(schema, data.get("settings", {}), "settings", simulated):
        value = _setting(schema, setting, value, f"settings.{setting}", simulated)
        if setting.startswith("priors."):
            settings.setdefault("priors", {})[setting.removeprefix("priors.")] = value
        else:
            settings[setting] = value
    grid = []
    if simulated and "grid" in data:
        raise schema.error("simulated replicates take no grid; vary settings in separate "
                           "batches", "grid")
    for setting, values in _flat(schema, data.get("grid", {}), "grid", simulated):
        key = f"grid.{setting}"
        if not isinstance(values, list) or not values:
            raise schema.error("expected a non-empty list of values, one per grid point", key)
        grid.append((setting, tuple(_setting(schema, setting, v, f"{key}[{i}]", simulated)
                                  for i, v in enumerate(values))))
        prior = setting.removeprefix("priors.") if setting.startswith("priors.") else None
        if setting in settings or prior in settings.get("priors", {}):
            raise schema.error(f"'{setting}' is both set in [settings] and varied in [grid]", key)
    simulate = _simulate(schema, data["simulate"], base) if simulated else None
    return BatchSpec(name=name, path=path, out=out, fits=fits, settings=settings,
                     grid=tuple(grid), simulate=simulate)


def _simulate(schema: Schema, table, base: Path) -> SimulateSpec:
    table = schema.table(table, "simulate", _SIMULATE)
    for key in ("fit", "replicates"):
        if key not in table:
            raise schema.error(f"missing required key '{key}'", f"simulate.{key}")
    truth = table.get("truth", TRUTH_FROM_PRIOR)
    if isinstance(truth, dict):
        truth = {name: schema.number(value, f"simulate.truth.{name}")
                 for name, value in truth.items()}
        if not truth:
            raise schema.error("give the true value of every estimated parameter and tau",
                               "simulate.truth")
    else:
        schema.text(truth, "simulate.truth", (TRUTH_FROM_PRIOR,))
    level = schema.number(table.get("level", 0.9), "simulate.level")
    if not 0 < level < 1:
        raise schema.error(f"must be a number between 0 and 1, got {level}", "simulate.level")
    return SimulateSpec(
        fit=str((base / schema.text(table["fit"], "simulate.fit")).resolve()),
        replicates=schema.integer(table["replicates"], "simulate.replicates", 1),
        seed=schema.integer(table["seed"], "simulate.seed", 0) if "seed" in table else None,
        truth=truth, thin_to=schema.integer(table.get("thin_to", 99), "simulate.thin_to", 1),
        level=level)
