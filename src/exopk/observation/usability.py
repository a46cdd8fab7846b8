"""How many evidence records a model can use, and why the others cannot be used.

A record is used in two steps. Its table marks it usable for fitting or not
(``usable_for_fit``, read into ``usable`` and ``unusable_reason`` by :mod:`exopk.data`), whatever
the model. Then :func:`~exopk.observation.build_observations` turns each usable record into an
observation of the model or sets it aside with a reason (no prediction kind for the quantity,
a route or output the model does not have, a unit it cannot be compared in, ...).
:func:`usability` counts both steps; :func:`format_usability` prints them
(``exopk data usable MODEL``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from exopk.observation.records import build_observations

__all__ = ["Usability", "usability", "format_usability"]


@dataclass(frozen=True)
class Usability:
    """Counts of one evidence table for one model.

    Attributes
    ----------
    table : str
        The table's file name.
    records : int
    marked_usable : int
        Records the table marks usable for fitting.
    used : int
        Of those, records behind an observation (a range's two ends and a point's confidence
        limits count with it).
    observations : int
    not_marked : Counter
        Why the table marks records not usable (a record may give several reasons).
    set_aside : Counter
        Why usable records give no observation of this model.
    """

    table: str
    records: int
    marked_usable: int
    used: int
    observations: int
    not_marked: Counter
    set_aside: Counter


def usability(records, model, **options) -> Usability:
    """Count which records of an evidence table become observations of ``model``.

    Parameters
    ----------
    records : xarray.Dataset
        An evidence table (:func:`exopk.data.load`, :func:`exopk.data.read_csv`).
    model : Model
    **options
        Passed to :func:`~exopk.observation.build_observations` (``signal``, ``outputs``, ...).

    Examples
    --------
    >>> import exopk, exopk.data
    >>> from exopk.observation.usability import usability
    >>> counts = usability(exopk.data.load("ev"), exopk.load_model(exopk.model_path("m2_mps")))
    >>> counts.marked_usable == counts.used + sum(counts.set_aside.values())
    True
    """
    observations, skipped = build_observations(records, model, **options)
    usable = records["usable"].values.astype(bool)
    not_marked = Counter(reason.strip() for text in records["unusable_reason"].values[~usable]
                         for reason in str(text).split(";"))
    return Usability(table=str(records.attrs.get("source_file", "records")),
                     records=int(records.sizes["record"]), marked_usable=int(usable.sum()),
                     used=int(usable.sum()) - len(skipped), observations=len(observations),
                     not_marked=not_marked, set_aside=Counter(s.reason for s in skipped))


def format_usability(model_name: str, counts: list[Usability]) -> str:
    """A table of the counts, then the reasons for the records left out, most frequent first."""
    header = ("table", "records", "marked usable", "used", "observations", "set aside")
    rows = [header] + [(c.table, str(c.records), str(c.marked_usable), str(c.used),
                        str(c.observations), str(c.marked_usable - c.used)) for c in counts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"Evidence records as observations of model '{model_name}'", ""]
    lines += ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines += ["", "marked usable: the table's usable_for_fit; used: usable records behind an "
              "observation of the model (a range's ends and a point's 95% limits count with it)."]
    for c in counts:
        for title, reasons in ((f"not usable for any fit ({c.table}, usable_for_fit)",
                                c.not_marked),
                               (f"usable but set aside for '{model_name}' ({c.table})",
                                c.set_aside)):
            if reasons:
                lines += ["", f"{title}:"]
                lines += [f"  {n:4d}  {reason}" for reason, n in reasons.most_common()]
    return "\n".join(lines)
