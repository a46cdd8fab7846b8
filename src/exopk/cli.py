"""The ``exopk`` command line.

Subcommands: ``simulate`` (a model file or shipped model, printed as a table, optionally written
to CSV or NetCDF), ``fit`` (a Bayesian fit file), ``compare`` (fit results by PSIS-LOO, with
ArviZ), ``figures`` (the docs figures from fit results), ``models`` (the shipped models),
``presets`` (species presets and their sources), ``data`` (packaged evidence and user data
files; ``data usable MODEL`` counts the records a model can use), ``compare-routes``,
``design``, ``optimize``, ``report`` (decisions from a fit's draws, :mod:`exopk.metrics`).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

from exopk.batch.cli import register as register_batch
from exopk.data.cli import register as register_data
from exopk.errors import ExopkError, FitInterrupted
from exopk.limits import MAX_DOSES, MIN_CHAINS, MIN_DRAWS
from exopk.metrics.cli import register as register_metrics

__all__ = ["main", "build_parser"]

# Handlers import what they use when they run, so that ``exopk --help`` and argument errors
# need no scipy, xarray, pint, pints or matplotlib (``tests/test_cli_imports.py``).

DEFAULT_TIMES = "1,5,15,30,60,120,240,480,1440,2880"
_TIME_OPTIONS = ("start", "interval", "duration", "steady_state_interval")


class _Version(argparse.Action):
    """``--version``: looks the installed version up only when asked."""

    def __call__(self, parser, namespace, values, option_string=None):
        from exopk._version import __version__
        parser.exit(message=f"exopk {__version__}\n")


def _integer(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum]; argparse names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value
    return parse


def _positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _time_factor(unit: str, model_unit: str) -> float:
    """Model time units per ``unit`` (``--time-unit``)."""
    from exopk.units import UnitError, convert
    try:
        return convert(1.0, unit, model_unit)
    except UnitError as exc:
        raise ExopkError(f"--time-unit '{unit}': {exc}") from None


def _times(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ExopkError(f"--times must be comma-separated numbers, got '{text}'") from None


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


def _regimen(args, model, factor: float):
    """The regimen of ``simulate``; its times (``--start``, ``--interval``, ``--duration``,
    ``--steady-state-interval``) are in ``--time-unit``, ``factor`` model time units each."""
    from exopk.dosing import Dose, Regimen
    route = args.route or model.routes[0].name
    if args.count > 1 and not (args.interval and args.interval > 0):
        raise ExopkError(f"--count above 1 needs a positive --interval, got {args.interval}")
    start, interval, duration, steady = (None if getattr(args, name) is None
                                         else getattr(args, name) * factor
                                         for name in _TIME_OPTIONS)
    doses = tuple(Dose(route, args.dose, start + k * (interval or 0.0), duration, steady)
                  for k in range(args.count))
    return Regimen(doses)


def _simulate(args) -> int:
    import numpy as np

    from exopk.engine import simulate
    from exopk.io import check_writable, write_atomically
    from exopk.models_library import resolve_model
    from exopk.provenance import provenance_json
    from exopk.units import display_unit

    for option, path in (("--csv", args.csv), ("--netcdf", args.netcdf)):
        if path:
            check_writable(path, option=option)
    model = resolve_model(args.model)
    time_unit = args.time_unit or model.time_unit
    factor = _time_factor(time_unit, model.time_unit)
    times = np.array(_times(args.times)) * factor
    regimen = _regimen(args, model, factor)
    dataset = simulate(model, _parameters(args.param), times, regimen, gradients=args.gradients)
    if args.outputs:
        chosen = [o.strip() for o in args.outputs.split(",")]
        unknown = [o for o in chosen if o not in model.output_names]
        if unknown:
            raise ExopkError(f"unknown output(s) {', '.join(unknown)}; known: "
                             f"{', '.join(model.output_names)}")
        dataset = dataset.sel(output=chosen)
    amount = display_unit(model.amount_unit)
    print(f"# {model.name}: " + "; ".join(_dose_text(d, amount, time_unit, factor)
                                         for d in regimen.doses))
    print(f"# parameters: {dataset.attrs['parameters']}")
    print(f"# amounts in {amount} (--dose is in {amount}); %ID: percent of the dose given by "
          f"each time")
    headers = [f"time [{time_unit}]"] + [f"{o} [{display_unit(str(u))}]" for o, u in
                                         zip(dataset.output.values, dataset.unit.values)]
    table = dataset.value.to_pandas()
    table.index = dataset.time.values / factor
    table.index.name, table.columns = headers[0], headers[1:]
    print(_format_table(table))
    residual = float(np.abs(dataset.mass_balance_residual).max())
    print(f"# mass balance: max |sum of compartments - administered| = {residual:.3g} {amount}")
    if args.csv:
        write_atomically(args.csv, table.to_csv)
        print(f"# wrote {args.csv}")
    if args.netcdf:
        inputs = {"model_file": model.source_file} if model.source_file else {}
        dataset.attrs["provenance"] = provenance_json(inputs=inputs, result_path=args.netcdf)
        write_atomically(args.netcdf, lambda p: dataset.to_netcdf(p, engine="scipy"))
        print(f"# wrote {args.netcdf}")
    return 0


def _dose_text(dose, amount_unit: str, time_unit: str, factor: float) -> str:
    """One dose as ``simulate`` prints it, its times in ``--time-unit``."""
    text = f"{dose.route} {dose.amount:g} {amount_unit} at {dose.time / factor:g} {time_unit}"
    if dose.duration:
        text += f" over {dose.duration / factor:g} {time_unit}"
    if dose.steady_state_interval:
        text += f" (steady state every {dose.steady_state_interval / factor:g} {time_unit})"
    return text


def _format_table(table) -> str:
    """A pandas table with its index as the first column, each header with its unit."""
    headers = [str(table.index.name), *map(str, table.columns)]
    widths = [max(12, len(h)) for h in headers]
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(headers, widths))]
    for t, row in zip(table.index, table.to_numpy()):
        lines.append(" ".join(f"{v:>{w}.6g}" for v, w in zip((t, *row), widths)))
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
                     method="map" if args.map else None,
                     **({} if args.checkpoint_seconds is None
                        else {"checkpoint_seconds": args.checkpoint_seconds}))
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
    from exopk.model import load_model
    from exopk.models_library import available_models, model_path
    for name in available_models():
        model = load_model(model_path(name))
        print(f"{name:<28} {len(model.compartments):>3} compartments, "
              f"{len(model.free_parameter_names):>3} free parameters, routes "
              f"{', '.join(r.name for r in model.routes)}"
              f"{'' if model.is_linear else ' (saturable)'}\n    {model.description}")
    return 0


def _presets(args) -> int:
    from exopk.physiology import available_presets, describe_preset
    if args.name:
        print(describe_preset(args.name, body_weight_kg=args.body_weight_kg))
        return 0
    for name, description in available_presets().items():
        print(f"{name:<22} {description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``exopk`` command.

    Examples
    --------
    >>> from exopk.cli import build_parser
    >>> args = build_parser().parse_args(["simulate", "m0_one_compartment", "--times", "0,10"])
    >>> args.command, args.model, args.times
    ('simulate', 'm0_one_compartment', '0,10')
    """
    parser = argparse.ArgumentParser(prog="exopk", description=(
        "Pharmacokinetic biodistribution modelling of extracellular vesicles."))
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show the program's version number and exit")
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
                     help="infusion duration in --time-unit (default 0: bolus)")
    sim.add_argument("--count", type=_integer(1, MAX_DOSES), default=1,
                     help=f"number of doses (default 1, at most {MAX_DOSES})")
    sim.add_argument("--interval", type=float,
                     help="dosing interval for repeated doses, in --time-unit")
    sim.add_argument("--start", type=float, default=0.0,
                     help="time of the first dose, in --time-unit (default 0)")
    sim.add_argument("--steady-state-interval", type=float,
                     help="start at the steady state of boluses repeated at this interval, in "
                          "--time-unit")
    sim.add_argument("--times", default=DEFAULT_TIMES,
                     help=f"comma-separated observation times in --time-unit (default "
                          f"{DEFAULT_TIMES})")
    sim.add_argument("--time-unit",
                     help="unit of every time option (--times, --start, --interval, --duration, "
                          "--steady-state-interval) and of the printed time column, e.g. min, h, "
                          "day (default: the model's time unit)")
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
    fit.add_argument("--checkpoint-seconds", type=_positive_seconds,
                     metavar="SECONDS",
                     help="wall time between a chain's checkpoints: at most this much sampling "
                          "is redone after an interruption (default 5; also with --resume)")
    fit.add_argument("--chains", type=_integer(MIN_CHAINS),
                     help=f"override the number of chains (at least {MIN_CHAINS})")
    fit.add_argument("--warmup", type=_integer(1), help="override warm-up iterations per chain")
    fit.add_argument("--draws", type=_integer(MIN_DRAWS),
                     help=f"override draws per chain (at least {MIN_DRAWS})")
    fit.add_argument("--seed", type=_integer(0), help="override the seed (a non-negative integer)")
    fit.add_argument("--processes", type=_integer(1),
                     help="worker processes for chains (default: one per chain)")
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
    fit.add_argument("--quiet", action="store_true", help="no progress display")
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
    figures.add_argument("--fits", default="fits", help="folder of fit results (.nc); default: fits in the working directory (the repository's root)")
    figures.add_argument("--out", default="docs",
                         help="docs folder: figures into OUT/figures, reports into OUT "
                              "(default docs)")
    figures.set_defaults(func=_figures)

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=_models)

    presets = sub.add_parser("presets", help="list species presets or show one with sources")
    presets.add_argument("name", nargs="?", help="preset to show")
    presets.add_argument("--body-weight-kg", type=float, default=None,
                         help="body weight in kg that organ masses, volumes and flows scale to "
                              "(default: the preset's own, if it has one; without one the values "
                              "that need it are marked)")
    presets.set_defaults(func=_presets)

    register_data(sub, extra=(_register_usable,))
    register_metrics(sub)
    register_batch(sub)
    return parser


