"""Figures of the decision metrics (Agg canvas, no pyplot global backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exopk.dosing import Regimen
from exopk.figures import agg_figure, save_figure
from exopk.metrics.exposure import output_at

__all__ = ["design_figure", "landscape_figure", "routes_figure"]


def routes_figure(model, posterior, prior, routes, *, dose, horizon, outputs, path) -> Path:
    """Outputs (e.g. brain and blood %ID) against time per route: posterior and prior 95% bands."""
    times = np.linspace(0.0, horizon, 200)
    figure, _ = agg_figure(figsize=(5 * len(outputs), 4))
    figure.clear()
    axes = figure.subplots(1, len(outputs), squeeze=False)[0]
    colours = ["tab:blue", "tab:red", "tab:green", "tab:purple"]
    for route, colour in zip(routes, colours):
        regimen = Regimen.bolus(route, dose)
        for label, sets, style in (("posterior", posterior, "-"), ("prior", prior, ":")):
            values = output_at(model, sets, regimen, times, outputs)
            q = values.quantile([0.025, 0.5, 0.975], dim=("chain", "draw"))
            for axis, output in zip(axes, outputs):
                low, mid, high = (q.sel(output=output).isel(quantile=i).values for i in range(3))
                axis.plot(times, mid, style, color=colour, label=f"{route} {label} median")
                if label == "posterior":
                    axis.fill_between(times, low, high, color=colour, alpha=0.2,
                                      label=f"{route} posterior 95%")
                else:
                    axis.plot(times, high, style, color=colour, linewidth=0.6)
    for axis, output in zip(axes, outputs):
        axis.set_yscale("log")
        low, high = axis.get_ylim()
        axis.set_ylim(max(low, 1e-5 * high), high)     # show five decades below the top
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
