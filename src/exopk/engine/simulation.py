"""From parameters, times and a regimen to outputs, amounts and sensitivities.

:func:`evaluate` is the numeric core (plain arrays, used by likelihoods and samplers);
:func:`simulate` wraps it in a labelled :class:`xarray.Dataset`.

Percent of dose
---------------
An output in %ID (``percent_id``, ``percent_id_per_g``) at time ``t`` is a percentage of the
dose given by ``t``: boluses given at or before ``t`` whole, infusions pro rata (the
``administered`` amount, without what a steady-state start carries over). One minute after the
first of two equal boluses, a one-compartment model shows ``100 exp(-k)`` %ID, not half of it.
Before the first dose the reference is the regimen's total (nothing has been given; the amounts
are zero). Areas under %ID outputs (:func:`exopk.metrics.exposure.auc`, and the single-dose
summaries of :mod:`exopk.engine.summaries`) integrate one curve and refer to the regimen's total
dose; values and peaks over time (:func:`exopk.metrics.exposure.output_at`,
:func:`exopk.metrics.exposure.peak`) are the values above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.engine.compiled import compile_model
from exopk.engine.linear import LinearInput
from exopk.engine.nonlinear import solve_saturable
from exopk.engine.single_set import SingleSetPlan, single_set_outputs
from exopk.errors import SimulationError

__all__ = ["SimulationArrays", "dose_inputs", "evaluate", "output_matrix", "outputs_from_amounts",
           "paired", "percent_scale", "route_fractions", "simulate", "validate_times",
           "ROUTE_SUM_TOLERANCE"]

ROUTE_SUM_TOLERANCE = 1e-9
KEPT = 64     # regimens (and times) whose output matrices and administered amounts are kept


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

    Examples
    --------
    >>> import numpy as np, exopk
    >>> from exopk.engine import compile_model, evaluate
    >>> compiled = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    >>> arrays = evaluate(compiled, compiled.parameter_matrix(), np.array([0.0, 10.0]),
    ...                   exopk.Regimen.bolus("iv", 100.0))
    >>> arrays.outputs.shape, arrays.output_sensitivities
    ((1, 2, 4), None)
    >>> arrays.amounts[0, 1].round(4)          # plasma and eliminated at 10 min (k = 0.2/min)
    array([13.5335, 86.4665])
    >>> float(abs(arrays.mass_balance_residual).max()) < 1e-12
    True
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


def route_fractions(compiled, values, route: str) -> np.ndarray:
    """Share of a dose by ``route`` that lands in each compartment, shape (batch, states).

    ``values`` are the model's expression values (:meth:`CompiledModel.evaluate_expressions`).
    """
    if route not in compiled.route_rows:
        raise SimulationError(f"model '{compiled.model.name}' has no route '{route}'; known: "
                              f"{', '.join(compiled.route_rows)}")
    states, rows = compiled.route_rows[route]
    fractions = np.zeros((values.shape[0], len(compiled.state_names)))
    fractions[:, states] = values[:, rows]
    return fractions


def dose_inputs(compiled, regimen: Regimen, values, jacobian):
    """Linear inputs for every dose, with dose split fractions checked.

    ``jacobian`` is None when no sensitivities are wanted.
    """
    batch = values.shape[0]
    n = len(compiled.state_names)
    splits = {}
    for route in regimen.routes:
        fractions = route_fractions(compiled, values, route)
        if route in compiled.constant_routes:
            # fractions without parameters: checked when the model was read, no derivatives
            splits[route] = (fractions, None)
            continue
        states, rows = compiled.route_rows[route]
        total = fractions.sum(axis=1)
        if (np.abs(total - 1.0) > ROUTE_SUM_TOLERANCE).any() or fractions.min() < 0 \
                or fractions.max() > 1:
            bad = (np.abs(total - 1.0) > ROUTE_SUM_TOLERANCE) | np.any(fractions < 0, axis=1) | \
                np.any(fractions > 1, axis=1)
            b = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"route '{route}' splits the dose into fractions "
                f"{dict(zip(compiled.state_names, np.round(fractions[b], 12)))} (sum {total[b]:.12g}); "
                f"each must lie in [0, 1] and they must add up to 1 (parameter set {b})")
        d_fractions = None
        if jacobian is not None and jacobian[:, rows].any():
            d_fractions = np.zeros((batch, n, jacobian.shape[2]))
            d_fractions[:, states] = jacobian[:, rows]
        splits[route] = (fractions, d_fractions)
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


def _administered(compiled, regimen: Regimen, times):
    """Amount given by each time: boluses whole, infusions pro rata (read-only, kept per
    regimen and times)."""
    key = (regimen, times.tobytes())
    given = compiled.administered.get(key)
    if given is None:
        if len(compiled.administered) >= KEPT:
            compiled.administered.clear()
        given = compiled.administered[key] = _given(regimen, times)
        given.flags.writeable = False
    return given


def _given(regimen: Regimen, times):
    """The amounts of :func:`_administered`, computed."""
    starts, amounts, durations = regimen.arrays
    elapsed = times[:, None] - starts[None, :]
    if not durations.any():
        return (elapsed >= 0) @ amounts
    given = np.where(durations > 0, np.clip(elapsed / np.where(durations > 0, durations, 1.0), 0, 1),
                     elapsed >= 0)
    return given @ amounts


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
    path : {"auto", "structured", "dense", "eigen", "expm"}
        Linear solution path (see :mod:`exopk.engine.linear`).

    Returns
    -------
    SimulationArrays

    Examples
    --------
    Two clearances at once, with exact sensitivities: after a bolus of 100 into one
    compartment, %ID is ``100 exp(-CL t / V)`` and its derivative with respect to ``CL`` is
    ``-100 (t / V) exp(-CL t / V)``:

    >>> import numpy as np, exopk
    >>> from exopk.engine import compile_model, evaluate
    >>> compiled = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    >>> theta = compiled.parameter_matrix({"CL": [0.1, 0.2], "V_plasma": [1.0, 1.0]})
    >>> arrays = evaluate(compiled, theta, np.array([10.0]), exopk.Regimen.bolus("iv", 100.0),
    ...                   gradients=True)
    >>> arrays.outputs[:, 0, 0].round(4), (100 * np.exp([-1.0, -2.0])).round(4)
    (array([36.7879, 13.5335]), array([36.7879, 13.5335]))
    >>> arrays.output_sensitivities[:, 0, 0, 0].round(3), (-1000 * np.exp([-1.0, -2.0])).round(3)
    (array([-367.879, -135.335]), array([-367.879, -135.335]))
    """
    # saturable models always need the Jacobian: their ODE solver uses it
    values, jacobian = compiled.evaluate_expressions(
        theta, derivatives=gradients or bool(compiled.saturable))
    if not gradients and path == "auto" and theta.shape[0] == 1:
        # one parameter set without sensitivities: right eigenvectors and one LU solve
        plan = _single_set_plan(compiled, regimen, times)
        found = None if plan is None else single_set_outputs(plan, values,
                                                             len(compiled.state_names))
        if found is not None:
            return SimulationArrays(found[0], None, found[1], None, plan.administered.copy())
    inputs = dose_inputs(compiled, regimen, values, jacobian if gradients else None)
    outputs, d_outputs, amounts, d_amounts, carried = respond(
        compiled, values, jacobian, inputs, times, regimen, gradients=gradients, path=path)
    administered = _administered(compiled, regimen, times)[None, :].repeat(amounts.shape[0],
                                                                          axis=0)
    if carried is not None:
        administered = administered + carried
    return SimulationArrays(outputs, d_outputs, amounts, d_amounts, administered)


