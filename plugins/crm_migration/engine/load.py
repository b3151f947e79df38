"""Load one batch of mapped records into Odoo, exactly once, and record it in the state DB.

For a batch of ``n`` rows the loader makes, in the common case:

- two state-DB statements: look up the crosswalk and claim the unknown ids (``pending``), then record
  the batch (crosswalk, audit, manifest, dead letters; the claims are released);
- one ``create`` for the new rows, one ``read`` for the rows whose source changed, and one ``write``
  per distinct set of changed values;
- only when an earlier attempt had claimed ids without recording them (it died between Odoo's commit
  and the state DB's): one ``search_read`` on ``x_migration_key``, so what landed is adopted, never
  created twice.

A row Odoo refuses never sinks its batch: the call is split in halves until the bad row is alone
(about ``2·log2(n)`` extra calls for one bad row), it goes to ``dead_letter`` with Odoo's message and
the field, and the rest lands once. Transient faults are the hook's business (bounded retries, keyed
replays); if they persist the task fails and its rerun starts over safely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

from crm_migration.engine.values import canonical, canonical_vals, changed_fields, content_hash
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook, OdooRecordError
from crm_migration.hooks.state import AuditRow, Bound, DeadLetter, Link, ManifestRow, MigrationStateHook

log_ = logging.getLogger(__name__)

CONFLICT_POLICIES = ("report", "source_wins")


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where one source object lands.

    :param pair: the migration pair (``apto_to_odoo``).
    :param source: the source system's short name used in keys (``apto``, ``link_app``).
    :param source_object: the source object's own name (``Contact``, ``deals``).
    :param model: the Odoo model (``res.partner``).
    :param conflict_policy: ``report`` (a field edited in Odoo since our last write is left alone
        and reported) or ``source_wins`` (overwritten).
    :param context: extra Odoo context for this object's calls (e.g. ``no_mail_to_attendees``).
    """

    pair: str
    source: str
    source_object: str
    model: str
    conflict_policy: str = "report"
    context: Mapping[str, Any] | None = None     # merged into every Odoo call of this object

    @property
    def ctx(self) -> dict[str, Any]:
        return dict(self.context or {})

    def __post_init__(self) -> None:
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise ValueError(f"conflict_policy must be one of {CONFLICT_POLICIES}, got {self.conflict_policy!r}")

    def key(self, source_id: str) -> str:
        """The source key carried by the record in Odoo (``x_migration_key``)."""
        return f"{self.source}:{self.source_object}:{source_id}"


class Row(TypedDict, total=False):
    """One mapped record: Odoo values, or the mapping error that stopped it."""

    source_id: str
    values: dict[str, Any]
    deferred: dict[str, Any]           # written in a second call, after the record exists
    record: Mapping[str, Any]          # the source record, kept with a dead letter
    error: tuple[str | None, str]      # (field, reason) when mapping failed: dead-lettered as is


class LoadResult(TypedDict):
    source_object: str
    model: str
    rows: int
    created: int
    updated: int
    skipped: int
    adopted: int
    conflicts: int
    dead_lettered: int
    dead_letter_ids: list[str]
    odoo_calls: int
    seconds: float


class _Log(Protocol):
    def info(self, msg: str, *args: Any) -> None: ...
    def warning(self, msg: str, *args: Any) -> None: ...


