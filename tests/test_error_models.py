"""Residual error models: closed-form log-likelihoods (scipy.stats) and finite-difference
gradients, for uncensored and M3-censored values."""

import numpy as np
import pytest
import scipy.stats

from exopk.errors import ExopkError
from exopk.observation.error_models import ERROR_MODELS, ResidualError

Y = np.array([0.3, 2.0, 5.0, 11.0])
VALUES = np.array([0.25, 2.6, 4.1, 0.8])        # the last is a limit of quantification
CENSORED = np.array([False, False, False, True])
PARAMS = {"additive": [0.4], "proportional": [0.15], "combined": [0.3, 0.12],
          "lognormal": [0.2]}


def reference_terms(kind, y, v, censored, params):
    """Hand-written log-likelihood terms from scipy.stats."""
    if kind == "lognormal":
        sigma = params[0]
        exact = scipy.stats.lognorm(s=sigma, scale=y).logpdf(v)
        below = scipy.stats.norm(np.log(y), sigma).logcdf(np.log(v))
    else:
        a, b = {"additive": (params[0], 0.0), "proportional": (0.0, params[0]),
                "combined": tuple(params)}[kind]
        sd = np.sqrt(a**2 + (b * y) ** 2)
        exact = scipy.stats.norm(y, sd).logpdf(v)
        below = scipy.stats.norm(y, sd).logcdf(v)
    return np.where(censored, below, exact)


@pytest.mark.parametrize("kind", ERROR_MODELS)
def test_terms_equal_closed_forms(kind):
    terms, _, _ = ResidualError(kind, "c").terms(Y, VALUES, CENSORED, PARAMS[kind])
    np.testing.assert_allclose(terms, reference_terms(kind, Y, VALUES, CENSORED, PARAMS[kind]),
                               rtol=1e-12)


def test_hand_computed_additive_and_proportional_values():
    # additive: Normal(2.6 | 2.0, 0.4): z = 1.5
    term = ResidualError("additive", "c").terms(np.array([2.0]), np.array([2.6]),
                                                np.array([False]), [0.4])[0][0]
    assert term == pytest.approx(-0.5 * 1.5**2 - np.log(0.4) - 0.5 * np.log(2 * np.pi))
    # proportional: sd = 0.1 * 10 = 1, value 9: z = -1
    term = ResidualError("proportional", "c").terms(np.array([10.0]), np.array([9.0]),
                                                    np.array([False]), [0.1])[0][0]
    assert term == pytest.approx(-0.5 - 0.5 * np.log(2 * np.pi))
    # M3: a value below LLOQ = y is censored with probability 1/2
    term = ResidualError("combined", "c").terms(np.array([3.0]), np.array([3.0]),
                                                np.array([True]), [0.2, 0.1])[0][0]
    assert term == pytest.approx(np.log(0.5))


@pytest.mark.parametrize("kind", ERROR_MODELS)
def test_gradients_equal_finite_differences(kind):
    error = ResidualError(kind, "c")
    params = np.array(PARAMS[kind])
    _, d_y, d_params = error.terms(Y, VALUES, CENSORED, params)
    h = 1e-6
    numeric_y = (error.terms(Y + h * Y, VALUES, CENSORED, params)[0]
                 - error.terms(Y - h * Y, VALUES, CENSORED, params)[0]) / (2 * h * Y)
    np.testing.assert_allclose(d_y, numeric_y, rtol=1e-6, atol=1e-8)
    for k in range(params.size):
        step = np.zeros_like(params)
        step[k] = h * params[k]
        numeric = (error.terms(Y, VALUES, CENSORED, params + step)[0]
                   - error.terms(Y, VALUES, CENSORED, params - step)[0]) / (2 * step[k])
        np.testing.assert_allclose(d_params[:, k], numeric, rtol=1e-6, atol=1e-8)


def test_zeros_and_dose_time_values_are_finite_under_additive_error():
    """A zero observed where the model predicts ~0 (a depot at the dose time) is an ordinary
    term under additive or combined error, not a log residual of ~35."""
    for kind, params in (("additive", [0.1]), ("combined", [0.1, 0.1])):
        terms, d_y, _ = ResidualError(kind, "c").terms(np.array([1e-19]), np.array([0.0]),
                                                       np.array([False]), params)
        assert terms[0] == pytest.approx(scipy.stats.norm(0.0, 0.1).logpdf(0.0), rel=1e-12)


def test_log_normal_names_values_it_cannot_take():
    error = ResidualError("lognormal", "c")
    assert error.check_values(np.array([1.0, 0.0, 2.0]), np.zeros(3, bool)) == 1
    assert ResidualError("additive", "c").check_values(np.array([0.0]), np.zeros(1, bool)) is None


def test_unknown_error_model_is_named():
    with pytest.raises(ExopkError, match="unknown error model 'exponential' for output 'c'"):
        ResidualError("exponential", "c")
