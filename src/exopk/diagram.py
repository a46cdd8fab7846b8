"""A diagram of a model's compartments, transfers and routes, drawn from the model itself.

Compartments are boxes in columns by kind (dose depots, plasma, tissues, free label, sinks);
a free-label pool sits beside the compartment that feeds it. Transfers are arrows labelled with
their rate (first-order ``rate``, ``clearance`` / volume, or ``Vmax``, ``Km`` for saturable
ones); routes are arrows into the compartments that receive the dose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import FancyArrowPatch

from exopk.canvas import agg_figure, save_figure

__all__ = ["model_diagram"]

COLUMNS = {"depot": 0, "plasma": 1, "tissue": 2, "free_label": 3, "sink": 4}
COLOURS = {"depot": "#fde0c5", "plasma": "#f4b6b6", "tissue": "#c6dbef", "free_label": "#e0e0e0",
           "sink": "#ffffff"}
LABEL_CHARACTERS = 34
SPACING = 2.4


def _positions(model) -> dict[str, tuple[float, float]]:
    """(x, y) per compartment: columns by kind, free label beside its feeding compartment."""
    kinds = {c.name: c.kind for c in model.compartments}
    feeder = {}
    for t in model.transfers:
        if kinds[t.target] == "free_label" and kinds[t.source] != "free_label":
            feeder.setdefault(t.target, t.source)
    columns: dict[int, list[str]] = {}
    for c in model.compartments:
        column = COLUMNS["free_label"] if c.name in feeder else COLUMNS.get(c.kind, 2)
        columns.setdefault(column, []).append(c.name)
    x_of = {column: SPACING * rank for rank, column in enumerate(sorted(columns))}
    height = max(len(names) for column, names in columns.items()
                 if column != COLUMNS["free_label"])
    where = {}
    for column, names in columns.items():
        if column == COLUMNS["free_label"]:
            names = [n for n in names if n not in feeder]
        for i, name in enumerate(names):
            where[name] = (x_of[column], (height - 1) / 2 - i * (height - 1) / (len(names) - 1)
                           if len(names) > 1 else 0.0)
    for label, source in feeder.items():
        where[label] = (x_of[COLUMNS["free_label"]], where[source][1])
    return where


def _blocked(where, source, target) -> bool:
    """Whether the straight line from source to target passes through another box."""
    p0, p1 = np.array(where[source]), np.array(where[target])
    direction = p1 - p0
    length = np.hypot(*direction)
    for name, centre in where.items():
        if name in (source, target):
            continue
        along = np.dot(np.array(centre) - p0, direction) / length ** 2
        offset = np.array(centre) - p0
        across = abs(direction[0] * offset[1] - direction[1] * offset[0]) / length
        if 0 < along < 1 and across < 0.35:
            return True
    return False


def _rate_label(transfer) -> str:
    if transfer.kind == "michaelis_menten":
        text = f"Vmax {transfer.vmax}, Km {transfer.km}"
    elif transfer.kind == "clearance":
        text = f"CL {transfer.clearance}"
    else:
        text = str(transfer.rate)
    return text if len(text) <= LABEL_CHARACTERS else text[:LABEL_CHARACTERS - 1] + "…"


def model_diagram(model, path) -> Path:
    """Draw ``model`` (a :class:`~exopk.model.Model`) to a PNG at ``path``.

    Compartments are boxes in columns by kind (depot, plasma, tissues, free label, sinks) and
    every transfer an arrow labelled with its rate or clearance.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import exopk
    >>> from exopk.diagram import model_diagram
    >>> model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = model_diagram(model, Path(folder) / "m1.png")
    ...     print(path.name, path.read_bytes()[1:4])
    m1.png b'PNG'
    """
    where = _positions(model)
    ys = [y for _, y in where.values()]
    xs = [x for x, _ in where.values()]
    figure, axis = agg_figure(figsize=(2.2 * (max(xs) - min(xs)) / 2.4 + 4,
                                       0.75 * (max(ys) - min(ys)) + 2.5))
    kinds = {c.name: c.kind for c in model.compartments}
    boxes = {}
    for name, (x, y) in where.items():
        boxes[name] = axis.text(x, y, name.replace("_", " "), ha="center", va="center",
                                fontsize=7, zorder=3,
                                bbox=dict(boxstyle="round,pad=0.4", linewidth=0.8,
                                          facecolor=COLOURS.get(kinds[name], "white"),
                                          edgecolor="black" if kinds[name] != "sink" else "0.5",
                                          linestyle="-" if kinds[name] != "sink" else "--"))
    pairs = {(t.source, t.target) for t in model.transfers}
    for t in model.transfers:
        both_ways = (t.target, t.source) in pairs
        bend = 0.45 if _blocked(where, t.source, t.target) else 0.18 if both_ways else 0.0
        (x0, y0), (x1, y1) = where[t.source], where[t.target]
        arrow = FancyArrowPatch((x0, y0), (x1, y1), patchA=boxes[t.source].get_bbox_patch(),
                                patchB=boxes[t.target].get_bbox_patch(), arrowstyle="-|>",
                                mutation_scale=8, linewidth=0.7,
                                color="tab:red" if t.kind == "michaelis_menten" else "0.25",
                                connectionstyle=f"arc3,rad={bend}",
                                zorder=2)
        axis.add_patch(arrow)
        # the label sits on the arc's midpoint: bend x half the chord, off the chord's normal
        direction = np.array([x1 - x0, y1 - y0])
        normal = np.array([direction[1], -direction[0]])
        mx, my = (x0 + x1) / 2 + bend / 2 * normal[0], (y0 + y1) / 2 + bend / 2 * normal[1]
        axis.text(mx, my, _rate_label(t), fontsize=4.5, ha="center", va="center", zorder=4,
                  color="0.15", bbox=dict(facecolor="white", edgecolor="none", pad=0.3,
                                          alpha=0.8))
    for route in model.routes:
        for compartment in route.targets:
            x, y = where[compartment]
            axis.annotate(route.name, xy=(x, y), xytext=(x - 1.1, y + 0.45), fontsize=7,
                          color="tab:green", fontweight="bold", zorder=4,
                          arrowprops=dict(arrowstyle="-|>", color="tab:green", linewidth=1.2,
                                          patchB=boxes[compartment].get_bbox_patch()))
    axis.set_xlim(min(xs) - 1.6, max(xs) + 1.4)
    axis.set_ylim(min(ys) - 1.8, max(ys) + 0.9)          # room for arcs around boxes
    axis.axis("off")
    axis.set_title(f"{model.name}: {len(model.compartments)} compartments, "
                   f"{len(model.transfers)} transfers (routes in green, saturable in red, "
                   "sinks dashed)", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, Path(path))
