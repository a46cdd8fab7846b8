"""Evidence records turned into observations: which prediction, what value, how uncertain.

Each usable record of an evidence dataset (:func:`exopk.data.load` or :func:`exopk.data.read_csv`)
becomes an :class:`Observation`, or is set aside with the reason (never silently):

* **What is predicted.** ``quantity`` picks the prediction kind (the kinds that list it in their
  ``quantities``, see :data:`exopk.observation.predictions.KINDS`; a record with a sampling
  time takes the timed one, so an ``auc`` with a time is an ``auc_to``) and ``matrix`` the model
  output, by these conventions
  (two proxy readouts of the nasal module are mapped too: the share of an intranasal dose
  reaching blood is the ``transfer_fraction`` of the depot-to-circulation transfers, and a nasal
  mucociliary transit time is compared with the mean residence time of ``nasal_percent_id``):
  circulation matrices (``plasma``, ``serum``, ``blood``, ``circulation``) use the model's
  circulation concentration output (``<matrix>_concentration`` if the model has one, else its
  first concentration output on the circulation compartment) for concentrations and PK
  summaries, and ``<circulation>_percent_id`` for %ID and fraction cleared; an organ uses
  ``<organ>_percent_id`` or ``<organ>_percent_id_per_g``, or their ``_label_`` variants when
  ``signal="label"`` (the default: radio and fluorescent labels outlive the vesicle, so the
  measured signal includes free label). ``outputs`` overrides the conventions per
  ``(matrix, quantity)``. A ``half_life`` whose phase is not stated (EV studies mostly report
  the fast disappearance from blood) is compared with the ``time_to_half`` of the output; a
  ``half_life_beta`` with the terminal ``half_life`` and a ``half_life_alpha`` with the
  distribution phase. (The terminal half-life of a model with several slow modes jumps where a
  mode's weight becomes negligible, which no sampler can cross; the time to half is smooth.)
  An ``mrt_last`` needs the last sampling time in ``time``. A ``fraction_of_uptake`` in
  ``<organ>:kupffer_cells`` or ``<organ>:<...>macrophages`` is the macrophages' share of the
  ``<organ>_percent_id`` (or ``_label_``) content.
* **Design.** A bolus of 100 amount units at time 0 by the record's route (``iv`` or ``in`` ->
  the model's ``iv`` or ``intranasal`` route): for a linear model amounts then read as %ID. A
  saturable model's predictions depend on the dose, so its observations use the study's own
  dose converted to the model's amount unit (records without a convertible dose are skipped,
  with the reason). The record's ``condition`` is kept so a likelihood can set switches
  (macrophage depletion).
* **Amounts of the dosed material.** A value in amounts of what was dosed (ng/mL, ug*min/g,
  particles/mL, in place of the %ID of a %ID-based kind) is predicted as the %ID-based value
  times the study's dose over 100 %ID (``Request.scale``); a dose per body weight is given to
  the model's animal (its species body weight). Records whose dose is missing, a range, or of
  another kind (a molar value after a dose in mg, a dose per m^2) are skipped with the reason.
* **Value and censoring.** ``upper_bound``/``lower_bound`` rows are censored; a
  ``range_low``/``range_high`` pair is one interval-censored observation; a ``point`` row with
  ``ci95_low``/``ci95_high`` rows gets the log-scale standard deviation of that interval.
* **Error.** The reported standard error ``se`` (SEM as printed, SD / sqrt(n), n = 1 when not
  stated) becomes a log-scale sd ``sqrt(log(1 + (se / value)**2))``. A +/- of unstated type is
  read as a standard error by default (the wider reading, so thin evidence cannot over-claim);
  ``ErrorModel(unstated_as="sd")`` reads it as an SD. Values printed without a dispersion get
  log-scale sd 0: their spread comes from the between-study dispersion of the likelihood.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from exopk.dosing import Regimen
from exopk.errors import SimulationError
from exopk.observation.predictions import KINDS, Kind, Request
from exopk.units import UnitError, convert, dose_scale

__all__ = ["ErrorModel", "Observation", "Skipped", "build_observations", "kinds_for", "ROUTES"]

# evidence route -> model route name; ``other`` (route not stated or pooled) maps to none
ROUTES = {"iv": "iv", "in": "intranasal", "ia": "ia", "ip": "ip", "sc": "sc", "icv": "icv"}
CIRCULATION = ("plasma", "serum", "blood", "circulation")
# sub-sites naming the macrophages of an organ (matrix "liver:kupffer_cells")
_MACROPHAGES = re.compile(r"kupffer_cells|[a-z_]*macrophages")


def kinds_for(quantity: str) -> tuple[Kind, ...]:
    """The prediction kinds that explain an evidence ``quantity``."""
    return tuple(kind for kind in KINDS.values() if quantity in kind.quantities)
DESIGN_DOSE = 100.0


@dataclass(frozen=True)
class ErrorModel:
    """How reported dispersions become log-scale standard deviations.

    Attributes
    ----------
    unstated_as : {"sem", "sd"}
        Reading of a +/- printed without saying whether it is an SD or a SEM.

    Examples
    --------
    A mean of 10 with SD 3 in 9 animals has a standard error of 1, so a log-scale sd of
    ``sqrt(log(1 + 0.1**2))``; a +/- of unstated type is read as a SEM unless told otherwise:

    >>> import math
    >>> from exopk.observation import ErrorModel
    >>> round(ErrorModel().sigma_log(10.0, 3.0, "SD", 9), 6), round(math.sqrt(math.log(1.01)), 6)
    (0.099751, 0.099751)
    >>> round(ErrorModel().sigma_log(10.0, 3.0, "unstated", 9), 4)
    0.2936
    >>> round(ErrorModel(unstated_as="sd").sigma_log(10.0, 3.0, "unstated", 9), 4)
    0.0998
    """

    unstated_as: str = "sem"

    def __post_init__(self):
        if self.unstated_as not in ("sem", "sd"):
            raise SimulationError("unstated_as must be 'sem' or 'sd'")

    def sigma_log(self, value, error, error_type, n) -> float:
        """Log-scale standard deviation of a reported mean."""
        if error_type in ("none", "") or not np.isfinite(error) or error <= 0:
            return 0.0
        kind = {"SEM": "sem", "SD": "sd", "unstated": self.unstated_as}[error_type]
        n = n if np.isfinite(n) and n >= 1 else 1.0
        se = error if kind == "sem" else error / math.sqrt(n)
        return math.sqrt(math.log1p((se / value) ** 2))


@dataclass(frozen=True)
class Observation:
    """One published number as a likelihood term.

    Attributes
    ----------
    study : str
    line : int
        Line of the record in its file (for ``interval`` observations, the low row's line).
    request : Request
        What the model predicts for it.
    route : str
        Model route of the design.
    condition : str
        The record's condition (empty when normal).
    value : float
        Observed value (the bound for censored rows; the low end for intervals).
    upper : float
        High end of an interval (NaN otherwise).
    censoring : {"none", "upper", "lower", "interval"}
    sigma_log : float
        Reported log-scale standard deviation (0 when none was reported).
    is_proxy : bool
    source : str
        File the record came from (with ``line``, it locates the record).
    regimen : Regimen, optional
        The study's actual dosing, for data in amount units (concentrations after known doses).
        Default: a bolus of ``DESIGN_DOSE`` by ``route`` at time 0, so amounts read as %ID.

    Examples
    --------
    Built from evidence records by :func:`build_observations` or from event tables by
    :func:`~exopk.observation.event_observations`, or directly:

    >>> from exopk.observation import Observation, Request
    >>> observed = Observation("mine", 2, Request("value", "liver_percent_id", 240.0), "iv", "",
    ...                        value=40.0, upper=float("nan"), censoring="none", sigma_log=0.1)
    >>> observed.design
    Regimen(doses=(Dose(route='iv', amount=100.0, time=0.0, duration=0.0, steady_state_interval=None),))
    """

    study: str
    line: int
    request: Request
    route: str
    condition: str
    value: float
    upper: float
    censoring: str
    sigma_log: float
    is_proxy: bool = False
    source: str = ""
    regimen: Regimen | None = None

    @property
    def design(self) -> Regimen:
        """The regimen the prediction is made for."""
        return self.regimen or Regimen.bolus(self.route, DESIGN_DOSE)


@dataclass(frozen=True)
class Skipped:
    """A usable record that could not become an observation, and why.

    Examples
    --------
    >>> import exopk, exopk.data
    >>> from exopk.observation import build_observations
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> observations, skipped = build_observations(exopk.data.load("ev"), model)
    >>> len(observations), len(skipped)
    (14, 14)
    >>> skipped[1]
    Skipped(study='morishita2015', line=21, reason="model 'm0_one_compartment' has no output for matrix 'liver' and quantity 'percent_id_per_organ'")
    """

    study: str
    line: int
    reason: str


def _text(record, name):
    return str(record[name].values) if name in record else ""


def _output_for(model, matrix, quantity, kind, signal, overrides):
    if (matrix, quantity) in overrides:
        return overrides[(matrix, quantity)]
    names = model.output_names
    circulation = next((c.name for c in model.compartments if c.kind in ("plasma", "blood")), None)
    depots = [c.name for c in model.compartments if c.kind == "depot"
              and any(t.source == c.name and t.target == circulation for t in model.transfers)]
    if kind == "transfer_fraction":
        return f"{'+'.join(depots)}->{circulation}" if depots and circulation else None
    if kind == "fraction_of_uptake":
        organ, _, cells = matrix.partition(":")
        if not _MACROPHAGES.fullmatch(cells):
            return None
        matrix, quantity = organ, "percent_id_per_organ"
    if quantity == "other:nasal_mucociliary_transit_time":
        return "nasal_percent_id" if "nasal_percent_id" in names else None
    if matrix in CIRCULATION:
        if circulation is None:
            return None
        if kind in ("fraction_cleared",) or quantity == "percent_id_per_organ":
            name = f"{circulation}_percent_id"
            return name if name in names else None
        if f"{matrix}_concentration" in names:
            return f"{matrix}_concentration"
        for o in model.outputs:
            if o.kind == "concentration" and o.compartments == (circulation,) \
                    and not o.include_endogenous:
                return o.name
        return None
    suffix = {"percent_id_per_organ": "percent_id", "percent_id_per_g": "percent_id_per_g",
              "auc": "percent_id_per_g", "time_of_peak": "percent_id"}.get(quantity)
    if suffix is None:
        return None
    for name in ((f"{matrix}_label_{suffix}", f"{matrix}_{suffix}") if signal == "label"
                 else (f"{matrix}_{suffix}",)):
        if name in names:
            return name
    return None


def build_observations(records, model, *, error_model: ErrorModel | None = None,
                       signal: str = "label", outputs: dict | None = None):
    """Observations for the usable records of an evidence dataset.

    Parameters
    ----------
    records : xarray.Dataset
        Evidence with a ``record`` dimension, as returned by :func:`exopk.data.load`.
    model : Model
    error_model : ErrorModel, optional
    signal : {"label", "vesicle"}
        Readout for organ values (see the module docstring).
    outputs : dict, optional
        ``(matrix, quantity) -> output name`` overriding the conventions.

    Returns
    -------
    observations : list of Observation
    skipped : list of Skipped
        Usable records that could not be used with this model, each with the reason.

    Examples
    --------
    >>> import exopk, exopk.data
    >>> from exopk.observation import build_observations
    >>> model = exopk.load_model(exopk.model_path("m2_mps"))
    >>> observations, skipped = build_observations(exopk.data.load("ev"), model)
    >>> observations[0].study, observations[0].request
    ('kim2019_review_ref23', Request(kind='auc', output='blood_concentration', ...))
    >>> skipped[0].reason
    "mrt_last needs the last sampling time, tlast (column 'time'), which the record does not give"
    """
    error_model = error_model or ErrorModel()
    overrides = outputs or {}
    observations, skipped = [], []
    rows = [records.isel(record=i) for i in range(records.sizes["record"])]
    usable = [r for r in rows if bool(r["usable"])]
    paired = set()
    for index, r in enumerate(usable):
        line, study = int(r["line"]), _text(r, "study_key")

        def skip(reason):
            skipped.append(Skipped(study, line, reason))

        if line in paired:
            continue
        quantity, statistic = _text(r, "quantity"), _text(r, "statistic")
        if statistic in ("ci95_low", "ci95_high"):
            continue  # folded into the point row they accompany
        kinds = kinds_for(quantity)
        if not kinds:
            skip(f"quantity '{quantity}' has no observation model")
            continue
        route = ROUTES.get(_text(r, "route"))
        if route is None or route not in [x.name for x in model.routes]:
            skip(f"route '{_text(r, 'route')}' is not a route of model '{model.name}'")
            continue
        time = float(r["time_min"])
        kind = next((k for k in kinds if k.timed == np.isfinite(time)), kinds[0])
        unit = _text(r, "unit_canonical")
        scale = 1.0
        if unit not in kind.units:
            scale, reason = _dose_scale(r, unit, kind, model)
            if reason:
                skip(reason)
                continue
        matrix = _text(r, "matrix")
        output = _output_for(model, matrix, quantity, kind.name, signal, overrides)
        if output is None:
            skip(f"model '{model.name}' has no output for matrix '{matrix}' and quantity "
                 f"'{quantity}'")
            continue
        if kind.timed and not np.isfinite(time):
            skip(f"{kind.name} needs {kind.time_is} (column 'time'), which the record does not "
                 "give")
            continue
        reason = kind.unusable and kind.unusable(model, route, output)
        if reason:
            skip(reason)
            continue
        regimen = None
        if not model.is_linear:
            # %ID-based evidence against a dose-dependent model: only dose-normalised outputs
            if next(o for o in model.outputs if o.name == output).kind not in (
                    "percent_id", "percent_id_per_g"):
                skip(f"output '{output}' of saturable model '{model.name}' is in amounts of "
                     f"'{model.amount_unit}', not comparable with a %ID-based value")
                continue
            amount, reason = _study_dose(r, model)
            if reason:
                skip(reason)
                continue
            regimen = Regimen.bolus(route, amount)
        request = Request(kind.name, output, time if kind.timed else None, scale)
        value = float(r["value_canonical"])
        upper, censoring = math.nan, "none"
        sigma = error_model.sigma_log(value, float(r["error_canonical"]), _text(r, "error_type"),
                                      float(r["n"]))
        if statistic == "upper_bound":
            censoring = "upper"
        elif statistic == "lower_bound":
            censoring = "lower"
        elif statistic in ("range_low", "range_high"):
            partner = _partner(usable, index, r, {"range_low": "range_high",
                                                  "range_high": "range_low"}[statistic])
            if partner is None:
                skip("range row without its other end")
                continue
            paired.add(int(partner["line"]))
            ends = sorted([value, float(partner["value_canonical"])])
            value, upper, censoring = ends[0], ends[1], "interval"
        elif statistic == "point":
            low = _partner(usable, index, r, "ci95_low", following_only=True)
            high = _partner(usable, index, r, "ci95_high", following_only=True)
            if low is not None and high is not None:
                sigma = (math.log(float(high["value_canonical"]))
                         - math.log(float(low["value_canonical"]))) / (2 * 1.959963984540054)
        if not value > 0:
            skip(f"value {value} is not positive; log-normal observations need positive values")
            continue
        observations.append(Observation(
            study=study, line=line, request=request, route=route,
            condition=_text(r, "condition"), value=value, upper=upper, censoring=censoring,
            sigma_log=sigma, is_proxy=bool(r["is_proxy"]) if "is_proxy" in r else False,
            source=_text(r, "source_file"), regimen=regimen))
    return observations, skipped


def _study_dose(record, model) -> tuple[float | None, str | None]:
    """The record's dose in the model's amount unit, or why it cannot be had.

    A saturable model's predictions depend on the dose, so its observations are made for the
    study's own dose (``dose`` and ``dose_unit`` as printed, converted with pint), never for
    an assumed one.
    """
    text, unit = _text(record, "dose"), _text(record, "dose_unit")
    try:
        amount = float(text)
    except ValueError:
        return None, (f"saturable model '{model.name}' needs the study's dose as one number; "
                      f"got dose '{text}' {unit}".rstrip())
    try:
        amount = convert(amount, unit, model.amount_unit)
    except UnitError:
        return None, (f"saturable model '{model.name}' needs the dose in a unit convertible to "
                      f"its amount unit '{model.amount_unit}'; got '{text} {unit}'")
    if not amount > 0:
        return None, f"dose '{text} {unit}' is not positive"
    return amount, None


def _dose_scale(record, unit, kind, model) -> tuple[float, str | None]:
    """Factor from the kind's %ID-based prediction to ``unit`` with the study's dose, or why
    there is none.

    A value in amounts of the dosed material (ng/mL after a dose in ug, particles/mL after a
    dose in particles, ug*min/g after a dose in mg) is the %ID-based prediction times the dose
    over 100 %ID (:func:`exopk.units.dose_scale`). A dose per body weight (mg/kg) is given to
    the animal the model simulates, of the model's body weight.
    """
    printed = _text(record, "unit")
    percent = sorted(u for u in kind.units if u.startswith("%ID"))
    if not percent:
        return 1.0, f"unit '{printed}' cannot be compared with the {kind.name} prediction"
    text, dose_unit = _text(record, "dose"), _text(record, "dose_unit")
    try:
        dose = float(text)
    except ValueError:
        return 1.0, (f"unit '{printed}' is an amount of the dosed material: it needs the "
                     f"study's dose as one number, got '{text} {dose_unit}'")
    species = model.quantities.species
    weight = species.body_weight_kg if species is not None else None
    for candidate in percent:
        try:
            factor = dose_scale(unit, candidate, dose, dose_unit, body_weight_kg=weight)
        except UnitError:
            continue
        if not factor > 0:
            return 1.0, f"dose '{text} {dose_unit}' is not positive"
        return factor, None
    return 1.0, (f"unit '{printed}' cannot be compared with the {kind.name} prediction: it is "
                 f"none of {', '.join(percent)} with %ID read as an amount of a dose in "
                 f"'{dose_unit}'")


_IDENTITY = ("study_key", "species", "route", "matrix", "quantity", "label", "condition", "time",
             "unit", "strain", "ev_source", "dose")


def _partner(rows, index, record, statistic, following_only=False):
    """The row that completes a range or carries a confidence interval for ``record``."""
    candidates = rows[index + 1:index + 3] if following_only else rows
    for other in candidates:
        if _text(other, "statistic") != statistic:
            continue
        same = all(_text(other, f) == _text(record, f) for f in _IDENTITY if f in record)
        if same:
            return other
    return None
