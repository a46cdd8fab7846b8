"""The one summary of a fit: convergence, shrinkage and misfit, as a labelled dataset.

:func:`summarize` turns a fit result (an ``xarray.DataTree`` in the ArviZ layout) into an
``xarray.Dataset`` with two dimensions (the layout of xarray-einstats' summaries):

``parameter`` (every variable of the ``posterior`` group)
    ``mean``, ``sd`` (``ddof=1``), ``q5``, ``q50``, ``q95`` (in the parameter's unit, coordinate
    ``unit``); ``mcse_mean``; ``rhat``, ``ess_bulk``, ``ess_tail``
    (:mod:`exopk.inference.diagnostics`); ``prior_sensitivity``, ``likelihood_sensitivity``,
    ``sensitivity_verdict``: power-scaling sensitivity (:mod:`exopk.inference.sensitivity`,
    Kallioinen et al. 2023; needs ArviZ); ``shrinkage``: posterior sd over prior sd in the
    sampling coordinates (log scale for positive parameters, logit for bounded ones, where an sd
    means the same for a rate of 0.001/min as for one of 10/min; 1: the data said nothing).

``observation`` (every observation of ``observed_data``)
    Coordinates ``study``, ``line``, ``kind``, ``output``, ``censoring`` and ``is_proxy``.
    ``observed`` (the published value, the low end of an interval); ``prediction_q5``,
    ``prediction_q50``, ``prediction_q95``: quantiles of the model's prediction under the
    posterior; ``prediction_shrinkage``: sd of the log prediction under the posterior over that
    under the prior (NaN for structural predictions); ``outside_prediction_90``: the published
    value lies outside ``prediction_q5``-``prediction_q95`` (what the model predicts, before the
    noise and the between-study dispersion ``tau`` that the likelihood adds); ``structural``: the
    prediction does not move under the prior nor the posterior (sd of its log below
    :data:`STRUCTURAL_SD`: it is fixed by the model's structure, as Vss of a model whose only
    distribution volume is the blood); ``ppi90_lower``, ``ppi90_upper``, ``ppi99_lower``,
    ``ppi99_upper``: the central 90 % and 99 % posterior predictive intervals of a noisy replicate
    of the observation (``posterior_predictive.y``); ``outside_90``, ``outside_99``: the published
    value (or, for censored observations, every value it allows) lies outside that interval;
    ``p_value``: the posterior predictive p-value of the published value (two-sided
    ``2 min(F(v), 1 - F(v))`` with ``F`` the replicates' distribution; for a bound ``v`` on the
    true value, the replicates' probability of being on the allowed side, ``F(v)`` below an upper
    bound, ``1 - F(v)`` above a lower one; for an interval ``2 min(F(hi), 1 - F(lo))``, at most 1);
    ``z``: standardised residual of the log published value, ``(log v - mean log y) / sd log y``
    over the replicates (NaN for censored observations).

Totals (no dimension): ``divergences``, ``max_rhat``, ``min_ess_bulk``, ``converged`` (R-hat <=
:data:`RHAT_LIMIT`, bulk ESS >= :data:`ESS_LIMIT` for every parameter and no divergence);
``n_outside_90``, ``n_outside_99``, ``n_outside_prediction_90``, ``n_structural``,
``allowed_outside_90`` (the most values outside their 90 % intervals that chance explains: the 99 %
quantile of a binomial with probability 0.1) and ``misfit`` (any value outside its 99 % interval,
or more than ``allowed_outside_90`` outside their 90 % intervals); ``implausible``: the result's
``plausibility`` group (:mod:`exopk.inference.plausibility`) has a violated bound.

:func:`fit_diagnostics` returns the dataset a result stores in its ``diagnostics`` group, or
computes it for results written before the group existed; :func:`format_summary` prints it.
"""

from __future__ import annotations

import json

import numpy as np
import scipy.stats
import xarray as xr

from exopk.inference.coordinates import coordinates_of_draws
from exopk.inference.diagnostics import ess_bulk, ess_tail, mcse_mean, split_rhat
from exopk.inference.plausibility import plausibility_report
from exopk.inference.sensitivity import power_scaling
from exopk.units import display_unit

