"""The model files shipped with exopk (``models/`` in the repository, packaged as ``exopk/models``),
and the one way a model is named: by file or by shipped name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from exopk.errors import ModelFileError
from exopk.model.spec import Model
from exopk.model.toml_file import load_model

__all__ = ["available_models", "model_path", "resolve_model"]


def _folder() -> Path:
    return Path(str(resources.files("exopk").joinpath("models")))


def available_models() -> tuple[str, ...]:
    """Names of the shipped models (file names without ``.toml``).

    Examples
    --------
    >>> import exopk
    >>> names = exopk.available_models()
    >>> names[:4]
    ('m0_one_compartment', 'm1_three_compartment', 'm1_two_compartment', 'm2_mps')
    >>> "m5_intranasal" in names
    True
    """
    return tuple(sorted(p.stem for p in _folder().glob("*.toml")))


def model_path(name: str) -> Path:
    """Path of a shipped model file, by name (``"m2_mps"``) or file name (``"m2_mps.toml"``).

    Examples
    --------
    >>> import exopk
    >>> path = exopk.model_path("m2_mps")
    >>> path.name, path == exopk.model_path("m2_mps.toml")
    ('m2_mps.toml', True)
    >>> path.read_text().splitlines()[0]
    '# m2_mps: minimal PBPK model of vesicle uptake by the mononuclear phagocyte system (MPS).'
    """
    stem = name[:-5] if name.endswith(".toml") else name
    path = _folder() / f"{stem}.toml"
    if not path.is_file():
        raise ModelFileError(f"no shipped model '{name}'; available: {', '.join(available_models())}")
    return path


def resolve_model(reference: str, *, folder: str | Path | None = None, file: str | None = None,
                  key: str | None = None) -> Model:
    """The model a reference names: a model file, or a shipped model by name.

    A reference ending in ``.toml``, or naming an existing file, is a file; relative files are
    read from ``folder`` (default: the working directory). Anything else is a shipped model's
    name (:func:`model_path`).

    Parameters
    ----------
    reference : str
    folder : str or Path, optional
    file, key : str, optional
        Where the reference was written (a fit file and its key), for the error message.

    Raises
    ------
    ModelFileError
        A file reference that names no file, an unknown shipped name, or an invalid model file.

    Examples
    --------
    >>> from exopk.models_library import resolve_model
    >>> by_name = resolve_model("m0_one_compartment")
    >>> by_name == resolve_model(str(model_path("m0_one_compartment")))
    True
    """
    path = Path(reference) if folder is None else (Path(folder) / reference).resolve()
    if reference.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ModelFileError(f"model file '{reference}' not found", file=file or str(path),
                                 key=key)
        return load_model(path)
    return load_model(model_path(reference))
