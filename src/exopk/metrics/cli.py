"""The decision commands: ``exopk compare-routes`` (and their argument parsing and printing)."""

from __future__ import annotations

import argparse
import re

import numpy as np

from exopk.data.units import UnitError, convert
from exopk.errors import ExopkError
from exopk.metrics.intervals import credible_interval

__all__ = ["register", "parse_duration"]

OFF_TARGET = "liver_percent_id,spleen_percent_id,lung_percent_id"


def parse_duration(text: str, model_unit: str, option: str) -> float:
    """'24h', '90 min' or a bare number (model time unit) -> model time unit."""
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([A-Za-z]*)\s*", text)
    if not match:
        raise ExopkError(f"{option} must be a number with an optional unit such as 24h, got "
                         f"'{text}'")
    try:
        value = float(match.group(1))
        return convert(value, match.group(2), model_unit) if match.group(2) else value
    except (ValueError, UnitError) as exc:
        raise ExopkError(f"{option} '{text}': {exc}") from None


def _interval_text(values, level=0.95) -> str:
    ci = credible_interval(values, level)
    return f"{float(ci['median']):.3g} [{float(ci.low):.3g}, {float(ci.high):.3g}]"


def _compare_routes(args) -> int:
    from exopk.metrics.draws import load_draws
    from exopk.metrics.plots import routes_figure
    from exopk.metrics.routes import HIGHER_IS_BETTER, compare_routes
    from exopk.metrics.targeting import TUMOUR_DELIVERY_MEDIAN_PERCENT_ID

    draws = load_draws(args.fit, max_draws=args.draws)
    model = draws.model
    horizon = parse_duration(args.horizon, model.time_unit, "--horizon")
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    off_target = [o.strip() for o in args.off_target.split(",") if o.strip()]
    tree = compare_routes(model, draws.posterior, draws.prior, routes, dose=args.dose,
                          horizon=horizon, target=args.target, blood=args.blood,
                          off_target=off_target)
    post, prior = tree["posterior"].to_dataset(), tree["prior"].to_dataset()
    print(f"# {draws.name} ({model.name}): one {args.dose:g} {model.amount_unit} bolus per route, "
          f"horizon {horizon:g} {model.time_unit}; target {args.target}, blood {args.blood}, "
          f"off-target {', '.join(off_target)}")
    print(f"# median [95% credible interval] over {post.sizes['chain'] * post.sizes['draw']} "
          f"posterior and {prior.sizes['chain'] * prior.sizes['draw']} prior draws; "
          f"P = probability that the route beats {routes[0]}")
    metrics = [m for m in (*HIGHER_IS_BETTER, "direct_share_target", "targeting_index_relative",
                           "dte_percent", "dtp_percent") if m in post]
    header = f"{'metric':<26} {'units':<18} {'route':<11} {'posterior':<30} {'prior':<30} " \
             f"{'P post':>7} {'P prior':>7}"
    print(header)
    for metric in metrics:
        for route in routes:
            if metric in ("dte_percent", "dtp_percent", "targeting_index_relative") and \
                    route == routes[0]:
                continue
            a, b = post[metric].sel(route=route), prior[metric].sel(route=route)
            if metric == "direct_share_target" and bool(np.isnan(a).all()):
                continue
            p_name = f"p_beats_reference_{metric}"
            p_post = p_prior = ""
            if p_name in post and route != routes[0]:
                p_post = f"{float(post[p_name].sel(route=route)):.3f}"
                p_prior = f"{float(prior[p_name].sel(route=route)):.3f}"
            units = str(post[metric].attrs.get("units", "%" if "percent" in metric else "1"))
            print(f"{metric:<26} {units:<18} {route:<11} {_interval_text(a):<30} "
                  f"{_interval_text(b):<30} {p_post:>7} {p_prior:>7}")
    best = post["de_max_target"].median(("chain", "draw"))
    print("# context: median nanoparticle delivery to solid tumours "
          f"{TUMOUR_DELIVERY_MEDIAN_PERCENT_ID}"
          f" %ID (Wilhelm et al. 2016, Nat Rev Mater 1:16014); peak {args.target} here: " +
          ", ".join(f"{r} {float(best.sel(route=r)):.3g}" for r in routes))
    if args.figure:
        path = routes_figure(model, draws.posterior, draws.prior, routes, dose=args.dose,
                             horizon=horizon, outputs=[args.target, args.blood], path=args.figure)
        print(f"# wrote {path}")
    if args.netcdf:
        tree.to_netcdf(args.netcdf, engine="scipy")
        print(f"# wrote {args.netcdf}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare-routes`` to a CLI; each command sets ``func`` (returns the exit status)."""
    compare = subparsers.add_parser(
        "compare-routes", help="exposure and targeting per route with credible intervals",
        description="Compare routes of a fitted model over its posterior and prior draws: AUCs, "
                    "Kp, peak delivery, targeting index, DTE%% and DTP%% against the first route, "
                    "and the probability that each route beats it.")
    compare.add_argument("fit", help="fit file (.toml, its result .nc is read) or result (.nc)")
    compare.add_argument("--routes", default="iv,intranasal",
                         help="comma-separated routes, the first is the reference "
                              "(default iv,intranasal)")
    compare.add_argument("--dose", type=float, default=100.0,
                         help="bolus amount in the model's amount unit (default 100)")
    compare.add_argument("--horizon", default="24h",
                         help="AUC horizon with a unit, e.g. 24h or 90min (default 24h)")
    compare.add_argument("--target", default="brain_percent_id", help="target output")
    compare.add_argument("--blood", default="plasma_percent_id", help="blood output")
    compare.add_argument("--off-target", default=OFF_TARGET,
                         help=f"comma-separated off-target outputs (default {OFF_TARGET})")
    compare.add_argument("--draws", type=int, default=200,
                         help="at most this many draws per chain, evenly thinned (default 200)")
    compare.add_argument("--figure", default="compare_routes.png",
                         help="figure path (default compare_routes.png; '' for none)")
    compare.add_argument("--netcdf", help="write the metrics per draw to this NetCDF file")
    compare.set_defaults(func=_compare_routes)
