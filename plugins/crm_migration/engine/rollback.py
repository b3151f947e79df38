"""Undo one run: unlink what it created, write back the prior values of what it changed, create
again what it removed (a task's activity it replaced by a message when the task was closed).

The run's rollback manifest is walked newest first, model by model, which is the reverse of the
dependency order the run loaded in (activities before deals before contacts before companies).

Before anything is touched, every record is read back and judged against the tool's own history of
it: the last value the tool wrote to each field, across every run of the pair (a later run's write, a
later run's rollback writing a prior value back, a record created again in place of one a run had
removed, the link step's and the deferred writes). Runs are rolled back newest first, so:

- a field that holds the tool's last write is not an edit, whichever run wrote it (only the fields
  the tool writes are judged: what Odoo keeps for itself, ``write_date``, sanitised phones, normalised
  emails, is not; values compare as the field-level diff compares them: html as sanitised, files by
  checksum);
- a field Odoo sets by itself when the tool writes another one (:data:`DERIVED`: a deal's close date
  when a later run archives it) is that later write's doing, not a person's;
- a later run still in force that changed one of the records blocks the rollback: it is named, to be
  rolled back first (rolling this one back would silently undo part of it);
- anything else is a person's edit: reported with the record and the field, and the rollback refused.

A refused rollback touches nothing; ``force`` rolls back anyway. A second rollback of the same run
finds nothing pending and does nothing.

Prior values are written back and then read back: what Odoo overwrote in that same write is written
again. A field Odoo resets when another is written (:data:`DERIVED`: a deal's stage date when its stage
is written back) gets the value the tool had written before the run, so the record is as it was. A field
Odoo computes by itself that the run changed without writing it (:data:`RECOMPUTED`: a deal's automated
probability) is written back from the value the run read before its write; a file the run replaced gets
the bytes it had before (kept by the run, ``prior_files``). What Odoo still does not hold after that is
named per record and field in the result's ``not_restored`` (and the rollback report), with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from crm_migration.engine.load import RECOMPUTED, activities_archived_away, leads_take_partner_values
from crm_migration.engine.values import to_write
from crm_migration.engine.verify import holds, odoo_value, read_names
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook
from crm_migration.hooks.state import MigrationStateHook

log_ = logging.getLogger(__name__)

#: Fields Odoo sets by itself when another field of the record is written (model -> field -> the
#: fields whose write resets it), seen on a real Odoo 17: ``crm.lead.write`` sets
#: ``date_last_stage_update`` to now on any stage write, and ``date_closed`` to now or empty on a
#: write of the stage, the probability or ``active`` (even when the value is in the same write). Such a
#: value after a write of the tool is not a person's edit; and when a rollback writes one of those back, it
#: writes the field too: the tool's last value from before the run.
DERIVED: dict[str, dict[str, frozenset[str]]] = {
    "crm.lead": {"date_last_stage_update": frozenset({"stage_id"}),
                 "date_closed": frozenset({"stage_id", "probability", "active"})},
    # a file's bytes written without a mimetype: Odoo guesses it again from the bytes (real Odoo 17)
    "ir.attachment": {"mimetype": frozenset({"datas", "raw"})},
}


class NotRestored(TypedDict):
    model: str
    odoo_id: int
    source_object: str
    source_id: str | None
    field: str
    wanted: Any                 # the value from before the run (canonical; a file as sha1:<hex>)
    why: str


class FieldEdit(TypedDict):
    by: str                     # "person": edited in Odoo; "run": a later run of the tool, still in force
    run_id: str | None          # the later run (by == "run")
    tool_wrote: Any             # the tool's last write of the field (canonical)
    odoo_now: Any               # what Odoo holds now (canonical)


class Refusal(TypedDict):
    model: str
    odoo_id: int
    source_object: str
    source_id: str | None
    fields: dict[str, FieldEdit]


class RollbackResult(TypedDict):
    run_id: str
    status: str          # rolled_back | nothing_to_do | refused
    unlinked: dict[str, int]
    restored: dict[str, int]
    recreated: dict[str, int]
    already_gone: dict[str, int]
    recreated_records: list[dict[str, Any]]   # each record created again: model, old and new id, key, why
    refused: list[Refusal]
    blocked_by: list[str]        # later runs still in force that changed records of this run
    forced: bool                 # refused records rolled back anyway (force)
    watermarks_back: list[dict[str, Any]]   # watermarks the run had moved, moved back (source_object, from, to)
    not_restored: list[NotRestored]         # fields Odoo did not take back (or a file whose bytes were not kept)
    odoo_calls: int
    seconds: float


class _Write(NamedTuple):
    """One write of the tool to a record: a run's values, or a rollback's prior values written back."""

    at: datetime
    seq: int
    phase: int                  # 0: the run wrote it; 1: its rollback wrote the prior values back
    run_id: str
    values: Mapping[str, Any]


def rollback_run(odoo: OdooHook, state: MigrationStateHook, run_id: str, *, force: bool = False,
                 log: Any = None) -> RollbackResult:
    """Roll back ``run_id``; see the module docstring."""
    log = log or log_
    started = time.perf_counter()
    calls_before = sum(odoo.calls.values())
    result: RollbackResult = {"run_id": run_id, "status": "nothing_to_do", "unlinked": {}, "restored": {},
                              "recreated": {}, "already_gone": {}, "recreated_records": [], "refused": [],
                              "blocked_by": [],
                              "forced": False, "odoo_calls": 0, "seconds": 0.0, "watermarks_back": [],
                              "not_restored": []}
    rows = state.iter_manifest(run_id)
    if not rows:
        log.info("rollback of %s: nothing pending (never wrote anything, or already rolled back)", run_id)
        _rewind(state, run_id, result, log)
        return _done(result, odoo, calls_before, started)

    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:                                   # newest first
        by_model.setdefault(row["odoo_model"], []).append(row)
    log.info("rollback of %s: %d records across %s", run_id, len(rows),
             ", ".join(f"{m} ({len(r)})" for m, r in by_model.items()))

    # 1. read everything back first and judge it against the tool's own history; refuse as a whole
    plans = {model: _judge(odoo, state, run_id, model, mrows, result) for model, mrows in by_model.items()}
    if result["refused"]:
        result["blocked_by"] = sorted({e["run_id"] for r in result["refused"] for e in r["fields"].values()
                                       if e["by"] == "run" and e["run_id"]})
        if not force:
            result["status"] = "refused"
            log.warning("%s", summary(result))
            for r in result["refused"][:20]:
                log.warning("  %s %s (%s %s): %s", r["model"], r["odoo_id"], r["source_object"], r["source_id"],
                            "; ".join(f"{f} {_by(e)}" for f, e in r["fields"].items()))
            return _done(result, odoo, calls_before, started)
        result["forced"] = True
        log.warning("rollback of %s forced over %d records edited after the run (their edits are lost)", run_id,
                    len(result["refused"]))

    # 2. undo, model by model, newest first
    archived = {(r["odoo_model"], r["odoo_id"]) for r in rows
                if r["action"] != "deleted" and (r["new_values"] or {}).get("active") is False}
    for model, plan in plans.items():
        _undo(odoo, state, run_id, model, by_model[model], plan, result, log, archived=archived)
    result["status"] = "rolled_back"
    _rewind(state, run_id, result, log)
    return _done(result, odoo, calls_before, started)


def _rewind(state: MigrationStateHook, run_id: str, result: RollbackResult, log: Any) -> None:
    """Move the watermarks the run moved back to where they were before it: what it read is no longer in Odoo
    as it left it, so the next delta reads that span again (a watermark a later run moved is left alone: that
    run is rolled back first, newest first)."""
    back = state.rewind_watermarks(run_id)
    result["watermarks_back"] = [{"source_object": b["source_object"], "from": b["from"], "to": b["to"]}
                                 for b in back]
    for b in back:
        log.info("%s: watermark moved back from %s to %s (the next delta reads that span again)", b["source_object"],
                 b["from"].isoformat(), b["to"].isoformat() if b["to"] else "none (no full run landed it)")


class _Plan(NamedTuple):
    fields: dict[str, Any]
    current: dict[int, dict[str, Any]]      # current id -> record read back
    now_id: dict[int, int]                  # manifest id -> the id of the record standing for it now
    history: dict[int, list[dict[str, Any]]]   # current id -> manifest rows of other runs on it


def _judge(odoo: OdooHook, state: MigrationStateHook, run_id: str, model: str, mrows: Sequence[dict[str, Any]],
           result: RollbackResult) -> _Plan:
    """Read the run's records of ``model`` back and add to ``result["refused"]`` what blocks their rollback."""
    fields = odoo.fields_get(model)
    history = state.record_history(mrows[0]["pair"], model, [r["odoo_id"] for r in mrows], other_than=run_id)
    moved = {h["odoo_id"]: h["recreated_id"] for h in history if h["recreated_id"] and h["rolled_back_at"]}
    now_id = {r["odoo_id"]: _follow(moved, r["odoo_id"]) for r in mrows}
    by_id: dict[int, list[dict[str, Any]]] = {}
    for h in history:
        by_id.setdefault(_follow(moved, h["odoo_id"]), []).append(h)
    names = {f for r in [*mrows, *history] for f in (r["new_values"] or {})}
    rolled_back = {h["run_id"] for h in history if h["rolled_back_at"] is not None}
    live = [now_id[r["odoo_id"]] for r in mrows if r["action"] != "deleted"]
    recs = odoo.read(model, live, read_names(model, names, fields), context={"active_test": False}) if live else []
    current = {rec["id"]: rec for rec in recs}
    for r in mrows:
        oid = now_id[r["odoo_id"]]
        later = [h for h in by_id.get(oid, ()) if h["seq"] > r["seq"] and h["rolled_back_at"] is None]
        edits: dict[str, FieldEdit] = {}
        for h in later:                                # a later run, still in force: roll it back first
            vals = h["new_values"] or {}
            if h["action"] == "deleted":
                edits["(record)"] = {"by": "run", "run_id": h["run_id"], "tool_wrote": "removed it",
                                     "odoo_now": None}
            for f, v in vals.items():
                now = current.get(oid)
                edits.setdefault(f, {"by": "run", "run_id": h["run_id"], "tool_wrote": v,
                                     "odoo_now": odoo_value(model, f, now, fields) if now else None})
        now = current.get(oid)
        if now is not None and r["action"] != "deleted":
            writes = sorted([*_writes(by_id.get(oid, ())), *_writes([r])])
            for f in r["new_values"] or {}:
                if f in edits or f not in fields:
                    continue
                last = _last(writes, {f})
                if last is None or holds(model, f, last.values[f], now, fields):
                    continue
                triggers = DERIVED.get(model, {}).get(f)
                if triggers and (trigger := _last(writes, triggers)) is not None and trigger > last:
                    # Odoo set it on a later write of the tool: that run's doing (or, rolled back, nothing's: a file
                    # whose bytes it could not put back keeps the mimetype Odoo guessed from them)
                    if trigger.phase == 0 and trigger.run_id != run_id and trigger.run_id not in rolled_back:
                        edits[f] = {"by": "run", "run_id": trigger.run_id, "tool_wrote": last.values[f],
                                    "odoo_now": odoo_value(model, f, now, fields)}
                    continue
                edits[f] = {"by": "person", "run_id": None, "tool_wrote": last.values[f],
                            "odoo_now": odoo_value(model, f, now, fields)}
        if edits:
            result["refused"].append({"model": model, "odoo_id": oid, "source_object": r["source_object"],
                                      "source_id": r["source_id"], "fields": edits})
    return _Plan(fields, current, now_id, by_id)


