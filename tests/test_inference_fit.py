"""End-to-end fits: results on disk in the ArviZ layout, reproducibility, strict mode, errors."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pints
import pytest
import xarray as xr

import exopk
from exopk.cli import main
from exopk.errors import ModelFileError
from exopk.inference.fit import fit, prepare
from exopk.inference.fitfile import parse_fit

SMALL = dict(chains=2, warmup=150, draws=40, map_starts=1, processes=2, progress=False)


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "mouse_iv_mps.nc"
    return fit("fits/mouse_iv_mps.toml", out=out, **SMALL)


def test_fit_writes_a_datatree_in_the_arviz_layout(small_fit):
    tree = xr.open_datatree(small_fit.path)
    assert {"posterior", "sample_stats", "prior", "prior_predictive", "posterior_predictive",
            "observed_data", "log_likelihood"} <= set(tree.children)
    posterior = tree["posterior"]
    assert posterior["k_uptake_liver"].dims == ("chain", "draw")
    assert posterior["k_uptake_liver"].attrs["units"] == "1/min"
    assert tree["log_likelihood"]["y"].sizes["observation"] == tree["observed_data"].sizes["observation"]
    observed = tree["observed_data"]
    assert set(observed["study"].values) >= {"morishita2015", "matsumoto2020"}
    doi, url = observed["doi"].values.astype(str), observed["url"].values.astype(str)
    assert ((doi != "") | (url != "")).all()   # every observation names its source
    for key in ("provenance", "evidence_sha256", "fit_file_text", "seed"):
        assert key in tree.attrs
    for group in ("posterior", "sample_stats", "prior", "observed_data", "log_likelihood"):
        assert tree[group].attrs["inference_library"] == "pints"
        assert tree[group].attrs["inference_library_version"] == pints.__version__
        assert "created_at" in tree[group].attrs
    provenance = json.loads(tree.attrs["provenance"])
    inputs = provenance["inputs"]
    # paths relative to the result file, hashes of the bytes
    fit_file = small_fit.path.parent / inputs["fit_file"]["path"]
    assert fit_file.resolve() == Path("fits/mouse_iv_mps.toml").resolve()
    assert inputs["fit_file"]["sha256"] == hashlib.sha256(fit_file.read_bytes()).hexdigest()
    assert inputs["model_file"]["path"].endswith("models/m2_mps.toml")
    assert not any(Path(i["path"]).is_absolute() for i in inputs.values())
    assert "/work/" not in tree.attrs["provenance"].replace(inputs["fit_file"]["path"], "") \
        .replace(inputs["model_file"]["path"], "")
    assert provenance["libraries"]["pints"] == pints.__version__
    assert provenance["parameters"]["seed"] == tree.attrs["seed"]
    diagnostics = tree["diagnostics"]
    assert diagnostics["rhat"].dims == ("parameter",)
    assert diagnostics["ppi90_lower"].dims == ("observation",)
    loaded = exopk.load_fit(small_fit.path)
    xr.testing.assert_identical(loaded["posterior"].to_dataset(),
                                small_fit.tree["posterior"].to_dataset())


def test_same_seed_gives_the_same_draws_bit_for_bit(small_fit):
    again = fit("fits/mouse_iv_mps.toml", write=False, **SMALL)
    for name in small_fit.tree["posterior"].data_vars:
        np.testing.assert_array_equal(again.tree["posterior"][name].values,
                                      small_fit.tree["posterior"][name].values)
    other = fit("fits/mouse_iv_mps.toml", write=False, seed=7, **SMALL)
    assert not np.array_equal(other.tree["posterior"]["tau"].values,
                              small_fit.tree["posterior"]["tau"].values)


def test_summary_reports_convergence_and_shrinkage(small_fit):
    summary = small_fit.summary()
    assert "R-hat" in summary and "sd/prior sd" in summary
    # 2 x 40 draws cannot reach a bulk ESS of 400: the summary must say so loudly
    assert "NOT CONVERGED" in summary
    assert not small_fit.converged


def test_strict_mode_exits_non_zero_when_not_converged(tmp_path, capsys):
    status = main(["fit", "fits/mouse_iv_mps.toml", "--chains", "2", "--warmup", "150",
                   "--draws", "20", "--out", str(tmp_path / "f.nc"), "--strict", "--quiet"])
    assert status == 3
    assert "NOT CONVERGED" in capsys.readouterr().out


def test_haario_bardenet_sampler_runs(tmp_path):
    text = open("fits/mouse_iv_mps.toml").read().replace('method = "nuts"',
                                                         'method = "haario_bardenet"')
    path = tmp_path / "hb.toml"
    path.write_text(text.replace('"../models/m2_mps.toml"', '"m2_mps"'))
    result = fit(path, write=False, chains=2, warmup=100, draws=100, map_starts=1, processes=1,
                 progress=False)
    assert result.tree["posterior"].sizes["draw"] == 100


@pytest.mark.parametrize("text,key,message", [
    ('[fit]\nname = "x"\n', "fit.model", "missing required key 'model'"),
    ('[fit]\nmodel = "m0_one_compartment"\nseed = -1\n', "fit.seed", "non-negative"),
    ('[fit]\nmodel = "m0_one_compartment"\n[sampler]\nmethod = "gibbs"\n', "sampler.method",
     "unknown method"),
    ('[fit]\nmodel = "m0_one_compartment"\n[sampler]\nmetric = "unit"\n', "sampler.metric",
     "unknown metric"),
    ('[fit]\nmodel = "m0_one_compartment"\n[sampler]\ntarget_acceptance = 1.5\n',
     "sampler.target_acceptance", "between 0 and 1"),
    ('[fit]\nmodel = "m0_one_compartment"\n[sampler]\nthin = 0\n', "sampler.thin", ">= 1"),
    ('[fit]\nmodel = "m0_one_compartment"\n[evidence]\nspecies = ["dog"]\ncolour = 1\n',
     "evidence", "unknown key(s) colour"),
    ('[fit]\nmodel = "m0_one_compartment"\n[priors]\nCL = { distribution = "gamma" }\n',
     "priors.CL", "unknown prior distribution"),
])
def test_malformed_fit_files_name_the_key(text, key, message):
    with pytest.raises(ModelFileError) as info:
        parse_fit(text, path="bad.toml")
    assert info.value.key == key and message in str(info.value)


def test_fit_file_can_free_a_parameter_the_model_fixes(tmp_path):
    text = open("fits/mouse_iv_mps.toml").read().replace('"../models/m2_mps.toml"', '"m2_mps"')
    path = tmp_path / "release.toml"
    path.write_text(text + '\n[free]\nparameters = ["k_release_liver"]\n')
    posterior = prepare(path).log_posterior
    assert "k_release_liver" in posterior.free
    assert "logit k_release_liver" in posterior.names
    value, gradient = posterior.evaluateS1(posterior.prior_centre())
    assert np.isfinite(value) and gradient[posterior.free.index("k_release_liver")] != 0


def test_figures_are_regenerated_from_fit_results(small_fit, tmp_path):
    from exopk.figures import make_figures
    written = make_figures(small_fit.path.parent, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        [f"model_{name}.png" for name in exopk.available_models()]
        + [f"mouse_iv_mps_{kind}.png" for kind in ("predictions", "shrinkage",
                                                   "data_vs_predictive", "prior_vs_posterior")])
    assert all(p.parent == tmp_path / "figures" for p in written)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_arviz_reads_the_result_and_agrees_with_its_diagnostics(small_fit):
    az = pytest.importorskip("arviz")
    tree = xr.open_datatree(small_fit.path)
    data = az.from_datatree(tree)
    bfmi = az.bfmi(data)                       # needs sample_stats.energy
    assert bfmi.shape == (2,) and np.all(bfmi > 0)
    import matplotlib
    matplotlib.use("Agg")
    az.plot_energy(data)
    az.plot_ppc(data, var_names=["y"], group="posterior")
    az.plot_ppc(data, var_names=["y"], group="prior")
    matplotlib.pyplot.close("all")
    ours = small_fit.diagnostics
    theirs = az.summary(data, var_names=["tau", "k_uptake_liver"], round_to="none")
    for name in ("tau", "k_uptake_liver"):
        row = ours.sel(parameter=name)
        assert float(row["mean"]) == pytest.approx(theirs.loc[name, "mean"], rel=1e-12)
        assert float(row["sd"]) == pytest.approx(theirs.loc[name, "sd"], rel=1e-12)
        for key, column in (("rhat", "r_hat"), ("ess_bulk", "ess_bulk"),
                            ("ess_tail", "ess_tail"), ("mcse_mean", "mcse_mean")):
            assert float(row[key]) == pytest.approx(theirs.loc[name, column], rel=1e-9), key
    sensitivity = az.psens(data, component="prior", var_names=["tau"])
    assert np.isfinite(float(sensitivity))
    # the log-posterior of each draw = log prior + log Jacobian + log likelihood
    lp = prepare("fits/mouse_iv_mps.toml").log_posterior
    natural = np.stack([tree["posterior"][n].values for n in lp.natural_names()], axis=-1)
    log_prior = sum(tree["log_prior"][n].values for n in lp.natural_names())
    total = (log_prior + lp.coordinates.log_jacobian_det(lp.coordinates.to_search(natural))
             + tree["log_likelihood"]["y"].values.sum(axis=-1))
    np.testing.assert_allclose(total, tree["sample_stats"]["lp"].values, rtol=1e-9)
    stats = tree["sample_stats"]
    # per-draw statistics: the acceptance statistic moves from draw to draw
    assert np.all((stats["acceptance_rate"] >= 0) & (stats["acceptance_rate"] <= 1))
    assert float(np.abs(stats["acceptance_rate"].diff("draw")).mean()) > 0.01
    assert np.all(2 ** (stats["tree_depth"] - 1) <= stats["n_steps"])
    assert np.all(stats["n_steps"] <= 2 ** stats["tree_depth"] - 1)
