"""Benchmark: tasks per minute of ``exopk batch`` on a local Dask cluster of 1 and of 2 workers.

The same simulated batch (``--tasks`` SBC replicates of a fit file's design, default
``fits/mouse_iv_mps.toml``, one chain of 150 warm-up and 100 draws each, seeded by the replicate
index so both runs do the same work) runs once on a local cluster of one worker process and once
on two, each into a fresh output folder. The time of a run counts planning (reading and
preparing the fit file), submitting, the tasks and the writing of every record and summary; the
cluster's start-up is timed apart. The ratio of the two rates is the speed-up from the second
worker (at most 2, less on a machine whose cores are busy with other work: the load average is
printed with the result).

The last line printed is one JSON object.

Usage: ``python benchmarks/batch_throughput.py [--tasks N] [--fit FIT]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from exopk.batch.runner import run_batch
from exopk.batch.spec import BatchSpec, SimulateSpec

FIT = Path(__file__).resolve().parent.parent / "fits" / "mouse_iv_mps.toml"


def throughput(spec: BatchSpec, workers: int) -> dict:
    """Start a local cluster of ``workers`` processes and run ``spec`` on it into a new folder."""
    import distributed
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client, tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = run_batch(spec, out=folder, client=client, progress=False)
        seconds = time.perf_counter() - started
    if result.failed or result.done != len(result.tasks):
        raise SystemExit(f"{len(result.failed)} task(s) failed: {result.failed}")
    rate = 60 * len(result.tasks) / seconds
    print(f"{workers} worker(s): {len(result.tasks)} tasks in {seconds:.1f} s, {rate:.2f} "
          f"tasks/min (cluster start {started - start:.1f} s)")
    return {"seconds": round(seconds, 1), "tasks_per_minute": round(rate, 3),
            "cluster_start_seconds": round(started - start, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="replicates per run (default 8)")
    parser.add_argument("--fit", default=str(FIT), help="fit file giving design and priors")
    parser.add_argument("--draws", type=int, default=100, help="draws per replicate")
    args = parser.parse_args()
    settings = {"chains": 1, "warmup": 150, "draws": args.draws}
    spec = BatchSpec(name="throughput", path=None, out=Path("unused"), settings=settings,
                     simulate=SimulateSpec(fit=str(Path(args.fit).resolve()),
                                           replicates=args.tasks, thin_to=args.draws))
    print(f"batch throughput: {args.tasks} SBC replicates of {Path(args.fit).name} "
          f"(1 chain, 150 warm-up + {args.draws} draws); {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    runs = {str(n): throughput(spec, n) for n in (1, 2)}
    speedup = runs["2"]["tasks_per_minute"] / runs["1"]["tasks_per_minute"]
    print(f"speed-up with 2 workers: {speedup:.2f}")
    print(json.dumps({"fit": Path(args.fit).stem, "tasks": args.tasks, "settings": settings,
                      "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
                      "workers": runs, "speedup": round(speedup, 3)}))


if __name__ == "__main__":
    main()