def _single_set_plan(compiled, regimen, times):
    """The :class:`SingleSetPlan` of ``regimen`` at ``times`` (None where the general path
    answers), kept per regimen and times like :func:`_administered`."""
    if any(route not in compiled.route_rows for route in regimen.routes):
        return None                         # the general path raises the error that says so
    key = (regimen, times.tobytes())
    if key not in compiled.single_set_plans:
        if len(compiled.single_set_plans) >= KEPT:
            compiled.single_set_plans.clear()
        compiled.single_set_plans[key] = SingleSetPlan.build(
            compiled, regimen, times, percent_scale(compiled, regimen),
            _given_so_far(compiled, regimen, times), _administered(compiled, regimen, times),
            ROUTE_SUM_TOLERANCE)
    return compiled.single_set_plans[key]


def respond(compiled, values, jacobian, inputs, times, regimen, *, gradients, path="auto"):
    """Amounts and outputs at ``times`` for evaluated expressions and dose inputs.

    The step of :func:`evaluate` after the expressions (``values``, ``jacobian`` from
    :meth:`CompiledModel.evaluate_expressions`) and the dose inputs (:func:`dose_inputs`) are
    known; callers that need them for other quantities too (PK summaries) compute them once.

    Returns
    -------
    outputs, d_outputs, amounts, d_amounts : ndarray or None
        As in :class:`SimulationArrays` (derivatives None without ``gradients``).
    carried : ndarray (batch, n_times) or None
        Amount present because steady-state doses start from the pre-dose steady state.
    """
    rates = values[:, compiled.rate_rows]
    if rates.min(initial=0.0) < 0:
        b, j = np.argwhere(rates < 0)[0]
        t = [t for t in compiled.model.transfers if t.kind != "michaelis_menten"][j]
        raise SimulationError(f"transfer {t.source} -> {t.target} has negative rate "
                              f"{rates[b, j]:g} (parameter set {b})")
    rate_jacobian = jacobian[:, compiled.rate_rows, :] if jacobian is not None else None
    system = compiled.linear_system
    if compiled.saturable:
        saturable = [(s, d, values[:, v], values[:, k], values[:, vol], jacobian[:, v],
                      jacobian[:, k], jacobian[:, vol]) for s, d, v, k, vol in compiled.saturable]
        amounts, d_amounts = solve_saturable(system, rates, rate_jacobian, saturable, inputs,
                                             times, gradients=gradients)
        carried = None
    else:
        amounts, d_amounts, carried = system.solve(
            rates, inputs, times, rate_jacobian=rate_jacobian if gradients else None, path=path,
            return_carried=True)
    outputs, d_outputs = outputs_from_amounts(compiled, values, jacobian, regimen, amounts, d_amounts)
    if compiled.output_endogenous.any():
        _add_endogenous(compiled, values, jacobian if gradients else None, rates,
                        rate_jacobian if gradients else None, regimen, outputs, d_outputs)
    correction = _given_so_far(compiled, regimen, times)
    if correction is not None:
        outputs *= correction
        if d_outputs is not None:
            d_outputs *= correction[..., None]
    return outputs, d_outputs, amounts, d_amounts, carried


