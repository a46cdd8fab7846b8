"""Models with saturable (Michaelis-Menten) transfers: an ODE solver with forward sensitivities.

The state ``x`` and its parameter sensitivities ``S = dx/dp`` are integrated together with
:func:`scipy.integrate.odeint` (LSODA) in one pass per interval between doses, reporting every
observation time inside it (no restart per observation); boluses are jumps of the state and of
``S``, infusions piecewise-constant inputs. ``odeint`` steps through the whole interval in
compiled code and keeps nothing after a call (``solve_ivp``'s LSODA, which returns to Python at
every step, kept about 100 kB per call of a 12-compartment model with 23 parameters: gigabytes
over a fit). The right-hand side is compiled (:mod:`exopk.engine.saturable_kernels`, a few
microseconds per call where numpy expressions cost tens): every term that does not multiply
``S`` (the first-order part ``A x`` and ``dA/dp x``, the saturable fluxes through an incidence
matrix and their parameter derivatives) is one matrix product with ``[x, saturable
coefficients]``, and ``S`` enters through one product with the state Jacobian. LSODA gets the
analytic Jacobian: the state Jacobian ``J`` on every diagonal block (exact for ``dS'/dS``; the
coupling ``dS'/dx`` is left out, which keeps the matrix banded with half-bandwidth ``n - 1`` and
LSODA's factorisations cheap; the omitted part is strictly block lower triangular, so the Newton
iterations still converge). Parameter sets are solved one after
another (an adaptive solver cannot share steps across a batch).

A parameter set that makes the system so stiff that the solver needs more than
``MAX_RHS_CALLS`` right-hand-side evaluations in one interval stops with a
:class:`~exopk.errors.SimulationError` naming the parameter set and the time reached, instead
of running for minutes.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import odeint

from exopk.engine.linear import LinearInput, LinearSystem
from exopk.errors import SimulationError

__all__ = ["solve_saturable", "RTOL", "ATOL_RELATIVE", "MAX_RHS_CALLS"]

RTOL = 1e-12
# absolute tolerance per unit of the largest dose: 1e-12 held values to 5e-11 of the 50-digit
# reference where no sensitivities share the error test (with them, steps are shorter), 1e-14
# to 7e-13 with or without them, at no measurable cost with sensitivities
ATOL_RELATIVE = 1e-14
MAX_RHS_CALLS = 50_000


def solve_saturable(system: LinearSystem, rates, rate_jacobian, saturable, inputs, times, *,
                    gradients: bool):
    """Amounts (and sensitivities) for models with saturable transfers.

    Parameters
    ----------
    system : LinearSystem
        The first-order part of the model.
    rates, rate_jacobian : ndarray
        First-order rates (batch, m) and their parameter derivatives (batch, m, P).
    saturable : list of tuple
        ``(source, target, vmax, km, volume, d_vmax, d_km, d_volume)`` with arrays over the
        batch: values (batch,) and derivatives (batch, P).
    inputs : list of LinearInput
    times : ndarray
    gradients : bool

    Returns
    -------
    amounts, sensitivities : as :meth:`LinearSystem.solve`
    """
    if any(item.kind == "steady_state_bolus" for item in inputs):
        raise SimulationError("steady-state dosing is available for linear models only")
    A = system.matrix(rates)
    dA = system.matrix_derivative(rate_jacobian) if gradients else None
    batch, n, _ = A.shape
    P = rate_jacobian.shape[2]
    sources = np.array([item[0] for item in saturable], dtype=int)
    targets = np.array([item[1] for item in saturable], dtype=int)
    vmax, km, volume = (np.stack([item[k] for item in saturable], axis=1) for k in (2, 3, 4))
    d_vmax, d_km, d_volume = (np.stack([item[k] for item in saturable], axis=1)
                              for k in (5, 6, 7))                              # (batch, k, P)
    times = np.asarray(times, dtype=float)
    amounts = np.empty((batch, len(times), n))
    sens = np.empty((batch, len(times), n, P)) if gradients else None
    for b in range(batch):
        fluxes = _SaturableFluxes(n, sources, targets, vmax[b], km[b], volume[b], d_vmax[b],
                                  d_km[b], d_volume[b])
        member_inputs = [LinearInput(i.kind, i.time, i.vector[b],
                                     None if i.jacobian is None else i.jacobian[b])
                         for i in inputs]
        try:
            x, dx = _integrate(A[b], None if dA is None else dA[b], fluxes, member_inputs, times,
                               P if gradients else 0)
        except SimulationError as error:
            raise SimulationError(f"{error} (parameter set {b})") from None
        amounts[b] = x
        if gradients:
            sens[b] = dx
    return amounts, sens


class _SaturableFluxes:
    """Michaelis-Menten transfers of one parameter set: ``flux_j = vmax_j c / (km_j + c)`` with
    ``c = x[source_j] / volume_j``, moved from source to target.

    Below zero amounts (integration error around an emptied compartment) the flux continues as
    its tangent at 0, ``vmax c / km``: smooth (C1) at 0, pulling the amount back as the
    Michaelis-Menten form does, but finite (the form itself has a pole at ``c = -km``).

    With ``g = flux / vmax`` the flux's derivative by a parameter is
    ``g dvmax + vmax g_km dkm + vmax g_c (dx_source / volume - c dvolume / volume)``: the
    ``dx_source`` part belongs to the state Jacobian, the rest is linear in the parameter
    derivatives ``(dvmax, dkm, dvolume)`` with coefficients ``(g, vmax g_km, -vmax g_c c /
    volume)``, and ``direct_matrix`` carries them to ``d(dx/dt)/dp`` (through the incidence of
    each transfer) in one product (:mod:`exopk.engine.saturable_kernels` evaluates both).
    """

    def __init__(self, n, sources, targets, vmax, km, volume, d_vmax, d_km, d_volume):
        k = len(sources)
        self.sources = sources
        incidence = np.zeros((n, k))                                           # (n, k)
        np.add.at(incidence, (sources, np.arange(k)), -1.0)
        np.add.at(incidence, (targets, np.arange(k)), 1.0)
        self.incidence_vmax = incidence * vmax                                 # (n, k)
        self.incidence_over_volume = incidence * (vmax / volume)
        self.vmax, self.km = vmax, km
        self.inverse_km, self.inverse_volume = 1.0 / km, 1.0 / volume
        # direct_matrix[p, i, :] = d(dx_i/dt)/dp per coefficient (g, vmax g_km, -vmax g_c c/V)
        by_coefficient = np.stack([d_vmax, d_km, d_volume])                     # (3, k, P)
        self.direct_matrix = np.einsum("ij,ajp->piaj", incidence,
                                       by_coefficient).reshape(d_vmax.shape[1], n, 3 * k)


class _Stalled(Exception):
    """Raised inside the right-hand side when the evaluation budget is spent."""


def _integrate(A, dA, fluxes, inputs, times, n_parameters):
    """Amounts (T, n) and sensitivities (T, n, P) of one parameter set (P = 0: none).

    The integrated vector is ``[x, S[:, 0], ..., S[:, P-1]]``.
    """
    n = A.shape[0]
    P = n_parameters
    size = n * (1 + P)
    scale = max((float(np.abs(i.vector).sum()) for i in inputs), default=1.0) or 1.0
    w = np.zeros(n)                     # infusion rate
    dw = np.zeros((P, n))               # its parameter derivative
    calls = [0]

    def count():
        calls[0] += 1
        if calls[0] > MAX_RHS_CALLS:
            raise _Stalled

    # compiled right-hand sides: numba is imported only when a saturable model is solved
    from exopk.engine import saturable_kernels as kernels

    transfers = (fluxes.sources, fluxes.km, fluxes.inverse_km, fluxes.inverse_volume)
    derivative = np.empty(size)
    state_jacobian = np.empty((n, n))

    def rhs_state(t, x):
        count()
        kernels.state_rhs(x, A, w, fluxes.incidence_vmax, *transfers, derivative)
        return derivative

    if P:
        # every term of [dx/dt, dS/dt] that does not multiply S in one product:
        # [[A, incidence vmax, 0], [dA_p for all p, saturable parameter terms]]
        # applied to [x, g, vmax g_km, -vmax g_c c / volume]
        k = fluxes.incidence_vmax.shape[1]
        direct = np.block([[A, fluxes.incidence_vmax, np.zeros((n, 2 * k))],
                           [dA.reshape(P * n, n), fluxes.direct_matrix.reshape(P * n, -1)]])
        direct_vector = np.empty(direct.shape[1])

    def rhs_sensitivities(t, z):
        count()
        kernels.sensitivity_rhs(z, A, w, dw, direct, fluxes.incidence_over_volume, fluxes.vmax,
                                *transfers, state_jacobian, direct_vector, derivative)
        return derivative

    # banded storage of the block-diagonal Jacobian (zero outside the blocks' bands)
    packed = np.zeros((2 * n - 1, size))

    def jacobian(t, z):
        kernels.banded_jacobian(z, A, fluxes.incidence_over_volume, *transfers, state_jacobian,
                                1 + P, packed)
        return packed

    rhs = rhs_sensitivities if P else rhs_state
    z = np.zeros(size)
    out = np.zeros((len(times), size))
    t_now = None
    for t_end in sorted({float(i.time) for i in inputs} | {float(times.max())}):
        if t_now is not None and t_end > t_now:
            inside = np.flatnonzero((times > t_now) & (times <= t_end))
            t_eval = np.unique(np.append(times[inside], t_end))
            calls[0] = 0
            try:
                path, info = odeint(rhs, z, np.concatenate([[t_now], t_eval]), Dfun=jacobian,
                                    ml=n - 1, mu=n - 1, rtol=RTOL, atol=ATOL_RELATIVE * scale,
                                    mxstep=MAX_RHS_CALLS, full_output=True, tfirst=True)
            except _Stalled:
                raise SimulationError(
                    f"the ODE solver needed more than {MAX_RHS_CALLS:,} right-hand-side "
                    f"evaluations between t={t_now:g} and {t_end:g}: the saturable system is "
                    "too stiff at these parameter values (a very small Km against Vmax)"
                ) from None
            if info["message"] != "Integration successful.":
                raise SimulationError(f"ODE solver failed between t={t_now:g} and {t_end:g}: "
                                      f"{info['message']}")
            out[inside] = path[1:][np.searchsorted(t_eval, times[inside])]
            z = path[-1].copy()
        t_now = t_end
        for item in inputs:
            if item.time == t_end:
                if item.kind == "bolus":
                    z[:n] += item.vector
                    if P and item.jacobian is not None:
                        z[n:] += item.jacobian.T.reshape(-1)
                else:
                    w = w + item.vector
                    if P and item.jacobian is not None:
                        dw = dw + item.jacobian.T
        out[times == t_end] = z
    x = out[:, :n]
    dx = out[:, n:].reshape(len(times), P, n).transpose(0, 2, 1) if P else None
    return x, dx
