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
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    compiled = compile_model(model)
    theta = compiled.nominal.copy()
    output = "brain_percent_id"
    requests = [Request("time_of_peak", output)]
    regimen = exopk.Regimen.bolus("intranasal", 100.0)
    value, jacobian = predict(compiled, theta[None], regimen, requests, gradients=True)
    assert 0 < value[0, 0] < np.inf
    checked = 0
    for p, name in enumerate(compiled.parameter_names):
        if theta[p] == 0 or name in ("macrophage_depletion",):
            continue
        h = 1e-5 * theta[p]
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        try:
            fd = (predict(compiled, up[None], regimen, requests)[0][0, 0]
                  - predict(compiled, down[None], regimen, requests)[0][0, 0]) / (2 * h)
        except SimulationError:
            continue    # a step outside the parameter's bounds
        assert jacobian[0, 0, p] == pytest.approx(fd, rel=1e-5, abs=1e-9 * value[0, 0] / theta[p])
        checked += 1
    assert checked >= 5


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
