"""The callables behind every task of the four DAGs: thin, each builds its hooks and calls the engine.

They run inside Airflow (``context`` comes from the task); all the work is in ``crm_migration.engine``.
Return values are small descriptors (counts, batch numbers, report paths): records never travel in XCom.
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from typing import Any

from crm_migration.engine.extract import BatchRef
from crm_migration.engine.load import LoadResult
from crm_migration.engine.pipeline import Pipeline
from crm_migration.errors import ConfigurationError
from crm_migration.hooks.odoo import OdooHook
from crm_migration.hooks.state import MigrationStateHook
from crm_migration.mapping.spec import load_pair

log = logging.getLogger("crm_migration.tasks")

#: source name -> (hook class, source adapter class, Airflow pool of its API)
SOURCES: dict[str, tuple[str, str, str]] = {
    "apto": ("crm_migration.hooks.apto:AptoHook", "crm_migration.streams.apto_source:AptoSource", "apto_api"),
    "link_app": ("crm_migration.hooks.link_app:LinkAppHook", "crm_migration.streams.link_app_source:LinkAppSource",
                 "link_app_api"),
}


def source_pool(source: str) -> str:
    try:
        return SOURCES[source][2]
    except KeyError:
        raise ConfigurationError(f"no source adapter for {source!r} (known: {', '.join(SOURCES)})") from None


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def pipeline(pair: str, logger: Any = None, *, run_id: str | None = None) -> Pipeline:
    """The pair's :class:`Pipeline` over hooks built from the contract's connections.

    With ``run_id``, the source facts ``start_run`` recorded for the run are reused (no metadata calls).
    """
    spec = load_pair(pair)
    hook_path, source_path, _ = SOURCES.get(spec.source) or (None, None, None)
    if hook_path is None:
        raise ConfigurationError(f"{pair}: no source adapter for {spec.source!r}")
    source = _load(source_path)(_load(hook_path)())
    state = MigrationStateHook()
    meta = None
    if run_id:
        run = state.get_run(run_id) or {}
        meta = (run.get("stats") or {}).get("source_meta")
    return Pipeline(spec, source, OdooHook(), state, log=logger or log, meta=meta)


def _params(context: dict[str, Any]) -> dict[str, Any]:
    return dict(context.get("params") or {})


def _selected(context: dict[str, Any], name: str) -> bool:
    wanted = _params(context).get("objects") or "all"
    if wanted == "all" or wanted == ["all"]:
        return True
    names = [w.strip() for w in (wanted.split(",") if isinstance(wanted, str) else wanted)]
    return name in names


def _sync_now(context: dict[str, Any]) -> bool:
    """A delta run is a *sync now* (from the watermarks to now) when its ``sync_now`` Param says so, or when it
    has no data interval (triggered by hand without a logical date: Airflow 3's default in the UI and CLI)."""
    wanted = _params(context).get("sync_now")
    if wanted is not None:
        return bool(wanted)
    return context.get("data_interval_start") is None or context.get("data_interval_end") is None


# ---- tasks -----------------------------------------------------------------------------------------------


def start_run(*, pair: str, kind: str, **context: Any) -> dict[str, Any]:
    """Create/upgrade the state schema and register the run (idempotent).

    A migrate run first checks what it needs (:func:`crm_migration.engine.approvals.check_migrate_run`): a
    confirmed mapping, and for a full run an approved sample diff of it (or ``approved_by``); without them it
    fails here, before anything moves, saying which step gives what is missing. A rollback run returns what the
    approval step shows: the run's audit report and what its rollback undoes."""
    from crm_migration.engine import approvals
    from crm_migration.errors import ApprovalRequired
    from crm_migration.mapping.changes import summary
    from crm_migration.mapping.spec import read_pair_file

    state = MigrationStateHook()
    state.migrate()
    params = _params(context)
    run_id = context["run_id"]
    mapping = read_pair_file(pair) if kind != "rollback" else None
    row = state.start_run(run_id, pair=pair, dag_id=context["dag"].dag_id, kind=kind,
                          mode=params.get("mode"), params={k: v for k, v in params.items() if k != "approved_by"},
                          mapping_sha256=mapping.sha256 if mapping else None)
    out: dict[str, Any] = {"run_id": row["run_id"], "kind": kind}
    if kind == "migrate" and mapping is not None:
        try:
            gate = approvals.check_migrate_run(state, pair=pair, mapping=mapping, run_id=run_id,
                                               mode=params.get("mode") or "sample",
                                               approved_by=(params.get("approved_by") or "").strip() or None, log=log)
        except ApprovalRequired as exc:
            from airflow.sdk.exceptions import AirflowFailException

            state.finish_run(run_id, status="refused", stats={"refused": str(exc)})
            state.close()
            raise AirflowFailException(f"{pair}: {exc}") from None      # not retried: a retry finds the same
        state.update_run_stats(run_id, gate)
        out.update(mapping_sha256=gate["mapping_sha256"], sample_report=gate.get("sample_report"),
                   sample_run=gate.get("sample_run"))
        if gate.get("sample_run"):
            out["sample_note"] = (f"Approved by {gate['sample_approved_by']} in sample run {gate['sample_run']}; the "
                                  f"mapping was confirmed by {gate['mapping_confirmed_by']}.")
        if changes := gate.get("mapping_changes"):
            out["changes_note"] = (f"Mapping changed since run {changes['since_run']}: "
                                   f"{changes.get('note') or summary(changes['rows'])} (this run's audit report "
                                   "lists them).")
    if kind == "rollback":
        target = (params.get("run_id") or "").strip()
        done = state.get_run(target) or {}
        counts = state.manifest_counts(target) if target else {}
        out["target_report"] = (done.get("stats") or {}).get("audit_report")
        out["undo"] = (f"It deletes the {counts.get('created', 0):,} record(s) the run created, writes back the prior "
                       f"values of the {counts.get('updated', 0) + counts.get('archived', 0):,} it changed or "
                       f"archived and creates again the {counts.get('deleted', 0):,} it removed.")
    else:
        meta = pipeline(pair).source_meta()
        state.update_run_stats(run_id, {"source_meta": meta})
        log.info("source: namespace %r, custom fields of %s", meta["namespace"], ", ".join(meta["describes"]) or "-")
    state.close()
    log.info("%s run %s registered (%s)", kind, run_id, ", ".join(f"{k}={v}" for k, v in params.items()))
    return out


def prepare_schema(*, pair: str, **context: Any) -> dict[str, Any]:
    """Preflight and schema: every source owner resolves to an Odoo user (or the fallback user, which
    must exist), then the fields, keys and lost reasons the load needs are created."""
    pipe = pipeline(pair, run_id=context["run_id"])
    try:
        owners = pipe.owners
    except ValueError as exc:
        raise ConfigurationError(f"owners cannot be resolved: {exc}; set the odoo connection's fallback_user "
                                 "(extra) or settings.fallback_user in the pair file to an existing login") from None
    fallback = sum(1 for o in owners.values() if not o["matched"])
    log.info("owners: %d source users, %d matched by email, %d go to the fallback user", len(owners),
             len(owners) - fallback, fallback)
    if _params(context).get("dry_run"):
        log.info("dry run: no schema change in Odoo")
        return {"fields_created": [], "dry_run": True}
    return dict(pipe.prepare_schema(run_id=context["run_id"]))


def extract(*, pair: str, name: str, delta: bool = False, **context: Any) -> list[BatchRef]:
    """Stage the object's records of the run's read window in batches; return the batch descriptors.

    The window is fixed by the first attempt (:func:`crm_migration.engine.windows.open_window`): a full run
    reads everything up to now, a delta from the object's watermark (never later than its
    ``data_interval_start``) to ``data_interval_end``, a sync now from the watermark to now.
    """
    from crm_migration.engine import windows

    if not _selected(context, name):
        log.info("%s not selected by the objects Param: nothing to extract", name)
        return []
    params = _params(context)
    run_id = context["run_id"]
    pipe = pipeline(pair, run_id=run_id)
    sample = int(params.get("sample_size") or 200) if params.get("mode") == "sample" else None
    kind = ("sync_now" if _sync_now(context) else "delta") if delta else ("sample" if sample else "full")
    win = windows.open_window(pipe.state, pipe.source, pair=pair, name=name, run_id=run_id, kind=kind,
                              interval_start=context.get("data_interval_start"),
                              interval_end=context.get("data_interval_end"), with_deleted=delta, log=log)
    refs = pipe.extract(name, run_id=run_id, start=win["start"], end=win["end"],
                        batch_size=int(params.get("batch_size") or 500), sample_size=sample, with_deleted=delta)
    count = sum(r["count"] for r in refs)
    pipe.state.note_window(run_id=run_id, pair=pair, source_object=name, records=count,
                           warning="\n".join(win["warnings"]) or None)
    log.info("%s: %d records in %d batches to load", name, count, len(refs))
    return refs


def load(*, pair: str, name: str, batch: BatchRef, **context: Any) -> LoadResult:
    """Map and load one staged batch."""
    pipe = pipeline(pair, run_id=context["run_id"])
    return pipe.load(name, run_id=context["run_id"], batch_no=int(batch["batch_no"]), of=batch.get("of"),
                               dry_run=bool(_params(context).get("dry_run")))


def order_timeline(*, pair: str, **context: Any) -> list[BatchRef]:
    """Cut the staged chatter records (stage history, done tasks, notes) into timeline batches."""
    params = _params(context)
    pipe = pipeline(pair, run_id=context["run_id"])
    return pipe.order_timeline(run_id=context["run_id"], batch_size=int(params.get("batch_size") or 500))


def load_timeline(*, pair: str, batch: BatchRef, **context: Any) -> LoadResult:
    """Load one chatter batch, oldest first."""
    pipe = pipeline(pair, run_id=context["run_id"])
    return pipe.load_timeline(run_id=context["run_id"], batch_no=int(batch["batch_no"]), of=batch.get("of"),
                              dry_run=bool(_params(context).get("dry_run")))


def link(*, pair: str, name: str, **context: Any) -> list[dict[str, Any]]:
    if not _selected(context, name):
        return []
    pipe = pipeline(pair, run_id=context["run_id"])
    return list(pipe.link(name, run_id=context["run_id"], dry_run=bool(_params(context).get("dry_run"))))


def verify(*, pair: str, kind: str = "migrate", **context: Any) -> dict[str, Any]:
    """Sample runs: the field-level diff; full and delta runs: the reconciliation. Writes the report."""
    from crm_migration.engine import verify as v

    run_id = context["run_id"]
    pipe = pipeline(pair, run_id=run_id)
    params = _params(context)
    objects = [n for n in pipe.loadable() if _selected(context, n)]
    if params.get("mode") == "sample":
        from crm_migration.reports.diff import diff_summary, write_diff_report

        rows = [r for n in objects for r in v.field_diff(pipe, n, run_id=run_id)]
        path = write_diff_report(rows, pair=pair, run_id=run_id, flags=pipe.state.flags(run_id))
        fields = [r for r in rows if r.get("kind") == "field"]
        for line in diff_summary(rows):
            log.info("%s", line)
        log.info("field-level diff report: %s", path)
        stats = {"fields_compared": len(fields), "fields_differ": sum(1 for r in fields if not r.get("match")),
                 "records_not_landed": len({(r["object"], r["source_id"]) for r in rows if r.get("kind") != "field"}),
                 "summary": diff_summary(rows)[:2], "report": str(path)}
        stats["audit_report"] = _audit_report(pipe, pair, run_id)
    else:
        from crm_migration.reports.reconcile import summary_lines, write_reconciliation_report

        rows = v.reconcile(pipe, run_id=run_id, objects=objects)
        flags = pipe.state.flags(run_id)
        path = write_reconciliation_report(rows, pair=pair, run_id=run_id, flags=flags)
        if flags:
            log.info("%d flagged value(s) landed and are listed in the report for review", len(flags))
        for line in summary_lines(rows):
            log.info("%s", line)
        log.info("reconciliation report: %s", path)
        over, action = v.dead_letter_verdict(rows)
        for line in action:
            log.warning("%s", line)
        stats = {"objects": len(rows), "mismatches": sum(1 for r in rows if r.get("status") != "ok"),
                 "report": str(path), "dead_letters_over_limit": over, "dead_letters_need_action": action}
        stats["audit_report"] = _audit_report(pipe, pair, run_id)
        if over:
            _fail_over_dead_letter_limit(run_id, over, stats)
    state = MigrationStateHook()
    state.finish_run(run_id, status="success", stats=stats)
    state.close()
    return stats


def _audit_report(pipe: Pipeline, pair: str, run_id: str) -> str:
    """Write the run's audit summary report; log and return its URI."""
    from crm_migration.reports.audit import write_audit_report

    uri = str(write_audit_report(pipe.state, pair=pair, run_id=run_id))
    log.info("audit summary report: %s", uri)
    return uri


def _fail_over_dead_letter_limit(run_id: str, over: list[str], stats: dict[str, Any]) -> None:
    """Record the run as failed and fail the task, without retries (a rerun would find the same dead letters)."""
    from airflow.sdk.exceptions import AirflowFailException

    for line in over:
        log.error("%s", line)
    state = MigrationStateHook()
    state.finish_run(run_id, status="failed", stats=stats)
    state.close()
    raise AirflowFailException(
        f"{len(over)} object{'s' * (len(over) != 1)} over the dead-letter limit (settings.max_dead_letter_share): "
        + " | ".join(over) + ". Fix the mapping or the data, rerun the load, then clear this task; the dead "
        "letters are in crm_migration.dead_letter and the reconciliation report.")


def set_watermarks(*, pair: str, kind: str = "delta", **context: Any) -> dict[str, Any]:
    """Every object the run read has landed (this task runs only when no task before it failed): move each
    object's watermark to the end of the window the run read of it, once. The ``objects`` Param's choice is
    respected (an object not read has no window); a dry run or a sample moves none. A delta run also writes
    its windows report (what each object read, warnings) and is recorded finished."""
    from crm_migration.engine import windows
    from crm_migration.reports.windows import write_windows_report

    run_id = context["run_id"]
    params = _params(context)
    state = MigrationStateHook()
    read = state.read_windows(run_id, pair)
    if params.get("dry_run"):
        log.info("dry run: nothing landed, no watermark moves")
        landed: list[dict[str, Any]] = []
    else:
        landed = windows.land(state, pair=pair, run_id=run_id, names=[w["source_object"] for w in read], log=log)
    moved = sum(1 for r in landed if r["moved"] and r["kind"] != "sample")
    warnings = [w for r in read for w in (r.get("warning") or "").split("\n") if w]
    for w in warnings:
        log.warning("%s", w)
    out: dict[str, Any] = {"objects": len(read), "watermarks_moved": moved, "warnings": warnings}
    if kind == "delta":
        path = write_windows_report(read, landed, pair=pair, run_id=run_id)
        ends = sorted({w["end_at"] for w in read})
        out.update({"report": str(path), "window_end": ends[-1].isoformat() if ends else None})
        state.finish_run(run_id, status="success", stats=out)
        log.info("windows report: %s", path)
    else:
        state.update_run_stats(run_id, {"watermarks_moved": moved})
    state.close()
    log.info("%d of %d objects' watermarks moved", moved, len(read))
    return out


def in_cutover_window(*, pair: str, **context: Any) -> bool:
    """True when the run's window lies inside ``[<pair>_cutover_start, <pair>_cutover_end)``; a sync now (a run
    triggered by hand without a data interval, or with ``sync_now``) runs whatever the Variables say."""
    from airflow.sdk import Variable

    if _sync_now(context):
        log.info("sync now (triggered by hand): reads every object from its watermark to now, whatever the "
                 "cutover window")
        return True
    start = Variable.get(f"{pair}_cutover_start", default=None)
    end = Variable.get(f"{pair}_cutover_end", default=None)
    if not start or not end:
        log.info("Variables %s_cutover_start / %s_cutover_end are not set: no delta sync", pair, pair)
        return False
    lo, hi = _parse_ts(start), _parse_ts(end)
    w0, w1 = context["data_interval_start"], context["data_interval_end"]
    inside = lo <= w0 and w1 <= hi
    log.info("window [%s, %s) %s the cutover [%s, %s)", w0, w1, "inside" if inside else "outside", lo, hi)
    return inside


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def rollback(*, pair: str, **context: Any) -> dict[str, Any]:
    from crm_migration.engine.rollback import rollback_run, summary
    from crm_migration.reports.rollback import write_rollback_report

    params = _params(context)
    target_run = (params.get("run_id") or "").strip()
    if not target_run:
        raise ConfigurationError("the run_id Param names the run to roll back")
    odoo, state = OdooHook(), MigrationStateHook()
    result = rollback_run(odoo, state, target_run, force=bool(params.get("force")), log=log)
    path = write_rollback_report(result, pair=pair, rollback_run_id=context["run_id"])
    log.info("%s Report: %s", summary(result), path)
    state.finish_run(context["run_id"], status=result["status"], stats={"report": str(path)})
    state.close()
    if result["status"] == "refused":
        from airflow.sdk.exceptions import AirflowFailException

        # not retried: it stays refused until the later run is rolled back, or it is triggered with force
        raise AirflowFailException(f"{summary(result)} See {path}.")
    return {"status": result["status"], "report": str(path), "unlinked": result["unlinked"],
            "restored": result["restored"], "recreated": result["recreated"]}


def plan(*, pair: str, **context: Any) -> dict[str, Any]:
    """Audit the pair's source and Odoo (reads only) and write the plan report."""
    from crm_migration.engine.plan import build_plan
    from crm_migration.reports.plan import PROPOSAL_FILE, summary_lines, write_plan_report

    spec = load_pair(pair)
    hook_path, source_path, _ = SOURCES.get(spec.source) or (None, None, None)
    if hook_path is None or source_path is None:
        raise ConfigurationError(f"{pair}: no source adapter for {spec.source!r} (known: {', '.join(SOURCES)})")
    source = _load(source_path)(_load(hook_path)())
    result = build_plan(source, OdooHook(), spec, logger=log)
    path = write_plan_report(result, pair=pair, run_id=context["run_id"])
    for line in summary_lines(result):
        log.info("%s", line)
    log.info("plan report: %s", path)
    proposal = str(path.parent / PROPOSAL_FILE) if result.proposal else None
    if proposal:
        log.info("proposed mapping: %s", proposal)
    return {"report": str(path), "proposal": proposal, "source_requests": result.source_calls,
            "odoo_calls": result.odoo_call_count,
            "problems": len(result.problems),
            "blocking": sum(1 for p in result.problems if p["severity"] == "blocking")}
