"""The labelled fit summary: convergence numbers against ArviZ, shrinkage, and misfit."""

import json
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import xarray as xr

from exopk.cli import main
from exopk.inference.fit import FitResult
from exopk.inference.result import build_tree, load_fit
from exopk.inference.summary import fit_diagnostics, format_summary, summarize

from conftest import DATA

from test_inference_diagnostics import REFERENCE, recipe_draws


def small_tree(posterior, *, observed, mean, replicate, prior_mean=None, censoring=None,
               upper=None, bounds=None, prior=None):
    """A fit result around given draws (one chain-draw layout for every group)."""
    n = len(observed)
    censoring = censoring or ["none"] * n
    observations = xr.Dataset(
        {"value": ("observation", np.asarray(observed, dtype=float)),
         "upper": ("observation", np.asarray(upper if upper is not None else [np.nan] * n)),
         "sigma_log": ("observation", np.full(n, 0.1))},
        coords={"observation": np.arange(n), "study": ("observation", [f"s{i}" for i in range(n)]),
                "line": ("observation", np.arange(n) + 2),
                "kind": ("observation", ["value"] * n), "output": ("observation", ["plasma"] * n),
                "censoring": ("observation", censoring),
                "is_proxy": ("observation", np.zeros(n, dtype=bool))})
    some = next(iter(posterior.values()))
    return build_tree(
        posterior=posterior, units={}, bounds=bounds,
        sample_stats={"diverging": np.zeros(some.shape, dtype=bool)},
        prior=prior or {k: v[:1] for k, v in posterior.items()},
        prior_predictive_mean=(prior_mean if prior_mean is not None else mean)[:1],
        predictive_mean=mean, predictive_draws=replicate,
        log_likelihood=np.zeros_like(mean), observed=observations, attrs={})


@pytest.mark.parametrize("case", [c for c in REFERENCE["cases"]
                                  if c["arviz"]["rhat"] is not None],
                         ids=lambda case: case["name"])
def test_parameter_numbers_match_the_arviz_reference(case):
    draws = recipe_draws(case)
    shape = draws.shape + (1,)
    tree = small_tree({"x": draws}, observed=[1.0], mean=np.ones(shape), replicate=np.ones(shape))
    row = summarize(tree).sel(parameter="x")
    for key in ("rhat", "ess_bulk", "ess_tail", "mcse_mean"):
        assert float(row[key]) == pytest.approx(case["arviz"][key], rel=1e-9, abs=1e-12), key
    assert float(row["sd"]) == pytest.approx(np.std(draws, ddof=1), rel=1e-12)
    assert float(row["q50"]) == pytest.approx(np.median(draws), rel=1e-12)


def test_a_result_written_before_the_diagnostics_group_is_summarised_from_its_draws():
    # the shipped mouse_iv_mps result as written before results had a diagnostics group
    tree = load_fit(DATA / "mouse_iv_mps_before_diagnostics_group.nc")
    assert "diagnostics" not in tree.children
    summary = fit_diagnostics(tree)
    stored = json.loads(tree.attrs["diagnostics"])   # the old JSON summary (ddof 0)
    for name, old in stored["parameters"].items():
        row = summary.sel(parameter=name)
        for key in ("rhat", "ess_bulk", "ess_tail", "mean", "q5", "q95", "shrinkage"):
            assert float(row[key]) == pytest.approx(old[key], rel=1e-12), (name, key)
        draws = tree["posterior"][name].values
        assert float(row["sd"]) == pytest.approx(np.std(draws, ddof=1), rel=1e-12)
    assert summary.sizes == {"parameter": 14, "observation": 10}
    for i, old in enumerate(stored["predictions"]):
        assert float(summary["prediction_q50"][i]) == pytest.approx(old["q50"], rel=1e-12)
    assert bool(summary["converged"]) and int(summary["divergences"]) == 0
    assert str(summary["unit"].sel(parameter="k_uptake_liver").item()) == "1/min"


