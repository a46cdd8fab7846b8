"""The MCMC samplers a fit can use: one registry entry per sampler, typed settings.

Every entry of :data:`SAMPLERS` is a :class:`Sampler`: the PINTS class, its settings dataclass
(validated when constructed: a ``ValueError`` names the setting), the least warm-up it accepts,
how the settings are applied to a fresh PINTS sampler, and how its per-iteration statistics are
read. Whether a sampler is given gradients follows PINTS' own interface,
:meth:`pints.MCMCSampler.needs_sensitivities`.

To add a sampler:

1. write its settings as a frozen dataclass that validates itself in ``__post_init__``;
2. write ``configure(sampler, settings, warmup)`` and, if it has statistics beyond the
   log-density or state that does not pickle, a recorder with ``ask``, ``tell``, ``last``,
   ``snapshot()`` and ``restore(snapshot, evaluate)`` (see
   :class:`exopk.inference.pints_nuts.NutsRecorder`; a restored chain must draw the same random
   numbers as an uninterrupted one), keeping any read of PINTS internals in the recorder's module;
3. add one entry to :data:`SAMPLERS`.
"""

from __future__ import annotations

from collections.abc import Callable
import pickle
from dataclasses import dataclass, fields

import numpy as np
import pints

from exopk.inference.pints_nuts import STATISTICS as NUTS_STATISTICS
from exopk.inference.pints_nuts import NutsRecorder

__all__ = ["NutsSettings", "HaarioBardenetSettings", "Sampler", "SAMPLERS", "sampler_settings",
           "NUTS_MIN_WARMUP"]

NUTS_MIN_WARMUP = 150  # PINTS' dual-averaging adaptation needs this many


def _require(condition: bool, setting: str, message: str, value) -> None:
    if not condition:
        raise ValueError(f"sampler setting '{setting}' {message}, got {value!r}")


@dataclass(frozen=True)
class NutsSettings:
    """Settings of PINTS' No-U-Turn sampler (:class:`pints.NoUTurnMCMC`).

    Attributes
    ----------
    max_tree_depth : int
        Most trajectory doublings per iteration (at most ``2**max_tree_depth - 1`` leapfrog
        steps), >= 1.
    target_acceptance : float
        Mean acceptance statistic the step size is adapted to, in (0, 1).
    metric : {"diagonal", "dense"}
        Mass matrix adapted in warm-up.
    """

    max_tree_depth: int = 10
    target_acceptance: float = 0.8
    metric: str = "diagonal"

    def __post_init__(self):
        _require(isinstance(self.max_tree_depth, (int, np.integer))
                 and not isinstance(self.max_tree_depth, bool) and self.max_tree_depth >= 1,
                 "max_tree_depth", "must be an integer >= 1", self.max_tree_depth)
        _require(isinstance(self.target_acceptance, (int, float))
                 and not isinstance(self.target_acceptance, bool)
                 and 0 < self.target_acceptance < 1,
                 "target_acceptance", "must be a number between 0 and 1", self.target_acceptance)
        _require(self.metric in ("diagonal", "dense"), "metric", "must be 'diagonal' or 'dense'",
                 self.metric)


@dataclass(frozen=True)
class HaarioBardenetSettings:
    """Settings of PINTS' Haario-Bardenet adaptive covariance MCMC.

    Attributes
    ----------
    initial_phase_fraction : float
        Fraction of the warm-up run with the initial, fixed proposal covariance before the
        covariance adapts, in (0, 1).
    """

    initial_phase_fraction: float = 0.25

    def __post_init__(self):
        _require(isinstance(self.initial_phase_fraction, (int, float))
                 and 0 < self.initial_phase_fraction < 1, "initial_phase_fraction",
                 "must be a number between 0 and 1", self.initial_phase_fraction)

    def initial_phase_iterations(self, warmup: int) -> int:
        """Iterations with the fixed covariance (at least 1)."""
        return max(1, int(warmup * self.initial_phase_fraction))


