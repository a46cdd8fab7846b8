"""What a Dask worker runs for one task of a batch: a fit, or a fit to simulated data.

A worker runs one task at a time with its chains one after another (``processes=1``): the
batch's parallelism is one task per worker process. Nothing is written here; the outcome goes
back to the process that runs the batch, which writes it (so workers on other machines need
the batch's input files at the same paths, not its output folder).
"""

from __future__ import annotations

import functools
import socket
import time

__all__ = ["run_task"]


def run_task(spec: dict, result_path: str) -> dict:
    """Run one task specification (:attr:`exopk.batch.tasks.Task.spec`).

    Parameters
    ----------
    spec : dict
    result_path : str
        Where the process running the batch will write a fit's result (recorded in its
        provenance).

    Returns
    -------
    dict
        ``numbers`` (``divergences``, ``max_rhat``, ``min_ess_bulk`` and per-kind totals),
        ``parameters`` (per natural name: posterior quantiles of a fit; truth, rank, coverage
        of a simulated replicate), ``tree`` (a fit's result, an ``xarray.DataTree``; None for a
        replicate), ``seconds`` (wall time) and ``worker`` (host name).
    """
    start = time.perf_counter()
    outcome = _fit(spec, result_path) if spec["kind"] == "fit" else _simulated(spec)
    return {**outcome, "seconds": time.perf_counter() - start, "worker": socket.gethostname()}


def _fit(spec: dict, result_path: str) -> dict:
    from exopk.inference.fit import fit
    from exopk.inference.fitfile import parse_fit
    fit_file = parse_fit(spec["fit_file_text"], path=spec["fit_file"])
    result = fit(fit_file, out=result_path, write=False, processes=1, progress=False,
                 method=spec["method"])
    diagnostics = result.diagnostics
    numbers = {name: diagnostics[name].item() for name in (
        "divergences", "max_rhat", "min_ess_bulk", "converged", "misfit", "implausible")
        if name in diagnostics}
    parameters = {}
    if "parameter" in diagnostics.dims:
        parameters = {str(name): {q: float(diagnostics[q].sel(parameter=name))
                                  for q in ("q5", "q50", "q95")}
                      for name in diagnostics["parameter"].values}
    return {"numbers": numbers, "parameters": parameters, "tree": result.tree}


@functools.lru_cache(maxsize=8)
def _prepared(path: str, text: str):
    """The prepared fit file, once per worker process."""
    from exopk.inference.fitfile import parse_fit
    from exopk.inference.preparation import prepare
    return prepare(parse_fit(text, path=path))


def _simulated(spec: dict) -> dict:
    from exopk.batch.calibration import replicate_numbers
    from exopk.inference.samplers import NutsSettings
    from exopk.inference.simulated import fit_simulated
    prepared = _prepared(spec["fit_file"], spec["fit_file_text"])
    result = fit_simulated(prepared, spec["seed"], chains=spec["chains"], warmup=spec["warmup"],
                           draws=spec["draws"], map_starts=spec["map_starts"],
                           settings=NutsSettings(max_tree_depth=spec["max_tree_depth"],
                                                 target_acceptance=spec["target_acceptance"],
                                                 metric=spec["metric"]),
                           processes=1, truth=spec["truth"], thin=spec.get("thin", 1))
    numbers = replicate_numbers(prepared.log_posterior, result, thin_to=spec["thin_to"],
                                level=spec["level"])
    parameters = numbers.pop("parameters")
    return {"numbers": numbers, "parameters": parameters, "tree": None}