__all__ = ["summarize", "fit_diagnostics", "format_summary", "misfit_report", "RHAT_LIMIT",
           "ESS_LIMIT", "STRUCTURAL_SD"]

RHAT_LIMIT = 1.01
ESS_LIMIT = 400
STRUCTURAL_SD = 1e-9   # sd of the log prediction (relative spread) below which it cannot move
_LEVELS = {90: (0.05, 0.95), 99: (0.005, 0.995)}


def _legacy_shrinkage(tree, names) -> np.ndarray:
    """Shrinkage from the JSON ``diagnostics`` attribute of results written before bounds were."""
    stored = json.loads(tree.attrs.get("diagnostics", "{}")).get("parameters", {})
    return np.array([stored.get(n, {}).get("shrinkage", np.nan) for n in names], dtype=float)


def _parameters(tree) -> xr.Dataset:
    posterior = tree["posterior"].to_dataset()
    names = list(posterior.data_vars)
    draws = {n: posterior[n].transpose("chain", "draw").values for n in names}
    coordinates = coordinates_of_draws(tree["posterior"], names)
    if coordinates is not None:
        def stack(group):
            return np.stack([tree[group][n].transpose("chain", "draw").values for n in names],
                            axis=-1)
        with np.errstate(invalid="ignore"):
            posterior_sd = np.std(coordinates.to_search(stack("posterior")), axis=(0, 1))
            prior_sd = np.std(coordinates.to_search(stack("prior")), axis=(0, 1))
        shrinkage = np.where(prior_sd > 0, posterior_sd / np.where(prior_sd > 0, prior_sd, 1.0),
                             np.nan)
    else:
        shrinkage = _legacy_shrinkage(tree, names)
    rows = {key: [] for key in ("mean", "sd", "q5", "q50", "q95", "mcse_mean", "rhat",
                                "ess_bulk", "ess_tail")}
    for name in names:
        x = draws[name]
        q5, q50, q95 = np.quantile(x, (0.05, 0.5, 0.95))
        for key, value in (("mean", np.mean(x)), ("sd", np.std(x, ddof=1)), ("q5", q5),
                           ("q50", q50), ("q95", q95), ("mcse_mean", mcse_mean(x)),
                           ("rhat", split_rhat(x)), ("ess_bulk", ess_bulk(x)),
                           ("ess_tail", ess_tail(x))):
            rows[key].append(float(value))
    data = {key: ("parameter", np.array(values)) for key, values in rows.items()}
    data["shrinkage"] = ("parameter", shrinkage)
    units = [str(posterior[n].attrs.get("units", "")) for n in names]
    return xr.Dataset(data, coords={"parameter": names, "unit": ("parameter", units)})


def _observations(tree) -> xr.Dataset:
    observed = tree["observed_data"].to_dataset()
    n = observed.sizes["observation"]
    mean = tree["posterior_predictive"]["mean"].values.reshape(-1, n)
    replicate = tree["posterior_predictive"]["y"].values.reshape(-1, n)
    prior_mean = tree["prior_predictive"]["mean"].values.reshape(-1, n)
    value = observed["value"].values.astype(float)
    upper = observed["upper"].values.astype(float)
    censoring = observed["censoring"].values.astype(str)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mean, log_prior = np.log(mean), np.log(prior_mean)
        posterior_sd, prior_sd = np.nanstd(log_mean, axis=0), np.nanstd(log_prior, axis=0)
        shrinkage = np.where(prior_sd > 0, posterior_sd / prior_sd, np.nan)
        log_replicate = np.log(replicate)
        z = (np.log(value) - np.nanmean(log_replicate, axis=0)) / np.nanstd(log_replicate, axis=0)
    z[censoring != "none"] = np.nan
    q5, q50, q95 = np.nanquantile(mean, (0.05, 0.5, 0.95), axis=0)
    # the values a censored observation allows: below `value` (upper), above it (lower),
    # between `value` and `upper` (interval)
    low = np.where(np.isin(censoring, ("none", "lower", "interval")), value, -np.inf)
    high = np.where(censoring == "interval", upper,
                    np.where(censoring == "lower", np.inf, value))
    structural = (posterior_sd < STRUCTURAL_SD) & (prior_sd < STRUCTURAL_SD)
    data = {"observed": ("observation", value), "prediction_q5": ("observation", q5),
            "prediction_q50": ("observation", q50), "prediction_q95": ("observation", q95),
            "prediction_shrinkage": ("observation", np.where(structural, np.nan, shrinkage)),
            "structural": ("observation", structural),
            "outside_prediction_90": ("observation", (high < q5) | (low > q95))}
    for level, (a, b) in _LEVELS.items():
        lower, upper_end = np.nanquantile(replicate, (a, b), axis=0)
        data[f"ppi{level}_lower"] = ("observation", lower)
        data[f"ppi{level}_upper"] = ("observation", upper_end)
        data[f"outside_{level}"] = ("observation", (high < lower) | (low > upper_end))
    below_high = np.mean(replicate <= high, axis=0)
    above_low = np.mean(replicate >= low, axis=0)
    data["p_value"] = ("observation", np.minimum(1.0, np.where(
        censoring == "upper", below_high, np.where(
            censoring == "lower", above_low, 2 * np.minimum(below_high, above_low)))))
    data["z"] = ("observation", z)
    coords = {name: ("observation", observed[name].values)
              for name in ("study", "line", "kind", "output", "censoring", "is_proxy")}
    return xr.Dataset(data, coords={"observation": observed["observation"].values, **coords})


