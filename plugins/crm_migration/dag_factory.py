"""Build a pair's four DAGs from its mapping file: ``<pair>_plan``, ``_migrate``, ``_delta``, ``_rollback``.

Parsing reads the pair file and nothing else (no connection, no Variable). The migrate and delta DAGs
get one ``extract_<object>`` task per object and one ``load_<object>`` task mapped over its batches
(never over records), in the mapping's dependency order, with the source API's pool on extraction and
``odoo_api`` on everything that writes to Odoo.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param
from airflow.timetables.interval import CronDataIntervalTimetable

from crm_migration.hooks.odoo import OdooHook
from crm_migration.hooks.state import MigrationStateHook
from crm_migration.mapping.spec import PairSpec, locate_pair
from crm_migration.operators import tasks
from crm_migration.operators.approval import MigrationApprovalOperator, approval_kwargs
from crm_migration.operators.migration import (
    ExtendPicklistsOperator,
    ExtractObjectOperator,
    InCutoverWindowOperator,
    LinkOperator,
    LoadBatchOperator,
    LoadTimelineOperator,
    OrderTimelineOperator,
    PlanOperator,
    PrepareSchemaOperator,
    RollbackOperator,
    SetWatermarksOperator,
    StartRunOperator,
    VerifyOperator,
)

OWNER = "crm-migration"
START = datetime(2024, 1, 1, tzinfo=UTC)
#: seconds before the first retry (``CRM_MIGRATION_RETRY_DELAY_SECONDS``: short in tests and the demo)
RETRY_DELAY = timedelta(seconds=float(os.environ.get("CRM_MIGRATION_RETRY_DELAY_SECONDS", "60")))
DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
}
NONE_FAILED = "none_failed"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower())


def _doc(p: _Pair, kind: str, text: str) -> str:
    return f"### {p.name}_{kind}\n\n{text}\n\nBuilt from `{p.spec.origin}` by `crm_migration.dag_factory`."


def _approved_by(what: str = "confirms the mapping in force and approves this run") -> Param:
    return Param(None, type=["null", "string"], title="Approved by",
                 description=f"A person's name: {what} without waiting at the approval step (for scripted runs; "
                             "recorded in the state DB like a person's approval, as given by this Param).")


def _objects(spec: PairSpec, what: str) -> Param:
    """The ``objects`` Param: a subset of the pair's loaded objects (default: all of them). A name the mapping
    lacks is refused when the run is triggered (JSON schema ``items.enum``), never a green run that did nothing."""
    names = [o.name for o in spec.loadable()]
    return Param(names, type="array", items={"type": "string", "enum": names}, uniqueItems=True, minItems=1,
                 examples=names, title="Objects", description=f"The objects of the mapping {what} (default: all).")


def conn_ids(spec: PairSpec, *, source_conn_id: str | None = None, odoo_conn_id: str | None = None,
             state_conn_id: str | None = None) -> dict[str, Any]:
    """The connection ids the pair's tasks use: the arguments, else the pair file's ``connections:``, else
    DESIGN.md's defaults (the source's default connection, ``odoo_default``, ``crm_migration_state``)."""
    conns = spec.connections
    return {"source_conn_id": source_conn_id or conns.get("source"),
            "odoo_conn_id": odoo_conn_id or conns.get("odoo") or OdooHook.default_conn_name,
            "state_conn_id": state_conn_id or conns.get("state") or MigrationStateHook.default_conn_name}


def build_pair_dags(pair: str | Path, *, source_conn_id: str | None = None, odoo_conn_id: str | None = None,
                    state_conn_id: str | None = None) -> dict[str, DAG]:
    """Return ``{dag_id: DAG}`` for the pair (``globals().update(build_pair_dags("apto_to_odoo"))``).

    :param pair: a pair name (its ``<pair>.yaml`` in ``[crm_migration] pairs_folder``, else the bundled one) or
        the path of a mapping file; the file's ``pair:`` names the DAGs.
    :param source_conn_id: the source connection (default: the pair file's ``connections.source``, else
        ``apto_default`` / ``link_app_default``); likewise ``odoo_conn_id`` and ``state_conn_id``.
    """
    spec = tasks.pair_spec(pair)
    ctx = _Pair(name=spec.pair, ref=locate_pair(pair), spec=spec, pool=tasks.source_pool(spec.source),
                tags=["crm-migration", spec.pair, spec.source, "odoo"],
                conns=conn_ids(spec, source_conn_id=source_conn_id, odoo_conn_id=odoo_conn_id,
                               state_conn_id=state_conn_id))
    return {d.dag_id: d for d in (_plan(ctx), _migrate(ctx), _delta(ctx), _rollback(ctx))}


@dataclass(frozen=True)
class _Pair:
    """What the four DAGs of a pair are built from."""

    name: str                  # the pair's name (its DAG ids, Variables, state rows)
    ref: str                   # what its operators load: the pair name, or the mapping file's path
    spec: PairSpec
    pool: str
    tags: list[str]
    conns: dict[str, Any]

    def args(self) -> dict[str, Any]:
        """The pair and connection arguments every migration operator takes."""
        return {"pair": self.ref, **self.conns}

    def approval(self, what: str) -> dict[str, Any]:
        """The arguments of a :class:`MigrationApprovalOperator` of step ``what``: the pair, its mapping file, the
        state connection, who may answer and who is told (the pair file's ``approvals:``)."""
        return {"pair": self.name, "mapping": self.ref, "what": what, "state_conn_id": self.conns["state_conn_id"],
                **approval_kwargs(self.spec, what)}


def _plan(p: _Pair) -> DAG:
    params = {"approved_by": _approved_by("confirms the mapping in force")}
    with DAG(dag_id=f"{p.name}_plan", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*p.tags, "plan"], default_args=DEFAULT_ARGS, params=params,
             doc_md=_doc(p, "plan", "Inventory of the source and the target, owner resolution, schema plan, "
                         "cycles and bad data, and the automation export. Writes an HTML report and CSVs, then "
                         "waits at `confirm_mapping`: approve the mapping in force (or edit the YAML, then "
                         f"approve); `{p.name}_migrate` refuses to start on a mapping nobody confirmed.")) as dag:
        plan = PlanOperator(task_id="plan", pool=p.pool, **p.args())
        confirm = MigrationApprovalOperator(
            task_id="confirm_mapping", **p.approval("mapping"),
            subject="{{ dag.dag_id }}: confirm the mapping in force",
            body="The plan of run {{ run_id }} is written. Approve to confirm the mapping in force, or edit the "
                 "YAML and approve: records move only with a confirmed mapping.",
            report="{{ (ti.xcom_pull(task_ids='plan') or {}).get('report') or '' }}",
            checks=["Blocking problems first (fields the target lacks), then the owners going to the fallback user.",
                    "Each object's field map and the custom fields to create: the proposal's diff against the mapping "
                    "in force is in the report.",
                    "{{ 'The proposed mapping file: `' ~ ti.xcom_pull(task_ids='plan')['proposal'] ~ '` (copy what "
                    "you accept into the mapping file, then approve).' if (ti.xcom_pull(task_ids='plan') or {})"
                    ".get('proposal') else '' }}",
                    "Values outside a picklist's options and the records flagged as bad data."])
        plan >> confirm
    return dag


