"""exopk: pharmacokinetic biodistribution modelling of extracellular vesicles."""

from exopk._version import __version__
from exopk.dosing import Dose, Regimen
from exopk.engine import simulate
from exopk.model import Model, load_model
from exopk.models_library import available_models, model_path


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


__all__ = ["Dose", "Model", "Regimen", "available_models", "fit", "fit_observations", "load_fit", "load_model",
           "model_path", "simulate", "__version__"]