def summarize(tree: xr.DataTree) -> xr.Dataset:
    """Convergence, shrinkage and misfit of a fit result (see the module docstring).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit result: ``posterior``, ``prior``, ``sample_stats`` (``diverging``),
        ``posterior_predictive`` (``mean``, ``y``), ``prior_predictive`` (``mean``) and
        ``observed_data`` groups.

    Returns
    -------
    xarray.Dataset
        Dims ``parameter`` and ``observation``, and totals without dimension.

    Raises
    ------
    ValueError
        If a parameter's draws cannot be diagnosed (fewer than 2 chains of 4 draws, non-finite
        values); the message names the parameter.

    Examples
    --------
    >>> from exopk.inference.result import load_fit
    >>> from exopk.inference.summary import summarize
    >>> summary = summarize(load_fit("fits/mouse_iv_mps.nc"))
    >>> float(summary["rhat"].sel(parameter="tau")) < 1.01
    True
    >>> summary["structural"].sel(observation=4).item(), summary["kind"][4].item()
    (True, 'vss')
    """
    for name, values in tree["posterior"].data_vars.items():
        try:
            split_rhat(values.transpose("chain", "draw").values)
        except ValueError as exc:
            raise ValueError(f"parameter '{name}': {exc}") from None
    summary = xr.merge([_parameters(tree), _observations(tree), power_scaling(tree)])
    finite_rhat = summary["rhat"].values[np.isfinite(summary["rhat"].values)]
    finite_ess = summary["ess_bulk"].values[np.isfinite(summary["ess_bulk"].values)]
    max_rhat = float(finite_rhat.max()) if finite_rhat.size else np.nan
    min_ess = float(finite_ess.min()) if finite_ess.size else np.nan
    divergences = int(tree["sample_stats"]["diverging"].values.sum()) \
        if "diverging" in tree["sample_stats"] else 0
    n = summary.sizes["observation"]
    allowed = int(scipy.stats.binom.ppf(0.99, n, 0.1))
    outside_90, outside_99 = int(summary["outside_90"].sum()), int(summary["outside_99"].sum())
    totals = {
        "n_outside_prediction_90": int(summary["outside_prediction_90"].sum()),
        "divergences": divergences, "max_rhat": max_rhat, "min_ess_bulk": min_ess,
        "converged": bool(max_rhat <= RHAT_LIMIT and min_ess >= ESS_LIMIT and divergences == 0),
        "n_outside_90": outside_90, "n_outside_99": outside_99,
        "allowed_outside_90": allowed, "n_structural": int(summary["structural"].sum()),
        "misfit": bool(outside_99 > 0 or outside_90 > allowed),
        "implausible": bool("plausibility" in tree.children
                            and bool(tree["plausibility"]["implausible"])),
    }
    return summary.assign({name: ((), value) for name, value in totals.items()})