def _undo(odoo: OdooHook, state: MigrationStateHook, run_id: str, model: str, mrows: Sequence[dict[str, Any]],
          plan: _Plan, result: RollbackResult, log: Any, *, archived: Collection[tuple[str, int]] = ()) -> None:
    fields, current, now_id = plan.fields, plan.current, plan.now_id
    gone = [r for r in mrows if now_id[r["odoo_id"]] not in current and r["action"] != "deleted"]
    created = [r for r in mrows if r["action"] == "created" and now_id[r["odoo_id"]] in current]
    changed = [r for r in mrows if r["action"] in ("updated", "archived") and now_id[r["odoo_id"]] in current]
    removed = [r for r in mrows if r["action"] == "deleted"]   # the run replaced them: create them again

    restores: dict[int, dict[str, Any]] = {}
    kept = state.prior_files(run_id, model, [r["odoo_id"] for r in changed if _files(r["prior_values"], fields)])
    row_of: dict[int, dict[str, Any]] = {}
    for r in changed:
        oid = now_id[r["odoo_id"]]
        row_of[oid] = r
        restores[oid] = _writable(r["prior_values"], fields)
        for f, checksum in _files(r["prior_values"], fields).items():   # a file the run replaced: its bytes back
            file = kept.get((r["odoo_id"], f))
            if file is not None and file["checksum"] == checksum:
                restores[oid][f] = file["base64"]
            else:
                result["not_restored"].append(_not_restored(model, oid, r, f, checksum, "the file's bytes from "
                                                            "before the run were not kept: left as the run wrote it"))
        # a field Odoo resets when a restored field is written takes its value from before the run again
        before = sorted(w for w in _writes(plan.history.get(oid, ())) if w.seq < r["seq"])
        for f, _ in _derived_of(model, restores[oid]):
            if f not in restores[oid] and (last := _last(before, {f})) is not None:
                restores[oid][f] = last.values[f]
    if restores:
        # archived again by the write back (the run had unarchived them): Odoo 17 deletes their activities with it
        closing = [i for i, v in restores.items() if v.get("active") is False]
        away = activities_archived_away(odoo, state, mrows[0]["pair"], model, closing) \
            if closing and odoo.archive_deletes_activities(fields) else {}
        if model == "res.partner":             # loader trap 3: deals first, so Odoo logs nothing on them
            leads_take_partner_values(odoo, restores)
        odoo.write_batch(model, {i: _to_write(v, fields) for i, v in restores.items()})
        for oid, missed in _settle(odoo, model, restores, fields, log).items():
            result["not_restored"] += [_not_restored(model, oid, row_of[oid], f, (row_of[oid]["prior_values"] or {})
                                                     .get(f, v), _why_not(model, f)) for f, v in missed.items()]
        if away:
            _recreate_archived_away(odoo, state, run_id, mrows[0]["pair"], model, away, result, log)
    if created:
        odoo.unlink(model, [now_id[r["odoo_id"]] for r in created])
    recreated: dict[int, dict[str, Any]] = {}
    if removed:
        vals = [_writable(r["prior_values"], fields) for r in removed]
        keys = [(r["prior_values"] or {}).get(MIGRATION_KEY) or "" for r in removed]
        new_ids = odoo.create_batch(model, [_to_write(v, fields) for v in vals], keys=keys)
        _settle(odoo, model, dict(zip(new_ids, vals, strict=True)), fields, log)
        why = _why_removed(odoo, model, removed, archived)
        for r, new_id in zip(removed, new_ids, strict=True):
            recreated[r["odoo_id"]] = {"odoo_id": new_id, "source_object": r["source_object"],
                                       "source_id": r["source_id"], "written": r["prior_values"] or {}}
            result["recreated_records"].append({
                "model": model, "old_id": r["odoo_id"], "odoo_id": new_id, "source_object": r["source_object"],
                "source_id": r["source_id"], "key": (r["prior_values"] or {}).get(MIGRATION_KEY) or "",
                "why": why[r["odoo_id"]]})
    audit = [{"source_object": r["source_object"], "source_id": r["source_id"], "odoo_id": now_id[r["odoo_id"]],
              "action": "unlink", "message": f"rollback of {run_id}: created by the run, removed"}
             for r in created]
    audit += [{"source_object": r["source_object"], "source_id": r["source_id"], "odoo_id": now_id[r["odoo_id"]],
               "action": "restore", "changes": restores[now_id[r["odoo_id"]]],
               "message": f"rollback of {run_id}: prior values written back"} for r in changed]
    audit += [{"source_object": r["source_object"], "source_id": r["source_id"],
               "odoo_id": recreated[r["odoo_id"]]["odoo_id"], "action": "restore", "changes": r["prior_values"],
               "message": f"rollback of {run_id}: {why[r['odoo_id']]} ({model} {r['odoo_id']}); created again"}
              for r in removed]
    state.record_rollback(run_id=run_id, pair=mrows[0]["pair"], odoo_model=model,
                          unlinked=[now_id[r["odoo_id"]] for r in created],
                          gone=[now_id[r["odoo_id"]] for r in gone],
                          restored={now_id[r["odoo_id"]]: {f: v for f, v in (r["prior_values"] or {}).items()
                                                           if f not in RECOMPUTED.get(model, ())} for r in changed},
                          recreated=recreated, audit=audit, done=[r["odoo_id"] for r in mrows])
    result["unlinked"][model] = len(created)
    result["restored"][model] = len(changed)
    result["recreated"][model] = len(removed)
    result["already_gone"][model] = len(gone)
    log.info("rollback of %s: %s: %d unlinked, %d restored, %d created again, %d already gone", run_id, model,
             len(created), len(changed), len(removed), len(gone))


