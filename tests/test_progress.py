"""Fit progress: a tqdm bar on a terminal, plain lines when stderr is a file or a pipe."""

import io
import re

import numpy as np
import pints

from exopk.inference import sampling
from exopk.inference.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Gaussian(pints.LogPDF):
    def n_parameters(self):
        return 2

    def __call__(self, x):
        return float(-0.5 * x @ x)


def test_plain_lines_when_not_a_terminal_and_at_most_one_per_interval():
    log = io.StringIO()
    with Progress(100, description="MCMC", stream=log, interval=3600) as progress:
        for done in range(0, 101, 5):
            progress.update(done, f"at {done}")
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert log.getvalue().splitlines() == ["MCMC: 100/100 (100%) at 100"]
    every = io.StringIO()
    with Progress(4, stream=every, interval=0.0) as progress:
        for done in (1, 2, 3, 4):
            progress.update(done)
    assert every.getvalue().splitlines() == ["1/4 (25%)", "2/4 (50%)", "3/4 (75%)", "4/4 (100%)"]


def test_a_bar_redrawn_in_place_on_a_terminal():
    screen = Terminal()
    with Progress(50, description="MCMC", stream=screen) as progress:
        progress.update(20, "chain 1: 20/50")
        progress.update(50, "chain 1: 50/50")
    text = screen.getvalue()
    assert "\r" in text and "MCMC" in text and "50/50" in text and "100%" in text


def test_sequential_chains_report_through_the_same_progress(monkeypatch, capsys):
    monkeypatch.setattr(sampling.Progress, "__init__", _plain_init(Progress.__init__))
    results = sampling.run_chains(Gaussian(), [np.zeros(2), np.ones(2)], seed=1,
                                  method="haario_bardenet", warmup=60, draws=40, processes=1)
    assert len(results) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("MCMC: 200/200 (100%) chain 1: 100/100 lp ")
    assert re.search(r"chain 2: 100/100 lp -?\d+\.\d div 0$", lines[-1])
    assert not any("\r" in line for line in lines)


def _plain_init(original):
    """Progress with a plain line on every update (the interval is 0 s)."""
    def init(self, total, **options):
        original(self, total, **{**options, "interval": 0.0})
    return init
