"""Outputs of one parameter set after boluses: right eigenvectors and one LU factorisation, in
one compiled call.

The common call of :func:`~exopk.engine.simulation.evaluate` for one parameter set without
sensitivities (a curve to plot, a parameter set to check) went through the general dense path:
the eigendecomposition with the inverse of the eigenvector matrix ``V`` (for the exact condition
number and for sensitivities that are not asked for), the grouping of a batch by arithmetic,
the inputs' preparation, then the response. Here: the same maths with what depends only on the
model, the regimen and the times arranged once (:class:`SingleSetPlan`), then per parameter set
one compiled call from the expression values to the outputs
(:func:`exopk.engine.single_set_kernel.one_set_outputs`): LAPACK ``geev`` for ``lam`` and ``V``,
one LU factorisation of ``V`` with a condition estimate from its factors (``gecon``), one solve
for the dose split of every route, ``x(t) = Re V sum_d exp(lam (t - t_d)) a_d V^-1 b_{r_d}``
and ``y = C x``.

The general path still answers where this one does not apply (infusions, steady-state doses,
saturable transfers, endogenous secretion), where a rate is negative or a dose split is not a
partition (it raises the error that says so), and where the estimate puts the eigenvector
matrix at or above ``CONDITION_LIMIT`` (it then solves with the structured path or ``expm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from exopk.engine.linear import CONDITION_LIMIT

__all__ = ["SingleSetPlan", "single_set_outputs"]


@dataclass(frozen=True)
class SingleSetPlan:
    """What the outputs of one parameter set after boluses depend on besides the parameters:
    the arrays of :func:`~exopk.engine.single_set_kernel.one_set_outputs` for one model,
    regimen and set of times. Built by :meth:`build`; read-only.

    Attributes
    ----------
    matrix_entries, route_entries, route_checked, dose_routes, output_terms : ndarray of int64
    doses, output_scale, times, correction : ndarray
    administered : ndarray (1, n_times)
        Amount given by each time.
    split_tolerance : float
        How far from 1 the shares of a dose split that depends on parameters may add up.
    work_size : int
        ``dgeev``'s optimal work array length for the model's size.
    """

    matrix_entries: np.ndarray
    route_entries: np.ndarray
    route_checked: np.ndarray
    doses: np.ndarray
    dose_routes: np.ndarray
    output_terms: np.ndarray
    output_scale: np.ndarray
    times: np.ndarray
    correction: np.ndarray
    administered: np.ndarray
    split_tolerance: float
    work_size: int

    @classmethod
    def build(cls, compiled, regimen, times, output_scale, correction, administered,
              split_tolerance):
        """The plan for ``regimen`` (boluses by routes of the model) at ``times``, or None
        where the general path must answer: a model with saturable transfers or endogenous
        secretion in an output, a regimen with infusions or steady-state doses.

        Parameters
        ----------
        compiled : CompiledModel
        regimen : Regimen
        times : ndarray (n_times,)
        output_scale : ndarray (n_outputs,)
            :func:`~exopk.engine.simulation.percent_scale`.
        correction : ndarray (n_times, n_outputs) or None
            The percent-of-dose reference of each time (None: 1 throughout).
        administered : ndarray (n_times,)
        split_tolerance : float
        """
        if not compiled.model.is_linear or compiled.output_endogenous.any() or any(
                dose.is_infusion or dose.steady_state_interval is not None
                for dose in regimen.doses):
            return None
        system = compiled.linear_system
        n = system.n_states
        outflows = [(source * n + source, row, -1) for source, row in
                    zip(system.sources, compiled.rate_rows)]
        inflows = [(source * n + target, row, 1) for source, target, row in
                   zip(system.sources, system.targets, compiled.rate_rows)]
        routes = list(regimen.routes)
        route_entries = [(r, state, row) for r, route in enumerate(routes)
                         for state, row in zip(*compiled.route_rows[route])]
        terms = compiled.output_term_table
        work_size, info = scipy.linalg.lapack.dgeev_lwork(n, compute_vl=0, compute_vr=1)
        arrays = dict(
            matrix_entries=np.array(outflows + inflows, dtype=np.int64).reshape(-1, 3),
            route_entries=np.array(route_entries, dtype=np.int64).reshape(-1, 3),
            route_checked=np.array([route not in compiled.constant_routes for route in routes],
                                   dtype=np.int64),
            doses=np.array([[dose.time for dose in regimen.doses],
                            [dose.amount for dose in regimen.doses]], dtype=float),
            dose_routes=np.array([routes.index(dose.route) for dose in regimen.doses],
                                 dtype=np.int64),
            output_terms=np.column_stack([terms.output_of_term, terms.states,
                                          terms.rows]).astype(np.int64).reshape(-1, 3),
            output_scale=np.array(output_scale, dtype=float),
            times=np.array(times, dtype=float),
            correction=(np.ones((len(times), len(terms.output_percent))) if correction is None
                        else np.array(correction, dtype=float)),
            administered=np.array(administered, dtype=float)[None])
        for array in arrays.values():
            array.flags.writeable = False
        return cls(split_tolerance=split_tolerance,
                   work_size=max(int(work_size) if info == 0 else 0, 4 * n), **arrays)


def single_set_outputs(plan: SingleSetPlan, values: np.ndarray, n_states: int):
    """Outputs (1, n_times, n_outputs) and amounts (1, n_times, n_states) of the parameter set
    whose expression values are ``values`` (1, n_expressions), or None where the general path
    must answer (a negative or non-finite rate, a dose split that is not a partition, an
    eigenvector matrix whose condition estimate is not below ``CONDITION_LIMIT``).
    """
    from exopk.engine.lapack_kernel import ADDRESSES                    # numba: on first use
    from exopk.engine.single_set_kernel import SOLVED, one_set_outputs

    outputs = np.empty((1,) + plan.correction.shape)
    amounts = np.empty((1, len(plan.times), n_states))
    status = one_set_outputs(ADDRESSES, values[0], plan.matrix_entries, plan.route_entries,
                             plan.route_checked, plan.split_tolerance, plan.doses,
                             plan.dose_routes, plan.output_terms, plan.output_scale, plan.times,
                             plan.correction, CONDITION_LIMIT, plan.work_size, outputs[0],
                             amounts[0])
    return (outputs, amounts) if status == SOLVED else None
