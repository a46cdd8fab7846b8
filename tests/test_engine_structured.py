"""The structured path (values only): core decomposed, leaves and sinks in closed form.

Checked against ``expm`` member by member, on prior draws of the shipped models that include
complex core spectra and leaf rates equal or close to a core eigenvalue (where the dense
eigenvector matrix is defective or nearly so). The 50-digit references are in
``test_engine_reference.py``.
"""

import warnings

import mpmath
import numpy as np
import pytest

import exopk
from exopk.engine import compile_model, evaluate
from exopk.engine.eigen import eigendecompose
from exopk.engine.linear import STRUCTURED_BATCH
from exopk.engine.simulation import dose_inputs
from exopk.engine.structured import forward_moments
from exopk.engine.summaries import moments
from exopk.errors import IllConditionedWarning, SimulationError
from exopk.observation import Request, predict, predictions
from exopk.observation.predictions import Evaluation

TIMES = np.array([0.0, 1.0, 5.0, 30.0, 60.0, 240.0, 1440.0, 2880.0])


def prior_draws(model, size, seed):
    compiled = compile_model(model)
    rng = np.random.default_rng(seed)
    columns = [p.prior.sample(rng, size=size) if p.prior is not None and not p.fixed
               else np.full(size, p.value) for p in model.parameters]
    return compiled, np.clip(np.column_stack(columns), compiled.lower, compiled.upper)


def assert_close(found, exact, tolerance):
    """Each compartment within ``tolerance`` of its largest amount over the times, plus 1e-13 of
    the largest amount anywhere (expm's own rounding: it leaves 1e-15 of a dose of 100 in a
    compartment the dose never reaches)."""
    peak = np.abs(exact).max(axis=(-2, -1), keepdims=True)
    allowed = tolerance * np.abs(exact).max(axis=-2, keepdims=True) + 1e-13 * peak
    excess = np.abs(found - exact) / allowed
    assert excess.max() <= 1.0, f"error {excess.max():.2g} times the tolerance"


def test_free_label_compartments_are_leaves_of_the_mps_model():
    compiled = compile_model(exopk.load_model(exopk.model_path("m2_mps")))
    blocks = compiled.linear_system.blocks
    names = np.array(compiled.state_names)
    assert sorted(names[blocks.leaves]) == sorted(n for n in names if n.endswith("_free_label"))
    assert names[blocks.sinks].tolist() == ["label_eliminated"]
    assert sorted(names[blocks.core]) == ["kidney", "liver", "lung", "plasma", "rest", "spleen"]


@pytest.mark.parametrize("name,route", [("m2_mps", "iv"), ("m5_intranasal", "intranasal"),
                                        ("m5_intranasal", "iv")])
@pytest.mark.parametrize("infusion", [False, True])
def test_structured_values_match_expm_on_prior_draws(name, route, infusion):
    model = exopk.load_model(exopk.model_path(name))
    compiled, draws = prior_draws(model, 400, seed=1)
    regimen = (exopk.Regimen.infusion(route, 100.0, duration=30.0) if infusion
               else exopk.Regimen((exopk.Dose(route, 100.0, 0.0), exopk.Dose(route, 50.0, 60.0))))
    structured = evaluate(compiled, draws, TIMES, regimen, path="auto").amounts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        dense = evaluate(compiled, draws, TIMES, regimen, path="dense").amounts
    # expm for the members where the two paths differ most, and for complex core spectra
    blocks = compiled.linear_system.blocks
    values = compiled.evaluate_expressions(draws)[0]
    A = compiled.linear_system.matrix(values[:, compiled.rate_rows])
    lam = eigendecompose(A[:, blocks.core[:, None], blocks.core[None, :]])[0]
    complex_core = np.flatnonzero(np.iscomplexobj(lam) & np.any(lam.imag != 0, axis=1))
    differ = np.abs(structured - dense).max(axis=(1, 2))
    chosen = np.unique(np.concatenate([np.argsort(differ)[-6:], complex_core[:3]]))
    exact = evaluate(compiled, draws[chosen], TIMES, regimen, path="expm").amounts
    assert_close(structured[chosen], exact, 1e-10)
    assert_close(structured, dense, 1e-8)
    if name == "m5_intranasal":
        assert complex_core.size, "the draws no longer include a complex core spectrum"


