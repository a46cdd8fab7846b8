"""Regimen optimisation over a fixed set of draws, with exact gradients: route split, dose, number
and interval of administrations.

The regimen gives ``count`` administrations every ``interval``; each administration splits
``dose`` into ``split x dose`` by the second route (e.g. intranasal) and the rest by the first
(e.g. IV). The exposure of an output over ``[0, H]`` is its exact AUC as an amount x time
(%ID AUC x total dose / 100). Linear models superpose, so with ``a_r(tau)`` the exact AUC over
``[0, tau]`` of a unit bolus by route ``r`` and ``y_r(tau)`` its output at ``tau`` (both amounts per
unit dose, from the engine, batched over draws) and lags ``tau_k = H - k T``:

    E = dose * sum_k [(1 - split) a_1(tau_k) + split a_2(tau_k)]        (tau_k > 0)
    dE/d dose = E / dose,   dE/d split = dose * sum_k [a_2(tau_k) - a_1(tau_k)],
    dE/dT = -dose * sum_k k [(1 - split) y_1(tau_k) + split y_2(tau_k)]

(the last because ``d a_r / d tau = y_r``). The gradient is exact, with no finite differences.

The objective is computed on one fixed set of draws (common random numbers: every regimen is
judged on the same draws): the expected exposure of the target, or the probability that it exceeds
a threshold. The probability is a step function of the regimen; the search follows its smoothed
version ``mean Phi((ln E - ln threshold) / bandwidth)`` and the exact share of draws is reported at
the optimum. Constraints: a total-dose limit (``count x dose``, a bound on the dose for each
count) and optionally a limit on the expected exposure of an off-target output. For every count
:func:`scipy.optimize.minimize` (SLSQP, exact gradients of objective and constraint) searches split,
dose and interval from several seeded starts; the best over counts wins.

The uncertainty of the optimum is its spread over bootstrap resamples of the draws (each resample
reoptimised, warm-started at the optimum): how far the chosen regimen rests on the particular draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.optimize import minimize
from scipy.stats import norm

from exopk.dosing import Dose, Regimen
from exopk.errors import ExopkError
from exopk.metrics.exposure import auc, output_at

__all__ = ["Bounds", "RegimenExposure", "exposure", "landscape", "landscape_around",
           "optimize_regimen", "regimen_of"]


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

    def box(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of (split, dose, interval) for ``count`` administrations."""
        return (np.array([self.split[0], self.dose[0], self.interval[0]]),
                np.array([self.split[1], min(self.dose[1], self.max_total_dose / count),
                          self.interval[1]]))


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


