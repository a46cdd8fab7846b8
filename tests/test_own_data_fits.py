"""Time-course posteriors with residual errors, the Laplace approximation and
exopk.fit_observations: gradients against finite differences, the Laplace covariance against a
Gaussian's, recovery of simulated parameters, and the errors bad input gets."""

import numpy as np
import pints.toy
import pytest
import scipy.optimize
import scipy.stats

import exopk
from exopk.errors import ExopkError
from exopk.inference.laplace import laplace
from exopk.inference.own_data import fit_individuals
from exopk.inference.timecourse import TimeCoursePosterior
from exopk.model.priors import Prior
from exopk.observation import Observation, Request

MODEL = exopk.load_model(exopk.model_path("m0_one_compartment"))
TIMES = np.array([0.0, 5.0, 15.0, 30.0, 60.0, 90.0])


def observations(values, *, study="s", dose=100.0, censored=()):
    regimen = exopk.Regimen.bolus("iv", dose)
    return [Observation(study, i, Request("value", "plasma_concentration", t), "iv", "",
                        value=float(v), upper=np.nan,
                        censoring="upper" if i in censored else "none", sigma_log=0.0,
                        regimen=regimen)
            for i, (t, v) in enumerate(zip(TIMES, values))]


def truth(cl=0.2, v=1.0, dose=100.0):
    return dose / v * np.exp(-cl / v * TIMES)


@pytest.mark.parametrize("kind, priors", [
    ("additive", {"a_plasma_concentration": Prior("halfnormal", {"scale": 5.0})}),
    ("proportional", {}), ("combined", {"a_plasma_concentration": Prior("halfnormal",
                                                                        {"scale": 5.0})}),
    ("lognormal", {})])
def test_gradient_equals_finite_differences(kind, priors):
    values = truth() * (1 + 0.1 * np.random.default_rng(2).normal(size=TIMES.size))
    censored = (5,) if kind != "lognormal" else ()
    lp = TimeCoursePosterior(MODEL, observations(values, censored=censored),
                             {"plasma_concentration": kind}, error_priors=priors)
    phi = lp.prior_centre() + 0.05
    value, gradient = lp.evaluateS1(phi)
    assert np.isfinite(value)
    h = 1e-6
    numeric = [(lp(phi + h * e) - lp(phi - h * e)) / (2 * h) for e in np.eye(phi.size)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-6)
    draws = np.stack([phi, phi - 0.1])
    np.testing.assert_allclose(lp.log_densities(draws), [lp(d) for d in draws], rtol=1e-12)


def test_log_likelihood_is_the_closed_form_sum():
    values = truth() * 1.05
    lp = TimeCoursePosterior(MODEL, observations(values), {"plasma_concentration": "additive"},
                             error_priors={"a_plasma_concentration":
                                           Prior("halfnormal", {"scale": 5.0})})
    phi = lp.coordinates.to_search(np.array([0.2, 1.0, 0.7]))
    y, terms = lp.predictions_and_terms(phi)
    np.testing.assert_allclose(y, truth(), rtol=1e-9)
    np.testing.assert_allclose(terms, scipy.stats.norm(truth(), 0.7).logpdf(values), rtol=1e-9)


def test_laplace_of_a_gaussian_is_that_gaussian():
    covariance = np.array([[2.0, 0.6], [0.6, 0.5]])
    target = pints.toy.GaussianLogPDF([1.0, -2.0], covariance)
    approximation = laplace(target, np.array([1.0, -2.0]), draws=20000, seed=3)
    np.testing.assert_allclose(approximation.covariance, covariance, rtol=1e-6)
    np.testing.assert_allclose(np.cov(approximation.draws.T), covariance, rtol=0.05)
    again = laplace(target, np.array([1.0, -2.0]), draws=20000, seed=3)
    np.testing.assert_array_equal(approximation.draws, again.draws)
    assert approximation.at_bound == ()


def test_map_and_laplace_agree_with_least_squares_with_a_zero_value():
    """Additive error with weak priors: the MAP is close to the nonlinear least-squares
    estimate (scipy.optimize.curve_fit) and the Laplace sd close to its standard error."""
    rng = np.random.default_rng(5)
    times = TIMES
    values = truth(0.05, 1.5) + rng.normal(0.0, 1.0, size=times.size)
    values[0] = 0.0 if values[0] < 0 else values[0]
    values[-1] = 0.0                       # a zero under additive error is an ordinary value
    result = exopk.fit_observations(
        MODEL, observations(values), errors={"plasma_concentration": "additive"},
        error_priors={"a_plasma_concentration": Prior("halfnormal", {"scale": 5.0})},
        draws=500, seed=1)
    posterior = result.tree.posterior
    assert posterior.attrs["approximation"].startswith("laplace")
    estimate, covariance = scipy.optimize.curve_fit(
        lambda t, cl, v: 100.0 / v * np.exp(-cl / v * t), times, values, p0=[0.1, 1.0])
    for k, name in enumerate(("CL", "V_plasma")):
        draws = posterior[name].values
        assert np.median(draws) == pytest.approx(estimate[k], rel=0.05), name
        assert np.std(draws) == pytest.approx(np.sqrt(covariance[k, k]), rel=0.5), name
    assert "no MCMC" in result.summary()
    assert set(result.diagnostics["parameter"].values) == {"CL", "V_plasma",
                                                           "a_plasma_concentration"}


