"""Posterior and prior parameter sets of a fit, from a fit file or a result file."""

from __future__ import annotations

import json

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from exopk.errors import ExopkError

__all__ = ["FitDraws", "load_draws", "thin_draws"]


@dataclass(frozen=True)
class FitDraws:
    """A fit's model with full population parameter sets of its posterior and prior draws.

    Attributes
    ----------
    name : str
        The fit's name.
    model : Model
    posterior, prior : xarray.DataArray
        Dims ``(chain, draw, parameter)``: :meth:`LogPosterior.parameter_sets` of the result's
        ``posterior`` and ``prior`` groups.
    tree : xarray.DataTree
        The result.
    fit_file : Path
    max_draws : int or None
        The thinning applied (:func:`thin_draws`), so that other groups of ``tree`` (the
        log-likelihood) can be matched draw for draw.
    """

    name: str
    model: object
    posterior: xr.DataArray
    prior: xr.DataArray
    tree: xr.DataTree
    fit_file: Path
    max_draws: int | None = None


def thin_draws(data, max_draws: int | None):
    """At most ``max_draws`` draws per chain of ``data``, evenly spaced from the first."""
    if max_draws is None or data.sizes["draw"] <= max_draws:
        return data
    return data.isel(draw=slice(None, None, -(-data.sizes["draw"] // max_draws)))


def _paths(fit) -> tuple[Path, Path]:
    path = Path(fit)
    if not path.exists():
        raise ExopkError(f"FIT '{fit}' does not exist (give a fit file .toml or a result .nc)")
    if path.suffix == ".toml":
        result = path.with_suffix(".nc")
        if not result.exists():
            raise ExopkError(f"fit file '{fit}' has no result '{result}': run `exopk fit {fit}` "
                             "first")
        return path, result
    if path.suffix != ".nc":
        raise ExopkError(f"FIT '{fit}' must be a fit file (.toml) or a result file (.nc)")
    return None, path


def _fit_file_of(result: Path, tree) -> Path:
    inputs = json.loads(tree.attrs.get("provenance", "{}")).get("inputs", {})
    # provenance paths are relative to the result; results written before it kept "fit_file"
    recorded = (result.parent / inputs["fit_file"]["path"] if "fit_file" in inputs
                else Path(str(tree.attrs.get("fit_file", ""))))
    for candidate in (recorded, result.parent / recorded.name, result.with_suffix(".toml")):
        if str(candidate) and candidate.suffix == ".toml" and candidate.exists():
            return candidate
    raise ExopkError(f"result '{result}' was made from fit file '{recorded}', which is not found "
                     f"(looked beside the result too); give the fit file instead")


def load_draws(fit, *, max_draws: int | None = None) -> FitDraws:
    """Model and posterior/prior parameter sets of a fit.

    Parameters
    ----------
    fit : str or Path
        A fit file (its result, the same name with ``.nc``, is read) or a result file (its fit
        file is found from the result's ``fit_file`` attribute or beside it).
    max_draws : int, optional
        Keep at most this many draws per chain, evenly spaced (deterministic thinning).
    """
    from exopk.inference.fit import prepare
    from exopk.inference.result import load_fit

    fit_file, result = _paths(fit)
    tree = load_fit(result)
    if fit_file is None:
        fit_file = _fit_file_of(result, tree)
    prepared = prepare(fit_file)
    if prepared.model.name != tree.attrs.get("model"):
        raise ExopkError(f"result '{result}' is of model '{tree.attrs.get('model')}' but fit file "
                         f"'{fit_file}' uses '{prepared.model.name}'")
    lp = prepared.log_posterior

    def sets(group):
        try:
            return lp.parameter_sets(thin_draws(tree[group].to_dataset(), max_draws))
        except ValueError as exc:
            raise ExopkError(f"result '{result}' does not match model '{prepared.model.name}' "
                             f"of fit file '{fit_file}' ({exc}): it was fitted on an earlier "
                             f"structure of the model; refit it with `exopk fit {fit_file}`") \
                from None

    return FitDraws(str(tree.attrs.get("fit_name", result.stem)), prepared.model,
                    sets("posterior"), sets("prior"), tree, Path(fit_file), max_draws)
