"""The engine against textbook closed-form solutions and independent reference amounts."""

import warnings
import json

import numpy as np
import pytest

import exopk
from exopk.engine import compile_model
from exopk.model import Compartment, Model, Output, Parameter, Route, Transfer

from conftest import DATA


def absorption_model(peripheral: bool) -> Model:
    """Depot -> central (-> peripheral), built in Python like the reference solver's models."""
    compartments = [Compartment("GUT", kind="depot"), Compartment("CENT", kind="plasma", volume="V1")]
    transfers = [Transfer("GUT", "CENT", rate="ka"), Transfer("CENT", "out", clearance="CL")]
    parameters = [Parameter(n, 1.0, fixed=True) for n in ("CL", "V1", "ka")]
    if peripheral:
        compartments.append(Compartment("PERI", kind="tissue", volume="V2"))
        transfers += [Transfer("CENT", "PERI", clearance="Q"), Transfer("PERI", "CENT", clearance="Q")]
        parameters += [Parameter(n, 1.0, fixed=True) for n in ("Q", "V2")]
    compartments.append(Compartment("out", kind="sink"))
    return Model("absorption", tuple(compartments), tuple(transfers),
                 (Route("oral", {"GUT": "1"}), Route("iv", {"CENT": "1"})),
                 (Output("central", kind="amount", compartments=("CENT",)),
                  Output("conc", kind="concentration", compartments=("CENT",))),
                 tuple(parameters))


@pytest.fixture(params=["eigen", "expm"])
def path(request):
    return request.param


@pytest.fixture(params=["eigen", "expm", "structured"])
def values_path(request):
    """Solution paths for values only (the structured path computes no sensitivities)."""
    return request.param


def test_one_compartment_iv_bolus_matches_exponential_decay(values_path):
    model = absorption_model(False)
    t = np.array([0.0, 0.5, 3.0, 40.0])
    ds = exopk.simulate(model, {"CL": 10.0, "V1": 80.0, "ka": 1.2}, t, exopk.Regimen.bolus("iv", 1000.0), path=values_path)
    k = 10.0 / 80.0
    np.testing.assert_allclose(ds.value.sel(output="central"), 1000.0 * np.exp(-k * t), rtol=1e-12)
    np.testing.assert_allclose(ds.value.sel(output="conc"), 1000.0 / 80.0 * np.exp(-k * t), rtol=1e-12)


def test_one_compartment_infusion_matches_closed_form(values_path):
    model = absorption_model(False)
    T, D = 2.0, 600.0
    t = np.array([0.0, 0.7, 2.0, 3.5, 10.0])
    ds = exopk.simulate(model, {"CL": 10.0, "V1": 80.0, "ka": 1.2}, t,
                        exopk.Regimen.infusion("iv", D, duration=T), path=values_path)
    k, R = 10.0 / 80.0, D / T
    during = R / k * (1 - np.exp(-k * np.minimum(t, T)))
    expected = np.where(t <= T, during, R / k * (1 - np.exp(-k * T)) * np.exp(-k * (t - T)))
    np.testing.assert_allclose(ds.value.sel(output="central"), expected, rtol=1e-12, atol=1e-12)


def test_one_compartment_first_order_absorption_matches_bateman_function(values_path):
    model = absorption_model(False)
    t = np.array([0.0, 0.25, 1.0, 4.0, 24.0])
    ds = exopk.simulate(model, {"CL": 10.0, "V1": 80.0, "ka": 1.2}, t, exopk.Regimen.bolus("oral", 1000.0), path=values_path)
    k, ka = 10.0 / 80.0, 1.2
    expected = 1000.0 * ka / (ka - k) * (np.exp(-k * t) - np.exp(-ka * t))
    np.testing.assert_allclose(ds.value.sel(output="central"), expected, rtol=1e-12, atol=1e-12)


