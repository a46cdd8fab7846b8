"""The installed version of exopk (``0+unknown`` in a source tree that is not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("exopk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
