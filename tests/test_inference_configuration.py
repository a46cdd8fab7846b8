"""Configuration errors are raised when the posterior is built, naming the observation."""

import numpy as np
import pytest

import exopk
from exopk.errors import DataFileError, ExopkError, ModelFileError
from exopk.inference.fit import prepare
from exopk.inference.posterior import LogPosterior
from exopk.inference.sampling import find_map
from exopk.observation import Likelihood, Observation, Request


def observation(request, line=7, route="iv"):
    return Observation("demo", line, request, route, "", value=3.0, upper=float("nan"),
                       censoring="none", sigma_log=0.1, source="mine.csv")


@pytest.mark.parametrize("model, request_, message", [
    ("m0_one_compartment", Request("auc", "plasma_concentraton"),
     "has no output 'plasma_concentraton'"),
    ("m2_mps_saturable", Request("half_life", "blood_concentration"),
     "PK summaries need a linear model"),
    ("m2_mps", Request("transfer_fraction", "liver->nowhere"), "names no first-order transfer"),
])
def test_unpredictable_observations_fail_at_construction(model, request_, message):
    model = exopk.load_model(exopk.model_path(model))
    for build in (lambda obs: LogPosterior(model, obs), lambda obs: Likelihood(model, obs)):
        with pytest.raises(DataFileError, match=message) as info:
            build([observation(Request("value", model.output_names[0], 5.0), line=3),
                   observation(request_, line=9)])
        assert info.value.file == "mine.csv" and info.value.row == 9
        assert "study 'demo'" in str(info.value) and request_.kind in str(info.value)


def test_a_fit_file_whose_records_a_saturable_model_cannot_use_says_why(tmp_path):
    # %ID-based blood summaries against ug outputs, and organ %ID without a stated dose
    path = tmp_path / "saturable.toml"
    path.write_text(open("fits/mouse_iv_mps.toml").read().replace('"../models/m2_mps.toml"',
                                                                 '"m2_mps_saturable"'))
    with pytest.raises(ModelFileError, match=r"none of the 34 selected records gives an "
                                             r"observation for model 'm2_mps_saturable'; for "
                                             r"example line 14 \(kim2019_review_ref23\): output "
                                             r"'blood_concentration' of saturable model"):
        prepare(path)


def test_map_failure_names_the_observation_that_cannot_be_fitted():
    # the fraction cleared at time 0 is 0 at every parameter set: log-normal terms need y > 0
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    lp = LogPosterior(model, [observation(Request("fraction_cleared", "plasma_concentration",
                                                  0.0))])
    assert lp(lp.prior_centre()) == -np.inf       # a region to avoid, not an exception
    with pytest.raises(ExopkError, match=r"at the prior centre, study 'demo' \(mine.csv, line 7"
                                         r"\), fraction_cleared of 'plasma_concentration' at "
                                         r"t = 0: prediction 0"):
        find_map(lp, seed=1, starts=2)


def test_explain_says_when_nothing_is_wrong():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    lp = LogPosterior(model, [observation(Request("half_life", "plasma_concentration"))])
    assert lp.explain(lp.prior_centre()).startswith("nothing")