def _recreate_archived_away(odoo: OdooHook, state: MigrationStateHook, run_id: str, pair: str, model: str,
                            away: Mapping[int, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
                            result: RollbackResult, log: Any) -> None:
    """Create again the migrated activities Odoo 17 deleted when the rollback archived their record again (the run
    had unarchived it), as they were, with their keys and without mail; bind them in the crosswalk and note them in
    the run's manifest (already rolled back, ``recreated_id``: the rollback of the run that created one finds it)."""
    created = {r["odoo_id"] for r in state.iter_manifest(run_id, pending_only=False)
               if r["odoo_model"] == "mail.activity" and r["action"] == "created"}
    rows = [r for rows, _ in away.values() for r in rows if r["odoo_id"] not in created]   # the run's own: removed
    if not rows:
        return
    afields = odoo.fields_get("mail.activity")
    state.record_batch(run_id=run_id, pair=pair, source_object=rows[0]["source_object"], odoo_model="mail.activity",
                       manifest=rows)
    vals = [_writable(r["prior_values"], afields) for r in rows]
    new_ids = odoo.create_batch("mail.activity", [_to_write(v, afields) for v in vals],
                                keys=[(r["prior_values"] or {}).get(MIGRATION_KEY) or "" for r in rows])
    why = f"Odoo deleted it when the rollback archived its record {model} again"
    recreated = {}
    for r, new_id in zip(rows, new_ids, strict=True):
        recreated[r["odoo_id"]] = {"odoo_id": new_id, "source_object": r["source_object"],
                                   "source_id": r["source_id"], "written": r["prior_values"] or {}}
        result["recreated_records"].append({"model": "mail.activity", "old_id": r["odoo_id"], "odoo_id": new_id,
                                            "source_object": r["source_object"], "source_id": r["source_id"],
                                            "key": (r["prior_values"] or {}).get(MIGRATION_KEY) or "", "why": why})
    state.record_rollback(run_id=run_id, pair=pair, odoo_model="mail.activity", recreated=recreated,
                          audit=[{"source_object": r["source_object"], "source_id": r["source_id"],
                                  "odoo_id": recreated[r["odoo_id"]]["odoo_id"], "action": "restore",
                                  "changes": r["prior_values"], "message": f"rollback of {run_id}: {why} "
                                  f"(mail.activity {r['odoo_id']}); created again"} for r in rows])
    result["recreated"]["mail.activity"] = result["recreated"].get("mail.activity", 0) + len(rows)
    log.info("rollback of %s: %d activities Odoo deleted when %s records were archived again: created again",
             run_id, len(rows), model)


def _why_removed(odoo: OdooHook, model: str, removed: Sequence[Mapping[str, Any]],
                 archived: Collection[tuple[str, int]]) -> dict[int, str]:
    """Why each record the run removed was gone: an activity whose record the run archived was deleted by Odoo
    with the archive (Odoo 17); anything else the run replaced (a task's activity by its message once done)."""
    out = {r["odoo_id"]: "the run had replaced it" for r in removed}
    acts = [r for r in removed if model == "mail.activity" and (r["prior_values"] or {}).get("res_model_id")]
    if not acts or not archived:
        return out
    ids = sorted({int(r["prior_values"]["res_model_id"]) for r in acts})
    names = {m["id"]: m["model"] for m in odoo.read("ir.model", ids, ["model"])}
    for r in acts:
        parent = (names.get(int(r["prior_values"]["res_model_id"])), int(r["prior_values"].get("res_id") or 0))
        if parent in archived:
            out[r["odoo_id"]] = f"Odoo deleted it when the run archived its record {parent[0]} {parent[1]}"
    return out


def _files(values: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, str]:
    """The files among prior values: ``{field: "sha1:<hex>"}`` (the manifest keeps a file's checksum)."""
    return {f: v for f, v in (values or {}).items()
            if (fields.get(f) or {}).get("type") == "binary" and isinstance(v, str) and v.startswith("sha1:")}


def _not_restored(model: str, oid: int, row: Mapping[str, Any], field: str, wanted: Any, why: str) -> NotRestored:
    return {"model": model, "odoo_id": oid, "source_object": row["source_object"], "source_id": row["source_id"],
            "field": field, "wanted": wanted, "why": why}


def _why_not(model: str, field: str) -> str:
    if field in RECOMPUTED.get(model, ()):
        return "computed by Odoo: it recomputed the value over the one written back"
    return "Odoo did not keep the value written back (twice)"


def _follow(moved: Mapping[int, int], oid: int) -> int:
    """The id of the record standing for ``oid`` now (created again by a rollback, maybe more than once)."""
    seen = {oid}
    while oid in moved and moved[oid] not in seen:
        oid = moved[oid]
        seen.add(oid)
    return oid


def _writes(rows: Iterable[Mapping[str, Any]]) -> list[_Write]:
    """The tool's writes recorded by manifest rows: each run's values, and each rollback's prior values (but what
    Odoo computes by itself, and a file's fingerprint unless the run kept its bytes: without them a rollback leaves
    the file as the run left it)."""
    out = []
    for h in rows:
        if h["action"] != "deleted":
            out.append(_Write(h["recorded_at"], h["seq"], 0, h["run_id"], h["new_values"] or {}))
        if h["rolled_back_at"] is not None and (h["action"] in ("updated", "archived") or h.get("recreated_id")):
            own = RECOMPUTED.get(h.get("odoo_model") or "", ())
            prior = {f: v for f, v in (h["prior_values"] or {}).items() if f not in own
                     and not (isinstance(v, str) and v.startswith("sha1:") and not h.get("files_kept"))}
            out.append(_Write(h["rolled_back_at"], h["seq"], 1, h["run_id"], prior))
    return out


def _last(writes: Sequence[_Write], names: Collection[str]) -> _Write | None:
    """The newest of ``writes`` (sorted) that wrote one of ``names``."""
    return next((w for w in reversed(writes) if any(n in w.values for n in names)), None)


def _derived_of(model: str, names: Collection[str]) -> list[tuple[str, frozenset[str]]]:
    """The fields Odoo sets by itself when one of ``names`` is written, with their triggers."""
    return [(f, t) for f, t in DERIVED.get(model, {}).items() if t & set(names)]


def _writable(values: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Prior values that can be written back: fields of the model, not the key, not a file's fingerprint."""
    out = {}
    for f, v in (values or {}).items():
        if f not in fields or f == MIGRATION_KEY:
            continue
        if (fields[f] or {}).get("type") == "binary" and isinstance(v, str) and v.startswith("sha1:"):
            continue                                   # the manifest keeps a file's checksum, not its bytes
        out[f] = v
    return out


def _to_write(values: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {f: to_write(v, (fields.get(f) or {}).get("type")) for f, v in values.items()}


def _settle(odoo: OdooHook, model: str, wanted: Mapping[int, Mapping[str, Any]], fields: Mapping[str, Any],
            log: Any) -> dict[int, dict[str, Any]]:
    """Read ``wanted`` back; write again the fields Odoo overwrote in the same write (a deal's stage
    resets its stage date and close date), then say (and return) what Odoo still does not hold."""
    def differing() -> dict[int, dict[str, Any]]:
        names = read_names(model, {f for v in wanted.values() for f in v}, fields)
        back = {r["id"]: r for r in odoo.read(model, list(wanted), names, context={"active_test": False})}
        return {i: d for i, vals in wanted.items() if i in back
                and (d := {f: v for f, v in vals.items() if not holds(model, f, v, back[i], fields)})}

    if not wanted or not (again := differing()):
        return {}
    odoo.write_batch(model, {i: _to_write(v, fields) for i, v in again.items()})
    missed = differing()
    for i, d in missed.items():
        log.warning("rollback: Odoo did not take back %s %s: %s", model, i, ", ".join(sorted(d)))
    return missed


def _by(edit: Mapping[str, Any]) -> str:
    return f"(run {edit['run_id']}, still in force)" if edit["by"] == "run" else "(edited in Odoo)"


def _done(result: RollbackResult, odoo: OdooHook, calls_before: int, started: float) -> RollbackResult:
    result["odoo_calls"] = sum(odoo.calls.values()) - calls_before
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def summary(result: Mapping[str, Any]) -> str:
    """One readable paragraph for logs and reports."""
    run = result["run_id"]
    refused = result["refused"]
    if result["status"] == "refused":
        people = [r for r in refused if any(e["by"] == "person" for e in r["fields"].values())]
        parts = []
        for later in result.get("blocked_by") or ():
            n = sum(1 for r in refused if any(e["run_id"] == later for e in r["fields"].values()))
            parts.append(f"run {later} is still in force and changed {n} of its records after it: "
                         f"roll back {later} first (newest first)")
        if people:
            r = people[0]
            first = next(f for f, e in r["fields"].items() if e["by"] == "person")
            parts.append(f"{len(people)} records were edited in Odoo after the tool last wrote them (first: "
                         f"{r['model']} {r['odoo_id']}, {r['source_object']} {r['source_id']}, field {first!r})")
        return (f"Rollback of {run} refused, nothing was changed: {'; '.join(parts)}. "
                "Trigger it again with force to roll back anyway (those edits are lost).")
    if result["status"] == "nothing_to_do":
        return f"Rollback of {run}: nothing pending."
    parts = [f"{m}: {result['unlinked'].get(m, 0)} removed, {result['restored'].get(m, 0)} restored"
             + (f", {result['recreated'][m]} created again" if result.get("recreated", {}).get(m) else "")
             for m in result["unlinked"]]
    forced = f" Forced over {len(refused)} records edited after the run." if result.get("forced") else ""
    missed = result.get("not_restored") or []
    kept = (f" {len(missed)} field(s) could not be put back as they were (first: {missed[0]['model']} "
            f"{missed[0]['odoo_id']}, field {missed[0]['field']!r}: {missed[0]['why']})." if missed else "")
    return f"Rollback of {run} done. " + "; ".join(parts) + "." + forced + kept
