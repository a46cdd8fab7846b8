"""Species physiology presets: organ masses, blood and plasma volumes, flows, residual blood.

Values come from ``physiology.csv`` in this folder, a table in which every row carries its source
(citation, tier, where it was retrieved). Several sources disagree; ``presets.toml`` names the
choice made for each conflicting quantity, and the preset's name says which source wins. Values
are stored as printed; the conversion to mL, g and mL/min happens here, in code.

Tissue density is taken as 1 g/mL (organ mass in g equals organ volume in mL), the usual PBPK
convention; it is a modelling assumption, not a measured value.

Examples
--------
>>> from exopk.physiology import load_species
>>> mouse = load_species("mouse_brown1997", body_weight_kg=0.025)
>>> round(mouse.organ_mass_g("liver"), 4)
1.375
>>> mouse.source("organ_volume_fraction:liver").preset
'brown1997'
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Mapping

from exopk.errors import PhysiologyError

__all__ = ["PhysiologyRecord", "SpeciesPhysiology", "available_presets", "describe_preset",
           "load_species",
           "TISSUE_DENSITY_G_PER_ML"]

TISSUE_DENSITY_G_PER_ML = 1.0

_FRACTION_UNITS = {
    "fraction": 1.0,
    "fraction_of_body_weight": 1.0,
    "percent_of_body_weight": 0.01,
    "fraction_of_cardiac_output": 1.0,
    "percent_of_cardiac_output": 0.01,
    "fraction_of_tissue_volume": 1.0,
    # litre of tissue per kg body weight: a body-weight fraction at 1 kg/L
    "L/kg_body_weight": TISSUE_DENSITY_G_PER_ML,
    # mL per kg body weight: a body-weight fraction at 1 g/mL
    "mL/kg": 1e-3 * TISSUE_DENSITY_G_PER_ML,
}
_VOLUME_ML = {"mL": 1.0, "uL": 1e-3, "L": 1e3}
_FLOW_ML_PER_MIN = {"mL/min": 1.0, "uL/min": 1e-3, "L/h": 1e3 / 60.0}


@dataclass(frozen=True)
class PhysiologyRecord:
    """One row of the physiology table, as printed, with its source.

    Examples
    --------
    >>> from exopk.physiology import load_species
    >>> record = load_species("mouse_brown1997", body_weight_kg=0.025).source(
    ...     "blood_volume_fraction")
    >>> record.value, record.unit, record.preset
    (0.049, 'fraction_of_body_weight', 'brown1997')
    >>> record.source_citation[:45]
    'Brown RP, Delp MD, Lindstedt SL, Rhomberg LR,'
    """

    species: str
    quantity: str
    preset: str
    value: float
    unit: str
    source_citation: str
    source_tier: str
    where_retrieved: str
    notes: str


@lru_cache(maxsize=1)
def _table() -> tuple[PhysiologyRecord, ...]:
    text = resources.files(__package__).joinpath("physiology.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(PhysiologyRecord(**{**row, "value": float(row["value"])}) for row in rows)


@lru_cache(maxsize=1)
def _presets() -> Mapping[str, dict]:
    text = resources.files(__package__).joinpath("presets.toml").read_text(encoding="utf-8")
    return MappingProxyType(tomllib.loads(text))


def available_presets() -> dict[str, str]:
    """Return the preset names with their one-line descriptions.

    Examples
    --------
    >>> from exopk.physiology import available_presets
    >>> list(available_presets())
    ['mouse_brown1997', 'mouse_chen2015_blood', 'rat_brown1997', 'human_brown1997', 'human_white1968']
    >>> available_presets()["mouse_chen2015_blood"][:57]
    'As mouse_brown1997 but blood volume 0.06 of body weight ('
    """
    return {name: spec["description"] for name, spec in _presets().items()}


@dataclass(frozen=True)
class SpeciesPhysiology:
    """Physiological values of one species under one named preset.

    Use :func:`load_species` to build one. Organ names are those of the physiology table
    (``liver``, ``spleen``, ``lung``, ``kidney``, ``brain``, ``gi``, ...).

    Attributes
    ----------
    preset : str
        Name of the preset (for example ``mouse_brown1997``).
    species : str
        ``mouse``, ``rat`` or ``human``.
    body_weight_kg : float
        Body weight the body-weight fractions are scaled to.
    records : Mapping[str, PhysiologyRecord]
        The chosen row for every quantity, keyed by quantity.

    Examples
    --------
    A 25-g mouse: blood volume 0.049 of body weight, cardiac output
    ``16.5 L/h/kg^0.75 x 0.025**0.75`` = 17.29 mL/min:

    >>> from exopk.physiology import load_species
    >>> mouse = load_species("mouse_brown1997", body_weight_kg=0.025)
    >>> mouse.organs[:5]
    ('brain', 'gi', 'heart', 'kidney', 'liver')
    >>> round(mouse.blood_volume_ml, 4), round(mouse.cardiac_output_ml_per_min, 2)
    (1.225, 17.29)
    >>> round(16.5 * 1000 / 60 * 0.025 ** 0.75, 2)
    17.29
    >>> mouse.residual_blood_fraction("brain")
    0.03
    """

    preset: str
    species: str
    body_weight_kg: float
    records: Mapping[str, PhysiologyRecord] = field(repr=False)

    # -- provenance ---------------------------------------------------------------------------
    def source(self, quantity: str) -> PhysiologyRecord:
        """Return the row used for ``quantity`` (value as printed, unit and source)."""
        try:
            return self.records[quantity]
        except KeyError:
            raise PhysiologyError(
                f"preset '{self.preset}' ({self.species}) has no value for '{quantity}'; "
                f"available: {', '.join(sorted(self.records))}") from None

    @property
    def organs(self) -> tuple[str, ...]:
        """Organs with a mass in this preset."""
        prefix = "organ_volume_fraction:"
        return tuple(sorted(q[len(prefix):] for q in self.records if q.startswith(prefix)))

    def _fraction(self, quantity: str) -> float:
        record = self.source(quantity)
        try:
            return record.value * _FRACTION_UNITS[record.unit]
        except KeyError:
            raise PhysiologyError(
                f"'{quantity}' in preset '{self.preset}' has unit '{record.unit}', "
                "which is not a fraction exopk knows how to convert") from None

    def _organ_quantity(self, kind: str, organ: str) -> str:
        quantity = f"{kind}:{organ}"
        if quantity not in self.records:
            have = sorted(q.split(":", 1)[1] for q in self.records if q.startswith(kind + ":"))
            raise PhysiologyError(
                f"unknown organ '{organ}' for {kind} in preset '{self.preset}' "
                f"({self.species}); known organs: {', '.join(have)}")
        return quantity

    # -- masses and volumes -------------------------------------------------------------------
    @property
    def body_weight_g(self) -> float:
        """Body weight in g."""
        return self.body_weight_kg * 1e3

    def organ_mass_g(self, organ: str) -> float:
        """Organ mass in g (body-weight fraction times body weight)."""
        return self._fraction(self._organ_quantity("organ_volume_fraction", organ)) * self.body_weight_g

    def organ_volume_ml(self, organ: str) -> float:
        """Organ volume in mL (mass divided by the tissue density of 1 g/mL)."""
        return self.organ_mass_g(organ) / TISSUE_DENSITY_G_PER_ML

    def residual_blood_fraction(self, organ: str) -> float:
        """Share of the organ volume that is blood (dimensionless)."""
        return self._fraction(self._organ_quantity("residual_blood_fraction", organ))

    @property
    def blood_volume_ml(self) -> float:
        """Total blood volume in mL."""
        return self._fraction("blood_volume_fraction") * self.body_weight_g / TISSUE_DENSITY_G_PER_ML

    @property
    def plasma_volume_ml(self) -> float:
        """Plasma volume in mL."""
        return self._fraction("plasma_volume_fraction") * self.body_weight_g / TISSUE_DENSITY_G_PER_ML

    # -- flows --------------------------------------------------------------------------------
    @property
    def cardiac_output_ml_per_min(self) -> float:
        """Cardiac output in mL/min, from the allometric coefficient at this body weight.

        ``Q = coefficient * BW**exponent`` with the exponent printed in the unit
        (``L/h/kg^0.75`` or ``mL/min/kg^0.81``).
        """
        record = self.source("cardiac_output_coefficient")
        flow_unit, exponent = record.unit.rsplit("/kg^", 1)
        try:
            scale = _FLOW_ML_PER_MIN[flow_unit]
        except KeyError:
            raise PhysiologyError(f"cardiac output unit '{record.unit}' not understood") from None
        return record.value * scale * self.body_weight_kg ** float(exponent)

    def blood_flow_ml_per_min(self, organ: str) -> float:
        """Blood flow to ``organ`` in mL/min (fraction of cardiac output times cardiac output)."""
        fraction = self._fraction(self._organ_quantity("blood_flow_fraction", organ))
        return fraction * self.cardiac_output_ml_per_min

    def describe(self) -> str:
        """A table of every value used, with unit, source preset and citation."""
        return "\n".join([f"{self.preset} ({self.species}, body weight {self.body_weight_kg:g} "
                          f"kg)", *_record_lines(self.records, mark=False)])


def _needs_body_weight(record: PhysiologyRecord) -> bool:
    """The record is per unit of body weight (a fraction of it, per kg, allometric)."""
    return "body_weight" in record.unit or "/kg" in record.unit


def _record_lines(records: Mapping[str, PhysiologyRecord], *, mark: bool) -> list[str]:
    lines = []
    for quantity, r in sorted(records.items()):
        flag = "*" if mark and _needs_body_weight(r) else " "
        lines.append(f" {flag}{quantity:<42} {r.value:>10g} {r.unit:<28} {r.preset}: "
                     f"{r.source_citation}")
    return lines


def describe_preset(preset: str, *, body_weight_kg: float | None = None) -> str:
    """Every value of a preset, with unit and source; a body weight only where one is needed.

    With a body weight (given, or the preset's own) this is :meth:`SpeciesPhysiology.describe`.
    Without one, every value is still shown as printed by its source; those per unit of body
    weight (marked ``*``) need a body weight to become organ masses, volumes and flows, and the
    text says how to give one.

    Examples
    --------
    >>> text = describe_preset("mouse_brown1997")
    >>> "no body weight" in text and "--body-weight-kg" in text
    True
    >>> "(mouse, body weight 0.025 kg)" in describe_preset("mouse_brown1997", body_weight_kg=0.025)
    True
    """
    presets = _presets()
    if preset in presets and body_weight_kg is None:
        records = _choose_records(preset, presets[preset])
        if "body_weight" not in records:
            return "\n".join([
                f"{preset} ({presets[preset]['species']}, no body weight in the preset)",
                *_record_lines(records, mark=True),
                "* per unit of body weight: organ masses and volumes (g, mL), blood and plasma "
                "volumes (mL), cardiac output and blood flows (mL/min) need a body weight: give "
                f"the weight in kg of the {presets[preset]['species']}s modelled with "
                f"'exopk presets {preset} --body-weight-kg W' (body_weight_kg= in "
                "load_species)"])
    return load_species(preset, body_weight_kg=body_weight_kg).describe()


def _choose_records(name: str, spec: dict) -> dict[str, PhysiologyRecord]:
    species = spec["species"]
    by_quantity: dict[str, list[PhysiologyRecord]] = {}
    for record in _table():
        if record.species == species:
            by_quantity.setdefault(record.quantity, []).append(record)
    chosen: dict[str, PhysiologyRecord] = {}
    choose = spec.get("choose", {})
    for quantity, rows in by_quantity.items():
        by_preset = {r.preset: r for r in rows}
        if quantity in choose:
            if choose[quantity] not in by_preset:
                raise PhysiologyError(
                    f"preset '{name}' chooses '{choose[quantity]}' for '{quantity}', but the "
                    f"table has only {', '.join(by_preset)}")
            chosen[quantity] = by_preset[choose[quantity]]
            continue
        preferred = [p for p in spec.get("prefer", []) if p in by_preset]
        if preferred:
            chosen[quantity] = by_preset[preferred[0]]
        elif len(rows) == 1:
            chosen[quantity] = rows[0]
        else:
            raise PhysiologyError(
                f"preset '{name}' leaves '{quantity}' ambiguous between "
                f"{', '.join(by_preset)}; name one in presets.toml")
    return chosen


def load_species(preset: str, *, body_weight_kg: float | None = None) -> SpeciesPhysiology:
    """Build the physiology of one species under a named preset.

    Parameters
    ----------
    preset : str
        A name from :func:`available_presets`, for example ``"mouse_brown1997"``.
    body_weight_kg : float, optional
        Body weight in kg. Required unless the preset carries a measured body weight (the rat
        preset does); when given, it overrides that value.

    Returns
    -------
    SpeciesPhysiology

    Raises
    ------
    PhysiologyError
        Unknown preset, missing or non-positive body weight.

    Examples
    --------
    The rat preset carries the measured body weight of its animals; the mouse preset needs one:

    >>> from exopk.physiology import load_species
    >>> load_species("rat_brown1997").body_weight_kg
    0.273
    >>> round(load_species("mouse_brown1997", body_weight_kg=0.025).organ_mass_g("liver"), 4)
    1.375
    >>> load_species("mouse_brown1997")
    Traceback (most recent call last):
    ...
    exopk.errors.PhysiologyError: preset 'mouse_brown1997' has no body weight; give body_weight_kg (the weight of the animals or people being modelled)
    """
    presets = _presets()
    if preset not in presets:
        raise PhysiologyError(
            f"unknown species preset '{preset}'; available: {', '.join(presets)}")
    records = _choose_records(preset, presets[preset])
    if body_weight_kg is None:
        if "body_weight" not in records:
            raise PhysiologyError(
                f"preset '{preset}' has no body weight; give body_weight_kg (the weight of the "
                "animals or people being modelled)")
        record = records["body_weight"]
        if record.unit != "kg":
            raise PhysiologyError(f"body weight unit '{record.unit}' not understood")
        body_weight_kg = record.value
    if not body_weight_kg > 0:
        raise PhysiologyError(f"body_weight_kg must be positive, got {body_weight_kg!r}")
    return SpeciesPhysiology(preset=preset, species=presets[preset]["species"],
                             body_weight_kg=float(body_weight_kg),
                             records=MappingProxyType(records))
