"""Unit parsing and conversion with the pint registry of exopk.units."""

import pytest

from exopk.units import (CANONICAL_UNITS, UnitError, canonical_unit, convert, parse_unit,
                              to_minutes, units_fit)
from exopk.errors import ExopkError


def test_hours_to_minutes():
    assert to_minutes(2.0, "h") == 120.0
    assert to_minutes(1.0, "day") == 1440.0
    assert to_minutes(90.0, "s") == 1.5


def test_flow_per_hour_to_per_minute():
    assert convert(0.5, "mL/h", "mL/min") == pytest.approx(0.5 / 60, rel=1e-14)
    assert convert(1.5, "L/h", "mL/min") == pytest.approx(25.0, rel=1e-14)
    assert convert(5.0, "mL/day/kg", "mL/min/kg") == pytest.approx(5.0 / 1440, rel=1e-14)


def test_auc_hours_to_minutes_is_times_sixty():
    assert convert(1.1, "%ID*h/mL", "%ID*min/mL") == pytest.approx(66.0, rel=1e-14)
    assert convert(3.2, "mg*h/L", "ug*min/mL") == pytest.approx(192.0, rel=1e-14)
    assert convert(3.3, "h*ug/g", "ug*min/g") == pytest.approx(198.0, rel=1e-14)


def test_rate_constants_and_volumes():
    assert convert(0.6, "h^-1", "min^-1") == pytest.approx(0.01, rel=1e-14)
    assert convert(0.6, "1/h", "min^-1") == pytest.approx(0.01, rel=1e-14)
    assert convert(7.0, "L", "mL") == pytest.approx(7000.0, rel=1e-14)
    assert convert(20.0, "uL", "mL") == pytest.approx(0.02, rel=1e-14)


def test_dose_fraction_units():
    assert convert(50.0, "%ID", "ID") == pytest.approx(0.5, rel=1e-14)
    assert convert(3.0, "%ID/organ", "%ID") == 3.0
    assert not units_fit("%ID/g", "1/g")
    assert not units_fit("%ID/mL", "EVs/mL")


def test_vesicle_counts():
    assert convert(2.0, "particles/mL", "EVs/mL") == 2.0
    assert convert(1.0, "sEVs", "count") == 1.0
    assert not units_fit("EVs/mL", "pM")


def test_factors_of_the_same_kind_are_kept_apart():
    assert units_fit("h*ug/g", "ug*min/g")
    assert not units_fit("h*ug/g", "min")


@pytest.mark.parametrize("quantity, unit, canonical", [
    ("half_life", "h", "min"),
    ("time_of_peak", "h", "min"),
    ("mrt", "h", "min"),
    ("time_detected", "day", "min"),
    ("clearance", "mL/h", "mL/min"),
    ("clearance", "L/h/kg", "mL/min/kg"),
    ("clearance", "L/h/m^2", "mL/min/m^2"),
    ("auc", "%ID*h/mL", "%ID*min/mL"),
    ("auc", "%ID*min/g", "%ID*min/g"),
    ("auc", "pM*min", "pM*min"),
    ("elimination_rate_constant", "min^-1", "min^-1"),
    ("volume_of_distribution", "L", "mL"),
    ("vss", "mL", "mL"),
    ("percent_id_per_g", "%ID/g", "%ID/g"),
    ("percent_id_per_organ", "%ID", "%ID/organ"),
    ("concentration", "pM", "pM"),
    ("concentration", "count", "count"),
    ("secretion_rate", "EVs/cell/min", "EVs/cell/min"),
    ("fraction_cleared", "%", "%"),
    ("other:time_to_baseline", "h", "min"),
    ("other:in_drop_volume", "uL", "mL"),
    ("other:diameter", "nm", "nm"),
    ("other:share", "%", "%"),
    ("fold_range", "fold", "fold"),
])
def test_canonical_units(quantity, unit, canonical):
    assert canonical_unit(quantity, unit) == canonical


@pytest.mark.parametrize("quantity, unit", [
    ("half_life", "mL"), ("auc", "h"), ("clearance", "mL"), ("percent_id_per_g", "%ID/mL"),
    ("elimination_rate_constant", "min"),
])
def test_units_that_do_not_fit_their_quantity(quantity, unit):
    with pytest.raises(UnitError, match=f"does not fit quantity '{quantity}'"):
        canonical_unit(quantity, unit)


@pytest.mark.parametrize("text", ["", "abc", "2*mL", "mL**2", "9^9^9", "m^999", "mL/(min*kg)",
                                  "__import__", "x" * 65, "mL min"])
def test_unknown_units(text):
    with pytest.raises(UnitError, match="unknown unit"):
        parse_unit(text)


def test_unit_error_is_an_exopk_error():
    assert issubclass(UnitError, ExopkError)


def test_every_canonical_unit_parses():
    for units in CANONICAL_UNITS.values():
        for unit in units:
            parse_unit(unit)
