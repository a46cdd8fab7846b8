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

Replicates run in parallel worker processes, each running its chains one after another: every
replicate is a small serial job (a MAP search, then a few hundred NUTS iterations), so one
replicate per core keeps the cores busy through the serial MAP and chain start-up as well, and
avoids starting processes per chain. Every replicate is seeded by ``(seed, replicate index)``,
so results do not depend on the number of processes. With ``--time-limit``, the replicates that
finished in index order before the limit are reported (a prefix, not the fastest replicates,
which would favour easy posteriors).

The last line printed is one JSON object.

Usage: ``python benchmarks/sbc.py [--quick] [--replicates N] [--time-limit SECONDS]``
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

from exopk.inference.fit import prepare
from exopk.inference.samplers import NutsSettings
from exopk.inference.simulated import fit_simulated

FIT = Path(__file__).resolve().parent.parent / "fits" / "mouse_iv_mps.toml"


@functools.lru_cache(maxsize=None)
def prepared_fit(fit_file):
    """The prepared fit file, once per process."""
    return prepare(fit_file)


def sampler_settings(prepared, target_acceptance=None):
    """NUTS settings of a fit file, with its target acceptance rate overridden if given."""
    sampler = prepared.fit_file.sampler
    return NutsSettings(max_tree_depth=sampler.max_tree_depth,
                        target_acceptance=target_acceptance or sampler.target_acceptance)


def simulated_fit(job):
    """The fit of one seeded replicate: ``job`` is ``(fit file, seed, options)``."""
    fit_file, seed, options = job
    prepared = prepared_fit(fit_file)
    return fit_simulated(prepared, seed, chains=options["chains"], warmup=options["warmup"],
                         draws=options["draws"], map_starts=prepared.fit_file.sampler.map_starts,
                         settings=sampler_settings(prepared, options["target_acceptance"]))


def replicate(job):
    """Ranks of the truth among ``thin_to`` posterior draws, for one seeded replicate."""
    options = job[2]
    result = simulated_fit(job)
    pooled = result.draws.reshape(-1, result.draws.shape[-1])
    thinned = pooled[::len(pooled) // options["thin_to"]][:options["thin_to"]]
    ranks = np.sum(thinned < result.phi_true, axis=0)
    return {"ranks": ranks, "divergences": result.divergences, "seconds": result.seconds}


def replicate_seeds(seed, n):
    """One independent seed per replicate index."""
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def run_replicates(worker, jobs, processes, deadline=math.inf):
    """``worker(job)`` for every job, in order, stopping at the first one not done by ``deadline``.

    ``deadline`` is a :func:`time.monotonic` time. With more than one process, jobs run in a
    pool of worker processes, ``processes`` at a time.
    """
    if processes == 1:
        for job in jobs:
            if time.monotonic() > deadline:
                return
            yield worker(job)
        return
    with multiprocessing.Pool(processes) as pool:
        results = pool.imap(worker, jobs)
        for _ in jobs:
            try:
                yield results.next(timeout=None if math.isinf(deadline)
                                   else max(deadline - time.monotonic(), 0.0))
            except multiprocessing.TimeoutError:
                return


def rank_histograms(ranks, thin_to, bins):
    """Counts per bin (replicates, parameters) -> (parameters, bins) and chi-square p-values."""
    counts = np.stack([np.histogram(r, bins=bins, range=(0, thin_to + 1))[0] for r in ranks.T])
    p_values = [float(scipy.stats.chisquare(c).pvalue) for c in counts]
    return counts, p_values


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
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--time-limit", type=float,
                        help="seconds; report the replicates finished (in order) by then")
    args = parser.parse_args()
    replicates = args.replicates or (20 if args.quick else 200)
    draws = args.draws or (99 if args.quick else 300)
    bins = args.bins or (5 if args.quick else 10)
    if (args.thin_to + 1) % bins or args.chains * draws < args.thin_to:
        parser.error("--thin-to + 1 must be a multiple of --bins and at most chains x draws")

    prepared = prepared_fit(args.fit)
    lp = prepared.log_posterior
    names = list(lp.natural(lp.prior_centre()))
    seed = prepared.fit_file.seed if args.seed is None else args.seed
    target = sampler_settings(prepared, args.target_acceptance)["target_acceptance"]
    print(f"SBC for {prepared.model.name} with the design of fit '{prepared.fit_file.name}': "
          f"{len(lp.observations)} observations, {len(names)} parameters; {replicates} "
          f"replicates x {args.chains} chain(s) x ({args.warmup} warm-up + {draws} draws), "
          f"target acceptance {target}, thinned to L = {args.thin_to}; seed {seed}, "
          f"{args.processes} process(es)")
    options = {"chains": args.chains, "warmup": args.warmup, "draws": draws,
               "thin_to": args.thin_to, "target_acceptance": args.target_acceptance}
    jobs = [(args.fit, s, options) for s in replicate_seeds(seed, replicates)]
    deadline = time.monotonic() + args.time_limit if args.time_limit else math.inf
    start = time.perf_counter()
    results = []
    for i, result in enumerate(run_replicates(replicate, jobs, args.processes, deadline)):
        results.append(result)
        print(f"replicate {i + 1}/{replicates}: {result['seconds']:.1f} s, "
              f"{result['divergences']} divergences, ranks {result['ranks'].tolist()}",
              file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    if not results:
        sys.exit("no replicate finished within the time limit")
    if len(results) < replicates:
        print(f"time limit reached: {len(results)} of {replicates} replicates finished")

    ranks = np.array([r["ranks"] for r in results])
    counts, p_values = rank_histograms(ranks, args.thin_to, bins)
    print_histograms(names, counts, p_values)
    divergences = [r["divergences"] for r in results]
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
