"""Exact solution of linear compartment models, x' = A x + u, with parameter sensitivities.

``A`` is assembled from first-order transfers: transfer ``j`` moves ``rate_j * x[source_j]`` per
unit time from ``source_j`` to ``target_j``. Doses enter as boluses (jumps of the state) and as
steps (a constant input rate from a given time on; a zero-order infusion is a step up at its
start and a step down at its end). Responses add up (superposition).

Three solution paths give the same numbers (to the accuracy stated below):

* **structured** (values only; the default for batches of ``STRUCTURED_BATCH`` sets or more
  when no sensitivities are asked, and for sets the eigen path cannot decompose): only the core
  of compartments that exchange is decomposed (block by block where it is one-way between
  groups, :mod:`exopk.engine.triangular`), compartments that only drain to sinks and the
  sinks themselves follow from stable divided differences (:mod:`exopk.engine.structured`).
  The PK summaries of such batches (:class:`exopk.observation.Evaluation`) share its core
  decomposition (:meth:`LinearSystem.decompose_core`);
* **eigen** (the default with sensitivities, vectorised over a batch of parameter sets):
  ``A = V diag(lam) V^-1``; responses and exact sensitivities use the stable functions of
  :mod:`exopk.engine.phi` (Daleckii-Krein formula for the derivative of a matrix function). In a
  batch, members with a real spectrum are solved in real arithmetic even when others have
  complex pairs, and sensitivities are formed ``CHUNK`` members at a time (work arrays that stay
  in cache);
* **expm** (robust fallback, one parameter set at a time): the state and its sensitivities form
  a larger linear system that is propagated between event and observation times with
  :func:`scipy.linalg.expm`. It is used where the eigenvector matrix is ill-conditioned
  (1-norm condition number above ``CONDITION_LIMIT``), for example with defective or nearly
  defective repeated eigenvalues: the eigen path loses about ``condition * 4e-17`` of the
  largest amount, so the limit 1e4 keeps values within about 1e-12 of the largest amount
  (0.1-0.2 % of prior draws of the shipped MPS models exceed it). A compartment holding a small
  share of the dose loses more relative to its own size (up to 7e-10 in prior draws of
  ``m5_intranasal``), and ``expm`` itself is 3e-9 off when two rates are 1e-9 apart; where the
  structured path applies it solves both cases to 1e-12.

A steady-state bolus (the state before the dose is the periodic steady state of the same dose
repeated every ``interval``) is turned into an ordinary bolus of the pre-dose state; sinks, which
never reach a steady state, start from zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from exopk.engine.eigen import eigen_groups, eigendecompose
from exopk.engine.phi import (bolus_divided_differences, bolus_factor, step_divided_difference,
                              step_factor)
from exopk.engine.structured import Blocks, solve_forward
from exopk.engine.triangular import BlockOrder, block_triangular_eigendecompose
from exopk.errors import IllConditionedWarning, SimulationError

__all__ = ["LinearInput", "LinearSystem", "CONDITION_LIMIT", "STRUCTURED_BATCH"]

CONDITION_LIMIT = 1e4
# batches at least this large take the structured path for values: its per-call overhead is
# twice the dense path's, and it is faster from about 32 parameter sets (m2_mps, m5_intranasal)
STRUCTURED_BATCH = 32
CHUNK = 16    # parameter sets solved together with gradients
# members x times x n^2 x parameters (multiply-adds of the sensitivities) up to which the
# compiled response to one bolus beats numpy's batched products (0.8-0.9x their time at a few
# thousand, even at 30-60 thousand, 1.2-1.3x at 120-470 thousand; m2_mps, m5_intranasal)
COMPILED_RESPONSE_WORK = 40_000
SCATTER_BATCH = 16    # batches from this size form only the nonzero entries of A
PATHS = ("auto", "structured", "dense", "eigen", "expm")
KEPT_PATTERNS = 16    # zero patterns of the core blocks kept per system


def _read_only(arrays):
    """``arrays`` (a tuple), each made read-only."""
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _kept(cache: dict, key, make):
    """``cache[key]``, made by ``make()`` on first use; the cache is emptied when it holds
    ``KEPT_PATTERNS`` entries (a model has few patterns; a stream of new ones must not grow it)."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= KEPT_PATTERNS:
            cache.clear()
        value = cache[key] = make()
    return value


