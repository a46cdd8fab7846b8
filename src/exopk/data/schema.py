"""Column schema and controlled vocabularies of evidence tables (``ev.csv``, ``proxies.csv``).

The vocabularies are those of the evidence library's README (copied into ``SOURCES.md``). The
matrix vocabulary is open-ended by design: it is the set of matrices used in the packaged tables
plus the organs of the physiology table, and ``organ:part`` sub-sites of any known organ.
"""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from importlib import resources

from exopk.physiology import available_presets, load_species

__all__ = [
    "COLUMNS", "REQUIRED_COLUMNS", "NUMERIC_COLUMNS", "PROVENANCE_COLUMNS", "VESICLE_CLASSES",
    "PROXY_TYPES", "SPECIES", "ROUTES", "QUANTITIES", "STATISTICS", "ERROR_TYPES",
    "TIME_COURSE_QUANTITIES", "IDENTIFIER", "is_known_quantity", "known_matrices",
    "known_organs", "is_known_matrix", "PACKAGED_FILES",
]

COLUMNS = (
    "study_key", "citation", "doi", "url", "location", "vesicle_class", "proxy_type", "species",
    "strain", "ev_source", "label", "route", "dose", "dose_unit", "condition", "time",
    "time_unit", "matrix", "quantity", "statistic", "value", "error", "error_type", "n", "unit",
    "usable_for_fit", "note",
)
"""Columns of the evidence schema, in the order of the packaged files."""

REQUIRED_COLUMNS = ("study_key", "species", "route", "matrix", "quantity", "statistic", "value",
                    "unit")
"""Columns a user file must have, each with a value in every row."""

NUMERIC_COLUMNS = ("time", "value", "error", "n")
"""Columns parsed to numbers; the printed text is kept beside them as ``<column>_text``."""

PROVENANCE_COLUMNS = ("study_key", "citation", "doi", "url", "location")

PACKAGED_FILES = {"ev": "ev.csv", "proxies": "proxies.csv"}

VESICLE_CLASSES = frozenset({"exosome", "small_ev", "ev", "rbc_microparticle", "rbc_vesicle"})
PROXY_TYPES = frozenset({"antibody", "albumin", "gold_nanoparticle", "liposome",
                         "small_molecule", "other"})
SPECIES = frozenset({"mouse", "rat", "rabbit", "human", "pig_tailed_macaque", "rabbit_and_rat",
                     "various", "not_stated"})
ROUTES = frozenset({"iv", "in", "ia", "ip", "sc", "icv", "other"})
QUANTITIES = frozenset({
    "half_life", "half_life_alpha", "half_life_beta", "elimination_rate_constant", "clearance",
    "auc", "mrt", "mrt_last", "mrt_inf", "vss", "volume_of_distribution", "percent_id_per_organ",
    "percent_id_per_g", "concentration", "fraction_cleared", "time_of_peak", "time_detected",
    "fold_range", "fraction_of_uptake", "secretion_rate",
})
"""Named quantities; ``other:<name>`` (lowercase letters, digits and ``_``) is allowed too."""

STATISTICS = frozenset({"mean", "median", "point", "range_low", "range_high", "ci95_low",
                        "ci95_high", "upper_bound", "lower_bound", "qualitative_timing"})
ERROR_TYPES = frozenset({"SD", "SEM", "unstated", "none"})

TIME_COURSE_QUANTITIES = frozenset({"concentration", "percent_id_per_organ", "percent_id_per_g"})
"""Quantities measured at a sampling time: a row without ``time`` cannot enter a fit."""

IDENTIFIER = re.compile(r"[a-z0-9_]+")
"""Lowercase letters, digits and ``_`` (study keys, conditions, ``other:`` names, reasons)."""

_MATRIX = re.compile(r"([a-z0-9_]+)(?::([a-z0-9_]+))?")
_NOT_ORGANS = frozenset({"not_applicable", "ev_preparation"})
_ORGAN_QUANTITY_PREFIXES = ("organ_volume_fraction:", "blood_flow_fraction:",
                            "residual_blood_fraction:")


def is_known_quantity(quantity: str) -> bool:
    """Whether ``quantity`` is a named quantity or a well-formed ``other:<name>``."""
    if quantity.startswith("other:"):
        return IDENTIFIER.fullmatch(quantity[len("other:"):]) is not None
    return quantity in QUANTITIES


def _packaged_matrices() -> frozenset[str]:
    found = set()
    for name in PACKAGED_FILES.values():
        text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
        found.update(row["matrix"] for row in csv.DictReader(io.StringIO(text, newline="")))
    return frozenset(found)


def _physiology_organs() -> frozenset[str]:
    organs = set()
    for preset in available_presets():
        for quantity in load_species(preset, body_weight_kg=1.0).records:
            for prefix in _ORGAN_QUANTITY_PREFIXES:
                if quantity.startswith(prefix):
                    organs.add(quantity[len(prefix):])
    return frozenset(organs)


@lru_cache(maxsize=1)
def known_matrices() -> frozenset[str]:
    """Matrices used in the packaged tables plus the organs of the physiology table."""
    return _packaged_matrices() | _physiology_organs()


@lru_cache(maxsize=1)
def known_organs() -> frozenset[str]:
    """Names that may carry an ``organ:part`` sub-site.

    These are the known matrices without a sub-site, plus the organ part of every packaged
    sub-site (``artery`` from ``artery:basilar_and_vertebral``), minus the design values
    ``not_applicable`` and ``ev_preparation``.
    """
    return frozenset(m.split(":", 1)[0] for m in known_matrices()) - _NOT_ORGANS


def is_known_matrix(matrix: str) -> bool:
    """Whether ``matrix`` is a known matrix or a sub-site ``organ:part`` of a known organ."""
    match = _MATRIX.fullmatch(matrix)
    if match is None:
        return False
    if matrix in known_matrices():
        return True
    return match.group(2) is not None and match.group(1) in known_organs()
