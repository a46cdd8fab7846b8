"""Outputs of one parameter set after boluses, from its expression values, in one compiled call.

The arithmetic of :mod:`exopk.engine.single_set`: the system matrix placed from the rates,
LAPACK ``dgeev`` (eigenvalues, right eigenvectors), ``getrf`` and ``gecon`` (an LU factorisation
of the eigenvector matrix ``V`` and an estimate of its 1-norm condition number), ``getrs`` (each
route's dose split in modal coordinates, ``c_r = V^-1 b_r``), then at each time
``x(t) = Re V sum_d exp(lam (t - t_d)) a_d c_{r_d}`` over the doses given by ``t``
(``exp`` flushed to 0 below ``exp(-700)``, as in :mod:`exopk.engine.phi_kernel`) and the outputs
``y = C x`` scaled per time. A complex pair of eigenvalues makes the factorisation and the
response complex (``zgetrf``, ``zgecon``, ``zgetrs``). LAPACK is called through
:mod:`exopk.engine.lapack_kernel`.

:func:`one_set_outputs` returns a status instead of raising: anything other than ``SOLVED``
leaves the set to the general path, which raises the error that explains it (a negative rate, a
dose split that is not a partition) or solves it another way (an ill-conditioned ``V``).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel
from exopk.engine.lapack_kernel import (DGECON, DGEEV, DGETRF, DGETRS, ZGECON, ZGETRF, ZGETRS,
                                        address_of, call_address)
from exopk.engine.phi_kernel import exp_flushed

__all__ = ["SOLVED", "NOT_SOLVED", "ILL_CONDITIONED", "one_set_outputs"]

SOLVED, NOT_SOLVED, ILL_CONDITIONED = 0, 1, 2


@compile_kernel
def one_set_outputs(lapack, values, matrix_entries, route_entries, route_checked,
                    split_tolerance, doses, dose_routes, output_terms, output_scale, times,
                    correction, condition_limit, work_size, outputs, amounts):
    """Fill ``outputs`` and ``amounts`` of one parameter set; return ``SOLVED``, or
    ``NOT_SOLVED`` (a negative or non-finite rate or split, a split of a checked route that is
    not a partition, a failed LAPACK call) or ``ILL_CONDITIONED`` (condition estimate of ``V``
    not below ``condition_limit``), with the outputs then undefined.

    Parameters
    ----------
    lapack : ndarray of int64
        :data:`exopk.engine.lapack_kernel.ADDRESSES`.
    values : ndarray (n_expressions,)
        The set's expression values.
    matrix_entries : ndarray of int64 (entries, 3)
        Per nonzero term of the system matrix: its column-major index ``column * n + row``, the
        expression row of its rate and its sign (+1 inflow, -1 outflow).
    route_entries : ndarray of int64 (entries, 3)
        Route index, compartment and expression row of each compartment a route's dose enters.
    route_checked : ndarray of int64 (routes,)
        1 where a route's split depends on parameters and must be checked to be a partition of
        the dose (each share in [0, 1], their sum 1 within ``split_tolerance``).
    split_tolerance : float
    doses : ndarray (2, doses)
        Time and amount of each bolus.
    dose_routes : ndarray of int64 (doses,)
    output_terms : ndarray of int64 (terms, 3)
        Output, compartment and expression row of the weight of each term of an output.
    output_scale : ndarray (n_outputs,)
        Factor of each output (100 / total dose for percent-of-dose outputs).
    times : ndarray (n_times,)
    correction : ndarray (n_times, n_outputs)
        Factor per time and output (the percent-of-dose reference of each time).
    condition_limit : float
    work_size : int
        Length of ``dgeev``'s work array (at least ``4 n``).
    outputs, amounts : ndarray (n_times, n_outputs), (n_times, n)
        Output.
    """
    n = amounts.shape[1]
    routes = route_checked.shape[0]
    A = np.zeros(n * n)                                   # column-major
    for k in range(matrix_entries.shape[0]):
        rate = values[matrix_entries[k, 1]]
        if not rate >= 0 or not np.isfinite(rate):
            return NOT_SOLVED
        A[matrix_entries[k, 0]] += matrix_entries[k, 2] * rate
    splits = np.zeros(routes * n)                         # column-major (n, routes)
    for k in range(route_entries.shape[0]):
        share = values[route_entries[k, 2]]
        if route_checked[route_entries[k, 0]] and not 0.0 <= share <= 1.0:
            return NOT_SOLVED
        splits[route_entries[k, 0] * n + route_entries[k, 1]] = share
    for r in range(routes):
        if route_checked[r] and not abs(splits[r * n:(r + 1) * n].sum() - 1.0) <= split_tolerance:
            return NOT_SOLVED

    integers = np.zeros(8, dtype=np.int32)    # n, 1, info, dgeev's work size, routes
    integers[0], integers[1], integers[3], integers[4] = n, 1, work_size, routes
    letters = np.array([ord("N"), ord("V"), ord("1")], dtype=np.uint8)
    real_parts, imaginary_parts = np.empty(n), np.empty(n)
    vectors = np.empty(n * n)                             # column-major: V[:, k] at k * n
    work = np.empty(work_size)
    call_address(lapack[DGEEV], (
        address_of(letters, 0), address_of(letters, 1), address_of(integers, 0),
        address_of(A, 0), address_of(integers, 0), address_of(real_parts, 0),
        address_of(imaginary_parts, 0), address_of(vectors, 0), address_of(integers, 1),
        address_of(vectors, 0), address_of(integers, 0), address_of(work, 0),
        address_of(integers, 3), address_of(integers, 2)))
    if integers[2] != 0:
        return NOT_SOLVED
    if not imaginary_parts.any():
        return _respond(lapack[DGETRF], lapack[DGECON], lapack[DGETRS], real_parts, vectors,
                        splits, integers, letters, values, doses, dose_routes, output_terms,
                        output_scale, times, correction, condition_limit, outputs, amounts)
    lam = real_parts + 1j * imaginary_parts
    V = vectors.astype(np.complex128)
    for k in range(n - 1):
        if imaginary_parts[k] > 0:               # the pair (k, k + 1): V[:, k] +- i V[:, k + 1]
            for j in range(n):
                re, im = vectors[k * n + j], vectors[(k + 1) * n + j]
                V[k * n + j] = complex(re, im)
                V[(k + 1) * n + j] = complex(re, -im)
    return _respond(lapack[ZGETRF], lapack[ZGECON], lapack[ZGETRS], lam, V,
                    splits.astype(np.complex128), integers, letters, values, doses, dose_routes,
                    output_terms, output_scale, times, correction, condition_limit, outputs,
                    amounts)


@compile_kernel
def _respond(getrf, gecon, getrs, lam, V, splits, integers, letters, values, doses, dose_routes,
             output_terms, output_scale, times, correction, condition_limit, outputs, amounts):
    """The part of :func:`one_set_outputs` after ``dgeev``, in ``lam``'s type: factorisation,
    condition estimate, modal splits (``splits`` overwritten), amounts and outputs."""
    n = lam.shape[0]
    column_sums = np.zeros(n)
    for k in range(n):
        for j in range(n):
            column_sums[k] += abs(V[k * n + j])
    norm = np.array([column_sums.max()])
    factors = V.copy()
    pivots = np.empty(n, dtype=np.int32)
    call_address(getrf, (address_of(integers, 0), address_of(integers, 0),
                         address_of(factors, 0), address_of(integers, 0),
                         address_of(pivots, 0), address_of(integers, 2)))
    if integers[2] != 0:
        return NOT_SOLVED
    for k in range(n * n):
        if not np.isfinite(factors[k]):
            return NOT_SOLVED
    reciprocal = np.zeros(1)
    work = np.empty(4 * n, dtype=lam.dtype)     # dgecon: 4 n real; zgecon: 2 n complex
    scratch = np.empty(2 * n)                   # dgecon: n int32; zgecon: 2 n real
    call_address(gecon, (address_of(letters, 2), address_of(integers, 0),
                         address_of(factors, 0), address_of(integers, 0), address_of(norm, 0),
                         address_of(reciprocal, 0), address_of(work, 0),
                         address_of(scratch, 0), address_of(integers, 2)))
    if integers[2] != 0 or not reciprocal[0] > 0 or not 1.0 / reciprocal[0] < condition_limit:
        return ILL_CONDITIONED
    call_address(getrs, (address_of(letters, 0), address_of(integers, 0),
                         address_of(integers, 4), address_of(factors, 0),
                         address_of(integers, 0), address_of(pivots, 0),
                         address_of(splits, 0), address_of(integers, 0),
                         address_of(integers, 2)))
    if integers[2] != 0:
        return NOT_SOLVED
    _amounts_and_outputs(lam, V, splits, values, doses, dose_routes, output_terms, output_scale,
                         times, correction, outputs, amounts)
    return SOLVED


@compile_kernel
def _amounts_and_outputs(lam, V, modal_splits, values, doses, dose_routes, output_terms,
                         output_scale, times, correction, outputs, amounts):
    """``x(t) = Re V sum_d exp(lam (t - t_d)) a_d c_{r_d}`` over the doses given by ``t``
    (``V`` and the modal splits ``c`` column-major), and ``y = C x`` times the correction."""
    n = lam.shape[0]
    C = np.zeros((outputs.shape[1], n))
    for k in range(output_terms.shape[0]):
        o = output_terms[k, 0]
        C[o, output_terms[k, 1]] += values[output_terms[k, 2]] * output_scale[o]
    modal = np.empty(n, dtype=lam.dtype)
    for s in range(times.shape[0]):
        modal[:] = 0
        for d in range(doses.shape[1]):
            tau = times[s] - doses[0, d]
            if not tau >= 0:
                continue
            offset = dose_routes[d] * n
            for i in range(n):
                modal[i] += exp_flushed(lam[i] * tau) * doses[1, d] * modal_splits[offset + i]
        for j in range(n):
            total = modal[0] * 0
            for i in range(n):
                total += V[i * n + j] * modal[i]
            amounts[s, j] = total.real
        for o in range(outputs.shape[1]):
            total = 0.0
            for j in range(n):
                total += C[o, j] * amounts[s, j]
            outputs[s, o] = total * correction[s, o]
