"""The decision commands ``compare-routes``, ``design``, ``optimize`` and ``report``."""

from __future__ import annotations

import argparse
import re

from exopk.errors import ExopkError

__all__ = ["register", "parse_duration"]

RELATIVE = ("dte_percent", "dtp_percent", "targeting_index_relative")

OFF_TARGET = "liver_percent_id,spleen_percent_id,lung_percent_id"


def parse_duration(text: str, model_unit: str, option: str) -> float:
    """'24h', '90 min' or a bare number (model time unit) -> model time unit."""
    from exopk.units import UnitError, convert
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
    from exopk.metrics.intervals import credible_interval
    ci = credible_interval(values, level)
    return f"{float(ci['median']):.3g} [{float(ci.low):.3g}, {float(ci.high):.3g}]"


def _print_influx(args, model, draws, route) -> None:
    """Ki by multiple-time regression after ``route``, posterior and prior, when asked."""
    from exopk.dosing import Regimen
    from exopk.metrics.targeting import influx_constant
    if not args.ki_outputs:
        return
    tissue, _, plasma = args.ki_outputs.partition(",")
    times = [parse_duration(t, model.time_unit, "--ki-times") for t in args.ki_times.split(",")]
    regimen = Regimen.bolus(route, args.dose)
    ki = [influx_constant(model, sets, regimen, tissue.strip(), plasma.strip(), times)["Ki"]
          for sets in (draws.posterior, draws.prior)]
    print(f"# Ki ({tissue.strip()} on {plasma.strip()}, multiple-time regression at "
          f"{', '.join(f'{t:g}' for t in times)} {model.time_unit} after {route}; "
          f"{ki[0].attrs['units']}): posterior {_interval_text(ki[0])}, prior "
          f"{_interval_text(ki[1])}")


