"""The one way exopk draws: a figure on the Agg canvas (no pyplot, no global backend), saved
atomically as a PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exopk.io import write_atomically

__all__ = ["agg_figure", "save_figure"]


def agg_figure(figsize):
    """A figure drawn by the Agg canvas (no pyplot, no global backend), and its axes."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG (atomically)."""
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    return path
