"""The registry of prediction kinds, and its newest kind: the time of peak."""

import math

import numpy as np
import pytest

import exopk
import exopk.data
from exopk.engine import compile_model
from exopk.errors import SimulationError
from exopk.observation import KINDS, Request, build_observations, predict
from exopk.observation.records import kinds_for

from test_engine_closed_forms import absorption_model

KA, CL, V = 0.9, 10.0, 80.0     # ka 1/min, CL mL/min, V mL: ke = 0.125 / min


def peak(model, parameters, output, route="oral", gradients=True):
    compiled = compile_model(model)
    theta = compiled.parameter_matrix(parameters)
    values, jacobian = predict(compiled, theta, exopk.Regimen.bolus(route, 100.0),
                               [Request("time_of_peak", output)], gradients=gradients)
    return compiled, values[:, 0], None if jacobian is None else jacobian[:, 0]


@pytest.mark.parametrize("output", ["central", "conc"])
def test_time_of_peak_of_oral_absorption_is_the_closed_form(output):
    ke = CL / V
    t_max = math.log(KA / ke) / (KA - ke)
    compiled, t, dt = peak(absorption_model(False), {"CL": CL, "V1": V, "ka": KA}, output)
    assert t[0] == pytest.approx(t_max, rel=1e-12)
    # d t_max / d ka and d ke, by differentiating the closed form; ke = CL / V
    d_ka = (1 / KA - math.log(KA / ke) / (KA - ke)) / (KA - ke)
    d_ke = (-1 / ke + math.log(KA / ke) / (KA - ke)) / (KA - ke)
    expected = {"ka": d_ka, "CL": d_ke / V, "V1": -d_ke * CL / V**2}
    for name, value in expected.items():
        assert dt[0, compiled.parameter_index[name]] == pytest.approx(value, rel=1e-9)


def test_time_of_peak_derivative_matches_finite_differences_on_a_shipped_model():
    value, checked = _finite_differences("m5_intranasal",
                                         Request("time_of_peak", "brain_percent_id"),
                                         route="intranasal")
    assert 0 < value < np.inf and checked >= 5


def test_time_of_peak_is_zero_where_the_output_only_falls():
    compiled, t, dt = peak(absorption_model(False), {"CL": CL, "V1": V, "ka": KA}, "conc",
                           route="iv")
    assert t[0] == 0.0
    assert not dt.any()


def test_time_of_peak_is_a_single_dose_summary():
    model = absorption_model(False)
    compiled = compile_model(model)
    theta = compiled.parameter_matrix({"CL": CL, "V1": V, "ka": KA})
    request = Request("time_of_peak", "central")
    with pytest.raises(SimulationError, match="boluses given at time 0"):
        predict(compiled, theta, exopk.Regimen.infusion("oral", 100.0, duration=5.0), [request])


def test_every_kind_is_one_entry_with_its_function_and_its_evidence():
    for name, kind in KINDS.items():
        assert kind.name == name and callable(kind.compute)
        assert kind.units, name
        assert (kind.course is None) == (kind.course_times is None), name
    assert [k.name for k in kinds_for("auc")] == ["auc_to", "auc"]
    assert [k.name for k in kinds_for("time_of_peak")] == ["time_of_peak"]
    assert kinds_for("secretion_rate") == ()
    with pytest.raises(SimulationError, match="needs a time"):
        Request("value", "plasma_percent_id")
    with pytest.raises(SimulationError, match="takes no time"):
        Request("time_of_peak", "plasma_percent_id", 5.0)
    with pytest.raises(SimulationError, match="unknown prediction kind 'peak'"):
        Request("peak", "plasma_percent_id")


def test_time_of_peak_records_become_observations():
    """Falcone 2014's times of peak are recorded per brain region; with the region read as the
    whole brain they become time-of-peak observations of the brain output."""
    proxies = exopk.data.load("proxies")
    rows = np.flatnonzero((proxies["quantity"].values.astype(str) == "time_of_peak")
                          & (proxies["study_key"].values.astype(str) == "falcone2014"))
    records = proxies.isel(record=rows).copy()
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    observations, skipped = build_observations(records, model)
    assert observations == [] and len(skipped) == len(rows)
    assert all("no output for matrix 'brain:" in s.reason for s in skipped)
    records["matrix"] = ("record", np.array(["brain"] * len(rows), dtype=object))
    observations, skipped = build_observations(records, model)
    assert skipped == []
    assert [o.request for o in observations] == [Request("time_of_peak", "brain_percent_id")] * 2
    assert sorted(o.value for o in observations) == [5.0, 60.0]