def _object_tasks(p: _Pair, after: Any, *, mode: str, **extract: Any) -> list[Any]:
    """extract → picklists → load (mapped over batches) → link, per loadable object, in dependency order.

    The objects whose extraction needs nothing loaded (not files or notes, whose read keeps what hangs on a
    migrated record) are extracted first, each after the objects it refers to (a sample follows references in
    the staging); ``picklists`` then adds the values their records hold outside their picklist options to Odoo's
    selection fields in one call (one registry change per run, before any record is written); each then loads
    once what it refers to has landed. Files and notes are extracted once their parents landed. The chatter
    objects (:meth:`PairSpec.timeline`) are extracted each on its own, then cut into one timeline
    (``order_chatter``) and loaded by ``load_chatter``, mapped over its batches, oldest first.
    """
    spec = p.spec
    last: dict[str, Any] = {}
    timeline = {o.name for o in spec.timeline()}
    extracts: list[Any] = []
    first_read: dict[tuple[str, str], Any] = {}     # objects reading one stream: the first reads it for all

    def extract_task(obj: Any, deps: list[Any]) -> Any:
        ex = ExtractObjectOperator(task_id=f"extract_{_slug(obj.name)}", pool=p.pool, trigger_rule=NONE_FAILED,
                                   source_object=obj.name, mode=mode, batch_size="{{ params.batch_size }}",
                                   objects="{{ params.objects }}", **extract, **p.args())
        if obj.stream_key in first_read:
            first_read[obj.stream_key] >> ex
        else:
            first_read[obj.stream_key] = ex
        for d in list({id(t): t for t in deps}.values()) or [after]:
            d >> ex
        return ex

    def tails(obj: Any) -> list[Any]:
        return [last[d] for d in spec.needs(obj.name) if d in last]

    early: dict[str, Any] = {}          # extracted before any load: their references' extracts first
    for name in spec.extracted_first():
        early[name] = extract_task(spec.object(name), [early[d] for d in spec.needs(name) if d in early])
    picklists = None
    if early:
        picklists = ExtendPicklistsOperator(task_id="picklists", pool="odoo_api", trigger_rule=NONE_FAILED,
                                            source_objects=list(early), dry_run="{{ params.dry_run }}", **p.args())
        for ex in early.values():
            ex >> picklists
    for obj in spec.loadable():
        slug = _slug(obj.name)
        if obj.name in timeline:
            extracts.append(extract_task(obj, tails(obj)))
            continue
        ex = early.get(obj.name) or extract_task(obj, tails(obj))
        ld = LoadBatchOperator.partial(task_id=f"load_{slug}", pool="odoo_api", trigger_rule=NONE_FAILED,
                                       source_object=obj.name, dry_run="{{ params.dry_run }}", **p.args()
                                       ).expand(batch=ex.output)
        # what it refers to, and what its records hang on (files and notes need their parents' ids)
        for d in list({id(t): t for t in tails(obj)}.values()):
            d >> ld
        if obj.name in early:
            picklists >> ld
        ex >> ld
        tail = ld
        if any(obj.name in fs.ref for fs in obj.fields.values()):
            lk = LinkOperator(task_id=f"link_{slug}", pool="odoo_api", trigger_rule=NONE_FAILED,
                              source_object=obj.name, objects="{{ params.objects }}", dry_run="{{ params.dry_run }}",
                              **p.args())
            ld >> lk
            tail = lk
        last[obj.name] = tail
    if extracts:
        order = OrderTimelineOperator(task_id=f"order_{spec.TIMELINE}", trigger_rule=NONE_FAILED,
                                      batch_size="{{ params.batch_size }}", **p.args())
        load = LoadTimelineOperator.partial(task_id=f"load_{spec.TIMELINE}", pool="odoo_api", trigger_rule=NONE_FAILED,
                                            dry_run="{{ params.dry_run }}", **p.args()).expand(batch=order.output)
        for ex in extracts:
            ex >> order
        order >> load
        for name in timeline:
            last[name] = load
    return list({id(t): t for t in last.values()}.values())


