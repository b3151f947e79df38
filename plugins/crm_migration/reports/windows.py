"""The read-window report of a delta run: per object, what was read (from, to), how many records, whether
its watermark moved, and the warnings (deletions older than the source keeps, an object never fully run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.reports.writer import Report

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def _ts(value: Any) -> str:
    return value.isoformat() if value is not None else "the beginning"


def write_windows_report(windows: Sequence[Mapping[str, Any]], landed: Sequence[Mapping[str, Any]], *, pair: str,
                         run_id: str, root: str | ObjectStoragePath | None = None) -> ObjectStoragePath:
    """``windows``: ``MigrationStateHook.read_windows`` rows; ``landed``: what :func:`~crm_migration.engine.
    windows.land` returned. Returns the HTML page's path."""
    moved = {r["source_object"]: r for r in landed}
    warnings = [w for r in windows for w in (r.get("warning") or "").split("\n") if w]
    kinds = sorted({str(r["kind"]).replace("_", " ") for r in windows})
    report = Report(title=f"Delta windows of {run_id}", pair=pair, run_id=run_id, kind="windows")
    n_moved = sum(1 for r in landed if r["moved"])
    report.headline = (f"{len(windows)} objects read ({', '.join(kinds) or '-'}); {n_moved} watermarks moved"
                       + (f"; {len(warnings)} warning(s)." if warnings else "."))
    report.tone = "warn" if warnings else "ok"
    report.actions.extend(warnings)
    report.summary.append(f"{sum(r.get('records') or 0 for r in windows):,} records read (deletions included).")
    report.add("Windows read", [{
        "object": r["source_object"], "kind": str(r["kind"]).replace("_", " "), "from": _ts(r["start_at"]),
        "to": _ts(r["end_at"]), "watermark before": _ts(r["watermark"]), "records (deletions included)": r["records"],
        "watermark now": (_ts(r["end_at"]) if moved.get(r["source_object"], {}).get("moved")
                          else f"unchanged ({_ts(moved[r['source_object']]['before'])})"
                          if r["source_object"] in moved else "not moved: the run did not land"),
        "warning": r.get("warning") or "",
    } for r in windows], note="A window reads from the object's watermark (never later than the run's "
                              "data_interval_start) to its end; a watermark moves to the window's end only once every "
                              "object of the run has landed.")
    return report.write(root)