def test_log_normal_error_refuses_a_zero_and_names_its_line():
    values = truth()
    values[2] = 0.0
    with pytest.raises(ExopkError, match=r"line 2 .*value 0 of 'plasma_concentration' cannot "
                                         "enter a log-normal error model"):
        TimeCoursePosterior(MODEL, observations(values), {"plasma_concentration": "lognormal"})


@pytest.mark.parametrize("errors, options, message", [
    ({"plasma_concentration": "additive"}, {}, "additive error 'a_plasma_concentration'"),
    ({"nothing": "additive"}, {}, "has no such output"),
    ({}, {}, "have no error model"),
    ({"plasma_concentration": "proportional"}, {"priors": {"Q": Prior("normal", {"mean": 0,
                                                                                "sd": 1})}},
     "no parameter 'Q'"),
    ({"plasma_concentration": "proportional"}, {"error_priors": {"b_x": Prior("halfnormal", {
        "scale": 1.0})}}, "not error parameters"),
])
def test_configuration_errors_are_named(errors, options, message):
    with pytest.raises(ExopkError, match=message):
        TimeCoursePosterior(MODEL, observations(truth()), errors, **options)


def test_unknown_method_is_refused():
    with pytest.raises(ExopkError, match="method 'vi'"):
        exopk.fit_observations(MODEL, observations(truth()),
                               errors={"plasma_concentration": "proportional"}, method="vi")


def test_individual_fits_tabulate_one_row_per_subject():
    rng = np.random.default_rng(7)
    data = []
    for study, cl in (("a", 0.1), ("b", 0.4)):
        data += observations(truth(cl) * np.exp(0.1 * rng.normal(size=TIMES.size)), study=study)
    table, fits = fit_individuals(MODEL, data, errors={"plasma_concentration": "lognormal"},
                                  draws=100, map_starts=2)
    assert list(table["individual"].values) == ["a", "b"]
    for study, cl in (("a", 0.1), ("b", 0.4)):
        row = table.sel(individual=study, parameter="CL")
        assert float(row["lower"]) < cl < float(row["upper"])
        assert float(row["median"]) == pytest.approx(cl, rel=0.25)


def test_event_table_zeros_censoring_and_unit_factors(tmp_path):
    from exopk.data import DataValidationError, read_events
    from exopk.observation.events import event_observations
    path = tmp_path / "events.csv"
    path.write_text("ID,TIME,AMT,CMT,EVID,MDV,DV,BLQ\n"
                    "1,0,5,1,1,1,.,0\n"
                    "1,0,0,1,0,0,0,0\n"          # at the dose time, a zero
                    "1,1,0,1,0,0,2.5,0\n"
                    "1,2,0,1,0,0,0.1,1\n")       # below the limit 0.1
    events = read_events(path, time_unit="h")
    with pytest.raises(DataValidationError, match="DV 0 is not positive"):
        event_observations(events, MODEL, {1: "iv"}, output="plasma_concentration")
    found = event_observations(events, MODEL, {1: "iv"}, output="plasma_concentration",
                               positive=False, censored_column="blq", amount_factor=1000.0,
                               value_factor=2.0)
    assert [o.value for o in found] == [0.0, 5.0, 0.2]
    assert [o.censoring for o in found] == ["none", "none", "upper"]
    assert [o.request.time for o in found] == [0.0, 60.0, 120.0]     # h -> the model's min
    assert found[0].regimen.doses[0].amount == 5000.0
    lp = TimeCoursePosterior(MODEL, found, {"plasma_concentration": "combined"},
                             error_priors={"a_plasma_concentration":
                                           Prior("halfnormal", {"scale": 1.0})})
    assert np.isfinite(lp(lp.prior_centre()))


def test_map_of_a_shipped_fit_file_lies_inside_its_nuts_posterior():
    """``exopk.fit(..., method="map")`` on the packaged evidence: the Laplace medians fall
    inside the 5-95% intervals of the shipped NUTS posterior of the same fit file."""
    from pathlib import Path
    from exopk.inference.result import load_fit
    root = Path(__file__).resolve().parents[1]
    result = exopk.fit(root / "fits" / "mouse_iv_mps.toml", method="map", draws=50,
                       write=False, progress=False)
    assert result.tree.attrs["sampler"] == "laplace"
    shipped = load_fit(root / "fits" / "mouse_iv_mps.nc").posterior
    for name in result.tree.posterior.data_vars:
        low, high = np.quantile(shipped[name].values, [0.05, 0.95])
        assert low < float(np.median(result.tree.posterior[name].values)) < high, name