def _migrate(p: _Pair) -> DAG:
    params = {
        "mode": Param("sample", enum=["sample", "full"], title="Mode",
                      description="sample: a representative slice and a field-level diff; full: everything."),
        "sample_size": Param(200, type="integer", minimum=1, title="Sample size (records per object)"),
        "objects": _objects(p.spec, "to migrate"),
        "batch_size": Param(500, type="integer", minimum=1, maximum=5000, title="Batch size"),
        "dry_run": Param(False, type="boolean", title="Dry run (nothing is written to Odoo)"),
        "approved_by": _approved_by(),
    }
    with DAG(dag_id=f"{p.name}_migrate", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*p.tags, "migrate"], default_args=DEFAULT_ARGS, params=params, render_template_as_native_obj=False,
             doc_md=_doc(p, "migrate", "Sample or full migration: preflight, approval, schema, then per object "
                         "extract → load (mapped over batches) → link, then the field-level diff (sample) or "
                         "the reconciliation (full).")) as dag:
        start = StartRunOperator(task_id="start_run", kind="migrate", mode="{{ params.mode }}",
                                 approved_by="{{ params.approved_by or '' }}", **p.args())
        approve = MigrationApprovalOperator(
            task_id="approve", modes=("full",), **p.approval("full_run"),
            subject="{{ dag.dag_id }}: approve the full run",
            body="Run {{ run_id }} (full) waits for approval before it writes every record of the pair to Odoo.",
            report="{{ (ti.xcom_pull(task_ids='start_run') or {}).get('sample_report') or '' }}",
            checks=["The sample's field-level diff (the report): every field holds what the source has.",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('sample_note') or '' }}",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('changes_note') or '' }}"])
        schema = PrepareSchemaOperator(task_id="prepare_schema", pool="odoo_api", dry_run="{{ params.dry_run }}",
                                       **p.args())
        start >> approve >> schema
        tails = _object_tasks(p, schema, mode="{{ params.mode }}", sample_size="{{ params.sample_size }}")
        # a full run's objects, once all landed: each watermark at the moment its extraction began
        marks = SetWatermarksOperator(task_id="set_watermarks", kind="migrate", dry_run="{{ params.dry_run }}",
                                      trigger_rule=NONE_FAILED, **p.args())
        verify = VerifyOperator(task_id="verify", pool="odoo_api", trigger_rule=NONE_FAILED,
                                check="{{ 'diff' if params.mode == 'sample' else 'reconciliation' }}",
                                objects="{{ params.objects }}", **p.args())
        approve_diff = MigrationApprovalOperator(
            task_id="approve_diff", modes=("sample",), **p.approval("sample_diff"),
            subject="{{ dag.dag_id }}: approve the sample's field-level diff",
            body="Sample run {{ run_id }} has landed and compared every field with what Odoo holds. Approve its "
                 "diff: a full run of this mapping needs it.",
            report="{{ (ti.xcom_pull(task_ids='verify') or {}).get('report') or '' }}",
            checks=["The headline: fields compared and fields that differ (0 expected).",
                    "Each differing field and record not landed, with its reason; the flagged values.",
                    "Reject if a field is wrong: fix the mapping, confirm it at the plan, sample again."])
        for t in tails:
            t >> marks
        marks >> verify >> approve_diff
    return dag


