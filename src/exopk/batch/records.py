"""A batch's output folder: one record per task, the task's result, and the summary table.

Layout of the folder::

    summary.csv            one row per task (rewritten as tasks finish)
    tasks/ID.json          the record of a finished or failed task (spec, SHA-256, numbers)
    tasks/ID.nc            a fit task's result (ArviZ layout, :func:`exopk.load_fit` reads it)

Every file is written atomically (:func:`exopk.io.write_atomically`): a reader, or a rerun after
Ctrl-C or a crash, sees a complete file or none. A record is written after its result, so a
record marked done always has its result. A task counts as finished if its record is marked
done and stores the SHA-256 of the same task specification.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from pathlib import Path

from exopk.io import write_atomically

__all__ = ["SUMMARY", "record_path", "result_path", "finished_record", "write_record",
           "summary_rows", "write_summary", "format_rows"]

SUMMARY = "summary.csv"
_TOTALS = ("seconds", "divergences", "max_rhat", "min_ess_bulk")
_PER_PARAMETER = {"fit": ("q50",), "simulate": ("rank", "covered")}


def record_path(folder: Path, task_id: str) -> Path:
    return Path(folder) / "tasks" / f"{task_id}.json"


def result_path(folder: Path, task_id: str) -> Path:
    return Path(folder) / "tasks" / f"{task_id}.nc"


def finished_record(folder: Path, task) -> dict | None:
    """The record of ``task`` if it finished with the same specification, else None."""
    path = record_path(folder, task.id)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "done" or record.get("spec_sha256") != task.sha256:
        return None
    if record.get("result") and not (path.parent / record["result"]).is_file():
        return None
    return record


def write_record(folder: Path, task, outcome: dict | None, error: str | None) -> dict:
    """Write a task's result (a fit's tree) and then its record; return the record."""
    record = {"task": task.id, "status": "failed" if error else "done", "error": error,
              "spec_sha256": task.sha256, "columns": task.columns, "result": None,
              "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds")}
    if outcome is not None:
        if outcome.get("tree") is not None:
            from exopk.inference.result import write_fit
            write_fit(outcome["tree"], result_path(folder, task.id))
            record["result"] = result_path(folder, task.id).name
        record.update({k: outcome[k] for k in ("seconds", "worker", "numbers", "parameters")})
    record["spec"] = task.spec
    write_atomically(record_path(folder, task.id),
                     lambda p: p.write_text(json.dumps(record, indent=1, default=_plain)))
    return record


def _plain(value):
    """JSON for numpy scalars."""
    return value.item() if hasattr(value, "item") else str(value)


def summary_rows(tasks, records: dict) -> list[dict]:
    """One row per task: id, status, settings, wall time, diagnostics, key numbers, error."""
    rows = []
    for task in tasks:
        record = records.get(task.id)
        row = {"task": task.id, "status": record["status"] if record else "pending",
               **{k: json.dumps(v) if isinstance(v, dict) else v
                  for k, v in task.columns.items()}}
        if record:
            numbers = record.get("numbers") or {}
            row["seconds"] = record.get("seconds")
            row.update({k: numbers.get(k) for k in _TOTALS[1:]})
            row.update({k: v for k, v in numbers.items() if k not in row})
            for name, values in (record.get("parameters") or {}).items():
                for key in _PER_PARAMETER[task.spec["kind"]]:
                    row[f"{key}[{name}]"] = values[key]
            row["result"] = record.get("result")
            row["error"] = record.get("error")
        rows.append(row)
    return rows


def write_summary(folder: Path, rows: list[dict]) -> Path:
    """Write the summary table (CSV, every column any row has) atomically."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def write(path):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)
    return write_atomically(Path(folder) / SUMMARY, write)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def format_rows(rows: list[dict], columns: list[str]) -> str:
    """A fixed-width text table of ``columns`` of the rows (``-`` for missing values)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(columns, widths))]
    lines += ["  ".join(f"{v:<{w}}" for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
