"""NONMEM event tables used end to end: doses become regimens, DV rows observations."""

import math

import numpy as np
import pytest

from exopk.data import DataValidationError, read_events, regimens
from exopk.dosing import Dose, Regimen
from exopk.engine import compile_model
from exopk.observation import Likelihood, event_observations, predict

from test_data_events import TABLE, replace_cell, write
from test_engine_closed_forms import absorption_model


def test_doses_become_each_subjects_regimen(tmp_path):
    """ID 1: 100 by CMT 1 every 12 h three times (ADDL 2) and 50 at 1 h at RATE 25 per h
    (a 2-h infusion); ID 2: 80 at 0. Times in the model's min."""
    given = regimens(read_events(write(tmp_path, TABLE)), {1: "oral"})
    assert list(given) == [1.0, 2.0]
    assert given[1.0] == Regimen((Dose("oral", 100.0, 0.0), Dose("oral", 50.0, 60.0, 120.0),
                                  Dose("oral", 100.0, 720.0), Dose("oral", 100.0, 1440.0)))
    assert given[2.0] == Regimen.bolus("oral", 80.0)
    hours = regimens(read_events(write(tmp_path, TABLE)), {1: "oral"}, time_unit="h")
    assert [d.time for d in hours[1.0].doses] == [0.0, 1.0, 12.0, 24.0]
    assert hours[1.0].doses[1].duration == 2.0


def test_a_route_column_names_the_route(tmp_path):
    table = TABLE.replace(",WT\n", ",WT,ROUTE\n", 1)
    lines = table.splitlines()
    routes = ["iv", "iv", "po", "iv", "iv"]        # lines 2 to 6; line 4 is the infusion
    table = "\n".join([lines[0]] + [f"{line},{route}" for line, route in zip(lines[1:], routes)])
    table += "\n"
    events = read_events(write(tmp_path, table))
    given = regimens(events, {"iv": "iv", "po": "oral"}, route_column="route")
    assert [d.route for d in given[1.0].doses] == ["iv", "oral", "iv", "iv"]
    with pytest.raises(DataValidationError, match=r"line 4, column 'route': route 'po' has no "
                                                  r"route; routes are given for 'iv'"):
        regimens(events, {"iv": "iv"}, route_column="route")


def test_a_compartment_without_a_route_is_located(tmp_path):
    events = read_events(write(tmp_path, replace_cell(TABLE, 5, "CMT", "3")))
    with pytest.raises(DataValidationError, match=r"line 5, column 'CMT': CMT 3 has no route"):
        regimens(events, {1: "oral"})


def bateman(t, dose, ka, ke, v):
    return dose * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))


def infusion(t, dose, duration, ke, v):
    rate = dose / duration
    during = rate / (ke * v) * (1 - np.exp(-ke * np.minimum(t, duration)))
    after = rate / (ke * v) * (1 - np.exp(-ke * duration)) * np.exp(-ke * (t - duration))
    return np.where(t <= duration, during, after)


def test_dv_rows_become_a_time_course_a_likelihood_can_use(tmp_path):
    """Subject 1: 100 oral at 0; subject 2: 60 IV over 30 min (RATE 120 per h), then an IV bolus
    of 20 at 3 h (ADDL 0). DVs are the closed-form concentrations; times in h."""
    CL, V, KA = 1.0, 80.0, 0.05                # mL/min, mL, 1/min
    ke = CL / V
    rows = ["ID,TIME,AMT,CMT,DV,EVID,RATE", "1,0,100,1,.,1,.", "2,0,60,2,.,1,120",
            "2,3,20,2,.,1,."]
    hours1, hours2 = [0.5, 2.0, 6.0], [0.25, 1.0, 4.0]
    t1 = np.array(hours1) * 60
    dv1 = bateman(t1, 100.0, KA, ke, V)
    t2 = np.array(hours2) * 60
    dv2 = infusion(t2, 60.0, 30.0, ke, V) + np.where(t2 >= 180, 20 / V * np.exp(-ke * (t2 - 180)),
                                                     0.0)
    rows += [f"1,{h},.,3,{float(dv)!r},0,." for h, dv in zip(hours1, dv1)]
    rows += [f"2,{h},.,3,{float(dv)!r},0,." for h, dv in zip(hours2, dv2)]
    ordered = rows[:1] + sorted(rows[1:], key=lambda r: (r.split(",")[0], float(r.split(",")[1])))
    events = read_events(write(tmp_path, "\n".join(ordered) + "\n"))
    model = absorption_model(False)
    observations = event_observations(events, model, {1: "oral", 2: "iv"}, output="conc",
                                      sigma_log=0.1)
    assert [o.request.time for o in observations] == list(t1) + list(t2)
    assert [o.study for o in observations] == ["events:1"] * 3 + ["events:2"] * 3
    compiled = compile_model(model)
    theta = compiled.parameter_matrix({"CL": CL, "V1": V, "ka": KA})
    for o in observations:
        value, _ = predict(compiled, theta, o.design, [o.request])
        assert value[0, 0] == pytest.approx(o.value, rel=1e-10)
    likelihood = Likelihood(model, observations)
    at_truth, gradient = likelihood.evaluate({"CL": CL, "V1": V, "ka": KA}, tau=0.0)
    # every DV equals its prediction: each term is the log-normal density at its mode
    expected = sum(-math.log(0.1) - 0.5 * math.log(2 * math.pi) - math.log(o.value)
                   for o in observations)
    assert at_truth == pytest.approx(expected, rel=1e-9)
    assert np.abs(gradient[:-1]).max() < 1e-6


def test_observation_rows_are_checked_against_the_model(tmp_path):
    text = "ID,TIME,AMT,CMT,DV,EVID,OUT\n1,0,100,1,.,1,conc\n1,1,.,2,0.5,0,conc\n" \
           "1,2,.,2,0.4,0,liver\n2,1,.,2,0.3,0,conc\n"
    events = read_events(write(tmp_path, text))
    model = absorption_model(False)
    with pytest.raises(DataValidationError) as caught:
        event_observations(events, model, {1: "oral"}, output_column="out")
    message = str(caught.value)
    assert "line 4, column 'out': model 'absorption' has no output 'liver'" in message
    assert "line 5, column 'ID': ID 2 has observations but received no dose" in message
    with pytest.raises(DataValidationError, match="route 'gut' .* is not a route of model"):
        event_observations(events, model, {1: "gut"}, output="conc")
