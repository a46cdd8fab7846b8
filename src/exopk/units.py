"""Units of exopk's inputs: a :mod:`pint` registry with exopk's definitions, and canonical units.

Unit strings are those of the evidence schema (``%ID/g``, ``%ID*h/mL``, ``mL/min``, ``min^-1``,
``EVs/mL``, ...). Every conversion is done by pint; exopk adds these definitions:

``ID`` (injected dose)
    A dimensionless base unit, so a dose fraction stays a dose fraction: ``%ID`` is
    ``0.01 ID``, and ``%ID/g`` cannot be confused with ``1/g``.
``EV`` (aliases ``EVs``, ``sEV``, ``sEVs``; ``particle`` and ``particles`` are read as ``EV``)
    One vesicle or particle, defined as pint's ``count``. pint's own ``particle`` (a number of
    molecules, convertible to moles) is never used.
``cell``
    A dimensionless base unit, for per-cell rates (``EVs/cell/min``).
``organ``, ``fold``, ``ratio``, ``flag``
    Pure numbers equal to 1 (``%ID/organ`` is ``%ID`` in one whole organ).

Two units fit each other only when pint can convert between them and they are built from the
same kinds of factor, so ``h*ug/g`` (drug mass per tissue mass times time) never stands for a
plain time although pint would reduce both to ``[time]``.

Canonical units per quantity
----------------------------
Times (``half_life``, ``half_life_alpha``, ``half_life_beta``, ``mrt``, ``mrt_last``, ``mrt_inf``,
``time_of_peak``, ``time_detected``) in ``min``; ``elimination_rate_constant`` in ``min^-1``;
``clearance`` in ``mL/min`` (``mL/min/kg``, ``mL/min/m^2`` when normalised to body weight or
surface); ``vss`` and ``volume_of_distribution`` in ``mL`` (``mL/kg``, ``mL/m^2``); ``auc`` in
``%ID*min/mL``, ``%ID*min/g``, ``pM*min``, ``ug*min/mL``, ``ug*min/g`` or ``EVs*min/mL``;
``percent_id_per_g`` in ``%ID/g``; ``percent_id_per_organ`` in ``%ID/organ``. A unit that fits
none of these for its quantity is an error.

``concentration`` (``%ID/mL``, ``%ID/g``, ``pM``, ``ug/mL``, ``ug/g``, ``EVs/mL``),
``secretion_rate`` (``EVs/min``, ``EVs/cell/min``, ``ug/min``), ``fraction_cleared`` and
``fraction_of_uptake`` (``%``) are converted when the unit fits one of these and otherwise kept
as printed (the packaged tables hold concentrations counted without a volume, for instance).
Every other quantity (``fold_range``, ``other:<name>``) is converted when its unit fits one of
the units above other than ``%`` and ``%ID/organ`` (so ``other:time_to_baseline`` in h becomes
min) and kept as printed otherwise.

Examples
--------
>>> from exopk.units import canonical_unit, convert, to_minutes
>>> to_minutes(2, "h")
120.0
>>> canonical_unit("auc", "%ID*h/mL")
'%ID*min/mL'
>>> round(convert(1.1, "%ID*h/mL", "%ID*min/mL"), 12)
66.0
"""

from __future__ import annotations

import re
from functools import lru_cache

import pint
import pint.util

from exopk.errors import ExopkError

__all__ = ["UnitError", "display_unit", "registry", "parse_unit", "units_fit", "convert",
           "to_minutes", "canonical_unit", "dose_scale", "CANONICAL_UNITS"]

_DEFINITIONS = (
    "ID = [] = _ = injected_dose",
    "percent_ID = 0.01 * ID",
    "EV = count = _ = EVs = sEV = sEVs",
    "cell = [] = _ = cells",
    "organ = 1 = _ = organs",
    "fold = 1",
    "ratio = 1",
    "flag = 1",
)

_NAME = r"(?:[A-Za-z_%\u00b5\u03bc][A-Za-z0-9_\u00b5\u03bc]*)"
_FACTOR = rf"{_NAME}(?:\^-?[0-9]{{1,2}})?"
_UNIT = re.compile(rf"(?:1|{_FACTOR})(?:\s*[*/]\s*{_FACTOR})*")
_MAX_LENGTH = 64
_REWRITES = ((re.compile(r"%ID\b"), "percent_ID"), (re.compile(r"%"), "percent"),
             (re.compile(r"\bparticles?\b"), "EV"))

_TIMES = ("half_life", "half_life_alpha", "half_life_beta", "mrt", "mrt_last", "mrt_inf",
          "time_of_peak", "time_detected")
_VOLUMES = ("mL", "mL/kg", "mL/m^2")
CANONICAL_UNITS: dict[str, tuple[str, ...]] = {
    **{quantity: ("min",) for quantity in _TIMES},
    "elimination_rate_constant": ("min^-1",),
    "clearance": ("mL/min", "mL/min/kg", "mL/min/m^2"),
    "vss": _VOLUMES,
    "volume_of_distribution": _VOLUMES,
    "auc": ("%ID*min/mL", "%ID*min/g", "pM*min", "ug*min/mL", "ug*min/g", "EVs*min/mL"),
    "percent_id_per_g": ("%ID/g",),
    "percent_id_per_organ": ("%ID/organ",),
}
"""Quantities whose unit must fit one of these (the first that fits is used)."""