def _delta(p: _Pair) -> DAG:
    params = {
        "batch_size": Param(500, type="integer", minimum=1, maximum=5000, title="Batch size"),
        "objects": _objects(p.spec, "to sync: only their watermarks move"),
        "dry_run": Param(False, type="boolean", title="Dry run"),
        "sync_now": Param(None, type=["null", "boolean"], title="Sync now",
                          description="Read every object from its watermark to now (e.g. at go-live). Empty: yes "
                                      "when triggered by hand without a logical date, else the run's data interval; "
                                      "true/false forces it."),
        "replay_dead_letters": Param(None, type=["null", "string"], title="Replay dead letters",
                                     description="all, an object name, or the run id that dead-lettered them: re-read "
                                                 "those open dead letters from the source by id, map and load them "
                                                 "with this run (after a fix); the ones that land are resolved."),
        "reconcile": Param(None, type=["null", "boolean"], title="Reconcile",
                           description="Compare the ids alive in the source with Odoo's keys after the run (is the "
                                       "cutover complete?). Empty: yes for a sync now or a replay, no for a scheduled "
                                       "window."),
    }
    pair = p.name
    with DAG(dag_id=f"{pair}_delta", schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
             start_date=START, catchup=False, max_active_runs=1, tags=[*p.tags, "delta"], default_args=DEFAULT_ARGS,
             params=params,
             doc_md=_doc(p, "delta", f"Every 15 minutes inside the cutover window (Variables "
                         f"`{pair}_cutover_start` / `{pair}_cutover_end`): the creates, updates and deletions "
                         "(archived in Odoo) since each object's watermark (how far the source was read and "
                         "landed), never later than `data_interval_start`, up to `data_interval_end`: a failed, "
                         "skipped or paused window is caught up by the next. Triggered by hand without a logical "
                         "date (or with `sync_now`), it is a sync now: from the watermarks to now, whatever the "
                         "cutover window. Watermarks move once every object of the run has landed. A record "
                         "edited in Odoo since the last load is reported as a conflict with both values (each "
                         "object's on_conflict: source_wins or keep_odoo). Param replay_dead_letters re-reads open "
                         "dead letters by id after a fix; a sync now or a replay ends with the reconciliation: is "
                         "the cutover complete?")) as dag:
        gate = InCutoverWindowOperator(task_id="in_cutover_window", pair=p.ref, sync_now="{{ params.sync_now }}")
        start = StartRunOperator(task_id="start_run", kind="delta", **p.args())
        gate >> start
        tails = _object_tasks(p, start, mode="delta", sync_now="{{ params.sync_now }}",
                              replay_dead_letters="{{ params.replay_dead_letters }}")
        # none_failed: a quiet object's load is skipped (no batch), and its watermark moves all the same
        marks = SetWatermarksOperator(task_id="set_watermarks", kind="delta", dry_run="{{ params.dry_run }}",
                                      trigger_rule=NONE_FAILED, **p.args())
        # a sync now or a replay (or Param reconcile): the reconciliation says whether the cutover is complete
        verify = VerifyOperator(task_id="verify", pool="odoo_api", check="reconciliation", delta=True,
                                objects="{{ params.objects }}", reconcile="{{ params.reconcile }}",
                                sync_now="{{ params.sync_now }}",
                                replay_dead_letters="{{ params.replay_dead_letters }}", **p.args())
        for t in tails:
            t >> marks
        marks >> verify
    return dag


