"""Extract: stream source records into the staging table in numbered batches.

Records are read page by page and written batch by batch (memory stays flat). Batch numbers are a
pure function of the order the stream yields (its replication key, then id), so a rerun of the
same window stages the same batches again, as upserts: safe to clear and retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

from crm_migration.hooks.state import MigrationStateHook

log_ = logging.getLogger(__name__)


class BatchRef(TypedDict):
    """A small descriptor that travels through XCom (never the records themselves)."""

    source_object: str
    batch_no: int
    count: int
    of: int                 # how many batches the object has in this run (for "batch 3 of 10" in the logs)


def stage_stream(state: MigrationStateHook, records: Iterable[Mapping[str, Any]], *, run_id: str, pair: str,
                 source_object: str, batch_size: int, id_field: str = "Id",
                 deleted: Callable[[Mapping[str, Any]], bool] | None = None, log: Any = None,
                 volatile: Sequence[str] = (), first_batch: int = 0) -> list[BatchRef]:
    """Stage ``records`` in batches of ``batch_size`` numbered from ``first_batch``; return one :class:`BatchRef`
    per batch (``of``: the batches of this call).

    :param volatile: record keys left out of each row's source hash (see :meth:`MigrationStateHook.stage`).

    :param deleted: tells a deleted source record (staged with ``deleted = true``) from a live one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    log = log or log_
    started = time.perf_counter()
    refs: list[BatchRef] = []
    buf: dict[str, dict[str, Any]] = {}     # by source id: a record repeated within a batch counts once
    total = 0

    def flush() -> None:
        nonlocal buf
        if not buf:
            return
        batch_no = first_batch + len(refs)
        state.stage(run_id=run_id, pair=pair, source_object=source_object, batch_no=batch_no, rows=list(buf.values()),
                    volatile=volatile)
        refs.append({"source_object": source_object, "batch_no": batch_no, "count": len(buf), "of": 0})
        log.info("%s: staged batch %d (%d records, %d so far, %.1f s)", source_object, batch_no, len(buf), total,
                 time.perf_counter() - started)
        buf = {}

    for rec in records:
        sid = rec.get(id_field)
        if sid is None:
            raise ValueError(f"{source_object}: a record has no {id_field!r}: {sorted(rec)[:10]}")
        sid = str(sid)
        if sid not in buf:
            total += 1
        buf[sid] = {"source_id": sid, "record": dict(rec), "deleted": bool(deleted(rec)) if deleted else False}
        if len(buf) >= batch_size:
            flush()
    flush()
    for ref in refs:
        ref["of"] = len(refs)
    log.info("%s: %d records staged in %d batches of up to %d (%.1f s)", source_object, total, len(refs),
             batch_size, time.perf_counter() - started)
    return refs
