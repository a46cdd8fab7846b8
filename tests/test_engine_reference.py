"""The linear engine against 50-digit references (mpmath, ``linear_engine_reference.json``).

Each case is solved for one parameter set (the single-set eigen path), in a batch of two (the
stacked path), in a batch larger than the engine's gradient chunk (checked in the first and the
last chunk), and with ``expm``; values must agree to 1e-12 and derivatives by every rate
constant to 1e-10, relative to each state's (and rate's) largest magnitude over the times.
The cases include complex, repeated (diagonalisable), defective and nearly defective
eigenvalues, and cores that fall into several strongly connected blocks (one-way uptake, a cycle
between single compartments), which the structured path decomposes block by block. Areas and
first moments of the bolus response must agree to 1e-12 relative, by every way of computing them.
"""

import json
import warnings

import numpy as np
import pytest

from exopk.engine.linear import CHUNK, LinearInput, LinearSystem
from exopk.engine.structured import forward_moments
from exopk.engine.summaries import moments
from exopk.errors import IllConditionedWarning

from conftest import DATA

REFERENCE = json.loads((DATA / "reference" / "linear_engine_reference.json").read_text())
CASES = sorted(REFERENCE["cases"])


def case_in_batch(case, batch, member=0):
    """The case's system, and rates and inputs for a batch in which every member but
    ``member`` has its rates 1.5 times larger."""
    system = LinearSystem(len(case["bolus"]), case["sources"], case["targets"])
    stacked = np.repeat(np.array(case["rates"])[None], batch, axis=0)
    stacked *= np.where(np.arange(batch) == member % batch, 1.0, 1.5)[:, None]
    bolus = np.repeat(np.array(case["bolus"])[None], batch, axis=0)
    infusion = np.repeat(np.array(case["infusion_rate"])[None], batch, axis=0)
    inputs = [LinearInput("bolus", 0.0, bolus), LinearInput("step", 0.0, infusion),
              LinearInput("step", REFERENCE["infusion_end"], -infusion)]
    return system, stacked, inputs


def solve_case(case, path, batch, member=0):
    """Amounts and derivatives by every rate of member ``member`` of a batch in which the
    others differ, as the engine computes them."""
    system, stacked, inputs = case_in_batch(case, batch, member)
    jacobian = np.repeat(np.eye(stacked.shape[1])[None], batch, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        x, dx = system.solve(stacked, inputs, np.array(REFERENCE["times"]),
                             rate_jacobian=jacobian, path=path)
    return x[member], dx[member]


def assert_close(found, expected, tolerance, what):
    scale = np.max(np.abs(expected), axis=0, keepdims=True)
    error = np.abs(found - expected) / np.where(scale > 0, scale, 1.0)
    assert error.max() < tolerance, f"{what}: largest scaled error {error.max():.2e}"


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("path,batch,member", [("auto", 1, 0), ("auto", 2, 0), ("expm", 1, 0),
                                               ("auto", 2 * CHUNK + 3, 0),
                                               ("auto", 2 * CHUNK + 3, -1)])
def test_amounts_and_rate_derivatives_match_50_digit_reference(name, path, batch, member):
    case = REFERENCE["cases"][name]
    x, dx = solve_case(case, path, batch, member)
    assert_close(x, np.array(case["amounts"]), 1e-12, f"{name} {path} values")
    assert_close(dx, np.array(case["sensitivities"]), 1e-10, f"{name} {path} derivatives")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("batch,member", [(1, 0), (2, 0), (2 * CHUNK + 3, -1)])
def test_shared_parameter_derivatives_match_50_digit_reference(name, batch, member):
    """A parameter for each rate and one parameter that every rate depends on, whose
    derivative is the reference's rate derivatives weighted by ``d rate / dp`` (chain rule):
    ``V^-1 dA V`` sums the transfers of a shared parameter."""
    case = REFERENCE["cases"][name]
    system, stacked, inputs = case_in_batch(case, batch, member)
    m = stacked.shape[1]
    d_rates = np.column_stack([np.eye(m), np.linspace(0.5, 1.5, m)])        # (rates, parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        x, dx = system.solve(stacked, inputs, np.array(REFERENCE["times"]),
                             rate_jacobian=np.repeat(d_rates[None], batch, axis=0))
    expected = np.array(case["sensitivities"]) @ d_rates
    assert_close(x[member], np.array(case["amounts"]), 1e-12, f"{name} values")
    assert_close(dx[member], expected, 1e-10, f"{name} derivatives")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("path,batch", [("structured", 1), ("structured", 5), ("auto", 1),
                                        ("auto", 5), ("auto", 40)])