def _rollback(p: _Pair) -> DAG:
    params = {
        "run_id": Param("", type="string", minLength=1, title="Run to roll back",
                        description="The Airflow run id of the _migrate or _delta run to undo."),
        "force": Param(False, type="boolean", title="Force",
                       description="Roll back even records edited in Odoo after the run (their edits are lost)."),
        "approved_by": _approved_by(),
    }
    with DAG(dag_id=f"{p.name}_rollback", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*p.tags, "rollback"], default_args=DEFAULT_ARGS, params=params,
             doc_md=_doc(p, "rollback", "Undo one run: unlink what it created, write back what it changed, "
                         "newest first; refused if records were edited after the run, unless forced.")) as dag:
        start = StartRunOperator(task_id="start_run", kind="rollback", target_run_id="{{ params.run_id }}",
                                 **p.args())
        approve = MigrationApprovalOperator(
            task_id="approve", **p.approval("rollback"),
            subject="{{ dag.dag_id }}: approve the rollback of {{ params.run_id }}",
            body="Everything run {{ params.run_id }} created in Odoo will be deleted and what it changed "
                 "written back.{{ ' Edits made in Odoo since then will be overwritten (force).' if params.force else '' }}",
            report="{{ (ti.xcom_pull(task_ids='start_run') or {}).get('target_report') or '' }}",
            checks=["What the run did, per object (the report: its audit summary): all of it is undone.",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('undo') or '' }}",
                    "A later run that changed the same records must be rolled back first (the rollback refuses)."])
        undo = RollbackOperator(task_id="rollback", pool="odoo_api", target_run_id="{{ params.run_id }}",
                                force="{{ params.force }}", **p.args())
        start >> approve >> undo
    return dag
