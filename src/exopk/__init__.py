"""exopk: pharmacokinetic biodistribution modelling of extracellular vesicles.

The public names below are imported on first use, so that ``import exopk`` and the ``exopk``
command start quickly.
"""

from exopk._lazy import lazy_exports

_LAZY = {
    "__version__": "exopk._version",
    "Dose": "exopk.dosing",
    "Regimen": "exopk.dosing",
    "simulate": "exopk.engine",
    "Model": "exopk.model",
    "load_model": "exopk.model",
    "available_models": "exopk.models_library",
    "model_path": "exopk.models_library",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def fit(fit_file, **options):
    """Run a fit file; see :func:`exopk.inference.fit.fit`."""
    from exopk.inference.fit import fit as run
    return run(fit_file, **options)


def fit_observations(model, observations, **options):
    """Fit a model object to time-course observations; see
    :func:`exopk.inference.own_data.fit_observations`."""
    from exopk.inference.own_data import fit_observations as run
    return run(model, observations, **options)


def load_fit(path):
    """Read a fit result; see :func:`exopk.inference.result.load_fit`."""
    from exopk.inference.result import load_fit as load
    return load(path)


__all__ = ["Dose", "Model", "Regimen", "available_models", "fit", "fit_observations", "load_fit",
           "load_model", "model_path", "simulate", "__version__"]
