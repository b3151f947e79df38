"""Load one batch of mapped records into Odoo, exactly once, and record it in the state DB.

For a batch of ``n`` rows the loader makes, in the common case:

- two state-DB statements: look up the crosswalk and claim the unknown ids (``pending``), then record
  the batch (crosswalk, audit, manifest, dead letters; the claims are released);
- one ``create`` for the new rows (one per level when rows name new parents of the same batch: a
  company's parent; on Odoo 17 one per round of open tasks when one user has several on one record), one ``read`` for the rows whose source changed, and one ``write`` per distinct
  set of changed values;
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
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

from crm_migration.engine.values import canonical, canonical_vals, changed_fields, content_hash
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook, OdooRecordError
from crm_migration.hooks.state import AuditRow, Bound, DeadLetter, Link, ManifestRow, MigrationStateHook
from crm_migration.mapping.mapper import hierarchy_levels

log_ = logging.getLogger(__name__)

CONFLICT_POLICIES = ("report", "source_wins")

#: Fields Odoo computes by itself and the tool never writes, that a run changes all the same (model -> fields): a
#: deal's predictive-scoring probability, recomputed by Odoo on a stage, an archive, a changed email or phone. A run
#: reads them before it writes the record (its prior values) and a rollback writes them back (Odoo 17 and 19 keep a
#: written value until their next recomputation); they are never judged as edits, nor kept as the tool's writes.
RECOMPUTED: dict[str, tuple[str, ...]] = {"crm.lead": ("automated_probability",)}


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
    warnings: list[tuple[str, str]]    # (field, reason): landed, repaired or as is, and flagged in the audit log
    target: Target                     # another object of the same model (a mixed timeline batch)
    source_hash: str                   # the source version mapped ('': map it again next time), recorded when it lands
    digests: dict[str, str]            # binary field -> "sha1:<hex>" of its bytes, known already (not decoded again)
    # values sent only if the row is created (a company's parent already in Odoo: a new record cannot close a
    # cycle); an update leaves them to a later step (link). Recorded as written, not part of the content hash
    on_create: dict[str, Any]
    after: tuple[str, str]             # (field, source id): a new row of this batch created first, its id in `field`


class LoadResult(TypedDict):
    source_object: str
    model: str
    rows: int
    created: int
    updated: int
    skipped: int
    adopted: int
    superseded: int
    conflicts: int
    flagged: int
    dead_lettered: int
    dead_letter_ids: list[str]
    odoo_calls: int
    seconds: float


class _Log(Protocol):
    def info(self, msg: str, *args: Any) -> None: ...
    def warning(self, msg: str, *args: Any) -> None: ...


Rid = tuple[str, str]      # (crosswalk scope, source id): one row of a batch


def load_batch(odoo: OdooHook, state: MigrationStateHook, target: Target, rows: Sequence[Row], *,
               run_id: str, dry_run: bool = False, log: _Log | None = None,
               order_group: Callable[[Row], Any] | None = None) -> LoadResult:
    """Create new rows, write the changed fields of known ones, skip the rest; record it all atomically.

    Safe to rerun at any point: a rerun skips what was recorded, adopts what landed in Odoo but was
    not recorded (found by ``x_migration_key``), and creates only what is missing.

    Rows are created in the order given, in one call, so ids follow that order (chatter is shown by
    id); rows naming another new row of the batch as their parent (``after``: a company's parent) are
    created in a later call, one per level of that hierarchy. A row may name another ``target`` of the same model (a timeline batch mixes objects). A row
    whose crosswalk entry is a record of another model (a task loaded as an activity while open, now
    closed and mapped to a message) supersedes it: the new record is created and the old one removed,
    its values kept in the rollback manifest.

    :param order_group: keeps the given order within each group (``(model, res_id)``: one record's
        chatter). A record already in Odoo that comes after a new one of its group would sit before
        it in id order; it is created again after it and the old one removed, as above (a full run
        after a sample places the sample's messages back among the others).
    """
    log = log or log_
    started = time.perf_counter()
    calls_before = sum(odoo.calls.values())
    model = target.model
    plan = _Plan(target)

    def tgt(row: Row) -> Target:
        return row.get("target") or target

    def rid(row: Row) -> Rid:
        return tgt(row).source_object, row["source_id"]

    for row in rows:
        if row.get("error"):
            field, reason = row["error"]
            plan.dead(row, field, reason)
    valid = [r for r in rows if not r.get("error")]
    if not valid and not plan.dead_letters:
        return plan.result(rows, calls=0, started=started)
    for row in valid:
        if tgt(row).model != model:
            raise ValueError(f"a batch loads one model: {rid(row)} is for {tgt(row).model}, the batch for {model}")

    fields = odoo.fields_get(model) if valid else {}
    scopes: dict[str, list[str]] = {}
    for row in valid:
        scopes.setdefault(tgt(row).source_object, []).append(row["source_id"])
    bound: dict[Rid, Bound] = {}
    maybe_landed: set[Rid] = set()
    for scope, ids in scopes.items():
        if dry_run:
            b, m = state.lookup(target.pair, scope, ids), set()
        else:
            b, m = state.lookup_and_claim(target.pair, scope, ids, run_id=run_id)
        bound.update({(scope, sid): v for sid, v in b.items()})
        maybe_landed.update((scope, sid) for sid in m)
    # bound to a record of another model: replaced by a new record of this one
    superseded = {r: b for r, b in bound.items() if b.odoo_model and b.odoo_model != model}
    if order_group is not None:
        superseded.update(_out_of_order(valid, bound, superseded, order_group, rid))
    old_values = _read_superseded(odoo, superseded) if superseded else {}   # what a rollback recreates
    kept = [r for r, b in superseded.items()
            if b.odoo_model == model and _edited(old_values.get((model, b.odoo_id)), b.written, fields)]
    for r in kept:          # to be moved only for the order, but edited in Odoo since our write: left alone
        del superseded[r]
    if kept:
        log.warning("%s: %d records edited in Odoo are left where they are, out of date order (%s)", model,
                    len(kept), ", ".join(f"{s}:{i}" for s, i in kept[:10]))
    # only ids an interrupted attempt had claimed (or superseded ones) can be in Odoo without being recorded
    retry = [tgt(row).key(row["source_id"]) for row in valid if rid(row) in maybe_landed or rid(row) in superseded]
    replaced_here = {b.odoo_id for b in superseded.values() if b.odoo_model == model}
    found = odoo.find_by_keys(model, retry, exclude=replaced_here) if retry else {}

    to_create: list[Row] = []
    to_check: list[tuple[Row, int, dict[str, Any] | None]] = []   # (row, odoo id, written or None=adopted)
    for row in valid:
        r = rid(row)
        if r in bound and r not in superseded:
            b: Bound = bound[r]
            if b.content_hash == content_hash(_hashed(row)):
                plan.skipped.append(r)
                if "source_hash" in row:
                    plan.stamps.append({"source_object": r[0], "source_id": r[1], "source_hash": row["source_hash"]})
            else:
                to_check.append((row, b.odoo_id, b.written))
        elif (oid := found.get(tgt(row).key(row["source_id"]))) is not None:
            to_check.append((row, oid, None))
        else:
            to_create.append(row)

    updates: dict[int, dict[str, Any]] = {}
    update_rows: dict[int, Row] = {}
    if to_check:
        # and what Odoo recomputes by itself when the record is written: its prior value is the rollback's
        own = [f for f in RECOMPUTED.get(model, ()) if f in fields]
        names = sorted({f for row, _, _ in to_check for f in _full(row)} | set(own))
        current = {rec["id"]: rec for rec in odoo.read(model, [oid for _, oid, _ in to_check], names,
                                                       context={"active_test": False})}
        for row, oid, written in to_check:
            sid = row["source_id"]
            now = current.get(oid)
            if now is None:                     # deleted in Odoo since we wrote it: the source still has it
                log.warning("%s %s: Odoo %s %s no longer exists; creating it again", tgt(row).source_object,
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
                    plan.conflict(row, oid, edited, now, fields, written=written, sent=vals)
                    if tgt(row).conflict_policy == "report":
                        delta = {f: v for f, v in delta.items() if f not in edited}
                delta = changed_fields(delta, now, fields)   # no-op writes are skipped
            if delta:
                updates[oid] = delta
                update_rows[oid] = row
                plan.prior[oid] = {f: canonical(now.get(f), _type(fields, f)) for f in [*delta, *own]}
                plan.prior_files[oid] = {f: now[f] for f in delta if _type(fields, f) == "binary" and now.get(f)}
            elif written is not None:
                plan.skipped.append(rid(row))
            plan.relink.append((row, oid))

    old = superseded          # each of them is in to_check (found by key: landed earlier) or to_create
    if dry_run:
        plan.created = {rid(r): 0 for r in to_create}
        plan.updated = dict(updates)
        plan.superseded = {r: (b.odoo_model or "", b.odoo_id, {}) for r, b in old.items()}
        result = plan.result(rows, calls=sum(odoo.calls.values()) - calls_before, started=started)
        log.info("%s -> %s (dry run): would create %d, update %d, skip %d, replace %d; %d dead letters",
                 target.source_object, model, result["created"], result["updated"], result["skipped"],
                 result["superseded"], result["dead_lettered"])
        return result

    if to_create:
        keys = [tgt(r).key(r["source_id"]) for r in to_create]
        # a deferred field this server keeps on create goes with it (Odoo 19's stage date): no second call
        kept = odoo.kept_on_create(model) if any(r.get("deferred") for r in to_create) else frozenset()
        first = [{**r["values"], **{f: v for f, v in (r.get("deferred") or {}).items() if f in kept},
                  **(r.get("on_create") or {})} for r in to_create]

        def create(chunk: list[int]) -> None:
            ids = odoo.create_batch(model, [first[i] for i in chunk], keys=[keys[i] for i in chunk],
                                    context=target.ctx)
            for i, oid in zip(chunk, ids, strict=True):
                plan.created[rid(to_create[i])] = oid
                if to_create[i].get("on_create") or "after" in to_create[i]:
                    plan.on_create[rid(to_create[i])] = {f: first[i][f] for f in _on_create_fields(to_create[i])
                                                         if f in first[i]}

        apart = odoo.create_apart(model)      # Odoo 17: one activity per record and user in one create call
        for level in _creation_levels(to_create, rid, (lambda i: tuple(first[i].get(f) for f in apart)) if apart
                                      else None):
            for i in level:             # the parent created by an earlier level (none if Odoo refused it)
                if "after" in to_create[i]:
                    field, parent = to_create[i]["after"]
                    if (oid := plan.created.get((rid(to_create[i])[0], parent))) is not None:
                        first[i][field] = oid
            sizes = {i: _vals_bytes(first[i]) for i in level}
            if (limit := odoo.request_limit()) is not None:
                for i in [i for i in level if sizes[i] > limit - 1024 * 1024]:
                    big = max(first[i], key=lambda f: len(v) if isinstance(v := first[i][f], str | bytes) else 0)
                    plan.dead(to_create[i], big, f"{sizes[i] / 1024 / 1024:.0f} MiB of values ({big} mostly): over the "
                              f"{limit // 1024 // 1024} MiB Odoo takes in one {odoo.wire.name} request (it answers "
                              "HTTP 413); not sent. The odoo connection's transport jsonrpc (or auto) takes it")
                level = [i for i in level if sizes[i] <= limit - 1024 * 1024]
            for chunk in _by_size(level, sizes.__getitem__, CALL_BYTES):
                for i, exc in _isolating(chunk, create):
                    plan.dead(to_create[i], exc.field, exc.message)
        by_rid = {rid(r): r for r in to_create}
        plan.created_rows = {r: by_rid[r] for r in plan.created}
        # fields Odoo would overwrite when sent with the others go in a second write
        late = {plan.created[r]: {f: v for f, v in row["deferred"].items() if f not in kept}
                for r, row in plan.created_rows.items() if row.get("deferred")}
        late = {oid: vals for oid, vals in late.items() if vals}
        for oid, exc in _write_isolating(odoo, model, late, target):
            r = next(k for k, o in plan.created.items() if o == oid)
            plan.dead(plan.created_rows[r], exc.field, f"created, but the follow-up write failed: {exc.message}")
            plan.partial.add(oid)

    if updates:
        # a record archived here loses its activities on a server that deletes them (Odoo 17): kept as they are now
        archiving = [oid for oid, delta in updates.items() if delta.get("active") is False]
        if archiving and odoo.archive_deletes_activities(fields):
            plan.archived_away = activities_archived_away(odoo, state, target.pair, model, archiving)
        # the files about to be replaced, kept first: the run's rollback puts their bytes back
        state.keep_prior_files(run_id=run_id, pair=target.pair, odoo_model=model,
                               files={oid: plan.prior_files[oid] for oid in updates if plan.prior_files.get(oid)})
        # regular fields first, then the deferred ones (Odoo resets some of those on the first write)
        for phase in ("values", "deferred"):
            batch = {oid: {f: v for f, v in delta.items() if f in (update_rows[oid].get(phase) or {})}
                     for oid, delta in updates.items() if oid not in plan.failed_updates}
            batch = {oid: vals for oid, vals in batch.items() if vals}
            if model == "res.partner" and phase == "values":
                leads_take_partner_values(odoo, batch, context=target.ctx)
            failed = _write_isolating(odoo, model, batch, target)
            for oid, exc in failed:
                plan.dead(update_rows[oid], exc.field, exc.message)
                plan.prior.pop(oid, None)
                plan.failed_updates.add(oid)
        plan.updated = {oid: delta for oid, delta in updates.items() if oid not in plan.failed_updates}

    # the records replaced by this model's: removed once their successor exists
    landed = set(plan.created) | {rid(row) for row, oid in plan.relink if oid not in plan.failed_updates}
    retire: dict[str, list[int]] = {}
    for r, b in old.items():
        if r in landed and b.odoo_model:
            plan.superseded[r] = (b.odoo_model, b.odoo_id, old_values.get((b.odoo_model, b.odoo_id)))
            retire.setdefault(b.odoo_model, []).append(b.odoo_id)
    for old_model, ids in retire.items():
        odoo.unlink(old_model, [i for i in ids if (old_model, i) in old_values], context=target.ctx)

    counts = state.record_batch(run_id=run_id, pair=target.pair, source_object=target.source_object,
                                odoo_model=model, stamps=plan.stamps, **plan.state_rows(fields))
    result = plan.result(rows, calls=sum(odoo.calls.values()) - calls_before, started=started)
    log.info("%s -> %s: %d rows: %d created, %d updated, %d unchanged, %d adopted, %d replaced, %d conflicts, "
             "%d flagged fields, %d dead letters%s; %d Odoo calls, %.2f s", target.source_object, model, result["rows"],
             result["created"], result["updated"], result["skipped"], result["adopted"], result["superseded"],
             result["conflicts"], result["flagged"], result["dead_lettered"],
             f" ({', '.join(result['dead_letter_ids'][:10])}{'...' if result['dead_lettered'] > 10 else ''})"
             if result["dead_lettered"] else "", result["odoo_calls"], result["seconds"])
    log_.debug("state rows written: %s", counts)
    return result


#: The values one ``create`` call carries at most (files' base64 mostly): a batch of large files goes in several calls,
#: each held once in memory (a record larger than this goes alone). Odoo 17 and 19 take a larger request over JSON-RPC
#: and JSON-2 (checked: a 133 MiB ``create`` of a 100 MB file lands); over XML-RPC they refuse one over 128 MiB
#: (:meth:`OdooHook.request_limit`): such a record is dead-lettered with its size, not sent.
CALL_BYTES = 48 * 1024 * 1024


def _vals_bytes(vals: Mapping[str, Any]) -> int:
    """About what ``vals`` weigh in a request (its texts' length; a few bytes for anything else)."""
    return sum(len(v) if isinstance(v, str | bytes) else 16 for v in vals.values()) + 32 * len(vals)


def _by_size(indexes: Sequence[int], size: Callable[[int], int], cap: int) -> list[list[int]]:
    """``indexes`` in order, cut into runs of at most ``cap`` by ``size`` (a run holds one at least)."""
    out: list[list[int]] = []
    total = 0
    for i in indexes:
        if not out or total + size(i) > cap:
            out.append([])
            total = 0
        out[-1].append(i)
        total += size(i)
    return out


#: res.partner field -> the crm.lead field Odoo recomputes from it (crm.lead ``_compute_email_from``/``_phone``)
PARTNER_TO_LEAD = {"email": "email_from", "phone": "phone"}


def leads_take_partner_values(odoo: OdooHook, updates: Mapping[int, Mapping[str, Any]], *,
                              context: Mapping[str, Any] | None = None) -> int:
    """Before partners' email/phone change, give their deals (crm.lead) the new values first.

    Odoo 17 recomputes a lead's ``email_from``/``phone`` from its partner's after the call, outside the
    caller's context, and logs an unkeyed tracking message on every such lead whatever the context
    (loader trap 3). A lead that already holds the value is not recomputed, so nothing is logged. Returns
    the number of leads written (one search and one write per distinct value).
    """
    wanted = {pid: {PARTNER_TO_LEAD[f]: v for f, v in vals.items() if f in PARTNER_TO_LEAD and v}
              for pid, vals in updates.items()}
    wanted = {pid: v for pid, v in wanted.items() if v}
    if not wanted or "partner_id" not in odoo.fields_get("crm.lead"):
        return 0
    writes: dict[int, dict[str, Any]] = {}
    for lead in odoo.search_read("crm.lead", [("partner_id", "in", sorted(wanted))], ["partner_id", *PARTNER_TO_LEAD.values()],
                                 context={"active_test": False}):
        want = wanted[lead["partner_id"][0]]
        delta = {f: v for f, v in want.items() if (lead.get(f) or False) != v}
        if delta:
            writes[lead["id"]] = delta
    if writes:
        odoo.write_batch("crm.lead", writes, context=context)
    return len(writes)


def activities_archived_away(odoo: OdooHook, state: MigrationStateHook, pair: str, model: str,
                             ids: Sequence[int]) -> dict[int, tuple[list[ManifestRow], list[AuditRow]]]:
    """The migrated activities (keyed) of the ``model`` records ``ids`` about to be archived on a server that
    deletes a record's activities when it is archived (Odoo 17: :meth:`OdooHook.archive_deletes_activities`), as
    they are now: per record, a ``deleted`` rollback-manifest row for each (its values and key: the run's rollback
    creates it again) and an audit row saying Odoo deleted it with the archive. The crosswalk keeps pointing at it:
    the reconciliation names it as deleted by Odoo on the archive, not as missing. Records a person created
    (no key) are not the tool's to bring back. One ``search_read`` (and one ``read`` when there are some)."""
    if not ids:
        return {}
    found = odoo.search_read("mail.activity", [("res_model", "=", model), ("res_id", "in", sorted(set(ids))),
                                               (MIGRATION_KEY, "!=", False)], [MIGRATION_KEY, "res_id"],
                             context={"active_test": False})
    keys: dict[Rid, tuple[int, int]] = {}                 # (scope, source id) -> (activity id, its record)
    for act in found:
        parts = str(act[MIGRATION_KEY]).split(":", 2)
        if len(parts) == 3:
            keys[(parts[1], parts[2])] = (act["id"], act["res_id"])
    bound: dict[Rid, Bound] = {}
    for scope in {s for s, _ in keys}:
        for sid, b in state.lookup(pair, scope, [i for s, i in keys if s == scope]).items():
            if b.odoo_model == "mail.activity" and b.odoo_id == keys[(scope, sid)][0]:
                bound[(scope, sid)] = b
    values = _read_superseded(odoo, bound) if bound else {}
    out: dict[int, tuple[list[ManifestRow], list[AuditRow]]] = {}
    for (scope, sid), b in bound.items():
        vals = values.get(("mail.activity", b.odoo_id))
        if vals is None:
            continue
        parent = keys[(scope, sid)][1]
        manifest, audit = out.setdefault(parent, ([], []))
        manifest.append({"source_object": scope, "source_id": sid, "odoo_model": "mail.activity",
                         "odoo_id": b.odoo_id, "action": "deleted", "prior_values": vals, "new_values": {}})
        audit.append({"source_object": scope, "source_id": sid, "odoo_model": "mail.activity", "odoo_id": b.odoo_id,
                      "action": "unlink", "changes": vals,
                      "message": f"deleted by Odoo when the run archived {model} {parent}: this Odoo version deletes "
                                 "the activities of a record it archives (Odoo 19 keeps them); the run's rollback "
                                 "creates it again"})
    return out


def _out_of_order(valid: Sequence[Row], bound: Mapping[Rid, Bound], superseded: Mapping[Rid, Bound],
                  group: Callable[[Row], Any], rid: Callable[[Row], Rid]) -> dict[Rid, Bound]:
    """The bound rows that come after a row to be created in their group: created again after it."""
    first_new: dict[Any, int] = {}
    for i, row in enumerate(valid):
        if rid(row) not in bound or rid(row) in superseded:
            first_new.setdefault(group(row), i)
    return {rid(row): bound[rid(row)] for i, row in enumerate(valid)
            if rid(row) in bound and rid(row) not in superseded and i > first_new.get(group(row), len(valid))}


def _edited(now: Mapping[str, Any] | None, written: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Whether a record read back (canonical values) differs from what the crosswalk says we wrote."""
    if now is None:
        return False
    return any(f in now and canonical(now[f], _type(fields, f)) != canonical(v, _type(fields, f))
               for f, v in written.items())


def _read_superseded(odoo: OdooHook, old: Mapping[Rid, Bound]) -> dict[tuple[str, int], dict[str, Any]]:
    """The current values (of the fields we wrote) of the records about to be replaced, by (model, id);
    a record already gone from Odoo is absent."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    by_model: dict[str, list[Bound]] = {}
    for b in old.values():
        if b.odoo_model:
            by_model.setdefault(b.odoo_model, []).append(b)
    for old_model, bs in by_model.items():
        ofields = odoo.fields_get(old_model)
        names = sorted({f for b in bs for f in b.written if f in ofields} | {MIGRATION_KEY} & set(ofields))
        recs = odoo.read(old_model, [b.odoo_id for b in bs], names or ["id"], context={"active_test": False})
        for rec in recs:
            out[(old_model, rec["id"])] = {f: canonical(rec.get(f), _type(ofields, f)) for f in names}
    return out


def _source_hash(row: Row, *, partial: bool = False) -> dict[str, str]:
    """The crosswalk's ``source_hash`` of a row that landed: its own ('' when only partly landed: mapped again
    next time); nothing when the row carries none (the crosswalk keeps what it had)."""
    if "source_hash" not in row:
        return {}
    return {"source_hash": "" if partial else row["source_hash"]}


def _full(row: Row) -> dict[str, Any]:
    """All the values a row sets, the deferred ones included (what is hashed and compared)."""
    return {**row["values"], **(row.get("deferred") or {})}


def _hashed(row: Row) -> dict[str, Any]:
    """What a row's content hash is taken of: its values, a file whose sha1 is known (``digests``) as that
    (``sha1:<hex>``), not its base64 again (a file's bytes are not copied and hashed twice)."""
    full = _full(row)
    digests = row.get("digests")
    return {**full, **{f: d for f, d in digests.items() if f in full}} if digests else full


def _on_create_fields(row: Row) -> list[str]:
    """The fields a row sends only when it is created (``on_create``, and its ``after`` parent's)."""
    return [*(row.get("on_create") or {}), *([row["after"][0]] if "after" in row else [])]


def _creation_levels(rows: Sequence[Row], rid: Callable[[Row], Rid],
                     apart: Callable[[int], Hashable] | None = None) -> list[list[int]]:
    """The indexes of ``rows`` (to be created) by level, one ``create`` call each: a row whose ``after`` parent is
    among them comes one level after it; each level keeps the given order. One level (all of them) when no row names
    a parent among them. ``apart(i)``: a value one call may hold once (:meth:`OdooHook.create_apart`, e.g. an Odoo 17
    activity's record and user); a level is then split in rounds, the k-th holding each value's k-th row."""
    at = {rid(r): i for i, r in enumerate(rows)}
    parent = {i: at.get((rid(r)[0], r["after"][1])) for i, r in enumerate(rows) if "after" in r}
    if not any(p is not None for p in parent.values()):
        levels = [list(range(len(rows)))] if rows else []
    else:
        edges = [{"i": i, "p": parent.get(i)} for i in range(len(rows))]
        levels = [[e["i"] for e in level] for level in hierarchy_levels(edges, "i", "p")]
    if apart is None:
        return levels
    out: list[list[int]] = []
    for level in levels:
        seen: Counter[Hashable] = Counter()
        rounds: list[list[int]] = []
        for i in level:
            key = apart(i)
            k = seen[key]
            seen[key] += 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(i)
        out.extend(rounds)
    return out


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
    """What one batch does, collected as it goes, turned into state rows and a result at the end.

    Rows are identified by ``(scope, source id)``; every state row names its scope (the crosswalk's
    source object), so a batch mixing objects of one model is recorded in one statement.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.skipped: list[Rid] = []
        self.adopted: list[tuple[Row, int]] = []
        self.relink: list[tuple[Row, int]] = []
        self.created: dict[Rid, int] = {}
        self.created_rows: dict[Rid, Row] = {}
        self.on_create: dict[Rid, dict[str, Any]] = {}    # what a new row sent only because it was created
        self.updated: dict[int, dict[str, Any]] = {}
        self.prior: dict[int, dict[str, Any]] = {}
        self.prior_files: dict[int, dict[str, str]] = {}   # id -> {binary field: base64 before the run's write}
        self.failed_updates: set[int] = set()
        self.partial: set[int] = set()           # created, but a deferred write failed
        self.conflicts: list[tuple[Row, int, list[str], dict[str, Any]]] = []    # (row, id, fields, both values)
        self.dead_letters: list[DeadLetter] = []
        self.superseded: dict[Rid, tuple[str, int, dict[str, Any] | None]] = {}   # (old model, old id, values)
        self.stamps: list[dict[str, Any]] = []   # unchanged in Odoo: the source version now known to be there
        # per record archived: the activities Odoo deletes with the archive (manifest and audit rows)
        self.archived_away: dict[int, tuple[list[ManifestRow], list[AuditRow]]] = {}

    def tgt(self, row: Row) -> Target:
        return row.get("target") or self.target

    def dead(self, row: Row, field: str | None, reason: str) -> None:
        self.dead_letters.append({"source_object": self.tgt(row).source_object, "source_id": row["source_id"],
                                  "field": field, "reason": reason,
                                  "record": dict(row.get("record") or row.get("values") or {})})

    def conflict(self, row: Row, oid: int, edited: list[str], now: Mapping[str, Any],
                 fields: Mapping[str, Mapping[str, Any]], *, written: Mapping[str, Any],
                 sent: Mapping[str, Any]) -> None:
        """A record edited in Odoo since the tool wrote it: per edited field, what the tool wrote, what Odoo has
        and what the source sends now (the audit row's ``changes``; the conflicts report shows them)."""
        self.conflicts.append((row, oid, edited, {f: {"tool_wrote": canonical(written.get(f), _type(fields, f)),
                                                      "odoo": canonical(now.get(f), _type(fields, f)),
                                                      "source": canonical(sent.get(f), _type(fields, f))}
                                                  for f in edited}))

    def state_rows(self, fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        links: list[Link] = []
        audit: list[AuditRow] = []
        manifest: list[ManifestRow] = []
        adopted_ids = {oid for _, oid in self.adopted}
        for (scope, sid), oid in self.created.items():
            row = self.created_rows[(scope, sid)]
            full = row["values"] if oid in self.partial else _full(row)
            vals = canonical_vals({**full, **self.on_create.get((scope, sid), {})}, fields,
                                  digests=row.get("digests"))
            links.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "written": vals,
                          "content_hash": None if oid in self.partial else content_hash(_hashed(row)),
                          **_source_hash(row, partial=oid in self.partial)})
            audit.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "create",
                          "changes": vals})
            manifest.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "created",
                             "new_values": {**vals, MIGRATION_KEY: self.tgt(row).key(sid)}})
        for row, oid in self.relink:
            scope, sid = self.tgt(row).source_object, row["source_id"]
            if oid in self.failed_updates:
                continue
            written = canonical_vals(self.updated.get(oid, {}), fields)
            if oid in adopted_ids:
                written = canonical_vals(_full(row), fields, digests=row.get("digests"))
            links.append({"source_object": scope, "source_id": sid, "odoo_id": oid,
                          "content_hash": content_hash(_hashed(row)), "written": written, **_source_hash(row)})
            if oid in adopted_ids:
                audit.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "adopt",
                              "changes": written,
                              "message": "found in Odoo by its source key: it landed before an interrupted run"})
                manifest.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "created",
                                 "new_values": written})
            elif oid in self.updated:
                changes = canonical_vals(self.updated[oid], fields)
                audit.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "update",
                              "changes": {f: {"old": self.prior[oid].get(f), "new": v} for f, v in changes.items()}})
                manifest.append({"source_object": scope, "source_id": sid, "odoo_id": oid, "action": "updated",
                                 "prior_values": self.prior[oid], "new_values": changes})
        for (scope, sid), (old_model, old_id, values) in self.superseded.items():
            audit.append({"source_object": scope, "source_id": sid, "odoo_model": old_model, "odoo_id": old_id,
                          "action": "unlink", "changes": values,
                          "message": ("created again after older records of its group, to keep them in date order"
                                      if old_model == self.target.model else
                                      f"replaced by a {self.target.model} record: the source record now maps there")
                                     + ("" if values is not None else " (it was already gone from Odoo)")})
            if values is not None:
                manifest.append({"source_object": scope, "source_id": sid, "odoo_model": old_model,
                                 "odoo_id": old_id, "action": "deleted", "prior_values": values, "new_values": {}})
        for oid, (rows, notes) in self.archived_away.items():
            if oid not in self.failed_updates:           # archived: Odoo deleted its activities with it
                manifest += rows
                audit += notes
        for (scope, sid) in self.skipped:
            audit.append({"source_object": scope, "source_id": sid, "action": "skip"})
        for row, oid in self.landed_with_flags():
            for field, reason in row.get("warnings") or ():
                audit.append({"source_object": self.tgt(row).source_object, "source_id": row["source_id"],
                              "odoo_id": oid, "action": "flag", "changes": {"field": field},
                              "message": f"{field}: {reason}"})
        for row, oid, edited, now in self.conflicts:
            policy = self.tgt(row).conflict_policy
            audit.append({"source_object": self.tgt(row).source_object, "source_id": row["source_id"],
                          "odoo_id": oid, "action": "conflict", "changes": now,
                          "message": f"edited in Odoo since the last load: {', '.join(edited)} "
                                     f"({'overwritten: source wins' if policy == 'source_wins' else 'kept, not overwritten'})"})
        for d in self.dead_letters:
            audit.append({"source_object": d["source_object"], "source_id": d["source_id"], "action": "error",
                          "message": f"{d['field'] + ': ' if d.get('field') else ''}{d['reason']}"})
        return {"links": links, "audit": audit, "manifest": manifest, "dead_letters": self.dead_letters}

    def landed_with_flags(self) -> list[tuple[Row, int]]:
        """The rows this batch created or wrote that carry flags (a rerun that skips them says nothing new)."""
        out = [(row, self.created[r]) for r, row in self.created_rows.items() if row.get("warnings")]
        out += [(row, oid) for row, oid in self.relink
                if row.get("warnings") and oid not in self.failed_updates and oid in self.updated]
        return out

    def result(self, rows: Sequence[Row], *, calls: int, started: float) -> LoadResult:
        dead_ids = [d["source_id"] if d["source_object"] == self.target.source_object
                    else f"{d['source_object']}:{d['source_id']}" for d in self.dead_letters]
        return {
            "source_object": self.target.source_object, "model": self.target.model, "rows": len(rows),
            "created": len(self.created), "updated": len(self.updated),
            "skipped": len(set(self.skipped)), "adopted": len(self.adopted), "superseded": len(self.superseded),
            "conflicts": len(self.conflicts),
            "flagged": sum(len(row.get("warnings") or ()) for row, _ in self.landed_with_flags()),
            "dead_lettered": len(dead_ids), "dead_letter_ids": dead_ids,
            "odoo_calls": calls, "seconds": round(time.perf_counter() - started, 3),
        }
