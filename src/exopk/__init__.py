"""exopk: pharmacokinetic biodistribution modelling of extracellular vesicles."""

from importlib.metadata import PackageNotFoundError, version

from exopk.dosing import Dose, Regimen
from exopk.engine import simulate
from exopk.model import Model, load_model
from exopk.models_library import available_models, model_path

try:
    __version__ = version("exopk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Dose", "Model", "Regimen", "available_models", "load_model", "model_path", "simulate",
           "__version__"]
