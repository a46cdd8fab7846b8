"""Checkpoints of a running fit: what an interrupted run leaves and what ``--resume`` reads.

A checkpoint is a folder (``RESULT.nc.checkpoint`` beside the result by default) holding

* ``fit.pickle``: written once before sampling: the fit file's path and SHA-256, the run's
  options (chains, warm-up, draws, seed, sampler settings, result path), the MAP result and the
  chains' starting points, so that a resumed run repeats none of the work before sampling;
* ``chain_<c>.pickle``: written by chain ``c`` every :data:`CHECKPOINT_SECONDS` seconds (or as
  often as the run's ``checkpoint_seconds`` says): the
  iterations done, the draws and statistics so far and a snapshot of the sampler (its state and
  numpy's random state at the end of the latest iteration), from which the chain continues with
  the same random numbers as an uninterrupted run.

Every file is written atomically, so a kill at any moment leaves the previous complete file. The
folder is removed once the result is written. Checkpoints are pickles: resume only checkpoints
your own runs wrote.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exopk.errors import ExopkError
from exopk.io import write_atomically

__all__ = ["CHECKPOINT_SECONDS", "ChainState", "FitCheckpoint", "check_checkpoint_seconds",
           "checkpoint_folder",
           "load_chain_states", "load_fit_checkpoint", "remove_checkpoint", "save_chain_state",
           "save_fit_checkpoint"]

CHECKPOINT_SECONDS = 5.0   # wall time between a chain's checkpoints (at most this much is redone)


def check_checkpoint_seconds(seconds) -> None:
    """Raise an :class:`ExopkError` unless ``seconds`` is a positive finite number of seconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not np.isfinite(seconds) or seconds <= 0:
        raise ExopkError(f"checkpoint_seconds = {seconds!r}: expected a positive number of "
                         "seconds between a chain's checkpoints")


@dataclass
class ChainState:
    """One chain part-way through.

    Attributes
    ----------
    chain : int
    iteration : int
        Iterations completed, warm-up included.
    draws : ndarray, shape (draws, n_coordinates)
        Post-warm-up draws; rows from ``iteration - warmup`` on are not filled yet.
    log_posterior : ndarray, shape (draws,)
    stats : dict of str to ndarray
    divergences : int
        Divergent iterations so far, warm-up included.
    seconds : float
        Sampling time so far.
    sampler : bytes
        The recorder's snapshot (see :class:`exopk.inference.samplers.Sampler`).
    """

    chain: int
    iteration: int
    draws: np.ndarray
    log_posterior: np.ndarray
    stats: dict
    divergences: int
    seconds: float
    sampler: bytes


@dataclass
class FitCheckpoint:
    """What a fit had settled before sampling.

    Attributes
    ----------
    fit_file : str
        Path of the fit file, as given to the run.
    fit_file_sha256 : str
    options : dict
        ``chains``, ``warmup``, ``draws``, ``seed``, ``processes``, ``out`` of the run.
    map_result : MapResult
    starts : list of ndarray
        The chains' starting points.
    """

    fit_file: str
    fit_file_sha256: str
    options: dict
    map_result: object
    starts: list


def checkpoint_folder(result_path: str | Path) -> Path:
    """The checkpoint folder of a result file: ``RESULT.nc.checkpoint``."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.name + ".checkpoint")


def _dump(path: Path, value) -> None:
    write_atomically(path, lambda temporary: temporary.write_bytes(pickle.dumps(value)))


def save_fit_checkpoint(folder: str | Path, checkpoint: FitCheckpoint) -> None:
    """Write ``fit.pickle`` into ``folder`` (created if needed)."""
    _dump(Path(folder) / "fit.pickle", checkpoint)


def save_chain_state(folder: str | Path, state: ChainState) -> None:
    """Write ``chain_<c>.pickle`` into ``folder``."""
    _dump(Path(folder) / f"chain_{state.chain}.pickle", state)


def load_fit_checkpoint(folder: str | Path) -> FitCheckpoint:
    """Read a checkpoint folder's ``fit.pickle``.

    Raises
    ------
    ExopkError
        If the folder is not a checkpoint of ``exopk fit``, or its fit file changed since.
    """
    folder = Path(folder)
    path = folder / "fit.pickle"
    if not path.is_file():
        raise ExopkError(f"{folder} is not a fit checkpoint (no fit.pickle in it)")
    try:
        checkpoint = pickle.loads(path.read_bytes())
    except Exception as exc:  # a damaged or foreign pickle: say which file
        raise ExopkError(f"{path} cannot be read as a fit checkpoint: {exc}") from None
    if not isinstance(checkpoint, FitCheckpoint):
        raise ExopkError(f"{path} is not a fit checkpoint")
    fit_file = Path(checkpoint.fit_file)
    if not fit_file.is_file():
        raise ExopkError(f"checkpoint {folder}: its fit file {fit_file} no longer exists")
    if hashlib.sha256(fit_file.read_bytes()).hexdigest() != checkpoint.fit_file_sha256:
        raise ExopkError(f"checkpoint {folder}: fit file {fit_file} changed since the run "
                         "started; a resumed run would not be the same fit")
    return checkpoint


def load_chain_states(folder: str | Path, chains: int) -> list[ChainState | None]:
    """The saved state of each chain (None for a chain that saved none yet)."""
    states = []
    for chain in range(chains):
        path = Path(folder) / f"chain_{chain}.pickle"
        states.append(pickle.loads(path.read_bytes()) if path.is_file() else None)
    return states


def remove_checkpoint(folder: str | Path) -> None:
    """Delete a checkpoint folder and everything in it (nothing if it does not exist)."""
    shutil.rmtree(folder, ignore_errors=True)
