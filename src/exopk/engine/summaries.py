"""Single-dose PK summaries of a linear model, exactly, with their parameter derivatives.

After a bolus ``b`` at time 0 the amounts are ``x(t) = exp(A t) b`` and an output ``y = C x`` is
a sum of modes ``y(t) = sum_i w_i exp(lam_i t)`` with ``A = V diag(lam) V^-1`` and weights
``w_i = (C V)_i (V^-1 b)_i`` (:func:`modal_weights`). From there:

* :func:`moments`: ``int x dt = -A_NN^-1 b`` and ``int t x dt = A_NN^-2 b`` on the draining
  compartments ``N`` (areas, mean residence times, clearances); :func:`moments_to` the same
  over ``[0, T]`` (mean residence time to the last sample);
* :func:`modes` and :func:`modal_rates`: eigenvalues with ``d lam_i / dp = (V^-1 dA_p V)_ii``; the
  terminal rate is the slowest mode present in ``y`` (weight above ``MODE_WEIGHT_FLOOR`` of
  ``sum |w_i|``), the distribution rate the faster present mode of largest weight;
* :func:`time_to_half`: the first time ``y`` falls to half its value at 0;
* :func:`time_of_peak`: the time of the largest value of ``y``.

The times are roots found on the modal sum (:func:`halving_time`, :func:`peak_time`) and
finished on the engine's state at the root
(:meth:`~exopk.engine.linear.LinearSystem.bolus_response_at`); their derivatives follow from the
implicit function theorem. :func:`rates_of_modes`, :func:`halving_time` and :func:`peak_time`
take any modal sum: the structured path (:mod:`exopk.engine.structured`) gives them the modes of
the core alone.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.simulation import output_matrix, outputs_from_amounts, paired
from exopk.errors import SimulationError

__all__ = ["MODE_WEIGHT_FLOOR", "HALVING_GRID_POINTS", "NOT_FALLING_AT_HALF", "PEAK_GRID_POINTS",
           "CoreModes", "halving_time", "modal_rates", "modal_weights", "modes", "moments",
           "moments_to", "peak_time", "rates_of_modes", "time_of_peak", "time_to_half"]

NOT_FALLING_AT_HALF = ("output '{}' is not falling where it reaches half its value at time 0: "
                       "the time to half has no derivative")
"""The error of a time to half whose output does not fall at the crossing."""
MODE_WEIGHT_FLOOR = 1e-6
HALVING_GRID_POINTS = 64    # log-spaced times searched for the first fall below half
_HALVING_FRACTIONS = np.linspace(0.0, 1.0, HALVING_GRID_POINTS)
PEAK_GRID_POINTS = 256      # log-spaced times searched for the largest value
_PEAK_FRACTIONS = np.linspace(0.0, 1.0, PEAK_GRID_POINTS)


def modes(system, rates: np.ndarray, rate_jacobian: np.ndarray):
    """Eigenvalues of ``A`` with their parameter derivatives, and the eigenvectors.

    ``d lam_i / dp = (V^-1 dA_p V)[i, i]`` (first-order perturbation of a simple
    eigenvalue).

    Returns
    -------
    lam : ndarray (batch, n)
    d_lam : ndarray (batch, n, n_parameters)
    V, V_inv : ndarray (batch, n, n)
    condition : ndarray (batch,)
    """
    lam, V, V_inv, condition = system.decompose(system.matrix(rates))
    # (V^-1 dA_p V)[i, i] = sum_j d rate_j / dp (V^-1[i, target_j] - V^-1[i, source_j])
    #                                            V[source_j, i]
    W = V_inv[:, :, system.targets] - V_inv[:, :, system.sources]              # (B, n, m)
    weights = W * V[:, system.sources, :].transpose(0, 2, 1)
    d_lam = weights @ rate_jacobian                                         # (B, n, P)
    return lam, d_lam, V, V_inv, condition


def moments(system, rates: np.ndarray, rate_jacobian: np.ndarray, vector: np.ndarray,
            d_vector: np.ndarray | None = None, *, fill: float = np.nan):
    """Zeroth and first time moments of the response to a bolus, over ``[0, inf)``.

    On the draining compartments ``N``, ``int x dt = -A_NN^-1 b`` and
    ``int t x dt = A_NN^-2 b``; sinks (which never drain) get ``fill`` (NaN by default). The
    products and derivatives after the inverse are compiled
    (:mod:`exopk.engine.moments_kernel`).

    Parameters
    ----------
    system : LinearSystem
    rates, rate_jacobian : ndarray
        As for :meth:`~exopk.engine.linear.LinearSystem.solve`.
    vector : ndarray, shape (batch, n_states)
        The bolus.
    d_vector : ndarray, shape (batch, n_states, n_parameters), optional
        Its parameter derivative.

    Returns
    -------
    area, d_area, first_moment, d_first_moment : ndarray
        ``(batch, n_states)`` and ``(batch, n_states, n_parameters)``.
    """
    from exopk.engine.moments_kernel import bolus_moments     # numba: imported on first use

    N = system.draining_index
    batch, n_parameters = rates.shape[0], rate_jacobian.shape[2]
    db = np.zeros((batch, len(N), n_parameters)) if d_vector is None else d_vector[:, N]
    n = system.n_states
    area, moment = np.full((2, batch, n), fill)
    d_area, d_moment = np.full((2, batch, n, n_parameters), fill)
    try:
        bolus_moments(system.draining_matrix(rates), np.ascontiguousarray(vector[:, N]),
                      np.ascontiguousarray(db, dtype=float),
                      np.ascontiguousarray(rate_jacobian, dtype=float), *system.draining_transfers,
                      N, area, d_area, moment, d_moment)
    except np.linalg.LinAlgError:
        raise SimulationError("the response has no finite area: some compartment never "
                              "drains") from None
    return area, d_area, moment, d_moment


def moments_to(whole, later, time: float):
    """Zeroth and first time moments of the response to a bolus over ``[0, T]``.

    The response after ``T`` is the response to a bolus of the state ``x(T)``, so
    ``int_0^T x dt = M0(b) - M0(x(T))`` and
    ``int_0^T t x dt = M1(b) - M1(x(T)) - T M0(x(T))`` with ``M0``, ``M1`` the moments over
    ``[0, inf)`` (:func:`moments`, or the structured
    :func:`~exopk.engine.structured.forward_moments`). The differences lose about
    ``log10(MRT / T)`` digits (twice that for the first moment) when ``T`` is much shorter than
    the mean residence time.

    Parameters
    ----------
    whole : tuple of four ndarray
        ``(area, d_area, first_moment, d_first_moment)`` of the bolus ``b`` over ``[0, inf)``.
    later : tuple of four ndarray
        The same of the state ``x(T)``.
    time : float
        ``T``.

    Returns
    -------
    area, d_area, first_moment, d_first_moment : ndarray
        As for :func:`moments`, over ``[0, T]``.
    """
    a, da, m, dm = whole
    a_T, da_T, m_T, dm_T = later
    return a - a_T, da - da_T, m - m_T - time * a_T, dm - dm_T - time * da_T


def modal_rates(compiled, system, rates, rate_jacobian, dose, output, expr_values, regimen):
    """Terminal and dominant distribution rate constants of an output, with derivatives."""
    lam, d_lam, V, V_inv, _ = modes(system, rates, rate_jacobian)
    o = compiled.model.output_names.index(output)
    C = output_matrix(compiled, expr_values, regimen)[:, o]                  # (B or 1, n)
    return rates_of_modes(lam, d_lam, modal_weights(C, V, V_inv, dose), output)


def rates_of_modes(lam, d_lam, weights, output):
    """Terminal and distribution rate constants (and derivatives) of a modal sum.

    The terminal rate is that of the slowest decaying mode present (weight above
    ``MODE_WEIGHT_FLOOR`` of ``sum |w_i|``); the distribution rate that of the faster present
    mode of largest weight (NaN when there is none).

    Parameters
    ----------
    lam : ndarray (batch, n)
        Eigenvalues.
    d_lam : ndarray (batch, n, n_parameters)
        Their derivatives (no columns without gradients).
    weights : ndarray (batch, n)
        Modal weights of the output (:func:`modal_weights`).
    output : str
        Named in errors.

    Returns
    -------
    k_terminal, dk_terminal, k_alpha, dk_alpha : ndarray
    """
    magnitude = np.abs(weights)
    decaying = lam.real < -1e-12 * np.abs(lam.real).max(axis=1, keepdims=True)
    present = decaying & (magnitude > MODE_WEIGHT_FLOOR * magnitude.sum(axis=1, keepdims=True))
    if not present.any(axis=1).all():
        raise SimulationError(f"output '{output}' has no decaying mode: no half-life")
    members = np.arange(lam.shape[0])
    # terminal: the slowest present mode; alpha: the present faster mode of largest weight
    terminal = np.argmax(np.where(present, lam.real, -np.inf), axis=1)
    faster = present.copy()
    faster[members, terminal] = False
    alpha = np.argmax(np.where(faster, magnitude, -np.inf), axis=1)
    has_alpha = faster.any(axis=1)
    k_terminal, dk_terminal = -lam[members, terminal].real, -d_lam[members, terminal].real
    k_alpha = np.where(has_alpha, -lam[members, alpha].real, np.nan)
    dk_alpha = np.where(has_alpha[:, None], -d_lam[members, alpha].real, np.nan)
    return k_terminal, dk_terminal, k_alpha, dk_alpha


class CoreModes:
    """Modal sums of outputs that read only core compartments, from the core's decomposition.

    Leaves and sinks never feed back into the core (:mod:`exopk.engine.structured`), so after a
    bolus an output that reads only core compartments is a sum over the core's modes alone:
    ``w_i = (C_C V)_i (V^-1 b_C)_i`` with ``A_CC = V diag(lam) V^-1``. Values only (no
    derivatives); the batch members whose core eigenvector matrix is ill-conditioned are left
    out (``solved`` is False) for the dense functions of this module.

    Parameters
    ----------
    system : LinearSystem
    A : ndarray (batch, n, n)
        System matrices.
    condition_limit : float
        Largest 1-norm condition number of a core eigenvector matrix solved here.

    Attributes
    ----------
    solved : ndarray of bool (batch,)
        The members solved here.
    lam : ndarray (n_solved, n_core)
        Their core eigenvalues.
    span : ndarray (n_solved, n_core + n_leaves)
        Their eigenvalues but the sinks' zeros: the time scales a search for a time spans.
    """

    def __init__(self, system, A: np.ndarray, condition_limit: float):
        blocks = system.blocks
        lam, V, V_inv, condition = system.decompose_core(A)
        self.solved = condition < condition_limit
        self.core = blocks.core
        self.lam = self._of_solved(lam)
        self._V, self._V_inv = V, V_inv        # every member: weights are selected, not these
        n = blocks.n_states
        a_L = A.reshape(len(A), n * n)[:, blocks.leaves * n + blocks.leaves]
        self.span = np.concatenate([self.lam.real, self._of_solved(a_L)], axis=1)

    def _of_solved(self, array: np.ndarray) -> np.ndarray:
        """The rows of ``array`` (batch, ...) of the solved members (itself when all are)."""
        return array if self.solved.all() else array[self.solved]

    def reads_core_only(self, C: np.ndarray) -> bool:
        """Whether the output rows ``C`` (batch or 1, n) are zero outside the core."""
        outside = np.ones(C.shape[-1], dtype=bool)
        outside[self.core] = False
        return not C[..., outside].any()

    def weights(self, C: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Modal weights (n_solved, n_core) of an output row ``C`` (batch or 1, n) that reads
        only core compartments, after the bolus ``dose`` (batch, n)."""
        return self._of_solved(modal_weights(C[:, self.core], self._V, self._V_inv,
                                             dose[:, self.core]))


