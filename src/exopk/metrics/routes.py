"""Route comparison: exposure and targeting metrics per route, over posterior and prior draws.

:func:`compare_routes` computes, for a single bolus by each route, the metrics of
:mod:`exopk.metrics.exposure` and :mod:`exopk.metrics.targeting` for a target output against blood
and the off-target organs; the first route is the reference (DTE%, DTP%, relative targeting index
and the probability that each other route beats it are taken draw by draw).
"""

from __future__ import annotations

import xarray as xr

from exopk.dosing import Regimen
from exopk.errors import ExopkError
from exopk.metrics.exposure import auc, peak
from exopk.metrics.intervals import probability_greater
from exopk.metrics.targeting import (direct_transport_percentage, drug_targeting_efficiency,
                                     pathway_share, targeting_index, tissue_to_blood_ratio)

__all__ = ["HIGHER_IS_BETTER", "compare_routes", "route_metrics", "route_table"]

# per metric: +1 if more is better for targeting, -1 if less is, 0 if neither
HIGHER_IS_BETTER = {"auc_target": 1, "auc_blood": 0, "auc_off_target": -1, "kp_target": 1,
                    "de_max_target": 1, "time_of_max_target": 0, "targeting_index": 1}


def _direct_share(model, sets, route, target_output):
    """Share of target exposure via direct transfers from the route's depot, if it has one."""
    compartments = dict(next(r for r in model.routes if r.name == route).targets)
    if len(compartments) != 1:
        return None
    depot = next(iter(compartments))
    kinds = {c.name: c.kind for c in model.compartments}
    if kinds[depot] != "depot":
        return None
    exposed = list(next(o for o in model.outputs if o.name == target_output).compartments)
    shares = [pathway_share(model, sets, depot, t.target, exposed) for t in model.transfers
              if t.source == depot and t.target in exposed and t.kind != "michaelis_menten"]
    return sum(shares) if shares else None


def route_metrics(model, sets, route, dose, horizon, target, blood, off_target) -> xr.Dataset:
    """Metrics of one bolus of ``dose`` by ``route`` over ``[0, horizon]`` (model time unit)."""
    regimen = Regimen.bolus(route, dose)
    areas = auc(model, sets, regimen, horizon, list(dict.fromkeys([target, blood, *off_target])))
    peaks = peak(model, sets, regimen, horizon, target)
    unit = dict(zip(areas["output"].values, areas["unit"].values))
    out = xr.Dataset({
        "auc_target": areas.sel(output=target, drop=True),
        "auc_blood": areas.sel(output=blood, drop=True),
        "auc_off_target": areas.sel(output=list(off_target)).sum("output"),
        "kp_target": tissue_to_blood_ratio(areas.sel(output=target, drop=True),
                                           areas.sel(output=blood, drop=True)),
        "de_max_target": peaks["max"].isel(output=0, drop=True),
        "time_of_max_target": peaks["time_of_max"].isel(output=0, drop=True),
        "targeting_index": targeting_index(areas.sel(output=target, drop=True),
                                           areas.sel(output=list(off_target))),
    }).drop_vars("unit", errors="ignore")
    units = {"auc_target": unit[target], "auc_blood": unit[blood],
             "auc_off_target": unit[off_target[0]],
             "kp_target": f"({unit[target]})/({unit[blood]})",
             "de_max_target": unit[target].rsplit("*", 1)[0],
             "time_of_max_target": model.time_unit, "targeting_index": "1"}
    share = _direct_share(model, sets, route, target)
    if share is not None:
        out["direct_share_target"] = share
        units["direct_share_target"] = "1 (over [0, inf))"
    for name, u in units.items():
        out[name].attrs["units"] = u
    return out


def route_table(model, sets, routes, *, dose, horizon, target, blood, off_target) -> xr.Dataset:
    """:func:`route_metrics` along a ``route`` dim, with DTE%, DTP% and the relative targeting
    index of every route against the first."""
    routes = list(routes)
    if len(routes) < 2:
        raise ExopkError(f"--routes needs at least two routes, got {routes}")
    known = [r.name for r in model.routes]
    unknown = [r for r in routes if r not in known]
    if unknown:
        raise ExopkError(f"model '{model.name}' has no route {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    names = list(model.output_names)
    for option, chosen in (("target", [target]), ("blood", [blood]), ("off-target", off_target)):
        missing = [o for o in chosen if o not in names]
        if missing:
            raise ExopkError(f"--{option}: model '{model.name}' has no output "
                             f"{', '.join(missing)}")
    if not (dose > 0 and horizon > 0):
        raise ExopkError(f"--dose and --horizon must be positive (got {dose}, {horizon})")
    per_route = [route_metrics(model, sets, r, dose, horizon, target, blood, off_target)
                 for r in routes]
    ds = xr.concat(per_route, dim="route", data_vars="all", join="outer",
                   combine_attrs="override").assign_coords(route=list(routes))
    ref = ds.isel(route=0)
    ds["dte_percent"] = drug_targeting_efficiency(ds.auc_target, ds.auc_blood,
                                                  ref.auc_target, ref.auc_blood)
    ds["dtp_percent"] = direct_transport_percentage(ds.auc_target, ds.auc_blood,
                                                    ref.auc_target, ref.auc_blood)
    ds["targeting_index_relative"] = ds.targeting_index / ref.targeting_index
    for name in ("dte_percent", "dtp_percent", "targeting_index_relative"):
        ds[name].attrs = {"units": "1" if name == "targeting_index_relative" else "%",
                          "reference_route": routes[0]}
    return ds


def compare_routes(model, posterior, prior, routes, *, dose: float, horizon: float,
                   target: str, blood: str, off_target) -> xr.DataTree:
    """Metrics per route over posterior and prior draws, against the first route.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` and ``prior``, each with the metrics of :func:`route_metrics` along a
        ``route`` dim, ``dte_percent`` and ``dtp_percent`` (each route against the first; target
        AUC as brain, blood AUC as blood), ``targeting_index_relative`` and, per metric with a
        better direction, ``p_beats_reference_<metric>``.
    """
    routes = list(routes)
    groups = {}
    for label, sets in (("posterior", posterior), ("prior", prior)):
        ds = route_table(model, sets, routes, dose=dose, horizon=horizon, target=target,
                         blood=blood, off_target=off_target)
        ref = ds.isel(route=0)
        for metric, sign in HIGHER_IS_BETTER.items():
            if sign:
                p = probability_greater(sign * ds[metric], sign * ref[metric])
                ds[f"p_beats_reference_{metric}"] = p.where(ds.route != routes[0])
        ds.attrs.update(dose=dose, horizon=horizon, time_unit=model.time_unit, target=target,
                        blood=blood, off_target=", ".join(off_target), reference=routes[0])
        groups[label] = ds
    return xr.DataTree.from_dict(groups)
