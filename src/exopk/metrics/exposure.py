"""Exposure of model outputs over draws: value at times, peak over a horizon, exact AUC.

The area under an output over ``[0, H]`` is exact for linear models. On the draining
compartments ``N`` (all but sinks) ``x_N' = A_NN x_N + u_N(t)``, and sinks never feed ``N``, so

    int_0^H x_N dt = A_NN^-1 (x_N(H) - U_N(H)),

with ``x_N(H)`` the engine's exact solution and ``U_N(H)`` the amount put into ``N`` by doses up
to ``H`` (boluses whole, infusions pro rata). The output's area is ``C int x dt``. No quadrature is
involved; the error is that of a linear solve (relative ~1e-12 for well-conditioned ``A_NN``).
Outputs that read a sink (cumulative amounts) have no such formula and get NaN.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.engine.compiled import compile_model
from exopk.engine.simulation import evaluate, output_matrix, route_fractions, validate_times
from exopk.errors import ExopkError

__all__ = ["PEAK_GRID_POINTS", "auc", "output_at", "peak", "flat_sets", "labelled"]

PEAK_GRID_POINTS = 2001


def flat_sets(compiled, parameter_sets: xr.DataArray):
    """(batch, n_parameters) array in model order, and the leading dims and coords to restore."""
    if "parameter" not in parameter_sets.dims:
        raise ExopkError(f"parameter sets need a 'parameter' dimension; got dims "
                         f"{parameter_sets.dims}")
    missing = [p for p in compiled.parameter_names
               if p not in parameter_sets["parameter"].values]
    if missing:
        raise ExopkError(f"parameter sets lack model parameter(s) {', '.join(missing)} of "
                         f"model '{compiled.model.name}'")
    ordered = parameter_sets.sel(parameter=list(compiled.parameter_names))
    lead = [d for d in ordered.dims if d != "parameter"]
    ordered = ordered.transpose(*lead, "parameter")
    theta = np.asarray(ordered.values, dtype=float).reshape(-1, len(compiled.parameter_names))
    coords = {d: ordered[d].values for d in lead if d in ordered.coords}
    return theta, lead, ordered.shape[:-1], coords


def labelled(values, lead, shape, coords, extra_dims=(), extra_coords=None, attrs=None):
    """Reshape (batch, ...) results back onto the draws' dims."""
    values = np.asarray(values).reshape(tuple(shape) + np.shape(values)[1:])
    return xr.DataArray(values, dims=tuple(lead) + tuple(extra_dims),
                        coords={**coords, **(extra_coords or {})}, attrs=attrs or {})


def _outputs(compiled, outputs):
    names = list(compiled.model.output_names)
    if outputs is None:
        return names, np.arange(len(names))
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    unknown = [o for o in outputs if o not in names]
    if unknown:
        raise ExopkError(f"model '{compiled.model.name}' has no output {', '.join(unknown)}; "
                         f"known: {', '.join(names)}")
    return outputs, np.array([names.index(o) for o in outputs])


def _output_coords(compiled, names, unit_suffix=""):
    units = dict(zip(compiled.model.output_names, compiled.output_units))
    return {"output": names, "unit": ("output", [units[n] + unit_suffix for n in names])}


def output_at(model, parameter_sets, regimen: Regimen, times, outputs=None) -> xr.DataArray:
    """Outputs at ``times`` for every parameter set, e.g. delivery efficiency DE(t) in %ID.

    Returns
    -------
    xarray.DataArray
        Dims of the sets (``chain``, ``draw``) then ``time``, ``output``; units per output in the
        ``unit`` coordinate, time unit in ``attrs``.

    Examples
    --------
    Two parameter sets of the one-compartment model (CL 0.5 and 0.25 mL/min, V 1 mL): after a
    bolus, %ID at 2 min is ``100 exp(-2 CL / V)``:

    >>> import numpy as np, xarray as xr, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> sets = xr.DataArray([[0.5, 1.0, 0.0], [0.25, 1.0, 0.0]], dims=("draw", "parameter"),
    ...                     coords={"parameter": list(model.parameter_names)})
    >>> from exopk.metrics import output_at
    >>> values = output_at(model, sets, exopk.Regimen.bolus("iv", 100), [2], "plasma_percent_id")
    >>> values.dims, values.values.ravel().round(4)
    (('draw', 'time', 'output'), array([36.7879, 60.6531]))
    >>> (100 * np.exp([-1.0, -0.5])).round(4)
    array([36.7879, 60.6531])
    """
    compiled = compile_model(model)
    names, columns = _outputs(compiled, outputs)
    t = validate_times(times)
    theta, lead, shape, coords = flat_sets(compiled, parameter_sets)
    result = evaluate(compiled, theta, t, regimen).outputs[:, :, columns]
    return labelled(result, lead, shape, coords, ("time", "output"),
                    {"time": t, **_output_coords(compiled, names)},
                    {"time_unit": model.time_unit, "long_name": "model output"})


