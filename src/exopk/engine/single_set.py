"""Amounts of one parameter set after boluses: right eigenvectors and one LU solve.

The common call of :func:`~exopk.engine.simulation.evaluate` for one parameter set without
sensitivities (a curve to plot, a parameter set to check) went through the general dense path:
the eigendecomposition with the inverse of the eigenvector matrix ``V`` (for the exact condition
number and for sensitivities that are not asked for), the grouping of a batch by arithmetic,
the inputs' preparation, then the response. Here: LAPACK ``geev`` for ``lam`` and ``V``, one LU
factorisation of ``V`` with a condition estimate from its factors (``gecon``), one solve per
dose ``c = V^-1 b`` and the compiled response ``x(t) = Re V (exp(lam (t - t_d)) c)`` summed
over the doses (:func:`~exopk.engine.phi_kernel.bolus_response`). The same maths as the
general path, which still answers where this one does not apply (infusions, steady-state doses,
saturable transfers, endogenous secretion, a negative rate) or where the estimate puts the
eigenvector matrix at or above ``CONDITION_LIMIT`` (the general path then solves with the
structured path or ``expm``).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.eigen import factored_eigendecompose, solve_factored
from exopk.engine.linear import CONDITION_LIMIT

__all__ = ["single_set_amounts"]


def single_set_amounts(system, rates: np.ndarray, inputs, times: np.ndarray):
    """Amounts (1, n_times, n_states) at ``times`` after the bolus ``inputs`` of one parameter
    set, or None where the general path must answer.

    Parameters
    ----------
    system : LinearSystem
    rates : ndarray, shape (1, n_transfers)
    inputs : list of LinearInput
        Boluses (anything else: None).
    times : ndarray, shape (n_times,)
    """
    from exopk.engine.phi_kernel import bolus_response                  # numba: on first use

    if rates.min(initial=0.0) < 0 or any(item.kind != "bolus" for item in inputs):
        return None
    lam, V, factors, condition = factored_eigendecompose(system.matrix(rates)[0])
    if not condition < CONDITION_LIMIT:
        return None
    lam, V = np.ascontiguousarray(lam)[None], np.ascontiguousarray(V)[None]
    n, T = system.n_states, len(times)
    times = np.asarray(times, dtype=float)
    no_parameters = np.empty((1, n, 0, n), dtype=lam.dtype)
    amounts = np.zeros((1, T, n))
    x, dx = np.empty((1, T, n)), np.empty((1, T, n, 0))
    for item in inputs:
        c = solve_factored(factors, item.vector[0])
        bolus_response(lam, V, no_parameters, c[None], np.empty((1, n, 0), dtype=lam.dtype),
                       (times - item.time)[None], x, dx)
        amounts += x
    return amounts
