"""What to measure next: expected shrinkage of a metric's posterior sd by candidate experiments.

A candidate experiment measures one output at one time after a bolus by one route in ``animals``
animals with a log-normal assay error of sd ``assay_sigma_log`` (natural-log scale) per animal;
its sufficient statistic is the mean log value, ``ybar ~ N(log y(theta), assay_sigma_log^2 /
animals)``. The new animals are assumed to share the population parameters (no between-study
effect is added).

Preposterior analysis by importance reweighting (e.g. Ryan EG, Drovandi CC, McGree JM, Pettitt
AN. A review of modern computational algorithms for Bayesian optimal design. Int Stat Rev
2016;84:128-154): for each of ``replicates`` simulated data sets (a draw taken as the truth, noise
added), the current draws are reweighted by the likelihood of the simulated data,
``w_s ~ exp(-(ybar - log y(theta_s))^2 / (2 sigma^2 / n))``, and the metric's weighted sd is the
sd it would have after that experiment. Averaging over replicates gives the expected posterior
sd. The effective sample size ``1 / sum w_s^2`` says how far to trust it: when it falls below
:data:`DEGENERATE_ESS` the reweighted draws are too few, and a refit with the simulated data is
needed to get the number (reported as ``degenerate``, not hidden).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.errors import ExopkError
from exopk.metrics.exposure import output_at

__all__ = ["DEGENERATE_ESS", "Experiment", "default_experiments", "expected_posterior_sd",
           "rank_experiments"]

DEGENERATE_ESS = 30.0
_LOG_FLOOR = 1e-300


@dataclass(frozen=True)
class Experiment:
    """One candidate measurement: ``output`` at ``time`` (model unit) after a bolus of ``dose`` by
    ``route``, in ``animals`` animals, with assay error ``assay_sigma_log`` (sd of log value)."""

    output: str
    time: float
    route: str
    animals: int = 4
    assay_sigma_log: float = 0.3
    dose: float = 100.0

    def __post_init__(self):
        if not (isinstance(self.animals, int) and self.animals >= 1):
            raise ExopkError(f"experiment {self.label}: animals must be a positive integer")
        if not self.assay_sigma_log > 0:
            raise ExopkError(f"experiment {self.label}: assay error must be positive")
        if not (self.time > 0 and self.dose > 0):
            raise ExopkError(f"experiment {self.label}: time and dose must be positive")

    @property
    def label(self) -> str:
        return f"{self.output} at {self.time:g} after {self.route}, n={self.animals}"


def default_experiments(model, times, *, animals=4, assay_sigma_log=0.3, dose=100.0,
                        outputs=("brain_percent_id", "plasma_percent_id", "liver_percent_id")):
    """Brain, blood and liver (those the model has) at ``times`` after every route of the model."""
    chosen = [o for o in outputs if o in model.output_names]
    if not chosen:
        raise ExopkError(f"model '{model.name}' has none of the default outputs "
                         f"{', '.join(outputs)}; give --outputs")
    return [Experiment(o, float(t), r.name, animals, assay_sigma_log, dose)
            for r in model.routes for o in chosen for t in times]


def expected_posterior_sd(metric, log_predictions, noise_sd, *, replicates: int = 200,
                          seed: int = 0):
    """Expected posterior sd of ``metric`` after each experiment, by importance reweighting.

    Parameters
    ----------
    metric : ndarray (S,)
        The metric per current draw.
    log_predictions : ndarray (S, E)
        Each experiment's predicted statistic (mean log value) per draw.
    noise_sd : ndarray (E,)
        sd of each experiment's statistic given the parameters.
    replicates : int
    seed : int

    Returns
    -------
    sd, ess_mean, ess_min : ndarray (E,)
        Expected weighted sd, mean and smallest effective sample size over replicates.
    """
    metric = np.asarray(metric, dtype=float)
    mu = np.asarray(log_predictions, dtype=float)
    noise_sd = np.asarray(noise_sd, dtype=float)
    S, E = mu.shape
    rng = np.random.default_rng(seed)
    truth = rng.integers(S, size=(replicates, E))
    data = mu[truth, np.arange(E)] + noise_sd * rng.normal(size=(replicates, E))  # (R, E)
    sd, ess = np.empty((replicates, E)), np.empty((replicates, E))
    for e in range(E):                       # one experiment at a time: (R, S) arrays
        log_w = -0.5 * ((data[:, e, None] - mu[None, :, e]) / noise_sd[e]) ** 2
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean = w @ metric
        sd[:, e] = np.sqrt(np.einsum("rs,rs->r", w, (metric[None] - mean[:, None]) ** 2))
        ess[:, e] = 1.0 / (w ** 2).sum(axis=1)
    return sd.mean(axis=0), ess.mean(axis=0), ess.min(axis=0)


def rank_experiments(model, sets, metric: xr.DataArray, experiments, *, replicates: int = 200,
                     seed: int = 0, log_metric: bool = True) -> xr.Dataset:
    """Rank candidate experiments by the expected reduction of the metric's posterior sd.

    Parameters
    ----------
    model : Model
    sets : xarray.DataArray
        Current (posterior) parameter sets, dims (chain, draw, parameter).
    metric : xarray.DataArray
        The metric on the same draws, dims (chain, draw).
    experiments : list of Experiment
    log_metric : bool
        Judge the sd of log10(metric) (for positive metrics spanning decades).

    Returns
    -------
    xarray.Dataset
        Along ``experiment`` (best first): ``expected_sd``, ``reduction`` (1 - expected_sd /
        current sd), ``ess_mean``, ``ess_min``, ``degenerate`` and the experiment's fields;
        ``attrs['current_sd']``.
    """
    if not experiments:
        raise ExopkError("no candidate experiments")
    values = np.asarray(metric.transpose("chain", "draw").values, dtype=float).ravel()
    if log_metric:
        if np.any(~(values > 0)):
            raise ExopkError("the metric is not positive in every draw: use the linear scale")
        values = np.log10(values)
    if not np.all(np.isfinite(values)):
        raise ExopkError("the metric is not finite in every draw")
    columns = []
    for route in dict.fromkeys(e.route for e in experiments):
        for dose in dict.fromkeys(e.dose for e in experiments if e.route == route):
            chosen = [e for e in experiments if e.route == route and e.dose == dose]
            times = sorted({e.time for e in chosen})
            outputs = list(dict.fromkeys(e.output for e in chosen))
            predicted = output_at(model, sets, Regimen.bolus(route, dose), times, outputs)
            flat = predicted.stack(sample=("chain", "draw")).transpose("sample", "time", "output")
            for e in chosen:
                columns.append((e, flat.sel(time=e.time, output=e.output).values))
    order = [e for e, _ in columns]
    mu = np.log(np.maximum(np.stack([c for _, c in columns], axis=1), _LOG_FLOOR))
    noise = np.array([e.assay_sigma_log / np.sqrt(e.animals) for e in order])
    sd, ess_mean, ess_min = expected_posterior_sd(values, mu, noise, replicates=replicates,
                                                  seed=seed)
    current = float(values.std())
    rank = np.argsort(sd, kind="stable")
    pick = [order[i] for i in rank]
    out = xr.Dataset({
        "expected_sd": ("experiment", sd[rank]),
        "reduction": ("experiment", 1.0 - sd[rank] / current),
        "ess_mean": ("experiment", ess_mean[rank]),
        "ess_min": ("experiment", ess_min[rank]),
        "degenerate": ("experiment", ess_mean[rank] < DEGENERATE_ESS),
        "output": ("experiment", [e.output for e in pick]),
        "time": ("experiment", [e.time for e in pick]),
        "route": ("experiment", [e.route for e in pick]),
        "animals": ("experiment", [e.animals for e in pick]),
        "assay_sigma_log": ("experiment", [e.assay_sigma_log for e in pick]),
    }, coords={"experiment": [e.label for e in pick]})
    out.attrs.update(current_sd=current, draws=len(values), replicates=replicates, seed=seed,
                     scale="log10" if log_metric else "linear", time_unit=model.time_unit)
    return out