def peak(model, parameter_sets, regimen: Regimen, horizon: float, outputs=None, *,
         points: int = PEAK_GRID_POINTS) -> xr.Dataset:
    """Largest value of each output over ``[0, horizon]`` and when it occurs.

    The maximum is taken over ``points`` evenly spaced times plus the dose times; the time is
    exact to within ``horizon / (points - 1)`` (recorded as ``time_resolution`` in ``attrs``).

    The values are those of :func:`output_at` (and :func:`exopk.simulate`): an output in %ID
    is a percentage of the dose given by its time, so after several doses the peak can be
    100 %ID at the first dose.

    Returns
    -------
    xarray.Dataset
        ``max`` (output unit) and ``time_of_max`` (model time unit), dims as :func:`output_at`
        without ``time``.

    Examples
    --------
    A 10-min infusion of 100 into one compartment peaks at its end, at
    ``(100 / 10) / CL (1 - exp(-10 CL / V))`` per mL:

    >>> import numpy as np, xarray as xr, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> sets = xr.DataArray([[0.5, 1.0, 0.0], [0.25, 1.0, 0.0]], dims=("draw", "parameter"),
    ...                     coords={"parameter": list(model.parameter_names)})
    >>> from exopk.metrics import peak
    >>> top = peak(model, sets, exopk.Regimen.infusion("iv", 100, duration=10), 20,
    ...            "plasma_concentration")
    >>> top["max"].values.ravel().round(4), top["time_of_max"].values.ravel()
    (array([19.8652, 36.7166]), array([10., 10.]))
    >>> (np.array([20, 40]) * (1 - np.exp([-5, -2.5]))).round(4)
    array([19.8652, 36.7166])
    """
    if not horizon > 0:
        raise ExopkError(f"horizon must be positive, got {horizon}")
    grid = np.union1d(np.linspace(0.0, horizon, points),
                      [d.time for d in regimen.doses if d.time <= horizon])
    values = output_at(model, parameter_sets, regimen, grid, outputs)
    where = values.argmax("time")
    out = xr.Dataset({"max": values.max("time"),
                      "time_of_max": values["time"][where].drop_vars("time")})
    out["time_of_max"].attrs["units"] = model.time_unit
    out.attrs.update(time_unit=model.time_unit, horizon=horizon,
                     time_resolution=horizon / (points - 1))
    return out


def _given(compiled, values, regimen: Regimen, horizons):
    """Amount put into each compartment by the doses up to each horizon, (batch, T, n)."""
    batch, n = values.shape[0], len(compiled.state_names)
    fractions = {route: route_fractions(compiled, values, route) for route in regimen.routes}
    given = np.zeros((batch, len(horizons), n))
    for dose in regimen.doses:
        if dose.steady_state_interval is not None:
            raise ExopkError("exact AUC is not available for steady-state doses; give the "
                             "repeated doses explicitly")
        elapsed = horizons - dose.time
        share = (np.clip(elapsed / dose.duration, 0, 1) if dose.is_infusion
                 else (elapsed >= 0).astype(float))
        given += dose.amount * share[None, :, None] * fractions[dose.route][:, None, :]
    return given


