"""Per-iteration statistics of PINTS' No-U-Turn sampler: every read of PINTS internals in one place.

:class:`pints.NoUTurnMCMC` (PINTS 0.6.1) returns only the draw, its log-density and gradient from
``tell``; what a sampler's statistics need (the mean acceptance statistic of the iteration's tree,
its depth, the Hamiltonian, the step size) lives in the coroutine that builds the trees and in the
dual-averaging adaptor. :class:`NutsRecorder` reads them without changing a single random number:

* it wraps the sampler's coroutine (``sampler._nuts``) in a proxy that forwards every ``send`` and
  ``next`` unchanged and, when the coroutine ends an iteration (it yields a tuple
  ``(theta, L, grad_L, alpha / n_alpha, n_alpha, divergent, adaptor)``), reads the coroutine's
  locals ``j`` (the tree depth reached) and ``hamiltonian0`` (``L - K(r0)`` at the start of the
  trajectory, PINTS' sign);
* the step size is ``sampler._adaptor.get_epsilon()`` after the iteration (constant after warm-up).

PINTS' acceptance statistic ``alpha / n_alpha`` counts the trajectory's initial point as one more
accepted leaf (``alpha = 1``, ``n_alpha = 1`` before the first leapfrog step). The statistic
recorded here is the one Stan and ArviZ mean by ``acceptance_rate``: the mean over the
trajectory's leapfrog steps of ``min(1, exp(H0 - H))``, that is ``(alpha - 1) / (n_alpha - 1)``.

PINTS' own ``sampler._mcmc_acceptance`` is not a per-iteration value: without a logger it is
updated as ``m_k = (k m_{k-1} + a_k) / (k + 1)`` (``k`` iterations so far, ``m_0 = 0``), so
``a_k = (k + 1) m_k - k m_{k-1}``; the tests check the recorded statistics against that identity
on a chain run through PINTS alone.

``energy`` is the Hamiltonian ``-log p(theta) + K(r)`` (with ``K`` the kinetic energy under the
adapted mass matrix) at the start of the iteration's trajectory: the previous draw with the freshly
drawn momentum. PINTS keeps no momentum for the selected point; along a trajectory the Hamiltonian
changes by the leapfrog integration error only (a divergence aside), so the energy differences
between iterations that ``arviz.bfmi`` uses are those of the momentum resampling.
"""

from __future__ import annotations

import numpy as np
import pints

__all__ = ["PINTS_VERSION", "NutsRecorder", "STATISTICS"]

PINTS_VERSION = "0.6.1"   # the version whose internals this module reads (tests pin it)

STATISTICS = ("acceptance_rate", "tree_depth", "n_steps", "energy", "step_size", "diverging")


class _Tap:
    """Forwards a generator; keeps the locals of the outermost frame when an iteration ends."""

    def __init__(self, generator, on_iteration):
        self._generator = generator
        self._on_iteration = on_iteration

    def _seen(self, value):
        if isinstance(value, tuple):
            self._on_iteration(value, self._generator.gi_frame.f_locals)
        return value

    def send(self, value):
        return self._seen(self._generator.send(value))

    def __next__(self):
        return self._seen(next(self._generator))

    def __iter__(self):
        return self


class NutsRecorder:
    """Ask/tell access to a :class:`pints.NoUTurnMCMC` with per-iteration statistics.

    Parameters
    ----------
    sampler : pints.NoUTurnMCMC
        A sampler that has not been asked yet.

    Attributes
    ----------
    last : dict
        Statistics of the latest completed iteration: ``acceptance_rate`` (mean Metropolis
        acceptance statistic over the leapfrog steps), ``tree_depth`` (doublings),
        ``n_steps`` (leapfrog steps), ``energy`` (Hamiltonian, log-density units),
        ``step_size`` (in sampling coordinates) and ``diverging``.
    """

    def __init__(self, sampler: pints.NoUTurnMCMC):
        if not isinstance(sampler, pints.NoUTurnMCMC):
            raise TypeError(f"NutsRecorder reads pints.NoUTurnMCMC, got {type(sampler).__name__}")
        self._sampler = sampler
        self._tapped = False
        self.last = {}

    def ask(self) -> np.ndarray:
        x = self._sampler.ask()
        if not self._tapped:
            self._sampler._nuts = _Tap(self._sampler._nuts, self._record)
            self._tapped = True
        return x

    def tell(self, reply):
        result = self._sampler.tell(reply)
        if result is not None:
            self.last["step_size"] = float(self._sampler._adaptor.get_epsilon())
        return result

    def _record(self, value, frame_locals):
        _theta, _L, _grad, _ratio, n_alpha, divergent, _adaptor = value
        state = frame_locals["state"]
        leaves = n_alpha - 1
        self.last = {
            "acceptance_rate": float((state.alpha - 1.0) / leaves) if leaves > 0 else np.nan,
            "tree_depth": int(frame_locals["j"]),
            "n_steps": int(leaves),
            "energy": float(-frame_locals["hamiltonian0"]),
            "diverging": bool(divergent),
        }