def test_values_of_the_structured_path_match_50_digit_reference(name, path, batch):
    """Values only: ``structured`` decomposes only the core; ``auto`` on these small batches
    takes the dense path and the structured one for the members the dense path cannot
    decompose (no ``expm``, so no warning, in the defective cases)."""
    case = REFERENCE["cases"][name]
    system, stacked, inputs = case_in_batch(case, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        x, dx = system.solve(stacked, inputs, np.array(REFERENCE["times"]), path=path)
    assert dx is None
    assert_close(x[0], np.array(case["amounts"]), 1e-12, f"{name} {path} values")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("way", ["dense", "structured", "by_blocks"])
def test_areas_and_first_moments_match_50_digit_reference(name, way):
    """Areas and first moments of the bolus response over ``[0, inf)``: the inverse of the
    draining block (:func:`~exopk.engine.summaries.moments`), the structured solves with the
    whole core, and the same block by block in the core's one-way order."""
    case = REFERENCE["cases"][name]
    system, stacked, inputs = case_in_batch(case, 3)
    bolus = inputs[0].vector
    if way == "dense":
        area, _, first, _ = moments(system, stacked, np.zeros(stacked.shape + (0,)), bolus,
                                    fill=np.nan)
    else:
        A = system.matrix(stacked)
        order = system.core_order(A) if way == "by_blocks" else None
        if name in ("one_way_mps", "blocks_around_a_cycle") and order is not None:
            assert not order.trivial
        area, first = forward_moments(system.blocks, A, bolus, fill=np.nan, core_order=order)
    expected_area = np.array(case["bolus_area"], dtype=float)      # NaN (null) for sinks
    expected_first = np.array(case["bolus_first_moment"], dtype=float)
    np.testing.assert_array_equal(np.isnan(area[0]), np.isnan(expected_area))
    drains = ~np.isnan(expected_area)
    np.testing.assert_allclose(area[0, drains], expected_area[drains], rtol=1e-12, atol=0)
    np.testing.assert_allclose(first[0, drains], expected_first[drains], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", CASES)
def test_derivatives_of_areas_and_first_moments_match_central_differences(name):
    """``d area / dp`` and ``d first moment / dp`` of :func:`~exopk.engine.summaries.moments`
    for a parameter per rate (``d rate_j / dp_j = rate_j``: p is a log rate), one that every
    rate depends on, and one that scales the bolus (its ``d_vector``), against central
    differences of the moments themselves (relative step 1e-5: truncation and rounding
    below 1e-8 of each member's largest derivative)."""
    case = REFERENCE["cases"][name]
    system, rates, inputs = case_in_batch(case, 2)
    bolus = inputs[0].vector
    m = rates.shape[1]
    # directions in rate space per parameter: d rates / dp, shape (batch, m, P)
    directions = np.concatenate([rates[:, :, None] * np.eye(m)[None],
                                 (rates * np.linspace(0.5, 1.5, m))[:, :, None],
                                 np.zeros((2, m, 1))], axis=2)
    d_bolus = np.zeros(bolus.shape + (m + 2,))
    d_bolus[..., -1] = bolus                               # the bolus is p times the dose
    _, d_area, _, d_first = moments(system, rates, directions, bolus, d_bolus, fill=0.0)
    no_columns = np.zeros(rates.shape + (0,))
    step = 1e-5
    for p in range(m + 2):
        shifted = [moments(system, rates + sign * step * directions[:, :, p], no_columns,
                           bolus * (1 + sign * step if p == m + 1 else 1.0), fill=0.0)
                   for sign in (1.0, -1.0)]
        for k, derivative in ((0, d_area), (2, d_first)):
            central = (shifted[0][k] - shifted[1][k]) / (2 * step)
            scale = np.max(np.abs(derivative), axis=(1, 2))[:, None]
            assert np.max(np.abs(central - derivative[..., p]) / scale) <= 1e-8, (name, p, k)


def test_structured_path_needs_no_fallback_for_a_defective_chain():
    """0 -> 1 -> sink with equal rates: the dense eigenvector matrix is defective, but
    compartment 1 only drains to the sink, so only compartment 0 is decomposed."""
    case = REFERENCE["cases"]["defective"]
    system = LinearSystem(3, case["sources"], case["targets"])
    assert system.blocks.core.tolist() == [0] and system.blocks.leaves.tolist() == [1]
    inputs = [LinearInput("bolus", 0.0, np.array([case["bolus"]]))]
    times = np.array(REFERENCE["times"])
    rates = np.array([case["rates"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        structured, _ = system.solve(rates, inputs, times, path="structured")
    with pytest.warns(IllConditionedWarning):
        dense, _ = system.solve(rates, inputs, times, path="dense")
    assert_close(structured[0], dense[0], 1e-12, "structured against expm")


def test_defective_case_falls_back_to_expm_and_says_so():
    case = REFERENCE["cases"]["defective"]
    system = LinearSystem(3, case["sources"], case["targets"])
    inputs = [LinearInput("bolus", 0.0, np.array([case["bolus"]]))]
    with pytest.warns(IllConditionedWarning):
        system.solve(np.array([case["rates"]]), inputs, np.array([1.0]), path="dense")