def modal_weights(C, V, V_inv, dose):
    """``w`` with ``y(t) = sum_i w_i exp(lam_i t)`` after a bolus: ``(C V)_i (V^-1 dose)_i``."""
    return (C[:, None, :] @ V)[:, 0, :] * (V_inv @ dose[:, :, None])[:, :, 0]


def _modal_output(compiled, system, rates, dose, output, expr_values, regimen):
    """Output index, system matrices ``A``, eigenvalues, output row ``C`` and modal weights."""
    o = compiled.model.output_names.index(output)
    A = system.matrix(rates)
    lam, V, V_inv, _ = system.decompose(A)
    C = output_matrix(compiled, expr_values, regimen)[:, o]                  # (B or 1, n)
    return o, A, lam, C, modal_weights(C, V, V_inv, dose)                    # w: (B, n)


def _modal_sum(lam, w, times):
    """``y(t) = Re sum_i w_i exp(lam_i t)`` at ``times`` (batch, K), shape (batch, K).

    A batch's eigenvalues are complex as soon as one member has a complex pair; members whose
    modes and weights are all real are summed in real arithmetic (a quarter of the work).
    """
    if not np.iscomplexobj(lam):
        return (np.exp(lam[:, None, :] * times[:, :, None]) @ w[:, :, None])[..., 0]
    y = np.empty(times.shape)
    real = ~(lam.imag.any(axis=1) | w.imag.any(axis=1))        # members whose sum is real
    if real.any():
        y[real] = _modal_sum(lam[real].real, w[real].real, times[real])
    if not real.all():
        y[~real] = (np.exp(lam[~real][:, None, :] * times[~real][:, :, None])
                    @ w[~real][:, :, None])[..., 0].real
    return y


