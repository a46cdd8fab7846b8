"""The sampler registry, typed settings and the NUTS statistics read from PINTS' internals."""

import numpy as np
import pints
import pints.toy
import pytest

from exopk.errors import ExopkError
from exopk.inference.pints_nuts import PINTS_VERSION, STATISTICS, NutsRecorder
from exopk.inference.samplers import (SAMPLERS, HaarioBardenetSettings, NutsSettings,
                                      sampler_settings)
from exopk.inference.sampling import run_chains


def test_the_adapter_is_pinned_to_the_installed_pints():
    # pints_nuts reads NoUTurnMCMC's coroutine and adaptor; another PINTS needs a new check
    assert pints.__version__ == PINTS_VERSION


@pytest.mark.parametrize("setting, value", [("max_tree_depth", 0), ("max_tree_depth", 2.5),
                                            ("target_acceptance", 1.0), ("metric", "unit")])
def test_nuts_settings_name_the_bad_setting(setting, value):
    with pytest.raises(ValueError, match=f"'{setting}'"):
        NutsSettings(**{setting: value})


def test_settings_of_another_sampler_are_refused():
    with pytest.raises(ValueError, match="'max_tree_depth'.*initial_phase_fraction"):
        sampler_settings("haario_bardenet", max_tree_depth=5)
    with pytest.raises(ValueError, match="unknown sampler 'hmc'"):
        sampler_settings("hmc")
    with pytest.raises(ValueError, match="initial_phase_fraction"):
        HaarioBardenetSettings(initial_phase_fraction=0.0)


def test_gradients_follow_needs_sensitivities():
    assert SAMPLERS["nuts"].pints_class([0.0], [1.0]).needs_sensitivities()
    assert not SAMPLERS["haario_bardenet"].pints_class([0.0], [1.0]).needs_sensitivities()


def _hand_run(target, x0, seed, warmup, iterations, record):
    """PINTS NUTS driven by ask/tell alone, optionally through the recorder."""
    np.random.seed(seed)
    sampler = pints.NoUTurnMCMC(x0, np.full(len(x0), 0.1))
    sampler.set_number_adaption_steps(warmup)
    driver = NutsRecorder(sampler) if record else sampler
    running_means, leapfrogs, stats, draws = [], [], [], []
    while len(draws) < iterations:
        reply = driver.tell(target.evaluateS1(driver.ask()))
        if reply is not None:
            draws.append(reply[0])
            running_means.append(sampler._mcmc_acceptance)
            leapfrogs.append(sampler._n_leapfrog)
            stats.append(dict(driver.last) if record else {})
    return np.array(draws), np.array(running_means), np.array(leapfrogs), stats


def test_nuts_statistics_match_pints_running_means_and_leave_the_draws_alone():
    target = pints.toy.GaussianLogPDF([0.0, 1.0, -2.0], [1.0, 4.0, 0.25])
    x0 = np.array([0.5, 0.5, -1.5])
    plain, _, _, _ = _hand_run(target, x0, 7, 150, 300, record=False)
    draws, means, leapfrogs, stats = _hand_run(target, x0, 7, 150, 300, record=True)
    np.testing.assert_array_equal(draws, plain)
    assert all(set(s) == set(STATISTICS) for s in stats)

    # PINTS' running means m_k = (k m_{k-1} + a_k) / (k + 1), m_0 = 0, undone
    k = np.arange(1, len(means) + 1)
    previous = np.concatenate([[0.0], means[:-1]])
    pints_acceptance = (k + 1) * means - k * previous      # alpha / n_alpha, initial point in
    n_alpha = (k + 1) * leapfrogs - k * np.concatenate([[0.0], leapfrogs[:-1]])
    n_steps = np.array([s["n_steps"] for s in stats])
    np.testing.assert_allclose(n_alpha, n_steps + 1, atol=1e-9)
    stan_acceptance = np.array([s["acceptance_rate"] for s in stats])
    np.testing.assert_allclose(stan_acceptance, (pints_acceptance * (n_steps + 1) - 1) / n_steps,
                               atol=1e-9)
    assert np.all((stan_acceptance >= 0) & (stan_acceptance <= 1))
    # a per-draw statistic moves from draw to draw; the running mean barely does
    assert np.std(np.diff(stan_acceptance[150:])) > 100 * np.std(np.diff(means[150:]))

    # the depth of a tree of L leapfrog steps: 2**(depth-1) <= L <= 2**depth - 1
    depth = np.array([s["tree_depth"] for s in stats])
    np.testing.assert_array_equal(depth, np.floor(np.log2(n_steps)).astype(int) + 1)

    # energy = -log p(previous draw) + K(r0): the kinetic part of a standard-normal momentum
    # under the adapted metric has mean n/2 = 1.5 and variance n/2 = 1.5
    energy = np.array([s["energy"] for s in stats])
    log_p = np.array([target(x) for x in draws])
    kinetic = energy[151:] + log_p[150:-1]
    assert np.all(kinetic >= 0)
    assert kinetic.mean() == pytest.approx(1.5, abs=4 * np.sqrt(1.5 / kinetic.size))
    step = np.array([s["step_size"] for s in stats])
    assert np.all(step[150:] == step[150]) and step[150] > 0


def test_run_chains_refuses_foreign_settings_and_short_warmup():
    target = pints.toy.GaussianLogPDF([0.0], [1.0])
    with pytest.raises(ExopkError, match="NutsSettings, got HaarioBardenetSettings"):
        run_chains(target, [np.zeros(1)], seed=1, settings=HaarioBardenetSettings(),
                   progress=False)
    with pytest.raises(ExopkError, match="at least 150 warm-up"):
        run_chains(target, [np.zeros(1)], seed=1, warmup=20, progress=False)
