"""Fit files: a strict typed schema, checked against the model and the evidence before sampling."""

import time
from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.cli import main
from exopk.data import load
from exopk.engine import compile_model
from exopk.errors import ExopkError, ModelFileError
from exopk.inference.fit import fit, prepare
from exopk.inference.fitfile import SamplerSettings, parse_fit
from exopk.inference.preparation import in_model_time_unit
from exopk.observation.predictions import predict
from exopk.observation.records import build_observations

ROOT = Path(__file__).parents[1]
BASE = (ROOT / "fits" / "mouse_iv_mps.toml").read_text().replace('"../models/m2_mps.toml"',
                                                                    '"m2_mps"')


def _fit_file(tmp_path, text, name="fit.toml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _error(tmp_path, text) -> ModelFileError:
    path = _fit_file(tmp_path, text)
    with pytest.raises(ModelFileError) as info:
        prepare(path)
    assert info.value.file == str(path)
    return info.value


def _replace(old, new):
    assert old in BASE
    return BASE.replace(old, new, 1)


@pytest.mark.parametrize("text, key, reason", [
    # types
    (_replace("proxies = false", 'proxies = "false"'), "evidence.proxies", "true or false"),
    (_replace("proxies = false", "proxies = 0"), "evidence.proxies", "true or false"),
    (_replace('tables = ["ev"]', 'tables = "ev"'), "evidence.tables", "list of strings"),
    (_replace('tables = ["ev"]', "tables = []"), "evidence.tables", "at least one table"),
    (_replace('species = ["mouse"]', 'species = "mouse"'), "evidence.species", "list of strings"),
    (_replace('routes = ["iv"]', "routes = [1]"), "evidence.routes", "list of strings"),
    (_replace('model = "m2_mps"', "model = 3"), "fit.model", "expected a string"),
    (_replace('name = "mouse_iv_mps"', "name = true"), "fit.name", "expected a string"),
    (_replace("seed = 20261127", "seed = 1.5"), "fit.seed", "non-negative integer"),
    (BASE + '\n[fixed]\nCL = "abc"\n', "fixed.CL", "finite number"),
    (BASE + "\n[fixed]\nk_uptake_liver = nan\n", "fixed.k_uptake_liver", "finite number"),
    (_replace("parkinson_model = {}", "parkinson_model = 3"), "conditions.parkinson_model",
     "expected a table"),
    (_replace("macrophage_depletion = 1.0", 'macrophage_depletion = "yes"'),
     "conditions.macrophage_depleted.macrophage_depletion", "finite number"),
    (BASE + '\n[free]\nparameters = "k_release_liver"\n', "free.parameters", "list of strings"),
    (BASE + "\n[random_effects]\nparameters = []\nsd_prior = 0.5\n", "random_effects.sd_prior",
     "prior table"),
    (BASE + '\n[covariates]\nlabel = "k_uptake_liver"\n', "covariates.label", "expected a table"),
    (BASE + '\n[covariates.label]\nparameters = ["k_uptake_liver"]\nprior_sd = -1\n',
     "covariates.label.prior_sd", "must be positive"),
    (BASE + '\n[species_scaling]\nparameters = ["k_uptake_liver"]\nbody_weight_kg = 0.025\n',
     "species_scaling.body_weight_kg", "expected a table"),
    # allowed sets and unknown keys
    (_replace('signal = "label"', 'signal = "both"'), "evidence.signal", "use label or vesicle"),
    (_replace('signal = "label"', 'signal = "Label"'), "evidence.signal", "did you mean 'label'"),
    (_replace('unstated_error_as = "sem"', 'unstated_error_as = "se"'),
     "evidence.unstated_error_as", "did you mean 'sem'"),
    (_replace("proxies = false", "proxy = false"), "evidence", "did you mean 'proxies'"),
    (_replace("[dispersion]", "[dispersions]"), "", "did you mean 'dispersion'"),
    # sampler settings that would fail only after sampling
    (_replace("chains = 4", "chains = 1"), "sampler.chains", ">= 2"),
    (_replace("chains = 4", 'chains = "4"'), "sampler.chains", "expected an integer"),
    (_replace("draws = 1000", "draws = 3"), "sampler.draws", ">= 4"),
    (_replace("warmup = 1000", "warmup = 10"), "sampler.warmup", ">= 150"),
    (_replace("map_starts = 4", "map_starts = 4\nmax_tree_depth = -1"),
     "sampler.max_tree_depth", "between 1 and 20"),
    (_replace("map_starts = 4", "map_starts = 4\nmax_tree_depth = 10.5"),
     "sampler.max_tree_depth", "expected an integer"),
    (_replace("target_acceptance = 0.9", 'target_acceptance = "0.9"'),
     "sampler.target_acceptance", "between 0 and 1"),
    # names that must exist in the model
    (_replace('model = "m2_mps"', 'model = "m2_mp"'), "fit.model", "did you mean 'm2_mps'"),
    (_replace('model = "m2_mps"', 'model = "no_such.toml"'), "fit.model", "not found"),
    (BASE + "\n[fixed]\nk_uptake_livr = 0.1\n", "fixed.k_uptake_livr",
     "did you mean 'k_uptake_liver'"),
    (BASE + "\n[fixed]\nk_uptake_liver = -1.0\n", "fixed.k_uptake_liver", "outside the bounds"),
    (_replace("macrophage_depletion = 1.0", "macrophage_depletoin = 1.0"),
     "conditions.macrophage_depleted.macrophage_depletoin", "did you mean"),
    (BASE + '\n[free]\nparameters = ["k_uptake_liver"]\n', "free.parameters",
     "not fixed by the model"),
    (BASE + '\n[priors]\nk_uptake_livr = { median = 0.1, sigma = 1.0 }\n',
     "priors.k_uptake_livr", "did you mean 'k_uptake_liver'"),
    # priors and effects on fixed parameters
    (BASE + "\n[fixed]\nk_uptake_liver = 0.1\n[priors]\n"
            "k_uptake_liver = { median = 0.1, sigma = 1.0 }\n",
     "priors.k_uptake_liver", "fixed by this fit file"),
    (BASE + "\n[priors]\nk_release_liver = { median = 0.1, sigma = 1.0 }\n",
     "priors.k_release_liver", "fixed by the model"),
    (BASE + '\n[random_effects]\nparameters = ["k_release_liver"]\n',
     "random_effects.parameters", "fixed by the model"),
    (BASE + '\n[covariates.label]\nparameters = ["macrophage_depletion"]\n',
     "covariates.label.parameters", "fixed by"),
    # names that must exist in the evidence
    (_replace('species = ["mouse"]', 'species = ["mose"]'), "evidence.species",
     "did you mean 'mouse'"),
    (_replace('routes = ["iv"]', 'routes = ["IV"]'), "evidence.routes", "did you mean 'iv'"),
    (_replace('routes = ["iv"]', 'routes = ["iv"]\nstudies = ["matsumoto2020", "morishitaa2015"]'),
     "evidence.studies", "did you mean 'morishita2015'"),
    (_replace('routes = ["iv"]', 'routes = ["iv"]\nquantities = ["halflife"]'),
     "evidence.quantities", "did you mean 'half_life'"),
    (_replace('tables = ["ev"]', 'tables = ["evs"]'), "evidence.tables", "did you mean 'ev'"),
    (_replace("parkinson_model = {}", "parkinsons_model = {}"), "conditions.parkinsons_model",
     "did you mean 'parkinson_model'"),
    (BASE + '\n[covariates.label]\nparameters = ["k_uptake_liver"]\nreference = "125-I"\n',
     "covariates.label.reference", "does not occur"),
    (BASE + '\n[covariates.lable]\nparameters = ["k_uptake_liver"]\n', "covariates.lable",
     "did you mean 'label'"),
    (_replace("parkinson_model = {}\n", ""), "conditions", "parkinson_model need an entry"),
    (_replace("proxies = false", 'proxies = false\nproxy_studies = ["falcone2015"]'),
     "evidence.proxy_studies", "not proxy studies"),
])
def test_fit_file_errors_name_file_and_key(tmp_path, text, key, reason):
    error = _error(tmp_path, text)
    assert error.key == key
    assert reason in error.reason


def test_a_study_excluded_by_another_selection_is_an_error(tmp_path):
    records = load("ev")
    rat = str(records.study_key.values[records.species.values.astype(str) == "rat"][0])
    error = _error(tmp_path, _replace('routes = ["iv"]', f'routes = ["iv"]\nstudies = ["{rat}"]'))
    assert error.key == "evidence.studies" and rat in error.reason


def test_non_utf8_fit_file_reports_the_line(tmp_path):
    error = _error(tmp_path, BASE.replace('description = "m2_mps on the mouse',
                                          'description = "m2_mps \u00e9').encode("latin-1"))
    assert "line 12" in error.reason and "UTF-8" in error.reason


def test_valid_fit_file_prepares_the_same_observations(tmp_path):
    prepared = prepare(_fit_file(tmp_path, BASE))
    assert len(prepared.observations) == 10
    assert all(not o.is_proxy for o in prepared.observations)


@pytest.mark.parametrize("arguments, reason", [
    ({"chains": 1}, "argument chains = 1: must be an integer >= 2"),
    ({"chains": 0}, "argument chains = 0"),
    ({"draws": 3}, "argument draws = 3"),
    ({"draws": -5}, "argument draws = -5"),
    ({"warmup": 20}, "argument warmup = 20: must be an integer >= 150"),
    ({"chains": 2.0}, "expected an integer"),
    ({"seed": -1}, "argument seed = -1"),
    ({"seed": "7"}, "argument seed = '7'"),
    ({"processes": 0}, "argument processes = 0"),
    ({"map_starts": 0}, "argument map_starts = 0"),
])
def test_fit_arguments_are_checked_before_any_work(tmp_path, arguments, reason):
    path = _fit_file(tmp_path, BASE)
    start = time.perf_counter()
    with pytest.raises(ExopkError, match=reason.replace("(", r"\(")):
        fit(path, write=False, progress=False, **arguments)
    assert time.perf_counter() - start < 5.0


def test_unwritable_output_fails_before_sampling(tmp_path):
    path = _fit_file(tmp_path, BASE)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    start = time.perf_counter()
    with pytest.raises(ExopkError, match="cannot be written"):
        fit(path, out=blocker / "result.nc", progress=False)
    assert time.perf_counter() - start < 5.0
    with pytest.raises(ExopkError, match="is a folder"):
        fit(path, out=tmp_path, progress=False)


@pytest.mark.parametrize("option, value", [("--chains", "-2"), ("--draws", "-1"),
                                           ("--seed", "-3"), ("--warmup", "abc"),
                                           ("--chains", "1"), ("--processes", "0")])
def test_cli_rejects_bad_sampler_options_cleanly(option, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "fits/mouse_iv_mps.toml", option, value])
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_cli_unwritable_out_is_a_clean_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    path = _fit_file(tmp_path, BASE)
    assert main(["fit", str(path), "--out", str(blocker / "x.nc"), "--quiet"]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_sampler_settings_check_themselves():
    with pytest.raises(ModelFileError, match="sampler.chains"):
        SamplerSettings(chains=1)
    assert SamplerSettings(method="haario_bardenet", warmup=10).warmup == 10


def test_parse_fit_keeps_valid_values():
    ff = parse_fit(BASE)
    assert ff.evidence["proxies"] is False and ff.evidence["tables"] == ["ev"]
    assert ff.sampler.target_acceptance == 0.9 and ff.conditions["parkinson_model"] == {}


def test_model_time_unit_is_honoured_by_observations():
    """An hour model predicts the minute evidence exactly as the same model in minutes."""
    text = Path(exopk.model_path("m0_one_compartment")).read_text()
    minutes = exopk.model.toml_file.parse_model(__import__("tomllib").loads(text), file="min")
    hours = exopk.model.toml_file.parse_model(__import__("tomllib").loads(
        text.replace('time_unit = "min"', 'time_unit = "h"')), file="h")
    records = load("ev")
    keep = np.flatnonzero((records.species.values.astype(str) == "mouse")
                          & (records.route.values.astype(str) == "iv")
                          & ~records.is_proxy.values.astype(bool))
    records = records.isel(record=keep)
    in_minutes, _ = build_observations(records, minutes)
    in_hours = in_model_time_unit(build_observations(records, hours)[0], "h")
    kinds = {o.request.kind for o in in_minutes}
    assert {"time_to_half", "clearance", "mrt"} <= kinds        # time, 1/time and time scaling
    compiled_min, compiled_h = compile_model(minutes), compile_model(hours)
    index = compiled_min.parameter_index
    theta_min = compiled_min.nominal.copy()[None]
    theta_h = theta_min.copy()
    theta_h[0, index["CL"]] *= 60.0                              # mL/min -> mL/h
    for a, b in zip(in_minutes, in_hours):
        assert b.value != a.value or a.request.kind in ("vss", "volume_terminal", "value")
        ratio_min = predict(compiled_min, theta_min, a.design, [a.request])[0][0, 0] / a.value
        ratio_h = predict(compiled_h, theta_h, b.design, [b.request])[0][0, 0] / b.value
        assert ratio_h == pytest.approx(ratio_min, rel=1e-9), a
