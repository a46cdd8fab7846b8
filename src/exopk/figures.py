"""Figures of fit results and models, regenerated from the fit files' results by one command.

``exopk figures`` (or :func:`make_figures`) reads every ``fits/*.nc`` and every shipped model and
writes into ``docs/figures/`` (``--out DIR``: into ``DIR/figures/``):

* ``model_<model>.png``: each model's compartments, transfers and routes
  (:func:`exopk.diagram.model_diagram`);
* ``<fit>_predictions.png``: every observation's published value against the model's 90%
  prior and posterior predictive intervals (log scale), proxies drawn apart from EV data;
* ``<fit>_shrinkage.png``: posterior sd over prior sd per parameter (1: the data said nothing);
* ``<fit>_data_vs_predictive.png``: per organ, published points with error bars and study labels
  against posterior predictive 50% and 95% bands, and the time course of timed records;
* ``<fit>_prior_vs_posterior.png``: prior and posterior of the key parameters and metrics
  (:func:`exopk.metrics.plots.prior_posterior_figure`);
* for fits of a model with IV and intranasal routes and brain and plasma outputs, the decision
  figures of :func:`exopk.metrics.figure_set.decision_figures` (routes, optimisation landscape,
  experiment ranking) and the claim-check page ``DIR/report_<fit>.html``.

Every stochastic step is seeded and the draws are thinned to fixed counts, so the same results
give the same figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exopk.canvas import agg_figure, save_figure
from exopk.errors import ExopkError
from exopk.inference.summary import fit_diagnostics

__all__ = ["FIGURE_DRAWS", "agg_figure", "data_vs_predictive_figure", "make_figures",
           "predictions_figure", "save_figure", "shrinkage_figure"]

FIGURE_DRAWS = 100
"""Draws per chain (evenly thinned) behind the figures that simulate."""


def predictions_figure(tree, path: Path) -> Path:
    """Observed values against prior and posterior predictive 90% intervals.

    Examples
    --------
    The shipped mouse IV fit, its 10 published values on one PNG:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import exopk
    >>> from exopk.figures import predictions_figure
    >>> tree = exopk.load_fit("fits/mouse_iv_mps.nc")
    >>> tree["observed_data"].sizes["observation"]
    10
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = predictions_figure(tree, Path(folder) / "predictions.png")
    ...     print(path.name, path.read_bytes()[1:4])
    predictions.png b'PNG'
    """
    observed = tree["observed_data"]
    posterior = tree["posterior_predictive"]["mean"].values.reshape(-1, observed.sizes["observation"])
    prior = tree["prior_predictive"]["mean"].values.reshape(-1, observed.sizes["observation"])
    n = observed.sizes["observation"]
    figure, axis = agg_figure(figsize=(8, 0.45 * n + 1.5))
    rows = np.arange(n)[::-1]
    for draws, offset, colour, label in ((prior, 0.15, "0.7", "prior 90%"),
                                         (posterior, -0.15, "tab:blue", "posterior 90%")):
        low, middle, high = np.nanquantile(draws, [0.05, 0.5, 0.95], axis=0)
        axis.hlines(rows + offset, low, high, color=colour, linewidth=4, label=label)
        axis.plot(middle, rows + offset, "|", color=colour, markersize=9)  # also where low == high
    proxy = observed["is_proxy"].values.astype(bool)
    values = observed["value"].values
    axis.plot(values[~proxy], rows[~proxy], "o", color="black", label="published (EV)")
    if proxy.any():
        axis.plot(values[proxy], rows[proxy], "s", color="tab:orange",
                  label="published (PROXY, not EV)")
    labels = [f"{'PROXY ' if p else ''}{s} {k} {o}" for s, k, o, p in zip(
        observed["study"].values, observed["kind"].values, observed["output"].values, proxy)]
    axis.set_yticks(rows, labels, fontsize=7)
    axis.set_xscale("log")
    axis.set_xlabel("value in the record's canonical unit")
    axis.set_title(f"{tree.attrs['fit_name']} ({tree.attrs['model']}): published numbers and "
                   "predictions", fontsize=9)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    return save_figure(figure, path)


def shrinkage_figure(tree, path: Path) -> Path:
    """Posterior sd over prior sd per parameter, from the fit's diagnostics.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import exopk
    >>> from exopk.figures import shrinkage_figure
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = shrinkage_figure(exopk.load_fit("fits/mouse_iv_mps.nc"),
    ...                             Path(folder) / "shrinkage.png")
    ...     print(path.name, path.read_bytes()[1:4])
    shrinkage.png b'PNG'
    """
    shrinkage = fit_diagnostics(tree)["shrinkage"]
    names = [str(name) for name in shrinkage["parameter"].values]
    ratios = shrinkage.values
    figure, axis = agg_figure(figsize=(7, 0.3 * len(names) + 1.2))
    rows = np.arange(len(names))[::-1]
    axis.barh(rows, ratios, color=["tab:red" if r > 0.9 else "tab:blue" for r in ratios])
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_yticks(rows, names, fontsize=7)
    axis.set_xlabel("posterior sd / prior sd (sampling coordinates); red: > 0.9, data say little")
    axis.set_title(f"{tree.attrs['fit_name']}: how much the evidence moved each parameter",
                   fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


def _organ(output: str) -> str:
    return output.split("_")[0]


def _record_label(observed, i) -> str:
    """Study (PROXY marked), kind, published value with unit, time and condition of record i."""
    record = observed.isel(observation=i)
    time = float(record["time_min"]) if "time_min" in record.coords else np.nan
    return (f"{'PROXY ' if bool(record['is_proxy']) else ''}{record['study'].item()}\n"
            f"{record['kind'].item()} {float(record['value']):.3g} "
            f"{record['unit_canonical'].item()}"
            + (f" at {time:g} min" if np.isfinite(time) else "")
            + (f"\n{record['condition'].item()}" if str(record["condition"].item()) else ""))


def _band(axis, x, draws, colour, label, width=0.1):
    """50% (thick) and 95% (thin) intervals of ``draws`` (n, ...) at positions ``x``."""
    q = np.nanquantile(draws, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0)
    axis.vlines(x, q[0], q[4], color=colour, linewidth=1.2, label=f"{label} 95%")
    axis.vlines(x, q[1], q[3], color=colour, linewidth=5, alpha=0.6, label=f"{label} 50%")
    axis.hlines(q[2], np.asarray(x) - width / 2, np.asarray(x) + width / 2, color=colour)


def _published(axis, x, values, sigma_log, upper, proxy):
    """Published points, 95% error bars from their log-scale sd, censored ones as arrows."""
    for xi, value, sd, up, is_proxy in zip(x, values, sigma_log, upper, proxy):
        style = dict(color="tab:orange" if is_proxy else "black", zorder=4)
        if np.isfinite(up) and not np.isfinite(value):
            axis.plot(xi, up, "v", **style)
            continue
        if np.isfinite(up):                                      # interval-censored
            axis.vlines(xi, value, up, linestyle=":", **style)
        error = [[value - value * np.exp(-1.96 * sd)], [value * np.exp(1.96 * sd) - value]]
        axis.errorbar(xi, value, yerr=error if sd > 0 else None, fmt="s" if is_proxy else "o",
                      capsize=3, markersize=5, **style)


def data_vs_predictive_figure(tree, draws, path: Path) -> Path:
    """Per organ: published values with 95% error bars (from their log-scale sd) and study
    labels against the posterior predictive 50% / 95% bands (prior 95% in grey); for records
    measured at a time, the posterior band of that output's time course after the record's
    route (typical study, normal conditions).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit result.
    draws : FitDraws or None
        Its parameter sets (:func:`exopk.metrics.draws.load_draws`), for the time courses;
        None draws no time course bands.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import exopk
    >>> from exopk.figures import data_vs_predictive_figure
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = data_vs_predictive_figure(exopk.load_fit("fits/mouse_iv_mps.nc"), None,
    ...                                      Path(folder) / "organs.png")
    ...     print(path.name, path.read_bytes()[1:4])
    organs.png b'PNG'
    """
    from exopk.dosing import Regimen
    from exopk.metrics.exposure import output_at

    observed = tree["observed_data"].to_dataset()
    n = observed.sizes["observation"]
    posterior = tree["posterior_predictive"]
    posterior = (posterior["y"] if "y" in posterior else posterior["mean"]).values.reshape(-1, n)
    prior = tree["prior_predictive"]["mean"].values.reshape(-1, n)
    organs = list(dict.fromkeys(_organ(str(o)) for o in observed["output"].values))
    figure, _ = agg_figure(figsize=(12, 2.9 * len(organs) + 0.6))
    figure.clear()
    grid = figure.add_gridspec(len(organs), 2, width_ratios=[1.3, 1])
    times = observed["time_min"].values if "time_min" in observed else np.full(n, np.nan)
    first = None
    for r, organ in enumerate(organs):
        rows = [i for i in range(n) if _organ(str(observed["output"].values[i])) == organ]
        timed = [i for i in rows if np.isfinite(times[i]) and str(observed["kind"].values[i])
                 == "value" and not str(observed["condition"].values[i])]
        timed = timed if draws is not None else []
        left = figure.add_subplot(grid[r, 0] if timed else grid[r, :])
        first = first or left
        x = np.arange(len(rows))
        value = observed["value"].values[rows]
        scale = np.where(np.isfinite(value), value, observed["upper"].values[rows])
        # every record on its own scale: predictions and data over the published value
        _band(left, x + 0.15, prior[:, rows] / scale, "0.65", "prior")
        _band(left, x - 0.15, posterior[:, rows] / scale, "tab:blue", "posterior predictive")
        _published(left, x, value / scale, observed["sigma_log"].values[rows],
                   observed["upper"].values[rows] / scale, observed["is_proxy"].values[rows])
        left.set_yscale("log")
        left.set_xlim(-0.6, len(rows) - 0.4)
        left.set_xticks(x, [_record_label(observed, i) for i in rows], fontsize=6)
        left.set_ylabel("over the published value", fontsize=8)
        left.set_title(f"{organ}: published (black EV, orange PROXY) and predicted", fontsize=9)
        if not timed:
            continue
        right = figure.add_subplot(grid[r, 1])
        for colour, (output, route) in zip(("tab:blue", "tab:green", "tab:purple", "tab:red"),
                                           dict.fromkeys((str(observed["output"].values[i]),
                                                          str(observed["route"].values[i]))
                                                         for i in timed)):
            horizon = 3 * max(times[i] for i in timed)
            clock = np.linspace(0.0, horizon, 120)
            course = output_at(draws.model, draws.posterior, Regimen.bolus(route, 100.0), clock,
                               output).isel(output=0).stack(sample=("chain", "draw"))
            q = course.quantile([0.025, 0.25, 0.5, 0.75, 0.975], dim="sample").values
            right.fill_between(clock, q[0], q[4], color=colour, alpha=0.15,
                               label=f"{output} after {route}: 95%")
            right.fill_between(clock, q[1], q[3], color=colour, alpha=0.3, label="50%")
            right.plot(clock, q[2], color=colour, linewidth=1)
            mine = [i for i in timed if str(observed["output"].values[i]) == output]
            _published(right, times[mine], observed["value"].values[mine],
                       observed["sigma_log"].values[mine], observed["upper"].values[mine],
                       observed["is_proxy"].values[mine])
            for i in mine:
                right.annotate(str(observed["study"].values[i]), (times[i], observed["value"]
                                                                  .values[i]),
                               textcoords="offset points", xytext=(5, 5), fontsize=6)
        right.set_yscale("log")
        low, high = right.get_ylim()
        lowest = np.nanmin(observed["value"].values[timed])
        right.set_ylim(min(max(low, 1e-6 * high), 0.3 * lowest), high)  # 6 decades, and data
        right.set_xlabel(f"time after the dose ({tree.attrs.get('time_unit', 'min')})",
                         fontsize=8)
        right.set_title(f"{organ}: posterior time course (typical study, normal conditions)",
                        fontsize=9)
        right.legend(fontsize=6, loc="best")
    handles, labels = first.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    figure.legend(unique.values(), unique.keys(), fontsize=7, loc="upper right", ncol=4)
    figure.suptitle(f"{tree.attrs['fit_name']} ({tree.attrs['model']}): data against the "
                    "posterior predictive, per organ", fontsize=10, x=0.3)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    return save_figure(figure, path)


def _fit_metrics(draws, horizon=1440.0) -> dict:
    """AUC over 24 h of plasma and brain %ID after the model's first route, prior and
    posterior (the metrics of fits without decision figures)."""
    from exopk.dosing import Regimen
    from exopk.metrics.exposure import auc

    model = draws.model
    outputs = [o for o in ("plasma_percent_id", "brain_percent_id") if o in model.output_names]
    if not outputs or not model.is_linear:
        return {}
    route = model.routes[0].name
    values = [auc(model, sets, Regimen.bolus(route, 100.0), horizon, outputs)
              for sets in (draws.prior, draws.posterior)]
    return {f"AUC {o} 0-{horizon:g} {model.time_unit} after {route}":
            (values[0].sel(output=o).values, values[1].sel(output=o).values,
             str(values[0]["unit"].sel(output=o).values)) for o in outputs}


def make_figures(fits_folder="fits", out_folder="docs", *, draws: int = FIGURE_DRAWS,
                 seed: int = 0) -> list[Path]:
    """Regenerate every docs figure (and the claim-check pages) from the results in
    ``fits_folder`` and the shipped models, into ``out_folder/figures`` (see the module).

    Parameters
    ----------
    fits_folder : path
        Folder of fit results (``*.nc``) beside their fit files.
    out_folder : path
        The docs folder: figures go to its ``figures`` folder, reports into it.
    draws : int
        Draws per chain (evenly thinned) behind the figures that simulate.
    seed : int
        Seed of every stochastic step (simulated experiments, optimiser starts, resamples).

    Raises
    ------
    ExopkError
        ``fits_folder`` is not a folder, or holds no fit result (``*.nc``); the message names
        the folder looked in (as an absolute path) and what to pass instead.

    Examples
    --------
    ``make_figures()`` from the repository root redraws ``docs/`` (``exopk figures`` does the
    same; a few minutes). A folder without results is refused before anything is drawn:

    >>> import tempfile
    >>> from exopk.figures import make_figures
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     make_figures(folder, folder)
    Traceback (most recent call last):
    ...
    exopk.errors.ExopkError: nothing to draw: no fit results (*.nc) in ...; write one with ...
    """
    from exopk.diagram import model_diagram
    from exopk.metrics.draws import load_draws
    from exopk.metrics.figure_set import decision_figures, has_decisions
    from exopk.metrics.plots import prior_posterior_figure
    from exopk.model import load_model
    from exopk.models_library import available_models, model_path

    folder = Path(fits_folder)
    if not folder.is_dir():
        raise ExopkError(f"no folder of fit results at {folder.resolve()}; run from the root of "
                         "the exopk repository or pass the folder holding the fits' .nc results "
                         "(exopk figures --fits FOLDER)")
    results = sorted(folder.glob("*.nc"))
    if not results:
        raise ExopkError(f"nothing to draw: no fit results (*.nc) in {folder.resolve()}; write "
                         "one with 'exopk fit FIT_FILE.toml' or pass the folder holding them "
                         "(exopk figures --fits FOLDER)")
    loaded = [load_draws(result, max_draws=draws) for result in results]   # all usable first
    figures = Path(out_folder) / "figures"
    written = [model_diagram(load_model(model_path(name)), figures / f"model_{name}.png")
               for name in available_models()]
    for fit_draws in loaded:
        tree, name = fit_draws.tree, fit_draws.name
        written.append(predictions_figure(tree, figures / f"{name}_predictions.png"))
        written.append(shrinkage_figure(tree, figures / f"{name}_shrinkage.png"))
        written.append(data_vs_predictive_figure(tree, fit_draws,
                                                 figures / f"{name}_data_vs_predictive.png"))
        if has_decisions(fit_draws.model):
            # with the report, whose prior-vs-posterior figure has the route metrics
            written.extend(decision_figures(fit_draws, figures, Path(out_folder), seed=seed))
        else:
            written.append(prior_posterior_figure(tree, _fit_metrics(fit_draws),
                                                  figures / f"{name}_prior_vs_posterior.png"))
    return written
