"""Observation models against hand-computed values and finite differences."""

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import xarray as xr

import exopk
import exopk.data
from conftest import DATA
from exopk.engine import compile_model
from exopk.observation import (ErrorModel, Likelihood, Observation, Request, build_observations,
                               predict)

CL, V = 0.5, 2.0
K = CL / V


@pytest.fixture
def one_compartment():
    return exopk.load_model(exopk.model_path("m0_one_compartment"))


def predict_one(model, requests, parameters, dose=100.0, gradients=False):
    compiled = compile_model(model)
    theta = compiled.parameter_matrix(parameters)
    return predict(compiled, theta, exopk.Regimen.bolus("iv", dose), requests, gradients=gradients)


def test_one_compartment_summaries_match_closed_forms(one_compartment):
    out = "plasma_concentration"
    requests = [Request("half_life", out), Request("elimination_rate", out), Request("auc", out),
                Request("auc_to", out, 3.0), Request("mrt", out), Request("clearance", out),
                Request("vss", out), Request("volume_terminal", out),
                Request("fraction_cleared", "plasma_percent_id", 3.0),
                Request("value", "plasma_percent_id", 3.0)]
    values, _ = predict_one(one_compartment, requests, {"CL": CL, "V_plasma": V}, dose=10.0)
    expected = [math.log(2) * V / CL, K, 10.0 / CL, 10.0 / CL * (1 - math.exp(-3 * K)), V / CL, CL,
                V, V, 100 * (1 - math.exp(-3 * K)), 100 * math.exp(-3 * K)]
    np.testing.assert_allclose(values[0], expected, rtol=1e-12)


TWO_COMPARTMENT = {"CL": 0.3, "Q": 0.1, "V_plasma": 1.5, "V_peripheral": 4.0}


def two_compartment_rates():
    """``alpha``, ``beta`` and ``k21`` of TWO_COMPARTMENT (IV bolus into the central volume)."""
    cl, q, v1, v2 = TWO_COMPARTMENT.values()
    k10, k12, k21 = cl / v1, q / v1, q / v2
    b = k10 + k12 + k21
    root = math.sqrt(b * b - 4 * k21 * k10)
    return (b + root) / 2, (b - root) / 2, k21


def test_two_compartment_half_lives_and_volumes_match_closed_forms():
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    cl, _, v1, v2 = TWO_COMPARTMENT.values()
    alpha, beta, _ = two_compartment_rates()
    out = "plasma_concentration"
    requests = [Request("half_life_alpha", out), Request("half_life", out), Request("vss", out),
                Request("mrt", out), Request("volume_terminal", out)]
    values, _ = predict_one(model, requests, TWO_COMPARTMENT)
    np.testing.assert_allclose(values[0], [math.log(2) / alpha, math.log(2) / beta, v1 + v2,
                                           (v1 + v2) / cl, cl / beta], rtol=1e-10)


def test_time_to_half_solves_the_biexponential_closed_form():
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    alpha, beta, k21 = two_compartment_rates()
    # C(t) / C(0) = ((alpha - k21) exp(-alpha t) + (k21 - beta) exp(-beta t)) / (alpha - beta)
    def ratio(t):
        return ((alpha - k21) * math.exp(-alpha * t) + (k21 - beta) * math.exp(-beta * t)) \
            / (alpha - beta)
    expected = scipy.optimize.brentq(lambda t: ratio(t) - 0.5, 0.0, 100.0, xtol=1e-15, rtol=1e-15)
    values, _ = predict_one(model, [Request("time_to_half", "plasma_concentration")],
                            TWO_COMPARTMENT)
    assert values[0, 0] == pytest.approx(expected, rel=1e-12)


def test_repeated_requests_are_answered_in_the_order_asked(one_compartment):
    """A request asked twice is computed once and answered at both places, values and
    derivatives: the plasma %ID at 10 min, ``100 exp(-10 K)``, and the AUC, ``D / CL``."""
    value, auc = Request("value", "plasma_percent_id", 10.0), Request("auc", "plasma_concentration")
    values, jacobian = predict_one(one_compartment, [auc, value, auc, value],
                                   {"CL": CL, "V_plasma": V}, gradients=True)
    np.testing.assert_allclose(values[0], [100 / CL, 100 * math.exp(-10 * K)] * 2, rtol=1e-13)
    np.testing.assert_array_equal(jacobian[0, :2], jacobian[0, 2:])


def test_time_to_half_of_one_compartment_is_the_half_life(one_compartment):
    values, _ = predict_one(one_compartment, [Request("time_to_half", "plasma_concentration")],
                            {"CL": CL, "V_plasma": V})
    assert values[0, 0] == pytest.approx(math.log(2) / K, rel=1e-13)


