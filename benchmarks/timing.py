"""Timing helpers shared by the benchmark scripts."""

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


def median_seconds(function, repeats):
    """Median wall-clock seconds of ``repeats`` calls of ``function`` after one warm-up call."""
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


@dataclass(frozen=True)
class Timing:
    """Seconds per call: medians over repeats and their spread (min, max).

    Each repeat calls the function once for every item of a pool and divides by the pool size,
    so no call sees the arguments of the call before it (no cache hits).
    """

    cpu: float
    cpu_spread: tuple[float, float]
    wall: float
    wall_spread: tuple[float, float]

    def __str__(self):
        return (f"{self.cpu * 1e6:10.1f} [{self.cpu_spread[0] * 1e6:.0f}-{self.cpu_spread[1] * 1e6:.0f}]"
                f" {self.wall * 1e6:10.1f}")

    def as_dict(self):
        return {"cpu_us": round(self.cpu * 1e6, 2), "wall_us": round(self.wall * 1e6, 2),
                "cpu_us_range": [round(s * 1e6, 2) for s in self.cpu_spread],
                "wall_us_range": [round(s * 1e6, 2) for s in self.wall_spread]}


def cycle_seconds(function, pool, repeats) -> Timing:
    """CPU and wall seconds per call of ``function(item)``, cycling through ``pool``.

    One warm-up pass, then ``repeats`` passes over the whole pool.
    """
    for item in pool:
        function(item)
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for item in pool:
            function(item)
        cpu.append((time.process_time() - c0) / len(pool))
        wall.append((time.perf_counter() - w0) / len(pool))
    return Timing(float(np.median(cpu)), (min(cpu), max(cpu)),
                  float(np.median(wall)), (min(wall), max(wall)))


@contextmanager
def one_blas_thread():
    """Pin BLAS/OpenMP thread pools to one thread (the same for every timed candidate)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield
