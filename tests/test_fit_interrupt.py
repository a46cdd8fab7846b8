"""A fit killed part-way leaves no processes behind and resumes to the uninterrupted draws."""

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from exopk.inference.fit import fit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads child processes from /proc")

SETTINGS = """
[sampler]
method = "nuts"
chains = 2
warmup = 150
draws = 100
map_starts = 1
target_acceptance = 0.9
"""


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    text = Path("fits/mouse_iv_mps.toml").read_text()
    text = text.replace('"../models/m2_mps.toml"', '"m2_mps"')
    text = text[:text.index("[sampler]")] + SETTINGS
    path = tmp_path_factory.mktemp("interrupt") / "small.toml"
    path.write_text(text)
    return path


def _children(pid):
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _start(args, cwd):
    # checkpoints every 0.2 s: each run is seen part-way however fast the machine samples
    return subprocess.Popen([sys.executable, "-m", "exopk", "fit", *args, "--quiet",
                             "--checkpoint-seconds", "0.2"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_progress(process, folder, beyond=0, timeout=240):
    """Wait until chain 0 has saved a checkpoint past ``beyond`` iterations; its iteration.

    Polled every 20 ms; the first checkpoint past ``beyond`` is taken, long before the end.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        path = folder / "chain_0.pickle"
        if path.is_file():
            try:
                iteration = pickle.loads(path.read_bytes()).iteration
            except Exception:
                iteration = 0
            if iteration > beyond:
                return iteration
        time.sleep(0.02)
    raise AssertionError("no checkpoint was written in time")


def test_killed_fit_leaves_no_orphans_and_resumes_to_the_same_draws(fit_file, tmp_path):
    out = tmp_path / "run.nc"
    folder = tmp_path / "run.nc.checkpoint"

    # SIGTERM: one line, exit status 143, chain processes gone
    first = _start([str(fit_file), "--out", str(out)], tmp_path)
    reached = _wait_for_progress(first, folder)
    workers = _children(first.pid)
    assert workers, "the chains run in worker processes"
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 143
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers)
    assert not out.exists()

    # SIGKILL of a resumed run: the kernel ends the workers with it; the checkpoint survives
    second = _start(["--resume", str(folder)], tmp_path)
    _wait_for_progress(second, folder, beyond=reached)
    workers = _children(second.pid)
    second.kill()
    second.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)

    third = _start(["--resume", str(folder)], tmp_path)
    stdout, stderr = third.communicate(timeout=600)
    assert third.returncode == 0, stderr
    assert f"# wrote {out}" in stdout
    assert not folder.exists()
    assert not list(tmp_path.glob(".*.tmp"))

    reference = fit(fit_file, out=tmp_path / "reference.nc", progress=False, processes=2)
    resumed = pytest.importorskip("xarray").open_datatree(out)
    for name, values in reference.tree["posterior"].data_vars.items():
        np.testing.assert_array_equal(resumed["posterior"][name].values, values.values)


def test_orphaned_temporary_file_of_a_killed_write_is_removed(tmp_path):
    from exopk.io import write_atomically

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".result.nc.{dead.pid}.abcd.tmp"
    orphan.write_text("partial")
    live = tmp_path / f".result.nc.{os.getpid()}.efgh.tmp"
    live.write_text("in progress")
    write_atomically(tmp_path / "result.nc", lambda p: p.write_text("done"))
    assert not orphan.exists()
    assert live.exists()                      # a running writer's file is left alone
    assert (tmp_path / "result.nc").read_text() == "done"


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "soon"])
def test_checkpoint_interval_that_is_not_a_positive_number_is_refused(seconds, tmp_path):
    done = subprocess.run([sys.executable, "-m", "exopk", "fit", "fits/mouse_iv_mps.toml",
                           "--checkpoint-seconds", seconds], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--checkpoint-seconds" in done.stderr and seconds in done.stderr


def test_checkpoint_interval_is_checked_before_any_work(fit_file, tmp_path):
    from exopk.errors import ExopkError

    with pytest.raises(ExopkError, match="checkpoint_seconds = 0"):
        fit(fit_file, out=tmp_path / "never.nc", checkpoint_seconds=0, progress=False)
    assert not list(tmp_path.iterdir())