def test_a_time_of_peak_where_the_bolus_lands_is_set_aside():
    """Jy 2015: blood peaks 1 min after an IV injection that lasted 1 min; the bolus design puts
    that peak at 0 for every parameter set, so the record cannot inform a fit."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    observations, skipped = build_observations(exopk.data.load("ev"), model)
    assert not [o for o in observations if o.request.kind == "time_of_peak"]
    reasons = [s.reason for s in skipped if s.study == "jy2015_ash"]
    assert len(reasons) == 1 and "time of peak is 0 for every parameter set" in reasons[0]


# -- mean residence time to the last sample -------------------------------------------------------
def _kind(model, parameters, request, route="iv", gradients=True):
    compiled = compile_model(model)
    theta = compiled.parameter_matrix(parameters)
    values, jacobian = predict(compiled, theta, exopk.Regimen.bolus(route, 100.0), [request],
                               gradients=gradients)
    return compiled, values[0, 0], None if jacobian is None else jacobian[0, 0]


def _complex_step(function, parameters, name, h=1e-30):
    """d function / d parameter by the complex step (exact to rounding for analytic functions)."""
    shifted = dict(parameters, **{name: parameters[name] + 1j * h})
    return function(**shifted).imag / h


def _matches_closed_form(model, parameters, request, closed_form):
    """The kind's value and exact derivatives against a closed form and its complex step."""
    compiled, value, derivative = _kind(model, parameters, request)
    assert value == pytest.approx(closed_form(**parameters), rel=1e-10)
    for name in parameters:
        expected = _complex_step(closed_form, parameters, name)
        assert derivative[compiled.parameter_index[name]] == pytest.approx(expected, rel=1e-8,
                                                                            abs=1e-12)


def _mrt_last_of_modes(weights, rates, T):
    """AUMC / AUC over [0, T] of sum_i w_i exp(-l_i t)."""
    area = sum(w * (1 - np.exp(-l * T)) / l for w, l in zip(weights, rates))
    first = sum(w * (1 - np.exp(-l * T) * (1 + l * T)) / l**2 for w, l in zip(weights, rates))
    return first / area


def _one_compartment_mrt_last(CL, V1, ka, T):
    return _mrt_last_of_modes([1.0], [CL / V1], T)


def _two_compartment_mrt_last(CL, Q, V1, V2, ka, T):
    k10, k12, k21 = CL / V1, Q / V1, Q / V2
    b = k12 + k21 + k10
    alpha = (b + np.sqrt(b * b - 4 * k21 * k10)) / 2
    beta = (b - np.sqrt(b * b - 4 * k21 * k10)) / 2
    return _mrt_last_of_modes([(alpha - k21) / (alpha - beta), (k21 - beta) / (alpha - beta)],
                              [alpha, beta], T)


@pytest.mark.parametrize("T", [2.0, 15.0, 90.0])
def test_mrt_last_of_one_compartment_is_the_closed_form(T):
    _matches_closed_form(absorption_model(False), {"CL": CL, "V1": V, "ka": KA},
                         Request("mrt_last", "conc", T),
                         lambda **p: _one_compartment_mrt_last(**p, T=T))


@pytest.mark.parametrize("T", [5.0, 60.0])
def test_mrt_last_of_two_compartments_is_the_closed_form(T):
    _matches_closed_form(absorption_model(True),
                         {"CL": 5.0, "Q": 8.0, "V1": 20.0, "V2": 70.0, "ka": 1.0},
                         Request("mrt_last", "conc", T),
                         lambda **p: _two_compartment_mrt_last(**p, T=T))