class _Plain:
    """Ask/tell access to a sampler without statistics beyond the acceptance of the draw.

    For samplers that keep no coroutine (all their state pickles) and draw their random numbers
    in ``ask`` and ``tell``: a snapshot after an iteration is the sampler and numpy's global
    random state.
    """

    def __init__(self, sampler):
        self._sampler = sampler
        self.last = {}

    @property
    def sampler(self):
        """The PINTS sampler this recorder drives."""
        return self._sampler

    def ask(self):
        return self._sampler.ask()

    def tell(self, reply):
        result = self._sampler.tell(reply)
        if result is not None:
            self.last = {"acceptance_rate": float(bool(result[2]))}
        return result

    def snapshot(self) -> bytes:
        """The sampler after the latest iteration and the random state to go on with."""
        return pickle.dumps({"sampler": self._sampler, "rng": np.random.get_state(),
                             "last": self.last})

    @classmethod
    def restore(cls, snapshot: bytes, evaluate=None) -> "_Plain":
        """A recorder that continues where :meth:`snapshot` was taken (sets numpy's random state)."""
        state = pickle.loads(snapshot)
        np.random.set_state(state["rng"])
        recorder = cls(state["sampler"])
        recorder.last = state["last"]
        return recorder


def _configure_nuts(sampler, settings: NutsSettings, warmup: int):
    sampler.set_number_adaption_steps(warmup)
    sampler.set_max_tree_depth(settings.max_tree_depth)
    sampler.set_delta(settings.target_acceptance)
    sampler.set_use_dense_mass_matrix(settings.metric == "dense")


def _configure_haario_bardenet(sampler, settings: HaarioBardenetSettings, warmup: int):
    sampler.set_initial_phase(True)


def _haario_bardenet_iteration(sampler, settings: HaarioBardenetSettings, iteration: int,
                               warmup: int):
    if iteration == settings.initial_phase_iterations(warmup):
        sampler.set_initial_phase(False)


@dataclass(frozen=True)
class Sampler:
    """One registry entry: a PINTS sampler class and how exopk drives it.

    Attributes
    ----------
    name : str
    pints_class : type
        A :class:`pints.SingleChainMCMC`.
    settings : type
        Its settings dataclass.
    min_warmup : int
        Fewest warm-up iterations it accepts.
    configure : callable
        ``configure(sampler, settings, warmup)`` on a fresh sampler.
    recorder : type
        ``recorder(sampler)``: an object with ``ask``, ``tell``, ``last`` (the statistics of
        the latest iteration, a dict) and ``snapshot()``; ``recorder.restore(snapshot,
        evaluate)`` continues a chain from a snapshot.
    statistics : tuple of str
        Names of the per-draw statistics the recorder gives, besides ``lp``.
    on_iteration : callable or None
        ``on_iteration(sampler, settings, iteration, warmup)`` before each iteration.
    """

    name: str
    pints_class: type
    settings: type
    min_warmup: int
    configure: Callable
    recorder: type
    statistics: tuple
    on_iteration: Callable | None = None

    def check_warmup(self, warmup: int) -> None:
        """Raise ``ValueError`` if ``warmup`` is too short for this sampler."""
        if warmup < self.min_warmup:
            raise ValueError(f"sampler '{self.name}' needs at least {self.min_warmup} warm-up "
                             f"iterations to adapt; got {warmup}")


SAMPLERS = {
    "nuts": Sampler("nuts", pints.NoUTurnMCMC, NutsSettings, NUTS_MIN_WARMUP, _configure_nuts,
                    NutsRecorder, NUTS_STATISTICS),
    "haario_bardenet": Sampler("haario_bardenet", pints.HaarioBardenetACMC,
                               HaarioBardenetSettings, 1, _configure_haario_bardenet, _Plain,
                               ("acceptance_rate",), _haario_bardenet_iteration),
}


def sampler_settings(method: str, **values):
    """Typed settings of the sampler ``method`` from keyword values.

    Raises
    ------
    ValueError
        For an unknown sampler, a setting the sampler does not have, or an invalid value; the
        message names it.

    Examples
    --------
    >>> from exopk.inference.samplers import sampler_settings
    >>> sampler_settings("nuts", max_tree_depth=8)
    NutsSettings(max_tree_depth=8, target_acceptance=0.8, metric='diagonal')
    >>> sampler_settings("nuts", max_tree_depth=-1)
    Traceback (most recent call last):
    ...
    ValueError: sampler setting 'max_tree_depth' must be an integer >= 1, got -1
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler '{method}'; known: {', '.join(SAMPLERS)}")
    settings = SAMPLERS[method].settings
    known = {f.name for f in fields(settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"sampler '{method}' has no setting {', '.join(map(repr, unknown))}; "
                         f"its settings: {', '.join(sorted(known))}")
    return settings(**values)