def test_time_to_half_is_continuous_where_the_terminal_half_life_jumps():
    """Along a line in m5_intranasal parameter space a slow mode's weight crosses the floor, so
    the terminal half-life jumps; the time to half changes smoothly."""
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    compiled = compile_model(model)
    free = [i for i, p in enumerate(model.parameters) if not p.fixed]
    rng = np.random.default_rng(1)
    start = compiled.nominal.copy()
    start[free] *= np.exp(rng.normal(0, 1.0, len(free)))
    start = np.clip(start, compiled.lower * 1.0001 + 1e-12, compiled.upper * 0.9999)
    direction = np.zeros_like(start)
    direction[free] = rng.normal(0, 1, len(free))
    theta = start[None] * np.exp(np.linspace(0, 1, 801)[:, None] * direction[None])
    theta = np.clip(theta, compiled.lower, compiled.upper * 0.9999)
    requests = [Request("half_life", "blood_concentration"),
                Request("time_to_half", "blood_concentration")]
    values, _ = predict(compiled, theta, exopk.Regimen.bolus("iv", 100.0), requests)
    steps = np.abs(np.diff(np.log(values), axis=0)).max(axis=0)
    assert steps[0] > 1.0          # a jump of more than a factor e in 1/800 of the line
    assert steps[1] < 0.01


@pytest.mark.parametrize("name", ["m1_two_compartment", "m2_mps", "m5_intranasal"])
def test_prediction_gradients_match_finite_differences(name):
    model = exopk.load_model(exopk.model_path(name))
    compiled = compile_model(model)
    circulation = "plasma_concentration" if name.startswith("m1") else "blood_concentration"
    requests = [Request(k, circulation) for k in
                ("half_life", "half_life_alpha", "time_to_half", "auc", "mrt", "clearance",
                 "vss", "elimination_rate", "volume_terminal")]
    requests += [Request("auc_to", circulation, 20.0), Request("value", circulation, 7.0),
                 Request("fraction_cleared", "plasma_percent_id", 5.0)]
    rng = np.random.default_rng(5)
    theta = compiled.nominal * np.exp(rng.normal(0, 0.2, compiled.nominal.size))
    theta[compiled.nominal == 0] = 0.0
    regimen = exopk.Regimen.bolus("iv", 100.0)
    values, jacobian = predict(compiled, theta[None], regimen, requests, gradients=True)
    # a half_life_alpha is NaN where the output shows a single mode (m2, m5: no release)
    defined = np.isfinite(values[0])
    assert defined.sum() >= len(requests) - 1
    for p, pname in enumerate(compiled.parameter_names):
        if theta[p] == 0:
            continue
        h = 1e-5 * theta[p]
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        fd = (predict(compiled, up[None], regimen, requests)[0]
              - predict(compiled, down[None], regimen, requests)[0])[0] / (2 * h)
        # derivatives that vanish are compared on the natural scale value / parameter
        scale = np.maximum(np.abs(fd), 1e-4 * np.abs(values[0]) / theta[p])
        error = np.abs(jacobian[0, :, p] - fd)[defined] / scale[defined]
        assert error.max() < 1e-5, (pname, error)


def observation(censoring, value, upper=float("nan"), sigma=0.2, kind="half_life"):
    return Observation("study", 2, Request(kind, "plasma_concentration"), "iv", "", value, upper,
                       censoring, sigma)


def test_log_likelihood_terms_match_scipy(one_compartment):
    y = math.log(2) * V / CL
    tau = 0.3
    sigma = math.sqrt(0.2**2 + tau**2)
    cases = [
        (observation("none", 3.0), scipy.stats.lognorm(s=sigma, scale=y).logpdf(3.0)),
        (observation("upper", 10.0), scipy.stats.norm.logcdf((math.log(10) - math.log(y)) / sigma)),
        (observation("lower", 1.0), scipy.stats.norm.logsf((math.log(1) - math.log(y)) / sigma)),
        (observation("interval", 2.0, 4.0),
         math.log(scipy.stats.lognorm(s=sigma, scale=y).cdf(4.0)
                  - scipy.stats.lognorm(s=sigma, scale=y).cdf(2.0))),
    ]
    for obs, expected in cases:
        value, _ = Likelihood(one_compartment, [obs]).evaluate({"CL": CL, "V_plasma": V}, tau=tau)
        assert value == pytest.approx(expected, rel=1e-12), obs.censoring


