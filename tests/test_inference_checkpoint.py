"""Interrupted chains resume from their checkpoint with the draws of an uninterrupted run."""

import numpy as np
import pints
import pytest

from exopk.errors import FitInterrupted
from exopk.inference import sampling
from exopk.inference.checkpoint import load_chain_states
from exopk.inference.samplers import NutsSettings


class CorrelatedGaussian(pints.LogPDF):
    """A 3-d correlated Gaussian that can raise KeyboardInterrupt after a number of calls."""

    def __init__(self, interrupt_after=None):
        super().__init__()
        self._precision = np.linalg.inv(np.array([[1.0, 0.8, 0.1], [0.8, 1.0, 0.3],
                                                  [0.1, 0.3, 2.0]]))
        self.calls = 0
        self.interrupt_after = interrupt_after

    def n_parameters(self):
        return 3

    def _tick(self):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt

    def __call__(self, x):
        self._tick()
        return float(-0.5 * x @ self._precision @ x)

    def evaluateS1(self, x):
        self._tick()
        return float(-0.5 * x @ self._precision @ x), -self._precision @ x


STARTS = [np.array([0.5, -0.2, 0.1]), np.array([-0.3, 0.4, 0.0])]
RUN = dict(seed=11, warmup=150, draws=120, processes=1, progress=False)


def _run(log_pdf, method, **options):
    settings = NutsSettings(max_tree_depth=6) if method == "nuts" else None
    return sampling.run_chains(log_pdf, STARTS, method=method, settings=settings, **RUN, **options)


@pytest.mark.parametrize("method", ["nuts", "haario_bardenet"])
def test_resumed_chains_equal_an_uninterrupted_run_bit_for_bit(method, tmp_path):
    reference = _run(CorrelatedGaussian(), method)
    every_iteration = 1e-12     # seconds between checkpoints
    # NUTS: part-way through the first chain; Haario-Bardenet: through the second
    interrupted = CorrelatedGaussian(interrupt_after=900 if method == "nuts" else 400)
    with pytest.raises(FitInterrupted) as stopped:
        _run(interrupted, method, checkpoint=tmp_path, checkpoint_seconds=every_iteration)
    assert stopped.value.exit_status == 130 and str(tmp_path) in str(stopped.value)
    states = load_chain_states(tmp_path, 2)
    assert any(state is not None and 0 < state.iteration < 270 for state in states)
    resumed = _run(CorrelatedGaussian(), method, checkpoint=tmp_path, resume=True,
                   checkpoint_seconds=every_iteration)
    for before, after in zip(reference, resumed):
        np.testing.assert_array_equal(after.draws, before.draws)
        np.testing.assert_array_equal(after.log_posterior, before.log_posterior)
        assert set(after.stats) == set(before.stats)
        for name in before.stats:
            np.testing.assert_array_equal(after.stats[name], before.stats[name])


def test_resume_without_a_checkpoint_folder_is_an_error():
    with pytest.raises(Exception, match="checkpoint folder"):
        _run(CorrelatedGaussian(), "nuts", resume=True)


@pytest.mark.parametrize("method", ["nuts", "haario_bardenet"])
def test_thinned_chains_keep_every_thin_th_draw_of_the_unthinned_run(method):
    thin = 3
    options = dict(seed=11, warmup=150, processes=1, progress=False,
                   settings=NutsSettings(max_tree_depth=6) if method == "nuts" else None)
    every = sampling.run_chains(CorrelatedGaussian(), STARTS, method=method, draws=60 * thin,
                                **options)
    thinned = sampling.run_chains(CorrelatedGaussian(), STARTS, method=method, draws=60,
                                  thin=thin, **options)
    for full, kept in zip(every, thinned):
        assert kept.draws.shape == (60, 3)
        np.testing.assert_array_equal(kept.draws, full.draws[thin - 1::thin])
        np.testing.assert_array_equal(kept.log_posterior, full.log_posterior[thin - 1::thin])
        for name in full.stats:
            np.testing.assert_array_equal(kept.stats[name], full.stats[name][thin - 1::thin])


@pytest.mark.parametrize("thin", [0, -2, 1.5, True])
def test_thin_that_is_not_a_positive_integer_is_refused(thin):
    with pytest.raises(Exception, match="thin"):
        _run(CorrelatedGaussian(), "nuts", thin=thin)