def test_mrt_last_reaches_the_mrt_and_is_below_it_before():
    model = absorption_model(True)
    parameters = {"CL": 5.0, "Q": 8.0, "V1": 20.0, "V2": 70.0, "ka": 1.0}
    _, mrt, _ = _kind(model, parameters, Request("mrt", "conc"))
    _, late, _ = _kind(model, parameters, Request("mrt_last", "conc", 1e4))
    _, early, _ = _kind(model, parameters, Request("mrt_last", "conc", 30.0))
    assert late == pytest.approx(mrt, rel=1e-9) and early < 0.5 * mrt


def _finite_differences(model_name, request, route="iv", skip=("macrophage_depletion",)):
    """Exact derivative against central differences, parameter by parameter."""
    compiled = compile_model(exopk.load_model(exopk.model_path(model_name)))
    theta = compiled.nominal.copy()
    regimen = exopk.Regimen.bolus(route, 100.0)
    value, jacobian = predict(compiled, theta[None], regimen, [request], gradients=True)
    checked = 0
    for p, name in enumerate(compiled.parameter_names):
        if theta[p] == 0 or name in skip:
            continue
        h = 1e-5 * theta[p]
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        try:
            fd = (predict(compiled, up[None], regimen, [request])[0][0, 0]
                  - predict(compiled, down[None], regimen, [request])[0][0, 0]) / (2 * h)
        except SimulationError:
            continue    # a step outside the parameter's bounds
        scale = 1e-9 * value[0, 0] / theta[p]
        assert jacobian[0, 0, p] == pytest.approx(fd, rel=1e-5, abs=scale), name
        checked += 1
    return value[0, 0], checked


def test_mrt_last_derivative_matches_finite_differences_on_a_shipped_model():
    value, checked = _finite_differences("m2_mps_sinusoidal",
                                         Request("mrt_last", "blood_concentration", 240.0))
    assert 0 < value < 240.0 and checked >= 10


def test_mrt_last_needs_a_positive_time_and_a_draining_output():
    model = absorption_model(False)
    with pytest.raises(SimulationError, match="last sampling time above 0"):
        _kind(model, {"CL": CL, "V1": V, "ka": KA}, Request("mrt_last", "conc", 0.0))
    with pytest.raises(SimulationError, match="never drains"):
        _kind(exopk.load_model(exopk.model_path("m0_one_compartment")), {},
              Request("mrt_last", "eliminated_percent_id", 10.0))


def test_an_mrt_last_without_its_last_sampling_time_is_set_aside():
    """kim2019_review_ref26 prints an MRT to the last sample without the last sampling time."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    observations, skipped = build_observations(exopk.data.load("ev"), model)
    assert not [o for o in observations if o.request.kind == "mrt_last"]
    reasons = [s.reason for s in skipped if s.study == "kim2019_review_ref26"]
    assert reasons == ["mrt_last needs the last sampling time, tlast (column 'time'), which the "
                       "record does not give"]


# -- macrophage share of an organ's uptake --------------------------------------------------------
def _capture_model():
    """Plasma -> pool S -> internalised L (macrophage share f removed by depletion) -> out."""
    from exopk.model import Compartment, Model, Output, Parameter, Route, Transfer
    compartments = (Compartment("plasma", kind="plasma", volume="1"),
                    Compartment("S", kind="tissue", volume="1"),
                    Compartment("L", kind="tissue", volume="1"), Compartment("out", kind="sink"))
    transfers = (Transfer("plasma", "S", rate="k1"), Transfer("plasma", "out", rate="ke"),
                 Transfer("S", "L", rate="k3 * (1 - f * macrophage_depletion)"),
                 Transfer("L", "out", rate="k4"))
    parameters = tuple(Parameter(n, 1.0, fixed=True) for n in ("k1", "ke", "k3", "k4", "f")) + (
        Parameter("macrophage_depletion", 0.0, fixed=True),)
    return Model("capture", compartments, transfers, (Route("iv", {"plasma": "1"}),),
                 (Output("organ", kind="percent_id", compartments=("S", "L")),), parameters)


def _capture_share(k1, ke, k3, k4, f, T):
    a = k1 + ke
    S = k1 * (np.exp(-a * T) - np.exp(-k3 * T)) / (k3 - a)
    L = k1 * k3 * (np.exp(-a * T) / ((k3 - a) * (k4 - a)) + np.exp(-k3 * T) / ((a - k3) * (k4 - k3))
                   + np.exp(-k4 * T) / ((a - k4) * (k3 - k4)))
    return 100 * f * L / (S + L)


def test_fraction_of_uptake_of_a_two_step_capture_is_the_closed_form():
    _matches_closed_form(_capture_model(), {"k1": 0.3, "ke": 0.1, "k3": 0.05, "k4": 0.01, "f": 0.8},
                         Request("fraction_of_uptake", "organ", 30.0),
                         lambda **p: _capture_share(**p, T=30.0))


def test_fraction_of_uptake_is_the_macrophage_share_of_direct_uptake():
    """m2_mps: the liver takes vesicles up from blood only, so macrophages hold the share
    f_macrophage_liver of its content (free label included) at every time; none after
    depletion."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    request = Request("fraction_of_uptake", "liver_label_percent_id", 30.0)
    compiled, value, derivative = _kind(model, {"f_macrophage_liver": 0.7}, request)
    assert value == pytest.approx(70.0, rel=1e-12)
    expected = np.zeros(len(compiled.parameter_names))
    expected[compiled.parameter_index["f_macrophage_liver"]] = 100.0
    # partial depletion d leaves the share f (1 - d) / (1 - f d): slope -f (1 - f) at d = 0
    expected[compiled.parameter_index["macrophage_depletion"]] = -100 * 0.7 * 0.3
    np.testing.assert_allclose(derivative, expected, atol=1e-9)
    _, depleted, _ = _kind(model, {"macrophage_depletion": 1.0}, request)
    assert depleted == 0.0