def fit_diagnostics(tree: xr.DataTree) -> xr.Dataset:
    """The summary a fit result stores (``diagnostics`` group), or :func:`summarize` of it.

    Results written before the ``diagnostics`` group existed are summarised from their draws;
    their parameters' shrinkage is read from the JSON ``diagnostics`` attribute they carry.
    """
    if "diagnostics" in tree.children:
        return tree["diagnostics"].to_dataset()
    return summarize(tree)


def misfit_report(summary: xr.Dataset) -> list[str]:
    """Lines saying how many published values the fit misses, and which predictions are fixed."""
    n = summary.sizes["observation"]
    lines = [f"{int(summary['n_outside_90'])} of {n} published values outside their 90% "
             f"posterior predictive intervals (chance explains at most "
             f"{int(summary['allowed_outside_90'])}), {int(summary['n_outside_99'])} outside "
             f"their 99% intervals",
             f"{int(summary['n_outside_prediction_90'])} of {n} published values outside the 90% "
             f"interval of the model's prediction itself (the likelihood's between-study "
             f"dispersion covers the difference)"]
    for i in np.flatnonzero(summary["structural"].values):
        row = summary.isel(observation=i)
        lines.append(f"structural: {_label(row)} is {float(row['prediction_q50']):.4g} at every "
                     f"draw of the prior and the posterior (published "
                     f"{float(row['observed']):.4g}): no parameter moves it")
    return lines


def _sensitivity(p) -> str:
    if "sensitivity_verdict" not in p:
        return "not computed"
    verdict = p["sensitivity_verdict"].item()
    if verdict == "not computed":
        return verdict
    return (f"{verdict} ({float(p['prior_sensitivity']):.3f}, "
            f"{float(p['likelihood_sensitivity']):.3f})")


def _label(row) -> str:
    proxy = "PROXY " if bool(row["is_proxy"]) else ""
    return f"{proxy}{row['study'].item()}:{row['line'].item()} {row['kind'].item()} " \
           f"{row['output'].item()}"


def _approximation_lines(tree: xr.DataTree) -> list[str]:
    """What a Laplace fit's intervals are, and the parameters whose mode is at a bound."""
    attrs = tree["posterior"].attrs
    if "approximation" not in attrs:
        return []
    lines = ["no MCMC: intervals from a Laplace approximation at the mode of the sampling "
             "coordinates (R-hat and ESS describe independent draws)"]
    at_bound = json.loads(attrs.get("mode_at_bound", "[]"))
    if at_bound:
        lines.append(f"mode at a bound (held there, no interval): {', '.join(at_bound)}")
    return lines


def _observation_units(tree: xr.DataTree, n: int) -> list[str]:
    """The unit of each observed value (and of its predictions), as tables print it."""
    observed = tree["observed_data"]
    name = next((c for c in ("unit", "unit_canonical") if c in observed.coords), None)
    units = [str(u) for u in observed[name].values] if name else [""] * n
    return [display_unit(u) for u in units]