def test_absorption_with_equal_rates_uses_the_limit_t_exp(values_path):
    """ka = k makes the eigenvalues equal (a defective matrix): D k t exp(-k t). The dense path
    says so and takes expm; the structured path decomposes only the gut (the central
    compartment drains to a sink only) and needs no fallback."""
    model = absorption_model(False)
    t = np.array([0.0, 0.5, 2.0, 9.0])
    dense = values_path == "eigen"
    with pytest.warns(exopk.errors.IllConditionedWarning) if dense else warnings.catch_warnings():
        if not dense:
            warnings.simplefilter("error", exopk.errors.IllConditionedWarning)
        ds = exopk.simulate(model, {"CL": 12.0, "V1": 10.0, "ka": 1.2}, t, exopk.Regimen.bolus("oral", 100.0),
                            path="dense" if dense else values_path)
    np.testing.assert_allclose(ds.value.sel(output="central"), 100 * 1.2 * t * np.exp(-1.2 * t),
                               rtol=1e-9, atol=1e-12)


def test_two_compartment_iv_bolus_matches_biexponential(values_path):
    model = absorption_model(True)
    CL, Q, V1, V2, D = 5.0, 8.0, 20.0, 70.0, 1000.0
    t = np.array([0.0, 0.1, 1.0, 5.0, 30.0])
    ds = exopk.simulate(model, {"CL": CL, "Q": Q, "V1": V1, "V2": V2, "ka": 1.0}, t,
                        exopk.Regimen.bolus("iv", D), path=values_path)
    k10, k12, k21 = CL / V1, Q / V1, Q / V2
    b = k12 + k21 + k10
    alpha = (b + np.sqrt(b * b - 4 * k21 * k10)) / 2
    beta = (b - np.sqrt(b * b - 4 * k21 * k10)) / 2
    A = D / V1 * (alpha - k21) / (alpha - beta)
    B = D / V1 * (k21 - beta) / (alpha - beta)
    np.testing.assert_allclose(ds.value.sel(output="conc"), A * np.exp(-alpha * t) + B * np.exp(-beta * t),
                               rtol=1e-11)


def _reference_cases():
    cases = json.loads((DATA / "reference" / "linear_pk_reference_amounts.json").read_text())["cases"]
    return sorted(cases.items())


def _reference_regimen(name):
    if "steady_state" in name:
        return exopk.Regimen((exopk.Dose("oral", 1200.0, 0.0, steady_state_interval=12.0),)
                             + tuple(exopk.Dose("oral", 1200.0, 12.0 * k) for k in range(1, 11)))
    if "infusion" in name:
        return exopk.Regimen.repeated("oral", 1200.0, interval=12.0, count=15, duration=1.0)
    return exopk.Regimen.repeated("oral", 1000.0, interval=12.0, count=15)


@pytest.mark.parametrize("name,case", _reference_cases(), ids=[n for n, _ in _reference_cases()])
def test_amounts_match_independent_reference_solver(name, case, path):
    p = case["params"]
    peripheral = "Q" in p
    values = {"CL": p["CL"], "ka": p["ka"]}
    if peripheral:
        values.update(V1=p["V2_central"], V2=p["V3_peripheral"], Q=p["Q"])
    else:
        values["V1"] = p["V"]
    ds = exopk.simulate(absorption_model(peripheral), values, case["times"], _reference_regimen(name), path=path)
    got = ds.amount.sel(compartment=case["columns"]).values
    np.testing.assert_allclose(got, np.array(case["amounts"]), rtol=1e-6, atol=1e-12)


