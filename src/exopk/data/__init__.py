"""Evidence data: the packaged tables, user data files and NONMEM-style event tables.

Examples
--------
>>> from exopk.data import load
>>> ev = load("ev")
>>> ev.sizes["record"]
125
>>> bool(load("proxies")["is_proxy"].all())
True
"""

from exopk.data.events import DoseRecord, expand_doses, read_events, regimens
from exopk.data.organs import to_percent_id_per_organ
from exopk.data.packaged import load
from exopk.data.problems import DataValidationError, Problem
from exopk.data.reader import UnusableRecordsWarning, read_csv
from exopk.units import UnitError

__all__ = ["load", "read_csv", "read_events", "expand_doses", "regimens", "DoseRecord",
           "to_percent_id_per_organ", "DataValidationError", "Problem", "UnusableRecordsWarning",
           "UnitError"]
