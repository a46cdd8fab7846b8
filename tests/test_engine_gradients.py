"""Exact sensitivities against finite differences, for every shipped model."""

import numpy as np
import pytest
import scipy.optimize

import exopk
from exopk.engine.simulation import evaluate
from exopk.engine import compile_model, linear

from conftest import exercised_parameters, mixed_regimen

TIMES = np.array([0.0, 1.0, 5.0, 15.0, 30.0, 60.0, 125.0, 240.0, 1440.0, 2880.0])


def central_difference(f, theta, p, relative_step, richardson):
    """d f / d theta[p]; with Richardson extrapolation the truncation error is O(h^4)."""
    def diff(h):
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        return (f(up) - f(down)) / (2 * h)
    h = relative_step * abs(theta[p])
    if not richardson:
        return diff(h)
    return (4 * diff(h / 2) - diff(h)) / 3


def test_sensitivities_match_finite_differences(shipped_model):
    compiled = compile_model(shipped_model)
    regimen = mixed_regimen(shipped_model)
    theta = exercised_parameters(shipped_model)
    exact = evaluate(compiled, theta[None], TIMES, regimen, gradients=True).output_sensitivities[0]

    def outputs(t):
        return evaluate(compiled, t[None], TIMES, regimen).outputs[0]

    linear = shipped_model.is_linear
    for p, name in enumerate(compiled.parameter_names):
        # an adaptive ODE solver makes extrapolation amplify its noise: plain differences there
        fd = central_difference(outputs, theta, p, 1e-3, richardson=linear)
        scale = np.max(np.abs(fd))
        if scale == 0:
            assert np.max(np.abs(exact[..., p])) == 0, name
            continue
        error = np.max(np.abs(exact[..., p] - fd)) / scale
        assert error < 1e-6, f"{shipped_model.name}: d/d{name} relative error {error:.2e}"


def test_eigen_and_expm_paths_agree_on_values_and_sensitivities(shipped_model):
    if not shipped_model.is_linear:
        pytest.skip("saturable models have one solver")
    compiled = compile_model(shipped_model)
    theta = exercised_parameters(shipped_model, seed=3)
    regimen = mixed_regimen(shipped_model)
    eigen = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="eigen")
    expm = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="expm")
    np.testing.assert_allclose(eigen.amounts, expm.amounts, rtol=1e-9, atol=1e-10)
    scale = np.max(np.abs(expm.output_sensitivities), axis=(0, 1, 2), keepdims=True)
    np.testing.assert_allclose(eigen.output_sensitivities / np.where(scale > 0, scale, 1),
                               expm.output_sensitivities / np.where(scale > 0, scale, 1), atol=1e-9)


def test_close_but_distinct_eigenvalues_keep_exact_gradients():
    """Rates that differ by 1e-7 relative stress the divided differences."""
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    compiled = compile_model(model)
    theta = np.array([0.2, 1.0, 0.2 * (1 + 1e-7), 1.0])   # CL/V = Q/V_peripheral almost
    regimen = exopk.Regimen.bolus("iv", 100.0) + exopk.Regimen.infusion("iv", 10.0, 20.0, 5.0)
    eigen = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="eigen")
    expm = evaluate(compiled, theta[None], TIMES, regimen, gradients=True, path="expm")
    np.testing.assert_allclose(eigen.output_sensitivities, expm.output_sensitivities,
                               rtol=1e-8, atol=1e-10)


def mixed_batch():
    """m5_intranasal with prior draws: members with real spectra, two with complex pairs and
    one with an ill-conditioned eigenvector matrix, in random order, more than the engine's
    gradient chunk."""
    from exopk.engine.eigen import eigendecompose
    from exopk.engine.linear import CHUNK, CONDITION_LIMIT
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    compiled = compile_model(model)
    rng = np.random.default_rng(2)
    draws = np.clip(np.column_stack([
        p.prior.sample(rng, size=1000) if p.prior is not None and not p.fixed
        else np.full(1000, p.value) for p in model.parameters]), compiled.lower, compiled.upper)
    values = compiled.evaluate_expressions(draws)[0]
    lam, _, _, condition = eigendecompose(
        compiled.linear_system.matrix(values[:, compiled.rate_rows]))
    complex_pair = np.flatnonzero(lam.imag.any(axis=1) & (condition < CONDITION_LIMIT))
    ill = np.flatnonzero(~(condition < CONDITION_LIMIT))
    assert complex_pair.size and ill.size, "the draws no longer cover every kind of member"
    picked = np.r_[np.arange(2 * CHUNK), complex_pair[:2], ill[:1]]
    return compiled, draws[np.random.default_rng(0).permutation(picked)]


