"""The shipped fit results: made by the shipped code, converged, and within every plausibility
bound of their model."""

import json
from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.inference.fit import fit
from exopk.inference.plausibility import check_plausibility
from exopk.inference.preparation import prepare
from exopk.inference.result import load_fit
from exopk.inference.summary import ESS_LIMIT, RHAT_LIMIT, fit_diagnostics
from exopk.provenance import numeric_kernels

FITS = sorted(path for path in Path("fits").glob("*.toml") if path.with_suffix(".nc").is_file())


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


@pytest.mark.parametrize("fit_file", FITS, ids=lambda p: p.stem)
def test_shipped_draws_have_the_log_posterior_the_current_code_gives(fit_file):
    """Model files, evidence, priors and likelihood are those the draws were sampled under."""
    tree = load_fit(fit_file.with_suffix(".nc"))
    lp = prepare(fit_file).log_posterior
    assert tree.attrs["fit_file_text"] == fit_file.read_text()
    posterior = tree["posterior"]
    for draw in (0, 1, posterior.sizes["draw"] // 2, posterior.sizes["draw"] - 1):
        natural = {variable: float(posterior[variable].values[0, draw])
                   for variable in posterior.data_vars}
        stored = float(tree["sample_stats"]["lp"].values[0, draw])
        assert lp(_coordinates(lp, natural)) == pytest.approx(stored, rel=1e-9, abs=1e-9), \
            f"{fit_file.stem}: draw {draw}"


def _coordinates(lp, natural):
    """The sampling coordinates of one draw's natural values (the inverse of ``lp.natural``)."""
    phi = lp.to_unconstrained(natural)
    for position in range(len(lp.free) + 1, lp.n_parameters()):
        name = lp.names[position]
        phi[position] = (np.log(natural[name.removeprefix("log ")]) if name.startswith("log ")
                         else natural[name])
    return phi


def test_the_main_result_reproduces_its_first_draws_bit_for_bit():
    """MAP, chain starts and NUTS of the shipped code give the committed draws, same seed.

    Bit for bit only where the compiled kernels are those that made the result (the
    ``numeric_kernels`` of its provenance): BLAS kernels and numpy's SIMD loops differ between
    processors in the last bit, and a sampler's path amplifies that. Elsewhere the comparison
    means nothing; that the seed gives the same draws on one machine is tested in
    ``test_inference_fit``, and the shipped draws' log posterior above."""
    shipped = load_fit("fits/mouse_iv_mps.nc")
    made_by = json.loads(shipped.attrs["provenance"])["numeric_kernels"]
    if made_by != numeric_kernels():
        pytest.skip(f"fits/mouse_iv_mps.nc was made with kernels {made_by}, this machine has "
                    f"{numeric_kernels()}")
    again = fit("fits/mouse_iv_mps.toml", chains=2, draws=4, processes=2, progress=False,
                write=False)
    assert json.loads(again.tree.attrs["provenance"])["numeric_kernels"] == made_by
    for variable, values in again.tree["posterior"].data_vars.items():
        np.testing.assert_array_equal(
            values.values, shipped["posterior"][variable].values[:2, :4], err_msg=variable)