def _log_time_span(lam, message):
    """Logarithms of times spanning the modes: ``1e-4`` of the fastest to 100 of the slowest
    time constant; ``message`` is raised when nothing decays."""
    speed = np.abs(lam.real)
    fastest = speed.max(axis=1)
    slowest = np.where(speed > 1e-12 * fastest[:, None], speed, np.inf).min(axis=1)
    if not np.isfinite(slowest).all():
        raise SimulationError(message)
    return np.log(1e-4 / fastest), np.log(100.0 / slowest)


def halving_time(lam, w, span, output):
    """First time at which ``y(t) = Re sum_i w_i exp(lam_i t)`` falls to half of ``y(0)``.

    The crossing is bracketed on a log-spaced grid of ``HALVING_GRID_POINTS`` times spanning
    the model's time scales and found by safeguarded Newton steps on ``log y(t)``, member by
    member in compiled code (:mod:`exopk.engine.halving_kernel`).

    Parameters
    ----------
    lam, w : ndarray (batch, n)
        Modes and weights of the output (:func:`modal_weights`).
    span : ndarray (batch, k)
        The rates (eigenvalues) whose time scales the grid spans: ``lam``, or every eigenvalue
        of the system when ``lam`` holds only the modes an output can show.
    output : str
        Named in errors.

    Returns
    -------
    ndarray (batch,)
    """
    from exopk.engine import halving_kernel as kernel     # numba: imported on first use

    if np.iscomplexobj(lam) or np.iscomplexobj(w):
        lam, w = lam.astype(complex, copy=False), w.astype(complex, copy=False)
    times = np.empty(len(lam))
    status = np.empty(len(lam), dtype=np.int8)
    kernel.halving_times(np.ascontiguousarray(lam), np.ascontiguousarray(w),
                         np.abs(span.real), _HALVING_FRACTIONS, times, status)
    if status.any():
        reason = {kernel.NOT_FINITE: "has modes or weights that are not finite: no time to half",
                  kernel.NOT_POSITIVE: "is not positive at time 0: no time to half",
                  kernel.NO_DECAY: "does not decay: no time to half",
                  kernel.NEVER_FALLS: "never falls to half its value at time 0"}
        raise SimulationError(f"output '{output}' {reason[status[status > 0].min()]}")
    return times