def test_shrinkage_in_sampling_coordinates():
    rng = np.random.default_rng(3)
    # a fraction in (0, 1): logit coordinates; posterior logit sd 0.5, prior logit sd 2
    posterior = {"f": scipy.special.expit(rng.normal(0.0, 0.5, (4, 2000)))}
    prior = {"f": scipy.special.expit(rng.normal(0.0, 2.0, (1, 20000)))}
    ones = np.ones((4, 2000, 1))
    tree = small_tree(posterior, prior=prior, bounds={"f": (0.0, 1.0)}, observed=[1.0],
                      mean=ones, replicate=ones)
    assert float(summarize(tree)["shrinkage"].sel(parameter="f")) == pytest.approx(0.25, rel=0.03)


def test_misfit_intervals_p_values_and_structural_predictions():
    rng = np.random.default_rng(5)
    shape = (4, 5000)
    log_replicate = rng.normal(0.0, 1.0, shape + (5,))     # log y ~ N(0, 1) for every observation
    replicate = np.exp(log_replicate)
    mean = np.exp(rng.normal(0.0, 0.3, shape + (5,)))
    mean[..., 4] = 1.225 + 1e-16 * rng.normal(size=shape)   # a prediction no parameter moves
    prior_mean = mean.copy()
    prior_mean[..., :4] *= np.exp(rng.normal(0.0, 1.0, shape + (4,)))
    # published: at the median, beyond the 99.5% point, an upper bound far below every
    # replicate, a lower bound at the median, and the structural one
    observed = [1.0, math.exp(3.2), math.exp(-4.0), 1.0, 3.15]
    tree = small_tree({"x": rng.normal(size=shape)}, observed=observed, mean=mean,
                      replicate=replicate, prior_mean=prior_mean,
                      censoring=["none", "none", "upper", "lower", "none"])
    summary = summarize(tree)
    np.testing.assert_array_equal(summary["outside_99"], [False, True, True, False, False])
    np.testing.assert_array_equal(summary["outside_90"], [False, True, True, False, False])
    np.testing.assert_array_equal(summary["structural"], [False, False, False, False, True])
    # normal quantiles of log y, within 4 Monte Carlo sd of a quantile of 20000 draws
    assert math.log(float(summary["ppi90_upper"][0])) == pytest.approx(1.6449, abs=0.06)
    assert math.log(float(summary["ppi99_lower"][0])) == pytest.approx(-2.5758, abs=0.14)
    expected_p = [1.0, 2 * scipy.stats.norm.sf(3.2), scipy.stats.norm.cdf(-4.0), 0.5,
                  2 * scipy.stats.norm.sf(math.log(3.15))]
    np.testing.assert_allclose(summary["p_value"], expected_p, atol=0.02)
    assert float(summary["z"][1]) == pytest.approx(3.2, abs=0.05)
    assert math.isnan(float(summary["z"][2]))
    assert int(summary["n_outside_99"]) == 2 and bool(summary["misfit"])
    assert math.isnan(float(summary["prediction_shrinkage"][4]))
    text = format_summary(_with_fit_attrs(tree), summary)
    assert "MISFIT: 2 of 5 published values outside their 90%" in text
    assert "structural: s4:6 value plasma is 1.225" in text


def _with_fit_attrs(tree):
    tree.attrs.update(fit_name="t", model="m", chains=4, draws=5000, warmup=0, sampler="nuts",
                      seed=1, map_log_density=0.0)
    return tree


def test_strict_fails_on_misfit_with_its_own_status(monkeypatch, capsys):
    tree = load_fit("fits/mouse_iv_mps.nc")
    summary = fit_diagnostics(tree).assign(misfit=((), True))
    monkeypatch.setattr("exopk.inference.fit.fit",
                        lambda *a, **k: FitResult(tree=tree, diagnostics=summary, path=None))
    assert main(["fit", "fits/mouse_iv_mps.toml", "--strict", "--quiet"]) == 4
    captured = capsys.readouterr()
    assert "MISFIT" in captured.out and "--strict: the fit misses published values" in captured.err
    assert main(["fit", "fits/mouse_iv_mps.toml", "--quiet"]) == 0


def test_figures_read_the_diagnostics_of_a_shipped_result(tmp_path):
    from exopk.figures import shrinkage_figure
    path = shrinkage_figure(load_fit("fits/mouse_iv_mps.nc"), tmp_path / "shrinkage.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
