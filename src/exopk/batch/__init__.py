"""Many fits at once on Dask: a list of fit files, one fit file crossed with a grid of settings,
or simulated replicates (simulation-based calibration, parameter recovery).

``exopk batch BATCH.toml`` and :func:`run_batch` do the same. The batch file's layout is in
:mod:`exopk.batch.spec`, the output folder's in :mod:`exopk.batch.records`, how tasks run in
:mod:`exopk.batch.runner`. Dask (``pip install 'exopk[distributed]'``) is imported only when a
batch runs.
"""

__all__ = ["run_batch", "read_batch_file"]


def run_batch(spec, **options):
    """Run a batch file's unfinished tasks; see :func:`exopk.batch.runner.run_batch`.

    Examples
    --------
    A batch of three seeds of the main fit file (every task is a fit, too long to run here):

    >>> import pathlib, tempfile
    >>> from exopk.batch import read_batch_file, run_batch
    >>> fit_file = pathlib.Path("fits/mouse_iv_mps.toml").resolve()
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "seeds.toml"
    >>> _ = path.write_text(f'''
    ... [batch]
    ... fits = ["{fit_file.as_posix()}"]
    ... [settings]
    ... chains = 2
    ... draws = 200
    ... [grid]
    ... seed = [1, 2, 3]
    ... ''')
    >>> from exopk.batch.tasks import plan
    >>> [task.id for task in plan(read_batch_file(path))]
    ['mouse_iv_mps-0', 'mouse_iv_mps-1', 'mouse_iv_mps-2']

    On a local cluster of two worker processes, or on a running Dask cluster whose workers read
    the same paths (``dask worker tcp://10.0.0.5:8786 --nthreads 1``); a rerun skips the
    finished tasks:

    >>> result = run_batch(path, workers=2)                             # doctest: +SKIP
    >>> result = run_batch(path, scheduler="tcp://10.0.0.5:8786")       # doctest: +SKIP

    Contradicting options are refused before anything runs:

    >>> run_batch(path, workers=2, scheduler="tcp://10.0.0.5:8786")
    Traceback (most recent call last):
    ...
    exopk.errors.ExopkError: give one of scheduler, workers and client, not scheduler and workers
    >>> folder.cleanup()
    """
    from exopk.batch.runner import run_batch as run
    return run(spec, **options)


def read_batch_file(path):
    """Read and check a batch file; see :func:`exopk.batch.spec.read_batch_file`.

    Examples
    --------
    One fit file crossed with three seeds (fit files are relative to the batch file; this one
    is absolute):

    >>> import pathlib, tempfile
    >>> from exopk.batch import read_batch_file, run_batch
    >>> fit_file = pathlib.Path("fits/mouse_iv_mps.toml").resolve()
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "seeds.toml"
    >>> _ = path.write_text(f'''
    ... [batch]
    ... fits = ["{fit_file.as_posix()}"]
    ... [settings]
    ... chains = 2
    ... draws = 200
    ... [grid]
    ... seed = [1, 2, 3]
    ... ''')
    >>> spec = read_batch_file(path)
    >>> spec.name, spec.out.name, spec.settings
    ('seeds', 'seeds.batch', {'chains': 2, 'draws': 200})
    >>> [(point["seed"], point["chains"]) for point in spec.combinations()]
    [(1, 2), (2, 2), (3, 2)]
    >>> folder.cleanup()
    """
    from exopk.batch.spec import read_batch_file as read
    return read(path)