def test_leaf_rate_equal_to_a_core_rate_needs_no_fallback():
    """Liver degradation equal (and 1e-9 apart) to the free-label clearance: the free-label
    eigenvalue is repeated and the dense eigenvector matrix defective (or nearly so); the
    structured path takes the divided difference and matches a 40-digit ``expm`` to 1e-12
    (scipy's ``expm``, the dense path's fallback, is off by 3e-9 in the nearly defective case)."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled = compile_model(model)
    k = 0.05
    theta = compiled.parameter_matrix({"k_degradation_liver": [k, k * (1 + 1e-9)],
                                       "k_free_label_clearance": [k, k]})
    regimen = exopk.Regimen.bolus("iv", 100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        structured = evaluate(compiled, theta, TIMES, regimen).amounts
    values = compiled.evaluate_expressions(theta)[0]
    A = compiled.linear_system.matrix(values[:, compiled.rate_rows])
    bolus = dose_inputs(compiled, regimen, values, None)[0].vector
    mpmath.mp.dps = 40
    exact = np.array([[[float(v) for v in mpmath.expm(mpmath.matrix(A[m].tolist()) * t)
                        * mpmath.matrix(bolus[m].tolist())] for t in TIMES] for m in range(2)])
    scale = np.abs(exact).max(axis=1, keepdims=True)
    assert (np.abs(structured - exact) / scale).max() < 1e-12
    with pytest.warns(IllConditionedWarning):
        evaluate(compiled, theta, TIMES, regimen, path="dense")


def test_structured_path_refuses_what_it_does_not_compute():
    compiled = compile_model(exopk.load_model(exopk.model_path("m2_mps")))
    theta = compiled.parameter_matrix()
    with pytest.raises(SimulationError, match="steady-state"):
        evaluate(compiled, theta, TIMES, exopk.Regimen((exopk.Dose(
            "iv", 100.0, 0.0, steady_state_interval=720.0),)), path="structured")
    with pytest.raises(SimulationError, match="values only"):
        evaluate(compiled, theta, TIMES, exopk.Regimen.bolus("iv", 100.0), gradients=True,
                 path="structured")


def test_an_unknown_solution_path_is_named_not_solved():
    compiled = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    with pytest.raises(SimulationError, match="unknown solution path 'eigne'; known: auto"):
        evaluate(compiled, compiled.parameter_matrix(), TIMES, exopk.Regimen.bolus("iv", 100.0),
                 path="eigne")


# -- summaries of large batches (values only) --------------------------------------------------
SUMMARIES = {
    ("m2_mps", "iv"): [
        Request("auc", "blood_concentration"), Request("mrt", "blood_concentration"),
        Request("clearance", "blood_concentration"), Request("vss", "blood_concentration"),
        Request("half_life", "blood_concentration"), Request("time_to_half", "blood_concentration"),
        Request("half_life_alpha", "blood_concentration"),
        Request("elimination_rate", "liver_percent_id"),
        Request("volume_terminal", "blood_concentration"),
        Request("half_life", "liver_label_percent_id"),          # reads a leaf: dense modes
        Request("value", "spleen_label_percent_id", 240.0),
        Request("fraction_cleared", "plasma_percent_id", 60.0),
        Request("mrt_last", "blood_concentration", 240.0),
        Request("fraction_of_uptake", "liver_percent_id", 240.0),
        Request("transfer_fraction", "plasma->liver")],
    ("m5_intranasal", "intranasal"): [
        Request("time_of_peak", "plasma_percent_id"), Request("time_of_peak", "brain_percent_id"),
        Request("transfer_fraction", "nasal->plasma"), Request("mrt", "nasal_percent_id"),
        Request("auc", "brain_percent_id"), Request("time_to_half", "nasal_percent_id"),
        Request("value", "brain_parenchyma_percent_id", 480.0)],
}


def summaries_by_path(name, route, size=64):
    """The summaries of ``size`` prior draws (halfway to the prior median) in one batch and in
    batches too small for the structured path."""
    model = exopk.load_model(exopk.model_path(name))
    compiled, draws = prior_draws(model, size, seed=7)
    draws = np.sqrt(draws * np.median(draws, axis=0))
    regimen = exopk.Regimen.bolus(route, 100.0)
    requests = SUMMARIES[(name, route)]
    assert Evaluation(compiled, draws, regimen, requests, False).structured
    small = STRUCTURED_BATCH // 2
    assert not Evaluation(compiled, draws[:small], regimen, requests, False).structured
    batch = predict(compiled, draws, regimen, requests)[0]
    one_by_one = np.concatenate([predict(compiled, draws[start:start + small], regimen,
                                         requests)[0] for start in range(0, size, small)])
    return batch, one_by_one


@pytest.mark.parametrize("name,route", list(SUMMARIES))
def test_summaries_of_a_large_batch_match_the_dense_path(name, route):
    """Moments, modes, times to half and to peak, states at a time: the structured path
    (decomposing the core only) gives the dense path's numbers. 1e-9: the dense path itself
    loses up to 7e-10 in small compartments (see ``linear.py``)."""
    batch, one_by_one = summaries_by_path(name, route)
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-9)


def test_members_with_an_ill_conditioned_core_take_the_dense_path(monkeypatch):
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled, draws = prior_draws(model, 64, seed=7)
    draws = np.sqrt(draws * np.median(draws, axis=0))
    values = compiled.evaluate_expressions(draws)[0]
    system = compiled.linear_system
    condition = system.decompose_core(system.matrix(values[:, compiled.rate_rows]))[3]
    # a limit that half the members exceed: they are solved densely and put back in place
    monkeypatch.setattr(predictions, "CONDITION_LIMIT", float(np.median(condition)))
    batch, one_by_one = summaries_by_path("m2_mps", "iv")
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-9)
    modes = Evaluation(compiled, draws, exopk.Regimen.bolus("iv", 100.0), [], False).core_modes
    assert 0 < modes.solved.sum() < len(draws)


@pytest.mark.parametrize("by_blocks", [False, True])
@pytest.mark.parametrize("name", ["m2_mps", "m5_intranasal"])
def test_forward_moments_match_the_inverse_of_the_draining_block(name, by_blocks):
    """Both ways of solving with the core: whole, and block by block in its one-way order."""
    model = exopk.load_model(exopk.model_path(name))
    compiled, draws = prior_draws(model, 200, seed=3)
    system = compiled.linear_system
    rates = compiled.evaluate_expressions(draws)[0][:, compiled.rate_rows]
    bolus = np.random.default_rng(4).uniform(0.0, 100.0, size=(len(draws), system.n_states))
    A = system.matrix(rates)
    order = system.core_order(A) if by_blocks else None
    if by_blocks:
        assert not order.trivial and max(len(b) for b in order.blocks) == (1 if name == "m2_mps"
                                                                           else 4)
    area, first = forward_moments(system.blocks, A, bolus, fill=-1.0, core_order=order)
    expected = moments(system, rates, np.zeros(rates.shape + (0,)), bolus, fill=-1.0)
    np.testing.assert_allclose(area, expected[0], rtol=1e-11)
    np.testing.assert_allclose(first, expected[2], rtol=1e-11)
    assert (area[:, system.blocks.sinks] == -1.0).all()


def test_forward_moments_of_a_leaf_that_never_drains_are_an_error():
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled, draws = prior_draws(model, 40, seed=3)
    draws[5, model.parameter_names.index("k_free_label_clearance")] = 0.0
    system = compiled.linear_system
    rates = compiled.evaluate_expressions(draws)[0][:, compiled.rate_rows]
    bolus = np.full((len(draws), system.n_states), 1.0)
    A = system.matrix(rates)
    for compute in (lambda: forward_moments(system.blocks, A, bolus),
                    lambda: forward_moments(system.blocks, A, bolus,
                                            core_order=system.core_order(A)),
                    lambda: moments(system, rates, np.zeros(rates.shape + (0,)), bolus)):
        with pytest.raises(SimulationError, match="never drains"):
            compute()


@pytest.mark.parametrize("arithmetic", [float, complex])
def test_partial_fraction_weights_match_their_numpy_formula(arithmetic):
    """The compiled weights of leaves fed by core modes against the formula written out in
    numpy: ``w / (mu - a)`` with ``w = (A_LC V) (V^-1 x0)``, zero for close pairs (within
    ``_CLOSE`` of the larger of ``|mu|``, ``|a|`` and the inverse time span), and their sums."""
    from exopk.engine.structured import _CLOSE, _PartialFractions

    rng = np.random.default_rng(3)
    B, n_leaves, n_modes, span = 50, 4, 6, 1440.0
    lam = -np.exp(rng.normal(-3, 2, (B, n_modes))).astype(arithmetic)
    if arithmetic is complex:
        lam[:, 4:] = lam[:, 4:] + 1j * np.abs(lam[:, 4:])      # a complex pair's share
        lam[:, 5] = lam[:, 4].conj()
    a_L = -np.exp(rng.normal(-3, 2, (B, n_leaves)))
    a_L[:5, 0] = lam[:5, 0].real * (1 + 1e-4)           # close pairs
    a_L[5:8, 1] = lam[5:8, 2].real                      # equal pairs
    a_L[8, 2] = -1e-6                                   # both below the time-span floor
    lam[8, 3] = -2e-6
    G_L = rng.normal(size=(B, n_leaves, n_modes)).astype(arithmetic)
    modes = rng.normal(size=(B, n_modes)).astype(arithmetic)
    found = _PartialFractions(lam, a_L, G_L, modes, span)

    separation = lam[:, None, :] - a_L[:, :, None]
    near = _CLOSE * np.maximum(np.maximum(np.abs(lam), 1 / span)[:, None, :],
                               np.maximum(np.abs(a_L), 1 / span)[:, :, None])
    close = np.abs(separation) < near
    assert close[:5, 0, 0].all() and close[5:8, 1, 2].all() and close[8, 2, 3]
    expected = np.where(close, 0.0, G_L * modes[:, None, :] / np.where(close, 1.0, separation))
    np.testing.assert_allclose(found.coefficient, expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(found.total, expected.sum(axis=2), rtol=1e-13, atol=1e-300)
    assert np.array_equal(np.stack(found.close), np.stack(np.nonzero(close)))


def test_kept_decompositions_follow_the_matrices_not_the_last_call():
    """The system keeps its last decompositions: for the matrices it made (read-only) by
    identity, also after it made others (the dense fallback of a few members between the
    structured values and the modal summaries of one batch); for matrices from elsewhere by
    their bytes, so an array changed in place is decomposed afresh."""
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    compiled, draws = prior_draws(model, 40, seed=3)
    system = compiled.linear_system
    rates = compiled.evaluate_expressions(draws)[0][:, compiled.rate_rows]
    A = system.matrix(rates)
    core = system.decompose_core(A)
    system.matrix(rates[:2])                                  # other matrices made in between
    assert system.decompose_core(A) is core
    assert system.decompose_core(A.copy()) is not core        # equal bytes: the same numbers
    assert np.array_equal(system.decompose_core(A.copy())[0], core[0])
    changed = A.copy()
    changed[0, 0, 0] *= 2.0
    assert not np.array_equal(system.decompose_core(changed)[0][0], core[0][0])
    changed[0, 0, 0] = A[0, 0, 0]                             # back, in place: decomposed again
    assert np.array_equal(system.decompose_core(changed)[0], core[0])
