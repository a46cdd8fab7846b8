"""Regimen optimisation over a fixed set of draws: route split, dose, number and interval.

The regimen gives ``count`` administrations every ``interval``; each administration splits
``dose`` into ``split x dose`` by the second route (e.g. intranasal) and the rest by the first
(e.g. IV). The objective is computed on one fixed set of parameter draws (common random numbers,
so that regimens are compared on the same draws): the expected exposure (exact AUC of the target,
as an amount x time: %ID AUC x total dose / 100) or the probability that it exceeds a threshold.
Constraints: a total-dose limit (``count x dose``) and, optionally, a limit on the expected
off-target exposure. For every count, :func:`scipy.optimize.minimize` (Powell, derivative-free,
within bounds) searches split, dose and interval from several starts; the best over counts wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.optimize import minimize

from exopk.dosing import Dose, Regimen
from exopk.errors import ExopkError
from exopk.metrics.exposure import auc

__all__ = ["Bounds", "exposure", "optimize_regimen", "regimen_of"]


@dataclass(frozen=True)
class Bounds:
    """User bounds of the regimen (doses in the model's amount unit, times in its time unit)."""

    dose: tuple[float, float]
    interval: tuple[float, float]
    max_count: int
    max_total_dose: float
    split: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        for name in ("dose", "interval", "split"):
            low, high = getattr(self, name)
            if not (0 <= low <= high):
                raise ExopkError(f"bounds of {name} must satisfy 0 <= low <= high, got "
                                 f"{(low, high)}")
        if self.split[1] > 1:
            raise ExopkError("the route split is a fraction: at most 1")
        if not (isinstance(self.max_count, int) and self.max_count >= 1):
            raise ExopkError(f"max count must be a positive integer, got {self.max_count}")
        if not self.max_total_dose >= self.dose[0] > 0:
            raise ExopkError("the total-dose limit must allow one dose of at least the lower "
                             "dose bound (> 0)")


def regimen_of(routes, split, dose, count, interval) -> Regimen:
    """``count`` administrations every ``interval``, ``dose`` split between two routes."""
    doses = []
    for k in range(count):
        for route, amount in ((routes[0], (1 - split) * dose), (routes[1], split * dose)):
            if amount > 0:
                doses.append(Dose(route, float(amount), k * float(interval)))
    return Regimen(tuple(doses))


def exposure(model, sets, regimen, horizon, output) -> xr.DataArray:
    """Exact AUC of a %ID output as amount x time: %ID AUC x total dose / 100, per draw."""
    area = auc(model, sets, regimen, horizon, output).isel(output=0)
    if not str(area["unit"].values).startswith("%ID*"):
        raise ExopkError(f"output '{output}' is not in %ID: give a %ID output")
    return (area * regimen.total_amount / 100.0).drop_vars(["output", "unit"])


def optimize_regimen(model, sets, *, routes=("iv", "intranasal"), horizon, target,
                     bounds: Bounds, objective="mean", threshold=None, off_target=None,
                     max_off_target=None, starts=3):
    """The regimen maximising the objective over ``sets`` within ``bounds``.

    Parameters
    ----------
    objective : {"mean", "probability"}
        Expected target exposure, or the share of draws whose exposure exceeds ``threshold``.
    off_target, max_off_target : str, float, optional
        A %ID output and a limit on its expected exposure (amount x time).

    Returns
    -------
    dict
        ``split``, ``dose``, ``count``, ``interval``, ``objective``, ``exposure`` (per draw at the
        optimum), ``evaluations``.
    """
    if objective not in ("mean", "probability"):
        raise ExopkError(f"objective must be 'mean' or 'probability', got {objective!r}")
    if objective == "probability" and not (threshold and threshold > 0):
        raise ExopkError("the probability objective needs a positive threshold")
    if (off_target is None) != (max_off_target is None):
        raise ExopkError("give both the off-target output and its limit, or neither")
    evaluations = [0]

    def unpack(x, count):
        split, dose, interval = np.clip(x, [bounds.split[0], bounds.dose[0], bounds.interval[0]],
                                        [bounds.split[1], bounds.dose[1], bounds.interval[1]])
        return split, min(dose, bounds.max_total_dose / count), interval

    def value(x, count):
        evaluations[0] += 1
        split, dose, interval = unpack(x, count)
        regimen = regimen_of(routes, split, dose, count, interval)
        area = exposure(model, sets, regimen, horizon, target)
        score = float(area.mean()) if objective == "mean" else float((area > threshold).mean())
        if off_target is not None:
            excess = float(exposure(model, sets, regimen, horizon, off_target).mean()) - \
                max_off_target
            if excess > 0:
                score -= 1e6 * (1 + excess)          # infeasible: worse than any feasible
        return -score

    best = None
    rng = np.random.default_rng(0)
    lows = np.array([bounds.split[0], bounds.dose[0], bounds.interval[0]])
    highs = np.array([bounds.split[1], bounds.dose[1], bounds.interval[1]])
    for count in range(1, bounds.max_count + 1):
        if count * bounds.dose[0] > bounds.max_total_dose:
            break
        for x0 in [(lows + highs) / 2, *(lows + (highs - lows) * rng.random((starts - 1, 3)))]:
            result = minimize(value, x0, args=(count,), method="Powell",
                              bounds=list(zip(lows, highs)), options={"xtol": 1e-3})
            if best is None or result.fun < best[0]:
                best = (result.fun, count, result.x)
    if best is None:
        raise ExopkError("no regimen fits the bounds")
    fun, count, x = best
    split, dose, interval = unpack(x, count)
    regimen = regimen_of(routes, split, dose, count, interval)
    return {"split": split, "dose": dose, "count": count,
            "interval": interval if count > 1 else float("nan"), "objective": -fun,
            "exposure": exposure(model, sets, regimen, horizon, target),
            "regimen": regimen, "evaluations": evaluations[0]}
