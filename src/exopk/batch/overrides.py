"""A fit file with a batch task's settings: seed, sampler settings and priors replaced.

The task's fit file is written out as TOML text (the fit file's tables with the settings put in
them), so its result records a fit file that reproduces it, and the text's hash tells a rerun
whether the task is the same.
"""

from __future__ import annotations

import json
import math
import re
import tomllib

from exopk.errors import ModelFileError
from exopk.inference.fitfile import FitFile, parse_fit

__all__ = ["with_settings", "toml_text", "setting_of", "SAMPLER_SETTINGS"]

#: batch settings that are keys of a fit file's ``[sampler]`` table
SAMPLER_SETTINGS = ("chains", "warmup", "draws", "map_starts", "max_tree_depth",
                    "target_acceptance", "metric")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def toml_text(tables: dict) -> str:
    """TOML text of a dict of tables (one ``[section]`` per key, values written inline).

    Examples
    --------
    >>> import tomllib
    >>> from exopk.batch.overrides import toml_text
    >>> tables = {"fit": {"model": "m0", "seed": 3},
    ...           "priors": {"CL": {"median": 0.02, "sigma": 1.0}}}
    >>> print(toml_text(tables))
    [fit]
    model = "m0"
    seed = 3
    <BLANKLINE>
    [priors]
    CL = { median = 0.02, sigma = 1.0 }
    <BLANKLINE>
    >>> tomllib.loads(toml_text(tables)) == tables
    True
    """
    lines = []
    for section, table in tables.items():
        lines.append(f"[{_key(section)}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)


def with_settings(fit_file: FitFile, settings: dict, *, label: str) -> FitFile:
    """``fit_file`` with the batch settings ``seed``, sampler keys and ``priors`` put in it.

    Parameters
    ----------
    fit_file : FitFile
        Read from a file: relative paths in it stay relative to that file.
    settings : dict
        Batch settings (:mod:`exopk.batch.spec`); ``method`` and others that are not fit-file
        keys are ignored.
    label : str
        Says in the text's first line which task the settings are of.

    Returns
    -------
    FitFile
        The fit file itself when no setting changes it.

    Raises
    ------
    ModelFileError
        The settings make the fit file invalid (for example a warm-up too short for its
        sampler); the key is the fit file's.
    """
    changes = {name: value for name, value in settings.items()
               if name in SAMPLER_SETTINGS or name in ("seed", "priors")}
    if not changes:
        return fit_file
    tables = tomllib.loads(fit_file.text)
    for name, value in changes.items():
        if name == "seed":
            tables.setdefault("fit", {})["seed"] = value
        elif name == "priors":
            tables.setdefault("priors", {}).update(value)
        else:
            tables.setdefault("sampler", {})[name] = value
    shown = ", ".join(f"{k} = {_value(v)}" for k, v in changes.items())
    text = f"# {fit_file.path or fit_file.name} with the settings of {label}: {shown}\n" \
        + toml_text(tables)
    return parse_fit(text, path=fit_file.path)


def setting_of(error: ModelFileError) -> str | None:
    """The batch setting behind an error in a fit file with settings put in it, if any."""
    key = error.key or ""
    if key == "fit.seed":
        return "seed"
    for prefix in ("sampler.", "priors."):
        if key.startswith(prefix):
            return key.removeprefix("sampler.").split(".")[0] if prefix == "sampler." else \
                "priors." + key.removeprefix("priors.").split(".")[0]
    return None