def test_a_mixed_batch_matches_each_member_solved_alone():
    """Real members in real arithmetic, complex ones in complex arithmetic, the ill-conditioned
    one with expm; each as when solved alone."""
    compiled, theta = mixed_batch()
    regimen = exopk.Regimen.bolus("intranasal", 100.0)
    with pytest.warns(exopk.errors.IllConditionedWarning):
        batch = evaluate(compiled, theta, TIMES, regimen, gradients=True)
    for b in range(len(theta)):
        alone = evaluate(compiled, theta[b:b + 1], TIMES, regimen, gradients=True)
        # relative to the member's largest amount (and per parameter, largest sensitivity):
        # the stacked and the single-set decompositions round differently, by up to the
        # condition number times eps relative to the dose
        scale = np.max(np.abs(alone.amounts))
        assert np.max(np.abs(batch.amounts[b:b + 1] - alone.amounts) / scale) < 1e-12
        d_scale = np.max(np.abs(alone.amount_sensitivities), axis=(1, 2), keepdims=True)
        error = np.abs(batch.amount_sensitivities[b:b + 1] - alone.amount_sensitivities)
        assert np.max(error / np.where(d_scale > 0, d_scale, 1.0)) < 1e-10


def test_compiled_bolus_response_matches_the_batched_products(monkeypatch):
    """The response to one bolus and its sensitivities, by the compiled loop (forced for
    the whole batch) and by numpy's batched products (forced), on the mixed batch (real and
    complex members; the ill-conditioned one goes through expm either way): values to 1e-12
    of each member's largest amount, sensitivities to 1e-10 of each parameter's largest."""
    compiled, theta = mixed_batch()
    regimen = exopk.Regimen.bolus("intranasal", 100.0)
    found = {}
    for name, work in (("compiled", np.inf), ("products", 0)):
        monkeypatch.setattr(linear, "COMPILED_RESPONSE_WORK", work)
        fresh = compile_model(compiled.model)          # no decomposition kept from before
        with pytest.warns(exopk.errors.IllConditionedWarning):
            found[name] = evaluate(fresh, theta, TIMES, regimen, gradients=True)
    scale = np.max(np.abs(found["products"].amounts), axis=(1, 2), keepdims=True)
    assert np.max(np.abs(found["compiled"].amounts - found["products"].amounts) / scale) < 1e-12
    d_scale = np.max(np.abs(found["products"].amount_sensitivities), axis=(1, 2), keepdims=True)
    error = np.abs(found["compiled"].amount_sensitivities
                   - found["products"].amount_sensitivities)
    assert np.max(error / np.where(d_scale > 0, d_scale, 1.0)) < 1e-10


@pytest.mark.parametrize("kind", ["time_to_half", "time_of_peak"])
def test_times_of_a_mixed_batch_match_each_member_alone(kind):
    """The modal sums of the root searches: real members in real arithmetic."""
    from exopk.engine import summaries
    from exopk.engine.simulation import dose_inputs
    compiled, theta = mixed_batch()
    regimen = exopk.Regimen.bolus("intranasal", 100.0)
    at_start = evaluate(compiled, theta[:1], np.array([0.0, 60.0]), regimen).outputs[0]
    # the dosed site falls from its start; plasma rises to a peak
    output = compiled.model.output_names[int(np.argmax(
        at_start[0] if kind == "time_to_half" else at_start[1] - at_start[0]))]

    def times(t):
        values, jacobian = compiled.evaluate_expressions(t, derivatives=True)
        dose = dose_inputs(compiled, regimen, values, jacobian)[0]
        return getattr(summaries, kind)(
            compiled, compiled.linear_system, values[:, compiled.rate_rows],
            jacobian[:, compiled.rate_rows], dose.vector, dose.jacobian, output, values,
            jacobian, regimen)

    t, dt = times(theta)
    for b in range(len(theta)):
        t_alone, dt_alone = times(theta[b:b + 1])
        assert abs(t[b] - t_alone[0]) <= 1e-12 * t_alone[0]
        assert np.max(np.abs(dt[b] - dt_alone[0])) <= 1e-10 * np.max(np.abs(dt_alone[0]))


