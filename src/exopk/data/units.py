"""Units of evidence values: the data layer's name for :mod:`exopk.units`.

The unit registry lives in the lowest layer (it needs only pint), so that model files can
check their time unit with it; evidence readers keep importing it from here.
"""

from exopk.units import (CANONICAL_UNITS, UnitError, canonical_unit, convert,  # noqa: F401
                         parse_unit, registry, to_minutes, units_fit)
from exopk.units import __all__  # noqa: F401
