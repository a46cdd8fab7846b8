"""Threads and processes of a fit: BLAS on one thread (exopk.inference.threads), one process per
chain."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from exopk.inference import sampling
from exopk.inference.threads import one_blas_thread


def _blas_threads():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_limits_every_blas_library_and_restores_the_previous_limits():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with one_blas_thread():
            assert _blas_threads() == {1}
        assert _blas_threads() == before


class _CountingPosterior:
    """A standard normal density that records the BLAS threads seen at each evaluation."""

    def __init__(self):
        self.seen = set()

    def n_parameters(self):
        return 2

    def __call__(self, x):
        self.seen |= _blas_threads()
        return -0.5 * float(np.dot(x, x))

    def evaluateS1(self, x):
        return self(x), -np.asarray(x, dtype=float)


def test_sequential_chains_evaluate_with_one_blas_thread_and_restore_afterwards():
    posterior = _CountingPosterior()
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        sampling.run_chains(posterior, [np.zeros(2), np.ones(2)], seed=1, warmup=150, draws=5,
                            processes=1, progress=False)
        assert _blas_threads() == before
    assert posterior.seen == {1}


class _OneThreadOnly(_CountingPosterior):
    """Fails the chain when BLAS has more than one thread at an evaluation."""

    def __call__(self, x):
        threads = _blas_threads()
        if threads != {1}:
            raise RuntimeError(f"BLAS threads at an evaluation: {threads}")
        return super().__call__(x)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="chain processes are forked only where fork exists")
def test_chain_processes_evaluate_with_one_blas_thread():
    with threadpool_limits(limits=2, user_api="blas"):
        results = sampling.run_chains(_OneThreadOnly(), [np.zeros(2), np.ones(2)], seed=1,
                                      warmup=150, draws=5, processes=2, progress=False)
    assert len(results) == 2


class _PidRecorder(_CountingPosterior):
    """Writes the evaluating process's id into ``folder``."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def __call__(self, x):
        (self.folder / str(os.getpid())).touch()
        return super().__call__(x)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods()
                    or (os.cpu_count() or 1) < 2, reason="chain processes need fork and 2 CPUs")
def test_each_chain_runs_in_its_own_process_by_default(tmp_path):
    """Four chains on any number of CPUs: four processes share the cores, so a long chain does
    not run alone at the end while the others' cores idle."""
    sampling.run_chains(_PidRecorder(tmp_path), [np.zeros(2)] * 4, seed=1, warmup=150, draws=5,
                        progress=False)
    pids = {int(p.name) for p in tmp_path.iterdir()}
    assert len(pids) == 4 and os.getpid() not in pids
