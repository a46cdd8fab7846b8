"""Read model files (TOML) into :class:`~exopk.model.spec.Model` objects.

Layout of a model file (every key, with its unit, is documented in ``docs/model_file.md``)::

    [model]        name, description, time_unit, amount_unit, extends
    [species]      preset, body_weight_kg, note
    [compartments.NAME]   kind, volume, organ, label_of, description
    [[transfers]]  from, to, and one of rate / clearance / vmax + km; description
    [routes.NAME]  compartment = "fraction expression", ...; description
    [outputs.NAME] kind, compartments, signal, residual_blood, volume, mass_g,
                   include_endogenous, description
    [endogenous]   compartment, rate (constant secretion, amount per time unit)
    [plausibility.NAME]  output, route, time, upper and/or lower, quantile (default 0.5),
                   dose (default 1), source, description: a bound on the posterior predictive
                   of an output after a bolus, checked by every fit
    [parameters.NAME]  value, unit, bounds = [lower, upper], prior = {distribution, ...}
                       (log-normal when no distribution is named), justification, source,
                       description, fixed

``extends = "other.toml"`` (a path relative to the file) starts from another model file: its
tables are merged key by key (this file wins), its transfers come first, and ``[model]`` is this
file's own.

Every problem is reported as a :class:`~exopk.errors.ModelFileError` naming the file and the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from exopk.units import UnitError, units_fit
from exopk.errors import ModelFileError
from exopk.io import read_toml
from exopk.model.expressions import ExpressionSet, parse_expression
from exopk.model.priors import Prior
from exopk.model.spec import (Compartment, EndogenousInput, Model, Output, Parameter,
                              PlausibilityBound, Route, SpeciesSpec, Transfer)

__all__ = ["load_model", "parse_model"]

_TOP = {"model", "species", "compartments", "transfers", "routes", "outputs", "parameters",
        "endogenous", "plausibility"}
_PLAUSIBILITY = {"output", "route", "time", "upper", "lower", "quantile", "dose", "source",
                 "description"}
_ENDOGENOUS = {"compartment", "rate", "description"}
_MODEL = {"name", "description", "time_unit", "amount_unit", "extends"}
_SPECIES = {"preset", "body_weight_kg", "note"}
_COMPARTMENT = {"kind", "volume", "organ", "label_of", "description"}
_TRANSFER = {"from", "to", "rate", "clearance", "vmax", "km", "description"}
_OUTPUT = {"kind", "compartments", "signal", "residual_blood", "volume", "mass_g",
           "include_endogenous", "description"}
_PARAMETER = {"value", "unit", "bounds", "prior", "justification", "source", "description", "fixed"}


class _Reader:
    def __init__(self, file: str | None):
        self.file = file

    def error(self, message, key):
        return ModelFileError(message, file=self.file, key=key)

    def table(self, data, key, allowed, required=()):
        if not isinstance(data, dict):
            raise self.error(f"expected a table, got {type(data).__name__}", key)
        unknown = set(data) - set(allowed)
        if unknown:
            raise self.error(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                             f"{', '.join(sorted(allowed))}", key)
        for name in required:
            if name not in data:
                raise self.error(f"missing required key '{name}'", f"{key}.{name}" if key else name)
        return data

    def text(self, data, name, key, default=None):
        value = data.get(name, default)
        if value is not None and not isinstance(value, str):
            raise self.error(f"expected a string, got {value!r}", f"{key}.{name}")
        return value

    def expression(self, data, name, key):
        value = data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"expected an expression (string) or a number, got {value!r}",
                             f"{key}.{name}")
        return str(value)

    def flag(self, data, name, key):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {value!r}", f"{key}.{name}")
        return value

    def number(self, value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.error(f"expected a number, got {value!r}", key)
        return float(value)


def parse_model(data: dict, *, file: str | None = None) -> Model:
    """Build a :class:`Model` from the parsed TOML tables of a model file.

    ``file`` names the file in error messages. :func:`load_model` reads a file (and its
    ``extends`` chain) and calls this.

    Examples
    --------
    >>> import tomllib
    >>> from exopk.model import parse_model
    >>> text = '''
    ... [model]
    ... name = "bolus"
    ... [compartments.plasma]
    ... kind = "plasma"
    ... volume = "V"
    ... [compartments.eliminated]
    ... kind = "sink"
    ... [[transfers]]
    ... from = "plasma"
    ... to = "eliminated"
    ... rate = "k"
    ... [routes.iv]
    ... plasma = "1"
    ... [outputs.plasma_percent_id]
    ... kind = "percent_id"
    ... compartments = ["plasma"]
    ... [parameters.k]
    ... value = 0.1
    ... unit = "1/min"
    ... prior = { distribution = "lognormal", median = 0.1, sigma = 1 }
    ... [parameters.V]
    ... value = 1.0
    ... unit = "mL"
    ... fixed = true
    ... '''
    >>> model = parse_model(tomllib.loads(text), file="bolus.toml")
    >>> model.free_parameter_names, model.outputs[0].kind
    (('k',), 'percent_id')

    A wrong key is named with its file:

    >>> parse_model({**tomllib.loads(text), "model": {"name": "bolus", "time_units": "h"}},
    ...             file="bolus.toml")
    Traceback (most recent call last):
    ...
    exopk.errors.ModelFileError: bolus.toml, key 'model': unknown key(s) time_units; allowed: ...
    """
    r = _Reader(file)
    r.table(data, "", _TOP, required=("model", "compartments", "routes", "outputs"))
    meta = r.table(data["model"], "model", _MODEL, required=("name",))

    species = None
    if "species" in data:
        s = r.table(data["species"], "species", _SPECIES, required=("preset",))
        weight = s.get("body_weight_kg")
        species = SpeciesSpec(preset=r.text(s, "preset", "species"),
                              body_weight_kg=None if weight is None else
                              r.number(weight, "species.body_weight_kg"),
                              note=r.text(s, "note", "species", ""))

    compartments = []
    for name, c in r.table(data["compartments"], "compartments", data["compartments"]).items():
        key = f"compartments.{name}"
        r.table(c, key, _COMPARTMENT)
        compartments.append(Compartment(
            name=name, kind=r.text(c, "kind", key, "tissue"), volume=r.expression(c, "volume", key),
            organ=r.text(c, "organ", key), label_of=r.text(c, "label_of", key),
            description=r.text(c, "description", key, "")))

    transfers = []
    raw_transfers = data.get("transfers", [])
    if not isinstance(raw_transfers, list):
        raise r.error("expected an array of tables ([[transfers]])", "transfers")
    for i, t in enumerate(raw_transfers):
        key = f"transfers[{i}]"
        r.table(t, key, _TRANSFER, required=("from", "to"))
        transfers.append(Transfer(
            source=r.text(t, "from", key), target=r.text(t, "to", key),
            rate=r.expression(t, "rate", key), clearance=r.expression(t, "clearance", key),
            vmax=r.expression(t, "vmax", key), km=r.expression(t, "km", key),
            description=r.text(t, "description", key, "")))

    routes = []
    for name, targets in r.table(data["routes"], "routes", data["routes"]).items():
        key = f"routes.{name}"
        if not isinstance(targets, dict):
            raise r.error("expected a table of compartment = fraction", key)
        description = r.text(targets, "description", key, "")
        fractions = {c: r.expression(targets, c, key) for c in targets if c != "description"}
        routes.append(Route(name=name, targets=fractions, description=description))

    outputs = []
    for name, o in r.table(data["outputs"], "outputs", data["outputs"]).items():
        key = f"outputs.{name}"
        r.table(o, key, _OUTPUT, required=("kind", "compartments"))
        members = o["compartments"]
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise r.error("expected a list of compartment names", f"{key}.compartments")
        residual = r.flag(o, "residual_blood", key)
        outputs.append(Output(
            name=name, kind=r.text(o, "kind", key), compartments=tuple(members),
            signal=r.text(o, "signal", key, "vesicle"), residual_blood=residual,
            volume=r.expression(o, "volume", key), mass_g=r.expression(o, "mass_g", key),
            include_endogenous=r.flag(o, "include_endogenous", key),
            description=r.text(o, "description", key, "")))

    endogenous = None
    if "endogenous" in data:
        e = r.table(data["endogenous"], "endogenous", _ENDOGENOUS, required=("compartment", "rate"))
        endogenous = EndogenousInput(compartment=r.text(e, "compartment", "endogenous"),
                                     rate=r.expression(e, "rate", "endogenous"),
                                     description=r.text(e, "description", "endogenous", ""))

    parameters = []
    for name, p in r.table(data.get("parameters", {}), "parameters", data.get("parameters", {})).items():
        parameters.append(_parameter(r, name, p))
    bounds = data.get("plausibility", {})
    plausibility = tuple(_plausibility(r, name, b)
                         for name, b in r.table(bounds, "plausibility", bounds).items())

    try:
        return Model(name=r.text(meta, "name", "model"), description=r.text(meta, "description", "model", ""),
                     time_unit=_time_unit(r, meta),
                     amount_unit=r.text(meta, "amount_unit", "model", "dose"),
                     compartments=tuple(compartments), transfers=tuple(transfers),
                     routes=tuple(routes), outputs=tuple(outputs), parameters=tuple(parameters),
                     species=species, endogenous=endogenous, plausibility=plausibility,
                     source_file=file)
    except ModelFileError as exc:
        if exc.file is None and file is not None:
            raise ModelFileError(exc.reason, file=file, key=exc.key) from None
        raise


def _time_unit(r: _Reader, meta: dict) -> str:
    unit = r.text(meta, "time_unit", "model", "min")
    try:
        if units_fit(unit, "min"):
            return unit
    except UnitError:
        pass
    raise r.error(f"'{unit}' is not a unit of time (for example min, h, day)", "model.time_unit")


def _plausibility(r: _Reader, name: str, b) -> PlausibilityBound:
    key = f"plausibility.{name}"
    r.table(b, key, _PLAUSIBILITY, required=("output", "route", "time", "source"))
    numbers = {attr: r.number(b[attr], f"{key}.{attr}")
               for attr in ("time", "upper", "lower", "quantile", "dose") if attr in b}
    return PlausibilityBound(name=name, output=r.text(b, "output", key),
                             route=r.text(b, "route", key), source=r.text(b, "source", key),
                             description=r.text(b, "description", key, ""), **numbers)


def _parameter(r: _Reader, name: str, p) -> Parameter:
    key = f"parameters.{name}"
    r.table(p, key, _PARAMETER, required=("value",))
    bounds = p.get("bounds", [0.0, math.inf])
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise r.error("bounds must be [lower, upper]", f"{key}.bounds")
    lower = r.number(bounds[0], f"{key}.bounds")
    upper = math.inf if bounds[1] == "inf" else r.number(bounds[1], f"{key}.bounds")
    if not lower < upper:
        raise r.error(f"lower bound {lower} is not below upper bound {upper}", f"{key}.bounds")
    fixed = r.flag(p, "fixed", key)
    prior = None
    if "prior" in p:
        spec = p["prior"]
        if not isinstance(spec, dict):
            raise r.error("prior must be a table such as { median = 0.1, sigma = 1.0 }",
                          f"{key}.prior")
        arguments = {k: v for k, v in spec.items() if k != "distribution"}
        try:
            prior = Prior(distribution=spec.get("distribution", "lognormal"), arguments=arguments,
                          justification=r.text(p, "justification", key, ""),
                          source=r.text(p, "source", key, ""))
        except ModelFileError as exc:
            raise r.error(str(exc), f"{key}.prior") from None
    try:
        return Parameter(name=name, value=r.number(p["value"], f"{key}.value"),
                         unit=r.text(p, "unit", key, ""), lower=lower, upper=upper, prior=prior,
                         description=r.text(p, "description", key, ""), fixed=fixed)
    except ModelFileError as exc:
        raise ModelFileError(exc.reason, file=r.file, key=exc.key) from None


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """Parsed tables of a model file, with ``extends`` resolved."""
    if path.resolve() in chain:
        raise ModelFileError("model files extend each other in a cycle", file=str(path),
                             key="model.extends")
    _, data = read_toml(path, what="model file")
    base_name = data.get("model", {}).get("extends") if isinstance(data.get("model"), dict) else None
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise ModelFileError("extends must be a file name", file=str(path), key="model.extends")
    base_path = path.parent / base_name
    if not base_path.is_file():
        raise ModelFileError(f"extended model file '{base_name}' not found next to this file",
                             file=str(path), key="model.extends")
    base = _read_toml(base_path, chain + (path.resolve(),))
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in data.items():
        if key == "model":
            merged[key] = {k: v for k, v in value.items() if k != "extends"}
        elif key == "transfers":
            if not isinstance(value, list) or not isinstance(base.get("transfers", []), list):
                raise ModelFileError("expected an array of tables ([[transfers]])",
                                     file=str(path), key="transfers")
            merged[key] = list(base.get("transfers", [])) + value
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def load_model(path: str | Path) -> Model:
    """Read a model file.

    Parameters
    ----------
    path : str or Path
        A ``.toml`` model file.

    Returns
    -------
    Model

    Raises
    ------
    ModelFileError
        If the file is missing, is not valid TOML, or is not a valid model; the message names
        the file and the key.

    Examples
    --------
    >>> import exopk
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> model.parameter_names
    ('CL', 'V_plasma', 'secretion_rate')
    >>> model.parameter("CL").unit
    'mL/min'
    """
    path = Path(path)
    model = parse_model(_read_toml(path), file=str(path))
    _check_scales(model, constant_only=True)
    try:
        quantities = model.quantities  # resolve symbols now, so that errors point at the file
    except ModelFileError as exc:
        if exc.file is None:
            raise ModelFileError(exc.reason, file=str(path), key=exc.key) from None
        raise
    _check_scales(model, quantities=quantities)
    return model


def _check_scales(model: Model, *, quantities=None, constant_only: bool = False) -> None:
    """Volumes and organ masses must be positive: literal ones always, the others at the
    nominal parameter values.

    Parameters
    ----------
    model : Model
    quantities : ModelQuantities, optional
        Gives the physiology constants (the parameter order and nominal values are the model's).
    constant_only : bool
        Check only the expressions that read no symbol (before the model is compiled, so that
        a literal zero is reported as a volume, not as a division inside a transfer).
    """
    scales = [(f"compartments.{c.name}.volume", c.volume) for c in model.compartments]
    scales += [(f"outputs.{o.name}.{attr}", getattr(o, attr)) for o in model.outputs
               for attr in ("volume", "mass_g")]
    for key, text in scales:
        if text is None:
            continue
        expression = parse_expression(text, where=key)
        if constant_only and expression.symbols:
            continue
        names = model.parameter_names if quantities is not None else ()
        constants = quantities.constants if quantities is not None else {}
        if expression.symbols - set(names) - constants.keys():
            continue  # read by no expression of the model, so never evaluated
        point = (np.array([[p.value for p in model.parameters]], dtype=float)
                 if quantities is not None else np.zeros((1, 0)))
        try:
            value = ExpressionSet([expression], names, constants)(point, derivatives=False)[0, 0]
        except ModelFileError as exc:
            raise ModelFileError(exc.reason, file=model.source_file, key=key) from None
        if not (np.isfinite(value) and value > 0):
            at = " at the nominal parameter values" if expression.symbols else ""
            raise ModelFileError(f"must be positive; '{text}' is {value:g}{at}",
                                 file=model.source_file, key=key)
