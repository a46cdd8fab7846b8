"""Forward solution of linear compartment models from their one-way structure.

EV models are mostly one-way: label taken up by an organ is degraded to free label, which is
cleared to a sink and never comes back. The compartments fall into three groups:

* **sinks**, which have no outflow;
* **leaves**, draining compartments whose every outflow goes to a sink (free label, say);
* the **core**, the other draining compartments (plasma and the organs that exchange with it).

Ordered core, leaves, sinks, the system matrix is block lower-triangular, and the leaf block is
diagonal::

    A = [[A_CC,  0,          0],
         [A_LC,  diag(a_L),  0],
         [A_SC,  A_SL,       0]]

Only ``A_CC = V diag(mu) V^-1`` is decomposed: 6 of the 12 compartments of ``m2_mps``, 10 of
the 18 of ``m5_intranasal``. :meth:`exopk.engine.linear.LinearSystem.decompose_core` does it
block by block where the core's nonzero transfers are one-way between groups
(:mod:`exopk.engine.triangular`): with organ release off, ``m2_mps``'s core is six blocks of one
compartment and needs no eigensolver; ``m5_intranasal``'s has one block of four that exchange
(plasma, liver sinusoid, brain endothelium and parenchyma). A core mode ``exp(mu t)`` reaches
leaf ``l`` as ``t exp[mu t, a_l t]`` (a divided difference of ``exp``) and a sink as its
integral; a dose into a leaf decays as ``exp(a_l t)``. Every such term is evaluated with the
stable divided differences of :mod:`exopk.engine.phi`, so a leaf rate equal or close to a core
eigenvalue (where the dense eigenvector matrix is defective or nearly so, as when an organ's
degradation rate is close to the free-label clearance) costs no accuracy. A step input (an
infusion) is the bolus response integrated once more.

The areas and first moments of a bolus response (:func:`forward_moments`) need no
decomposition at all: a solve with ``A_CC`` for the core, one division per leaf.

This path computes values only; sensitivities and steady-state doses take the dense path of
:mod:`exopk.engine.linear`, which also serves small batches (its per-call overhead is half this
path's; see ``STRUCTURED_BATCH`` there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exopk.engine.eigen import eigen_groups, eigendecompose
from exopk.engine.phi import integrated_divided_difference, integrated_factor
from exopk.engine.triangular import BlockOrder
from exopk.errors import SimulationError

__all__ = ["Blocks", "forward_moments", "solve_forward"]

_ORDER = {"bolus": 0, "step": 1}     # times a bolus response is integrated
# a core mode and a leaf rate closer than this (relative to the larger of their magnitudes and
# the inverse time span) are combined by the stable divided difference, not partial fractions
_CLOSE = 1e-2


@dataclass(frozen=True)
class Blocks:
    """The core, leaf and sink compartments of a linear system.

    Attributes
    ----------
    n_states : int
        Number of compartments.
    core, leaves, sinks : ndarray of int
        Compartment indices of each group (see the module docstring).

    Examples
    --------
    >>> from exopk.engine.structured import Blocks
    >>> blocks = Blocks.of(4, sources=[0, 1, 0, 2], targets=[1, 0, 2, 3])   # 0 <-> 1, 0 -> 2 -> 3
    >>> blocks.core.tolist(), blocks.leaves.tolist(), blocks.sinks.tolist()
    ([0, 1], [2], [3])
    """

    n_states: int
    core: np.ndarray
    leaves: np.ndarray
    sinks: np.ndarray

    @classmethod
    def of(cls, n_states: int, sources, targets) -> "Blocks":
        """Split the compartments of a system with the given transfers."""
        sources, targets = np.asarray(sources, dtype=int), np.asarray(targets, dtype=int)
        draining = np.zeros(n_states, dtype=bool)
        draining[sources] = True
        to_draining = np.zeros(n_states, dtype=bool)
        to_draining[sources[draining[targets]]] = True
        leaf = draining & ~to_draining
        return cls(n_states, np.flatnonzero(draining & ~leaf), np.flatnonzero(leaf),
                   np.flatnonzero(~draining))

    @property
    def useful(self) -> bool:
        """True when something is left out of the decomposition (a leaf or a sink)."""
        return len(self.core) < self.n_states

    def block(self, A_flat, rows, columns):
        """``A[:, rows][:, :, columns]`` from matrices flattened to (batch, n * n)."""
        index = (rows[:, None] * self.n_states + columns[None, :]).ravel()
        return A_flat[:, index].reshape(A_flat.shape[0], len(rows), len(columns))


def solve_forward(blocks: Blocks, A: np.ndarray, inputs, times: np.ndarray, condition_limit,
                  core=None):
    """Amounts at ``times`` after bolus and step inputs, without decomposing leaves and sinks.

    Parameters
    ----------
    blocks : Blocks
    A : ndarray, shape (batch, n, n)
        System matrices.
    inputs : list of LinearInput
        Of kind ``bolus`` or ``step`` only.
    times : ndarray, shape (n_times,)
    condition_limit : float
        Members whose core eigenvector matrix has a larger 1-norm condition number are left
        unsolved (for the dense path to handle).
    core : tuple, optional
        :func:`~exopk.engine.eigen.eigendecompose` of the core blocks ``A_CC``, when already at
        hand.

    Returns
    -------
    amounts : ndarray, shape (batch, n_times, n)
        NaN for the members not solved.
    solved : ndarray of bool, shape (batch,)
    """
    batch, n = A.shape[0], blocks.n_states
    A_flat = A.reshape(batch, n * n)
    if len(blocks.core):
        lam, V, V_inv, condition = core if core is not None else \
            eigendecompose(blocks.block(A_flat, blocks.core, blocks.core))
        solved = condition < condition_limit
        groups = eigen_groups(lam, V, V_inv, solved)
    else:
        solved = np.ones(batch, dtype=bool)
        groups = [(None, np.zeros((batch, 0)), np.zeros((batch, 0, 0)), np.zeros((batch, 0, 0)))]
    if len(groups) == 1 and groups[0][0] is None:
        # the usual case: every member in one arithmetic, no copies
        return _respond(blocks, A_flat, *groups[0][1:], [(item, item.vector) for item in inputs],
                        times), solved
    amounts = np.full((batch, len(times), n), np.nan)
    for members, lam_g, V_g, V_inv_g in groups:
        rows = np.flatnonzero(members)
        amounts[rows] = _respond(blocks, A_flat[rows], lam_g, V_g, V_inv_g,
                                 [(item, item.vector[rows]) for item in inputs], times)
    return amounts, solved


def forward_moments(blocks: Blocks, A: np.ndarray, vector: np.ndarray, *, fill: float = np.nan,
                    core_order: BlockOrder | None = None):
    """Areas and first time moments of every compartment's response to a bolus, values only.

    On the core, ``int x_C dt = -A_CC^-1 b_C`` and ``int t x_C dt = A_CC^-2 b_C``. A leaf
    (``x_l' = A_lC x_C + a_l x_l``) then has area ``-(b_l + A_lC int x_C dt) / a_l`` and first
    moment ``-(int x_l dt + A_lC int t x_C dt) / a_l``. Sinks, which never drain, get ``fill``.
    The same numbers as :func:`exopk.engine.summaries.moments` (to rounding), from a solve with
    the core block instead of the inverse of every draining compartment's block, member by
    member in compiled code (:func:`exopk.engine.moments_kernel.core_and_leaf_moments`).

    Parameters
    ----------
    blocks : Blocks
    A : ndarray, shape (batch, n, n)
    vector : ndarray, shape (batch, n)
        The bolus.
    fill : float
    core_order : BlockOrder, optional
        The strongly connected blocks of the core's transfers
        (:meth:`exopk.engine.linear.LinearSystem.core_order`); with more than one, the solves
        go block by block.

    Returns
    -------
    area, first_moment : ndarray, shape (batch, n)
    """
    from exopk.engine.moments_kernel import core_and_leaf_moments   # numba: on first use

    batch, n = A.shape[0], blocks.n_states
    A_flat = np.ascontiguousarray(A.reshape(batch, n * n))
    C, L = blocks.core, blocks.leaves
    if not (A_flat[:, L * n + L] < 0).all():
        raise SimulationError("the response has no finite area: some compartment never drains")
    if core_order is None or core_order.trivial or not len(C):
        core, starts, fed = C, np.array([0, len(C)]), np.zeros(1, dtype=bool)
    else:
        core = C[np.concatenate(core_order.blocks)]
        starts = np.cumsum([0] + [len(block) for block in core_order.blocks])
        fed = np.isin(np.arange(len(core_order.blocks)), list(core_order.fed))
    area, moment = np.full((2, batch, n), fill)
    singular = core_and_leaf_moments(A_flat, n, np.ascontiguousarray(vector, dtype=float), core,
                                     starts, fed, L, area, moment)
    if singular >= 0:
        raise SimulationError("the response has no finite area: some compartment never drains")
    return area, moment


def _respond(blocks, A_flat, lam, V, V_inv, inputs, times):
    """Amounts of members that share one arithmetic (real or complex core spectra).

    Every amount is a combination of a few functions of time per member: ``F_o`` (the response
    integrated ``o`` times, ``o`` 0 for a bolus and 1 for a step) and ``F_(o+1)`` (what reaches
    sinks) at each core mode ``mu``, at each distinct leaf rate, and at 0 (doses into sinks).
    They form two bases (batch, time, N), with weights (batch, compartment, N) and (batch, sink,
    N); two products give the amounts.
    """
    C, L, S = blocks.core, blocks.leaves, blocks.sinks
    n_core = len(C)
    a_L = A_flat[:, L * blocks.n_states + L]                                   # (B, l)
    rate_of_leaf, leaf_rates = _distinct_columns(a_L)                          # (l,), (B, u)
    A_SL = blocks.block(A_flat, S, L)                                           # (B, s, l)
    G_L = blocks.block(A_flat, L, C) @ V                                        # (B, l, c)
    G_S = blocks.block(A_flat, S, C) @ V                                        # (B, s, c)
    n_rates = leaf_rates.shape[1]
    on_rate = rate_of_leaf[:, None] == np.arange(n_rates)                       # (l, u)
    rates = slice(n_core, n_core + n_rates)
    x = None
    for item, vector in inputs:
        order = _ORDER[item.kind]
        tau = (times - item.time)[None, :, None]
        # basis functions at the nodes mu (c), distinct leaf rates (u) and 0 (doses into sinks)
        nodes = np.concatenate([lam, leaf_rates.astype(lam.dtype),
                                np.zeros((len(lam), 1), dtype=lam.dtype)], axis=1)[:, None, :]
        held = integrated_factor(order, nodes, tau)                              # (B, T, N)
        passed = integrated_factor(order + 1, nodes, tau)                        # to sinks
        held_weight = np.zeros((A_flat.shape[0], blocks.n_states, nodes.shape[2]), held.dtype)
        passed_weight = np.zeros((A_flat.shape[0], len(S), nodes.shape[2]), held.dtype)  # sinks
        modes = (V_inv @ vector[:, C, None])[..., 0]                              # (B, c)
        fractions = _PartialFractions(lam, a_L, G_L, modes, float(tau.max()))
        on_leaf_rate = vector[:, L] - fractions.total                             # (B, l)
        held_weight[:, C, :n_core] = V * modes[:, None, :]
        held_weight[:, L, :n_core] = fractions.coefficient
        held_weight[:, L, rates] = on_leaf_rate[:, :, None] * on_rate
        held_weight[:, S, -1] = vector[:, S]
        passed_weight[:, :, :n_core] = G_S * modes[:, None, :] + A_SL @ fractions.coefficient
        passed_weight[:, :, rates] = (A_SL * on_leaf_rate[:, None, :]) @ on_rate
        part = (held @ held_weight.transpose(0, 2, 1)).real
        part[:, :, S] += (passed @ passed_weight.transpose(0, 2, 1)).real
        if fractions.close is not None:
            fractions.add_close_pairs(part, order, tau[0, :, 0], L, S, A_SL)
        x = part if x is None else x + part
    return x


def _distinct_columns(a):
    """Columns of ``a`` (batch, l) equal in every member share one entry: the index of each
    column's representative (l,) and the representatives (batch, u)."""
    index = np.empty(a.shape[1], dtype=int)
    kept = []
    for j in range(a.shape[1]):
        for u, k in enumerate(kept):
            if np.array_equal(a[:, j], a[:, k]):
                index[j] = u
                break
        else:
            index[j] = len(kept)
            kept.append(j)
    return index, a[:, kept]


class _PartialFractions:
    """What leaves hold when fed by core modes: leaf ``l`` holds ``sum_m w[l, m] D(mu_m, a_l)``,
    ``D`` the divided difference at ``mu_m, a_l`` of ``F = integrated_factor(order)``.

    Where ``mu_m`` and ``a_l`` are well apart, ``D = (F(mu_m) - F(a_l)) / (mu_m - a_l)``: partial
    fractions, a weight ``coefficient[l, m]`` on ``F(mu_m)`` and ``-total[l]`` on ``F(a_l)``. The
    few close pairs, where that difference would cancel, are left out of both and evaluated
    with the stable divided difference of :mod:`exopk.engine.phi` (:meth:`add_close_pairs`).
    """

    def __init__(self, lam, a_L, G_L, modes, time_span):
        from exopk.engine.fractions_kernel import partial_fractions   # numba: imported on first use

        weight = np.empty(G_L.shape, np.result_type(G_L, modes))                # (B, l, c)
        separation = np.empty(G_L.shape, np.result_type(lam, a_L))
        close = np.empty(G_L.shape, dtype=bool)
        # _CLOSE times the larger of |mu|, |a| and 1 / time_span
        any_close = partial_fractions(lam, a_L, G_L, modes, _CLOSE, 1.0 / max(time_span, 1e-300),
                                      weight, separation, close)
        self.coefficient = weight / separation                                 # 0 where close
        self.total = self.coefficient.sum(axis=2)                              # (B, l)
        self.close = np.nonzero(close) if any_close else None
        self.lam, self.a_L, self.G_L, self.modes = lam, a_L, G_L, modes

    def add_close_pairs(self, x, order, tau, L, S, A_SL):
        """Add the close pairs' share to the amounts ``x`` (B, T, n): in the leaves, and what
        those leaves passed on to sinks."""
        b, leaf, mode = self.close
        nodes = (self.lam[b, mode][:, None], self.a_L[b, leaf][:, None], tau[None, :])
        weight = (self.G_L[b, leaf, mode] * self.modes[b, mode])[:, None]
        held = (integrated_divided_difference(order, *nodes) * weight).real       # (k, T)
        time = np.arange(len(tau))
        np.add.at(x, (b[:, None], time[None, :], L[leaf][:, None]), held)
        if len(S):
            passed = (integrated_divided_difference(order + 1, *nodes) * weight).real
            to_sinks = passed[:, :, None] * A_SL[b, :, leaf][:, None, :]             # (k, T, s)
            np.add.at(x, (b[:, None, None], time[None, :, None], S[None, None, :]), to_sinks)