def test_bolus_response_at_own_times_matches_closed_forms_on_both_paths():
    """Each member at its own time; ka = k (defective) goes through expm, ka != k through the
    eigendecomposition: D ka/(ka-k) (exp(-k t) - exp(-ka t)), or D k t exp(-k t)."""
    compiled = compile_model(absorption_model(False))
    theta = compiled.parameter_matrix({"CL": np.array([12.0, 12.0]), "V1": np.array([10.0, 10.0]),
                                       "ka": np.array([1.2, 0.4])})
    values, jacobian = compiled.evaluate_expressions(theta)
    rates, rate_jacobian = values[:, compiled.rate_rows], jacobian[:, compiled.rate_rows]
    dose = np.zeros((2, len(compiled.state_names)))
    dose[:, compiled.state_index["GUT"]] = 100.0
    times = np.array([2.0, 3.0])
    amounts, sensitivities = compiled.linear_system.bolus_response_at(rates, rate_jacobian, dose,
                                                                      None, times)
    central = compiled.state_index["CENT"]
    k, t = 1.2, times[0]
    assert amounts[0, central] == pytest.approx(100 * k * t * np.exp(-k * t), rel=1e-9)
    ka, t = 0.4, times[1]
    assert amounts[1, central] == pytest.approx(100 * ka / (ka - k) * (np.exp(-k * t)
                                                                       - np.exp(-ka * t)), rel=1e-12)
    # d/d ka by central differences of the same call
    ka_column = compiled.parameter_index["ka"]
    for member in range(2):
        shifted = []
        for sign in (1, -1):
            moved = theta.copy()
            moved[:, ka_column] *= 1 + sign * 1e-4     # apart enough to keep eigenvectors sound
            v, j = compiled.evaluate_expressions(moved)
            shifted.append(compiled.linear_system.bolus_response_at(
                v[:, compiled.rate_rows], j[:, compiled.rate_rows], dose, None, times)[0])
        fd = (shifted[0] - shifted[1])[member, central] / (2e-4 * theta[member, ka_column])
        assert sensitivities[member, central, ka_column] == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("gradients", [False, True])
def test_percent_of_dose_refers_to_the_dose_given_so_far(path, gradients):
    """Two IV boluses (100 at 0, 50 at 30 min) into one compartment: %ID at t is the amount over
    the dose given by t (100 before the second dose, 150 after), 0 before the first."""
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    CL, V = 0.05, 1.5
    k = CL / V
    t = np.array([1.0, 29.0, 30.0, 31.0, 120.0])
    regimen = exopk.Regimen((exopk.Dose("iv", 100.0, 0.0), exopk.Dose("iv", 50.0, 30.0)))
    ds = exopk.simulate(model, {"CL": CL, "V_plasma": V}, t, regimen, gradients=gradients,
                        path=path)
    amount = 100.0 * np.exp(-k * t) + np.where(t >= 30.0, 50.0 * np.exp(-k * (t - 30.0)), 0.0)
    given = np.where(t >= 30.0, 150.0, 100.0)
    percent = ds.value.sel(output="plasma_percent_id").values
    np.testing.assert_allclose(percent, 100.0 * amount / given, rtol=1e-12)
    assert percent[0] == pytest.approx(100.0 * np.exp(-k), rel=1e-12)  # not diluted by dose 2
    eliminated = ds.value.sel(output="eliminated_percent_id").values
    np.testing.assert_allclose(percent + eliminated, 100.0, rtol=1e-12)  # a balance at all t
    np.testing.assert_allclose(ds.value.sel(output="plasma_concentration"), amount / V,
                               rtol=1e-12)
    if gradients:   # d %ID / d CL against central differences of the closed form
        h = 1e-7

        def closed(cl):
            kk = cl / V
            a = 100.0 * np.exp(-kk * t) + np.where(t >= 30.0, 50.0 * np.exp(-kk * (t - 30.0)), 0)
            return 100.0 * a / given
        fd = (closed(CL + h) - closed(CL - h)) / (2 * h)
        np.testing.assert_allclose(ds.sensitivity.sel(output="plasma_percent_id",
                                                      parameter="CL"), fd, rtol=1e-6)
    before = exopk.simulate(model, {"CL": CL, "V_plasma": V}, [0.0, 5.0],
                            exopk.Regimen((exopk.Dose("iv", 100.0, 10.0),)), path=path)
    np.testing.assert_array_equal(before.value.sel(output="plasma_percent_id"), [0.0, 0.0])