def test_fraction_of_uptake_derivative_matches_finite_differences_on_a_shipped_model():
    value, checked = _finite_differences(
        "m2_mps_sinusoidal", Request("fraction_of_uptake", "liver_label_percent_id", 30.0))
    assert 0 < value < 100 and checked >= 10


def test_fraction_of_uptake_needs_uptake_the_switch_controls():
    model = absorption_model(False)
    with pytest.raises(SimulationError, match="no parameter 'macrophage_depletion'"):
        _kind(model, {"CL": CL, "V1": V, "ka": KA}, Request("fraction_of_uptake", "central", 5.0))
    m2 = exopk.load_model(exopk.model_path("m2_mps"))
    reason = KINDS["fraction_of_uptake"].unusable(m2, "iv", "lung_percent_id")
    assert "attributes none of its uptake to macrophages" in reason


def test_the_kupffer_cell_share_of_liver_uptake_becomes_an_observation():
    """Willekens 2005: Kupffer cells hold 92 % of the liver's uptake 30 min after the dose."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    observations, _ = build_observations(exopk.data.load("ev"), model)
    found = [o for o in observations if o.request.kind == "fraction_of_uptake"]
    assert [(o.study, o.request, o.value) for o in found] == [
        ("willekens2005", Request("fraction_of_uptake", "liver_label_percent_id", 30.0), 92.0)]


# -- evidence in amounts of the dosed material ---------------------------------------------------
_HEADER = ("study_key,citation,species,route,dose,dose_unit,time,time_unit,matrix,quantity,"
           "statistic,value,error,error_type,n,unit,usable_for_fit,note\n")


def _records(tmp_path, *rows):
    path = tmp_path / "amounts.csv"
    path.write_text(_HEADER + "".join(
        f'synthetic,"Synthetic test record, not a measurement",mouse,iv,{row}\n' for row in rows),
        encoding="utf-8")
    return exopk.data.read_csv(path)


def test_concentrations_in_mass_and_particle_units_are_predicted_with_the_dose(tmp_path):
    """One compartment, CL 0.5 mL/min, V 2 mL: after a dose D the concentration is
    D exp(-CL t / V) / V and its area D / CL, in the dose's unit per mL."""
    records = _records(tmp_path,
                       "5,ug,10,min,plasma,concentration,mean,300,,none,,ng/mL,yes,",
                       "2e9,particles,10,min,plasma,concentration,mean,2e8,,none,,particles/mL,"
                       "yes,",
                       "1,mg,,,plasma,auc,mean,2000,,none,,ug*min/mL,yes,")
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    observations, skipped = build_observations(records, model)
    assert skipped == []
    assert [(o.request.kind, o.request.output, o.request.time) for o in observations] == [
        ("value", "plasma_concentration", 10.0), ("value", "plasma_concentration", 10.0),
        ("auc", "plasma_concentration", None)]
    # in the canonical units ug/mL, EVs/mL and ug*min/mL: 5 ug, 2e9 EVs and 1000 ug per 100 %ID
    assert [o.value for o in observations] == pytest.approx([0.3, 2e8, 2000.0], rel=1e-12)
    np.testing.assert_allclose([o.request.scale for o in observations], [0.05, 2e7, 10.0],
                               rtol=1e-12)
    compiled = compile_model(model)
    theta = compiled.parameter_matrix({"CL": 0.5, "V_plasma": 2.0})
    requests = [o.request for o in observations]
    values, jacobian = predict(compiled, theta, observations[0].design, requests, gradients=True)
    expected = [5 * np.exp(-2.5) / 2, 2e9 * np.exp(-2.5) / 2, 1000 / 0.5]
    np.testing.assert_allclose(values[0], expected, rtol=1e-12)
    plain, d_plain = predict(compiled, theta, observations[0].design,
                             [Request(r.kind, r.output, r.time) for r in requests], gradients=True)
    scales = np.array([r.scale for r in requests])
    np.testing.assert_allclose(jacobian[0], scales[:, None] * d_plain[0], rtol=1e-15)


