"""Benchmark: simulation-based calibration of exopk's posterior for m2_mps (mouse IV design).

Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018,
arXiv:1804.06788): if the truth is drawn from the prior and the data from the model at that
truth, the truth's rank among ``L`` posterior draws is uniform on ``0..L`` for every parameter,
whatever the design, when the sampler is correct. Each replicate here draws a truth from the
prior of ``fits/mouse_iv_mps.toml`` (model m2_mps), simulates that fit's ten observations at it
(:func:`exopk.inference.simulated.fit_simulated`: same requests, routes, conditions and
reported errors), fits them (MAP, then NUTS with the fit file's MAP starts, tree depth and
target acceptance rate), thins the post-warm-up draws to ``L`` evenly spaced ones and records
the rank of the true value of every coordinate. Ranks are taken in the sampling coordinates,
which is the same as in natural units (the transformations are monotone).

A histogram of the ranks per parameter is printed (``--bins`` bins of equal width) with a
chi-square test of uniformity. A histogram that is U-shaped means posteriors too narrow (or
autocorrelated draws), a hump too wide, a slope a biased posterior.

Replicates run through the batch runner (:mod:`exopk.batch`) on a local Dask cluster of
``--processes`` workers, one replicate per worker with its chains one after another: every
replicate is a small serial job (a MAP search, then a few hundred NUTS iterations), so one
replicate per core keeps the cores busy through the serial MAP and chain start-up as well.
Every replicate is seeded by ``(seed, replicate index)``, so results do not depend on the number
of workers. With ``--time-limit``, the replicates that finished in index order before the limit
are reported (a prefix, not the fastest replicates, which would favour easy posteriors). With
``--out FOLDER`` the replicates' records are kept there, and a rerun continues the batch.

The last line printed is one JSON object.

Usage: ``python benchmarks/sbc.py [--quick] [--replicates N] [--time-limit SECONDS] [--out FOLDER]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exopk.batch.calibration import rank_histograms
from exopk.batch.runner import run_batch
from exopk.batch.spec import BatchSpec, SimulateSpec
from exopk.inference.fit import prepare

FIT = Path(__file__).resolve().parent.parent / "fits" / "mouse_iv_mps.toml"


def run_replicates(fit_file, replicates, options, seed, *, out=None, time_limit=None,
                   workers=None, client=None):
    """Records of the replicates of a simulated batch that finished in index order.

    ``options``: ``chains``, ``warmup``, ``draws``, ``target_acceptance`` (None: the fit
    file's), ``thin_to`` and ``level``. The batch's records go to ``out`` (default: a temporary
    folder, removed afterwards).
    """
    settings = {k: options[k] for k in ("chains", "warmup", "draws", "target_acceptance")
                if options.get(k) is not None}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(out or temporary)
        spec = BatchSpec(name=Path(fit_file).stem, path=None, out=folder, settings=settings,
                         simulate=SimulateSpec(fit=str(Path(fit_file).resolve()),
                                               replicates=replicates, seed=seed,
                                               thin_to=options.get("thin_to", 1),
                                               level=options.get("level", 0.9)))
        result = run_batch(spec, time_limit=time_limit, workers=workers, client=client)
    finished = []
    for task in result.tasks:
        record = result.records.get(task.id)
        if record is None or record["status"] != "done":
            break
        finished.append(record)
    return finished


def print_histograms(names, counts, p_values):
    expected = counts.sum(axis=1)[0] / counts.shape[1]
    print(f"\nrank histograms ({counts.shape[1]} bins, {expected:g} expected per bin)")
    print(f"{'parameter':26} {'counts from low rank to high':{4 * counts.shape[1]}} {'chi2 p':>8}")
    for name, row, p in zip(names, counts, p_values):
        flag = "  <-- not uniform at 0.01" if p < 0.01 else ""
        print(f"{name:26} {''.join(f'{c:4d}' for c in row)} {p:8.3f}{flag}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 replicates of 99 draws, 5 bins (a smoke test, not a verdict)")
    parser.add_argument("--fit", default=str(FIT), help="fit file giving design and priors")
    parser.add_argument("--replicates", type=int, help="default 200 (20 with --quick)")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, help="per chain after warm-up (default 300)")
    parser.add_argument("--thin-to", type=int, default=99,
                        help="posterior draws per rank, L (ranks take L + 1 values)")
    parser.add_argument("--bins", type=int, help="histogram bins (default 10, 5 with --quick)")
    parser.add_argument("--target-acceptance", type=float,
                        help="NUTS target acceptance rate (default: the fit file's)")
    parser.add_argument("--seed", type=int, help="default: the fit file's seed")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                        help="workers of the local Dask cluster")
    parser.add_argument("--time-limit", type=float,
                        help="seconds; report the replicates finished (in order) by then")
    parser.add_argument("--out", help="keep the batch's records here (a rerun continues them)")
    args = parser.parse_args()
    replicates = args.replicates or (20 if args.quick else 200)
    draws = args.draws or (99 if args.quick else 300)
    bins = args.bins or (5 if args.quick else 10)
    if (args.thin_to + 1) % bins or args.chains * draws < args.thin_to:
        parser.error("--thin-to + 1 must be a multiple of --bins and at most chains x draws")

    prepared = prepare(args.fit)
    lp = prepared.log_posterior
    names = lp.natural_names()
    seed = prepared.fit_file.seed if args.seed is None else args.seed
    target = args.target_acceptance or prepared.fit_file.sampler.target_acceptance
    print(f"SBC for {prepared.model.name} with the design of fit '{prepared.fit_file.name}': "
          f"{len(lp.observations)} observations, {len(names)} parameters; {replicates} "
          f"replicates x {args.chains} chain(s) x ({args.warmup} warm-up + {draws} draws), "
          f"target acceptance {target}, thinned to L = {args.thin_to}; seed {seed}, "
          f"{args.processes} worker(s)")
    options = {"chains": args.chains, "warmup": args.warmup, "draws": draws,
               "thin_to": args.thin_to, "target_acceptance": args.target_acceptance}
    start = time.perf_counter()
    results = run_replicates(args.fit, replicates, options, seed, out=args.out,
                             time_limit=args.time_limit, workers=args.processes)
    seconds = time.perf_counter() - start
    if not results:
        sys.exit("no replicate finished within the time limit")
    if len(results) < replicates:
        print(f"time limit reached: {len(results)} of {replicates} replicates finished")

    ranks = np.array([[r["parameters"][n]["rank"] for n in names] for r in results])
    divergences = [r["numbers"]["divergences"] for r in results]
    counts, p_values = rank_histograms(ranks, args.thin_to, bins)
    print_histograms(names, counts, p_values)
    print(f"\n{len(results)} replicates in {seconds:.0f} s "
          f"(median {np.median([r['seconds'] for r in results]):.1f} s per replicate); "
          f"{sum(divergences)} divergent iterations, in {np.count_nonzero(divergences)} replicates")
    print(f"smallest p-value {min(p_values):.3g}; Bonferroni threshold for 0.01 over "
          f"{len(names)} parameters: {0.01 / len(names):.2g}")
    print(json.dumps({
        "fit": prepared.fit_file.name, "model": prepared.model.name, "replicates": len(results),
        "thin_to": args.thin_to, "bins": bins, "target_acceptance": target,
        "p_values": dict(zip(names, p_values)), "min_p_value": min(p_values),
        "rank_counts": {n: c.tolist() for n, c in zip(names, counts)},
        "divergences": int(sum(divergences)),
        "replicates_with_divergences": int(np.count_nonzero(divergences)),
        "seconds": round(seconds, 1),
    }))


if __name__ == "__main__":
    main()
