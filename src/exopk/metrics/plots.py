"""Figures of the decision metrics (Agg canvas, no pyplot global backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exopk.dosing import Regimen
from exopk.canvas import agg_figure, save_figure
from exopk.inference.summary import fit_diagnostics
from exopk.metrics.exposure import output_at

__all__ = ["design_figure", "landscape_figure", "prior_posterior_figure", "routes_figure"]


def routes_figure(model, posterior, prior, routes, *, dose, horizon, outputs, path) -> Path:
    """Outputs (e.g. brain and blood %ID) against time per route: posterior and prior 95% bands."""
    times = np.linspace(0.0, horizon, 200)
    figure, _ = agg_figure(figsize=(5 * len(outputs), 4))
    figure.clear()
    axes = figure.subplots(1, len(outputs), squeeze=False)[0]
    colours = ["tab:blue", "tab:red", "tab:green", "tab:purple"]
    largest = dict.fromkeys(outputs, 0.0)       # the largest value drawn on each axis
    for route, colour in zip(routes, colours):
        regimen = Regimen.bolus(route, dose)
        for label, sets, style in (("posterior", posterior, "-"), ("prior", prior, ":")):
            values = output_at(model, sets, regimen, times, outputs)
            q = values.quantile([0.025, 0.5, 0.975], dim=("chain", "draw"))
            for axis, output in zip(axes, outputs):
                low, mid, high = (q.sel(output=output).isel(quantile=i).values for i in range(3))
                largest[output] = max(largest[output], float(np.nanmax(high)))
                axis.plot(times, mid, style, color=colour, label=f"{route} {label} median")
                if label == "posterior":
                    axis.fill_between(times, low, high, color=colour, alpha=0.2,
                                      label=f"{route} posterior 95%")
                else:
                    axis.plot(times, high, style, color=colour, linewidth=0.6)
    for axis, output in zip(axes, outputs):
        axis.set_yscale("log")
        if largest[output] > 0:
            # five decades below the first decade boundary clearly above the largest value;
            # not matplotlib's autoscale, whose margins follow the smallest positive value
            # drawn (a far-tail number that the last bits of exp decide)
            top = 10.0 ** np.ceil(np.log10(largest[output]) + 0.05)
            axis.set_ylim(1e-5 * top, top)
        axis.set_xlabel(f"time after a {dose:g} {model.amount_unit} bolus ({model.time_unit})")
        axis.set_ylabel(output)
        axis.set_title(output, fontsize=9)
    axes[0].legend(fontsize=6, loc="best")
    figure.suptitle(f"{model.name}: routes compared (dotted: prior median and 97.5%)", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def design_figure(ranking, title, path) -> Path:
    """Expected reduction of the metric's posterior sd per candidate experiment (best on top)."""
    n = ranking.sizes["experiment"]
    figure, axis = agg_figure(figsize=(8, 0.3 * n + 1.5))
    rows = np.arange(n)[::-1]
    degenerate = ranking["degenerate"].values
    axis.barh(rows, 100 * ranking["reduction"].values,
              color=["tab:gray" if d else "tab:blue" for d in degenerate])
    axis.set_yticks(rows, [str(e) for e in ranking["experiment"].values], fontsize=7)
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_xlabel("expected reduction of the posterior sd (%); grey: weights degenerate")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def landscape_figure(grid, optimum, routes, *, amount_unit, time_unit, title, path) -> Path:
    """The objective over split x dose and split x interval (:func:`~exopk.metrics.optimize.
    landscape`), the optimum marked where it lies on the grid."""
    figure, _ = agg_figure(figsize=(11, 4.2))
    figure.clear()
    axes = figure.subplots(1, 2)
    label = grid.attrs["objective"] + ("" if grid.attrs["objective"].startswith("P(") else
                                       f" ({amount_unit}*{time_unit})")
    a = grid.attrs
    panels = ((axes[0], "by_dose", "dose", optimum["dose"],
               f"{a['count']} administration(s)" +
               (f" every {a['at_interval']:.4g} {time_unit}" if a["count"] > 1 else "")),
              (axes[1], "by_interval", "interval",
               optimum["interval"] if optimum["count"] == a["interval_count"] else np.nan,
               f"{a['interval_count']} administrations of {a['at_dose']:.4g} {amount_unit}"))
    for axis, name, y, marker, subtitle in panels:
        mesh = axis.pcolormesh(grid["split"].values, grid[y].values,
                               grid[name].transpose(y, "split").values, shading="auto",
                               cmap="viridis")
        figure.colorbar(mesh, ax=axis, label=label)
        if np.isfinite(marker):
            axis.plot(optimum["split"], marker, "*", color="tab:red", markersize=14,
                      markeredgecolor="white", label="optimum", clip_on=False)
            axis.legend(fontsize=7, loc="upper left")
        axis.set_xlabel(f"share of each administration by {routes[1]} (rest by {routes[0]})")
        axis.set_ylabel(f"{y} ({amount_unit if y == 'dose' else time_unit})")
        axis.set_title(subtitle, fontsize=9)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def _marginals(axis, prior, posterior, name, unit=""):
    """Prior and posterior histograms (log10 axis when every value is positive)."""
    values = [np.asarray(v, dtype=float).ravel() for v in (prior, posterior)]
    values = [v[np.isfinite(v)] for v in values]
    logged = all(v.size and (v > 0).all() for v in values)
    if logged:
        values = [np.log10(v) for v in values]
    both = np.concatenate(values)
    if both.size == 0:
        axis.axis("off")
        return
    edges = np.linspace(*np.quantile(both, [0.005, 0.995]), 31) if np.ptp(both) > 0 else 10
    for v, colour, label in zip(values, ("0.6", "tab:blue"), ("prior", "posterior")):
        axis.hist(v, bins=edges, density=True, color=colour, alpha=0.55, label=label)
    axis.set_title(name, fontsize=7)
    axis.set_xlabel(("log10 " if logged else "") + (unit or "value"), fontsize=6)
    axis.tick_params(labelsize=6)
    axis.set_yticks([])


def prior_posterior_figure(tree, metrics, path: Path, *, parameters: int = 8) -> Path:
    """Prior and posterior marginals of the key parameters and of ``metrics``.

    Key parameters are the ``parameters`` most informed by the data (smallest posterior over
    prior sd) and, beside them, any whose name mentions the brain or the nose.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit result (``prior`` and ``posterior`` groups).
    metrics : dict
        ``name -> (prior values, posterior values, unit)``.
    """
    shrinkage = fit_diagnostics(tree)["shrinkage"]
    order = [str(p) for p in shrinkage["parameter"].values[np.argsort(shrinkage.values)]]
    names = list(dict.fromkeys(order[:parameters] + [p for p in order if any(
        word in p for word in ("brain", "nose", "nasal"))]))
    names = [p for p in names if p in tree["prior"] and p in tree["posterior"]]
    panels = [(p, tree["prior"][p].values, tree["posterior"][p].values, "") for p in names] + \
        [(m, *values) for m, values in metrics.items()]
    columns = 4
    rows = -(-len(panels) // columns)
    figure, _ = agg_figure(figsize=(12, 2.1 * rows + 0.8))
    figure.clear()
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (name, prior, posterior, unit) in zip(axes, panels):
        _marginals(axis, prior, posterior, name, unit)
    for axis in axes[len(panels):]:
        axis.axis("off")
    axes[0].legend(fontsize=6)
    figure.suptitle(f"{tree.attrs['fit_name']}: prior (grey) and posterior (blue) of the key "
                    f"parameters ({len(names)}) and metrics ({len(metrics)})", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)
