"""Benchmark: parameter recovery on data simulated with the design of each shipped fit.

For every fit file given (default: all of ``fits/*.toml``) and every replicate: draw true
parameters from the fit's prior, simulate the fit's observations at them (same requests,
routes, regimens, conditions and reported errors; :mod:`exopk.inference.simulated`), fit them
(MAP, then NUTS with the fit file's MAP starts, tree depth and target acceptance rate) and
check whether each parameter's central 90% posterior interval covers the truth. With a
correct posterior and sampler, every parameter's interval covers in 90% of the replicates, so
the count of covers is Binomial(replicates, 0.9): the two-sided binomial test p-value says
whether the observed coverage is consistent with 90%.

The overall test pools every (replicate, parameter) pair of every fit. Intervals of one
replicate are not independent (they share one dataset), so the pooled p-value is approximate
(too small when coverage errors are correlated); the per-parameter p-values are exact. A
parameter the data do not inform (posterior sd over prior sd near 1, the ``sd ratio`` column)
covers at 90% whatever the data, so coverage tells most about the parameters with small ratios.
The mean z-score, ``(posterior mean - truth) / posterior sd``, shows a bias.

Replicates run through the batch runner (:mod:`exopk.batch`) on one local Dask cluster of
``--processes`` workers, with their chains one after another, and are seeded by
``(seed, replicate index)`` (see ``benchmarks/sbc.py``, whose driver this script shares).

The last line printed is one JSON object.

Usage: ``python benchmarks/recovery.py [FIT ...] [--quick] [--replicates N]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from exopk.batch.calibration import binomial_p
from exopk.inference.fit import prepare
from exopk.inference.fitfile import read_fit_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sbc import run_replicates  # noqa: E402

FITS = Path(__file__).resolve().parent.parent / "fits"
PRIOR_DRAWS = 4000


def recover(fit_file, replicates, options, seed, client, deadline):
    """Per-parameter coverage, binomial p-values, z-scores and sd ratios of one fit file."""
    prepared = prepare(fit_file)
    lp = prepared.log_posterior
    names = lp.natural_names()
    seed = prepared.fit_file.seed if seed is None else seed
    target = options["target_acceptance"] or prepared.fit_file.sampler.target_acceptance
    print(f"\n{prepared.fit_file.name}: model {prepared.model.name}, "
          f"{len(lp.observations)} observations, {len(names)} parameters; {replicates} replicates "
          f"x {options['chains']} chains x ({options['warmup']} warm-up + {options['draws']} "
          f"draws), target acceptance {target}; seed {seed}")
    results = run_replicates(fit_file, replicates, options, seed, client=client,
                             time_limit=None if deadline is None
                             else max(deadline - time.monotonic(), 0.0))
    if not results:
        sys.exit("no replicate finished within the time limit")
    if len(results) < replicates:
        print(f"time limit reached: {len(results)} of {replicates} replicates finished")

    def per_parameter(key):
        return np.array([[r["parameters"][n][key] for n in names] for r in results])

    covered = per_parameter("covered")
    prior_sd = lp.sample_prior(np.random.default_rng(seed), PRIOR_DRAWS).std(axis=0)
    summary = {
        "name": prepared.fit_file.name, "replicates": len(results), "names": names,
        "target_acceptance": target,
        "covered": covered, "coverage": covered.mean(axis=0),
        "p_values": [binomial_p(c, len(results), options["level"]) for c in covered.sum(axis=0)],
        "mean_z": per_parameter("z").mean(axis=0),
        "sd_ratio": per_parameter("sd").mean(axis=0) / prior_sd,
        "divergences": int(sum(r["numbers"]["divergences"] for r in results)),
        "seconds": float(sum(r["seconds"] for r in results)),
    }
    print_table(summary, options["level"])
    return summary


def print_table(summary, level):
    print(f"{'parameter':26} {'coverage':>9} {'binom p':>8} {'mean z':>7} {'sd ratio':>9}")
    for k, name in enumerate(summary["names"]):
        flag = "  <-- inconsistent at 0.01" if summary["p_values"][k] < 0.01 else ""
        print(f"{name:26} {summary['coverage'][k]:9.2f} {summary['p_values'][k]:8.3f} "
              f"{summary['mean_z'][k]:7.2f} {summary['sd_ratio'][k]:9.2f}{flag}")
    covered = summary["covered"]
    print(f"overall {covered.mean():.3f} of {covered.size} intervals at level {level} "
          f"(binomial p {binomial_p(covered.sum(), covered.size, level):.3g}); "
          f"{summary['divergences']} divergent iterations; "
          f"{summary['seconds'] / summary['replicates']:.1f} s per replicate")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fits", nargs="*", help="fit files (default: fits/*.toml)")
    parser.add_argument("--quick", action="store_true",
                        help="4 replicates per fit of one chain of 100 draws (a smoke test)")
    parser.add_argument("--replicates", type=int, help="per fit (default 50, 4 with --quick)")
    parser.add_argument("--chains", type=int, help="default 2 (1 with --quick)")
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, help="per chain after warm-up (default 200, 100 "
                                                   "with --quick)")
    parser.add_argument("--level", type=float, default=0.9, help="central interval probability")
    parser.add_argument("--target-acceptance", type=float,
                        help="NUTS target acceptance rate (default: each fit file's)")
    parser.add_argument("--seed", type=int, help="default: each fit file's seed")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                        help="workers of the local Dask cluster")
    parser.add_argument("--time-limit", type=float,
                        help="seconds over all fits; report the replicates finished (in order)")
    args = parser.parse_args()
    fits = args.fits or [str(p) for p in sorted(FITS.glob("*.toml"))
                         if read_fit_file(p).data is None]     # fits of evidence records
    replicates = args.replicates or (4 if args.quick else 50)
    options = {"chains": args.chains or (1 if args.quick else 2), "warmup": args.warmup,
               "draws": args.draws or (100 if args.quick else 200),
               "level": args.level, "target_acceptance": args.target_acceptance}
    deadline = time.monotonic() + args.time_limit if args.time_limit else None

    import distributed
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=args.processes, threads_per_worker=1,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        summaries = [recover(f, replicates, options, args.seed, client, deadline) for f in fits]
    covered = np.concatenate([s["covered"].ravel() for s in summaries])
    p_value = binomial_p(covered.sum(), covered.size, args.level)
    print(f"\nall fits: coverage {covered.mean():.3f} of {covered.size} intervals, binomial p "
          f"{p_value:.3g}, {time.perf_counter() - start:.0f} s")
    print(json.dumps({
        "fits": [s["name"] for s in summaries], "level": args.level,
        "replicates": int(sum(s["replicates"] for s in summaries)),
        "coverage": {s["name"]: dict(zip(s["names"], s["coverage"].tolist())) for s in summaries},
        "overall_coverage": float(covered.mean()), "binomial_p_value": p_value,
        "consistent": bool(p_value > 0.01),
        "per_fit": {s["name"]: {
            "replicates": s["replicates"], "overall_coverage": float(s["covered"].mean()),
            "binomial_p_value": binomial_p(s["covered"].sum(), s["covered"].size, args.level),
            "parameter_p_values": dict(zip(s["names"], s["p_values"])),
            "mean_z": dict(zip(s["names"], s["mean_z"].tolist())),
            "sd_ratio": dict(zip(s["names"], s["sd_ratio"].tolist())),
            "divergences": s["divergences"], "target_acceptance": s["target_acceptance"]}
            for s in summaries},
        "seconds": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
