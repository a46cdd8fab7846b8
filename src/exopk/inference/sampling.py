"""MAP search and MCMC chains on a log-posterior, seeded and run in parallel processes.

* :func:`find_map`: PINTS' gradient-based iRprop- optimiser from several seeded starting points
  drawn around the prior; the best optimum is kept and every start is reported.
* :func:`chain_starts`: the chains' starting points, around the mode of the density the sampler
  explores (the coordinates'), found by iRprop- from the MAP.
* :func:`run_chains`: a sampler of :data:`exopk.inference.samplers.SAMPLERS` (PINTS' No-U-Turn
  sampler with exact gradients, or Haario-Bardenet adaptive covariance MCMC), one chain per process
  (PINTS' parallel evaluator slowed fits down, separate chains speed them up). Every chain seeds
  its own generator from the fit's seed, so the same seed gives the same draws, bit for bit, on the
  same machine. Warm-up draws are discarded.

PINTS samplers draw from numpy's global random state; each chain process seeds it with
``SeedSequence(seed).spawn(chains)[chain]``.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pints

from exopk.errors import ExopkError, FitInterrupted
from exopk.inference.checkpoint import (CHECKPOINT_SECONDS, ChainState, check_checkpoint_seconds,
                                        load_chain_states, save_chain_state)
from exopk.inference.progress import Progress, chain_status
from exopk.inference.samplers import SAMPLERS
from exopk.inference.threads import one_blas_thread

__all__ = ["MapResult", "ChainResult", "find_map", "chain_starts", "run_chains", "chain_seeds"]


@dataclass(frozen=True)
class MapResult:
    """The best optimum and every start's outcome (log-posterior values)."""

    phi: np.ndarray
    log_posterior: float
    starts: tuple
    values: tuple


@dataclass(frozen=True)
class ChainResult:
    """Post-warm-up draws and per-iteration statistics of one chain.

    Attributes
    ----------
    draws : ndarray, shape (draws, n_parameters)
        Unconstrained coordinates.
    log_posterior : ndarray, shape (draws,)
    stats : dict of str to ndarray, shape (draws,)
        The sampler's per-draw statistics (:attr:`Sampler.statistics`), for NUTS
        ``acceptance_rate``, ``tree_depth``, ``n_steps``, ``energy``, ``step_size``,
        ``diverging`` (see :mod:`exopk.inference.pints_nuts`).
    seconds : float
        Wall-clock time of the chain.
    """

    draws: np.ndarray
    log_posterior: np.ndarray
    stats: dict
    seconds: float

    @property
    def diverging(self) -> np.ndarray:
        """Divergent iterations (all False for samplers without divergences)."""
        return self.stats.get("diverging", np.zeros(len(self.log_posterior), dtype=bool))

    @property
    def n_steps(self) -> np.ndarray:
        """Log-density evaluations per iteration (1 for samplers without trajectories)."""
        return self.stats.get("n_steps", np.ones(len(self.log_posterior), dtype=int))


