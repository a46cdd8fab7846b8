"""Figures of fit results, regenerated from the fit files' results by one command.

``exopk figures`` (or :func:`make_figures`) reads every ``fits/*.nc`` and writes, for each fit,
into ``docs/figures/``:

* ``<fit>_predictions.png``: every observation's published value against the model's 90%
  prior and posterior predictive intervals (log scale), proxies drawn apart from EV data;
* ``<fit>_shrinkage.png``: posterior sd over prior sd per parameter (1: the data said nothing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exopk.errors import ExopkError
from exopk.inference.result import load_fit
from exopk.inference.summary import fit_diagnostics
from exopk.io import write_atomically

__all__ = ["agg_figure", "make_figures", "predictions_figure", "save_figure", "shrinkage_figure"]


def agg_figure(figsize):
    """A figure drawn by the Agg canvas (no pyplot, no global backend), and its axes."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG (atomically)."""
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    return path


def predictions_figure(tree, path: Path) -> Path:
    """Observed values against prior and posterior predictive 90% intervals."""
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
    """Posterior sd over prior sd per parameter, from the fit's diagnostics."""
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


def make_figures(fits_folder="fits", out_folder="docs/figures") -> list[Path]:
    """Regenerate every figure from the fit results in ``fits_folder``.

    Raises
    ------
    ExopkError
        ``fits_folder`` is not a folder, or holds no fit result (``*.nc``); the message names
        the folder looked in (as an absolute path) and what to pass instead.
    """
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
    written = []
    for result in results:
        tree = load_fit(result)
        name = tree.attrs["fit_name"]
        written.append(predictions_figure(tree, Path(out_folder) / f"{name}_predictions.png"))
        written.append(shrinkage_figure(tree, Path(out_folder) / f"{name}_shrinkage.png"))
    return written
