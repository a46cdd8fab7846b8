"""Brain %ID after an IV bolus, from prior draws of a model file or posterior draws of a result.

Simulates a bolus of 100 dose units by the ``iv`` route and prints quantiles (5, 50, 95%) of
the model output ``brain_percent_id`` (or ``--output``) at the given times (min), for

* ``--prior N``: N draws from the model file's priors (free parameters; fixed ones at their
  values), seeded with ``--seed``;
* ``--result RESULT.nc``: the posterior draws of a result file (parameters that the result
  does not hold keep their nominal value, and are listed);
* ``--map FIT.toml``: the MAP of a fit file (its own model, evidence and priors; the fit file's
  MAP starts and seed), a quick check before a full fit.

Used to check that a structure keeps the brain physiological: gold nanoparticles given IV to
rats reach 2e-5 to 6e-3 %ID/g of brain at 24 h (``hirn2011``, packaged proxies), and the
brain's vascular space is ~3% of its volume (``residual_blood_fraction:brain``, physiology
table), so a brain holding more than ~1 %ID at 1 h is not physiology.

Usage::

    python benchmarks/brain_iv_check.py MODEL.toml [--prior 500] [--result RESULT.nc]
        [--map FIT.toml] [--times 60 240] [--output brain_percent_id] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import xarray as xr

from exopk import simulate
from exopk.dosing import Regimen
from exopk.model.toml_file import load_model


def prior_draws(model, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` joint draws from the independent priors of the model's free parameters."""
    rng = np.random.default_rng(seed)
    return {p.name: np.asarray(p.prior.sample(rng, n), dtype=float)
            for p in model.parameters if not p.fixed}


def posterior_draws(model, path: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Posterior draws of the model's parameters held by a result file, and those missing."""
    posterior = xr.open_datatree(path)["posterior"].to_dataset()
    draws, missing = {}, []
    for p in model.parameters:
        if p.fixed:
            continue
        if p.name in posterior:
            draws[p.name] = posterior[p.name].values.ravel()
        else:
            missing.append(p.name)
    return draws, missing


def map_values(path: str) -> tuple[object, dict[str, float]]:
    """The model of a fit file and its MAP (natural parameter values)."""
    from exopk.inference.fit import prepare
    from exopk.inference.sampling import find_map
    prepared = prepare(path)
    settings = prepared.fit_file.sampler
    found = find_map(prepared.log_posterior, seed=prepared.fit_file.seed, starts=settings.map_starts)
    natural = prepared.log_posterior.natural(found.phi)
    names = set(prepared.model.parameter_names)
    return prepared.model, {k: np.array([v]) for k, v in natural.items() if k in names}


def quantiles(model, draws: dict[str, np.ndarray], times, output: str) -> np.ndarray:
    """Quantiles (5, 50, 95%) of ``output`` at ``times`` after an IV bolus, shape (times, 3)."""
    ds = simulate(model, draws, times=times, regimen=Regimen.bolus("iv", 100.0))
    values = ds["value"].sel(output=output).values  # (draw, time)
    return np.quantile(values, [0.05, 0.5, 0.95], axis=0).T


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--prior", type=int, default=0, metavar="N")
    parser.add_argument("--result")
    parser.add_argument("--map", metavar="FIT.toml")
    parser.add_argument("--times", type=float, nargs="+", default=[60.0, 240.0])
    parser.add_argument("--output", default="brain_percent_id")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    if args.output not in model.output_names:
        sys.exit(f"error: model '{model.name}' has no output '{args.output}'")
    if not args.prior and not args.result and not args.map:
        sys.exit("error: give --prior N, --result RESULT.nc and/or --map FIT.toml")
    sets = []
    if args.prior:
        sets.append((f"prior ({args.prior} draws, seed {args.seed})",
                     prior_draws(model, args.prior, args.seed)))
    if args.result:
        draws, missing = posterior_draws(model, args.result)
        if missing:
            print(f"not in {args.result} (nominal values used): {', '.join(missing)}")
        sets.append((f"posterior {args.result}", draws))
    if args.map:
        fit_model, values = map_values(args.map)
        if fit_model.name != model.name or set(fit_model.parameter_names) != set(model.parameter_names):
            sys.exit(f"error: fit file '{args.map}' fits model '{fit_model.name}', not the "
                     f"given model file '{args.model}'")
        sets.append((f"MAP of {args.map}", values))
    for label, draws in sets:
        print(f"{model.name}, {args.output} after a 100-unit IV bolus, {label}")
        for t, (q5, q50, q95) in zip(args.times, quantiles(model, draws, args.times, args.output)):
            print(f"  t = {t:g} min: median {q50:.3g}  [5% {q5:.3g}, 95% {q95:.3g}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
