"""The decision figures of a fit, for the docs: routes, optimisation landscape, experiment ranking,
and the claim-check page.

They are made for fits of a linear model with an ``iv`` and an ``intranasal`` route and
``brain_percent_id`` and ``plasma_percent_id`` outputs (:func:`has_decisions`), with the same
defaults as the commands ``compare-routes``, ``optimize``, ``design`` and ``report``.
"""

from __future__ import annotations

from pathlib import Path

from exopk.metrics.optimize import Bounds, landscape_around, optimize_regimen
from exopk.metrics.plots import landscape_figure
from exopk.metrics.report import report_figure_paths, write_report

__all__ = ["ROUTES", "has_decisions", "decision_figures"]

ROUTES = ("iv", "intranasal")
TARGET, BLOOD = "brain_percent_id", "plasma_percent_id"
OFF_TARGET = ("liver_percent_id", "spleen_percent_id", "lung_percent_id")
DOSE = 100.0
HORIZON_MIN = 1440.0
OPTIMIZE_HORIZON_MIN = 4320.0
DESIGN_TIMES_MIN = (60.0, 240.0, 1440.0)
BOUNDS = Bounds(dose=(1.0, 100.0), interval=(60.0, 1440.0), max_count=3, max_total_dose=100.0)


def has_decisions(model) -> bool:
    """Whether the model supports the decision figures (see the module docstring)."""
    names = set(model.output_names)
    return (model.is_linear and model.time_unit == "min"
            and set(ROUTES) <= {r.name for r in model.routes}
            and {TARGET, BLOOD, *OFF_TARGET} <= names)


def decision_figures(draws, figures: Path, docs: Path, *, seed: int = 0,
                     replicates: int = 100) -> list[Path]:
    """Write the decision figures of ``draws`` into ``figures`` and its report into ``docs``.

    The report's figures (routes, experiment ranking, prior against posterior) are the docs'
    figures: each is drawn once.

    Returns
    -------
    list of Path
        The files written.
    """
    model, name = draws.model, draws.name
    figures = Path(figures)
    options = dict(routes=ROUTES, horizon=OPTIMIZE_HORIZON_MIN, target=TARGET)
    best = optimize_regimen(model, draws.posterior, bounds=BOUNDS, starts=2, seed=seed,
                            **options)
    grid = landscape_around(model, draws.posterior, best, BOUNDS, **options)
    landscape = landscape_figure(
        grid, best, ROUTES, amount_unit=model.amount_unit, time_unit=model.time_unit,
        title=f"{name}: expected {TARGET} exposure over [0, {OPTIMIZE_HORIZON_MIN:g}] "
              f"{model.time_unit}, posterior draws", path=figures / f"{name}_optimize.png")
    page = write_report(draws, Path(docs) / f"report_{name}.html", routes=ROUTES, dose=DOSE,
                        horizon=HORIZON_MIN, target=TARGET, blood=BLOOD, off_target=OFF_TARGET,
                        design_times=DESIGN_TIMES_MIN, replicates=replicates, seed=seed,
                        figures_folder=figures)
    kept = report_figure_paths(figures, name)
    return [kept["routes"], landscape, kept["design"], page, kept["prior_vs_posterior"]]
