"""The ``exopk`` command line.

Subcommands: ``simulate`` (a model file or shipped model, printed as a table, optionally written
to CSV or NetCDF), ``fit`` (a Bayesian fit file), ``compare`` (fit results by PSIS-LOO, with
ArviZ), ``figures`` (the docs figures from fit results), ``models`` (the shipped models),
``presets`` (species presets and their sources), ``data`` (packaged evidence and user data
files), ``compare-routes``, ``design``, ``optimize``, ``report`` (decisions from a fit's draws,
:mod:`exopk.metrics`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from exopk._version import __version__
from exopk.data.cli import register as register_data
from exopk.dosing import MAX_DOSES, Dose, Regimen
from exopk.engine import simulate
from exopk.errors import ExopkError, FitInterrupted
from exopk.inference.fitfile import MIN_CHAINS, MIN_DRAWS
from exopk.io import check_writable, write_atomically
from exopk.metrics.cli import register as register_metrics
from exopk.model import load_model
from exopk.models_library import available_models, model_path, resolve_model
from exopk.physiology import available_presets, load_species
from exopk.provenance import provenance_json
from exopk.units import UnitError, convert

__all__ = ["main", "build_parser"]

DEFAULT_TIMES = "1,5,15,30,60,120,240,480,1440,2880"


def _integer(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum]; argparse names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value
    return parse


def _times(text: str, unit: str, model_unit: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ExopkError(f"--times must be comma-separated numbers, got '{text}'") from None
    try:
        factor = convert(1.0, unit, model_unit)
    except UnitError as exc:
        raise ExopkError(f"--time-unit '{unit}': {exc}") from None
    return values * factor


def _parameters(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ExopkError(f"--param expects NAME=VALUE, got '{item}'")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ExopkError(f"--param {name}: '{value}' is not a number") from None
    return values


def _regimen(args, model) -> Regimen:
    route = args.route or model.routes[0].name
    if args.count > 1 and not (args.interval and args.interval > 0):
        raise ExopkError(f"--count above 1 needs a positive --interval, got {args.interval}")
    doses = tuple(Dose(route, args.dose, args.start + k * (args.interval or 0.0), args.duration,
                       args.steady_state_interval) for k in range(args.count))
    return Regimen(doses)


def _simulate(args) -> int:
    for option, path in (("--csv", args.csv), ("--netcdf", args.netcdf)):
        if path:
            check_writable(path, option=option)
    model = resolve_model(args.model)
    times = _times(args.times, args.time_unit or model.time_unit, model.time_unit)
    dataset = simulate(model, _parameters(args.param), times, _regimen(args, model),
                       gradients=args.gradients)
    if args.outputs:
        chosen = [o.strip() for o in args.outputs.split(",")]
        unknown = [o for o in chosen if o not in model.output_names]
        if unknown:
            raise ExopkError(f"unknown output(s) {', '.join(unknown)}; known: "
                             f"{', '.join(model.output_names)}")
        dataset = dataset.sel(output=chosen)
    print(f"# {model.name}: {dataset.attrs['regimen']}")
    print(f"# parameters: {dataset.attrs['parameters']}")
    print(f"# time in {model.time_unit}; units: " + ", ".join(
        f"{o}={u}" for o, u in zip(dataset.output.values, dataset.unit.values)))
    print(_format_table(dataset))
    residual = float(np.abs(dataset.mass_balance_residual).max())
    print(f"# mass balance: max |sum of compartments - administered| = {residual:.3g} "
          f"{model.amount_unit}")
    if args.csv:
        table = dataset.value.to_pandas()
        table.columns = [f"{o} [{u}]" for o, u in zip(dataset.output.values, dataset.unit.values)]
        table.index.name = f"time [{model.time_unit}]"
        write_atomically(args.csv, table.to_csv)
        print(f"# wrote {args.csv}")
    if args.netcdf:
        inputs = {"model_file": model.source_file} if model.source_file else {}
        dataset.attrs["provenance"] = provenance_json(inputs=inputs, result_path=args.netcdf)
        write_atomically(args.netcdf, lambda p: dataset.to_netcdf(p, engine="scipy"))
        print(f"# wrote {args.netcdf}")
    return 0


def _format_table(dataset) -> str:
    outputs = [str(o) for o in dataset.output.values]
    width = max(12, *(len(o) for o in outputs))
    lines = [f"{'time':>10} " + " ".join(f"{o:>{width}}" for o in outputs)]
    for i, t in enumerate(dataset.time.values):
        values = dataset.value.values[i]
        lines.append(f"{t:>10g} " + " ".join(f"{v:>{width}.6g}" for v in values))
    return "\n".join(lines)


def _fit(args) -> int:
    from exopk.inference.fit import fit
    if args.resume is not None:
        given = [f"--{name}" for name in ("out", "chains", "warmup", "draws", "seed", "processes")
                 if getattr(args, name) is not None]
        if args.fit_file is not None or given:
            raise ExopkError("--resume continues a run with its own fit file and options; give "
                             f"nothing else (got {', '.join(given or [args.fit_file])})")
    elif args.fit_file is None:
        raise ExopkError("fit needs a fit file (or --resume CHECKPOINT)")
    try:
        result = fit(args.fit_file, out=args.out, chains=args.chains, warmup=args.warmup,
                     draws=args.draws, seed=args.seed, processes=args.processes,
                     progress=not args.quiet, resume=args.resume,
                     method="map" if args.map else None)
    except FitInterrupted as stopped:
        print(f"\nexopk: {stopped}", file=sys.stderr)
        return stopped.exit_status
    print(result.summary())
    print(f"# wrote {result.path}")
    if args.strict and not hasattr(result, "converged"):
        print("exopk: --strict: individual fits have no pooled convergence check; read the "
              "table above", file=sys.stderr)
        return 3
    if args.strict and result.implausible:
        print("exopk: --strict: the posterior violates a plausibility bound of the model (see "
              "IMPLAUSIBLE above)", file=sys.stderr)
        return 5
    if args.strict and not result.converged:
        print("exopk: --strict: the chains have not converged (see NOT CONVERGED above)",
              file=sys.stderr)
        return 3
    if args.strict and result.misfit:
        print("exopk: --strict: the fit misses published values (see MISFIT above)",
              file=sys.stderr)
        return 4
    return 0


def _compare(args) -> int:
    from exopk.inference.comparison import compare_results, format_comparison
    print(format_comparison(compare_results(args.results)))
    return 0


def _figures(args) -> int:
    from exopk.figures import make_figures
    for path in make_figures(args.fits, args.out):
        print(f"# wrote {path}")
    return 0


def _models(args) -> int:
    for name in available_models():
        model = load_model(model_path(name))
        print(f"{name:<28} {len(model.compartments):>3} compartments, "
              f"{len(model.free_parameter_names):>3} free parameters, routes "
              f"{', '.join(r.name for r in model.routes)}"
              f"{'' if model.is_linear else ' (saturable)'}\n    {model.description}")
    return 0


def _presets(args) -> int:
    if args.name:
        print(load_species(args.name, body_weight_kg=args.body_weight_kg).describe())
        return 0
    for name, description in available_presets().items():
        print(f"{name:<22} {description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``exopk`` command."""
    parser = argparse.ArgumentParser(prog="exopk", description=(
        "Pharmacokinetic biodistribution modelling of extracellular vesicles."))
    parser.add_argument("--version", action="version", version=f"exopk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate a model and print a table",
                         description="Simulate a model file (or a shipped model by name) for one "
                                     "regimen and print the outputs against time.")
    sim.add_argument("model", help="model file (.toml) or shipped model name, e.g. m5_intranasal")
    sim.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="set a parameter (repeatable); others keep their nominal value")
    sim.add_argument("--route", help="dose route (default: the model's first route)")
    sim.add_argument("--dose", type=float, default=100.0,
                     help="amount per dose in the model's amount unit (default 100)")
    sim.add_argument("--duration", type=float, default=0.0,
                     help="infusion duration in model time units (default 0: bolus)")
    sim.add_argument("--count", type=_integer(1, MAX_DOSES), default=1,
                     help=f"number of doses (default 1, at most {MAX_DOSES})")
    sim.add_argument("--interval", type=float, help="dosing interval for repeated doses")
    sim.add_argument("--start", type=float, default=0.0, help="time of the first dose")
    sim.add_argument("--steady-state-interval", type=float,
                     help="start at the steady state of boluses repeated at this interval")
    sim.add_argument("--times", default=DEFAULT_TIMES,
                     help=f"comma-separated observation times (default {DEFAULT_TIMES})")
    sim.add_argument("--time-unit", help="unit of --times, e.g. min, h, day (default: model's)")
    sim.add_argument("--outputs", help="comma-separated outputs to show (default: all)")
    sim.add_argument("--gradients", action="store_true",
                     help="also compute exact sensitivities (saved in NetCDF)")
    sim.add_argument("--csv", help="write the output table to this CSV file")
    sim.add_argument("--netcdf", help="write the whole dataset to this NetCDF file")
    sim.set_defaults(func=_simulate)

    fit = sub.add_parser("fit", help="run a Bayesian fit file and write its results",
                         description="MAP, then MCMC (NUTS with exact gradients by default), "
                                     "diagnostics, and an ArviZ-layout NetCDF file.")
    fit.add_argument("fit_file", nargs="?",
                     help="fit file (.toml), e.g. fits/mouse_iv_mps.toml")
    fit.add_argument("--out", help="output NetCDF (default: NAME.nc in the working directory, "
                                   "NAME the fit file's name)")
    fit.add_argument("--resume", metavar="CHECKPOINT",
                     help="continue an interrupted run from its checkpoint folder "
                          "(RESULT.nc.checkpoint); the draws equal an uninterrupted run's")
    fit.add_argument("--chains", type=_integer(MIN_CHAINS),
                     help=f"override the number of chains (at least {MIN_CHAINS})")
    fit.add_argument("--warmup", type=_integer(1), help="override warm-up iterations per chain")
    fit.add_argument("--draws", type=_integer(MIN_DRAWS),
                     help=f"override draws per chain (at least {MIN_DRAWS})")
    fit.add_argument("--seed", type=_integer(0), help="override the seed (a non-negative integer)")
    fit.add_argument("--processes", type=_integer(1), help="worker processes for chains")
    fit.add_argument("--strict", action="store_true",
                     help="exit with status 5 if the posterior predictive violates a "
                          "plausibility bound of the model, with status 3 unless R-hat <= 1.01, "
                          "bulk ESS >= 400 and no "
                          "divergences for every parameter, and with status 4 if the chains "
                          "converged but a published value lies outside its 99%% posterior "
                          "predictive interval or more lie outside their 90%% intervals than "
                          "chance explains")
    fit.add_argument("--map", action="store_true",
                     help="no MCMC: the mode of the density of the sampling coordinates (log or "
                          "logit of each parameter) and a Laplace approximation there; its "
                          "draws are written as the posterior group")
    fit.add_argument("--quiet", action="store_true", help="no progress line")
    fit.set_defaults(func=_fit)

    compare = sub.add_parser("compare", help="compare fit results by PSIS-LOO (needs ArviZ)",
                             description="The elpd-LOO table of ArviZ's compare: differences "
                                         "with their standard errors, Pareto k warnings and "
                                         "stacking weights. The results must come from fits to "
                                         "the same observations.")
    compare.add_argument("results", nargs="+", help="fit results (.nc), at least two")
    compare.set_defaults(func=_compare)

    figures = sub.add_parser("figures", help="regenerate the docs figures and claim-check "
                                             "pages from fit results and the shipped models")
    figures.add_argument("--fits", default="fits", help="folder of fit results (default fits)")
    figures.add_argument("--out", default="docs",
                         help="docs folder: figures into OUT/figures, reports into OUT "
                              "(default docs)")
    figures.set_defaults(func=_figures)

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=_models)

    presets = sub.add_parser("presets", help="list species presets or show one with sources")
    presets.add_argument("name", nargs="?", help="preset to show")
    presets.add_argument("--body-weight-kg", type=float, default=None)
    presets.set_defaults(func=_presets)

    register_data(sub)
    register_metrics(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``exopk`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ExopkError as exc:
        print(f"exopk: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (head)
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
