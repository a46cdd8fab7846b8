"""``exopk batch``: simulated replicates and fit grids on dask.distributed, resumed after an
interrupt, with failed tasks recorded and bad batch files refused before any work."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exopk.batch.spec import parse_batch, read_batch_file
from exopk.batch.tasks import plan
from exopk.cli import main
from exopk.errors import ModelFileError

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

SRC = Path(__file__).resolve().parent.parent / "src"

# m0 on three closed-form readouts of one mouse IV study (clearance, Vss, MRT): a replicate is
# a few seconds
FIT = """
[fit]
name = "m0_ref26"
model = "m0_one_compartment"
seed = 11
[evidence]
species = ["mouse"]
routes = ["iv"]
studies = ["kim2019_review_ref26"]
[conditions]
parkinson_model = {}
[sampler]
chains = 2
warmup = 150
draws = 20
map_starts = 1
"""

SBC = """
[batch]
name = "sbc"
[simulate]
fit = "m0.toml"
replicates = 20
thin_to = 19
[settings]
chains = 1
draws = 19
max_tree_depth = 3
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "m0.toml").write_text(FIT)
    return tmp_path


def records(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "tasks").glob("*.json"))}


def test_sbc_batch_is_interrupted_and_resumed(folder):
    """A 20-replicate SBC batch: the command is stopped by SIGINT after 3 replicates (its
    worker processes end with it, only complete files are left), a rerun on a 2-worker local
    cluster skips them and completes, and the ranks are those of a replicate run again here."""
    (folder / "sbc.toml").write_text(SBC)
    out = folder / "sbc.batch"
    process = subprocess.Popen(
        [sys.executable, "-m", "exopk", "batch", "sbc.toml", "--workers", "2"], cwd=folder,
        env={**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while len(list(out.glob("tasks/*.json"))) < 3 and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.1)
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= 2                          # the local cluster's worker processes
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted by SIGINT" in err and "rerun the batch" in err
    psutil.wait_procs(children, timeout=10)
    assert not [c.pid for c in children if c.is_running() and c.status() != "zombie"]
    first = records(out)
    assert 3 <= len(first) < 20
    assert not list(out.rglob("*.tmp"))
    assert all(r["status"] == "done" for r in first.values())

    from exopk.batch import run_batch
    result = run_batch(folder / "sbc.toml", out=out, workers=2, progress=False)
    assert result.skipped == len(first) and result.done == 20 and not result.failed
    final = records(out)
    assert {k: final[k] for k in first} == first           # finished tasks were not rerun
    for record in final.values():
        for parameter in ("CL", "V_plasma", "tau"):
            assert 0 <= record["parameters"][parameter]["rank"] <= 19
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 21 and all(",done," in line for line in summary[1:])
    assert "rank[CL]" in summary[0]

    from exopk.batch.worker import run_task
    task = min(result.tasks, key=lambda t: final[t.id]["seconds"])
    here = run_task(task.spec, str(out / "here.nc"))
    assert here["parameters"] == final[task.id]["parameters"]


def stub_task(spec, result_path):
    """A replicate that fails for replicate 1 and reports fixed numbers otherwise."""
    if spec["replicate"] == 1 and not os.environ.get("EXOPK_TEST_REPAIRED"):
        raise ValueError("replicate 1 broke")
    return {"numbers": {"divergences": 0}, "tree": None, "seconds": 0.0, "worker": "here",
            "parameters": {"CL": {"rank": spec["replicate"], "covered": True, "z": 0.0,
                                  "sd": 1.0, "truth": 1.0}}}


def test_a_failed_task_is_recorded_and_the_others_go_on(folder, monkeypatch):
    import exopk.batch.worker
    from exopk.batch import run_batch
    (folder / "sbc.toml").write_text(SBC.replace("replicates = 20", "replicates = 4"))
    monkeypatch.setattr(exopk.batch.worker, "run_task", stub_task)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        result = run_batch(folder / "sbc.toml", client=client, progress=False)
        assert result.failed == ["m0_ref26-001"] and result.done == 3
        record = records(result.folder)["m0_ref26-001"]
        assert record["status"] == "failed" and record["error"] == "ValueError: replicate 1 broke"
        assert "m0_ref26-001,failed," in (result.folder / "summary.csv").read_text()
        assert main(["batch", str(folder / "sbc.toml"), "--scheduler", client.scheduler.address,
                     "--quiet"]) == 6                    # still failing: exit status 6
        monkeypatch.setenv("EXOPK_TEST_REPAIRED", "1")
        rerun = run_batch(folder / "sbc.toml", client=client, progress=False)
    assert rerun.skipped == 3 and rerun.done == 4 and not rerun.failed


def test_a_grid_of_fits_writes_each_result_with_its_settings(folder):
    """Two seeds of one fit file (Laplace, fast): each result is a fit result whose recorded
    fit file has the task's seed, and the summary has a row per task."""
    from exopk.batch import run_batch
    from exopk.inference.fitfile import parse_fit
    from exopk.inference.result import load_fit
    (folder / "grid.toml").write_text('[batch]\nfits = ["m0.toml"]\n[settings]\nmethod = "map"\n'
                                      '[grid]\nseed = [5, 6]\n')
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        result = run_batch(folder / "grid.toml", out=folder / "grid", client=client,
                           progress=False)
    assert result.done == 2 and not result.failed
    for task_id, seed in (("m0_ref26-0", 5), ("m0_ref26-1", 6)):
        tree = load_fit(folder / "grid" / "tasks" / f"{task_id}.nc")
        assert tree.attrs["seed"] == seed
        assert parse_fit(tree.attrs["fit_file_text"]).seed == seed
        assert tree["posterior"].attrs["approximation"]
    assert "converged" in result.report() and "m0_ref26-1" in result.report()


def test_without_dask_the_command_says_how_to_install_it(folder, monkeypatch, capsys):
    (folder / "sbc.toml").write_text(SBC)
    monkeypatch.setitem(sys.modules, "distributed", None)      # import distributed fails
    assert main(["batch", str(folder / "sbc.toml")]) == 2
    assert "pip install 'exopk[distributed]'" in capsys.readouterr().err


@pytest.mark.parametrize("text, key, message", [
    ('[batch]\nfits = ["a.toml"]\nfit = "b.toml"\n', "batch", "unknown key(s) fit (did you mean "
     "'fits'?)"),
    ('[batch]\nname = "x"\n', "batch", "give either fit files"),
    ('[batch]\nfits = ["a.toml"]\n[simulate]\nfit = "a.toml"\nreplicates = 2\n', "batch.fits",
     "one of the two"),
    ('[batch]\nfits = ["a.toml"]\n[grid]\nseed = 3\n', "grid.seed", "non-empty list"),
    ('[batch]\nfits = ["a.toml"]\n[grid]\nseed = [1, -2]\n', "grid.seed[1]", ">= 0"),
    ('[batch]\nfits = ["a.toml"]\n[settings]\nchains = 1\n', "settings.chains", ">= 2"),
    ('[batch]\nfits = ["a.toml"]\n[settings]\ndraws = 9\n[grid]\ndraws = [5, 6]\n', "grid.draws",
     "both set"),
    ('[batch]\nfits = ["a.toml"]\n[settings]\ntarget_acceptance = 1.2\n',
     "settings.target_acceptance", "between 0 and 1"),
    ('[batch]\nfits = ["a.toml"]\n[settings]\nsampler = "nuts"\n', "settings", "unknown key(s) "
     "sampler"),
    ('[simulate]\nfit = "a.toml"\nreplicates = 0\n', "simulate.replicates", ">= 1"),
    ('[simulate]\nfit = "a.toml"\n', "simulate.replicates", "missing required key"),
    ('[simulate]\nfit = "a.toml"\nreplicates = 2\ntruth = "posterior"\n', "simulate.truth",
     "unknown truth"),
    ('[simulate]\nfit = "a.toml"\nreplicates = 2\n[settings]\nseed = 3\n', "settings",
     "unknown key(s) seed"),
    ('[simulate]\nfit = "a.toml"\nreplicates = 2\n[grid]\ndraws = [5]\n', "grid", "no grid"),
])
def test_malformed_batch_files_name_the_key(text, key, message):
    with pytest.raises(ModelFileError) as info:
        parse_batch(text, path="b.toml")
    assert info.value.file == "b.toml" and info.value.key == key and message in str(info.value)


@pytest.mark.parametrize("text, key, message", [
    ('[simulate]\nfit = "m0.toml"\nreplicates = 2\nthin_to = 19\ntruth = { CLL = 0.02 }\n',
     "simulate.truth.CLL", "did you mean 'CL'"),
    ('[simulate]\nfit = "m0.toml"\nreplicates = 2\nthin_to = 19\ntruth = { CL = 0.02, tau = 0.3 }\n',
     "simulate.truth", "no true value for V_plasma"),
    ('[simulate]\nfit = "m0.toml"\nreplicates = 2\nthin_to = 19\ntruth = { CL = -1, V_plasma = 1, tau = 0.3 }'
     '\n', "simulate.truth", "outside its parameter's bounds"),
    ('[simulate]\nfit = "m0.toml"\nreplicates = 2\nthin_to = 99\n[settings]\nchains = 1\n',
     "simulate.thin_to", "more than the 1 x 20"),
    ('[batch]\nfits = ["m0.toml"]\n[grid]\npriors.tau = [{ median = 0.5, sigma = 1 }]\n',
     "grid.priors.tau", "has no parameter 'tau'"),
    ('[batch]\nfits = ["m0.toml"]\n[settings]\nwarmup = 20\n', "settings.warmup",
     ">= 150"),
    ('[batch]\nfits = ["m0.toml", "again/m0.toml"]\n', "batch.fits", "same name"),
])
def test_batches_that_do_not_fit_their_fit_files_are_refused_before_running(folder, text, key,
                                                                           message):
    (folder / "again").mkdir()
    (folder / "again" / "m0.toml").write_text(FIT)
    (folder / "b.toml").write_text(text)
    with pytest.raises(ModelFileError) as info:
        plan(read_batch_file(folder / "b.toml"))
    assert info.value.file == str(folder / "b.toml") and info.value.key == key
    assert message in str(info.value)


def test_the_command_names_a_bad_batch_file_and_key(folder, capsys):
    (folder / "b.toml").write_text('[batch]\nfits = ["m0.toml"]\n[settings]\nseeds = 3\n')
    assert main(["batch", str(folder / "b.toml")]) == 2
    err = capsys.readouterr().err
    assert str(folder / "b.toml") in err and "'settings'" in err and "did you mean 'seed'" in err


def test_a_replicate_with_given_true_values_is_simulated_at_them(folder):
    """Without Dask: the task a worker runs simulates at the given truth and ranks it."""
    from exopk.batch.worker import run_task
    truth = {"CL": 0.02, "V_plasma": 1.2, "tau": 0.3}
    (folder / "b.toml").write_text('[simulate]\nfit = "m0.toml"\nreplicates = 2\nthin_to = 19\n'
                                   'truth = { CL = 0.02, V_plasma = 1.2, tau = 0.3 }\n'
                                   '[settings]\nchains = 1\ndraws = 19\n')
    tasks = plan(read_batch_file(folder / "b.toml"))
    assert [t.spec["truth"] for t in tasks] == [truth, truth]
    assert tasks[0].spec["seed"] != tasks[1].spec["seed"]
    outcome = run_task(tasks[0].spec, str(folder / "unused.nc"))
    for name, value in truth.items():
        assert outcome["parameters"][name]["truth"] == pytest.approx(value, rel=1e-12)
        assert 0 <= outcome["parameters"][name]["rank"] <= 19
    assert outcome["tree"] is None and outcome["numbers"]["max_rhat"] is None   # one chain


def test_workers_with_several_threads_are_refused(folder):
    """Two tasks in one process would share numpy's global random state."""
    from exopk.batch import run_batch
    from exopk.errors import ExopkError
    (folder / "sbc.toml").write_text(SBC)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=":0") as client:
        with pytest.raises(ExopkError, match="--nthreads 1"):
            run_batch(folder / "sbc.toml", client=client, progress=False)