def test_log_likelihood_gradient_matches_finite_differences_for_every_censoring(one_compartment):
    observations = [observation("none", 3.0), observation("upper", 2.0),
                    observation("lower", 3.5), observation("interval", 1.0, 2.5),
                    observation("none", 0.3, kind="clearance")]
    likelihood = Likelihood(one_compartment, observations)
    theta = np.array([0.7, 1.6, 0.0])
    tau = 0.25
    _, gradient = likelihood.evaluate(theta, tau=tau)
    for p in range(2):
        h = 1e-6
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        fd = (likelihood.evaluate(up, tau=tau, gradients=False)[0]
              - likelihood.evaluate(down, tau=tau, gradients=False)[0]) / (2 * h)
        assert gradient[p] == pytest.approx(fd, rel=1e-6)
    fd_tau = (likelihood.evaluate(theta, tau=tau + 1e-6, gradients=False)[0]
              - likelihood.evaluate(theta, tau=tau - 1e-6, gradients=False)[0]) / 2e-6
    assert gradient[-1] == pytest.approx(fd_tau, rel=1e-6)


def test_error_model_reads_sd_sem_and_unstated_errors():
    sem = ErrorModel()
    assert sem.sigma_log(10.0, 1.0, "SEM", 4) == pytest.approx(math.sqrt(math.log(1.01)))
    assert sem.sigma_log(10.0, 2.0, "SD", 4) == pytest.approx(math.sqrt(math.log(1.01)))
    assert sem.sigma_log(10.0, 1.0, "unstated", 4) == pytest.approx(math.sqrt(math.log(1.01)))
    assert ErrorModel(unstated_as="sd").sigma_log(10.0, 2.0, "unstated", 4) == \
        pytest.approx(math.sqrt(math.log(1.01)))
    assert sem.sigma_log(10.0, float("nan"), "none", float("nan")) == 0.0


def records(rows):
    """A small evidence dataset in the packaged layout."""
    fields = {"study_key": "s", "species": "mouse", "route": "iv", "matrix": "plasma",
              "quantity": "half_life", "statistic": "mean", "unit": "min", "unit_canonical": "min",
              "error_type": "none", "label": "", "condition": "", "strain": "", "ev_source": "",
              "dose": "", "time": np.nan, "time_min": np.nan, "error_canonical": np.nan,
              "n": np.nan, "usable": True, "is_proxy": False}
    full = [{**fields, **row, "line": i + 2} for i, row in enumerate(rows)]
    return xr.Dataset({k: ("record", [r[k] for r in full]) for k in full[0]})


def test_records_become_censored_interval_and_ci_observations(one_compartment):
    ds = records([
        {"statistic": "upper_bound", "value_canonical": 10.0},
        {"statistic": "range_low", "value_canonical": 2.0},
        {"statistic": "range_high", "value_canonical": 5.0},
        {"statistic": "point", "value_canonical": 4.0},
        {"statistic": "ci95_low", "value_canonical": 2.0},
        {"statistic": "ci95_high", "value_canonical": 8.0},
        {"statistic": "mean", "value_canonical": 4.0, "error_canonical": 1.0, "error_type": "SD",
         "n": 4.0},
        {"quantity": "percent_id_per_organ", "matrix": "liver", "unit_canonical": "%ID/organ",
         "value_canonical": 30.0, "time_min": 60.0},
        {"quantity": "half_life", "route": "sc", "value_canonical": 4.0},
    ])
    observations, skipped = build_observations(ds, one_compartment)
    assert [o.censoring for o in observations] == ["upper", "interval", "none", "none"]
    assert (observations[1].value, observations[1].upper) == (2.0, 5.0)
    assert observations[2].sigma_log == pytest.approx(math.log(4) / (2 * 1.959963984540054))
    assert observations[3].sigma_log == pytest.approx(math.sqrt(math.log1p(0.125**2)))
    assert [(s.line, s.reason.split(" ")[0]) for s in skipped] == [(9, "model"), (10, "route")]


def test_packaged_ev_evidence_builds_a_finite_likelihood_for_m2():
    model = exopk.load_model(exopk.model_path("m2_mps"))
    observations, skipped = build_observations(exopk.data.load("ev"), model)
    assert len(observations) >= 15 and all(not o.is_proxy for o in observations)
    assert all(s.reason for s in skipped)
    likelihood = Likelihood(model, observations,
                            conditions={"macrophage_depleted": {"macrophage_depletion": 1.0},
                                        "parkinson_model": {}})
    value, gradient = likelihood.evaluate(None, tau=0.5)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))


