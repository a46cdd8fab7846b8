"""``exopk batch BATCH.toml``: run a batch file's tasks on Dask (:mod:`exopk.batch.runner`)."""

from __future__ import annotations

import signal
import sys

__all__ = ["register"]

#: exit status when a task failed (its error is in the summary table)
FAILED_STATUS = 6


def register(sub) -> None:
    """Add the ``batch`` subcommand to the ``exopk`` parser's subparsers."""
    batch = sub.add_parser(
        "batch", help="run many fits or simulated replicates on Dask",
        description="Run the tasks of a batch file (fit files, a fit file crossed with a grid "
                    "of settings, or simulated replicates for calibration and recovery) on "
                    "dask.distributed: a local cluster by default, or the cluster at "
                    "--scheduler. Each task's result and a summary table go to the output "
                    "folder as tasks finish; a rerun skips the finished tasks. Exit status "
                    f"{FAILED_STATUS} if a task failed. Needs pip install 'exopk[distributed]'.")
    batch.add_argument("batch_file", help="batch file (.toml)")
    batch.add_argument("--out", help="output folder (default: the batch file's batch.out, "
                                     "else NAME.batch in the working directory)")
    batch.add_argument("--workers", type=int,
                       help="worker processes of the local cluster (default: one per CPU)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (its workers "
                            "must see the input files at the same paths and run one thread "
                            "each: dask worker --nthreads 1)")
    batch.add_argument("--time-limit", type=float, metavar="SECONDS",
                       help="cancel the tasks not finished by then (a rerun runs them)")
    batch.add_argument("--quiet", action="store_true", help="no line per finished task")
    batch.set_defaults(func=_batch)


def _batch(args) -> int:
    from exopk.batch.runner import BatchInterrupted, run_batch
    try:
        result = run_batch(args.batch_file, out=args.out, scheduler=args.scheduler,
                           workers=args.workers, time_limit=args.time_limit,
                           progress=not args.quiet)
    except BatchInterrupted as stopped:
        print(f"\nexopk: {stopped}", file=sys.stderr)
        return stopped.exit_status
    except KeyboardInterrupt:           # while the tasks were planned: nothing ran
        print("\nexopk: batch interrupted before any task ran", file=sys.stderr)
        return 128 + signal.SIGINT
    print(result.report())
    if result.failed:
        print(f"exopk: {len(result.failed)} task(s) failed: {', '.join(result.failed)} (errors "
              f"in {result.summary_path})", file=sys.stderr)
        return FAILED_STATUS
    return 0
