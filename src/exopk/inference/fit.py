"""Run a fit: evidence -> log-posterior -> MAP -> MCMC -> diagnostics -> DataTree on disk.

``exopk.fit("fits/mouse_iv_mps.toml")`` and ``exopk fit fits/mouse_iv_mps.toml`` do the same.
"""

from __future__ import annotations

from pathlib import Path

from exopk.errors import ExopkError
from exopk.inference.assembly import PRIOR_DRAWS, FitResult
from exopk.inference.checkpoint import (CHECKPOINT_SECONDS, check_checkpoint_seconds,
                                        load_fit_checkpoint)
from exopk.inference.fitfile import FitFile
from exopk.inference.own_data import fit_event_data
from exopk.inference.preparation import Prepared, check_fit_arguments, output_path, prepare
from exopk.inference.result import load_fit
from exopk.inference.running import check_method, run_prepared

__all__ = ["FitResult", "Prepared", "fit", "load_fit", "prepare", "PRIOR_DRAWS"]


def fit(fit_file: FitFile | str | Path | None = None, *, out: str | Path | None = None,
        chains: int | None = None, warmup: int | None = None, draws: int | None = None,
        seed: int | None = None, map_starts: int | None = None, processes: int | None = None,
        progress: bool = True, write: bool = True, method: str | None = None,
        resume: str | Path | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS) -> FitResult:
    """Run a fit file: MAP from several seeded starts, then MCMC, diagnostics and results.

    While MCMC chains run, a checkpoint folder beside the result (``RESULT.nc.checkpoint``, see
    :mod:`exopk.inference.checkpoint`) keeps them; it is removed when the result is written.

    Parameters
    ----------
    fit_file : FitFile, str or Path
        Not with ``resume``.
    out : path, optional
        Output NetCDF (default: ``NAME.nc`` in the working directory, ``NAME`` the fit file's
        name without ``.toml``).
    chains, warmup, draws, seed, map_starts : int, optional
        Override the fit file's sampler settings.
    processes : int, optional
        Worker processes for chains (default: one per chain; see
        :func:`~exopk.inference.sampling.run_chains`).
    progress : bool
        Progress line on stderr.
    write : bool
        Write the result file (and keep a checkpoint while sampling).
    method : {"map", "nuts", None}, optional
        ``"map"``: no MCMC; the mode of the density of the sampling coordinates with a Laplace
        approximation there (:mod:`exopk.inference.laplace`), its draws written as the
        ``posterior`` group (``posterior.attrs["approximation"]`` says so). Default: the fit
        file's sampler.
    resume : path, optional
        Checkpoint folder of an interrupted run: continue it with the same fit file, options
        and seed. The draws are those the uninterrupted run would have given, bit for bit.
    checkpoint_seconds : float
        Wall time between a chain's checkpoints, in seconds (default
        :data:`~exopk.inference.checkpoint.CHECKPOINT_SECONDS`): at most this much sampling is
        redone after an interruption. It does not change the draws.

    Returns
    -------
    FitResult

    Raises
    ------
    FitInterrupted
        On SIGINT or SIGTERM while sampling; the checkpoint keeps the chains so far.

    Examples
    --------
    A short fit of the packaged mouse IV evidence (too short to converge; the summary says so):

    >>> import exopk
    >>> result = exopk.fit("fits/mouse_iv_mps.toml", chains=2, warmup=150, draws=20,
    ...                    map_starts=1, progress=False, write=False)
    >>> result.converged
    False
    """
    check_method(method)
    check_checkpoint_seconds(checkpoint_seconds)
    checkpoint = None
    if resume is not None:
        if fit_file is not None:
            raise ExopkError("give a fit file or a checkpoint to resume, not both")
        checkpoint = load_fit_checkpoint(resume)
        fit_file = checkpoint.fit_file
        out, chains, warmup, draws, seed, processes = (
            checkpoint.options[name] for name in ("out", "chains", "warmup", "draws", "seed",
                                                  "processes"))
        write = True
    elif fit_file is None:
        raise ExopkError("fit needs a fit file (or a checkpoint to resume)")
    fit_file = check_fit_arguments(fit_file, out=out, write=write, chains=chains, warmup=warmup,
                                   draws=draws, seed=seed, map_starts=map_starts,
                                   processes=processes)
    if fit_file.data is not None:      # the user's own event table
        if resume is not None:
            raise ExopkError("fits of event tables keep no checkpoint; rerun the fit")
        return fit_event_data(fit_file, method=method, out=out, write=write, seed=seed,
                              chains=chains, draws=draws, warmup=warmup, map_starts=map_starts,
                              processes=processes, progress=progress)
    prepared = prepare(fit_file)
    settings = fit_file.sampler
    return run_prepared(prepared, path=output_path(fit_file, out), method=method,
                        seed=fit_file.seed if seed is None else seed,
                        chains=chains or settings.chains, warmup=warmup or settings.warmup,
                        draws=draws or settings.draws,
                        map_starts=map_starts or settings.map_starts, processes=processes,
                        progress=progress, write=write,
                        resume=None if checkpoint is None else (Path(resume), checkpoint),
                        checkpoint_seconds=checkpoint_seconds)