class RegimenExposure:
    """Exposure of one output to two-route regimens and its exact gradient, on fixed draws.

    Parameters
    ----------
    model : Model
        A linear model.
    sets : xarray.DataArray
        Parameter sets with a ``parameter`` dim (other dims are the draws).
    routes : (str, str)
    horizon : float
        End of the exposure interval (model time unit).
    output : str
        A %ID output.

    Examples
    --------
    >>> import numpy as np, xarray as xr, exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> sets = xr.DataArray([[0.5, 1.0, 0.0]], dims=("draw", "parameter"),
    ...                     coords={"parameter": ["CL", "V_plasma", "secretion_rate"]})
    >>> E, grad = RegimenExposure(model, sets, ("iv", "iv"), 1e3,
    ...                           "plasma_percent_id").value_and_gradient(0.0, 10.0, 1, 60.0)
    >>> round(float(E[0]), 6), round(float(grad[0, 1]), 6)     # 10 V / CL and V / CL
    (20.0, 2.0)
    """

    def __init__(self, model, sets, routes, horizon, output):
        if not model.is_linear:
            raise ExopkError(f"model '{model.name}' has saturable transfers: exposures do not "
                             "superpose, so regimens cannot be optimised with exact gradients")
        if not horizon > 0:
            raise ExopkError(f"horizon must be positive, got {horizon}")
        self.model, self.routes, self.horizon, self.output = model, tuple(routes), float(horizon), \
            output
        self.sets = sets
        exposure(model, sets, Regimen.bolus(self.routes[0], 1.0), self.horizon, output)  # checks

    def unit_responses(self, lags):
        """AUC over ``[0, lag]`` and output at ``lag`` of a unit bolus by each route.

        Returns
        -------
        area, value : ndarray, shape (2, n_draws, n_lags)
            Amount x time and amount per unit dose; 0 where ``lag <= 0`` (dose after the
            horizon).
        """
        lags = np.asarray(lags, dtype=float)
        area = np.zeros((2, self._draws, lags.size))
        value = np.zeros_like(area)
        positive = lags > 0
        if positive.any():
            for r, route in enumerate(self.routes):
                unit = Regimen.bolus(route, 1.0)
                a = auc(self.model, self.sets, unit, lags[positive], self.output)
                y = output_at(self.model, self.sets, unit, lags[positive], self.output)
                area[r][:, positive] = a.values.reshape(self._draws, -1) / 100.0
                value[r][:, positive] = y.values.reshape(self._draws, -1) / 100.0
        return area, value

    @property
    def _draws(self) -> int:
        return int(np.prod([n for d, n in self.sets.sizes.items() if d != "parameter"]))

    def value_and_gradient(self, split, dose, count, interval):
        """Exposure per draw (amount x time) and its gradient in (split, dose, interval).

        Returns
        -------
        E : ndarray (n_draws,)
        gradient : ndarray (n_draws, 3)
        """
        k = np.arange(count)
        area, value = self.unit_responses(self.horizon - k * interval)
        mix = np.array([1.0 - split, split])
        per_dose = np.einsum("r,rsk->s", mix, area)
        E = dose * per_dose
        gradient = np.stack([dose * (area[1] - area[0]).sum(axis=1), per_dose,
                             -dose * np.einsum("r,rsk,k->s", mix, value, k)], axis=1)
        return E, gradient


def _objective(E, dE, weights, kind, threshold, bandwidth):
    """Weighted objective over draws and its gradient."""
    if kind == "mean":
        return weights @ E, weights @ dE
    z = (np.log(np.maximum(E, 1e-300)) - np.log(threshold)) / bandwidth
    slope = norm.pdf(z) / (bandwidth * np.maximum(E, 1e-300))
    return weights @ norm.cdf(z), (weights * slope) @ dE


def _search(target, off, bounds, count, weights, starts, options):
    """Best (negative objective, x) for one count from ``starts`` (rows of x in bounds)."""
    low, high = bounds.box(count)
    span = np.where(high > low, high - low, 1.0)
    scale = [None]

    def objective(u):
        x = low + u * span
        f, g = _objective(*target.value_and_gradient(x[0], x[1], count, x[2]), weights,
                          options["objective"], options["threshold"], options["bandwidth"])
        if scale[0] is None:
            scale[0] = max(abs(f), 1e-12)
        return -f / scale[0], -g * span / scale[0]

    constraints = []
    if off is not None:
        limit = options["max_off_target"]

        def room(u):
            x = low + u * span
            E, dE = off.value_and_gradient(x[0], x[1], count, x[2])
            return (limit - weights @ E) / limit, -(weights @ dE) * span / limit

        constraints.append({"type": "ineq", "fun": lambda u: room(u)[0],
                            "jac": lambda u: room(u)[1]})
    best = None
    for x0 in starts:
        u0 = np.clip((np.asarray(x0) - low) / span, 0, 1)
        found = minimize(objective, u0, jac=True, method="SLSQP", bounds=[(0, 1)] * 3,
                         constraints=constraints, options={"ftol": 1e-10, "maxiter": 200})
        u = np.clip(found.x, 0, 1)
        feasible = off is None or room(u)[0] >= -1e-6
        value = objective(u)[0] * scale[0] if feasible else np.inf
        if best is None or value < best[0]:
            best = (value, low + u * span)
    return best


