"""The observations of a NONMEM-style event table: each subject's DV rows as a time course.

Every observation record (``EVID 0``, ``MDV 0``) becomes an :class:`~exopk.observation.Observation`
of kind ``value``: the model output at the record's time, under the regimen that subject received
(:func:`exopk.data.regimens`), log-normal around the prediction with the given log-scale
standard deviation. A :class:`~exopk.observation.Likelihood` groups observations by regimen, so
the subjects' time courses enter a fit as they are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from exopk.data.events import regimens
from exopk.data.problems import ProblemCollector
from exopk.units import to_minutes
from exopk.dosing import Regimen
from exopk.observation.predictions import Request
from exopk.observation.records import Observation

__all__ = ["event_observations"]


def event_observations(events: xr.Dataset, model, routes: Mapping, *, output: str | None = None,
                       output_column: str | None = None, route_column: str | None = None,
                       sigma_log: float = 0.0, positive: bool = True,
                       censored_column: str | None = None, amount_factor: float = 1.0,
                       value_factor: float = 1.0) -> list[Observation]:
    """Observations of the DV rows of an event table, each under its subject's regimen.

    Parameters
    ----------
    events : xarray.Dataset
        From :func:`exopk.data.read_events`.
    model : Model
    routes : mapping
        ``CMT`` (or value of ``route_column``) of a dose -> route name of ``model``.
    output : str, optional
        The model output every DV measures.
    output_column : str, optional
        A column naming the output of each DV row instead (lowercase, as
        :func:`~exopk.data.read_events` keeps extra columns).
    route_column : str, optional
        See :func:`exopk.data.regimens`.
    sigma_log : float
        Log-scale standard deviation of each DV (0: the likelihood's dispersion alone).
    positive : bool
        Refuse DVs that are not positive (for log-normal errors). With False, zeros and negative
        values are kept for additive or combined residual errors
        (:mod:`exopk.observation.error_models`).
    censored_column : str, optional
        A column (lowercase) that is 1 where the DV is below the limit of quantification and
        is that limit (censored, M3), 0 elsewhere.
    amount_factor, value_factor : float
        Multiply every AMT (and RATE) and every DV, to convert them to the model's units.

    Returns
    -------
    list of Observation
        In the order of the table; ``study`` is ``"<file stem>:<ID>"``, ``line`` the row's line.

    Raises
    ------
    exopk.data.DataValidationError
        Naming the line and column: a route not of the model, a DV row whose subject received
        no dose, an output not of the model, a DV that is not positive.

    Examples
    --------
    The shipped phenobarbital table: 155 concentrations (mg/L, converted to the model's mg/mL),
    each under the doses its infant received:

    >>> import exopk
    >>> from exopk.data import read_events
    >>> from exopk.observation import event_observations
    >>> model = exopk.load_model(exopk.model_path("pheno_one_compartment"))
    >>> events = read_events("fits/pheno.csv", time_unit="h")
    >>> observations = event_observations(events, model, {1: "iv"}, output="concentration",
    ...                                   value_factor=1e-3)
    >>> first = observations[0]
    >>> len(observations), first.study, first.line, first.request.time, first.value
    (155, 'pheno:1', 3, 2.0, 0.0173)
    >>> len(first.design.doses), first.design.doses[1].time
    (10, 12.5)
    """
    if (output is None) == (output_column is None):
        raise ValueError("give exactly one of output and output_column")
    file = events.attrs["source_file"]
    problems = ProblemCollector(file)
    known = [r.name for r in model.routes]
    for key, route in routes.items():
        if route not in known:
            problems.add(f"route {route!r} (given for {key!r}) is not a route of model "
                         f"'{model.name}'; known: {', '.join(known)}",
                         column=route_column or "CMT")
    problems.raise_if_any()
    given = regimens(events, routes, route_column=route_column, time_unit=model.time_unit)
    if amount_factor != 1.0:
        given = {subject: Regimen(tuple(dataclasses.replace(d, amount=d.amount * amount_factor)
                                        for d in regimen.doses))
                 for subject, regimen in given.items()}
    per_minute = 1.0 / to_minutes(1.0, model.time_unit)
    rows = np.flatnonzero((events["evid"].values == 0) & (events["mdv"].values == 0))
    study = Path(file).stem
    observations = []
    for i in rows:
        line, subject = int(events["line"].values[i]), float(events["id"].values[i])
        name = output if output is not None else str(events[output_column].values[i])
        value = float(events["dv"].values[i]) * value_factor
        censored = censored_column is not None and float(events[censored_column].values[i]) != 0
        if subject not in given:
            problems.add(f"ID {subject:g} has observations but received no dose", row=line,
                         column="ID")
        elif name not in model.output_names:
            problems.add(f"model '{model.name}' has no output {name!r}; known: "
                         f"{', '.join(model.output_names)}", row=line,
                         column=output_column or "DV")
        elif positive and not value > 0:
            problems.add(f"DV {value:g} is not positive; log-normal observations need positive "
                         "values (an additive or combined error model takes zeros)", row=line,
                         column="DV")
        else:
            regimen = given[subject]
            observations.append(Observation(
                study=f"{study}:{subject:g}", line=line,
                request=Request("value", name, float(events["time_min"].values[i]) * per_minute),
                route=regimen.doses[0].route, condition="", value=value, upper=math.nan,
                censoring="upper" if censored else "none", sigma_log=sigma_log, source=file,
                regimen=regimen))
    problems.raise_if_any()
    return observations
