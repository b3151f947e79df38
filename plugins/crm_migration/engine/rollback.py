"""Undo one run: unlink what it created, write back the prior values of what it changed, create
again what it removed (a task's activity it replaced by a message when the task was closed).

The run's rollback manifest is walked newest first, model by model, which is the reverse of the
dependency order the run loaded in (activities before deals before contacts before companies).
Before anything is touched, every record is read back and compared with what the run wrote: a
record edited in Odoo since then is reported and the rollback refused as a whole, unless forced.
A second rollback of the same run finds nothing pending and does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TypedDict

from crm_migration.engine.values import canonical, to_write
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook
from crm_migration.hooks.state import MigrationStateHook

log_ = logging.getLogger(__name__)


class Refusal(TypedDict):
    model: str
    odoo_id: int
    source_object: str
    source_id: str | None
    fields: dict[str, dict[str, Any]]   # field -> {"run wrote": v, "odoo now": v}


class RollbackResult(TypedDict):
    run_id: str
    status: str          # rolled_back | nothing_to_do | refused
    unlinked: dict[str, int]
    restored: dict[str, int]
    already_gone: dict[str, int]
    refused: list[Refusal]
    odoo_calls: int
    seconds: float


def rollback_run(odoo: OdooHook, state: MigrationStateHook, run_id: str, *, force: bool = False,
                 log: Any = None) -> RollbackResult:
    """Roll back ``run_id``; see the module docstring."""
    log = log or log_
    started = time.perf_counter()
    calls_before = sum(odoo.calls.values())
    result: RollbackResult = {"run_id": run_id, "status": "nothing_to_do", "unlinked": {}, "restored": {},
                              "already_gone": {}, "refused": [], "odoo_calls": 0, "seconds": 0.0}
    rows = state.iter_manifest(run_id)
    if not rows:
        log.info("rollback of %s: nothing pending (never wrote anything, or already rolled back)", run_id)
        return _done(result, odoo, calls_before, started)

    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:                                   # newest first
        by_model.setdefault(row["odoo_model"], []).append(row)
    log.info("rollback of %s: %d records across %s", run_id, len(rows),
             ", ".join(f"{m} ({len(r)})" for m, r in by_model.items()))

    # 1. read everything back first; refuse as a whole if anything was edited since the run
    current: dict[str, dict[int, dict[str, Any]]] = {}
    fields_of: dict[str, dict[str, Any]] = {}
    for model, mrows in by_model.items():
        fields_of[model] = odoo.fields_get(model)
        names = sorted({f for r in mrows for f in (r["new_values"] or {}) if f in fields_of[model]})
        recs = odoo.read(model, [r["odoo_id"] for r in mrows], names or ["id"], context={"active_test": False})
        current[model] = {rec["id"]: rec for rec in recs}
        for r in mrows:
            now = current[model].get(r["odoo_id"])
            if now is None or r["action"] == "deleted":
                continue
            diff = {}
            for f, wrote in (r["new_values"] or {}).items():
                ftype = (fields_of[model].get(f) or {}).get("type")
                if f in now and canonical(now[f], ftype) != canonical(wrote, ftype):
                    diff[f] = {"run wrote": wrote, "odoo now": canonical(now[f], ftype)}
            if diff:
                result["refused"].append({"model": model, "odoo_id": r["odoo_id"], "source_object": r["source_object"],
                                          "source_id": r["source_id"], "fields": diff})
    if result["refused"] and not force:
        result["status"] = "refused"
        log.warning("rollback of %s refused: %d records were edited in Odoo after the run (first: %s %s, "
                    "fields %s); rerun with force=True to roll back anyway", run_id, len(result["refused"]),
                    result["refused"][0]["model"], result["refused"][0]["odoo_id"],
                    ", ".join(result["refused"][0]["fields"]))
        return _done(result, odoo, calls_before, started)

    # 2. undo, model by model, newest first
    for model, mrows in by_model.items():
        fields = fields_of[model]
        gone = [r["odoo_id"] for r in mrows if r["odoo_id"] not in current[model] and r["action"] != "deleted"]
        created = [r for r in mrows if r["action"] == "created" and r["odoo_id"] in current[model]]
        changed = [r for r in mrows if r["action"] in ("updated", "archived") and r["odoo_id"] in current[model]]
        removed = [r for r in mrows if r["action"] == "deleted"]   # the run replaced them: create them again
        restores: dict[int, dict[str, Any]] = {}
        for r in changed:
            prior = {f: v for f, v in (r["prior_values"] or {}).items() if f in fields and f != MIGRATION_KEY}
            restores[r["odoo_id"]] = {f: to_write(v, (fields.get(f) or {}).get("type")) for f, v in prior.items()}
        if restores:
            odoo.write_batch(model, restores)
        if created:
            odoo.unlink(model, [r["odoo_id"] for r in created])
        recreated: dict[int, dict[str, Any]] = {}
        if removed:
            vals = [{f: to_write(v, (fields.get(f) or {}).get("type")) for f, v in (r["prior_values"] or {}).items()
                     if f in fields and f != MIGRATION_KEY} for r in removed]
            keys = [(r["prior_values"] or {}).get(MIGRATION_KEY) or "" for r in removed]
            new_ids = odoo.create_batch(model, vals, keys=keys)
            for r, new_id in zip(removed, new_ids, strict=True):
                recreated[r["odoo_id"]] = {"odoo_id": new_id, "source_object": r["source_object"],
                                           "source_id": r["source_id"], "written": r["prior_values"] or {}}
        audit = [{"source_object": r["source_object"], "source_id": r["source_id"], "odoo_id": r["odoo_id"],
                  "action": "unlink", "message": f"rollback of {run_id}: created by the run, removed"}
                 for r in created]
        audit += [{"source_object": r["source_object"], "source_id": r["source_id"], "odoo_id": r["odoo_id"],
                   "action": "restore", "changes": r["prior_values"],
                   "message": f"rollback of {run_id}: prior values written back"} for r in changed]
        audit += [{"source_object": r["source_object"], "source_id": r["source_id"],
                   "odoo_id": recreated[r["odoo_id"]]["odoo_id"], "action": "restore", "changes": r["prior_values"],
                   "message": f"rollback of {run_id}: the run had replaced {model} {r['odoo_id']}; created again"}
                  for r in removed]
        state.record_rollback(run_id=run_id, pair=mrows[0]["pair"], odoo_model=model,
                              unlinked=[r["odoo_id"] for r in created], gone=gone,
                              restored={r["odoo_id"]: r["prior_values"] or {} for r in changed},
                              recreated=recreated, audit=audit)
        result["unlinked"][model] = len(created)
        result["restored"][model] = len(changed) + len(removed)
        result["already_gone"][model] = len(gone)
        log.info("rollback of %s: %s: %d unlinked, %d restored, %d already gone", run_id, model, len(created),
                 len(changed), len(gone))
    result["status"] = "rolled_back"
    return _done(result, odoo, calls_before, started)


def _done(result: RollbackResult, odoo: OdooHook, calls_before: int, started: float) -> RollbackResult:
    result["odoo_calls"] = sum(odoo.calls.values()) - calls_before
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def summary(result: Mapping[str, Any]) -> str:
    """One readable paragraph for logs and reports."""
    if result["status"] == "refused":
        return (f"Rollback of {result['run_id']} refused: {len(result['refused'])} records were edited in Odoo "
                "after the run. Nothing was changed.")
    if result["status"] == "nothing_to_do":
        return f"Rollback of {result['run_id']}: nothing pending."
    parts = [f"{m}: {result['unlinked'].get(m, 0)} removed, {result['restored'].get(m, 0)} restored"
             for m in result["unlinked"]]
    return f"Rollback of {result['run_id']} done. " + "; ".join(parts)