def optimize_regimen(model, sets, *, routes=("iv", "intranasal"), horizon, target,
                     bounds: Bounds, objective="mean", threshold=None, off_target=None,
                     max_off_target=None, starts=3, bandwidth=0.1, bootstrap=0, seed=0):
    """The regimen maximising the objective over ``sets`` within ``bounds`` (see the module).

    Parameters
    ----------
    model : Model
        A linear model.
    sets : xarray.DataArray
        Fixed parameter sets (dims ``chain``, ``draw``, ``parameter``).
    routes : (str, str)
        The first and second route of the split.
    horizon : float
        Exposure interval ``[0, horizon]``, model time unit.
    target : str
        A %ID output.
    bounds : Bounds
    objective : {"mean", "probability"}
        Expected target exposure (amount x time), or the share of draws whose exposure exceeds
        ``threshold``.
    off_target, max_off_target : str, float, optional
        A %ID output and a limit on its expected exposure (amount x time).
    starts : int
        Starts per count: the centre of the box and ``starts - 1`` seeded random points.
    bandwidth : float
        Smoothing of the probability objective (natural-log scale).
    bootstrap : int
        Bootstrap resamples of the draws to reoptimise (0: none).
    seed : int
        Seed of the random starts and resamples.

    Returns
    -------
    dict
        ``split``, ``dose``, ``count``, ``interval`` (NaN for one administration), ``objective``
        (exact: the mean, or the share of draws above ``threshold``), ``exposure`` (per draw at
        the optimum), ``off_target_exposure`` (per draw, if constrained), ``regimen`` and, with
        ``bootstrap``, ``resamples``: a Dataset of the reoptimised ``split``, ``dose``, ``count``,
        ``interval`` along ``resample``.
    """
    if objective not in ("mean", "probability"):
        raise ExopkError(f"objective must be 'mean' or 'probability', got {objective!r}")
    if objective == "probability" and not (threshold and threshold > 0):
        raise ExopkError("the probability objective needs a positive threshold")
    if (off_target is None) != (max_off_target is None):
        raise ExopkError("give both the off-target output and its limit, or neither")
    if max_off_target is not None and not max_off_target > 0:
        raise ExopkError(f"the off-target limit must be positive, got {max_off_target}")
    if not (isinstance(starts, int) and starts >= 1):
        raise ExopkError(f"starts must be a positive integer, got {starts}")
    exposure_of = RegimenExposure(model, sets, routes, horizon, target)
    off = None if off_target is None else RegimenExposure(model, sets, routes, horizon, off_target)
    options = dict(objective=objective, threshold=threshold, bandwidth=bandwidth,
                   max_off_target=max_off_target)
    counts = [c for c in range(1, bounds.max_count + 1) if c * bounds.dose[0] <=
              bounds.max_total_dose]
    rng = np.random.default_rng(seed)
    uniform = np.full(exposure_of._draws, 1.0 / exposure_of._draws)

    def search(weights, first):
        best = None
        for count in counts:
            low, high = bounds.box(count)
            points = first(count, low, high)
            value, x = _search(exposure_of, off, bounds, count, weights, points, options)
            if best is None or value < best[0]:
                best = (value, count, x)
        if not np.isfinite(best[0]):
            raise ExopkError("no regimen within the bounds meets the off-target limit")
        return best

    _, count, x = search(uniform, lambda c, low, high: [
        (low + high) / 2, *(low + (high - low) * rng.random((starts - 1, 3)))])
    split, dose, interval = (float(v) for v in x)
    E, _ = exposure_of.value_and_gradient(split, dose, count, interval)
    exact = E.mean() if objective == "mean" else (E > threshold).mean()
    result = {"split": split, "dose": dose, "count": count,
              "interval": interval if count > 1 else float("nan"), "objective": float(exact),
              "exposure": _per_draw(E, sets), "regimen": regimen_of(routes, split, dose, count,
                                                                    interval)}
    if off is not None:
        result["off_target_exposure"] = _per_draw(
            off.value_and_gradient(split, dose, count, interval)[0], sets)
    if bootstrap:
        rows = []
        for _ in range(bootstrap):
            weights = rng.multinomial(uniform.size, uniform) / uniform.size
            _, c, xb = search(weights, lambda c, low, high: [np.clip(x, low, high)])
            rows.append((xb[0], xb[1], c, xb[2] if c > 1 else np.nan))
        rows = np.array(rows)
        result["resamples"] = xr.Dataset(
            {name: ("resample", rows[:, i]) for i, name in
             enumerate(("split", "dose", "count", "interval"))})
    return result


