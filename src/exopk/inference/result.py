"""Fit results as an ``xarray.DataTree`` in the ArviZ group layout, written atomically.

Groups: ``posterior`` (chain, draw; natural parameter values with their ``units`` and the
``lower`` and ``upper`` bounds that define their sampling coordinates), ``sample_stats`` (``lp``
and the sampler's per-draw statistics: for NUTS ``acceptance_rate``, ``tree_depth``,
``n_steps``, ``energy``, ``step_size``, ``diverging``, as :mod:`exopk.inference.pints_nuts`
defines them), ``prior`` (draws from the prior), ``prior_predictive`` (``mean``: the prediction
behind every observation under the prior draws; ``y``: a replicate with its noise),
``posterior_predictive`` (``y``: a replicate of every observation with its noise; ``mean``: the
model prediction), ``observed_data`` (every observation with its provenance; ``y`` is its
``value`` under the predictive variable's name), ``log_likelihood`` (per observation, for LOO),
``log_prior`` (per draw, the log prior density of every posterior variable's natural value, as
ArviZ's power-scaling sensitivity wants it), and
``diagnostics`` (:func:`exopk.inference.summary.summarize`: dims ``parameter`` and
``observation``). Every ArviZ group carries ArviZ's schema attributes ``created_at``,
``inference_library`` (``"pints"``), ``inference_library_version``, ``creation_library``
(``"exopk"``) and ``creation_library_version``. The root's ``attrs`` hold the fit's settings and
``provenance`` (:func:`exopk.provenance.get_provenance_dict` as JSON: versions, platform, input
files with their SHA-256 and paths relative to the result file).
"""

from __future__ import annotations

import datetime
import hashlib
import json

import numpy as np
import xarray as xr

from exopk.io import write_atomically
from exopk.provenance import software_version

__all__ = ["build_tree", "group_attrs", "write_fit", "load_fit", "observation_table"]


def observation_table(observations, records=None, output_units=None) -> xr.Dataset:
    """Observed data with provenance, one entry per observation.

    ``unit`` (a coordinate) is each value's unit: the record's canonical unit, else, for a
    time-course value of a user's data, the unit of the model output it observes
    (``output_units``, output name -> unit); empty when neither says.
    """
    n = len(observations)
    data = {
        "value": ("observation", np.array([o.value for o in observations]),
                  {"long_name": "observed value (the bound for censored, the low end for "
                                "interval observations), in the canonical unit"}),
        "upper": ("observation", np.array([o.upper for o in observations])),
        "sigma_log": ("observation", np.array([o.sigma_log for o in observations]),
                      {"long_name": "reported log-scale standard deviation"}),
    }
    coords = {
        "observation": np.arange(n),
        "study": ("observation", [o.study for o in observations]),
        "source_file": ("observation", [o.source for o in observations]),
        "line": ("observation", np.array([o.line for o in observations])),
        "kind": ("observation", [o.request.kind for o in observations]),
        "output": ("observation", [o.request.output for o in observations]),
        "time_min": ("observation", np.array([np.nan if o.request.time is None else o.request.time
                                              for o in observations])),
        "route": ("observation", [o.route for o in observations]),
        "condition": ("observation", [o.condition for o in observations]),
        "censoring": ("observation", [o.censoring for o in observations]),
        "is_proxy": ("observation", np.array([o.is_proxy for o in observations])),
    }
    if records is not None:
        index = {(str(records.source_file.values[i]), int(records.line.values[i])): i
                 for i in range(records.sizes["record"])}
        rows = [index.get((o.source, o.line)) for o in observations]
        for column in ("citation", "doi", "url", "location", "quantity", "unit_canonical",
                       "species", "label"):
            if column in records:
                coords[column] = ("observation", [str(records[column].values[r]) if r is not None
                                                  else "" for r in rows])
    canonical = coords.get("unit_canonical", (None, [""] * n))[1]
    coords["unit"] = ("observation", [
        unit or ((output_units or {}).get(o.request.output, "") if o.request.kind == "value"
                 else "") for o, unit in zip(observations, canonical)])
    return xr.Dataset(data, coords=coords)


def group_attrs() -> dict:
    """ArviZ's schema attributes of a group: creation time and the libraries that made it."""
    return {"created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "inference_library": "pints", "inference_library_version": software_version("pints"),
            "creation_library": "exopk", "creation_library_version": software_version("exopk")}


