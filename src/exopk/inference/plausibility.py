"""Check a posterior against the plausibility bounds its model declares.

A model file may declare bounds on its outputs (``[plausibility.NAME]``, see
:class:`~exopk.model.spec.PlausibilityBound`): after a bolus by a route, a posterior quantile of
an output at a time must stay within ``[lower, upper]``, each bound with its source. Every fit
simulates its posterior draws under each bound's design and stores the result in the
``plausibility`` group of the result; a violation is reported as loudly as a chain that has not
converged, and ``exopk fit --strict`` fails on it.

The draws are the population parameter sets of the posterior (a typical study at the reference
covariate levels, under normal conditions; see
:meth:`exopk.inference.posterior.LogPosterior.parameter_sets`), at most :data:`MAX_DRAWS` of
them, evenly spaced over the chains.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.engine import simulate

__all__ = ["check_plausibility", "plausibility_report", "MAX_DRAWS"]

MAX_DRAWS = 400


def check_plausibility(model, parameter_sets: np.ndarray) -> xr.Dataset:
    """The model's plausibility bounds, checked on parameter sets.

    Parameters
    ----------
    model : Model
    parameter_sets : ndarray, shape (..., n_parameters)
        Full parameter sets in model order (posterior draws); at most :data:`MAX_DRAWS`
        evenly spaced ones are simulated.

    Returns
    -------
    xarray.Dataset
        Dim ``bound`` (one per declared bound, in file order) with coordinates ``output``,
        ``route``, ``time``, ``quantile``, ``source``, and variables ``value`` (the posterior
        quantile, output unit), ``lower``, ``upper``, ``violated``; the total ``implausible``
        (any bound violated) and ``n_draws``. An empty ``bound`` dimension when the model
        declares no bound.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> from exopk.model import PlausibilityBound
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> bound = PlausibilityBound("plasma_1h", "plasma_percent_id", "iv", 60.0, upper=50.0,
    ...                           source="illustration")
    >>> model = model.replace(plausibility=(bound,))
    >>> sets = np.array([[p.value for p in model.parameters]])
    >>> bool(check_plausibility(model, sets)["implausible"])
    False
    """
    flat = np.asarray(parameter_sets, dtype=float).reshape(-1, len(model.parameters))
    if flat.shape[0] > MAX_DRAWS:
        flat = flat[np.linspace(0, flat.shape[0] - 1, MAX_DRAWS).round().astype(int)]
    rows = []
    for b in model.plausibility:
        values = simulate(model, flat, [b.time], Regimen.bolus(b.route, b.dose))["value"]
        values = np.asarray(values.sel(output=b.output)).reshape(flat.shape[0], -1)[:, -1]
        value = float(np.quantile(values, b.quantile))
        rows.append((b, value, not (b.lower <= value <= b.upper)))
    names = [b.name for b, _, _ in rows]
    coords = {"bound": names,
              "output": ("bound", [b.output for b, _, _ in rows]),
              "route": ("bound", [b.route for b, _, _ in rows]),
              "time": ("bound", [b.time for b, _, _ in rows]),
              "quantile": ("bound", [b.quantile for b, _, _ in rows]),
              "source": ("bound", [b.source for b, _, _ in rows])}
    return xr.Dataset(
        {"value": ("bound", [v for _, v, _ in rows]),
         "lower": ("bound", [b.lower for b, _, _ in rows]),
         "upper": ("bound", [b.upper for b, _, _ in rows]),
         "violated": ("bound", np.array([bad for _, _, bad in rows], dtype=bool)),
         "implausible": ((), any(bad for _, _, bad in rows)),
         "n_draws": ((), flat.shape[0])},
        coords=coords, attrs={"time_unit": model.time_unit})


def plausibility_report(checked: xr.Dataset) -> list[str]:
    """One line per bound: the posterior quantile, the bound, its source, and a verdict."""
    lines = []
    unit = checked.attrs.get("time_unit", "")
    for i in range(checked.sizes["bound"]):
        b = checked.isel(bound=i)
        limits = " and ".join(text for text in (
            f">= {float(b['lower']):g}" if np.isfinite(b["lower"]) else "",
            f"<= {float(b['upper']):g}" if np.isfinite(b["upper"]) else "") if text)
        verdict = "VIOLATED" if bool(b["violated"]) else "ok"
        lines.append(f"{verdict}: {b['bound'].item()}: {int(round(float(b['quantile']) * 100))}% "
                     f"quantile of {b['output'].item()} at {float(b['time']):g} {unit} after "
                     f"{b['route'].item()} = {float(b['value']):.4g} (bound {limits}; "
                     f"{b['source'].item()})")
    return lines