def time_to_half(compiled, system, rates, rate_jacobian, dose, d_dose, output, expr_values,
                  expr_jacobian, regimen):
    """First time at which an output falls to half its value at 0, with its derivatives.

    The crossing is found on the modal sum (:func:`halving_time`); a last Newton step and the
    derivative use the engine's state at the crossing (implicit function theorem:
    ``dt/dp = -(dy(t)/dp - dy(0)/dp / 2) / y'(t)``).
    """
    o, A, lam, C, w = _modal_output(compiled, system, rates, dose, output, expr_values, regimen)
    t = halving_time(lam, w, lam, output)
    # the engine's state at the crossing: one more Newton step and the derivative
    x_t, dx_t = system.bolus_response_at(rates, rate_jacobian, dose, d_dose, t)
    zero_d = np.zeros_like(dx_t) if d_dose is None else d_dose
    y_ends, dy_ends = outputs_from_amounts(compiled, expr_values, expr_jacobian, regimen,
                                           paired(dose, x_t), paired(zero_d, dx_t))
    slope = (C * (A @ x_t[:, :, None])[..., 0]).sum(axis=1)
    if not (slope < 0).all():
        raise SimulationError(NOT_FALLING_AT_HALF.format(output))
    t = t - (y_ends[:, 1, o] - 0.5 * y_ends[:, 0, o]) / slope
    return t, -(dy_ends[:, 1, o] - 0.5 * dy_ends[:, 0, o]) / slope[:, None]


