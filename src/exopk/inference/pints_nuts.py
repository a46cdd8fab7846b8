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

Checkpoints (:meth:`NutsRecorder.snapshot`, :meth:`NutsRecorder.restore`) continue a chain with
the same random numbers as an uninterrupted run. When the coroutine ends an iteration, PINTS'
``tell`` at once asks it for the next trajectory's first point, which draws the next momentum
from numpy's global generator; the snapshot keeps the generator state from just before that draw.
A restored sampler is PINTS' sampler without its coroutine, which is rebuilt at the current point
(as ``pints.NoUTurnMCMC.load_state`` does): it asks for the log-density there once more, then
draws the same momentum the uninterrupted run drew.
"""

from __future__ import annotations

import pickle

import numpy as np
import pints
from pints._mcmc._nuts import nuts_sampler

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
        self._boundary_rng = None
        self.last = {}

    @property
    def sampler(self):
        """The PINTS sampler this recorder drives."""
        return self._sampler

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

    def snapshot(self) -> bytes:
        """The sampler at the end of the latest iteration and the random state to go on with."""
        if self._boundary_rng is None:
            raise RuntimeError("no iteration has ended yet: nothing to snapshot")
        tap = self._sampler._nuts
        self._sampler._nuts = None      # a running coroutine cannot be pickled
        try:
            return pickle.dumps({"sampler": self._sampler, "rng": self._boundary_rng,
                                 "last": self.last})
        finally:
            self._sampler._nuts = tap

    @classmethod
    def restore(cls, snapshot: bytes, evaluate) -> "NutsRecorder":
        """A recorder that continues where :meth:`snapshot` was taken.

        Parameters
        ----------
        snapshot : bytes
            From :meth:`snapshot`.
        evaluate : callable
            The log-density with its gradient (``evaluateS1``), asked once at the current point.

        Notes
        -----
        Sets numpy's global random state (PINTS draws from it).
        """
        state = pickle.loads(snapshot)
        sampler = state["sampler"]
        np.random.set_state(state["rng"])
        coroutine = nuts_sampler(sampler._current, sampler._adaptor, sampler._sigma0,
                                 sampler._hamiltonian_threshold, sampler._max_tree_depth)
        sampler._nuts = coroutine
        sampler._next = next(coroutine)          # the current point
        sampler._running = True
        sampler._ready_for_tell = False
        recorder = cls(sampler)
        if recorder.tell(evaluate(recorder.ask())) is not None:
            raise RuntimeError("a restored NUTS sampler ended an iteration on its first step")
        recorder.last = state["last"]
        return recorder

    def _record(self, value, frame_locals):
        self._boundary_rng = np.random.get_state()   # before the next momentum is drawn
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