def landscape(model, sets, *, routes, horizon, target, count, dose, interval, splits, doses,
              intervals, interval_count=None, interval_dose=None, threshold=None) -> xr.Dataset:
    """The objective over a grid of split x dose and of split x interval, on fixed draws.

    Exposure is linear in split and dose, so one engine call per route gives the first grid,
    and one more (every lag of every interval at once) the second.

    Parameters
    ----------
    count, dose, interval : int, float, float
        The regimen the grids pass through (``dose`` is not used by the first grid).
    interval_count, interval_dose : int, float, optional
        Count and dose of the split x interval grid (default ``count`` and ``dose``); with one
        administration the interval has no effect, so show a larger count there.

    Returns
    -------
    xarray.Dataset
        ``by_dose`` (dims ``split``, ``dose``) and ``by_interval`` (dims ``split``,
        ``interval``): the expected exposure (amount x time), or with ``threshold`` the share of
        draws above it; their fixed values in ``attrs``.
    """
    problem = RegimenExposure(model, sets, routes, horizon, target)
    splits, doses, intervals = (np.asarray(v, dtype=float) for v in (splits, doses, intervals))
    interval_count = count if interval_count is None else interval_count
    interval_dose = dose if interval_dose is None else interval_dose

    def score(E):                                         # E (..., n_draws)
        return E.mean(-1) if threshold is None else (E > threshold).mean(-1)

    area, _ = problem.unit_responses(horizon - np.arange(count) * interval)
    per_route = area.sum(axis=2)                                            # (2, S)
    mixed = (1 - splits)[:, None] * per_route[0] + splits[:, None] * per_route[1]  # (s, S)
    by_dose = score(doses[None, :, None] * mixed[:, None, :])
    k = np.arange(interval_count)
    area, _ = problem.unit_responses((horizon - k[None, :] * intervals[:, None]).ravel())
    per_route = area.reshape(2, -1, intervals.size, interval_count).sum(axis=3)  # (2, S, T)
    mixed = (1 - splits)[:, None, None] * per_route[0] + splits[:, None, None] * per_route[1]
    by_interval = score(interval_dose * mixed.transpose(0, 2, 1))
    return xr.Dataset({"by_dose": (("split", "dose"), by_dose),
                       "by_interval": (("split", "interval"), by_interval)},
                      coords={"split": splits, "dose": doses, "interval": intervals},
                      attrs={"count": count, "at_interval": interval,
                             "interval_count": interval_count, "at_dose": interval_dose,
                             "objective": "expected exposure" if threshold is None else
                             f"P(exposure > {threshold:g})"})


def landscape_around(model, sets, best, bounds: Bounds, *, routes, horizon, target,
                     threshold=None, points=41) -> xr.Dataset:
    """:func:`landscape` through the optimum ``best`` of :func:`optimize_regimen` over the box of
    its count (``points`` per axis). When the optimum is one administration, the split x interval
    grid shows the largest count the bounds allow, at its largest dose."""
    low, high = bounds.box(best["count"])
    counts = [c for c in range(1, bounds.max_count + 1)
              if c * bounds.dose[0] <= bounds.max_total_dose]
    single = best["count"] == 1
    interval_count = counts[-1] if single else best["count"]
    return landscape(model, sets, routes=routes, horizon=horizon, target=target,
                     count=best["count"],
                     dose=bounds.box(interval_count)[1][1] if single else best["dose"],
                     interval=float(np.mean(bounds.interval)) if single else best["interval"],
                     interval_count=interval_count,
                     splits=np.linspace(low[0], high[0], points),
                     doses=np.linspace(low[1], high[1], points),
                     intervals=np.linspace(bounds.interval[0], bounds.interval[1], points),
                     threshold=threshold)


def _per_draw(values, sets) -> xr.DataArray:
    dims = [d for d in sets.dims if d != "parameter"]
    return xr.DataArray(values.reshape([sets.sizes[d] for d in dims]), dims=dims,
                        coords={d: sets[d].values for d in dims if d in sets.coords})