def load_batch(odoo: OdooHook, state: MigrationStateHook, target: Target, rows: Sequence[Row], *,
               run_id: str, dry_run: bool = False, log: _Log | None = None) -> LoadResult:
    """Create new rows, write the changed fields of known ones, skip the rest; record it all atomically.

    Safe to rerun at any point: a rerun skips what was recorded, adopts what landed in Odoo but was
    not recorded (found by ``x_migration_key``), and creates only what is missing.
    """
    log = log or log_
    started = time.perf_counter()
    calls_before = sum(odoo.calls.values())
    model = target.model
    plan = _Plan(target)

    for row in rows:
        if row.get("error"):
            field, reason = row["error"]
            plan.dead(row, field, reason)
    valid = [r for r in rows if not r.get("error")]
    if not valid and not plan.dead_letters:
        return plan.result(rows, calls=0, started=started)

    fields = odoo.fields_get(model) if valid else {}
    ids = [r["source_id"] for r in valid]
    if dry_run:
        bound, maybe_landed = state.lookup(target.pair, target.source_object, ids), set()
    else:
        bound, maybe_landed = state.lookup_and_claim(target.pair, target.source_object, ids, run_id=run_id)
    # only ids an interrupted attempt had claimed can be in Odoo without being recorded
    retry = [target.key(sid) for sid in ids if sid in maybe_landed]
    found = odoo.find_by_keys(model, retry) if retry else {}

    to_create: list[Row] = []
    to_check: list[tuple[Row, int, dict[str, Any] | None]] = []   # (row, odoo id, written or None=adopted)
    for row in valid:
        sid = row["source_id"]
        if sid in bound:
            b: Bound = bound[sid]
            if b.content_hash == content_hash(_full(row)):
                plan.skipped.append(sid)
            else:
                to_check.append((row, b.odoo_id, b.written))
        elif (oid := found.get(target.key(sid))) is not None:
            to_check.append((row, oid, None))
        else:
            to_create.append(row)

    updates: dict[int, dict[str, Any]] = {}
    update_rows: dict[int, Row] = {}
    if to_check:
        names = sorted({f for row, _, _ in to_check for f in _full(row)})
        current = {rec["id"]: rec for rec in odoo.read(model, [oid for _, oid, _ in to_check], names,
                                                       context={"active_test": False})}
        for row, oid, written in to_check:
            sid = row["source_id"]
            now = current.get(oid)
            if now is None:                     # deleted in Odoo since we wrote it: the source still has it
                log.warning("%s %s: Odoo %s %s no longer exists; creating it again", target.source_object,
                            sid, model, oid)
                to_create.append(row)
                continue
            vals = _full(row)
            if written is None:                 # landed before a crash, never recorded: adopt
                plan.adopted.append((row, oid))
                delta = changed_fields(vals, now, fields)
            else:
                delta = changed_fields(vals, written, fields)
                edited = [f for f in delta if f in written and f in now
                          and canonical(now[f], _type(fields, f)) != canonical(written[f], _type(fields, f))]
                if edited:
                    plan.conflict(row, oid, edited, now, fields)
                    if target.conflict_policy == "report":
                        delta = {f: v for f, v in delta.items() if f not in edited}
                delta = changed_fields(delta, now, fields)   # no-op writes are skipped
            if delta:
                updates[oid] = delta
                update_rows[oid] = row
                plan.prior[oid] = {f: canonical(now.get(f), _type(fields, f)) for f in delta}
            elif written is not None:
                plan.skipped.append(sid)
            plan.relink.append((row, oid))

    if dry_run:
        plan.created = {r["source_id"]: 0 for r in to_create}
        plan.updated = dict(updates)
        result = plan.result(rows, calls=sum(odoo.calls.values()) - calls_before, started=started)
        log.info("%s -> %s (dry run): would create %d, update %d, skip %d; %d dead letters", target.source_object,
                 model, result["created"], result["updated"], result["skipped"], result["dead_lettered"])
        return result

    if to_create:
        keys = [target.key(r["source_id"]) for r in to_create]

        def create(chunk: list[int]) -> None:
            ids = odoo.create_batch(model, [to_create[i]["values"] for i in chunk], keys=[keys[i] for i in chunk],
                                    context=target.ctx)
            for i, oid in zip(chunk, ids, strict=True):
                plan.created[to_create[i]["source_id"]] = oid

        for i, exc in _isolating(list(range(len(to_create))), create):
            plan.dead(to_create[i], exc.field, exc.message)
        by_sid = {r["source_id"]: r for r in to_create}
        plan.created_rows = {sid: by_sid[sid] for sid in plan.created}
        # fields Odoo would overwrite when sent with the others go in a second write
        late = {plan.created[sid]: dict(r["deferred"]) for sid, r in plan.created_rows.items() if r.get("deferred")}
        for oid, exc in _write_isolating(odoo, model, late, target):
            sid = next(s for s, o in plan.created.items() if o == oid)
            plan.dead(plan.created_rows[sid], exc.field, f"created, but the follow-up write failed: {exc.message}")
            plan.partial.add(oid)

    if updates:
        # regular fields first, then the deferred ones (Odoo resets some of those on the first write)
        for phase in ("values", "deferred"):
            batch = {oid: {f: v for f, v in delta.items() if f in (update_rows[oid].get(phase) or {})}
                     for oid, delta in updates.items() if oid not in plan.failed_updates}
            batch = {oid: vals for oid, vals in batch.items() if vals}
            failed = _write_isolating(odoo, model, batch, target)
            for oid, exc in failed:
                plan.dead(update_rows[oid], exc.field, exc.message)
                plan.prior.pop(oid, None)
                plan.failed_updates.add(oid)
        plan.updated = {oid: delta for oid, delta in updates.items() if oid not in plan.failed_updates}

    counts = state.record_batch(run_id=run_id, pair=target.pair, source_object=target.source_object,
                                odoo_model=model, **plan.state_rows(fields))
    result = plan.result(rows, calls=sum(odoo.calls.values()) - calls_before, started=started)
    log.info("%s -> %s: %d rows: %d created, %d updated, %d unchanged, %d adopted, %d conflicts, "
             "%d dead letters%s; %d Odoo calls, %.2f s", target.source_object, model, result["rows"],
             result["created"], result["updated"], result["skipped"], result["adopted"], result["conflicts"],
             result["dead_lettered"],
             f" ({', '.join(result['dead_letter_ids'][:10])}{'...' if result['dead_lettered'] > 10 else ''})"
             if result["dead_lettered"] else "", result["odoo_calls"], result["seconds"])
    log_.debug("state rows written: %s", counts)
    return result