def auc(model, parameter_sets, regimen: Regimen, horizon, outputs=None) -> xr.DataArray:
    """Exact area under each output over ``[0, horizon]`` (see the module docstring).

    Parameters
    ----------
    model : Model
        A linear model (no Michaelis-Menten transfers).
    parameter_sets : xarray.DataArray
        Full parameter sets with a ``parameter`` dim (other dims kept).
    regimen : Regimen
    horizon : float or sequence of float
        End(s) of the interval, model time unit. A sequence adds a ``horizon`` dim.
    outputs : str or list of str, optional
        Default: every output.

    Returns
    -------
    xarray.DataArray
        Dims of the sets, [``horizon``,] ``output``; unit per output (output unit x time unit)
        in the ``unit`` coordinate.

    Notes
    -----
    The area of a percent-of-dose output (%ID, %ID/g) is taken per the regimen's whole dose:
    100 / (total dose) times the area under the amount, the dose-normalised AUC. With one dose,
    or all doses at time 0, that is the area under the output. When doses are staggered,
    :func:`output_at` gives %ID of the dose given so far, and the area under that curve weighs
    the time before the later doses more; ``attrs["percent_of"]`` says which is given.

    Examples
    --------
    After a bolus into one compartment the area under %ID is ``100 V / CL (1 - exp(-CL H / V))``:
    200 and 400 %ID*min over all time for CL 0.5 and 0.25 mL/min:

    >>> import numpy as np, xarray as xr, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> sets = xr.DataArray([[0.5, 1.0, 0.0], [0.25, 1.0, 0.0]], dims=("draw", "parameter"),
    ...                     coords={"parameter": list(model.parameter_names)})
    >>> from exopk.metrics import auc
    >>> area = auc(model, sets, exopk.Regimen.bolus("iv", 100), [10, 1e5], "plasma_percent_id")
    >>> area.dims, str(area["unit"].values[0])
    (('draw', 'horizon', 'output'), '%ID*min')
    >>> area.values[..., 0].round(4)
    array([[198.6524, 200.    ],
           [367.166 , 400.    ]])
    >>> (np.array([200, 400]) * (1 - np.exp([-5, -2.5]))).round(4)
    array([198.6524, 367.166 ])
    """
    compiled = compile_model(model)
    if not model.is_linear:
        raise ExopkError(f"model '{model.name}' has saturable transfers: no exact AUC")
    names, columns = _outputs(compiled, outputs)
    horizons = np.atleast_1d(np.asarray(horizon, dtype=float))
    if horizons.ndim != 1 or np.any(~np.isfinite(horizons)) or np.any(horizons <= 0):
        raise ExopkError(f"horizon must be positive and finite, got {horizon}")
    theta, lead, shape, coords = flat_sets(compiled, parameter_sets)
    values, _ = compiled.evaluate_expressions(theta, derivatives=False)
    amounts = evaluate(compiled, theta, horizons, regimen).amounts             # (B, T, n)
    system = compiled.linear_system
    N = system.draining_index
    A = system.draining_matrix(values[:, compiled.rate_rows])                  # (B, N, N)
    rhs = (amounts - _given(compiled, values, regimen, horizons))[:, :, N]
    try:
        area_N = np.linalg.solve(A, rhs.transpose(0, 2, 1)).transpose(0, 2, 1)  # (B, T, N)
    except np.linalg.LinAlgError:
        raise ExopkError("a compartment never drains for some parameter set (a rate of 0): "
                         "no exact AUC") from None
    area = np.zeros(amounts.shape)
    area[:, :, N] = area_N
    C = output_matrix(compiled, values, regimen)[:, columns]                  # (B|1, O, n)
    result = area @ C.transpose(0, 2, 1)
    result[:, :, ~compiled.output_drains[columns]] = np.nan
    extra_dims, extra = ("output",), _output_coords(compiled, names, f"*{model.time_unit}")
    if np.ndim(horizon) == 0:
        result = result[:, 0]
    else:
        extra_dims, extra = ("horizon", "output"), {"horizon": horizons, **extra}
    return labelled(result, lead, shape, coords, extra_dims, extra,
                    {"long_name": "area under the output", "time_unit": model.time_unit,
                     "method": "exact: A_NN^-1 (x_N(H) - U_N(H))",
                     "percent_of": "the regimen's total dose"})
