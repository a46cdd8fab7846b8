"""From parameters, times and a regimen to outputs, amounts and sensitivities.

:func:`evaluate` is the numeric core (plain arrays, used by likelihoods and samplers);
:func:`simulate` wraps it in a labelled :class:`xarray.Dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.engine.linear import LinearInput, LinearSystem
from exopk.engine.nonlinear import solve_saturable
from exopk.errors import SimulationError

__all__ = ["SimulationArrays", "evaluate", "simulate", "validate_times", "ROUTE_SUM_TOLERANCE"]

ROUTE_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SimulationArrays:
    """Raw simulation results for a batch of parameter sets.

    Attributes
    ----------
    outputs : ndarray, shape (batch, n_times, n_outputs)
    output_sensitivities : ndarray, shape (batch, n_times, n_outputs, n_parameters) or None
    amounts : ndarray, shape (batch, n_times, n_compartments)
    amount_sensitivities : ndarray, shape (batch, n_times, n_compartments, n_parameters) or None
    administered : ndarray, shape (batch, n_times)
        Amount that has entered the system by each time (doses, and for a steady-state dose the
        amount carried over from earlier doses).
    """

    outputs: np.ndarray
    output_sensitivities: np.ndarray | None
    amounts: np.ndarray
    amount_sensitivities: np.ndarray | None
    administered: np.ndarray

    @property
    def mass_balance_residual(self) -> np.ndarray:
        """Sum over all compartments (sinks included) minus the amount administered."""
        return self.amounts.sum(axis=-1) - self.administered


def validate_times(times) -> np.ndarray:
    """Check and return observation times as a 1-d float array."""
    if times is None:
        raise SimulationError("give the observation times")
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or t.size == 0:
        raise SimulationError("times must be a non-empty 1-d sequence")
    if not np.all(np.isfinite(t)):
        raise SimulationError(f"time {t[~np.isfinite(t)][0]} at position "
                              f"{int(np.flatnonzero(~np.isfinite(t))[0])} is not finite")
    if np.any(t < 0):
        raise SimulationError(f"time {t[t < 0][0]:g} at position {int(np.flatnonzero(t < 0)[0])} "
                              "is negative; times count from the first dose at 0")
    return t


def _system(compiled) -> LinearSystem:
    system = getattr(compiled, "_linear_system", None)
    if system is None:
        system = LinearSystem(len(compiled.state_names), compiled.linear_sources,
                              compiled.linear_targets)
        compiled._linear_system = system
    return system


def _inputs(compiled, regimen: Regimen, values, jacobian, gradients):
    """Linear inputs for every dose, with dose split fractions checked."""
    batch = values.shape[0]
    n = len(compiled.state_names)
    P = jacobian.shape[2]
    splits = {}
    for route in regimen.routes:
        if route not in compiled.route_rows:
            raise SimulationError(f"model '{compiled.model.name}' has no route '{route}'; known: "
                                  f"{', '.join(compiled.route_rows)}")
        fractions = np.zeros((batch, n))
        d_fractions = np.zeros((batch, n, P))
        for state, row in compiled.route_rows[route]:
            fractions[:, state] += values[:, row]
            d_fractions[:, state] += jacobian[:, row]
        total = fractions.sum(axis=1)
        bad = (np.abs(total - 1.0) > ROUTE_SUM_TOLERANCE) | np.any(fractions < 0, axis=1) | \
            np.any(fractions > 1, axis=1)
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"route '{route}' splits the dose into fractions "
                f"{dict(zip(compiled.state_names, np.round(fractions[b], 12)))} (sum {total[b]:.12g}); "
                f"each must lie in [0, 1] and they must add up to 1 (parameter set {b})")
        splits[route] = (fractions, d_fractions if gradients else None)
    inputs = []
    for dose in regimen.doses:
        fractions, d_fractions = splits[dose.route]
        if dose.is_infusion:
            rate = dose.amount / dose.duration
            d = None if d_fractions is None else rate * d_fractions
            inputs.append(LinearInput("step", dose.time, rate * fractions, d))
            inputs.append(LinearInput("step", dose.time + dose.duration, -rate * fractions,
                                      None if d is None else -d))
        else:
            kind = "bolus" if dose.steady_state_interval is None else "steady_state_bolus"
            d = None if d_fractions is None else dose.amount * d_fractions
            inputs.append(LinearInput(kind, dose.time, dose.amount * fractions, d,
                                      dose.steady_state_interval))
    return inputs


def _administered(regimen: Regimen, times):
    total = np.zeros(len(times))
    for dose in regimen.doses:
        elapsed = times - dose.time
        if dose.is_infusion:
            total += dose.amount * np.clip(elapsed / dose.duration, 0.0, 1.0)
        else:
            total += np.where(elapsed >= 0, dose.amount, 0.0)
    return total


def evaluate(compiled, theta: np.ndarray, times: np.ndarray, regimen: Regimen, *,
             gradients: bool = False, path: str = "auto") -> SimulationArrays:
    """Simulate a batch of parameter sets; the numeric core behind :func:`simulate`.

    Parameters
    ----------
    compiled : CompiledModel
    theta : ndarray, shape (batch, n_parameters)
        Parameter values in the order of ``compiled.parameter_names`` (checked by
        :meth:`CompiledModel.parameter_matrix`).
    times : ndarray, shape (n_times,)
    regimen : Regimen
    gradients : bool
        Also return exact sensitivities with respect to every parameter.
    path : {"auto", "eigen", "expm"}
        Linear solution path (see :mod:`exopk.engine.linear`).
    """
    values, jacobian = compiled.evaluate_expressions(theta)
    rates = values[:, compiled.rate_rows]
    if np.any(rates < 0):
        b, j = np.argwhere(rates < 0)[0]
        t = [t for t in compiled.model.transfers if t.kind != "michaelis_menten"][j]
        raise SimulationError(f"transfer {t.source} -> {t.target} has negative rate "
                              f"{rates[b, j]:g} (parameter set {b})")
    rate_jacobian = jacobian[:, compiled.rate_rows, :] if gradients else None
    inputs = _inputs(compiled, regimen, values, jacobian, gradients)
    system = _system(compiled)
    if compiled.saturable:
        saturable = [(s, d, values[:, v], values[:, k], values[:, vol], jacobian[:, v],
                      jacobian[:, k], jacobian[:, vol]) for s, d, v, k, vol in compiled.saturable]
        amounts, d_amounts = solve_saturable(system, rates, jacobian[:, compiled.rate_rows, :],
                                             saturable, inputs, times, gradients=gradients)
        carried = np.zeros((theta.shape[0], len(times)))
    else:
        amounts, d_amounts, carried = system.solve(rates, inputs, times,
                                                   rate_jacobian=rate_jacobian, path=path,
                                                   return_carried=True)
    administered = _administered(regimen, times)[None, :] + carried

    outputs, d_outputs = _outputs(compiled, values, jacobian, regimen, amounts, d_amounts)
    return SimulationArrays(outputs, d_outputs, amounts, d_amounts, administered)


def _outputs(compiled, values, jacobian, regimen, amounts, d_amounts):
    """Outputs ``y = C(p) x`` and ``dy/dp = C dx/dp + (dC/dp) x``."""
    terms = compiled.output_term_table
    if terms.percent.any() and regimen.total_amount <= 0:
        raise SimulationError("percent-of-dose outputs need a regimen with a positive total dose")
    scale = np.where(terms.percent, 100.0 / max(regimen.total_amount, 1e-300), 1.0)
    weights = values[:, terms.rows] * scale                                  # (B, terms)
    batch, n = values.shape[0], len(compiled.state_names)
    C = (weights @ terms.placement).reshape(batch, -1, n)                    # (B, O, n)
    outputs = amounts @ C.transpose(0, 2, 1)
    if d_amounts is None:
        return outputs, None
    d_outputs = C[:, None] @ d_amounts                                       # (B, T, O, P)
    d_weights = jacobian[:, terms.rows, :] * scale[:, None]                  # (B, terms, P)
    x_terms = amounts[:, :, terms.states]                                    # (B, T, terms)
    d_outputs += terms.membership.T @ (x_terms[..., None] * d_weights[:, None])
    return outputs, d_outputs


def simulate(model, parameters=None, times=None, regimen: Regimen | None = None, *,
             gradients: bool = False, path: str = "auto") -> xr.Dataset:
    """Simulate a model and return a labelled dataset.

    Parameters
    ----------
    model : Model
    parameters : mapping, sequence or ndarray, optional
        Parameter values: a mapping ``name -> value`` (others keep their nominal value), a
        vector of all parameters, or, for many parameter sets at once, a mapping of equal-length
        arrays or a (draw, n_parameters) array. Default: the nominal values.
    times : sequence of float
        Observation times in the model's time unit (non-negative; 0 is the first dose).
    regimen : Regimen
        Doses. Default: a bolus of 100 amount units by the model's first route.
    gradients : bool
        Include ``sensitivity`` (d output / d parameter) and ``amount_sensitivity``.
    path : {"auto", "eigen", "expm"}
        Linear solution path.

    Returns
    -------
    xarray.Dataset
        Variables ``value`` (time, output), ``amount`` (time, compartment), ``administered``
        and ``mass_balance_residual`` (time), plus the sensitivities when asked. When several
        parameter sets are given, every variable gets a leading ``draw`` dimension. The unit of
        each output is the ``unit`` coordinate; time and amount units are in ``attrs``.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> ds = model.simulate({"CL": 0.5, "V_plasma": 1.0}, times=[0, 10], regimen=exopk.Regimen.bolus("iv", 100))
    >>> print(f"{float(ds.value.sel(output='plasma_percent_id', time=10)):.6f}", f"{100 * np.exp(-5):.6f}")
    0.673795 0.673795
    """
    compiled = model.compiled
    theta = compiled.parameter_matrix(parameters)
    single = parameters is None or (
        not hasattr(parameters, "keys") and np.ndim(parameters) == 1) or (
        hasattr(parameters, "keys") and all(np.ndim(v) == 0 for v in parameters.values()))
    t = validate_times(times)
    if regimen is None:
        regimen = Regimen.bolus(model.routes[0].name, 100.0)
    result = evaluate(compiled, theta, t, regimen, gradients=gradients, path=path)

    dims_draw = ("draw",)
    coords = {
        "time": ("time", t, {"units": model.time_unit}),
        "output": list(compiled.model.output_names),
        "compartment": list(compiled.state_names),
        "unit": ("output", list(compiled.output_units)),
    }
    data = {
        "value": (dims_draw + ("time", "output"), result.outputs,
                  {"long_name": "model output", "units": "see the unit coordinate"}),
        "amount": (dims_draw + ("time", "compartment"), result.amounts,
                   {"units": model.amount_unit}),
        "administered": (dims_draw + ("time",), result.administered,
                         {"units": model.amount_unit,
                          "long_name": "amount that has entered the system"}),
        "mass_balance_residual": (dims_draw + ("time",), result.mass_balance_residual,
                                  {"units": model.amount_unit,
                                   "long_name": "sum of all compartments minus amount administered"}),
    }
    if gradients:
        coords["parameter"] = list(compiled.parameter_names)
        data["sensitivity"] = (dims_draw + ("time", "output", "parameter"),
                               result.output_sensitivities,
                               {"long_name": "d value / d parameter"})
        data["amount_sensitivity"] = (dims_draw + ("time", "compartment", "parameter"),
                                      result.amount_sensitivities,
                                      {"long_name": "d amount / d parameter"})
    ds = xr.Dataset(data, coords=coords)
    ds = ds.assign_coords({name: ("draw", theta[:, i]) for i, name in
                           enumerate(compiled.parameter_names)}) if not single else ds
    ds.attrs.update({
        "model": model.name,
        "model_file": model.source_file or "",
        "time_unit": model.time_unit,
        "amount_unit": model.amount_unit,
        "regimen": "; ".join(
            f"{d.route} {d.amount:g} {model.amount_unit} at {d.time:g} {model.time_unit}"
            + (f" over {d.duration:g}" if d.duration else "")
            + (f" (steady state every {d.steady_state_interval:g})" if d.steady_state_interval else "")
            for d in regimen.doses),
        "percent_id_reference": f"{regimen.total_amount:g} {model.amount_unit} (total of the regimen)",
    })
    if single:
        ds = ds.isel(draw=0, drop=True)
        ds.attrs["parameters"] = "; ".join(f"{n}={v:g}" for n, v in
                                           zip(compiled.parameter_names, theta[0]))
    return ds