def _full(row: Row) -> dict[str, Any]:
    """All the values a row sets, the deferred ones included (what is hashed and compared)."""
    return {**row["values"], **(row.get("deferred") or {})}


def _write_isolating(odoo: OdooHook, model: str, updates: Mapping[int, Mapping[str, Any]],
                     target: Target) -> list[tuple[int, OdooRecordError]]:
    """``write_batch`` the updates; isolate the records Odoo refuses (returned with their error)."""
    if not updates:
        return []
    oids = list(updates)

    def write(chunk: list[int]) -> None:
        odoo.write_batch(model, {oids[i]: updates[oids[i]] for i in chunk}, context=target.ctx)

    return [(oids[i], exc) for i, exc in _isolating(list(range(len(oids))), write)]


def _type(fields: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
    return (fields.get(name) or {}).get("type")


def _isolating(items: list[int], call: Callable[[list[int]], None]) -> list[tuple[int, OdooRecordError]]:
    """Run ``call`` on ``items``; on a record error split in halves until each bad item is alone.

    Returns ``(item, error)`` for the items Odoo refused. A call that fails writes nothing (one call
    is one transaction in Odoo), so the good items are written exactly once.
    """
    failed: list[tuple[int, OdooRecordError]] = []
    stack = [items]
    while stack:
        chunk = stack.pop()
        if not chunk:
            continue
        try:
            call(chunk)
        except OdooRecordError as exc:
            if len(chunk) == 1:
                failed.append((chunk[0], exc))
            else:
                mid = len(chunk) // 2
                stack.extend([chunk[mid:], chunk[:mid]])     # left half first
    return failed


class _Plan:
    """What one batch does, collected as it goes, turned into state rows and a result at the end."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.skipped: list[str] = []
        self.adopted: list[tuple[Row, int]] = []
        self.relink: list[tuple[Row, int]] = []
        self.created: dict[str, int] = {}
        self.created_rows: dict[str, Row] = {}
        self.updated: dict[int, dict[str, Any]] = {}
        self.prior: dict[int, dict[str, Any]] = {}
        self.failed_updates: set[int] = set()
        self.partial: set[int] = set()           # created, but a deferred write failed
        self.conflicts: list[tuple[Row, int, list[str], dict[str, Any]]] = []
        self.dead_letters: list[DeadLetter] = []

    def dead(self, row: Row, field: str | None, reason: str) -> None:
        self.dead_letters.append({"source_id": row["source_id"], "field": field, "reason": reason,
                                  "record": dict(row.get("record") or row.get("values") or {})})

    def conflict(self, row: Row, oid: int, edited: list[str], now: Mapping[str, Any],
                 fields: Mapping[str, Mapping[str, Any]]) -> None:
        self.conflicts.append((row, oid, edited, {f: canonical(now.get(f), _type(fields, f)) for f in edited}))

    def state_rows(self, fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        links: list[Link] = []
        audit: list[AuditRow] = []
        manifest: list[ManifestRow] = []
        adopted_ids = {oid for _, oid in self.adopted}
        for sid, oid in self.created.items():
            row = self.created_rows[sid]
            full = row["values"] if oid in self.partial else _full(row)
            vals = canonical_vals(full, fields)
            links.append({"source_id": sid, "odoo_id": oid, "written": vals,
                          "content_hash": None if oid in self.partial else content_hash(full)})
            audit.append({"source_id": sid, "odoo_id": oid, "action": "create", "changes": vals})
            manifest.append({"source_id": sid, "odoo_id": oid, "action": "created",
                             "new_values": {**vals, MIGRATION_KEY: self.target.key(sid)}})
        for row, oid in self.relink:
            sid = row["source_id"]
            if oid in self.failed_updates:
                continue
            written = canonical_vals(self.updated.get(oid, {}), fields)
            if oid in adopted_ids:
                written = canonical_vals(_full(row), fields)
            links.append({"source_id": sid, "odoo_id": oid, "content_hash": content_hash(_full(row)),
                          "written": written})
            if oid in adopted_ids:
                audit.append({"source_id": sid, "odoo_id": oid, "action": "adopt", "changes": written,
                              "message": "found in Odoo by its source key: it landed before an interrupted run"})
                manifest.append({"source_id": sid, "odoo_id": oid, "action": "created", "new_values": written})
            elif oid in self.updated:
                changes = canonical_vals(self.updated[oid], fields)
                audit.append({"source_id": sid, "odoo_id": oid, "action": "update",
                              "changes": {f: {"old": self.prior[oid].get(f), "new": v} for f, v in changes.items()}})
                manifest.append({"source_id": sid, "odoo_id": oid, "action": "updated",
                                 "prior_values": self.prior[oid], "new_values": changes})
        for sid in self.skipped:
            audit.append({"source_id": sid, "action": "skip"})
        for row, oid, edited, now in self.conflicts:
            audit.append({"source_id": row["source_id"], "odoo_id": oid, "action": "conflict", "changes": now,
                          "message": f"edited in Odoo since the last load: {', '.join(edited)} "
                                     f"({'overwritten: source wins' if self.target.conflict_policy == 'source_wins' else 'kept, not overwritten'})"})
        for d in self.dead_letters:
            audit.append({"source_id": d["source_id"], "action": "error",
                          "message": f"{d['field'] + ': ' if d.get('field') else ''}{d['reason']}"})
        return {"links": links, "audit": audit, "manifest": manifest, "dead_letters": self.dead_letters}

    def result(self, rows: Sequence[Row], *, calls: int, started: float) -> LoadResult:
        dead_ids = [d["source_id"] for d in self.dead_letters]
        return {
            "source_object": self.target.source_object, "model": self.target.model, "rows": len(rows),
            "created": len(self.created), "updated": len(self.updated),
            "skipped": len(set(self.skipped)), "adopted": len(self.adopted), "conflicts": len(self.conflicts),
            "dead_lettered": len(dead_ids), "dead_letter_ids": dead_ids, "odoo_calls": calls,
            "seconds": round(time.perf_counter() - started, 3),
        }
