"""The migration's operators: the pair's four DAGs are built from them, and a user's own DAG can use them too.

Every operator takes the pair (a pair name, found in ``[crm_migration] pairs_folder`` or the bundled pairs, or
a path to a mapping file) and the connections it reads (``source_conn_id``: the source's default
``apto_default`` / ``link_app_default``; ``odoo_conn_id``: ``odoo_default``; ``state_conn_id``:
``crm_migration_state``). Hooks are made in ``execute``, never at parse; the work is done by
``crm_migration.engine``. Return values are small descriptors (counts, batch numbers, report URIs): records
never travel in XCom.

Arguments are templated, so the factory passes ``"{{ params.dry_run }}"`` and friends; a value rendered as
text (a DAG without ``render_template_as_native_obj``) is read back as the bool, number or list it spells.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import BaseOperator

from crm_migration.engine.extract import BatchRef
from crm_migration.engine.load import LoadResult
from crm_migration.errors import ConfigurationError
from crm_migration.hooks.odoo import OdooHook
from crm_migration.hooks.state import MigrationStateHook
from crm_migration.operators import tasks
from crm_migration.operators.links import ReportLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_migration.engine.pipeline import Pipeline
    from crm_migration.mapping.spec import PairSpec

MODES = ("sample", "full", "delta")
CHECKS = ("diff", "reconciliation")
RUN_KINDS = ("migrate", "delta", "rollback")


# ---- values as rendered --------------------------------------------------------------------------------------


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _literal(value: Any) -> Any:
    """A rendered template's text as the Python value it spells (``"False"``, ``"200"``, ``"['Contact']"``)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def as_bool(value: Any, *, name: str) -> bool | None:
    """``True``/``False``/``None`` from a value or its rendered text (``"true"``, ``"False"``, ``""``)."""
    value = _literal(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    if isinstance(value, int):
        return bool(value)
    raise ConfigurationError(f"{name} must be true or false, not {value!r}")


def as_int(value: Any, *, name: str, default: int) -> int:
    value = _literal(value)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise ConfigurationError(f"{name} must be at least 1, not {number}")
    return number


def as_names(value: Any) -> list[str] | None:
    """The object names a value selects: ``None`` for all (``None``, ``""``, ``"all"``, ``["all"]``); a list, or
    a comma-separated text."""
    value = _literal(value)
    if value is None:
        return None
    names = [str(v).strip() for v in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    return None if not names or "all" in names else names


def _one_of(value: Any, allowed: Sequence[str], *, name: str) -> None:
    if value is not None and not _templated(value) and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


# ---- the operators -------------------------------------------------------------------------------------------


class MigrationOperator(BaseOperator):
    """Base of the migration operators: the pair and the connections it reads.

    :param pair: a pair name (``apto_to_odoo``) or the path of a mapping file. (templated)
    :param source_conn_id: the source connection (default: ``apto_default`` or ``link_app_default``, by the
        pair's source). (templated)
    :param odoo_conn_id: the Odoo connection. (templated)
    :param state_conn_id: the state database's Postgres connection. (templated)
    """

    template_fields: Sequence[str] = ("pair", "source_conn_id", "odoo_conn_id", "state_conn_id")
    ui_color = "#e8f0fe"

    def __init__(self, *, pair: str | Path, source_conn_id: str | None = None,
                 odoo_conn_id: str = OdooHook.default_conn_name,
                 state_conn_id: str = MigrationStateHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pair = str(pair)
        self.source_conn_id, self.odoo_conn_id, self.state_conn_id = source_conn_id or None, odoo_conn_id, state_conn_id

    def pair_spec(self) -> PairSpec:
        return tasks.pair_spec(self.pair)

    def pipeline(self, context: Context | None = None, spec: PairSpec | None = None) -> Pipeline:
        """The pair's pipeline over hooks on this task's connections (made now, at execute)."""
        return tasks.pipeline(spec or self.pair, self.log, run_id=context["run_id"] if context else None,
                              source_conn_id=self.source_conn_id, odoo_conn_id=self.odoo_conn_id,
                              state_conn_id=self.state_conn_id)

    def state_hook(self) -> MigrationStateHook:
        return MigrationStateHook(postgres_conn_id=self.state_conn_id)

    def selected(self, objects: Any, name: str, spec: PairSpec) -> bool:
        """Whether ``objects`` (``None``: all) selects object ``name``; a name the pair lacks is an error."""
        names = as_names(objects)
        if names is None:
            return True
        known = {o.name for o in spec.loadable()}
        if unknown := [n for n in names if n not in known]:
            raise ConfigurationError(f"{spec.pair}: objects {unknown} are not objects of the mapping "
                                     f"(known: {', '.join(sorted(known))})")
        return name in names


class PlanOperator(MigrationOperator):
    """Audit the pair's source and Odoo (reads only) and write the plan report; return its URI and counts."""

    operator_extra_links = (ReportLink(),)

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_migration.engine.plan import build_plan
        from crm_migration.reports.plan import PROPOSAL_FILE, summary_lines, write_plan_report

        spec = self.pair_spec()
        result = build_plan(tasks.source_adapter(spec, self.source_conn_id), OdooHook(self.odoo_conn_id), spec,
                            logger=self.log)
        path = write_plan_report(result, pair=spec.pair, run_id=context["run_id"])
        for line in summary_lines(result):
            self.log.info("%s", line)
        self.log.info("plan report: %s", path)
        proposal = str(path.parent / PROPOSAL_FILE) if result.proposal else None
        if proposal:
            self.log.info("proposed mapping: %s", proposal)
        return {"report": str(path), "proposal": proposal, "source_requests": result.source_calls,
                "odoo_calls": result.odoo_call_count, "problems": len(result.problems),
                "blocking": sum(1 for p in result.problems if p["severity"] == "blocking")}


class StartRunOperator(MigrationOperator):
    """Create/upgrade the state schema and register the run (idempotent); a migrate or delta run also records
    the source facts the mapping depends on (namespace, custom fields), so later tasks make no metadata calls.

    A migrate run first checks what it needs (:func:`crm_migration.engine.approvals.check_migrate_run`): a
    confirmed mapping, and for a full run an approved sample diff of it (or ``approved_by``); without them it
    fails here, before anything moves, saying which step gives what is missing. A rollback run returns what the
    approval step shows: the run's audit report and what its rollback undoes.

    :param kind: ``migrate``, ``delta`` or ``rollback``.
    :param mode: ``sample`` or ``full`` (migrate runs), recorded with the run. (templated)
    :param approved_by: a person's name confirming the mapping in force and approving the run (scripted runs;
        recorded as such). (templated)
    :param target_run_id: rollback runs: the run to undo. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "mode", "approved_by", "target_run_id")

    def __init__(self, *, kind: str, mode: str | None = None, approved_by: str | None = None,
                 target_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(kind, RUN_KINDS, name="kind")
        self.kind, self.mode, self.approved_by, self.target_run_id = kind, mode, approved_by, target_run_id

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_migration.engine import approvals
        from crm_migration.errors import ApprovalRequired
        from crm_migration.mapping.changes import summary
        from crm_migration.mapping.spec import read_pair_file

        kind, pair, run_id = self.kind, self.pair_spec().pair, context["run_id"]
        mode = self.mode or None
        state = self.state_hook()
        state.migrate()
        params = dict(context.get("params") or {})
        mapping = read_pair_file(self.pair) if kind != "rollback" else None
        row = state.start_run(run_id, pair=pair, dag_id=context["dag"].dag_id, kind=kind, mode=mode,
                              params={k: v for k, v in params.items() if k != "approved_by"},
                              mapping_sha256=mapping.sha256 if mapping else None)
        out: dict[str, Any] = {"run_id": row["run_id"], "kind": kind}
        if kind == "migrate" and mapping is not None:
            try:
                gate = approvals.check_migrate_run(state, pair=pair, mapping=mapping, run_id=run_id,
                                                   mode=mode or "sample",
                                                   approved_by=(self.approved_by or "").strip() or None,
                                                   log=self.log)
            except ApprovalRequired as exc:
                from airflow.sdk.exceptions import AirflowFailException

                state.finish_run(run_id, status="refused", stats={"refused": str(exc)})
                state.close()
                raise AirflowFailException(f"{pair}: {exc}") from None      # not retried: a retry finds the same
            state.update_run_stats(run_id, gate)
            out.update(mapping_sha256=gate["mapping_sha256"], sample_report=gate.get("sample_report"),
                       sample_run=gate.get("sample_run"))
            if gate.get("sample_run"):
                out["sample_note"] = (f"Approved by {gate['sample_approved_by']} in sample run {gate['sample_run']}; "
                                      f"the mapping was confirmed by {gate['mapping_confirmed_by']}.")
            if changes := gate.get("mapping_changes"):
                out["changes_note"] = (f"Mapping changed since run {changes['since_run']}: "
                                       f"{changes.get('note') or summary(changes['rows'])} (this run's audit report "
                                       "lists them).")
        if kind == "rollback":
            target = (self.target_run_id or "").strip()
            done = state.get_run(target) or {}
            counts = state.manifest_counts(target) if target else {}
            out["target_report"] = (done.get("stats") or {}).get("audit_report")
            out["undo"] = (f"It deletes the {counts.get('created', 0):,} record(s) the run created, writes back the "
                           f"prior values of the {counts.get('updated', 0) + counts.get('archived', 0):,} it changed "
                           f"or archived and creates again the {counts.get('deleted', 0):,} it removed.")
        else:
            meta = self.pipeline().source_meta(reuse_target_version=kind == "delta")
            state.update_run_stats(run_id, {"source_meta": meta})
            self.log.info("source: namespace %r, custom fields of %s", meta["namespace"],
                          ", ".join(meta["describes"]) or "-")
        state.close()
        self.log.info("%s run %s registered (%s)", kind, run_id, ", ".join(f"{k}={v}" for k, v in params.items()))
        return out


class PrepareSchemaOperator(MigrationOperator):
    """Preflight and schema: every source owner resolves to an Odoo user (or the fallback user, which must
    exist), then the fields, keys and lost reasons the load needs are created.

    :param dry_run: check the owners only; change nothing in Odoo. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "dry_run")

    def __init__(self, *, dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        pipe = self.pipeline(context)
        try:
            owners = pipe.owners
        except ValueError as exc:
            raise ConfigurationError(f"owners cannot be resolved: {exc}; set the odoo connection's fallback_user "
                                     "(extra) or settings.fallback_user in the pair file to an existing login"
                                     ) from None
        fallback = sum(1 for o in owners.values() if not o["matched"])
        self.log.info("owners: %d source users, %d matched by email, %d go to the fallback user", len(owners),
                      len(owners) - fallback, fallback)
        if as_bool(self.dry_run, name="dry_run"):
            self.log.info("dry run: no schema change in Odoo")
            return {"fields_created": [], "dry_run": True}
        return dict(pipe.prepare_schema(run_id=context["run_id"]))


class ExtractObjectOperator(MigrationOperator):
    """Stage one source object's records of the run's read window in batches; return the batch descriptors
    (map a :class:`LoadBatchOperator` over them: ``.partial(...).expand(batch=extract.output)``).

    The window is fixed by the first attempt (:func:`crm_migration.engine.windows.open_window`): a full run
    reads everything up to now, a sample a representative slice, a delta from the object's watermark (never
    later than ``data_interval_start``) to ``data_interval_end``, a sync now from the watermark to now.

    :param source_object: the object of the mapping (``Contact``, ``deals``).
    :param mode: ``full``, ``sample`` or ``delta``. (templated)
    :param sample_size: records per object of a sample. (templated)
    :param batch_size: records per batch. (templated)
    :param objects: the objects the run takes (``None``: all); an object not among them extracts nothing.
        (templated)
    :param sync_now: delta only: read up to now (``None``: when the run has no data interval). (templated)
    :param replay_dead_letters: delta only: ``all``, an object name or a run id: also re-read the open dead letters
        it selects from the source by id and stage them (:mod:`crm_migration.engine.replay`). (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "source_object", "mode", "sample_size",
                                      "batch_size", "objects", "sync_now", "replay_dead_letters")

    def __init__(self, *, source_object: str, mode: str = "full", sample_size: int | str = 200,
                 batch_size: int | str = 500, objects: Sequence[str] | str | None = None,
                 sync_now: bool | str | None = None, replay_dead_letters: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(mode, MODES, name="mode")
        self.source_object, self.mode, self.sample_size, self.batch_size = source_object, mode, sample_size, batch_size
        self.objects, self.sync_now, self.replay_dead_letters = objects, sync_now, replay_dead_letters

    def execute(self, context: Context) -> list[BatchRef]:
        from crm_migration.engine import replay, windows

        _one_of(self.mode, MODES, name="mode")
        name, spec = self.source_object, self.pair_spec()
        if not self.selected(self.objects, name, spec):
            self.log.info("%s not selected by the objects Param: nothing to extract", name)
            return []
        pipe, pair = self.pipeline(context, spec), spec.pair
        run_id, delta = context["run_id"], self.mode == "delta"
        sample = as_int(self.sample_size, name="sample_size", default=200) if self.mode == "sample" else None
        if delta:
            kind = "sync_now" if is_sync_now(self.sync_now, context) else "delta"
        else:
            kind = "sample" if sample else "full"
        win = windows.open_window(pipe.state, pipe.source, pair=pair, name=name, run_id=run_id, kind=kind,
                                  interval_start=context.get("data_interval_start"),
                                  interval_end=context.get("data_interval_end"), with_deleted=delta, log=self.log)
        again = replay.to_replay(pipe, name, replay.choice(_literal(self.replay_dead_letters))) if delta else []
        refs = pipe.extract(name, run_id=run_id, start=win["start"], end=win["end"],
                            batch_size=as_int(self.batch_size, name="batch_size", default=500), sample_size=sample,
                            with_deleted=delta, replay=again)
        count = sum(r["count"] for r in refs)
        pipe.state.note_window(run_id=run_id, pair=pair, source_object=name, records=count,
                               warning="\n".join(win["warnings"]) or None)
        self.log.info("%s: %d records in %d batches to load", name, count, len(refs))
        return refs


class ExtendPicklistsOperator(MigrationOperator):
    """Add the values the run's staged records hold outside their picklist options to Odoo's custom selection
    fields, in one call for every object (one registry change, before any load): see
    :meth:`~crm_migration.engine.pipeline.Pipeline.extend_picklists`. Returns ``{"options_added": {...}}``.

    :param source_objects: the objects whose staged records are looked at (those extracted before the loads).
    :param dry_run: report the values, add nothing. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "dry_run")

    def __init__(self, *, source_objects: Sequence[str], dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_objects, self.dry_run = list(source_objects), dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        pipe = self.pipeline(context)
        added = pipe.extend_picklists(self.source_objects, run_id=context["run_id"],
                                      dry_run=bool(as_bool(self.dry_run, name="dry_run")))
        return {"options_added": added}


class LoadBatchOperator(MigrationOperator):
    """Map and load one staged batch of a source object into Odoo (exactly once, keyed in Odoo); mappable over
    the extract's batches: ``LoadBatchOperator.partial(..., source_object="Contact").expand(batch=ex.output)``.

    :param source_object: the object of the mapping.
    :param batch: the batch descriptor the extract returned (``batch_no``, ``of``). (templated)
    :param dry_run: map and compare, write nothing. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "source_object", "batch", "dry_run")

    def __init__(self, *, source_object: str, batch: BatchRef | dict[str, Any], dry_run: bool | str = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_object, self.batch, self.dry_run = source_object, batch, dry_run

    def execute(self, context: Context) -> LoadResult:
        pipe = self.pipeline(context)
        batch = _literal(self.batch)
        return pipe.load(self.source_object, run_id=context["run_id"], batch_no=int(batch["batch_no"]),
                         of=batch.get("of"), dry_run=bool(as_bool(self.dry_run, name="dry_run")))


class OrderTimelineOperator(MigrationOperator):
    """Cut the staged chatter records (stage history, done tasks, notes) into timeline batches, oldest first;
    return the batch descriptors (map a :class:`LoadTimelineOperator` over them).

    :param batch_size: records per batch. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "batch_size")

    def __init__(self, *, batch_size: int | str = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size

    def execute(self, context: Context) -> list[BatchRef]:
        pipe = self.pipeline(context)
        return pipe.order_timeline(run_id=context["run_id"],
                                   batch_size=as_int(self.batch_size, name="batch_size", default=500))


class LoadTimelineOperator(MigrationOperator):
    """Load one chatter batch, oldest first (mappable over :class:`OrderTimelineOperator`'s batches).

    :param batch: the batch descriptor. (templated)
    :param dry_run: write nothing. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "batch", "dry_run")

    def __init__(self, *, batch: BatchRef | dict[str, Any], dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch, self.dry_run = batch, dry_run

    def execute(self, context: Context) -> LoadResult:
        pipe = self.pipeline(context)
        batch = _literal(self.batch)
        return pipe.load_timeline(run_id=context["run_id"], batch_no=int(batch["batch_no"]), of=batch.get("of"),
                                  dry_run=bool(as_bool(self.dry_run, name="dry_run")))


class LinkOperator(MigrationOperator):
    """Write an object's references to records of its own kind (company hierarchies) once all have landed, where
    the load did not (a new record takes a parent already in Odoo in its create): updates, parents that landed
    after their children, links cut to break a cycle (flagged).

    :param source_object: the object of the mapping.
    :param objects: the objects the run takes (``None``: all). (templated)
    :param dry_run: write nothing. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "source_object", "objects", "dry_run")

    def __init__(self, *, source_object: str, objects: Sequence[str] | str | None = None,
                 dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_object, self.objects, self.dry_run = source_object, objects, dry_run

    def execute(self, context: Context) -> list[dict[str, Any]]:
        spec = self.pair_spec()
        if not self.selected(self.objects, self.source_object, spec):
            return []
        pipe = self.pipeline(context, spec)
        return list(pipe.link(self.source_object, run_id=context["run_id"],
                              dry_run=bool(as_bool(self.dry_run, name="dry_run"))))


class SetWatermarksOperator(MigrationOperator):
    """Every object the run read has landed (run it after them all, ``none_failed``): move each object's
    watermark to the end of the window the run read of it, once. A dry run or a sample moves none. A delta
    run also writes its windows report (what each object read, warnings) and is recorded finished.

    :param kind: ``migrate`` or ``delta``.
    :param dry_run: move nothing. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "dry_run")
    operator_extra_links = (ReportLink(),)

    def __init__(self, *, kind: str = "delta", dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(kind, RUN_KINDS[:2], name="kind")
        self.kind, self.dry_run = kind, dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_migration.engine import windows
        from crm_migration.reports.windows import write_windows_report

        pair = self.pair_spec().pair
        run_id = context["run_id"]
        state = self.state_hook()
        read = state.read_windows(run_id, pair)
        if as_bool(self.dry_run, name="dry_run"):
            self.log.info("dry run: nothing landed, no watermark moves")
            landed: list[dict[str, Any]] = []
        else:
            landed = windows.land(state, pair=pair, run_id=run_id, names=[w["source_object"] for w in read],
                                  log=self.log)
        moved = sum(1 for r in landed if r["moved"] and r["kind"] != "sample")
        warnings = [w for r in read for w in (r.get("warning") or "").split("\n") if w]
        for w in warnings:
            self.log.warning("%s", w)
        out: dict[str, Any] = {"objects": len(read), "watermarks_moved": moved, "warnings": warnings}
        if self.kind == "delta":
            path = write_windows_report(read, landed, pair=pair, run_id=run_id)
            ends = sorted({w["end_at"] for w in read})
            out.update({"report": str(path), "window_end": ends[-1].isoformat() if ends else None})
            state.finish_run(run_id, status="success", stats=out)
            self.log.info("windows report: %s", path)
        else:
            state.update_run_stats(run_id, {"watermarks_moved": moved})
        state.close()
        self.log.info("%d of %d objects' watermarks moved", moved, len(read))
        return out


class VerifyOperator(MigrationOperator):
    """Check what landed and write the report: the field-level diff (source value vs the value read back from
    Odoo: sample runs) or the reconciliation (counts and checksums per object, and the cutover's completeness:
    ids alive in the source against Odoo's keys, one line saying whether the cutover is complete) with the
    conflicts report (both values per field); then the run's audit summary. The run is recorded finished; a run
    whose dead letters exceed ``settings.max_dead_letter_share`` fails here, naming the objects and the reasons
    (not retried).

    :param check: ``diff`` or ``reconciliation``. (templated)
    :param objects: the objects to check (``None``: all). (templated)
    :param delta: the check of a delta run: it reconciles when ``reconcile`` says so, else when the run is a sync
        now or replays dead letters (not every scheduled window); the run's report stays its windows report.
    :param reconcile: delta only: ``True``/``False`` forces the reconciliation; ``None``: see ``delta``. (templated)
    :param sync_now: delta only: as :class:`ExtractObjectOperator`'s. (templated)
    :param replay_dead_letters: delta only: as :class:`ExtractObjectOperator`'s. (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "check", "objects", "reconcile", "sync_now",
                                      "replay_dead_letters")
    operator_extra_links = (ReportLink(),)

    def __init__(self, *, check: str = "reconciliation", objects: Sequence[str] | str | None = None,
                 delta: bool = False, reconcile: bool | str | None = None, sync_now: bool | str | None = None,
                 replay_dead_letters: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(check, CHECKS, name="check")
        self.check, self.objects = check, objects
        self.delta, self.reconcile, self.sync_now, self.replay_dead_letters = (delta, reconcile, sync_now,
                                                                               replay_dead_letters)

    def _reconciles(self, context: Context) -> bool:
        from crm_migration.engine.replay import choice

        wanted = as_bool(self.reconcile, name="reconcile")
        if wanted is not None:
            return wanted
        return is_sync_now(self.sync_now, context) or choice(_literal(self.replay_dead_letters)) is not None

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_migration.engine import verify as v

        _one_of(self.check, CHECKS, name="check")
        if self.delta and not self._reconciles(context):
            self.log.info("a scheduled delta window: no reconciliation (a sync now or a replay reconciles; Param "
                          "reconcile forces it)")
            return {"reconciled": False}
        run_id, spec = context["run_id"], self.pair_spec()
        pipe, pair = self.pipeline(context, spec), spec.pair
        objects = [n for n in pipe.loadable() if self.selected(self.objects, n, spec)]
        if self.check == "diff":
            from crm_migration.reports.diff import diff_summary, write_diff_report

            rows = [r for n in objects for r in v.field_diff(pipe, n, run_id=run_id)]
            path = write_diff_report(rows, pair=pair, run_id=run_id, flags=pipe.state.flags(run_id))
            fields = [r for r in rows if r.get("kind") == "field"]
            for line in diff_summary(rows):
                self.log.info("%s", line)
            self.log.info("field-level diff report: %s", path)
            stats = {"fields_compared": len(fields), "fields_differ": sum(1 for r in fields if not r.get("match")),
                     "records_not_landed": len({(r["object"], r["source_id"]) for r in rows
                                                if r.get("kind") != "field"}),
                     "summary": diff_summary(rows)[:2], "report": str(path)}
            stats["audit_report"] = self._audit_report(pipe, pair, run_id)
        else:
            from crm_migration.reports.reconcile import (
                cutover_line,
                summary_lines,
                write_conflicts_report,
                write_reconciliation_report,
            )

            rows = v.reconcile(pipe, run_id=run_id, objects=objects, completeness=True)
            flags = pipe.state.flags(run_id)
            tally = pipe.state.dead_letter_tally(pair)
            path = write_reconciliation_report(rows, pair=pair, run_id=run_id, flags=flags, dead_letters=tally)
            if flags:
                self.log.info("%d flagged value(s) landed and are listed in the report for review", len(flags))
            for line in summary_lines(rows):
                self.log.info("%s", line)
            self.log.info("reconciliation report: %s", path)
            over, action = v.dead_letter_verdict(rows)
            for line in action:
                self.log.warning("%s", line)
            stats = {"objects": len(rows), "mismatches": sum(1 for r in rows if r.get("status") != "ok"),
                     "report": str(path), "dead_letters_over_limit": over, "dead_letters_need_action": action}
            stats.update(self._cutover(pipe, rows, cutover_line(rows), write_conflicts_report, pair=pair,
                                       run_id=run_id, tally=tally))
            if self.delta:                  # the run's report stays its windows report
                stats["reconciliation_report"] = stats.pop("report")
            stats["audit_report"] = self._audit_report(pipe, pair, run_id)
            if over:
                self._fail_over_dead_letter_limit(run_id, over, stats)
        state = self.state_hook()
        state.finish_run(run_id, status="success", stats=stats)
        state.close()
        return stats

    def _cutover(self, pipe: Pipeline, rows: list[Any], line: str | None, write_conflicts: Any, *, pair: str,
                 run_id: str, tally: dict[str, dict[str, int]]) -> dict[str, Any]:
        """Log whether the cutover is complete and the dead letters open and resolved; write the conflicts
        report."""
        from crm_migration.engine.completeness import summary

        if line:
            (self.log.info if line.startswith("Cutover complete") else self.log.warning)("%s", line)
        self.log.info("dead letters: %d open, %d resolved (%d replayed)", sum(t["open"] for t in tally.values()),
                      sum(t["resolved"] for t in tally.values()), sum(t["replayed"] for t in tally.values()))
        policies = {n: pipe.spec.conflict_policy(n).replace("report", "keep_odoo") for n in pipe.loadable()}
        conflicts = write_conflicts(rows, pipe.state.conflicts(run_id), pair=pair, run_id=run_id, policies=policies)
        self.log.info("conflicts report: %s", conflicts)
        return {"cutover": line, "cutover_complete": bool(line and line.startswith("Cutover complete")),
                "conflicts_report": str(conflicts), "dead_letters": tally,
                "completeness": {r["object"]: summary(r["completeness"]) for r in rows if r.get("completeness")}}

    def _audit_report(self, pipe: Pipeline, pair: str, run_id: str) -> str:
        """Write the run's audit summary report; log and return its URI."""
        from crm_migration.reports.audit import write_audit_report

        uri = str(write_audit_report(pipe.state, pair=pair, run_id=run_id))
        self.log.info("audit summary report: %s", uri)
        return uri

    def _fail_over_dead_letter_limit(self, run_id: str, over: list[str], stats: dict[str, Any]) -> None:
        """Record the run as failed and fail the task, without retries (a rerun finds the same dead letters)."""
        from airflow.sdk.exceptions import AirflowFailException

        for line in over:
            self.log.error("%s", line)
        state = self.state_hook()
        state.finish_run(run_id, status="failed", stats=stats)
        state.close()
        raise AirflowFailException(
            f"{len(over)} object{'s' * (len(over) != 1)} over the dead-letter limit (settings.max_dead_letter_share): "
            + " | ".join(over) + ". Fix the mapping or the data, rerun the load, then clear this task; the dead "
            "letters are in crm_migration.dead_letter and the reconciliation report.")


class RollbackOperator(MigrationOperator):
    """Undo one run: unlink what it created, write back what it changed, newest first; refused (and not
    retried) when records were edited in Odoo after the run, unless forced. Writes the rollback report.

    :param target_run_id: the Airflow run id of the migrate or delta run to undo. (templated)
    :param force: roll back even records edited after the run (their edits are lost). (templated)
    """

    template_fields: Sequence[str] = (*MigrationOperator.template_fields, "target_run_id", "force")
    operator_extra_links = (ReportLink(),)

    def __init__(self, *, target_run_id: str, force: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_run_id, self.force = target_run_id, force

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_migration.engine.rollback import rollback_run, summary
        from crm_migration.reports.rollback import write_rollback_report

        target_run = (self.target_run_id or "").strip()
        if not target_run:
            raise ConfigurationError("the run_id Param names the run to roll back")
        pair = self.pair_spec().pair
        odoo, state = OdooHook(self.odoo_conn_id), self.state_hook()
        result = rollback_run(odoo, state, target_run, force=bool(as_bool(self.force, name="force")), log=self.log)
        path = write_rollback_report(result, pair=pair, rollback_run_id=context["run_id"])
        self.log.info("%s Report: %s", summary(result), path)
        state.finish_run(context["run_id"], status=result["status"], stats={"report": str(path)})
        state.close()
        if result["status"] == "refused":
            from airflow.sdk.exceptions import AirflowFailException

            # not retried: it stays refused until the later run is rolled back, or it is triggered with force
            raise AirflowFailException(f"{summary(result)} See {path}.")
        return {"status": result["status"], "report": str(path), "unlinked": result["unlinked"],
                "restored": result["restored"], "recreated": result["recreated"]}


class InCutoverWindowOperator(ShortCircuitOperator):
    """Go on (and run the delta) only when the run's window lies inside ``[<pair>_cutover_start,
    <pair>_cutover_end)`` (Variables); a sync now (``sync_now``, or a run triggered by hand without a data
    interval) goes on whatever the Variables say. Otherwise everything downstream is skipped.

    :param pair: the pair name or mapping file (its name names the Variables). (templated)
    :param sync_now: ``True``/``False`` forces it; ``None``: a run without a data interval is one. (templated)
    """

    def __init__(self, *, pair: str | Path, sync_now: bool | str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("ignore_downstream_trigger_rules", True)
        super().__init__(python_callable=in_cutover_window, op_kwargs={"pair": str(pair), "sync_now": sync_now},
                         **kwargs)


def is_sync_now(value: Any, context: Context | dict[str, Any]) -> bool:
    """A delta run is a *sync now* (from the watermarks to now) when ``sync_now`` says so, or when it has no data
    interval (triggered by hand without a logical date: Airflow 3's default in the UI and CLI)."""
    wanted = as_bool(value, name="sync_now")
    if wanted is not None:
        return wanted
    return context.get("data_interval_start") is None or context.get("data_interval_end") is None


def in_cutover_window(*, pair: str, sync_now: Any = None, **context: Any) -> bool:
    """True when the run's window lies inside the pair's cutover window, or the run is a sync now."""
    from airflow.sdk import Variable

    log = tasks.log
    if is_sync_now(sync_now, context):
        log.info("sync now (triggered by hand): reads every object from its watermark to now, whatever the "
                 "cutover window")
        return True
    name = tasks.pair_spec(pair).pair
    start = Variable.get(f"{name}_cutover_start", default=None)
    end = Variable.get(f"{name}_cutover_end", default=None)
    if not start or not end:
        log.info("Variables %s_cutover_start / %s_cutover_end are not set: no delta sync", name, name)
        return False
    lo, hi = _parse_ts(start), _parse_ts(end)
    w0, w1 = context["data_interval_start"], context["data_interval_end"]
    inside = lo <= w0 and w1 <= hi
    log.info("window [%s, %s) %s the cutover [%s, %s)", w0, w1, "inside" if inside else "outside", lo, hi)
    return inside


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
