"""The requests of a single-bolus plan from the engine's states, with derivatives (numba).

An output is a sum of weighted compartments, ``y = sum_k w_k x[s_k]`` over its terms ``k``,
with ``dy/dp = sum_k w_k dx[s_k]/dp + x[s_k] dw_k/dp``. From the amounts at the observation
times, the areas and first moments of the bolus response, and the state at each time-to-half
estimate (all with derivatives), each request takes its output's few terms and its kind's
formula (:mod:`exopk.observation.predictions`): the time to half its last Newton step,
``t - (y(t) - y(0) / 2) / y'(t)`` with ``y'(t) = C A x(t)``, and its derivative
``-(dy(t) - dy(0) / 2) / y'(t)``. In numpy these were some 60 operations on arrays of a few
numbers per posterior evaluation; here one loop over the requests.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["KIND_CODES", "NOT_FALLING", "answer_requests"]

KIND_CODES = {"value": 0, "fraction_cleared": 1, "auc": 2, "mrt": 3, "clearance": 4, "vss": 5,
              "time_to_half": 6}
"""The code of each planned kind in the request table."""
NOT_FALLING = 1
"""Status of a time to half whose output is not falling at the crossing (no derivative)."""


@compile_kernel
def _output(first, last, states, w, b, vector):
    """``sum_k w[b, k] vector[states[k]]`` over the terms ``first <= k < last``."""
    total = 0.0
    for k in range(first, last):
        total += w[b, k] * vector[states[k]]
    return total


@compile_kernel
def _output_derivative(first, last, states, w, dw, b, vector, d_vector, out):
    """``out[p] = sum_k w[b, k] d_vector[states[k], p] + vector[states[k]] dw[b, k, p]``."""
    for p in range(out.shape[0]):
        total = 0.0
        for k in range(first, last):
            s = states[k]
            total += w[b, k] * d_vector[s, p] + vector[s] * dw[b, k, p]
        out[p] = total


@compile_kernel(ieee_division=True)
def answer_requests(kinds, outputs, first_index, second_index, scales, term_start, states, w, dw,
                    x, dx, area, d_area, moment, d_moment, dose, d_dose, A, t_half, x_half,
                    dx_half, total_dose, values, jacobian, status):
    """Fill the value and derivatives of every request for every member.

    Parameters
    ----------
    kinds, outputs : ndarray of int (R,)
        Each request's kind (``KIND_CODES``) and output.
    first_index, second_index : ndarray of int (R,)
        Values and fractions cleared: the positions of the request's time and (fractions
        cleared) of time 0 among the observation times; times to half: the position of the
        output among those with a time to half (``second_index`` unused).
    scales : ndarray (R,)
        Each request's scale.
    term_start : ndarray of int (O + 1,)
        Terms of output ``o``: ``term_start[o] <= k < term_start[o + 1]``.
    states : ndarray of int (K,)
        Each term's compartment.
    w, dw : ndarray (B, K), (B, K, P)
        Each term's weight (percent scaling included) and its parameter derivative.
    x, dx : ndarray (B, T, n), (B, T, n, P)
        Amounts at the observation times.
    area, d_area, moment, d_moment : ndarray (B, n), (B, n, P)
        Areas and first moments of the amounts over ``[0, inf)``.
    dose, d_dose : ndarray (B, n), (B, n, P)
        The bolus at time 0.
    A : ndarray (B, n, n)
        System matrices.
    t_half : ndarray (B, H)
        Modal estimates of the times to half.
    x_half, dx_half : ndarray (B, H, n), (B, H, n, P)
        Amounts at those times.
    total_dose : float
        ``D`` of clearances.
    values, jacobian : ndarray (B, R), (B, R, P)
        Output.
    status : ndarray of int8 (R,)
        Output: ``NOT_FALLING`` for a time to half whose output is not falling at the crossing
        in some member, else 0.
    """
    batch = x.shape[0]
    P = jacobian.shape[2]
    d_one, d_two = np.empty(P), np.empty(P)
    Ax = np.empty(A.shape[1])
    for b in range(batch):
        for i in range(kinds.shape[0]):
            kind, o, scale = kinds[i], outputs[i], scales[i]
            first, last = term_start[o], term_start[o + 1]
            if kind == 0 or kind == 1:
                k = first_index[i]
                y = _output(first, last, states, w, b, x[b, k])
                _output_derivative(first, last, states, w, dw, b, x[b, k], dx[b, k], d_one)
                if kind == 0:
                    value = y
                    for p in range(P):
                        jacobian[b, i, p] = scale * d_one[p]
                else:
                    k0 = second_index[i]
                    y0 = _output(first, last, states, w, b, x[b, k0])
                    _output_derivative(first, last, states, w, dw, b, x[b, k0], dx[b, k0],
                                       d_two)
                    value = 100.0 * (1.0 - y / y0)
                    for p in range(P):
                        jacobian[b, i, p] = scale * (-100.0 * (d_one[p] * y0 - y * d_two[p])
                                                     / (y0 * y0))
            elif kind <= 5:
                auc = _output(first, last, states, w, b, area[b])
                _output_derivative(first, last, states, w, dw, b, area[b], d_area[b], d_one)
                if kind == 2:
                    value = auc
                    for p in range(P):
                        jacobian[b, i, p] = scale * d_one[p]
                else:
                    first_moment = _output(first, last, states, w, b, moment[b])
                    _output_derivative(first, last, states, w, dw, b, moment[b], d_moment[b],
                                       d_two)
                    mrt = first_moment / auc
                    clearance = total_dose / auc
                    square = auc * auc
                    for p in range(P):
                        d_mrt = (d_two[p] * auc - first_moment * d_one[p]) / square
                        d_clearance = -total_dose * d_one[p] / square
                        if kind == 3:
                            derivative = d_mrt
                        elif kind == 4:
                            derivative = d_clearance
                        else:
                            derivative = d_clearance * mrt + clearance * d_mrt
                        jacobian[b, i, p] = scale * derivative
                    value = mrt if kind == 3 else clearance if kind == 4 else clearance * mrt
            else:
                h = first_index[i]
                y_t = _output(first, last, states, w, b, x_half[b, h])
                y_0 = _output(first, last, states, w, b, dose[b])
                _output_derivative(first, last, states, w, dw, b, x_half[b, h], dx_half[b, h],
                                   d_one)
                _output_derivative(first, last, states, w, dw, b, dose[b], d_dose[b], d_two)
                for r in range(A.shape[1]):
                    total = 0.0
                    for j in range(A.shape[2]):
                        total += A[b, r, j] * x_half[b, h, j]
                    Ax[r] = total
                slope = _output(first, last, states, w, b, Ax)
                if not slope < 0:
                    status[i] = NOT_FALLING
                value = t_half[b, h] - (y_t - 0.5 * y_0) / slope
                for p in range(P):
                    jacobian[b, i, p] = scale * (-(d_one[p] - 0.5 * d_two[p]) / slope)
            values[b, i] = scale * value