def build_tree(*, posterior, units, sample_stats, prior, prior_predictive_mean, predictive_mean,
               predictive_draws, log_likelihood, observed, attrs, bounds=None,
               prior_predictive_draws=None, log_prior=None) -> xr.DataTree:
    """Assemble the DataTree (every argument a mapping of arrays, see the module docstring).

    ``bounds`` maps posterior variables to the ``(lower, upper)`` bounds of their sampling
    coordinates (:class:`~exopk.inference.coordinates.BoundedCoordinates`).
    """
    def dataset(variables, dims, extra_coords=None):
        ds = xr.Dataset({name: (dims, np.asarray(values)) for name, values in variables.items()})
        for name, unit in units.items():
            if name in ds:
                ds[name].attrs["units"] = unit
        for name, (lower, upper) in (bounds or {}).items():
            if name in ds:
                ds[name].attrs.update(lower=float(lower), upper=float(upper))
        if extra_coords:
            ds = ds.assign_coords(extra_coords)
        return ds

    chain_draw = ("chain", "draw")
    chains, draws = next(iter(posterior.values())).shape
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    tree = xr.DataTree.from_dict({
        "posterior": dataset(posterior, chain_draw, coords),
        "sample_stats": dataset(sample_stats, chain_draw, coords),
        "prior": dataset(prior, chain_draw, {"chain": [0], "draw": np.arange(
            next(iter(prior.values())).shape[1])}),
        "prior_predictive": xr.Dataset(
            {"mean": (("chain", "draw", "observation"), prior_predictive_mean),
             **({} if prior_predictive_draws is None else
                {"y": (("chain", "draw", "observation"), prior_predictive_draws)})},
            coords={"chain": [0], "draw": np.arange(prior_predictive_mean.shape[1]),
                    "observation": observed.observation.values}),
        "posterior_predictive": xr.Dataset(
            {"y": (("chain", "draw", "observation"), predictive_draws),
             "mean": (("chain", "draw", "observation"), predictive_mean)},
            coords={**coords, "observation": observed.observation.values}),
        "log_likelihood": xr.Dataset(
            {"y": (("chain", "draw", "observation"), log_likelihood)},
            coords={**coords, "observation": observed.observation.values}),
        **({} if log_prior is None else
           {"log_prior": xr.Dataset({name: (chain_draw, np.asarray(values))
                                     for name, values in log_prior.items()}, coords=coords)}),
        "observed_data": observed.assign(y=observed["value"].assign_attrs(
            long_name="the published value, named as its predictive replicate (ArviZ pairs "
                      "observed and predictive variables by name)")),
    })
    tree.attrs.update(attrs)
    stamp = group_attrs()
    for group in tree.children:
        tree[group].attrs.update(stamp)
    return tree


def write_fit(tree: xr.DataTree, path) -> None:
    """Write a fit to NetCDF-4 (one group per ArviZ group) atomically: temporary file, rename."""
    write_atomically(path, lambda temporary: tree.to_netcdf(temporary, engine="netcdf4"))


def load_fit(path) -> xr.DataTree:
    """Read a fit written by :func:`write_fit` (or ``exopk fit``) into memory.

    Examples
    --------
    The shipped result of the main fit (run from the repository root):

    >>> from exopk.inference.result import load_fit
    >>> tree = load_fit("fits/mouse_iv_mps.nc")
    >>> tree["posterior"]["tau"].dims
    ('chain', 'draw')
    >>> tree["posterior"].sizes["chain"], tree["posterior"].sizes["draw"]
    (4, 1000)
    """
    with xr.open_datatree(path, engine="netcdf4") as tree:
        return tree.load()


def hash_of(*arrays) -> str:
    """SHA-256 of the bytes of arrays and strings, for provenance."""
    digest = hashlib.sha256()
    for item in arrays:
        if isinstance(item, str):
            digest.update(item.encode())
        else:
            digest.update(np.ascontiguousarray(item).tobytes())
    return digest.hexdigest()


def as_attr(value) -> str:
    """A JSON string for attributes that are not plain numbers or text."""
    return json.dumps(value, sort_keys=True, default=str)