def test_similar_derivatives_are_those_of_the_dense_matrix_derivatives(shipped_model):
    """``V^-1 dA_p V`` from the rank-one transfers (compiled) against ``V^-1 @ dA_p @ V`` with
    the dense ``dA_p`` of every parameter, for real and complex eigenvectors, in a batch of
    16 (1e-12 of each member's largest entry)."""
    if not shipped_model.is_linear:
        pytest.skip("saturable models have one solver")
    compiled = compile_model(shipped_model)
    rng = np.random.default_rng(5)
    theta = exercised_parameters(shipped_model, seed=3)[None] * rng.uniform(0.7, 1.4, (16, 1))
    theta = np.clip(theta, compiled.lower, compiled.upper)
    values, jacobian = compiled.evaluate_expressions(theta)
    system = compiled.linear_system
    rate_jacobian = jacobian[:, compiled.rate_rows]
    lam, V, V_inv, _ = system.decompose(system.matrix(values[:, compiled.rate_rows]))
    G = linear._similar_derivative(V, V_inv, rate_jacobian, system)
    dA = system.matrix_derivative(rate_jacobian)                            # (B, P, n, n)
    dense = np.einsum("bij,bpjk,bkl->bipl", V_inv, dA, V)
    scale = np.max(np.abs(dense), axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(G / scale, dense / scale, rtol=0, atol=1e-12)
    assert G.dtype == V.dtype


def test_repeated_doses_of_every_kind_match_expm_with_real_and_complex_modes():
    """Boluses, infusions and a dose split by parameters, each given several times, are taken
    together per kind; members with real and with complex modes agree with ``expm`` (which
    steps from dose to dose) on values and sensitivities."""
    compiled, theta = mixed_batch()
    from exopk.engine.eigen import eigendecompose
    from exopk.engine.linear import CONDITION_LIMIT
    values = compiled.evaluate_expressions(theta)[0]
    lam, _, _, condition = eigendecompose(
        compiled.linear_system.matrix(values[:, compiled.rate_rows]))
    good = condition < CONDITION_LIMIT
    picked = [np.flatnonzero(good & ~lam.imag.any(axis=1))[0],
              np.flatnonzero(good & lam.imag.any(axis=1))[0]]
    regimen = (exopk.Regimen.repeated("intranasal", 100.0, interval=90.0, count=4)
               + exopk.Regimen.repeated("iv", 20.0, interval=300.0, count=3)
               + exopk.Regimen.infusion("iv", 50.0, duration=30.0, time=10.0)
               + exopk.Regimen.infusion("iv", 40.0, duration=60.0, time=500.0))
    for b in picked:
        eigen = evaluate(compiled, theta[b:b + 1], TIMES, regimen, gradients=True, path="eigen")
        expm = evaluate(compiled, theta[b:b + 1], TIMES, regimen, gradients=True, path="expm")
        scale = np.max(np.abs(expm.amounts))
        assert np.max(np.abs(eigen.amounts - expm.amounts)) <= 1e-11 * scale
        d_scale = np.max(np.abs(expm.amount_sensitivities), axis=(0, 1, 2), keepdims=True)
        error = np.abs(eigen.amount_sensitivities - expm.amount_sensitivities)
        assert np.max(error / np.where(d_scale > 0, d_scale, 1.0)) <= 1e-9


def _first_half_crossing(lam, w):
    """The first root of ``Re sum_i w_i exp(lam_i t) - y(0) / 2``, by brentq in the first
    bracket of a 20,000-point log grid from 1e-8 to 1e8 of the slowest time constant."""
    def excess(t):
        return (w * np.exp(lam * t)).sum().real - 0.5 * w.sum().real
    slowest = 1.0 / np.abs(lam.real[lam.real != 0]).min()
    grid = np.concatenate([[0.0], np.geomspace(1e-8 * slowest, 1e8 * slowest, 20_000)])
    values = np.array([excess(t) for t in grid])
    k = np.flatnonzero(~(values > 0))[0]
    return scipy.optimize.brentq(excess, grid[k - 1], grid[k], xtol=1e-300, rtol=1e-15)


def test_halving_time_of_a_batch_matches_a_root_finder_member_by_member():
    """Members that fall, that rise before they fall (a negative weight) and that oscillate (a
    complex pair), in one complex batch: each time is the first root of ``y(t) - y(0) / 2``
    found by brentq to 1e-12, is that of the member alone and of a real batch bit for bit
    (members are searched one by one, real ones in real arithmetic), and single exponentials
    give their half-life ``ln 2 / k``."""
    from exopk.engine import summaries
    rng = np.random.default_rng(11)
    batch = 60
    # a fast fall to a plateau of height h, then a slow decay, over many time scales
    fast = -10.0 ** rng.uniform(-2, 0, batch)
    slow = fast * 10.0 ** rng.uniform(-8, -1, batch)
    plateau = rng.uniform(0.01, 0.95, batch)
    lam = np.column_stack([fast, slow, 0.5 * fast, 0.5 * fast]).astype(complex)
    w = np.column_stack([1.0 - plateau, plateau, np.zeros(batch), np.zeros(batch)]).astype(
        complex)
    rising = np.arange(batch) % 3 == 1          # a negative weight: y rises before it falls
    w[rising, 0] += 0.1
    w[rising, 2] = -0.1
    oscillating = np.arange(batch) % 3 == 2     # a complex pair of modes and weights
    pair = 0.3j * np.abs(fast[oscillating])
    lam[oscillating, 2], lam[oscillating, 3] = lam[oscillating, 2] + pair, \
        lam[oscillating, 3] - pair
    w[oscillating, 2], w[oscillating, 3] = 0.05 + 0.02j, 0.05 - 0.02j
    w[oscillating, 0] -= 0.1
    single = np.arange(batch) % 3 == 0
    single[12:] = False
    lam[single, 1], w[single] = lam[single, 0], [0.5, 0.5, 0.0, 0.0]
    t = summaries.halving_time(lam, w, lam, "y")
    for b in range(batch):
        assert abs(t[b] - _first_half_crossing(lam[b], w[b])) <= 1e-12 * t[b]
        assert summaries.halving_time(lam[b:b + 1], w[b:b + 1], lam[b:b + 1], "y")[0] == t[b]
    np.testing.assert_allclose(t[single], np.log(2) / -fast[single], rtol=1e-13)
    # members with real modes in a real batch: the same times as in the complex batch
    real = np.flatnonzero(~oscillating)
    np.testing.assert_array_equal(summaries.halving_time(lam[real].real, w[real].real,
                                                         lam[real].real, "y"), t[real])


@pytest.mark.parametrize("change, message", [
    ("flat", "never falls to half"), ("negative", "is not positive at time 0"),
    ("still", "does not decay"), ("nan mode", "has modes or weights that are not finite"),
    ("infinite mode", "has modes or weights that are not finite"),
    ("nan weight", "has modes or weights that are not finite")])
def test_halving_time_names_what_keeps_an_output_from_halving(change, message):
    from exopk.engine import summaries
    lam = np.tile([-1.0, -0.1, -2.0], (6, 1))
    w = np.tile([0.5, 0.3, 0.2], (6, 1))
    if change == "flat":        # a mode at 0 carries the whole output: it stays at its start
        lam[4], w[4] = [-1.0, 0.0, -1.0], [0.0, 1.0, 0.0]
    elif change == "negative":
        w[4] = -w[4]
    elif change == "still":
        lam[4] = 0.0
    elif change == "nan mode":
        lam[4, 1] = np.nan
    elif change == "infinite mode":
        lam[4, 0] = -np.inf
    else:
        w[4, 2] = np.nan
    with pytest.raises(exopk.errors.SimulationError, match=f"output 'y' {message}"):
        summaries.halving_time(lam, w, lam, "y")


def test_a_small_batch_is_decomposed_member_by_member_as_the_stacked_one():
    """Up to MEMBER_BY_MEMBER sets, real and complex spectra together: each member's
    eigenvalues are the stacked decomposition's, ``V diag(lam) V^-1`` gives back ``A``, and
    the condition numbers agree."""
    from exopk.engine.eigen import MEMBER_BY_MEMBER, eigendecompose, stacked_eigendecompose
    compiled, theta = mixed_batch()
    values = compiled.evaluate_expressions(theta)[0]
    A = compiled.linear_system.matrix(values[:, compiled.rate_rows])
    lam_all = np.linalg.eigvals(A)
    pick = np.r_[np.flatnonzero(~lam_all.imag.any(axis=1))[:MEMBER_BY_MEMBER - 1],
                 np.flatnonzero(lam_all.imag.any(axis=1))[:1]]
    small = A[pick]
    lam, V, V_inv, condition = eigendecompose(small)
    assert np.iscomplexobj(lam) and lam.shape == (MEMBER_BY_MEMBER, A.shape[1])
    stacked_lam, stacked_V, stacked_V_inv = stacked_eigendecompose(small)
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(stacked_lam),
                               rtol=1e-12, atol=1e-14 * np.abs(stacked_lam).max())
    rebuilt = (V * lam[:, None, :]) @ V_inv
    assert np.max(np.abs(rebuilt - small)) < 1e-12 * np.abs(small).max()
    stacked_condition = np.array([np.linalg.norm(v, 1) * np.linalg.norm(w, 1)
                                  for v, w in zip(stacked_V, stacked_V_inv)])
    np.testing.assert_allclose(condition, stacked_condition, rtol=1e-8)
