"""From a prepared log-posterior to a fit result: MAP, then NUTS or a Laplace approximation.

:func:`run_prepared` is the one place where a fit is run, whatever built its posterior (a fit
file's evidence, a user's event table, observations given from Python).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from exopk.errors import ExopkError, ModelFileError
from exopk.inference.assembly import FitResult, assemble
from exopk.inference.checkpoint import (CHECKPOINT_SECONDS, FitCheckpoint, checkpoint_folder,
                                        remove_checkpoint, save_fit_checkpoint)
from exopk.inference.fitfile import FitFile
from exopk.inference.laplace import laplace_chains, polish_mode
from exopk.inference.result import write_fit
from exopk.inference.samplers import sampler_settings
from exopk.inference.sampling import chain_starts, find_map, run_chains
from exopk.inference.threads import one_blas_thread

__all__ = ["run_prepared", "check_method", "METHODS"]

#: ``method`` of a fit: None (the fit file's sampler), "map" (Laplace) or "nuts"
METHODS = (None, "map", "nuts")


def check_method(method) -> None:
    """Raise an :class:`ExopkError` for a ``method`` not in :data:`METHODS`."""
    if method not in METHODS:
        raise ExopkError(f"argument method = {method!r}: expected \"map\", \"nuts\" or None "
                         "(the fit file's sampler)")


def run_prepared(prepared, *, path: Path, method=None, seed: int, chains: int, warmup: int,
                 draws: int, map_starts: int, processes=None, progress=True,
                 write=True, resume=None,
                 checkpoint_seconds: float = CHECKPOINT_SECONDS) -> FitResult:
    """Run a prepared fit and assemble (and write) its result.

    Parameters
    ----------
    prepared : Prepared
        Its ``log_posterior`` is sampled; its fit file gives the sampler's settings.
    path : Path
        Where the result goes (recorded in its provenance; written when ``write``).
    method : {None, "map", "nuts"}
        ``"map"``: the mode of the density of the sampling coordinates, polished by L-BFGS,
        and a Laplace approximation there (:mod:`exopk.inference.laplace`). Otherwise: the MAP
        of the natural parameters from several seeded starts, then MCMC with the fit file's
        sampler (NUTS unless it says otherwise).
    seed, chains, warmup, draws, map_starts, processes, progress
        As for :func:`exopk.fit`.
    resume : (Path, FitCheckpoint), optional
        Continue the MCMC run of this checkpoint folder (MAP and starts as it saved them).
        Without it, an MCMC run of a fit file that is written keeps a checkpoint beside the
        result while the chains run (:mod:`exopk.inference.checkpoint`).
    checkpoint_seconds : float
        Wall time between a chain's checkpoints, in seconds.

    BLAS runs on one thread throughout (:mod:`exopk.inference.threads`).
    """
    check_method(method)
    with one_blas_thread():
        lp = prepared.log_posterior
        if method == "map":
            map_result = find_map(lp, seed=seed, starts=map_starts, natural=False)
            phi, value = polish_mode(lp, map_result.phi)
            map_result = dataclasses.replace(map_result, phi=phi, log_posterior=value)
            results, approximation = laplace_chains(lp, map_result.phi, chains=chains, draws=draws,
                                                    seed=seed)
            tree = assemble(prepared, results, map_result, seed, chains, 0, draws, path,
                            sampler="laplace", approximation=approximation)
        else:
            ff = prepared.fit_file
            sampler = _sampler_settings(ff)
            if resume is not None:
                folder, checkpoint = resume
                map_result, x0s = checkpoint.map_result, checkpoint.starts
            else:
                folder = checkpoint_folder(path) if write and ff.path else None
                map_result = find_map(lp, seed=seed, starts=map_starts)
                x0s = chain_starts(lp, map_result.phi, chains, seed=seed)
                if folder is not None:
                    remove_checkpoint(folder)       # a stale one of an earlier run of this result
                    options = {"out": str(Path(path).resolve()), "chains": chains, "warmup": warmup,
                               "draws": draws, "seed": seed, "processes": processes}
                    save_fit_checkpoint(folder, FitCheckpoint(
                        fit_file=str(Path(ff.path).resolve()),
                        fit_file_sha256=hashlib.sha256(Path(ff.path).read_bytes()).hexdigest(),
                        options=options, map_result=map_result, starts=x0s))
            results = run_chains(lp, x0s, seed=seed, method=ff.sampler.method, warmup=warmup,
                                 draws=draws, settings=sampler, processes=processes,
                                 progress=progress, checkpoint=folder, resume=resume is not None,
                                 checkpoint_seconds=checkpoint_seconds, thin=ff.sampler.thin)
            tree = assemble(prepared, results, map_result, seed, chains, warmup, draws, path)
        if write:
            write_fit(tree, path)
            if method != "map" and folder is not None:
                remove_checkpoint(folder)
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