def test_transfer_fraction_of_an_intranasal_dose_matches_branching_ratio():
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    parameters = {"k_nasal_absorption": 0.002, "k_mucociliary": 0.05, "k_nose_to_brain": 0.0002}
    compiled = compile_model(model)
    theta = compiled.parameter_matrix(parameters)
    requests = [Request("transfer_fraction", "nasal->plasma"), Request("mrt", "nasal_percent_id")]
    values, jacobian = predict(compiled, theta, exopk.Regimen.bolus("intranasal", 100.0), requests,
                               gradients=True)
    total = 0.002 + 0.05 + 0.0002
    # first-order competing exits: share = k_abs / sum k; mean residence time = 1 / sum k
    np.testing.assert_allclose(values[0], [100 * 0.002 / total, 1 / total], rtol=1e-10)
    p = compiled.parameter_index["k_mucociliary"]
    np.testing.assert_allclose(jacobian[0, :, p], [-100 * 0.002 / total**2, -1 / total**2],
                               rtol=1e-8)
    with pytest.raises(exopk.errors.SimulationError, match="names no first-order transfer"):
        predict(compiled, theta, exopk.Regimen.bolus("intranasal", 100.0),
                [Request("transfer_fraction", "nasal->liver")])


def test_interval_terms_stay_exact_far_in_either_tail(one_compartment):
    import mpmath
    from exopk.observation import Likelihood
    mpmath.mp.dps = 50
    y = math.log(2) * V / CL          # model half-life, 2.77 min
    tau = 0.05
    sigma = math.sqrt(0.05**2 + tau**2)
    for low, high in ((30.0, 60.0), (0.2, 0.3)):   # about 34 and 38 sd away
        likelihood = Likelihood(one_compartment, [observation("interval", low, high, sigma=0.05)])
        value, gradient = likelihood.evaluate({"CL": CL, "V_plasma": V}, tau=tau)
        a = (mpmath.log(low) - mpmath.log(y)) / sigma
        b = (mpmath.log(high) - mpmath.log(y)) / sigma
        # mass between the ends, taken as a difference of upper-tail probabilities when the
        # interval lies above the prediction (50 digits would not survive 1 - 1e-250)
        mass = mpmath.ncdf(-a) - mpmath.ncdf(-b) if a > 0 else mpmath.ncdf(b) - mpmath.ncdf(a)
        exact = float(mpmath.log(mass))
        assert value == pytest.approx(exact, rel=1e-9)
        assert np.all(np.isfinite(gradient))


def test_saturable_model_observations_use_the_study_dose_in_the_model_unit(tmp_path):
    """A saturable model is never given an assumed dose: 10 ug stays 10 ug, 0.01 mg becomes
    10 ug, and a record without a convertible dose is skipped with the reason."""
    model = exopk.load_model(exopk.model_path("m2_mps_saturable"))   # amount unit ug
    header, liver = (DATA / "user_valid.csv").read_text().splitlines()[:2]
    rows = [liver, liver.replace(",10,ug,", ",0.01,mg,").replace("synthetic_a", "synthetic_b"),
            liver.replace(",10,ug,", ",3e9,particles,").replace("synthetic_a", "synthetic_c")]
    path = tmp_path / "doses.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    observations, skipped = build_observations(exopk.data.read_csv(path), model)
    doses = {o.study: [d.amount for d in o.design.doses] for o in observations}
    assert doses == {"synthetic_a": [10.0], "synthetic_b": [pytest.approx(10.0)]}
    assert [s.study for s in skipped] == ["synthetic_c"]
    assert "convertible to its amount unit 'ug'" in skipped[0].reason


def test_records_by_any_route_the_model_declares_become_observations(tmp_path):
    """A subcutaneous record reaches a model with an ``sc`` route; without one it is skipped."""
    text = exopk.model_path("m0_one_compartment").read_text()
    with_sc = tmp_path / "m0_sc.toml"
    with_sc.write_text(text + '\n[routes.sc]\nplasma = "1"\ndescription = "Test route."\n')
    header, liver = (DATA / "user_valid.csv").read_text().splitlines()[:3:2]
    path = tmp_path / "sc.csv"
    path.write_text("\n".join([header, liver.replace(",iv,", ",sc,")]) + "\n")
    records = exopk.data.read_csv(path)
    observations, _ = build_observations(records, exopk.load_model(with_sc))
    assert [o.route for o in observations] == ["sc"]
    shipped = exopk.load_model(exopk.model_path("m0_one_compartment"))
    _, skipped = build_observations(records, shipped)
    assert "route 'sc' is not a route of model" in skipped[0].reason
