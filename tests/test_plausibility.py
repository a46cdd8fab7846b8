"""Plausibility bounds of model files, flow-limited BBB uptake, and brain evidence in fit files."""

import math

import numpy as np
import pytest

import exopk
from exopk.cli import main
from exopk.errors import ModelFileError
from exopk.inference.plausibility import check_plausibility
from exopk.inference.preparation import prepare
from exopk.model import PlausibilityBound

M0 = open(exopk.model_path("m0_one_compartment")).read()
BOUND = """
[plausibility.plasma_1h]
output = "plasma_percent_id"
route = "iv"
time = 60
upper = 10.0
source = "a test"
"""


def _model(tmp_path, text):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return exopk.load_model(path)


def test_a_bound_is_read_from_the_model_file(tmp_path):
    model = _model(tmp_path, M0 + BOUND)
    (bound,) = model.plausibility
    assert bound == PlausibilityBound("plasma_1h", "plasma_percent_id", "iv", 60.0, upper=10.0,
                                      source="a test")
    assert bound.quantile == 0.5 and bound.lower == -math.inf


@pytest.mark.parametrize("change,key,message", [
    (('output = "plasma_percent_id"', 'output = "brain"'), "plausibility.plasma_1h.output",
     "unknown output 'brain'"),
    (('route = "iv"', 'route = "in"'), "plausibility.plasma_1h.route", "unknown route 'in'"),
    (('source = "a test"', 'source = " "'), "plausibility.plasma_1h.source", "needs its source"),
    (('upper = 10.0', 'quantile = 0.5'), "plausibility.plasma_1h", "needs upper, lower or both"),
    (('upper = 10.0', 'upper = 10.0\nquantile = 1.5'), "plausibility.plasma_1h.quantile",
     "between 0 and 1"),
    (('upper = 10.0', 'upper = 10.0\nlower = 20.0'), "plausibility.plasma_1h", "must be below"),
    (('time = 60', 'time = -1'), "plausibility.plasma_1h.time", "positive"),
    (('time = 60', 'time = "1 h"'), "plausibility.plasma_1h.time", "expected a number"),
    (('upper = 10.0', 'upper = 10.0\nunit = "%"'), "plausibility.plasma_1h", "unknown key"),
])
def test_bad_bounds_name_the_key(tmp_path, change, key, message):
    with pytest.raises(ModelFileError, match=message) as info:
        _model(tmp_path, M0 + BOUND.replace(*change))
    assert info.value.key == key


def test_the_check_takes_the_quantile_of_the_closed_form(tmp_path):
    """One compartment: plasma %ID at t is 100 exp(-CL t / V); the check's value is the
    posterior quantile of that over the draws, and a bound below it is violated."""
    model = _model(tmp_path, M0 + BOUND + BOUND.replace("plasma_1h", "plasma_1h_q90")
                   .replace("upper = 10.0", "upper = 60.0\nlower = 50.0\nquantile = 0.9"))
    cl = np.linspace(0.001, 0.05, 50)
    sets = np.array([[c, 1.0, 0.0] for c in cl])
    checked = check_plausibility(model, sets)
    exact = 100 * np.exp(-cl * 60.0)
    assert float(checked["value"][0]) == pytest.approx(np.quantile(exact, 0.5), rel=1e-9)
    assert float(checked["value"][1]) == pytest.approx(np.quantile(exact, 0.9), rel=1e-9)
    assert checked["violated"].values.tolist() == [
        not np.quantile(exact, 0.5) <= 10.0, not 50.0 <= np.quantile(exact, 0.9) <= 60.0]
    assert bool(checked["implausible"]) == bool(checked["violated"].any())


def test_no_bound_gives_an_empty_check():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    checked = check_plausibility(model, np.array([[0.2, 1.0, 0.0]]))
    assert checked.sizes["bound"] == 0 and not bool(checked["implausible"])


def _bbb_rate(model, ps):
    """First-order rate (1/min) of the plasma -> brain_endothelium transfer at PS_bbb = ps."""
    q = model.quantities
    (index,) = [i for i, t in enumerate(model.transfers)
                if (t.source, t.target) == ("plasma", "brain_endothelium")]
    theta = np.array([[p.value for p in model.parameters]])
    theta[0, model.parameter_names.index("PS_bbb")] = ps
    return q.expressions(theta, derivatives=False)[0, q.transfer_rows[index][0]]