class _WarningPrinter:
    """Prints warnings as ``exopk: warning: MESSAGE`` (no source path, no code line).

    Notices that a numerical fallback was taken (:class:`~exopk.errors.IllConditionedWarning`)
    come from every other evaluation in a search or a sampler: the first is printed, the rest
    are counted and summed up in one line by :meth:`finish`.
    """

    def __init__(self):
        self.repeats = 0
        self._seen_fallback = False

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        from exopk.errors import IllConditionedWarning
        if issubclass(category, IllConditionedWarning):
            if self._seen_fallback:
                self.repeats += 1
                return
            self._seen_fallback = True
        _write(f"exopk: warning: {message}", file)

    def finish(self) -> None:
        """Print how many fallback notices were not printed."""
        if self.repeats:
            _write(f"exopk: warning: {self.repeats} more evaluations solved ill-conditioned "
                   "parameter sets with expm (exact, slower); not printed one by one", None)


def _write(text: str, file) -> None:
    stream = sys.stderr if file is None else file
    try:
        stream.write(text + "\n")
    except (OSError, ValueError):   # stderr closed
        pass


def _register_usable(commands) -> None:
    """``exopk data usable MODEL``: which packaged records become observations of a model."""
    usable = commands.add_parser(
        "usable", help="how many packaged records a model can use, and why not the others",
        description="Count the packaged EV and proxy records that become observations of MODEL "
                    "and list the reasons for the others: the table's usable_for_fit marks, "
                    "then what the model cannot predict or compare.")
    usable.add_argument("model", metavar="MODEL", help="model file or shipped model name")
    usable.add_argument("--signal", choices=("label", "vesicle"), default="label",
                        help="organ readout (default label: vesicles plus free label)")
    usable.set_defaults(func=_usable)


