"""exopk compare (PSIS-LOO with ArviZ) and power-scaling sensitivity verdicts."""

import sys

import numpy as np
import pytest

from exopk.cli import main
from exopk.errors import ExopkError
from exopk.inference.comparison import compare_results
from exopk.inference.fit import fit
from exopk.inference.result import load_fit
from exopk.inference.sensitivity import THRESHOLD, power_scaling, verdict

az = pytest.importorskip("arviz")

SHIPPED = "fits/mouse_iv_mps.nc"


@pytest.fixture(scope="module")
def short_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "short.nc"
    return fit("fits/mouse_iv_mps.toml", out=out, chains=2, warmup=150, draws=40, map_starts=1,
               processes=2, progress=False)


def test_compare_is_arviz_loo_on_the_results(short_fit):
    table = compare_results([SHIPPED, short_fit.path])
    assert set(table.index) == {"mouse_iv_mps", "short"}
    for name, path in (("mouse_iv_mps", SHIPPED), ("short", short_fit.path)):
        loo = az.loo(az.from_datatree(load_fit(path)), pointwise=True)
        assert table.loc[name, "elpd_loo"] == pytest.approx(loo.elpd_loo, rel=1e-12)
        assert table.loc[name, "n_pareto_k_high"] == int((loo.pareto_k.values > 0.7).sum())
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    best = table.index[0]
    assert table.loc[best, "elpd_diff"] == 0.0
    other = table.index[1]
    assert table.loc[other, "elpd_diff"] == pytest.approx(
        table.loc[best, "elpd_loo"] - table.loc[other, "elpd_loo"], rel=1e-12)


def test_compare_cli_prints_the_table(short_fit, capsys):
    assert main(["compare", SHIPPED, str(short_fit.path)]) == 0
    out = capsys.readouterr().out
    assert "elpd_loo" in out and "mouse_iv_mps" in out and "short" in out


def test_compare_refuses_results_on_other_data(short_fit, tmp_path):
    other = load_fit(short_fit.path)
    observed = other["observed_data"].to_dataset()
    other["observed_data"] = observed.assign(value=observed["value"] * 2)
    path = tmp_path / "other.nc"
    other.to_netcdf(path)
    with pytest.raises(ExopkError, match="other observations"):
        compare_results([short_fit.path, path])
    with pytest.raises(ExopkError, match="at least two"):
        compare_results([short_fit.path])
    with pytest.raises(ExopkError, match="not found"):
        compare_results([short_fit.path, tmp_path / "missing.nc"])


def test_compare_without_arviz_says_how_to_install(monkeypatch, short_fit):
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ExopkError, match=r"exopk\[analysis\]"):
        compare_results([SHIPPED, short_fit.path])


@pytest.mark.parametrize("prior,likelihood,expected", [
    (0.0, THRESHOLD, "informed by data"), (0.049, 0.3, "informed by data"),
    (THRESHOLD, THRESHOLD, "prior-data conflict"), (0.3, 0.049, "prior-dominated"),
    (0.0, 0.0, "prior-dominated"), (np.nan, 0.1, "not computed")])
def test_verdicts_follow_the_threshold(prior, likelihood, expected):
    assert verdict(prior, likelihood) == expected


def test_power_scaling_is_arviz_psens_on_sampling_coordinates_and_lands_in_the_summary(
        short_fit):
    tree = short_fit.tree
    ours = power_scaling(tree)
    data = az.from_datatree(tree)
    rate = data.posterior["k_uptake_liver"]             # bounds [1e-8, 100] in m2_mps: logit
    lower, upper = rate.attrs["lower"], rate.attrs["upper"]
    data.posterior = data.posterior.assign(
        tau=np.log(data.posterior["tau"]),
        k_uptake_liver=np.log((rate - lower) / (upper - rate)))
    for component, column in (("prior", "prior_sensitivity"),
                              ("likelihood", "likelihood_sensitivity")):
        theirs = az.psens(data, component=component, var_names=["tau", "k_uptake_liver"])
        for name in ("tau", "k_uptake_liver"):
            assert float(ours[column].sel(parameter=name)) == pytest.approx(
                float(theirs[name]), rel=1e-12)
    diagnostics = short_fit.diagnostics
    assert set(diagnostics["sensitivity_verdict"].values) <= {
        "informed by data", "prior-data conflict", "prior-dominated"}
    assert "power-scaling" in short_fit.summary()


def test_power_scaling_of_results_without_log_prior_is_not_computed():
    tree = load_fit(SHIPPED)
    if "log_prior" in tree.children:
        del tree["log_prior"]
    assert set(power_scaling(tree)["sensitivity_verdict"].values) == {"not computed"}