def test_bbb_uptake_never_exceeds_brain_plasma_flow():
    """Renkin-Crone: CL = Q (1 - exp(-PS/Q)) is PS for small PS and Q (the brain plasma flow of
    the preset) for large PS; the rate is CL over the plasma volume."""
    model = exopk.load_model(exopk.model_path("m4_brain"))
    c = model.quantities.constants
    q = c["blood_flow_ml_per_min_brain"] * c["plasma_volume_ml"] / c["blood_volume_ml"]
    v = c["plasma_volume_ml"]
    assert _bbb_rate(model, 1e-6) == pytest.approx(1e-6 / v, rel=1e-5)
    assert _bbb_rate(model, 1e3) == pytest.approx(q / v, rel=1e-12)
    assert _bbb_rate(model, 50.0) <= q / v
    assert _bbb_rate(model, q) == pytest.approx(q * (1 - math.exp(-1)) / v, rel=1e-12)


def test_shipped_brain_models_declare_brain_bounds():
    for name in ("m4_brain", "m5_intranasal"):
        bounds = {b.name: b for b in exopk.load_model(exopk.model_path(name)).plausibility}
        assert bounds["brain_iv_1h_median"].upper == 1.0
        assert bounds["brain_iv_1h_q95"].upper == 5.0 and bounds["brain_iv_1h_q95"].quantile == 0.95


def test_an_unusable_record_is_opted_in_by_name_with_its_caveat():
    prepared = prepare("fits/mouse_brain.toml")
    choi = [o for o in prepared.observations if o.study == "choi2022_89zr_secondary"]
    assert [(o.request.kind, o.request.output, o.request.time, o.value) for o in choi] == [
        ("value", "brain_percent_id", 480.0, 0.1)]
    (caveat,) = prepared.caveats
    assert "design_not_stated" in caveat and "SECONDARY SOURCE" in caveat


def test_proxies_enter_through_a_carrier_class_offset():
    prepared = prepare("fits/mouse_brain.toml")
    proxies = [o for o in prepared.observations if o.is_proxy]
    assert {o.study for o in proxies} == {"hirn2011"}
    assert {o.request.output for o in proxies} == {"brain_label_percent_id_per_g"}
    names = prepared.log_posterior.names
    betas = [n for n in names if n.startswith("beta_carrier_class")]
    assert betas == ["beta_carrier_class[gold nanoparticles, 80 nm, TPPMS-coated]"]
    assert [o.value for o in proxies] == [0.00029]
    priors = prepared.log_posterior.natural_priors()
    assert all(priors[b].arguments["sd"] == 2.3 for b in betas)


def test_evidence_selections_of_brain_fits_name_their_key(tmp_path):
    text = open("fits/mouse_brain.toml").read().replace("../models/", str(
        exopk.model_path("m4_brain").parent) + "/")
    for old, new, key in (('opt_in = ["choi2022_89zr_secondary"]', 'opt_in = ["choi2022"]',
                           "evidence.opt_in"),
                          ('proxy_matrices = ["brain"]', 'proxy_matrices = ["brian"]',
                           "evidence.proxy_matrices")):
        path = tmp_path / "f.toml"
        path.write_text(text.replace(old, new))
        with pytest.raises(ModelFileError) as info:
            prepare(path)
        assert info.value.key == key


def test_strict_fails_on_an_implausible_posterior(tmp_path, capsys):
    model = open(exopk.model_path("m2_mps")).read() + BOUND.replace("upper = 10.0", "upper = 1e-9")
    (tmp_path / "m.toml").write_text(model)
    fit_text = open("fits/mouse_iv_mps.toml").read().replace('"../models/m2_mps.toml"',
                                                             '"m.toml"')
    (tmp_path / "f.toml").write_text(fit_text)
    status = main(["fit", str(tmp_path / "f.toml"), "--chains", "2", "--warmup", "150",
                   "--draws", "10", "--out", str(tmp_path / "f.nc"), "--strict", "--quiet"])
    assert status == 5
    printed = capsys.readouterr().out
    assert "IMPLAUSIBLE" in printed and "VIOLATED: plasma_1h" in printed
