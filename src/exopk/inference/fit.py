"""Run a fit: evidence -> log-posterior -> MAP -> MCMC -> diagnostics -> DataTree on disk.

``exopk.fit("fits/mouse_iv_mps.toml")`` and ``exopk fit fits/mouse_iv_mps.toml`` do the same.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from exopk.errors import ExopkError, ModelFileError
from exopk.inference.assembly import PRIOR_DRAWS, FitResult, assemble
from exopk.inference.fitfile import FitFile
from exopk.inference.laplace import laplace_chains, polish_mode
from exopk.inference.own_data import fit_event_data
from exopk.inference.preparation import Prepared, check_fit_arguments, output_path, prepare
from exopk.inference.result import load_fit, write_fit
from exopk.inference.samplers import sampler_settings
from exopk.inference.sampling import chain_starts, find_map, run_chains

__all__ = ["FitResult", "Prepared", "fit", "load_fit", "prepare", "PRIOR_DRAWS"]


def fit(fit_file: FitFile | str | Path, *, out: str | Path | None = None, chains: int | None = None,
        warmup: int | None = None, draws: int | None = None, seed: int | None = None,
        map_starts: int | None = None, processes: int | None = None, progress: bool = True,
        write: bool = True, method: str | None = None) -> FitResult:
    """Run a fit file: MAP from several seeded starts, then MCMC, diagnostics and results.

    Parameters
    ----------
    fit_file : FitFile, str or Path
    out : path, optional
        Output NetCDF (default: the fit file's path with ``.nc``).
    chains, warmup, draws, seed, map_starts : int, optional
        Override the fit file's sampler settings.
    processes : int, optional
        Worker processes for chains.
    progress : bool
        Progress line on stderr.
    write : bool
        Write the result file.
    method : {"map", None}, optional
        ``"map"``: no MCMC; the mode of the density of the sampling coordinates with a Laplace
        approximation there (:mod:`exopk.inference.laplace`), its draws written as the
        ``posterior`` group (``posterior.attrs["approximation"]`` says so). Default: the fit
        file's sampler.

    Returns
    -------
    FitResult
    """
    fit_file = check_fit_arguments(fit_file, out=out, write=write, chains=chains, warmup=warmup,
                                   draws=draws, seed=seed, map_starts=map_starts,
                                   processes=processes)
    if fit_file.data is not None:      # the user's own event table
        return fit_event_data(fit_file, method=method, out=out, write=write, seed=seed,
                              chains=chains, draws=draws, warmup=warmup, map_starts=map_starts,
                              processes=processes, progress=progress)
    prepared = prepare(fit_file)
    ff = prepared.fit_file
    settings = ff.sampler
    chains = chains or settings.chains
    warmup = warmup or settings.warmup
    draws = draws or settings.draws
    seed = ff.seed if seed is None else seed
    lp = prepared.log_posterior
    sampler = _sampler_settings(ff)
    path = output_path(ff, out)

    if method not in (None, "map"):
        raise ExopkError(f"argument method = {method!r}: expected \"map\" or None (the fit "
                         "file's sampler)")
    if method == "map":
        map_result = find_map(lp, seed=seed, starts=map_starts or settings.map_starts,
                              natural=False)
        phi, value = polish_mode(lp, map_result.phi)
        map_result = dataclasses.replace(map_result, phi=phi, log_posterior=value)
        results, approximation = laplace_chains(lp, map_result.phi, chains=chains, draws=draws,
                                                seed=seed)
        tree = assemble(prepared, results, map_result, seed, chains, 0, draws, path,
                         sampler="laplace", approximation=approximation)
    else:
        map_result = find_map(lp, seed=seed, starts=map_starts or settings.map_starts)
        x0s = chain_starts(lp, map_result.phi, chains, seed=seed)
        results = run_chains(lp, x0s, seed=seed, method=settings.method, warmup=warmup,
                             draws=draws, settings=sampler, processes=processes,
                             progress=progress)
        tree = assemble(prepared, results, map_result, seed, chains, warmup, draws, path)
    if write:
        write_fit(tree, path)
    return FitResult(tree=tree, diagnostics=tree["diagnostics"].to_dataset(),
                     path=path if write else None)


def _sampler_settings(fit_file: FitFile):
    """The typed settings of the fit file's sampler (an error names the fit file and key)."""
    sampler = fit_file.sampler
    values = ({"max_tree_depth": sampler.max_tree_depth,
               "target_acceptance": sampler.target_acceptance, "metric": sampler.metric}
              if sampler.method == "nuts" else {})
    try:
        return sampler_settings(sampler.method, **values)
    except ValueError as exc:
        raise ModelFileError(str(exc), file=fit_file.path, key="sampler") from None