def test_a_signal_while_the_cluster_starts_shuts_it_down(folder, monkeypatch):
    """SIGTERM during LocalCluster start waits for the cluster, then ends the batch (143) and
    closes it: no worker is left running."""
    from types import SimpleNamespace

    from exopk.batch import runner

    closed = []

    class Cluster:
        def __init__(self, **options):
            os.kill(os.getpid(), signal.SIGTERM)      # arrives while the cluster starts

        def close(self):
            closed.append("cluster")

    class Client:
        def __init__(self, cluster):
            pass

        def close(self):
            closed.append("client")

    fake = SimpleNamespace(LocalCluster=Cluster, Client=Client)
    monkeypatch.setattr(runner, "_distributed", lambda: fake)
    (folder / "sbc.toml").write_text(SBC)
    def caller_handler(number, frame):     # where the signal would go without the runner's
        raise AssertionError("SIGTERM went past the batch runner")

    previous = signal.signal(signal.SIGTERM, caller_handler)
    try:
        with pytest.raises(runner.BatchInterrupted) as stopped:
            runner.run_batch(folder / "sbc.toml", out=folder / "out", progress=False)
        assert signal.getsignal(signal.SIGTERM) is caller_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.value.exit_status == 143
    assert closed == ["client", "cluster"]


def test_replicates_of_a_fit_file_with_another_sampler_are_refused(folder):
    (folder / "hb.toml").write_text(FIT.replace("[sampler]\n",
                                                '[sampler]\nmethod = "haario_bardenet"\n'))
    (folder / "b.toml").write_text('[simulate]\nfit = "hb.toml"\nreplicates = 2\nthin_to = 19\n')
    with pytest.raises(ModelFileError, match="fitted with NUTS; the fit file's sampler is "
                                             "'haario_bardenet'") as info:
        plan(read_batch_file(folder / "b.toml"))
    assert info.value.key == "sampler.method"


def test_replicates_keep_the_fit_files_thinning(folder):
    """thin = 2 in the fit file: a replicate keeps every second draw of the unthinned chain."""
    from exopk.batch.worker import _prepared
    from exopk.inference.simulated import fit_simulated
    (folder / "thin.toml").write_text(FIT.replace("draws = 20\n", "draws = 10\nthin = 2\n"))
    (folder / "b.toml").write_text('[simulate]\nfit = "thin.toml"\nreplicates = 1\nthin_to = 9\n'
                                   '[settings]\nchains = 1\n')
    spec = plan(read_batch_file(folder / "b.toml"))[0].spec
    assert spec["thin"] == 2 and spec["draws"] == 10
    prepared = _prepared(spec["fit_file"], spec["fit_file_text"])
    thinned = fit_simulated(prepared, 5, chains=1, draws=10, map_starts=1, thin=spec["thin"])
    every = fit_simulated(prepared, 5, chains=1, draws=20, map_starts=1)
    assert thinned.draws.shape == (1, 10, every.draws.shape[2])
    assert (thinned.draws == every.draws[:, 1::2]).all()
