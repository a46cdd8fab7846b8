"""The one way exopk draws: a figure on the Agg canvas (no pyplot, no global backend), saved
atomically as a PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from exopk.io import write_atomically

__all__ = ["agg_figure", "save_figure"]


def agg_figure(figsize):
    """A figure drawn by the Agg canvas (no pyplot, no global backend), and its axes.

    Examples
    --------
    >>> from exopk.canvas import agg_figure
    >>> figure, axis = agg_figure(figsize=(3, 2))
    >>> _ = axis.plot([0, 1], [1, 0])
    >>> type(figure.canvas).__name__, len(axis.lines)
    ('FigureCanvasAgg', 1)
    """
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG (atomically).

    Examples
    --------
    At 120 dpi a 3 x 2 inch figure is 360 x 240 pixels:

    >>> import pathlib, tempfile
    >>> from matplotlib.image import imread
    >>> from exopk.canvas import agg_figure, save_figure
    >>> figure, axis = agg_figure(figsize=(3, 2))
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = save_figure(figure, pathlib.Path(folder.name) / "empty.png")
    >>> path.read_bytes()[:4], imread(path).shape
    (b'\\x89PNG', (240, 360, 4))
    >>> folder.cleanup()
    """
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    return path