def chain_seeds(seed: int, n: int) -> list[int]:
    """Independent 32-bit seeds for ``n`` chains from one fit seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


class _NaturalMode(pints.LogPDF):
    """The log-posterior density of the natural parameters (without the coordinate Jacobian)."""

    def __init__(self, log_posterior):
        super().__init__()
        self._lp = log_posterior

    def n_parameters(self):
        return self._lp.n_parameters()

    def __call__(self, phi):
        return self._lp(phi) - self._lp.log_jacobian(phi)

    def evaluateS1(self, phi):
        value, gradient = self._lp.evaluateS1(phi)
        log_j, d_log_j = self._lp.log_jacobian(phi, gradient=True)
        return value - log_j, gradient - d_log_j


def find_map(log_posterior, *, seed: int, starts: int = 4, max_iterations: int = 2000,
             natural: bool = True) -> MapResult:
    """Maximum a posteriori estimate from several seeded starts.

    Parameters
    ----------
    log_posterior : LogPosterior
    seed : int
    starts : int
        Number of starting points: the prior median and ``starts - 1`` prior draws pulled halfway
        towards it.
    max_iterations : int
    natural : bool
        Maximise the density of the natural parameters (the usual MAP) rather than the density
        in the sampling coordinates.
    """
    rng = np.random.default_rng(seed)
    target = _NaturalMode(log_posterior) if natural else log_posterior
    centre = log_posterior.prior_centre()
    points = [centre] + [0.5 * (centre + d) for d in log_posterior.sample_prior(rng, starts - 1)]
    best, found, values = None, [], []
    for x0 in points:
        x, fx = _climb(target, x0, int(rng.integers(2**31)), max_iterations)
        found.append(x)
        values.append(fx)
        if np.isfinite(fx) and (best is None or fx > best[1]):
            best = (x, fx)
    if best is None:
        explain = getattr(log_posterior, "explain", None)
        reason = f"; at the prior centre, {explain(centre)}" if explain else \
            "; check priors and data"
        raise ExopkError(f"no MAP start reached a finite log-posterior{reason}")
    return MapResult(phi=best[0], log_posterior=best[1], starts=tuple(found), values=tuple(values))


def _climb(target, x0, seed, max_iterations):
    """One seeded iRprop- ascent of ``target`` from ``x0``: (optimum, value)."""
    np.random.seed(seed)
    controller = pints.OptimisationController(target, x0, method=pints.IRPropMin)
    controller.set_max_iterations(max_iterations)
    controller.set_function_tolerance(100, 1e-9)
    controller.set_log_to_screen(False)
    with np.errstate(all="ignore"):
        x, fx = controller.run()
    return x, float(fx)


def chain_starts(log_posterior, map_phi, chains: int, *, seed: int, jitter: float = 0.05,
                 max_iterations: int = 2000) -> list[np.ndarray]:
    """Starting points of MCMC chains: the mode in the sampling coordinates, jittered.

    The MAP maximises the density of the natural parameters; the sampler explores the density
    of the coordinates, which includes the Jacobian of the transformation. For a rate with a
    data-free log-normal prior the two modes sit ``sigma**2`` apart on the log scale, so the MAP
    can lie far in the sampled density's tail. The coordinate mode is found by iRprop- from
    ``map_phi``; each chain starts at it plus seeded normal noise of sd ``jitter``.

    Parameters
    ----------
    log_posterior : LogPosterior
    map_phi : ndarray
        Coordinates of the MAP (the ascent's start).
    chains : int
    seed : int
    jitter : float
        Sd of the starting points around the mode, in coordinate units.
    max_iterations : int
    """
    rng = np.random.default_rng([seed, 1])
    mode, value = _climb(log_posterior, np.asarray(map_phi, dtype=float),
                         int(rng.integers(2**31)), max_iterations)
    if not np.isfinite(value):
        mode = np.asarray(map_phi, dtype=float)
    return [mode + jitter * rng.normal(size=mode.size) for _ in range(chains)]


_POSTERIOR = None   # set in the parent before forking chain processes
AFTER_CHAINS = ("arviz",)   # what the diagnostics after sampling import (about 1 s)
_QUEUE = None       # progress queue of a chain process (or the reporter of sequential chains)


def _chain(args):
    chain, seed, x0, sigma0, method, settings, warmup, draws, thin, folder, every, resume = args
    lp = _POSTERIOR
    entry = SAMPLERS[method]
    total = warmup + draws * thin
    if resume is None:
        np.random.seed(seed)
        sampler = entry.pints_class(x0, sigma0)
        entry.configure(sampler, settings, warmup)
        recorder = entry.recorder(sampler)
        evaluate = lp.evaluateS1 if sampler.needs_sensitivities() else lp.__call__
        first, out, logp, stats, divergences, seconds = (
            0, np.empty((draws, len(x0))), np.empty(draws), {}, 0, 0.0)
    else:
        needs_gradient = entry.pints_class(x0, sigma0).needs_sensitivities()
        evaluate = lp.evaluateS1 if needs_gradient else lp.__call__
        recorder = entry.recorder.restore(resume.sampler, evaluate)
        sampler = recorder.sampler
        first, out, logp, stats, divergences, seconds = (
            resume.iteration, resume.draws, resume.log_posterior, resume.stats,
            resume.divergences, resume.seconds)
    start = time.perf_counter() - seconds
    saved = time.perf_counter()
    for iteration in range(first, total):
        if entry.on_iteration is not None:
            entry.on_iteration(sampler, settings, iteration, warmup)
        while True:
            reply = recorder.tell(evaluate(recorder.ask()))
            if reply is not None:
                break
        sample, value, _accepted = reply
        value = value[0] if isinstance(value, tuple) else value
        divergences += bool(recorder.last.get("diverging", False))
        k, kept = divmod(iteration - warmup, thin)
        if k >= 0 and kept == thin - 1:
            out[k], logp[k] = sample, value
            for name in entry.statistics:
                if name not in stats:
                    stats[name] = np.empty(draws, dtype=type(recorder.last[name]))
                stats[name][k] = recorder.last[name]
        if _QUEUE is not None and (iteration % 25 == 0 or iteration == total - 1):
            _QUEUE.put((chain, iteration + 1, total, float(value), divergences))
        if folder is not None and iteration < total - 1 \
                and time.perf_counter() - saved > every:
            save_chain_state(folder, ChainState(chain, iteration + 1, out, logp, stats,
                                                divergences, time.perf_counter() - start,
                                                recorder.snapshot()))
            saved = time.perf_counter()
    return ChainResult(out, logp, stats, time.perf_counter() - start)


def _init_worker(queue):
    """Chain processes leave signals to the parent and end when it ends."""
    global _QUEUE
    _QUEUE = queue
    # Ctrl-C reaches every process of the terminal's process group: the parent alone decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)   # the kernel ends us with the parent
    if os.getppid() != _PARENT_PID:                      # the parent died before prctl
        os._exit(1)
    one_blas_thread()                    # applied now, for the life of the process


_PR_SET_PDEATHSIG = 1
_PARENT_PID = os.getpid()


class _Terminated(Exception):
    """SIGTERM reached the parent while chains ran."""


def _raise_terminated(signal_number, frame):
    raise _Terminated()


def run_chains(log_posterior, x0s, *, seed: int, method: str = "nuts", warmup: int = 1000,
               draws: int = 1000, settings=None, processes: int | None = None,
               progress: bool = True, checkpoint: str | Path | None = None,
               resume: bool = False, checkpoint_seconds: float = CHECKPOINT_SECONDS,
               thin: int = 1) -> list[ChainResult]:
    """Run one MCMC chain per starting point, in parallel processes where possible.

    Parameters
    ----------
    log_posterior : LogPosterior
    x0s : sequence of ndarray
        Starting points, one per chain (unconstrained coordinates).
    seed : int
    method : str
        A key of :data:`exopk.inference.samplers.SAMPLERS` (``"nuts"``, ``"haario_bardenet"``).
    warmup, draws : int
        Warm-up iterations per chain (they adapt the sampler and are discarded) and draws kept
        per chain.
    settings : NutsSettings or HaarioBardenetSettings, optional
        The sampler's typed settings (default: its defaults).
    processes : int, optional
        Worker processes (default: one per chain, so that chains share the cores evenly and a
        chain that needs more steps than the others does not finish alone on an otherwise idle
        machine; one on a single-CPU machine). With 1, or where processes cannot be forked,
        chains run one after another in this process.
    progress : bool
        Show the chains' progress (iterations, log-posterior, divergences) on stderr: a bar on
        a terminal, a plain line every 15 s otherwise (:mod:`exopk.inference.progress`).
    checkpoint : path, optional
        Folder where every chain saves its state every few seconds
        (:mod:`exopk.inference.checkpoint`).
    resume : bool
        Continue each chain from its state in ``checkpoint`` (chains with none start afresh).
        The draws are those of an uninterrupted run with the same seed, bit for bit.
    checkpoint_seconds : float
        Wall time between a chain's checkpoints, in seconds: at most this much sampling is
        redone after an interruption. It does not change the draws.
    thin : int
        Keep every ``thin``-th iteration after the warm-up: a chain runs ``warmup + draws *
        thin`` iterations. With the same seed, the kept draws are those of an unthinned run at
        iterations ``thin - 1, 2 thin - 1, ...`` after the warm-up.

    Raises
    ------
    ExopkError
        For an unknown sampler, settings of another sampler, or too short a warm-up.
    FitInterrupted
        On SIGINT or SIGTERM: the chain processes are ended and the checkpoint (if any) holds
        the chains so far.
    """
    global _POSTERIOR, _QUEUE, _PARENT_PID
    if method not in SAMPLERS:
        raise ExopkError(f"unknown sampler '{method}'; known: {', '.join(SAMPLERS)}")
    entry = SAMPLERS[method]
    settings = entry.settings() if settings is None else settings
    if not isinstance(settings, entry.settings):
        raise ExopkError(f"sampler '{method}' takes {entry.settings.__name__}, got "
                         f"{type(settings).__name__}")
    try:
        entry.check_warmup(warmup)
    except ValueError as exc:
        raise ExopkError(str(exc)) from None
    if resume and checkpoint is None:
        raise ExopkError("resume needs the checkpoint folder of the interrupted run")
    check_checkpoint_seconds(checkpoint_seconds)
    if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
        raise ExopkError(f"thin = {thin!r}: expected an integer >= 1")
    chains = len(x0s)
    seeds = chain_seeds(seed, chains)
    sigma0 = np.full(len(x0s[0]), 0.1)
    processes = processes or (chains if (os.cpu_count() or 1) > 1 else 1)
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    states = load_chain_states(checkpoint, chains) if resume else [None] * chains
    jobs = [(c, seeds[c], np.asarray(x0s[c], dtype=float), sigma0, method, settings, warmup,
             draws, thin, None if checkpoint is None else Path(checkpoint), checkpoint_seconds,
             states[c])
            for c in range(chains)]
    _POSTERIOR, _PARENT_PID = log_posterior, os.getpid()
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:   # signal handlers can only be set there
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    reporter = _Reporter(chains, warmup + draws * thin) if progress else None
    try:
        if processes > 1 and can_fork:
            context = multiprocessing.get_context("fork")
            queue = context.Queue() if progress else None
            with context.Pool(processes, initializer=_init_worker, initargs=(queue,)) as pool:
                pending = pool.map_async(_chain, jobs)
                _import_in_background(AFTER_CHAINS)
                _report(queue, reporter, pending)
                return pending.get()
        _QUEUE = reporter
        with one_blas_thread():
            return [_chain(job) for job in jobs]
    except KeyboardInterrupt:
        raise FitInterrupted(signal.SIGINT, None if checkpoint is None else str(checkpoint)) \
            from None
    except _Terminated:
        raise FitInterrupted(signal.SIGTERM, None if checkpoint is None else str(checkpoint)) \
            from None
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
        _POSTERIOR = _QUEUE = None
        if reporter is not None:
            reporter.progress.close()


def _import_in_background(modules):
    """Import ``modules`` (those installed and not yet imported) in a thread of this process
    while the chain processes sample: the diagnostics after sampling need them, and the
    parent only waits meanwhile. Started after the workers are forked (a fork while another
    thread holds the import lock would leave the child unable to import)."""
    missing = [m for m in modules if m not in sys.modules and importlib.util.find_spec(m)]
    if missing:
        threading.Thread(target=lambda: [importlib.import_module(m) for m in missing],
                         daemon=True).start()


class _Reporter:
    """Chain messages ``(chain, done, total, log-posterior, divergences)`` shown by one
    :class:`~exopk.inference.progress.Progress` over all chains."""

    def __init__(self, chains: int, iterations: int):
        self.state = {}
        self.progress = Progress(chains * iterations, description="MCMC")

    def put(self, message) -> None:
        chain, done, total, logp, divergences = message
        self.state[chain] = (done, total, logp, divergences)
        self.progress.update(sum(s[0] for s in self.state.values()), chain_status(self.state))


def _report(queue, reporter, pending):
    """Pass the workers' progress messages to ``reporter`` until the chains finish."""
    while not pending.ready() or (queue is not None and not queue.empty()):
        if queue is None:
            pending.wait(0.5)
            continue
        try:
            reporter.put(queue.get(timeout=0.5))
        except queue_module.Empty:
            continue
