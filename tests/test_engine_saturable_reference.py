"""The saturable (Michaelis-Menten) engine against 50-digit references (mpmath Taylor series,
``saturable_engine_reference.json``).

A six-compartment system with two saturable transfers out of plasma receives a bolus, a
one-hour infusion and a second bolus. Amounts must agree to 1e-12 and derivatives by every
parameter (each rate constant, and Vmax, Km and volume of each saturable transfer) to 1e-10,
relative to each state's (and parameter's) largest magnitude over the times. Each case is
solved alone and as the second member of a batch whose first member differs, and alone without
sensitivities.
"""

import json

import numpy as np
import pytest

from exopk.engine.linear import LinearInput, LinearSystem
from exopk.engine.nonlinear import solve_saturable

from conftest import DATA

REFERENCE = json.loads((DATA / "reference" / "saturable_engine_reference.json").read_text())
CASES = sorted(REFERENCE["cases"])


def solve_case(case, batch, gradients=True):
    """Amounts and derivatives (None without ``gradients``) of the last member of a batch whose
    other members have every rate and Vmax twice as large, as the engine computes them."""
    n = len(case["bolus"])
    m = len(REFERENCE["rates"])
    k = len(REFERENCE["saturable_sources"])
    P = m + 3 * k
    factor = np.where(np.arange(batch) == batch - 1, 1.0, 2.0)              # (batch,)
    rates = np.array(REFERENCE["rates"])[None] * factor[:, None]
    rate_jacobian = np.zeros((batch, m, P))
    rate_jacobian[:, np.arange(m), np.arange(m)] = 1.0
    saturable = []
    for j, (source, target) in enumerate(zip(REFERENCE["saturable_sources"],
                                             REFERENCE["saturable_targets"])):
        unit = np.zeros((batch, 3, P))
        unit[:, np.arange(3), m + 3 * j + np.arange(3)] = 1.0
        saturable.append((source, target, case["vmax"][j] * factor,
                          np.full(batch, case["km"][j]), np.full(batch, case["volume"][j]),
                          unit[:, 0], unit[:, 1], unit[:, 2]))

    def stacked(vector):
        return np.repeat(np.array(vector, dtype=float)[None], batch, axis=0)

    infusion = stacked(case["infusion_rate"])
    inputs = [LinearInput("bolus", 0.0, stacked(case["bolus"])),
              LinearInput("step", 0.0, infusion),
              LinearInput("step", REFERENCE["infusion_end"], -infusion),
              LinearInput("bolus", REFERENCE["second_bolus_time"], stacked(case["second_bolus"]))]
    system = LinearSystem(n, REFERENCE["sources"], REFERENCE["targets"])
    x, dx = solve_saturable(system, rates, rate_jacobian, saturable, inputs,
                            np.array(REFERENCE["times"]), gradients=gradients)
    return x[-1], dx[-1] if gradients else None


def scaled_error(found, expected):
    scale = np.max(np.abs(expected), axis=0, keepdims=True)
    return np.max(np.abs(found - expected) / np.where(scale > 0, scale, 1.0))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_saturable_engine_matches_the_50_digit_reference(name, batch):
    case = REFERENCE["cases"][name]
    x, dx = solve_case(case, batch)
    assert scaled_error(x, np.array(case["amounts"])) < 1e-12
    assert scaled_error(dx, np.array(case["sensitivities"])) < 1e-10


@pytest.mark.parametrize("name", CASES)
def test_saturable_amounts_without_sensitivities_match_the_50_digit_reference(name):
    """Without sensitivities the error test sees the amounts alone: they must be as accurate
    (an absolute tolerance of 1e-12 of the dose held them to only 5e-11)."""
    case = REFERENCE["cases"][name]
    x, _ = solve_case(case, 1, gradients=False)
    assert scaled_error(x, np.array(case["amounts"])) < 1e-12


def test_the_reference_conserves_mass_and_sees_saturation():
    """The reference itself: every dose is accounted for at every time, and in the saturated
    case the liver flux at the first time is far from its first-order limit."""
    for case in REFERENCE["cases"].values():
        times = np.array(REFERENCE["times"])
        infused = np.minimum(times, REFERENCE["infusion_end"]) * sum(case["infusion_rate"])
        given = sum(case["bolus"]) + infused + np.where(
            times > REFERENCE["second_bolus_time"], sum(case["second_bolus"]), 0.0)
        assert np.allclose(np.sum(case["amounts"], axis=1), given, rtol=1e-14, atol=0)
    saturated = REFERENCE["cases"]["saturated"]
    concentration = saturated["amounts"][0][0] / saturated["volume"][0]
    assert concentration > 10 * saturated["km"][0]
