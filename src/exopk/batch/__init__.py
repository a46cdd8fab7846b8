"""Many fits at once on Dask: a list of fit files, one fit file crossed with a grid of settings,
or simulated replicates (simulation-based calibration, parameter recovery).

``exopk batch BATCH.toml`` and :func:`run_batch` do the same. The batch file's layout is in
:mod:`exopk.batch.spec`, the output folder's in :mod:`exopk.batch.records`, how tasks run in
:mod:`exopk.batch.runner`. Dask (``pip install 'exopk[distributed]'``) is imported only when a
batch runs.
"""

__all__ = ["run_batch", "read_batch_file"]


def run_batch(spec, **options):
    """Run a batch file's unfinished tasks; see :func:`exopk.batch.runner.run_batch`."""
    from exopk.batch.runner import run_batch as run
    return run(spec, **options)


def read_batch_file(path):
    """Read and check a batch file; see :func:`exopk.batch.spec.read_batch_file`."""
    from exopk.batch.spec import read_batch_file as read
    return read(path)
