"""Read windows and watermarks: no change in the source is missed between the full run and go-live.

Each object's watermark says how far the source has been read *and landed*. A run reads one window per
object, fixed the first time its extraction asks (a cleared and rerun task reads the same window again):

- a full or sample run reads everything up to the moment its extraction began (``start=None``);
- a scheduled delta reads from ``min(watermark, data_interval_start)`` to ``data_interval_end``, so a
  failed, skipped or paused window is caught up by the next one, and the first window after a full run
  covers everything since it (overlapping reads are harmless: upserts, unchanged records skipped);
- a *sync now* (a delta triggered by hand without a data interval, or with ``sync_now``) reads from the
  watermark to the moment its extraction began.

Once every object of a run has landed, :func:`land` moves each object's watermark to its window's end,
once (a sample moves none). Deletions are read from the same start: where the source keeps them for a
limited time (:attr:`deletions_kept` of the source adapter), a start older than that is warned about.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from crm_migration.hooks.state import MigrationStateHook

log_ = logging.getLogger(__name__)

#: the kinds of window a run reads
KINDS = ("sample", "full", "delta", "sync_now")


class Window(TypedDict):
    source_object: str
    kind: str
    start: datetime | None          # None: from the beginning
    end: datetime
    watermark: datetime | None      # the object's watermark when the window was opened
    warnings: list[str]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _ts(value: datetime | None) -> str:
    return value.isoformat() if value else "the beginning"


def resolve(kind: str, *, watermark: datetime | None, interval_start: datetime | None,
            interval_end: datetime | None, at: datetime) -> tuple[datetime | None, datetime]:
    """``(start, end)`` of a window of ``kind`` (pure: :func:`open_window` stores it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown window kind {kind!r} (known: {', '.join(KINDS)})")
    if kind in ("sample", "full"):
        return None, at
    if kind == "sync_now":                     # a watermark past now (a window that ended later): nothing to read
        start = watermark if watermark is not None else interval_start
        return start, (at if start is None or start < at else start)
    if interval_start is None or interval_end is None:
        raise ValueError("a scheduled delta window needs data_interval_start and data_interval_end")
    start = interval_start if watermark is None else min(watermark, interval_start)
    return start, interval_end


def deletion_warning(source: Any, name: str, start: datetime | None, at: datetime) -> str | None:
    """A warning when deletions are read from further back than the source keeps them (``None`` otherwise)."""
    kept: timedelta | None = getattr(source, "deletions_kept", None)
    if kept is None:
        return None
    oldest = at - kept
    if start is not None and start >= oldest:
        return None
    where = getattr(source, "deletions_kept_where", None) or f"{getattr(source, 'name', 'the source')} keeps them"
    since = "the beginning" if start is None else f"{start.isoformat()} ({(at - start).days} days ago)"
    return (f"{name}: deletions are read from {since}, but {where} {kept.days} days only: a record deleted "
            f"before {oldest.isoformat()} cannot be seen and stays active in Odoo. Compare the source's ids "
            "with Odoo's keys (reconciliation) to find such records.")


def open_window(state: MigrationStateHook, source: Any, *, pair: str, name: str, run_id: str, kind: str,
                interval_start: datetime | None = None, interval_end: datetime | None = None,
                with_deleted: bool = False, log: Any = None) -> Window:
    """The window ``run_id`` reads of object ``name``: opened now, or the one a first attempt opened."""
    log = log or log_
    at = now()
    mark = state.get_watermark(pair, name)
    start, end = resolve(kind, watermark=mark, interval_start=interval_start, interval_end=interval_end, at=at)
    row = state.open_window(run_id=run_id, pair=pair, source_object=name, kind=kind, start=start, end=end,
                            watermark=mark)
    win: Window = {"source_object": name, "kind": row["kind"], "start": row["start_at"], "end": row["end_at"],
                   "watermark": row["watermark"], "warnings": []}
    if row["opened_at"] != row["read_at"]:
        log.info("%s: a rerun reads the window its first attempt opened", name)
    if win["kind"] in ("delta", "sync_now") and win["watermark"] is None:
        win["warnings"].append(f"{name} has no watermark: no full run has landed it; this run reads from "
                               f"{_ts(win['start'])} only. Run a full migration of {name} first.")
    if with_deleted and (w := deletion_warning(source, name, win["start"], at)):
        win["warnings"].append(w)
    behind = f" (its watermark {_ts(win['watermark'])})" if win["kind"] in ("delta", "sync_now") else ""
    log.info("%s: %s window [%s, %s)%s", name, win["kind"].replace("_", " "), _ts(win["start"]),
             win["end"].isoformat(), behind)
    for w in win["warnings"]:
        log.warning("%s", w)
    return win


def land(state: MigrationStateHook, *, pair: str, run_id: str, names: Collection[str],
         log: Any = None) -> list[dict[str, Any]]:
    """Every object of ``names`` has landed in ``run_id``: mark its window landed, move its watermark to the
    window's end (forward only; once: a rerun moves nothing more). Returns one row per window."""
    log = log or log_
    rows = state.land_windows(run_id=run_id, pair=pair, source_objects=list(names))
    for r in rows:
        if r["kind"] == "sample":
            continue
        if r["moved"]:
            log.info("%s: watermark moved from %s to %s", r["source_object"], _ts(r["before"]), r["end_at"].isoformat())
        else:
            log.info("%s: watermark stays at %s (this window ends at %s)", r["source_object"], _ts(r["before"]),
                     r["end_at"].isoformat())
    return rows
