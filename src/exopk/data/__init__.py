"""Evidence data: the packaged tables, user data files and NONMEM-style event tables.

Examples
--------
>>> from exopk.data import load
>>> ev = load("ev")
>>> ev.sizes["record"]
125
>>> bool(load("proxies")["is_proxy"].all())
True

The names are imported on first use (``exopk data --help`` needs none of them).
"""

from exopk._lazy import lazy_exports

_LAZY = {
    "DoseRecord": "exopk.data.events", "expand_doses": "exopk.data.events",
    "read_events": "exopk.data.events", "regimens": "exopk.data.events",
    "to_percent_id_per_organ": "exopk.data.organs",
    "load": "exopk.data.packaged",
    "DataValidationError": "exopk.data.problems", "Problem": "exopk.data.problems",
    "UnusableRecordsWarning": "exopk.data.reader", "read_csv": "exopk.data.reader",
    "UnitError": "exopk.units",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["load", "read_csv", "read_events", "expand_doses", "regimens", "DoseRecord",
           "to_percent_id_per_organ", "DataValidationError", "Problem", "UnusableRecordsWarning",
           "UnitError"]