def _given_so_far(compiled, regimen, times):
    """Per time and output (n_times, n_outputs): the regimen's total dose over the dose given by
    that time for percent-of-dose outputs, 1 for others and before the first dose; None when it
    is 1 throughout (a single dose observed after it is given). Read-only, kept per regimen and
    times like :func:`_administered`."""
    percent = compiled.output_term_table.output_percent
    if not percent.any():
        return None
    if len(regimen.doses) == 1 and not regimen.doses[0].is_infusion:
        return None     # one bolus: the whole dose is given from its time on, none before
    times = np.asarray(times, dtype=float)
    key = (regimen, times.tobytes())
    if key not in compiled.given_so_far:
        if len(compiled.given_so_far) >= KEPT:
            compiled.given_so_far.clear()
        given = _administered(compiled, regimen, times)
        ratio = np.where(given > 0, regimen.total_amount / np.where(given > 0, given, 1.0), 1.0)
        correction = None if np.all(ratio == 1.0) else np.where(percent[None, :],
                                                                ratio[:, None], 1.0)
        if correction is not None:
            correction.flags.writeable = False
        compiled.given_so_far[key] = correction
    return compiled.given_so_far[key]


def _add_endogenous(compiled, values, jacobian, rates, rate_jacobian, regimen, outputs, d_outputs):
    """Add the steady state sustained by endogenous secretion to the outputs that include it.

    On the draining compartments ``N``: ``A_NN x + u_N = 0``, so ``x = -A_NN^-1 u_N`` and
    ``dx = -A_NN^-1 (dA_NN x + du_N)``.
    """
    system = compiled.linear_system
    N = np.flatnonzero(system.draining)
    A = system.matrix(rates)[:, N[:, None], N[None, :]]
    u = np.zeros((values.shape[0], len(N)))
    position = int(np.flatnonzero(N == compiled.endogenous_state)[0])
    u[:, position] = values[:, compiled.endogenous_row]
    try:
        x_N = -np.linalg.solve(A, u[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise SimulationError("endogenous secretion has no steady state: some compartment it "
                              "reaches never drains") from None
    x = np.zeros((values.shape[0], len(compiled.state_names)))
    x[:, N] = x_N
    C = output_matrix(compiled, values, regimen)[:, compiled.output_endogenous]
    outputs[:, :, compiled.output_endogenous] += (C @ x[..., None])[:, None, :, 0]
    if d_outputs is None:
        return
    rhs = system.derivative_times(rate_jacobian, x)[:, N]                           # (B, N, P)
    rhs[:, position, :] += jacobian[:, compiled.endogenous_row, :]
    dx = np.zeros(x.shape + (jacobian.shape[2],))
    dx[:, N, :] = -np.linalg.solve(A, rhs)
    d_outputs[:, :, compiled.output_endogenous] += (C @ dx)[:, None]
    terms = compiled.output_term_table
    if terms.constant is None:
        chosen = compiled.output_endogenous[terms.output_of_term]
        scale = percent_scale(compiled, regimen)[terms.output_of_term[chosen]]
        d_weights = jacobian[:, terms.rows[chosen], :] * scale[:, None]
        contribution = terms.membership[chosen].T @ (x[:, terms.states[chosen], None] * d_weights)
        d_outputs += contribution[:, None, :, :] * compiled.output_endogenous[None, None, :, None]


def percent_scale(compiled, regimen):
    """Per output: 100 / total dose for percent-of-dose outputs, else 1."""
    terms = compiled.output_term_table
    if regimen.total_amount <= 0 and terms.output_percent.any():
        raise SimulationError("percent-of-dose outputs need a regimen with a positive total dose")
    return 1.0 + terms.output_percent * (100.0 / max(regimen.total_amount, 1e-300) - 1.0)


def output_matrix(compiled, values, regimen) -> np.ndarray:
    """The matrix ``C`` (batch or 1, n_outputs, n_compartments) with outputs ``y = C x``.

    ``values`` are the expression values of :meth:`CompiledModel.evaluate_expressions`. When
    no output weight depends on a parameter, one matrix serves the whole batch (leading size 1).
    """
    terms = compiled.output_term_table
    if terms.constant is not None:
        # one read-only matrix per total dose, built on first use
        known = compiled.constant_output_matrices
        C = known.get(regimen.total_amount)
        if C is None:
            if len(known) >= KEPT:
                known.clear()
            C = (terms.constant * percent_scale(compiled, regimen)[:, None])[None]
            C.flags.writeable = False
            known[regimen.total_amount] = C
        return C
    scale = percent_scale(compiled, regimen)[:, None]
    weights = values[:, terms.rows]                                          # (B, terms)
    return (weights @ terms.placement).reshape(values.shape[0], -1, len(compiled.state_names)) * scale


def paired(first, second):
    """``np.stack([first, second], axis=1)`` for two arrays of one shape (batch, ...): two
    states or moments per member, for :func:`outputs_from_amounts`, without ``np.stack``'s
    general checks (the few microseconds count in every posterior evaluation)."""
    both = np.empty((first.shape[0], 2) + first.shape[1:], np.result_type(first, second))
    both[:, 0], both[:, 1] = first, second
    return both


def outputs_from_amounts(compiled, values, jacobian, regimen, amounts, d_amounts):
    """Outputs ``y = C(p) x`` and ``dy/dp = C dx/dp + (dC/dp) x``."""
    terms = compiled.output_term_table
    C = output_matrix(compiled, values, regimen)
    outputs = amounts @ C.transpose(0, 2, 1)
    if d_amounts is None:
        return outputs, None
    d_outputs = C[:, None] @ d_amounts                                       # (B, T, O, P)
    if terms.constant is None:
        scale = percent_scale(compiled, regimen)[terms.output_of_term]
        d_weights = jacobian[:, terms.rows, :] * scale[:, None]               # (B, terms, P)
        x_terms = amounts[:, :, terms.states]                                # (B, T, terms)
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
    path : {"auto", "structured", "dense", "eigen", "expm"}
        Linear solution path.

    Returns
    -------
    xarray.Dataset
        Variables ``value`` (time, output), ``amount`` (time, compartment), ``administered``
        and ``mass_balance_residual`` (time), plus the sensitivities when asked. When several
        parameter sets are given, every variable gets a leading ``draw`` dimension. The unit of
        each output is the ``unit`` coordinate; time and amount units are in ``attrs``. An
        output in %ID is a percentage of the dose given by its time (``administered``, see
        the module docstring), so several doses do not dilute the first.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> ds = exopk.simulate(model, {"CL": 0.5, "V_plasma": 1.0}, times=[0, 10],
    ...                     regimen=exopk.Regimen.bolus("iv", 100))
    >>> print(f"{float(ds.value.sel(output='plasma_percent_id', time=10)):.6f}", f"{100 * np.exp(-5):.6f}")
    0.673795 0.673795
    """
    compiled = compile_model(model)
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
        "percent_id_reference": "the dose given by each time (the administered variable); "
                                f"the regimen's total is {regimen.total_amount:g} "
                                f"{model.amount_unit}",
    })
    if single:
        ds = ds.isel(draw=0, drop=True)
        ds.attrs["parameters"] = "; ".join(f"{n}={v:g}" for n, v in
                                           zip(compiled.parameter_names, theta[0]))
    return ds