_CONVERTED_WHEN_FITTING: dict[str, tuple[str, ...]] = {
    "concentration": ("%ID/mL", "%ID/g", "pM", "ug/mL", "ug/g", "EVs/mL"),
    "secretion_rate": ("EVs/min", "EVs/cell/min", "ug/min"),
    "fraction_cleared": ("%",),
    "fraction_of_uptake": ("%",),
}

_GENERIC = tuple(dict.fromkeys(
    unit for units in (*CANONICAL_UNITS.values(), *_CONVERTED_WHEN_FITTING.values())
    for unit in units if unit not in ("%", "%ID/organ")))


class UnitError(ExopkError, ValueError):
    """A unit string is not understood, or does not fit the quantity it is given for.

    It is a :class:`ValueError` too, so code that catches bad values catches it.

    Examples
    --------
    >>> from exopk.units import UnitError, to_minutes
    >>> try:
    ...     to_minutes(1.0, "mL")
    ... except UnitError as error:
    ...     print(error)
    'mL' is not a unit of time
    """


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The :class:`pint.UnitRegistry` with exopk's definitions (built once).

    Examples
    --------
    >>> from exopk.units import registry
    >>> ureg = registry()
    >>> ureg is registry()
    True
    >>> print(ureg.Quantity(5, "percent_ID").to("ID"))
    0.05 ID
    """
    ureg = pint.UnitRegistry(on_redefinition="raise", cache_folder=None)
    for definition in _DEFINITIONS:
        ureg.define(definition)
    return ureg


@lru_cache(maxsize=1024)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit string of the evidence schema.

    Parameters
    ----------
    text : str
        Factors joined by ``*`` and ``/``, each a unit name with an optional integer power
        (``min^-1``, ``L/h/m^2``, ``%ID*h/mL``, ``1/min``).

    Returns
    -------
    pint.Unit

    Raises
    ------
    UnitError
        The string is not of that form or names a unit pint does not know.

    Examples
    --------
    >>> from exopk.units import parse_unit
    >>> print(parse_unit("min^-1"))
    1 / minute
    >>> parse_unit("%ID*h/mL") == parse_unit("percent_ID * hour / milliliter")
    True
    """
    if len(text) > _MAX_LENGTH or _UNIT.fullmatch(text) is None:
        raise UnitError(f"unknown unit {text!r}: write unit names joined by '*' and '/', "
                        "with optional integer powers, e.g. 'mL/min', 'min^-1', '%ID*h/mL'")
    rewritten = text
    for pattern, replacement in _REWRITES:
        rewritten = pattern.sub(replacement, rewritten)
    try:
        return registry().parse_units(rewritten)
    except Exception as exc:
        raise UnitError(f"unknown unit {text!r} ({exc})") from None


@lru_cache(maxsize=1024)
def _kinds(unit: pint.Unit) -> tuple[str, ...]:
    ureg = registry()
    kinds = []
    for name, power in pint.util.to_units_container(unit, ureg).items():
        root = ureg.get_root_units(name)[1] ** power
        if root != ureg.dimensionless:
            kinds.append(str(root))
    return tuple(sorted(kinds))


def units_fit(unit: str, other: str) -> bool:
    """Whether values in ``unit`` can be expressed in ``other``.

    Both must be convertible by pint and built from the same kinds of factor (mass, time,
    volume, dose, vesicle count, cell), each factor kept apart: ``h*ug/g`` fits ``ug*min/g``
    but not ``min``.

    Examples
    --------
    >>> from exopk.units import units_fit
    >>> units_fit("h*ug/g", "ug*min/g"), units_fit("h*ug/g", "min")
    (True, False)
    """
    a, b = parse_unit(unit), parse_unit(other)
    return a.dimensionality == b.dimensionality and _kinds(a) == _kinds(b)


def convert(value: float, unit: str, to: str) -> float:
    """Convert ``value`` from ``unit`` to ``to`` with pint.

    Raises
    ------
    UnitError
        Either unit is unknown or the two do not fit each other.

    Examples
    --------
    >>> from exopk.units import convert
    >>> convert(1.5, "h", "min")
    90.0
    >>> round(convert(2.0, "L/h", "mL/min"), 6)
    33.333333
    """
    if not units_fit(unit, to):
        raise UnitError(f"cannot convert {unit!r} to {to!r}")
    return float(registry().Quantity(float(value), parse_unit(unit)).to(parse_unit(to)).magnitude)


def _root(unit: pint.Unit) -> pint.Unit:
    """The product of the root units of ``unit``'s factors (``pM*mL`` -> ``mole``)."""
    ureg = registry()
    root = ureg.dimensionless
    for name, power in pint.util.to_units_container(unit, ureg).items():
        root = root * ureg.get_root_units(name)[1] ** power
    return root