def format_summary(tree: xr.DataTree, summary: xr.Dataset | None = None) -> str:
    """The table ``exopk fit`` prints: parameters, observations, convergence and misfit.

    Every parameter is printed with its unit (the model file's ``unit``) and every observation
    with the unit of its published value and predictions (the record's canonical unit, or the
    model output's unit for a user's time course); ``-`` where none is stored.
    """
    summary = fit_diagnostics(tree) if summary is None else summary
    attrs = tree.attrs
    thin = int(attrs.get("thin", 1))
    kept = f", 1 in {thin} kept" if thin > 1 else ""
    lines = [f"fit {attrs['fit_name']}: model {attrs['model']}, {attrs['chains']} chains x "
             f"{attrs['draws']} draws ({attrs['warmup']} warm-up{kept}), "
             f"sampler {attrs['sampler']}, "
             f"seed {attrs['seed']}",
             f"{summary.sizes['observation']} observations; MAP log density "
             f"{float(attrs['map_log_density']):.2f} ("
             f"{'sampling coordinates' if attrs['sampler'] == 'laplace' else 'natural parameters'})",
             *_approximation_lines(tree),
             *(f"CAVEAT: {caveat}" for caveat in json.loads(attrs.get("caveats", "[]"))),
             "",
             f"{'parameter':<34} {'unit':<14} {'mean':>10} {'5%':>10} {'95%':>10} {'R-hat':>7} "
             f"{'ESS bulk':>9} {'ESS tail':>9} {'sd/prior sd':>11}  power-scaling (prior, "
             f"likelihood)"]
    for name in summary["parameter"].values:
        p = summary.sel(parameter=name)
        rhat, ess, shrinkage = float(p["rhat"]), float(p["ess_bulk"]), float(p["shrinkage"])
        flag = ""
        if not (rhat <= RHAT_LIMIT) or not (ess >= ESS_LIMIT):
            flag = "  <-- not converged"
        elif shrinkage > 0.9:
            flag = "  (data say little)"
        lines.append(f"{name:<34} {display_unit(p['unit'].item()):<14} {float(p['mean']):>10.4g} "
                     f"{float(p['q5']):>10.4g} {float(p['q95']):>10.4g} {rhat:>7.3f} {ess:>9.0f} "
                     f"{float(p['ess_tail']):>9.0f} {shrinkage:>11.2f}  {_sensitivity(p)}"
                     f"{flag}")
    units = _observation_units(tree, summary.sizes["observation"])
    lines += ["", f"{'observation (prediction)':<52} {'unit':<12} {'observed':>10} {'50%':>10} "
                  f"{'90% predictive':>21} {'99% predictive':>21} {'p':>6} {'sd/prior sd':>11}"]
    for i in range(summary.sizes["observation"]):
        o = summary.isel(observation=i)
        flag = ("  STRUCTURAL" if bool(o["structural"]) else "") + \
            ("  <-- OUTSIDE 99%" if bool(o["outside_99"]) else
             "  <-- outside 90%" if bool(o["outside_90"]) else "")
        lines.append(f"{_label(o)[:52]:<52} {units[i]:<12} {float(o['observed']):>10.4g} "
                     f"{float(o['prediction_q50']):>10.4g} "
                     f"{float(o['ppi90_lower']):>10.4g}-{float(o['ppi90_upper']):<10.4g} "
                     f"{float(o['ppi99_lower']):>10.4g}-{float(o['ppi99_upper']):<10.4g} "
                     f"{float(o['p_value']):>6.3f} {float(o['prediction_shrinkage']):>11.2f}{flag}")
    lines.append("")
    if bool(summary["converged"]):
        lines.append(f"converged: max R-hat {float(summary['max_rhat']):.3f}, min bulk ESS "
                     f"{float(summary['min_ess_bulk']):.0f}, no divergences")
    else:
        lines += ["!" * 72,
                  f"NOT CONVERGED: max R-hat {float(summary['max_rhat']):.3f} "
                  f"(limit {RHAT_LIMIT}), "
                  f"min bulk ESS {float(summary['min_ess_bulk']):.0f} (limit {ESS_LIMIT}), "
                  f"{int(summary['divergences'])} divergent transitions",
                  "!" * 72]
    if "plausibility" in tree.children and tree["plausibility"].sizes.get("bound", 0):
        checked = tree["plausibility"].to_dataset()
        report = plausibility_report(checked)
        if bool(summary.get("implausible", False)):
            lines += ["!" * 72, f"IMPLAUSIBLE: the posterior predictive violates "
                      f"{int(checked['violated'].sum())} of {checked.sizes['bound']} plausibility "
                      f"bounds of the model ({int(checked['n_draws'])} draws)", *report, "!" * 72]
        else:
            lines += [f"plausible: all {checked.sizes['bound']} bounds of the model hold "
                      f"({int(checked['n_draws'])} draws)", *report]
    report = misfit_report(summary)
    if bool(summary["misfit"]) or int(summary["n_structural"]):
        lines += ["!" * 72, ("MISFIT: " if bool(summary["misfit"]) else "fit: ") + report[0],
                  *report[1:], "!" * 72]
    else:
        lines.append("fit: " + report[0])
    return "\n".join(lines)
