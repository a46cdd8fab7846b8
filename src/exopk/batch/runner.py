"""Run a batch on ``dask.distributed``: a local cluster by default, or an existing one.

:func:`run_batch` plans the tasks (every one checked, :func:`exopk.batch.tasks.plan`), skips the
tasks an earlier run finished (:func:`exopk.batch.records.finished_record`), submits the others
to Dask, and as each one ends writes its result and record and rewrites the summary table
(:mod:`exopk.batch.records`). A task that fails is recorded with its error and the others go on;
a rerun tries it again. On Ctrl-C or SIGTERM the unfinished tasks are cancelled, a local
cluster's worker processes are ended with it, and :class:`BatchInterrupted` is raised; every
file in the output folder is complete, and a rerun continues where the batch stopped.

Dask is an optional dependency (``pip install 'exopk[distributed]'``), imported only here, when
a batch runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from exopk.batch import records as io
from exopk.batch.spec import BatchSpec, read_batch_file
from exopk.errors import ExopkError

__all__ = ["run_batch", "BatchResult", "BatchInterrupted", "INSTALL_HINT"]

INSTALL_HINT = ("exopk batch runs its tasks with Dask's distributed scheduler, which is not "
                "installed; install it with: pip install 'exopk[distributed]'")


class BatchInterrupted(ExopkError):
    """A batch was stopped by SIGINT or SIGTERM; the finished tasks are kept.

    Parameters
    ----------
    signal_number : int
    folder : Path
        The output folder (a rerun of the batch continues it).
    finished : int
        Tasks finished, in this run and earlier ones.
    total : int
    """

    def __init__(self, signal_number: int, folder, finished: int, total: int):
        self.signal_number = signal_number
        super().__init__(f"batch interrupted by {signal.Signals(signal_number).name}: {finished} "
                         f"of {total} tasks finished, kept in {folder}; rerun the batch to "
                         "run the others")

    @property
    def exit_status(self) -> int:
        """128 + the signal number, the shell's convention."""
        return 128 + self.signal_number


@dataclass
class BatchResult:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    spec : BatchSpec
    folder : Path
        The output folder (:mod:`exopk.batch.records` describes its files).
    tasks : list of Task
    records : dict of str to dict
        Task id to its record (tasks not run, after a time limit, have none).
    skipped : int
        Tasks an earlier run had finished.
    seconds : float
        Wall time of this run.
    """

    spec: BatchSpec
    folder: Path
    tasks: list
    records: dict
    skipped: int
    seconds: float
    rows: list = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Ids of the failed tasks."""
        return [t for t, r in self.records.items() if r["status"] == "failed"]

    @property
    def done(self) -> int:
        return sum(r["status"] == "done" for r in self.records.values())

    @property
    def summary_path(self) -> Path:
        return self.folder / io.SUMMARY

    def report(self) -> str:
        """The summary table, the simulated replicates' calibration, and the totals."""
        first = ["task", "status"] + [c for c in (self.tasks[0].columns if self.tasks else {})
                                      if c != "seed" or self.spec.simulate is None]
        columns = first + ["seconds", "max_rhat", "min_ess_bulk", "divergences"]
        extra = sorted({k for row in self.rows for k in row if k.startswith("rank[")}) \
            if self.spec.simulate is not None else ["converged", "misfit"]
        columns += extra + (["error"] if self.failed else [])
        lines = [io.format_rows(self.rows, columns)]
        simulate = self.spec.simulate
        parameters = [r["parameters"] for r in self.records.values() if r["status"] == "done"]
        if simulate is not None and parameters:
            from exopk.batch.calibration import calibration_lines
            lines += [""] + calibration_lines(parameters, thin_to=simulate.thin_to,
                                              level=simulate.level)
        pending = len(self.tasks) - len(self.records)
        lines.append(f"\n{self.done} of {len(self.tasks)} tasks done ({self.skipped} finished "
                     f"earlier), {len(self.failed)} failed"
                     + (f", {pending} not run" if pending else "")
                     + f", in {self.seconds:.0f} s; summary: {self.summary_path}")
        return "\n".join(lines)


def _distributed():
    """The ``distributed`` module, or an :class:`ExopkError` saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ExopkError(INSTALL_HINT) from None
    return distributed


class _Stopped(Exception):
    """SIGINT or SIGTERM reached the process running the batch (an ``Exception``, not a
    ``KeyboardInterrupt``, so that no waiting loop of the Dask client swallows it)."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


def _raise_stopped(signal_number, frame):
    raise _Stopped(signal_number)


