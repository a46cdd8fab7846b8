"""Models with saturable (Michaelis-Menten) transfers: an ODE solver with forward sensitivities.

The state and its parameter sensitivities ``S = dx/dp`` are integrated together with
:func:`scipy.integrate.solve_ivp` (LSODA, analytic Jacobian) between dose and observation times;
boluses are jumps of the state and of ``S``, infusions piecewise-constant inputs. Parameter sets
are solved one after another (an adaptive solver cannot share steps across a batch).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from exopk.engine.linear import LinearInput, LinearSystem
from exopk.errors import SimulationError

__all__ = ["solve_saturable", "RTOL", "ATOL_RELATIVE"]

RTOL = 1e-10
ATOL_RELATIVE = 1e-12


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
    dA = system.matrix_derivative(rate_jacobian)
    batch, n, _ = A.shape
    P = dA.shape[1]
    amounts = np.empty((batch, len(times), n))
    sens = np.empty((batch, len(times), n, P)) if gradients else None
    for b in range(batch):
        member = [(s, d, v[b], k[b], vol[b], dv[b], dk[b], dvol[b])
                  for s, d, v, k, vol, dv, dk, dvol in saturable]
        x, dx = _solve_member(A[b], dA[b], member, [
            LinearInput(i.kind, i.time, i.vector[b], None if i.jacobian is None else i.jacobian[b])
            for i in inputs], times, gradients)
        amounts[b] = x
        if gradients:
            sens[b] = dx
    return amounts, sens


def _fluxes(x, member):
    """Flux of each saturable transfer and its partial derivatives."""
    out = []
    for s, d, vmax, km, volume, dvmax, dkm, dvolume in member:
        c = x[s] / volume
        denom = km + c
        flux = vmax * c / denom
        dflux_dc = vmax * km / denom**2
        dflux_dp = (c / denom) * dvmax - (vmax * c / denom**2) * dkm - dflux_dc * c / volume * dvolume
        out.append((s, d, flux, dflux_dc / volume, dflux_dp))
    return out


def _solve_member(A, dA, member, inputs, times, gradients):
    n = A.shape[0]
    P = dA.shape[0]
    scale = max((float(np.abs(i.vector).sum()) for i in inputs), default=1.0) or 1.0
    w = np.zeros(n)
    dw = np.zeros((n, P))

    def rhs(t, z):
        x = z[:n]
        f = A @ x + w
        J = A.copy()
        dfdp = np.einsum("pij,j->ip", dA, x) + dw if gradients else None
        for s, d, flux, dflux_dx, dflux_dp in _fluxes(x, member):
            f[s] -= flux
            f[d] += flux
            J[s, s] -= dflux_dx
            J[d, s] += dflux_dx
            if gradients:
                dfdp[s] -= dflux_dp
                dfdp[d] += dflux_dp
        if not gradients:
            return f
        S = z[n:].reshape(n, P)
        return np.concatenate([f, (J @ S + dfdp).reshape(-1)])

    size = n * (1 + P) if gradients else n
    z = np.zeros(size)
    out = np.zeros((len(times), size))
    points = sorted({float(t) for t in times} | {float(i.time) for i in inputs})
    t_now = points[0]
    for t in points:
        if t > t_now:
            solution = solve_ivp(rhs, (t_now, t), z, method="LSODA", rtol=RTOL,
                                 atol=ATOL_RELATIVE * scale)
            if not solution.success:
                raise SimulationError(f"ODE solver failed between t={t_now:g} and {t:g}: "
                                      f"{solution.message}")
            z = solution.y[:, -1]
            t_now = t
        for item in inputs:
            if item.time == t:
                jump = np.zeros(size)
                jump[:n] = item.vector
                if gradients and item.jacobian is not None:
                    jump[n:] = item.jacobian.reshape(-1)
                if item.kind == "bolus":
                    z = z + jump
                else:
                    w = w + jump[:n]
                    dw = dw + jump[n:].reshape(n, P) if gradients else dw
        out[np.asarray(times) == t] = z
    x = out[:, :n]
    dx = out[:, n:].reshape(len(times), n, P) if gradients else None
    return x, dx
