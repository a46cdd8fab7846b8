"""The evidence tables shipped with exopk (``ev.csv`` and ``proxies.csv``, see ``SOURCES.md``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import xarray as xr

from exopk.data.problems import ProblemCollector
from exopk.data.reader import evidence_dataset, unusable_summary
from exopk.data.schema import PACKAGED_FILES
from exopk.errors import DataFileError

__all__ = ["load", "PROXY_CAVEAT"]

PROXY_CAVEAT = (
    "Proxies are not EVs: the antibody, albumin, peptide, gold-nanoparticle, liposome and "
    "small-molecule rows are comparators for model structure and size context, not sources "
    "of EV rate constants; several liposome and drug tables measure the drug, not the carrier.")


@cache
def _table(name: str) -> xr.Dataset:
    file = PACKAGED_FILES[name]
    text = resources.files(__package__).joinpath(file).read_text(encoding="utf-8")
    ds = evidence_dataset(text, file, ProblemCollector(file))
    ds["is_proxy"][:] = name == "proxies"
    ds.attrs["title"] = f"exopk packaged evidence: {file}"
    if name == "proxies":
        ds.attrs["caveat"] = PROXY_CAVEAT
    return ds


def _all() -> xr.Dataset:
    ds = xr.concat([_table("ev"), _table("proxies")], dim="record", combine_attrs="override")
    reasons = ds["unusable_reason"].values.tolist()
    ds.attrs = {
        "title": "exopk packaged evidence: ev.csv and proxies.csv",
        "source_file": ", ".join(PACKAGED_FILES.values()),
        "schema": _table("ev").attrs["schema"],
        "caveat": f"Records with is_proxy = True come from proxies.csv. {PROXY_CAVEAT}",
        "n_unusable": sum(1 for r in reasons if r),
        "unusable_summary": unusable_summary(reasons),
    }
    return ds


def load(name: str = "all") -> xr.Dataset:
    """Load a packaged evidence table.

    Parameters
    ----------
    name : {"all", "ev", "proxies"}
        ``"ev"`` for extracellular-vesicle records, ``"proxies"`` for non-EV comparators,
        ``"all"`` for both (EV records first).

    Returns
    -------
    xarray.Dataset
        One dimension ``record``, with the variables described in
        :func:`exopk.data.read_csv`; ``is_proxy`` is True exactly for the records of
        ``proxies.csv``, and ``source_file`` and ``line`` say where each record is. Every
        record carries its provenance (``study_key``, ``citation``, ``doi``, ``url``,
        ``location``). ``attrs["unusable_summary"]`` counts the records that cannot enter a
        fit, by reason (no warning is issued for the packaged tables); the proxies (and
        combined) dataset has ``attrs["caveat"]`` saying that proxies are not EVs. Each call
        returns a fresh copy.

    Raises
    ------
    exopk.errors.DataFileError
        ``name`` is not one of the three tables.

    Examples
    --------
    >>> from exopk.data import load
    >>> everything = load()
    >>> everything.sizes["record"], int(everything["is_proxy"].sum())
    (453, 328)
    >>> first = load("ev").isel(record=0)
    >>> [str(first[k].values) for k in ("study_key", "matrix", "quantity", "value", "unit")]
    ['kim2019_review_ref22', 'circulation', 'half_life_alpha', '6.85', 'min']
    >>> str(first["doi"].values), str(first["location"].values)
    ('10.3390/pharmaceutics11120649', 'Table 1, row citing ref [22]')
    >>> load("ev").attrs["unusable_summary"]
    '93 of 125 records not usable for fitting: qualitative 25, time_not_stated 21, ...'
    """
    if name == "all":
        return _all()
    if name not in PACKAGED_FILES:
        raise DataFileError(f"unknown packaged table {name!r}; choose 'all', "
                            f"{', '.join(repr(n) for n in PACKAGED_FILES)}")
    return _table(name).copy(deep=True)
