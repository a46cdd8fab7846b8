"""Timing helper shared by the benchmark scripts."""

import time

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
