"""Units of the evidence tables: the names of :mod:`exopk.units`, where they live.

The unit registry sits in the lowest layer, so that model files can check their time unit
without importing the data layer; this module keeps the import path the data layer has
always used.
"""

from exopk.units import *  # noqa: F401,F403
from exopk.units import __all__  # noqa: F401
