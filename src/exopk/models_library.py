"""The model files shipped with exopk (``models/`` in the repository, packaged as ``exopk/models``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from exopk.errors import ModelFileError

__all__ = ["available_models", "model_path"]


def _folder() -> Path:
    return Path(str(resources.files("exopk").joinpath("models")))


def available_models() -> tuple[str, ...]:
    """Names of the shipped models (file names without ``.toml``)."""
    return tuple(sorted(p.stem for p in _folder().glob("*.toml")))


def model_path(name: str) -> Path:
    """Path of a shipped model file, by name (``"m2_mps"``) or file name (``"m2_mps.toml"``)."""
    stem = name[:-5] if name.endswith(".toml") else name
    path = _folder() / f"{stem}.toml"
    if not path.is_file():
        raise ModelFileError(f"no shipped model '{name}'; available: {', '.join(available_models())}")
    return path