def test_a_dose_per_body_weight_is_given_to_the_animal_the_model_simulates(tmp_path):
    records = _records(tmp_path, "2,mg/kg,10,min,blood,concentration,mean,3,,none,,ug/mL,yes,")
    model = exopk.load_model(exopk.model_path("m2_mps"))      # a 0.025-kg mouse
    (observation,), _ = build_observations(records, model)
    assert observation.request.scale == pytest.approx(2e3 * 0.025 / 100, rel=1e-12)


def test_amounts_that_are_not_of_the_dose_kind_are_set_aside(tmp_path):
    records = _records(tmp_path,
                       "1,mg,10,min,plasma,concentration,mean,30,,none,,pM,yes,",
                       "25,mg/m^2,10,min,plasma,concentration,mean,30,,none,,ug/mL,yes,",
                       "1-2,mg,10,min,plasma,concentration,mean,30,,none,,ug/mL,yes,")
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    observations, skipped = build_observations(records, model)
    assert observations == []
    assert "'pM' cannot be compared with the value prediction" in skipped[0].reason
    assert "an amount of a dose in 'mg'" in skipped[0].reason
    assert "a dose in 'mg/m^2'" in skipped[1].reason
    assert "needs the study's dose as one number, got '1-2 mg'" in skipped[2].reason
    with pytest.raises(SimulationError, match="scale must be a positive number"):
        Request("value", "plasma_concentration", 1.0, scale=0.0)


def test_times_areas_and_rates_follow_the_model_time_unit():
    """A kind's units say how its values scale with the time unit: the time of peak and the
    MRT to the last sample (with its last sampling time) are times."""
    from exopk.inference.preparation import in_model_time_unit
    from exopk.observation import Observation
    powers = {name: kind.time_power for name, kind in KINDS.items()}
    assert powers["time_of_peak"] == powers["mrt_last"] == powers["auc"] == 1
    assert powers["clearance"] == powers["elimination_rate"] == -1
    assert powers["value"] == powers["fraction_of_uptake"] == powers["vss"] == 0
    minutes = [Observation("demo", 2, Request("mrt_last", "conc", 120.0), "iv", "", 60.0,
                           math.nan, "none", 0.1),
               Observation("demo", 3, Request("time_of_peak", "conc"), "oral", "", 30.0,
                           math.nan, "none", 0.1)]
    hours = in_model_time_unit(minutes, "h")
    assert [(o.request.time, o.value) for o in hours] == [(2.0, 1.0), (None, 0.5)]