def dose_scale(unit: str, percent_unit: str, dose: float, dose_unit: str, *,
               body_weight_kg: float | None = None) -> float:
    """Factor from a value in ``percent_unit`` (a ``%ID`` unit) to ``unit`` for a given dose.

    A value of ``y`` %ID/mL after a dose ``D`` of 5 ug is ``y * D / 100`` of ug per mL: the
    returned factor ``s`` gives ``value [unit] = s * value [percent_unit]``. ``unit`` must be
    ``percent_unit`` with ``%ID`` replaced by an amount of the dose's kind (mass with a mass dose,
    vesicles or particles with a dose counted in them, moles with a molar dose). A dose per body
    weight (``mg/kg``) needs ``body_weight_kg``.

    Examples
    --------
    >>> from exopk.units import dose_scale
    >>> round(dose_scale("ng/mL", "%ID/mL", 5.0, "ug"), 9)   # 1 %ID/mL of 5 ug is 50 ng/mL
    50.0
    >>> dose_scale("EVs*min/mL", "%ID*min/mL", 2e9, "particles")
    20000000.0
    >>> round(dose_scale("ug/g", "%ID/g", 2.0, "mg/kg", body_weight_kg=0.025), 9)
    0.5

    Raises
    ------
    UnitError
        A unit is unknown, ``percent_unit`` is not a ``%ID`` unit, or the amount in ``unit`` is
        not of the dose's kind (``pM`` after a dose in mg, a dose per m^2 of body surface).
    """
    ureg = registry()
    target, value_unit, given = parse_unit(percent_unit), parse_unit(unit), parse_unit(dose_unit)
    per = target / ureg.percent_ID                          # what the amount is per: 1/mL, min/g
    if pint.util.to_units_container(_root(target), ureg).get("ID") != 1:
        raise UnitError(f"{percent_unit!r} is not a %ID unit")
    amount = value_unit / per
    total = ureg.Quantity(float(dose), given)
    if body_weight_kg is not None and _root(given) != _root(amount):
        total = total * ureg.Quantity(float(body_weight_kg), "kg")
    if _root(total.units) != _root(amount) or \
            total.units.dimensionality != amount.dimensionality:
        raise UnitError(f"values in {unit!r} are not amounts of a dose in {dose_unit!r} as "
                        f"{percent_unit!r} is of the dose")
    return float((total * ureg.Quantity(1.0, target) / ureg.ID).to(value_unit).magnitude)


def to_minutes(value: float, unit: str) -> float:
    """Convert a time ``value`` in ``unit`` (``min``, ``h``, ``day``, ``s``, ...) to minutes.

    Raises
    ------
    UnitError
        ``unit`` is unknown or not a unit of time.

    Examples
    --------
    >>> from exopk.units import to_minutes
    >>> to_minutes(2, "h"), to_minutes(1, "day"), to_minutes(30, "s")
    (120.0, 1440.0, 0.5)
    """
    if not units_fit(unit, "min"):
        raise UnitError(f"{unit!r} is not a unit of time")
    return convert(value, unit, "min")


def canonical_unit(quantity: str, unit: str) -> str:
    """The canonical unit for a value of ``quantity`` printed in ``unit``.

    Parameters
    ----------
    quantity : str
        A quantity of the evidence schema (``half_life``, ``auc``, ``other:<name>``, ...).
    unit : str
        The unit as printed.

    Returns
    -------
    str
        The canonical unit (see the module notes), or ``unit`` itself when the quantity has
        no canonical unit that ``unit`` fits.

    Raises
    ------
    UnitError
        ``unit`` is unknown, or the quantity needs a canonical unit and ``unit`` fits none.

    Examples
    --------
    >>> from exopk.units import canonical_unit
    >>> canonical_unit("half_life", "h"), canonical_unit("clearance", "L/h/kg")
    ('min', 'mL/min/kg')
    >>> canonical_unit("concentration", "EVs")      # no volume: kept as printed
    'EVs'
    """
    parse_unit(unit)
    if quantity in CANONICAL_UNITS:
        candidates = CANONICAL_UNITS[quantity]
    else:
        candidates = _CONVERTED_WHEN_FITTING.get(quantity, _GENERIC)
    for candidate in candidates:
        if units_fit(unit, candidate):
            return candidate
    if quantity in CANONICAL_UNITS:
        raise UnitError(f"unit {unit!r} does not fit quantity {quantity!r}; expected a unit "
                        f"convertible to {' or '.join(repr(c) for c in candidates)}")
    return unit


def display_unit(unit: str) -> str:
    """A unit as printed tables name it.

    A model's relative amount unit ``dose`` (the unit of ``exopk simulate --dose``: a dose of 100
    puts amounts on the %ID scale) reads ``dose units``, so that ``dose/mL`` is not mistaken for
    a number of doses; other units print as written.

    Examples
    --------
    >>> display_unit("dose/mL"), display_unit("%ID"), display_unit("")
    ('dose units/mL', '%ID', '-')
    """
    if not unit:
        return "-"
    return re.sub(r"\bdose\b", "dose units", unit)
