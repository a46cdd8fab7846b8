"""The shipped fit results: converged, and within every plausibility bound of their model."""

from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.inference.plausibility import check_plausibility
from exopk.inference.preparation import prepare
from exopk.inference.result import load_fit
from exopk.inference.summary import ESS_LIMIT, RHAT_LIMIT, fit_diagnostics

FITS = sorted(Path("fits").glob("*.toml"))


def _posterior(fit_file):
    result = load_fit(fit_file.with_suffix(".nc"))
    prepared = prepare(fit_file)
    sets = prepared.log_posterior.parameter_sets(result["posterior"])
    return prepared, result, sets.values


@pytest.mark.parametrize("fit_file", FITS, ids=lambda p: p.stem)
def test_a_shipped_result_respects_its_models_bounds(fit_file):
    prepared, result, sets = _posterior(fit_file)
    checked = check_plausibility(prepared.model, sets)
    violated = [f"{b}: {float(v):.4g}" for b, v, bad in zip(
        checked["bound"].values, checked["value"].values, checked["violated"].values) if bad]
    assert not violated, f"{fit_file}: bounds violated: {violated}"


@pytest.mark.parametrize("fit_file", FITS, ids=lambda p: p.stem)
def test_a_shipped_result_has_converged(fit_file):
    diagnostics = fit_diagnostics(load_fit(fit_file.with_suffix(".nc")))
    assert float(diagnostics["max_rhat"]) <= RHAT_LIMIT
    assert float(diagnostics["min_ess_bulk"]) >= ESS_LIMIT
    assert int(diagnostics["divergences"]) == 0


@pytest.mark.parametrize("name", ["mouse_brain", "iv_vs_intranasal"])
def test_brain_after_an_iv_bolus_is_physiology(name):
    """Brain %ID 1 h after an IV bolus: median below 1 %ID, 95th percentile below 5 %ID."""
    prepared, _, sets = _posterior(Path("fits") / f"{name}.toml")
    thinned = sets.reshape(-1, sets.shape[-1])[::5]
    brain = exopk.simulate(prepared.model, thinned, [60.0], exopk.Regimen.bolus("iv", 100.0))
    values = brain["value"].sel(output="brain_percent_id").values.ravel()
    assert np.median(values) < 1.0 and np.quantile(values, 0.95) < 5.0