def _usable(args) -> int:
    from exopk.data import load as load_evidence
    from exopk.models_library import resolve_model
    from exopk.observation.usability import format_usability, usability
    model = resolve_model(args.model)
    counts = [usability(load_evidence(table), model, signal=args.signal)
              for table in ("ev", "proxies")]
    print(format_usability(model.name, counts))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``exopk`` command; returns the exit status.

    Examples
    --------
    ``exopk simulate`` of the one-compartment model: %ID is ``100 exp(-CL t / V)``, with V 1 mL
    and CL 0.5 mL/min here.

    >>> from exopk.cli import main
    >>> main(["simulate", "m0_one_compartment", "--param", "CL=0.5", "--times", "2,4",
    ...       "--outputs", "plasma_percent_id"])
    # m0_one_compartment: iv 100 dose units at 0 min
    # parameters: CL=0.5; V_plasma=1; secretion_rate=0
    # amounts in dose units (--dose is in dose units); %ID: percent of the dose given by each time
      time [min] plasma_percent_id [%ID]
               2                 36.7879
               4                 13.5335
    # mass balance: ...
    0

    An error is one line on stderr and exit status 2:

    >>> main(["simulate", "m0_one_compartment", "--param", "k=1"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    printer = _WarningPrinter()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = printer.show
            try:
                return int(args.func(args) or 0)
            finally:
                printer.finish()
    except ExopkError as exc:
        print(f"exopk: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (head)
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