@dataclass(frozen=True)
class LinearInput:
    """One dose event of a linear system.

    Attributes
    ----------
    kind : {"bolus", "step", "steady_state_bolus"}
        A jump of the state, a constant input rate from ``time`` on, or a bolus given to a system
        at the periodic steady state of that bolus repeated every ``interval``.
    time : float
        When it happens (model time unit).
    vector : ndarray, shape (batch, n_states)
        Amount per state (bolus) or amount per unit time (step; negative to end an infusion).
    jacobian : ndarray, shape (batch, n_states, n_parameters), optional
        Derivative of ``vector`` with respect to the parameters (dose split fractions).
    interval : float, optional
        Dosing interval of a steady-state bolus.
    carried : bool
        True for the pre-dose steady state that a steady-state bolus stands for.
    """

    kind: str
    time: float
    vector: np.ndarray
    jacobian: np.ndarray | None = None
    interval: float | None = None
    carried: bool = False


class LinearSystem:
    """The structure of a linear compartment model: which transfer moves what where.

    Parameters
    ----------
    n_states : int
        Number of compartments, sinks included.
    sources, targets : sequence of int
        Source and target compartment index of each first-order transfer.
    """

    def __init__(self, n_states: int, sources, targets):
        self.n_states = n_states
        self.sources = np.asarray(sources, dtype=int)
        self.targets = np.asarray(targets, dtype=int)
        n_transfers = len(self.sources)
        structure = np.zeros((n_transfers, n_states, n_states))
        structure[np.arange(n_transfers), self.sources, self.sources] -= 1.0
        structure[np.arange(n_transfers), self.targets, self.sources] += 1.0
        self._structure = structure.reshape(n_transfers, n_states * n_states)
        # the nonzero entries of A only: outflows on the diagonal, inflows off it (matrix)
        drained = np.unique(self.sources)
        self._diagonal_entries = drained * (n_states + 1)
        self._outflows = -structure[:, drained, drained]                     # (m, drained)
        flows = sorted(set(zip(self.targets.tolist(), self.sources.tolist())))
        self._inflow_entries = np.array([t * n_states + s for t, s in flows], dtype=int)
        self._inflows = np.stack([structure[:, t, s] for t, s in flows], axis=1) if flows \
            else np.zeros((n_transfers, 0))
        incidence = np.zeros((n_states, n_transfers))
        incidence[self.targets, np.arange(n_transfers)] += 1.0
        incidence[self.sources, np.arange(n_transfers)] -= 1.0
        self._incidence = incidence
        has_outflow = np.zeros(n_states, dtype=bool)
        has_outflow[self.sources] = True
        self.draining = has_outflow
        # the draining block: its matrix from the rates, and each transfer's source and target
        # as positions in it (-1 for a sink; every source drains)
        N = np.flatnonzero(has_outflow)
        self._draining_index = N
        self._structure_draining = structure[:, N[:, None], N[None, :]].reshape(n_transfers,
                                                                            len(N) ** 2)
        position = np.full(n_states, -1)
        position[N] = np.arange(len(N))
        self.draining_transfers = (position[self.sources], position[self.targets])
        self.blocks = Blocks.of(n_states, self.sources, self.targets)
        self._last_matrix = None
        self._last_decomposition = None
        self._last_core = None
        self._last_order = None
        self._last_similar = None
        self._core_orders = {}

    def _kept_for(self, slot: str, A: np.ndarray, make):
        """``make()`` for the system matrices ``A``, the last result kept in attribute ``slot``.

        Matrices that :meth:`matrix` made (read-only) are known again by identity; others by
        their bytes.
        """
        kept = getattr(self, slot)
        made_here = self._last_matrix is not None and A is self._last_matrix[1]
        if kept is not None and kept[0] is A and kept[1] is None:
            return kept[2]
        key = None if made_here else A.tobytes()
        if kept is None or key is None or kept[1] != key:
            kept = (A, key, make())
            setattr(self, slot, kept)
        return kept[2]

    def decompose(self, A: np.ndarray):
        """Eigendecomposition of each member of ``A`` (:func:`exopk.engine.eigen.eigendecompose`).

        The last result is kept (read-only) and reused for the same matrices: predictions of
        values, areas and half-lives for one parameter set share one decomposition.
        """
        return self._kept_for("_last_decomposition", A, lambda: _read_only(eigendecompose(A)))

    def decompose_core(self, A: np.ndarray):
        """Eigendecomposition of each member's core block ``A_CC``
        (:mod:`exopk.engine.structured`), kept like :meth:`decompose`: the structured values
        and the modal summaries of one batch share it.

        Where the transfers that are nonzero somewhere in the batch leave the core in more than
        one strongly connected block, the blocks are decomposed one by one
        (:mod:`exopk.engine.triangular`): a one-way core needs no eigensolver at all.
        """
        def make():
            n = self.n_states
            A_CC = self.blocks.block(A.reshape(-1, n * n), self.blocks.core, self.blocks.core)
            order = self.core_order(A)
            return _read_only(eigendecompose(A_CC) if order.trivial else
                              block_triangular_eigendecompose(A_CC, order))
        return self._kept_for("_last_core", A, make)

    def core_order(self, A: np.ndarray) -> BlockOrder:
        """The strongly connected blocks of the core's transfers that are nonzero somewhere in
        the batch of system matrices ``A`` (batch, n, n), in core positions; kept per pattern
        (a model has few: one per set of rates fixed at zero)."""
        def make():
            C = self.blocks.core
            flows = A.any(axis=0)[C[:, None], C[None, :]]
            return _kept(self._core_orders, flows.tobytes(), lambda: BlockOrder.of(flows))
        return self._kept_for("_last_order", A, make)

    def whole_batch_eigen(self, A: np.ndarray, rate_jacobian: np.ndarray):
        """The decomposition of every member of ``A`` with the similarity transforms of the
        rate derivatives ``rate_jacobian`` (batch, n_transfers, n_parameters), as :meth:`solve`
        and :meth:`bolus_response_at` use it when they solve the whole batch at once with
        sensitivities: every member well conditioned, one arithmetic for all (real spectra, or
        a complex pair in every member), at most ``CHUNK`` members. None where they would take
        another route.

        Its ``respond(inputs, times, True)`` and ``propagate(vector, jacobian, tau)`` give
        their amounts and sensitivities, and ``lam``, ``V``, ``V_inv`` the decomposition (the
        kept one of :meth:`decompose`; the similarity transforms are not kept).
        """
        if A.shape[0] > CHUNK:
            return None
        lam, V, V_inv, condition = self.decompose(A)
        good = condition < CONDITION_LIMIT
        if not good.all() or eigen_groups(lam, V, V_inv, good)[0][0] is not None:
            return None
        return _Eigen(lam, V, V_inv, _similar_derivative(V, V_inv, rate_jacobian, self))

    def similar_derivative(self, V, V_inv, rate_jacobian):
        """``V^-1 dA_p V`` for every parameter (see :func:`_similar_derivative`), kept like
        :meth:`decompose`."""
        key = (V.tobytes(), rate_jacobian.tobytes())
        if self._last_similar is None or self._last_similar[0] != key:
            G = _similar_derivative(V, V_inv, rate_jacobian, self)
            G.flags.writeable = False
            self._last_similar = (key, G)
        return self._last_similar[1]

    def matrix(self, rates: np.ndarray) -> np.ndarray:
        """System matrices ``A`` of shape (batch, n, n) for rates of shape (batch, n_transfers).

        Below ``SCATTER_BATCH`` sets one product with the (n_transfers, n^2) structure;
        from there on only the nonzero entries are formed and placed (the same sums in the
        same order as the product for the same batch). The last result is kept (read-only)
        and reused for the same rates: the time course and the summaries of one evaluation
        share it.
        """
        key = (rates.shape, rates.tobytes())
        if self._last_matrix is None or self._last_matrix[0] != key:
            n = self.n_states
            if rates.shape[0] < SCATTER_BATCH:
                A = (rates @ self._structure).reshape(-1, n, n)
            else:
                A = np.zeros((rates.shape[0], n * n))
                A[:, self._diagonal_entries] = -(rates @ self._outflows)
                A[:, self._inflow_entries] = rates @ self._inflows
                A = A.reshape(-1, n, n)
            A.flags.writeable = False
            self._last_matrix = (key, A)
        return self._last_matrix[1]

    def matrix_derivative(self, rate_jacobian: np.ndarray) -> np.ndarray:
        """``dA/dp`` of shape (batch, n_parameters, n, n) from ``d rates / dp`` (batch, m, P)."""
        batch, _, n_parameters = rate_jacobian.shape
        d = rate_jacobian.transpose(0, 2, 1) @ self._structure
        return d.reshape(batch, n_parameters, self.n_states, self.n_states)

    def derivative_times(self, rate_jacobian: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """``(dA/dp_k) v`` for every parameter, shape (batch, n, P), without forming ``dA``.

        Transfer ``j`` contributes ``d rate_j / dp * v[source_j]`` to its target and takes it from
        its source.
        """
        flux = rate_jacobian * vector[:, self.sources, None]                    # (B, m, P)
        return self._incidence @ flux

    @property
    def draining_index(self) -> np.ndarray:
        """Indices of the compartments that drain (have an outflow); the others are sinks."""
        return self._draining_index

    def draining_matrix(self, rates: np.ndarray) -> np.ndarray:
        """``A_NN``, the system matrices restricted to the draining compartments ``N``."""
        N = self._draining_index
        return (rates @ self._structure_draining).reshape(-1, len(N), len(N))

    def solve(self, rates: np.ndarray, inputs: list[LinearInput], times: np.ndarray, *,
              rate_jacobian: np.ndarray | None = None, path: str = "auto",
              return_carried: bool = False):
        """Amounts in every compartment at ``times``, and their sensitivities if asked.

        Parameters
        ----------
        rates : ndarray, shape (batch, n_transfers)
            First-order rate constants (1 / time unit), non-negative.
        inputs : list of LinearInput
        times : ndarray, shape (n_times,)
        rate_jacobian : ndarray, shape (batch, n_transfers, n_parameters), optional
            ``d rates / d parameters``; when given, sensitivities are returned.
        path : {"auto", "structured", "dense", "eigen", "expm"}
            Solution path. ``dense`` decomposes the whole system matrix and uses ``expm`` where
            its eigenvector matrix is ill-conditioned; ``eigen`` and ``expm`` use one method
            only. ``structured`` (values only, bolus and step inputs) decomposes only the
            core (:mod:`exopk.engine.structured`). ``auto`` is ``dense``, except where the
            structured path applies (no sensitivities asked, no steady-state dose, a leaf or a
            sink to leave out): there batches of ``STRUCTURED_BATCH`` or more sets take it, and
            smaller ones take it for the members whose dense decomposition is ill-conditioned
            (instead of ``expm``).

        Returns
        -------
        amounts : ndarray, shape (batch, n_times, n_states)
        sensitivities : ndarray, shape (batch, n_times, n_states, n_parameters), or None
        carried : ndarray, shape (batch, n_times), or None
            Only with ``return_carried``: amount present at each time because steady-state
            doses start from the pre-dose steady state (None without such doses).
        """
        if path not in PATHS:
            raise SimulationError(f"unknown solution path '{path}'; known: {', '.join(PATHS)}")
        # doses after the last observation time change nothing that is reported
        latest = times.max()
        inputs = [item for item in inputs if item.time <= latest]
        A = self.matrix(rates)
        if path == "structured" and rate_jacobian is not None:
            raise SimulationError("the structured path computes values only; use path='auto' "
                                  "for sensitivities")
        # values of bolus and step inputs, with a leaf or a sink to leave out of decompositions
        structure_applies = rate_jacobian is None and self.blocks.useful and all(
            item.kind in ("bolus", "step") for item in inputs)
        if path == "structured" or (path == "auto" and structure_applies
                                    and A.shape[0] >= STRUCTURED_BATCH):
            structured = self._solve_structured(A, rates, inputs, times, strict=path != "auto")
            return (*structured, None) if return_carried else structured
        batch = A.shape[0]
        gradients = rate_jacobian is not None
        n_parameters = rate_jacobian.shape[2] if gradients else 0
        amounts = sens = None
        with_steady_state = any(item.kind == "steady_state_bolus" for item in inputs)
        carried = np.zeros((batch, len(times))) if with_steady_state else None

        use_expm = np.full(batch, path == "expm")
        groups = []
        if path in ("auto", "dense", "eigen"):
            lam, V, V_inv, condition = self.decompose(A)
            bad = ~(condition < CONDITION_LIMIT)
            if path != "eigen":
                use_expm = bad
            elif bad.any():
                raise SimulationError("eigenvector matrix is singular or ill-conditioned "
                                      f"(condition {np.max(condition):.3g}); use path='auto'")
            groups = eigen_groups(lam, V, V_inv, ~use_expm)
            if len(groups) == 1 and groups[0][0] is None and (batch <= CHUNK or not gradients):
                # the usual case: every member solved at once, no copies
                eigen = _Eigen(lam=lam, V=V, V_inv=V_inv, G=None if not gradients else
                               self.similar_derivative(V, V_inv, rate_jacobian))
                prepared = self._prepare(inputs, None, eigen)
                amounts, sens = eigen.respond(prepared, times, gradients)
                if with_steady_state:
                    carried[:] = _carried(prepared, times)
                return (amounts, sens, carried) if return_carried else (amounts, sens)
        amounts = np.empty((batch, len(times), self.n_states))
        sens = np.empty((batch, len(times), self.n_states, n_parameters)) if gradients else None
        for members, lam_g, V_g, V_inv_g in groups:
            members = np.arange(batch) if members is None else np.flatnonzero(members)
            # with gradients, in chunks whose work arrays stay in the processor's caches
            size = CHUNK if gradients else len(members)
            for start in range(0, len(members), size):
                part, chosen = slice(start, start + size), members[start:start + size]
                eigen = _Eigen(lam=lam_g[part], V=V_g[part], V_inv=V_inv_g[part],
                               G=None if not gradients else _similar_derivative(
                                   V_g[part], V_inv_g[part], rate_jacobian[chosen], self))
                prepared = self._prepare(inputs, chosen, eigen)
                x, dx = eigen.respond(prepared, times, gradients)
                if with_steady_state:
                    carried[chosen] = _carried(prepared, times)
                amounts[chosen] = x
                if gradients:
                    sens[chosen] = dx
        if use_expm.any() and path == "auto" and structure_applies:
            # members the dense path cannot decompose: the structured path solves them exactly
            # where their core is well conditioned
            members = np.flatnonzero(use_expm)
            x, solved = solve_forward(self.blocks, A[members],
                                      [_members(item, members) for item in inputs], times,
                                      CONDITION_LIMIT)
            amounts[members[solved]] = x[solved]
            use_expm[members[solved]] = False
        if use_expm.any():
            if path != "expm":
                warnings.warn(f"{int(use_expm.sum())} of {batch} parameter sets gave an "
                              "ill-conditioned eigendecomposition; solved with expm instead",
                              IllConditionedWarning, stacklevel=3)
            for b in np.flatnonzero(use_expm):
                member = _Expm(A[b], None if not gradients else
                               self.matrix_derivative(rate_jacobian[b:b + 1])[0])
                prepared = self._prepare(inputs, np.eye(batch, dtype=bool)[b], member)
                x, dx = member.respond(prepared, times, gradients)
                if with_steady_state:
                    carried[b] = _carried(prepared, times)[0]
                amounts[b] = x
                if gradients:
                    sens[b] = dx
        if return_carried:
            return amounts, sens, carried
        return amounts, sens

    def _solve_structured(self, A, rates, inputs, times, *, strict):
        """Values by :func:`exopk.engine.structured.solve_forward`, members with an
        ill-conditioned core by the dense path (with ``strict``, an error instead)."""
        if any(item.kind not in ("bolus", "step") for item in inputs):
            raise SimulationError("the structured path takes bolus and step inputs only; "
                                  "use path='auto' for steady-state doses")
        core = self.decompose_core(A) if len(self.blocks.core) else None
        amounts, solved = solve_forward(self.blocks, A, inputs, times, CONDITION_LIMIT, core)
        if not solved.all():
            if strict:
                raise SimulationError("core eigenvector matrix is singular or ill-conditioned; "
                                      "use path='auto'")
            rest = np.flatnonzero(~solved)
            amounts[rest] = self.solve(rates[rest], [_members(item, rest) for item in inputs],
                                       times, path="dense")[0]
        return amounts, None

    def bolus_response_at(self, rates: np.ndarray, rate_jacobian: np.ndarray,
                          vector: np.ndarray, d_vector: np.ndarray | None, times: np.ndarray):
        """``exp(A_b t_b) v_b`` and its parameter derivative, each member at its own time.

        Members whose eigenvector matrix is ill-conditioned go through ``expm``, as in
        :meth:`solve`.

        Parameters
        ----------
        rates, rate_jacobian : ndarray
            As for :meth:`solve` (the Jacobian may have zero columns).
        vector : ndarray, shape (batch, n_states)
            A bolus given at time 0.
        d_vector : ndarray, shape (batch, n_states, n_parameters), optional
        times : ndarray, shape (batch,)

        Returns
        -------
        amounts : ndarray, shape (batch, n_states)
        sensitivities : ndarray, shape (batch, n_states, n_parameters)
        """
        A = self.matrix(rates)
        lam, V, V_inv, condition = self.decompose(A)
        good = condition < CONDITION_LIMIT
        groups = eigen_groups(lam, V, V_inv, good)
        if len(groups) == 1 and groups[0][0] is None:
            # the usual case: every member solved at once, no copies
            return _Eigen(lam, V, V_inv, self.similar_derivative(V, V_inv, rate_jacobian)
                          ).propagate(vector, d_vector, times[:, None])
        batch, n_parameters = rates.shape[0], rate_jacobian.shape[2]
        amounts = np.empty((batch, self.n_states))
        sens = np.empty((batch, self.n_states, n_parameters))
        for members, lam_g, V_g, V_inv_g in groups:
            G = _similar_derivative(V_g, V_inv_g, rate_jacobian[members], self)
            amounts[members], sens[members] = _Eigen(lam_g, V_g, V_inv_g, G).propagate(
                vector[members], None if d_vector is None else d_vector[members],
                times[members][:, None])
        if not good.all():
            for b in np.flatnonzero(~good):
                dA = self.matrix_derivative(rate_jacobian[b:b + 1])[0]
                x, dx = _Expm(A[b], dA).propagate(
                    vector[b:b + 1], None if d_vector is None else d_vector[b:b + 1], times[b])
                amounts[b], sens[b] = x[0], dx[0]
        return amounts, sens

    def _prepare(self, inputs, members, solver):
        """Select the batch members (None: all) and turn steady-state boluses into boluses."""
        prepared = []
        for item in inputs:
            if members is None:
                vector, jacobian = item.vector, item.jacobian
            else:
                vector = item.vector[members]
                jacobian = None if item.jacobian is None else item.jacobian[members]
            if item.kind == "steady_state_bolus":
                pre, d_pre = _steady_state_before_dose(solver, vector, jacobian, item.interval,
                                                       self.draining)
                prepared.append(LinearInput("bolus", item.time, pre, d_pre, carried=True))
                prepared.append(LinearInput("bolus", item.time, vector, jacobian))
            else:
                prepared.append(LinearInput(item.kind, item.time, vector, jacobian))
        return prepared


def _carried(prepared, times):
    """Amount present from pre-dose steady states, per member and time (0 without any)."""
    total = 0.0
    for item in prepared:
        if item.carried:
            total = total + item.vector.sum(axis=1)[:, None] * (times >= item.time)[None, :]
    return total


def _similar_derivative(V, V_inv, rate_jacobian, system):
    """``G[b, i, p, k] = (V^-1 dA_p V)[i, k]`` from the rank-one structure of each transfer
    (:mod:`exopk.engine.similar_kernel`: ``n^2`` multiply-adds per transfer and parameter with
    a nonzero rate derivative)."""
    from exopk.engine.similar_kernel import similar_derivative   # numba: imported on first use

    batch, _, n_parameters = rate_jacobian.shape
    n = V.shape[1]
    G = np.zeros((batch, n, n_parameters, n), dtype=np.result_type(V, rate_jacobian))
    similar_derivative(np.ascontiguousarray(V), np.ascontiguousarray(V_inv),
                       np.ascontiguousarray(rate_jacobian, dtype=float), system.sources,
                       system.targets, G)
    return G


@dataclass
class _Eigen:
    lam: np.ndarray      # (B, n)
    V: np.ndarray        # (B, n, n)
    V_inv: np.ndarray    # (B, n, n)
    G: np.ndarray | None  # (B, n, P, n)

    @property
    def has_gradients(self):
        return self.G is not None

    def to_modes(self, vector):
        return (self.V_inv @ vector[:, :, None])[:, :, 0]

    def respond(self, inputs, times, gradients):
        """Amounts at ``times`` (B, T, n) and their sensitivities (B, T, n, P) or None.

        The inputs of one kind are taken together: one call of each factor over all their
        doses and times, and the terms summed over the doses.
        """
        if len(inputs) == 1 and inputs[0].kind == "bolus" and self._compiled_pays(len(times),
                                                                                   gradients):
            item = inputs[0]
            tau = np.repeat((times - item.time)[None], len(self.lam), axis=0)
            return self._bolus_response(item.vector, item.jacobian, tau, gradients)
        batch, n = self.lam.shape
        lam = self.lam[:, None, :]
        Z = np.zeros((batch, len(times), n), dtype=self.lam.dtype)
        # modal sensitivities, laid out (batch, mode, time, parameter) for batched matmul
        Y = np.zeros((batch, n, len(times), self.G.shape[2]), dtype=self.lam.dtype) \
            if gradients else None
        G_t = self.G.transpose(0, 1, 3, 2) if gradients else None            # (B, i, k, P)
        groups = (inputs,) if len(inputs) == 1 else [
            [item for item in inputs if item.kind == kind]
            for kind in dict.fromkeys(item.kind for item in inputs)]
        for group in groups:
            kind, D, T = group[0].kind, len(group), len(times)
            if D == 1:
                tau = times - group[0].time
                c = self.to_modes(group[0].vector)[:, None, :]               # (B, D, n)
            else:
                tau = (times[None, :] - np.array([item.time for item in group])[:, None]).ravel()
                c = (self.V_inv @ np.stack([item.vector for item in group], axis=2)
                     ).transpose(0, 2, 1)
            factor = bolus_factor if kind == "bolus" else step_factor
            h = factor(lam, tau[None, :, None]).reshape(batch, D, T, n)
            terms = h * c[:, :, None, :]
            Z += terms[:, 0] if D == 1 else terms.sum(axis=1)
            if not gradients:
                continue
            # K[b, i, d, t, k]: divided differences between modes i and k, dose d, time t
            K = (bolus_divided_differences(self.lam, tau) if kind == "bolus" else
                 step_divided_difference(self.lam[:, :, None, None], self.lam[:, None, None, :],
                                         tau[None, None, :, None])
                 ).reshape(batch, n, D, T, n)
            terms = K * c[:, None, :, None, :]
            Y += (terms[:, :, 0] if D == 1 else terms.sum(axis=2)) @ G_t
            for d, item in enumerate(group):
                if item.jacobian is not None:
                    dc = np.einsum("bij,bjp->bip", self.V_inv, item.jacobian)
                    Y += h[:, d].transpose(0, 2, 1)[..., None] * dc[:, :, None, :]
        x = (Z @ self.V.transpose(0, 2, 1)).real
        if not gradients:
            return x, None
        # dx[b, t, j, p] = sum_i V[b, j, i] Y[b, i, t, p]
        dx = (self.V[:, None] @ Y.transpose(0, 2, 1, 3)).real
        return x, dx

    def propagate(self, vector, jacobian, tau):
        """``exp(A tau) v`` and its parameter derivative (steady-state doses; ``tau`` is one
        time or one per member, shaped (B, 1))."""
        tau = np.asarray(tau, dtype=float)
        tau = tau.reshape(-1, 1) if tau.size == len(self.lam) else np.full((len(self.lam), 1), tau)
        if self._compiled_pays(1, True):
            x, dx = self._bolus_response(vector, jacobian, tau, True)
            return x[:, 0], dx[:, 0]
        c = self.to_modes(vector)
        e = np.exp(self.lam * tau)
        out = (self.V @ (e * c)[:, :, None])[..., 0].real
        if not self.G.shape[2]:
            return out, np.zeros(out.shape + (0,))           # no derivative asked for
        K = bolus_divided_differences(self.lam, tau)[:, :, 0, :]                   # (B, i, k)
        Y = (self.G @ (K * c[:, None, :])[:, :, :, None])[..., 0]              # (B, i, P)
        if jacobian is not None:
            Y = Y + e[:, :, None] * (self.V_inv @ jacobian)
        return out, (self.V @ Y).real

    def _compiled_pays(self, n_times, gradients):
        """Whether the compiled response to one bolus is the faster way for this batch
        (``COMPILED_RESPONSE_WORK``)."""
        batch, n = self.lam.shape
        parameters = max(self.G.shape[2], 1) if gradients else 1
        return batch * n_times * n * n * parameters <= COMPILED_RESPONSE_WORK

    def _bolus_response(self, vector, jacobian, tau, gradients):
        """Amounts (B, T, n) a time ``tau`` (B, T) after the bolus ``vector`` (B, n), and their
        sensitivities (B, T, n, P) or None (:func:`exopk.engine.phi_kernel.bolus_response`)."""
        from exopk.engine.phi_kernel import bolus_response   # numba: imported on first use

        batch, n = self.lam.shape
        G = self.G if gradients else np.zeros((batch, n, 0, n), self.lam.dtype)
        c = self.to_modes(vector)
        dc = self.V_inv @ jacobian if gradients and jacobian is not None else \
            np.zeros((batch, n, G.shape[2]), self.lam.dtype)
        x = np.empty((batch, tau.shape[1], n))
        dx = np.empty((batch, tau.shape[1], n, G.shape[2]))
        bolus_response(np.ascontiguousarray(self.lam), np.ascontiguousarray(self.V),
                       np.ascontiguousarray(G), np.ascontiguousarray(c),
                       np.ascontiguousarray(dc, dtype=self.lam.dtype),
                       np.ascontiguousarray(tau), x, dx)
        return x, dx if gradients else None

    def transition(self, tau):
        return np.einsum("bij,bj,bjk->bik", self.V, np.exp(self.lam * tau), self.V_inv).real


class _Expm:
    """One parameter set: state and sensitivities propagated with matrix exponentials.

    The state and all sensitivities form a block lower-triangular system whose diagonal blocks
    are all ``A``; its exponential has no coupling between different parameters, so each
    parameter's sensitivity is propagated with the state in a system of size ``2 n``
    (``[[A, 0], [dA_p, A]]``) instead of one of size ``n (1 + P)``: ``P (2 n)^3`` work instead
    of ``(n (1 + P))^3``.
    """

    def __init__(self, A, dA):
        self.n = A.shape[0]
        self.A = A
        self.dA = dA
        self.P = 0 if dA is None else dA.shape[0]

    @property
    def has_gradients(self):
        return self.P > 0

    def _block(self, p):
        """System matrix of the state (p None) or of the state and sensitivity ``p``."""
        if p is None:
            return self.A
        n = self.n
        M = np.zeros((2 * n, 2 * n))
        M[:n, :n] = self.A
        M[n:, n:] = self.A
        M[n:, :n] = self.dA[p]
        return M

    def _stack(self, vector, jacobian, p):
        if p is None:
            return vector
        dv = np.zeros(self.n) if jacobian is None else jacobian[:, p]
        return np.concatenate([vector, dv])

    def _blocks(self, gradients):
        return list(range(self.P)) if gradients and self.P else [None]

    def respond(self, inputs, times, gradients):
        n = self.n
        dx = np.zeros((len(times), n, self.P))
        for p in self._blocks(gradients):
            out = self._respond_block(p, inputs, times)
            x = out[:, :n]
            if p is not None:
                dx[:, :, p] = out[:, n:]
        return x[None], (dx[None] if gradients else None)

    def _respond_block(self, p, inputs, times):
        M = self._block(p)
        size = M.shape[0]
        z = np.zeros(size)
        w = np.zeros(size)
        order = np.argsort(times, kind="stable")
        out = np.zeros((len(times), size))
        points = sorted({float(t) for t in times} | {float(i.time) for i in inputs})
        t_now = points[0]
        augmented = np.zeros((size + 1, size + 1))
        augmented[:size, :size] = M
        next_obs = 0
        propagators = {}      # equal steps under equal inputs share one exponential
        for t in points:
            if t > t_now:
                key = (t - t_now, w.tobytes())
                if key not in propagators:
                    augmented[:size, size] = w
                    propagators[key] = scipy.linalg.expm(augmented * (t - t_now))
                z = (propagators[key] @ np.append(z, 1.0))[:size]
                t_now = t
            for item in inputs:
                if item.time == t:
                    stacked = self._stack(item.vector[0], None if item.jacobian is None
                                          else item.jacobian[0], p)
                    if item.kind == "bolus":
                        z = z + stacked
                    else:
                        w = w + stacked
            while next_obs < len(times) and times[order[next_obs]] == t:
                out[order[next_obs]] = z
                next_obs += 1
        return out

    def propagate(self, vector, jacobian, tau):
        n = self.n
        dx = np.zeros((n, self.P))
        for p in self._blocks(True):
            z = scipy.linalg.expm(self._block(p) * tau) @ self._stack(
                vector[0], None if jacobian is None else jacobian[0], p)
            x = z[:n]
            if p is not None:
                dx[:, p] = z[n:]
        return x[None], dx[None]

    def transition(self, tau):
        return scipy.linalg.expm(self.A * tau)[None]


def _steady_state_before_dose(solver, dose, d_dose, interval, draining):
    """Pre-dose state at periodic steady state, and its derivative.

    The post-dose state ``y`` solves ``y = P y + dose`` on the draining compartments, with
    ``P = exp(A interval)``; the pre-dose state is ``y - dose``. Sinks start at zero.
    """
    if not interval or interval <= 0:
        raise SimulationError("a steady-state dose needs a positive dosing interval")
    N = np.flatnonzero(draining)
    P_full = solver.transition(interval)
    batch = dose.shape[0]
    I = np.eye(len(N))
    system = I[None] - P_full[:, N[:, None], N[None, :]]
    try:
        y_N = np.linalg.solve(system, dose[:, N, None])[..., 0]
    except np.linalg.LinAlgError:
        raise SimulationError("no steady state: some compartment never drains, so repeated "
                              "doses accumulate without bound") from None
    y = np.zeros_like(dose)
    y[:, N] = y_N
    pre = y - dose
    pre[:, ~draining] = 0.0
    if solver.has_gradients:
        # dy = (I - P)^-1 (dP y + d dose) on the draining compartments
        _, dP_y = solver.propagate(y, None, interval)
        rhs = dP_y[:, N, :]
        if d_dose is not None:
            rhs = rhs + d_dose[:, N, :]
        dy = np.zeros((batch, dose.shape[1], rhs.shape[2]))
        dy[:, N, :] = np.linalg.solve(system, rhs)
        d_pre = dy - (0.0 if d_dose is None else d_dose)
        d_pre[:, ~draining, :] = 0.0
        return pre, d_pre
    return pre, None


def _members(item: LinearInput, members) -> LinearInput:
    """The input restricted to some batch members."""
    return LinearInput(item.kind, item.time, item.vector[members],
                       None if item.jacobian is None else item.jacobian[members],
                       item.interval, item.carried)