def run_batch(spec: BatchSpec | str | Path, *, out: str | Path | None = None,
              scheduler: str | None = None, workers: int | None = None, client=None,
              time_limit: float | None = None, progress: bool = True) -> BatchResult:
    """Run the tasks of a batch file that an earlier run has not finished.

    Parameters
    ----------
    spec : BatchSpec, str or Path
        A batch file (:mod:`exopk.batch.spec`) or its parsed form.
    out : path, optional
        Output folder (default: the batch file's ``batch.out``, else ``NAME.batch`` in the
        working directory).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must read the
        batch's input files at the same paths and run one thread each
        (``dask worker --nthreads 1``). Default: a local cluster of ``workers``
        processes with one thread each, ended with the batch.
    workers : int, optional
        Worker processes of the local cluster (default: one per CPU, at most one per task).
    client : distributed.Client, optional
        An open client to use (and leave open) instead of ``scheduler`` or a local cluster.
    time_limit : float, optional
        Seconds; tasks not finished by then are cancelled and left for a rerun.
    progress : bool
        A line on stderr as each task ends.

    Returns
    -------
    BatchResult

    Raises
    ------
    ExopkError
        Dask is not installed, the options contradict each other, or the batch file or a fit
        file it names is invalid (before any task runs).
    BatchInterrupted
        On SIGINT or SIGTERM.
    """
    given = [name for name, value in (("scheduler", scheduler), ("workers", workers),
                                      ("client", client)) if value is not None]
    if len(given) > 1:
        raise ExopkError(f"give one of scheduler, workers and client, not {' and '.join(given)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ExopkError(f"workers = {workers!r}: must be an integer >= 1")
    distributed = _distributed()
    if not isinstance(spec, BatchSpec):
        spec = read_batch_file(spec)
    from exopk.batch.tasks import plan
    from exopk.io import check_writable
    start = time.perf_counter()
    tasks = plan(spec)
    folder = Path(out) if out is not None else spec.out
    check_writable(folder / io.SUMMARY, option="batch output folder")
    records = {t.id: r for t in tasks if (r := io.finished_record(folder, t)) is not None}
    skipped = len(records)
    result = BatchResult(spec, folder, tasks, records, skipped, 0.0,
                         io.summary_rows(tasks, records))
    io.write_summary(folder, result.rows)
    pending = [t for t in tasks if t.id not in records]
    if progress:
        print(f"batch {spec.name}: {len(tasks)} tasks, {skipped} finished earlier, "
              f"{len(pending)} to run; output {folder}", file=sys.stderr, flush=True)
    if pending:
        _run(distributed, result, pending, scheduler=scheduler, client=client,
             workers=workers or min(len(pending), os.cpu_count() or 1),
             deadline=None if time_limit is None else time.monotonic() + time_limit,
             progress=progress)
    result.seconds = time.perf_counter() - start
    return result


def _run(distributed, result: BatchResult, pending, *, scheduler, client, workers, deadline,
         progress):
    """Submit ``pending`` and record every task as it ends."""
    from exopk.batch.worker import run_task
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous, deferred = {}, []
    own, cluster, futures = client is None, None, {}
    if in_main_thread:   # a signal while the cluster starts waits until it can be shut down
        previous = {number: signal.signal(number, lambda number, frame: deferred.append(number))
                    for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        if client is None and scheduler is None:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0",
                                               silence_logs=40)
        if client is None:
            client = distributed.Client(cluster if cluster is not None else scheduler)
        if in_main_thread:   # set after the cluster and client, which may set their own
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, _raise_stopped)
            if deferred:
                raise _Stopped(deferred[0])
        _check_one_thread_per_worker(client)
        token = uuid.uuid4().hex[:8]
        for task in pending:
            future = client.submit(run_task, task.spec,
                                   str(io.result_path(result.folder, task.id).resolve()),
                                   key=f"exopk-{task.id}-{token}", pure=False)
            futures[future] = task
        order = {task.id: k for k, task in enumerate(result.tasks)}
        while futures:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                done, _ = distributed.wait(list(futures), timeout=remaining,
                                           return_when="FIRST_COMPLETED")
            except TimeoutError:
                break
            for future in sorted(done, key=lambda f: order[futures[f].id]):
                _record(result, futures.pop(future), future, progress)
    except KeyboardInterrupt:
        raise BatchInterrupted(signal.SIGINT, result.folder, result.done,
                               len(result.tasks)) from None
    except _Stopped as stopped:
        raise BatchInterrupted(stopped.signal_number, result.folder, result.done,
                               len(result.tasks)) from None
    finally:
        if futures and client is not None:
            client.cancel(list(futures))
        if own and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _check_one_thread_per_worker(client) -> None:
    """Refuse workers with several threads: a task's sampler uses its process's global state
    (numpy's global random generator, through PINTS), so two tasks must not share a process."""
    threads = {info.get("nthreads", 1) for info in client.scheduler_info()["workers"].values()}
    if any(n > 1 for n in threads):
        raise ExopkError(f"the Dask workers run {max(threads)} threads each; exopk's tasks need "
                         "one thread per worker process (start them with dask worker "
                         "--nthreads 1)")


def _record(result: BatchResult, task, future, progress: bool) -> None:
    """Write the outcome of an ended task and rewrite the summary table."""
    try:
        outcome, error = future.result(), None
    except Exception as exc:       # the task's error, raised again here by Dask
        outcome, error = None, f"{type(exc).__name__}: {exc}"
    record = io.write_record(result.folder, task, outcome, error)
    result.records[task.id] = record
    result.rows = io.summary_rows(result.tasks, result.records)
    io.write_summary(result.folder, result.rows)
    if progress:
        numbers = record.get("numbers") or {}
        rhat = numbers.get("max_rhat")
        detail = error if error else (f"{record['seconds']:.1f} s"
                                      + (f", max R-hat {rhat:.3f}" if rhat is not None else "")
                                      + f", {numbers.get('divergences', 0)} divergences")
        print(f"[{len(result.records)}/{len(result.tasks)}] {task.id}: {record['status']}, "
              f"{detail}", file=sys.stderr, flush=True)