def peak_time(lam, w, span, output):
    """Time of the largest value of ``y(t) = Re sum_i w_i exp(lam_i t)`` for ``t >= 0``.

    ``y`` is sampled at 0 and on a log-spaced grid spanning the model's time scales. When the
    largest sample is at 0 and ``y`` falls from the start (``y'(0) <= 0``), the peak is at 0.
    Otherwise the root of ``y'`` between the neighbours of the largest sample is found by
    safeguarded Newton steps.

    Parameters
    ----------
    lam, w, span, output
        As for :func:`halving_time`.

    Returns
    -------
    t : ndarray (batch,)
    at_start : ndarray of bool (batch,)
        Members whose peak is at 0.
    """
    start, end = _log_time_span(span, f"output '{output}' does not change over time: no peak")
    grid = np.concatenate([np.zeros((len(start), 1)),
                           np.exp(start[:, None] + (end - start)[:, None] * _PEAK_FRACTIONS)],
                          axis=1)                                           # (B, K + 1)
    y = _modal_sum(lam, w, grid)
    if not np.all(y.max(axis=1) > 0):
        raise SimulationError(f"output '{output}' is not positive after the dose: no peak")
    best = y.argmax(axis=1)
    if np.any(best == grid.shape[1] - 1):
        raise SimulationError(f"output '{output}' is still rising {np.exp(end).max():g} time "
                              "units after the dose: no peak")
    members = np.arange(len(best))
    at_start = (best == 0) & ((w * lam).sum(axis=1).real <= 0)
    low = np.where(at_start, 0.0, grid[members, np.maximum(best - 1, 0)])
    high = np.where(at_start, 0.0, grid[members, best + 1])
    t = np.where(at_start, 0.0, grid[members, best])
    for _ in range(100):
        e = w * np.exp(lam * t[:, None])
        slope = (e * lam).sum(axis=1).real
        curvature = (e * lam**2).sum(axis=1).real
        rising = slope > 0
        low, high = np.where(rising, t, low), np.where(rising, high, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = slope / curvature                            # Newton on y'(t)
        newton = t - step
        inside = (curvature < 0) & (newton >= low) & (newton <= high)
        t = np.where(at_start, 0.0, np.where(inside, newton, 0.5 * (low + high)))
        if np.all(at_start | (inside & (np.abs(step) <= 1e-13 * t))):
            break
    return t, at_start


def time_of_peak(compiled, system, rates, rate_jacobian, dose, d_dose, output, expr_values,
                 expr_jacobian, regimen):
    """Time of the largest value of an output after a bolus at 0, with its derivatives.

    The peak is found on the modal sum (:func:`peak_time`); a last Newton step and the
    derivative use the engine's state ``x`` at the root (implicit function theorem:
    ``dt/dp = -(d y'(t)/dp) / y''(t)`` with ``y' = C A x`` and
    ``d y'/dp = dC/dp A x + C (dA/dp x + A dx/dp)``).

    Returns
    -------
    t : ndarray (batch,)
    dt : ndarray (batch, n_parameters)
    """
    o, A, lam, _, w = _modal_output(compiled, system, rates, dose, output, expr_values, regimen)
    t, at_start = peak_time(lam, w, lam, output)
    # the engine's state at the peak: one more Newton step and the derivative
    x_t, dx_t = system.bolus_response_at(rates, rate_jacobian, dose, d_dose, t)
    Ax = (A @ x_t[:, :, None])[..., 0]
    d_Ax = system.derivative_times(rate_jacobian, x_t) + A @ dx_t
    AAx = (A @ Ax[:, :, None])[..., 0]
    y_rates, dy_rates = outputs_from_amounts(compiled, expr_values, expr_jacobian, regimen,
                                             paired(Ax, AAx), paired(d_Ax, np.zeros_like(d_Ax)))
    slope, d_slope, curvature = y_rates[:, 0, o], dy_rates[:, 0, o], y_rates[:, 1, o]
    if not np.all(at_start | (curvature < 0)):
        raise SimulationError(f"output '{output}' has no strict maximum where its slope "
                              "vanishes: the time of peak has no derivative")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(at_start, 0.0, t - slope / curvature)
        dt = np.where(at_start[:, None], 0.0, -d_slope / curvature[:, None])
    return t, dt
