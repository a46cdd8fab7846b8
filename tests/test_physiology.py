"""Species presets: values as printed, converted in code, with their sources."""

import csv
from pathlib import Path

import pytest

import exopk
from exopk.errors import PhysiologyError
from exopk.physiology import available_presets, load_species


def test_packaged_table_has_every_row_with_a_source():
    path = Path(exopk.physiology.__file__).parent / "physiology.csv"
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 115
    assert all(r["source_citation"] and r["source_tier"] for r in rows)


def test_every_preset_resolves_all_conflicts():
    for name in available_presets():
        weight = None if name.startswith("rat") else 0.025 if name.startswith("mouse") else 70.0
        species = load_species(name, body_weight_kg=weight)
        assert species.organs


def test_mouse_values_are_converted_from_the_printed_units():
    mouse = load_species("mouse_brown1997", body_weight_kg=0.025)
    assert mouse.organ_mass_g("liver") == pytest.approx(0.055 * 25)          # fraction of BW
    assert mouse.organ_mass_g("heart") == pytest.approx(0.5 / 100 * 25)      # percent of BW
    assert mouse.blood_volume_ml == pytest.approx(0.049 * 25)
    assert mouse.plasma_volume_ml == pytest.approx(0.029 * 25)
    assert mouse.residual_blood_fraction("liver") == 0.31
    # Q = 16.5 L/h/kg^0.75 * BW^0.75, in mL/min
    assert mouse.cardiac_output_ml_per_min == pytest.approx(16.5 * 1000 / 60 * 0.025 ** 0.75)
    assert mouse.blood_flow_ml_per_min("heart") == pytest.approx(0.066 * mouse.cardiac_output_ml_per_min)
    assert mouse.source("organ_volume_fraction:spleen").preset == "davies_morris1993"


def test_preset_names_say_which_conflicting_source_is_used():
    assert load_species("mouse_chen2015_blood", body_weight_kg=0.02).blood_volume_ml == pytest.approx(1.2)
    rat = load_species("rat_brown1997")
    assert rat.body_weight_kg == 0.273
    assert rat.source("cardiac_output_coefficient").value == 14.0
    human = load_species("human_white1968", body_weight_kg=70.0)
    assert human.cardiac_output_ml_per_min == pytest.approx(187.0 * 70.0 ** 0.81)
    assert human.organ_mass_g("liver") == pytest.approx(0.026 * 70_000)      # L/kg at 1 kg/L


def test_unknown_organ_and_missing_body_weight_raise_clear_errors():
    mouse = load_species("mouse_brown1997", body_weight_kg=0.025)
    with pytest.raises(PhysiologyError, match="unknown organ 'pancreas'.*known organs: brain"):
        mouse.organ_mass_g("pancreas")
    with pytest.raises(PhysiologyError, match="has no body weight"):
        load_species("mouse_brown1997")
    with pytest.raises(PhysiologyError, match="unknown species preset"):
        load_species("dog")
    with pytest.raises(PhysiologyError, match="must be positive"):
        load_species("mouse_brown1997", body_weight_kg=-1)