def _compare_routes(args) -> int:
    import numpy as np

    from exopk.units import display_unit
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
    print(f"# {draws.name} ({model.name}): one {args.dose:g} {display_unit(model.amount_unit)} "
          f"bolus per route, "
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
            units = display_unit(str(post[metric].attrs.get(
                "units", "%" if "percent" in metric else "1")))
            print(f"{metric:<26} {units:<18} {route:<11} {_interval_text(a):<30} "
                  f"{_interval_text(b):<30} {p_post:>7} {p_prior:>7}")
    _print_influx(args, model, draws, routes[0])
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


def _metric_draws(model, sets, args, horizon, off_target):
    """The chosen metric per draw for ``--route`` (against ``--reference`` when relative)."""
    from exopk.metrics.routes import route_metrics, route_table
    options = dict(dose=args.dose, horizon=horizon, target=args.target, blood=args.blood,
                   off_target=off_target)
    if args.metric in RELATIVE:
        table = route_table(model, sets, [args.reference, args.route], **options)
    else:
        table = route_metrics(model, sets, args.route, **options).expand_dims(route=[args.route])
    if args.metric not in table:
        raise ExopkError(f"--metric '{args.metric}' is not one of "
                         f"{', '.join(sorted(set(table.data_vars) | set(RELATIVE)))}")
    return table[args.metric].sel(route=args.route, drop=True)


def _design(args) -> int:
    from exopk.units import display_unit
    from exopk.metrics.design import default_experiments, rank_experiments
    from exopk.metrics.draws import load_draws
    from exopk.metrics.plots import design_figure

    draws = load_draws(args.fit, max_draws=args.draws)
    model = draws.model
    horizon = parse_duration(args.horizon, model.time_unit, "--horizon")
    times = [parse_duration(t, model.time_unit, "--times") for t in args.times.split(",")]
    route = args.route or model.routes[-1].name
    args.route = route
    off_target = [o.strip() for o in args.off_target.split(",") if o.strip()]
    metric = _metric_draws(model, draws.posterior, args, horizon, off_target)
    log_metric = bool((metric > 0).all()) and not args.linear
    outputs = tuple(o.strip() for o in args.outputs.split(",")) if args.outputs else \
        ("brain_percent_id", "plasma_percent_id", "liver_percent_id")
    experiments = default_experiments(model, times, animals=args.animals,
                                      assay_sigma_log=args.assay_sd, dose=args.dose,
                                      outputs=outputs)
    ranking = rank_experiments(model, draws.posterior, metric, experiments,
                               replicates=args.replicates, seed=args.seed, log_metric=log_metric)
    scale = "log10 " if log_metric else ""
    metric_unit = display_unit(str(metric.attrs.get("units", "")))
    sd_unit = "log10" if log_metric else metric_unit
    print(f"# {draws.name} ({model.name}): metric {args.metric} [{metric_unit}] for {route}"
          f"{' vs ' + args.reference if args.metric in RELATIVE else ''}, horizon {horizon:g} "
          f"{model.time_unit}; current posterior sd of {scale}{args.metric} "
          f"{ranking.attrs['current_sd']:.3g} {sd_unit} over {ranking.attrs['draws']} draws")
    print(f"# each experiment: {args.animals} animals, assay sd {args.assay_sd:g} (log scale); "
          f"{args.replicates} simulated data sets (seed {args.seed}); importance reweighting")
    time_header = f"time [{model.time_unit}]"
    sd_header = f"expected sd [{sd_unit}]"
    print(f"{'rank':>4} {'output':<20} {'route':<11} {time_header:>10} {'n':>3} "
          f"{sd_header:>12} {'reduction':>9} {'ESS mean':>9} {'ESS min':>8}")
    for i in range(ranking.sizes["experiment"]):
        row = ranking.isel(experiment=i)
        flag = "  weights degenerate: refit needed" if bool(row.degenerate) else ""
        print(f"{i + 1:>4} {str(row.output.values):<20} {str(row.route.values):<11} "
              f"{float(row.time):>10g} {int(row.animals):>3} {float(row.expected_sd):>12.4g} "
              f"{100 * float(row.reduction):>8.1f}% {float(row.ess_mean):>9.1f} "
              f"{float(row.ess_min):>8.1f}{flag}")
    if args.figure:
        path = design_figure(ranking, f"{draws.name}: expected reduction of the posterior sd of "
                                      f"{scale}{args.metric} ({route})", args.figure)
        print(f"# wrote {path}")
    return 0


def _pair(text, model_unit, option, *, times=False):
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise ExopkError(f"{option} must be LOW,HIGH, got '{text}'")
    if times:
        return tuple(parse_duration(p, model_unit, option) for p in parts)
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ExopkError(f"{option} must be two numbers LOW,HIGH, got '{text}'") from None


def _regimen_text(result, routes, unit, time_unit) -> str:
    count = result["count"]
    text = (f"{count} x {result['dose']:.4g} {unit} ({100 * (1 - result['split']):.1f}% "
            f"{routes[0]}, {100 * result['split']:.1f}% {routes[1]})")
    return text + (f" every {result['interval']:.4g} {time_unit}" if count > 1 else "")


def _spread_text(values, unit="") -> str:
    import numpy as np
    low, middle, high = np.nanquantile(values, [0.025, 0.5, 0.975])
    return f"{middle:.4g} [{low:.4g}, {high:.4g}]{unit}"


def _optimize(args) -> int:
    import numpy as np

    from exopk.dosing import Regimen
    from exopk.metrics.draws import load_draws
    from exopk.metrics.optimize import (Bounds, RegimenExposure, exposure, landscape_around,
                                        optimize_regimen)
    from exopk.metrics.plots import landscape_figure
    from exopk.units import display_unit

    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    if len(routes) != 2:
        raise ExopkError(f"--routes needs exactly two routes, got '{args.routes}'")
    if args.bootstrap < 0:
        raise ExopkError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if args.objective == "probability" and not (args.threshold and args.threshold > 0):
        raise ExopkError("--objective probability needs a positive --threshold")
    draws = load_draws(args.fit, max_draws=args.draws)
    model = draws.model
    horizon = parse_duration(args.horizon, model.time_unit, "--horizon")
    bounds = Bounds(dose=_pair(args.dose_bounds, model.time_unit, "--dose-bounds"),
                    interval=_pair(args.interval_bounds, model.time_unit, "--interval-bounds",
                                   times=True),
                    max_count=args.max_count, max_total_dose=args.max_total_dose)
    options = dict(routes=routes, horizon=horizon, target=args.target, bounds=bounds,
                   objective=args.objective, threshold=args.threshold,
                   off_target=(args.off_target.split(",")[0].strip()
                               if args.max_off_target is not None else None),
                   max_off_target=args.max_off_target, starts=args.starts, seed=args.seed)
    best = optimize_regimen(model, draws.posterior, bootstrap=args.bootstrap, **options)
    naive_dose = min(bounds.dose[1], bounds.max_total_dose)
    naive = exposure(model, draws.posterior, Regimen.bolus(routes[0], naive_dose), horizon,
                     args.target)
    gain = best["exposure"] / naive
    unit, tu = display_unit(model.amount_unit), model.time_unit
    goal = ("expected" if args.objective == "mean" else
            f"P(exposure > {args.threshold:g} {unit}*{tu}) of") + f" {args.target} exposure"
    print(f"# {draws.name} ({model.name}): maximise {goal} over [0, {horizon:g}] {tu} on "
          f"{best['exposure'].size} fixed posterior draws; SLSQP with exact gradients, "
          f"{args.starts} start(s) per count, seed {args.seed}")
    print(f"optimum:  {_regimen_text(best, routes, unit, tu)}; objective {best['objective']:.4g}")
    print(f"exposure at the optimum ({unit}*{tu}): {_interval_text(best['exposure'])}")
    if "off_target_exposure" in best:
        print(f"{options['off_target']} exposure at the optimum ({unit}*{tu}): "
              f"{_interval_text(best['off_target_exposure'])}; limit on its mean "
              f"{args.max_off_target:g}")
    if "resamples" in best:
        spread = best["resamples"]
        counts = np.unique(spread["count"].values, return_counts=True)
        print(f"optimum over {args.bootstrap} bootstrap resamples of the draws (median [95%]): "
              f"{routes[1]} share {_spread_text(100 * spread['split'].values, '%')}, dose "
              f"{_spread_text(spread['dose'].values, ' ' + unit)}, count " +
              ", ".join(f"{int(c)} in {n}" for c, n in zip(*counts)) +
              (f", interval {_spread_text(spread['interval'].values, ' ' + tu)}"
               if np.isfinite(spread["interval"].values).any() else ""))
    print(f"naive ({naive_dose:g} {unit} by {routes[0]} once): {_interval_text(naive)}")
    print(f"optimum / naive, draw by draw: {_interval_text(gain)}; "
          f"P(optimum better) {float((gain > 1 + 1e-9).mean()):.3f}")
    prior = optimize_regimen(model, draws.prior, **options)
    judged = RegimenExposure(model, draws.posterior, routes, horizon, args.target) \
        .value_and_gradient(prior["split"], prior["dose"], prior["count"],
                            prior["interval"] if prior["count"] > 1 else 0.0)[0]
    judged_score = judged.mean() if args.objective == "mean" else (judged > args.threshold).mean()
    print(f"under the prior alone: {_regimen_text(prior, routes, unit, tu)}; objective "
          f"{prior['objective']:.4g} over the prior draws; the posterior rates that regimen "
          f"{judged_score:.4g} ({100 * judged_score / best['objective']:.1f}% of the optimum)")
    if args.figure:
        grid = landscape_around(model, draws.posterior, best, bounds, routes=routes,
                                horizon=horizon, target=args.target,
                                threshold=args.threshold if args.objective != "mean" else None)
        path = landscape_figure(grid, best, routes, amount_unit=unit, time_unit=tu,
                                title=f"{draws.name}: {goal} over [0, {horizon:g}] {tu}",
                                path=args.figure)
        print(f"# wrote {path}")
    return 0


def _report(args) -> int:
    from exopk.metrics.draws import load_draws
    from exopk.metrics.report import write_report

    draws = load_draws(args.fit, max_draws=args.draws)
    unit = draws.model.time_unit
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    if len(routes) != 2:
        raise ExopkError(f"--routes needs exactly two routes, got '{args.routes}'")
    path = write_report(draws, args.out, routes=routes, dose=args.dose,
                        horizon=parse_duration(args.horizon, unit, "--horizon"),
                        target=args.target, blood=args.blood,
                        off_target=[o.strip() for o in args.off_target.split(",") if o.strip()],
                        design_times=[parse_duration(t, unit, "--times")
                                      for t in args.times.split(",")],
                        replicates=args.replicates, seed=args.seed)
    print(f"# wrote {path}")
    return 0


def _common(parser):
    parser.add_argument("fit", help="fit file (.toml, its result .nc is read) or result (.nc)")
    parser.add_argument("--dose", type=float, default=100.0,
                        help="bolus amount in the model's amount unit (default 100)")
    parser.add_argument("--horizon", default="24h",
                        help="AUC horizon with a unit, e.g. 24h or 90min (default 24h)")
    parser.add_argument("--target", default="brain_percent_id", help="target output")
    parser.add_argument("--blood", default="plasma_percent_id", help="blood output")
    parser.add_argument("--off-target", default=OFF_TARGET,
                        help=f"comma-separated off-target outputs (default {OFF_TARGET})")
    parser.add_argument("--draws", type=int, default=200,
                        help="at most this many draws per chain, evenly thinned (default 200)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare-routes`` to a CLI; each command sets ``func`` (returns the exit status)."""
    compare = subparsers.add_parser(
        "compare-routes", help="exposure and targeting per route with credible intervals",
        description="Compare routes of a fitted model over its posterior and prior draws: AUCs, "
                    "Kp, peak delivery, targeting index, DTE%% and DTP%% against the first route, "
                    "and the probability that each route beats it.")
    _common(compare)
    compare.add_argument("--routes", default="iv,intranasal",
                         help="comma-separated routes, the first is the reference "
                              "(default iv,intranasal)")
    compare.add_argument("--ki-outputs", default="",
                         help="TISSUE,PLASMA outputs for the influx constant Ki by multiple-time "
                              "regression after the first route, e.g. "
                              "brain_percent_id_per_g,blood_concentration (default: none)")
    compare.add_argument("--ki-times", default="2min,5min,10min,20min,30min",
                         help="times of the Ki regression (default 2,5,10,20,30 min)")
    compare.add_argument("--figure", default="compare_routes.png",
                         help="figure path (default compare_routes.png; '' for none)")
    compare.add_argument("--netcdf", help="write the metrics per draw to this NetCDF file")
    compare.set_defaults(func=_compare_routes)

    design = subparsers.add_parser(
        "design", help="rank candidate experiments by expected shrinkage of a metric's sd",
        description="For candidate experiments (outputs x times x routes, n animals, assay "
                    "error), simulate data from the posterior draws, reweight the draws and "
                    "rank by the expected reduction of the metric's posterior sd.")
    _common(design)
    design.add_argument("--metric", default="auc_target",
                        help="auc_target, auc_blood, kp_target, de_max_target, targeting_index, "
                             "direct_share_target, dte_percent, dtp_percent or "
                             "targeting_index_relative (default auc_target)")
    design.add_argument("--route", help="route of the metric (default: the model's last route)")
    design.add_argument("--reference", default="iv",
                        help="reference route of relative metrics (default iv)")
    design.add_argument("--outputs", help="candidate outputs, comma-separated (default brain, "
                                          "blood and liver %%ID)")
    design.add_argument("--times", default="1h,4h,24h",
                        help="candidate times with units (default 1h,4h,24h)")
    design.add_argument("--animals", type=int, default=4, help="animals per experiment (4)")
    design.add_argument("--assay-sd", type=float, default=0.3,
                        help="assay error, sd of the log value per animal (default 0.3)")
    design.add_argument("--replicates", type=int, default=200,
                        help="simulated data sets per experiment (default 200)")
    design.add_argument("--seed", type=int, default=0, help="seed of the simulated data")
    design.add_argument("--linear", action="store_true",
                        help="judge the sd of the metric itself, not of its log10")
    design.add_argument("--figure", default="design.png",
                        help="figure path (default design.png; '' for none)")
    design.set_defaults(func=_design)

    optimize = subparsers.add_parser(
        "optimize", help="choose route split, dose, number and interval of administrations",
        description="Maximise expected target exposure (or the probability that it exceeds a "
                    "threshold) over a fixed set of posterior draws, within bounds and limits; "
                    "compare with a naive single dose and with the optimum under the prior.")
    _common(optimize)
    optimize.set_defaults(horizon="72h", draws=50)
    optimize.add_argument("--routes", default="iv,intranasal",
                          help="the two routes to split between (default iv,intranasal)")
    optimize.add_argument("--dose-bounds", default="1,100",
                          help="LOW,HIGH amount per administration (default 1,100)")
    optimize.add_argument("--interval-bounds", default="1h,24h",
                          help="LOW,HIGH interval with units (default 1h,24h)")
    optimize.add_argument("--max-count", type=int, default=3,
                          help="most administrations (default 3)")
    optimize.add_argument("--max-total-dose", type=float, default=100.0,
                          help="limit on count x dose (default 100)")
    optimize.add_argument("--objective", choices=("mean", "probability"), default="mean")
    optimize.add_argument("--threshold", type=float,
                          help="exposure threshold (amount x time) of the probability objective")
    optimize.add_argument("--max-off-target", type=float,
                          help="limit on the expected exposure of the first --off-target output")
    optimize.add_argument("--starts", type=int, default=2, help="optimiser starts per count (2)")
    optimize.add_argument("--bootstrap", type=int, default=20,
                          help="bootstrap resamples of the draws for the optimum's uncertainty "
                               "(default 20; 0 for none)")
    optimize.add_argument("--seed", type=int, default=0,
                          help="seed of the random starts and resamples (default 0)")
    optimize.add_argument("--figure", default="optimize.png",
                          help="landscape figure path (default optimize.png; '' for none)")
    optimize.set_defaults(func=_optimize)

    report = subparsers.add_parser(
        "report", help="claim-check report of a fit: one self-contained HTML page",
        description="What the fitted evidence supports for the pharmacokinetic claims made for "
                    "exosome therapy: route metrics with intervals, prior beside posterior, fit "
                    "checks, evidence records and the most informative next experiment.")
    _common(report)
    report.add_argument("--out", default="report.html", help="HTML file (default report.html)")
    report.add_argument("--routes", default="iv,intranasal",
                        help="reference and compared route (default iv,intranasal)")
    report.add_argument("--times", default="1h,4h,24h",
                        help="candidate times of the next experiment (default 1h,4h,24h)")
    report.add_argument("--replicates", type=int, default=100,
                        help="simulated data sets per candidate experiment (default 100)")
    report.add_argument("--seed", type=int, default=0, help="seed of the simulated data")
    report.set_defaults(func=_report)
