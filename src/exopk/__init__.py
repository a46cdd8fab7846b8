"""exopk: pharmacokinetic biodistribution modelling of extracellular vesicles."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("exopk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
