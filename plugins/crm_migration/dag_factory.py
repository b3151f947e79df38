"""Build a pair's four DAGs from its mapping file: ``<pair>_plan``, ``_migrate``, ``_delta``, ``_rollback``.

Parsing reads the pair file and nothing else (no connection, no Variable). The migrate and delta DAGs
get one ``extract_<object>`` task per object and one ``load_<object>`` task mapped over its batches
(never over records), in the mapping's dependency order, with the source API's pool on extraction and
``odoo_api`` on everything that writes to Odoo.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from crm_migration.mapping.spec import load_pair
from crm_migration.operators import tasks
from crm_migration.operators.approval import MigrationApprovalOperator, approval_kwargs

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


def _doc(pair: str, kind: str, text: str) -> str:
    return f"### {pair}_{kind}\n\n{text}\n\nBuilt from `include/pairs/{pair}.yaml` by `crm_migration.dag_factory`."


def _approved_by(what: str = "confirms the mapping in force and approves this run") -> Param:
    return Param(None, type=["null", "string"], title="Approved by",
                 description=f"A person's name: {what} without waiting at the approval step (for scripted runs; "
                             "recorded in the state DB like a person's approval, as given by this Param).")


def build_pair_dags(pair: str) -> dict[str, DAG]:
    """Return ``{dag_id: DAG}`` for the pair (``globals().update(build_pair_dags("apto_to_odoo"))``)."""
    spec = load_pair(pair)
    pool = tasks.source_pool(spec.source)
    tags = ["crm-migration", pair, spec.source, "odoo"]
    return {d.dag_id: d for d in (_plan(pair, spec, tags, pool), _migrate(pair, spec, tags, pool),
                                  _delta(pair, spec, tags, pool), _rollback(pair, spec, tags))}


def _plan(pair: str, spec: Any, tags: list[str], pool: str) -> DAG:
    params = {"approved_by": _approved_by("confirms the mapping in force")}
    with DAG(dag_id=f"{pair}_plan", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*tags, "plan"], default_args=DEFAULT_ARGS, params=params,
             doc_md=_doc(pair, "plan", "Inventory of the source and the target, owner resolution, schema plan, "
                         "cycles and bad data, and the automation export. Writes an HTML report and CSVs, then "
                         "waits at `confirm_mapping`: approve the mapping in force (or edit the YAML, then "
                         f"approve); `{pair}_migrate` refuses to start on a mapping nobody confirmed.")) as dag:
        plan = PythonOperator(task_id="plan", python_callable=tasks.plan, op_kwargs={"pair": pair}, pool=pool)
        confirm = MigrationApprovalOperator(
            task_id="confirm_mapping", pair=pair, what="mapping", **approval_kwargs(spec, "mapping"),
            subject="{{ dag.dag_id }}: confirm the mapping in force",
            body="The plan of run {{ run_id }} is written. Approve to confirm the mapping in force, or edit the "
                 "YAML and approve: records move only with a confirmed mapping.",
            report="{{ (ti.xcom_pull(task_ids='plan') or {}).get('report') or '' }}",
            checks=["Blocking problems first (fields the target lacks), then the owners going to the fallback user.",
                    "Each object's field map and the custom fields to create (the proposal and its diff against "
                    "the mapping in force, where the plan shows one).",
                    "Values outside a picklist's options and the records flagged as bad data."])
        plan >> confirm
    return dag


def _object_tasks(pair: str, spec: Any, pool: str, after: Any, *, delta: bool) -> list[Any]:
    """extract → load (mapped over batches) → link, per loadable object, in dependency order.

    The chatter objects (:meth:`PairSpec.timeline`) are extracted each on its own, then cut into one
    timeline (``order_chatter``) and loaded by ``load_chatter``, mapped over its batches, oldest first.
    """
    last: dict[str, Any] = {}
    timeline = {o.name for o in spec.timeline()}
    extracts: list[Any] = []
    first_read: dict[tuple[str, str], Any] = {}     # objects reading one stream: the first reads it for all
    for obj in spec.loadable():
        slug = _slug(obj.name)
        ex = PythonOperator(task_id=f"extract_{slug}", python_callable=tasks.extract, pool=pool,
                            op_kwargs={"pair": pair, "name": obj.name, "delta": delta}, trigger_rule=NONE_FAILED)
        stream = (obj.source_object, repr(sorted(dict(obj.stream).items())))
        if stream in first_read:
            first_read[stream] >> ex
        else:
            first_read[stream] = ex
        needs = [*obj.depends_on, *(obj.attach.objects if obj.attach else ()),
                 *(r for fs in obj.fields.values() for r in fs.ref if r != obj.name)]
        if obj.name in timeline:
            for d in list({id(last[d]): last[d] for d in needs if d in last}.values()) or [after]:
                d >> ex
            extracts.append(ex)
            continue
        ld = task(tasks.load, task_id=f"load_{slug}", pool="odoo_api", trigger_rule=NONE_FAILED
                  ).partial(pair=pair, name=obj.name).expand(batch=ex.output)
        # what it refers to, and what its records hang on (files and notes need their parents' ids)
        deps = list({id(last[d]): last[d] for d in needs if d in last}.values()) or [after]
        for d in deps:
            d >> ex
        ex >> ld
        tail = ld
        if any(obj.name in fs.ref for fs in obj.fields.values()):
            lk = PythonOperator(task_id=f"link_{slug}", python_callable=tasks.link, pool="odoo_api",
                                op_kwargs={"pair": pair, "name": obj.name}, trigger_rule=NONE_FAILED)
            ld >> lk
            tail = lk
        last[obj.name] = tail
    if extracts:
        order = PythonOperator(task_id=f"order_{spec.TIMELINE}", python_callable=tasks.order_timeline,
                               op_kwargs={"pair": pair}, trigger_rule=NONE_FAILED)
        load = task(tasks.load_timeline, task_id=f"load_{spec.TIMELINE}", pool="odoo_api", trigger_rule=NONE_FAILED
                    ).partial(pair=pair).expand(batch=order.output)
        for ex in extracts:
            ex >> order
        order >> load
        for name in timeline:
            last[name] = load
    return list({id(t): t for t in last.values()}.values())


def _migrate(pair: str, spec: Any, tags: list[str], pool: str) -> DAG:
    params = {
        "mode": Param("sample", enum=["sample", "full"], title="Mode",
                      description="sample: a representative slice and a field-level diff; full: everything."),
        "sample_size": Param(200, type="integer", minimum=1, title="Sample size (records per object)"),
        "objects": Param("all", type=["string", "array"], title="Objects",
                         description="all, or a comma-separated list / array of object names of the mapping"),
        "batch_size": Param(500, type="integer", minimum=1, maximum=5000, title="Batch size"),
        "dry_run": Param(False, type="boolean", title="Dry run (nothing is written to Odoo)"),
        "approved_by": _approved_by(),
    }
    with DAG(dag_id=f"{pair}_migrate", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*tags, "migrate"], default_args=DEFAULT_ARGS, params=params, render_template_as_native_obj=False,
             doc_md=_doc(pair, "migrate", "Sample or full migration: preflight, approval, schema, then per object "
                         "extract → load (mapped over batches) → link, then the field-level diff (sample) or "
                         "the reconciliation (full).")) as dag:
        start = PythonOperator(task_id="start_run", python_callable=tasks.start_run,
                               op_kwargs={"pair": pair, "kind": "migrate"})
        approve = MigrationApprovalOperator(
            task_id="approve", pair=pair, what="full_run", modes=("full",), **approval_kwargs(spec, "full_run"),
            subject="{{ dag.dag_id }}: approve the full run",
            body="Run {{ run_id }} (full) waits for approval before it writes every record of the pair to Odoo.",
            report="{{ (ti.xcom_pull(task_ids='start_run') or {}).get('sample_report') or '' }}",
            checks=["The sample's field-level diff (the report): every field holds what the source has.",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('sample_note') or '' }}",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('changes_note') or '' }}"])
        schema = PythonOperator(task_id="prepare_schema", python_callable=tasks.prepare_schema,
                                op_kwargs={"pair": pair}, pool="odoo_api")
        start >> approve >> schema
        tails = _object_tasks(pair, spec, pool, schema, delta=False)
        # a full run's objects, once all landed: each watermark at the moment its extraction began
        marks = PythonOperator(task_id="set_watermarks", python_callable=tasks.set_watermarks,
                               op_kwargs={"pair": pair, "kind": "migrate"}, trigger_rule=NONE_FAILED)
        verify = PythonOperator(task_id="verify", python_callable=tasks.verify, op_kwargs={"pair": pair},
                                pool="odoo_api", trigger_rule=NONE_FAILED)
        approve_diff = MigrationApprovalOperator(
            task_id="approve_diff", pair=pair, what="sample_diff", modes=("sample",),
            **approval_kwargs(spec, "sample_diff"),
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


def _delta(pair: str, spec: Any, tags: list[str], pool: str) -> DAG:
    params = {
        "batch_size": Param(500, type="integer", minimum=1, maximum=5000, title="Batch size"),
        "objects": Param("all", type=["string", "array"], title="Objects",
                         description="all, or a comma-separated list / array of object names of the mapping: only "
                                     "their watermarks move"),
        "dry_run": Param(False, type="boolean", title="Dry run"),
        "sync_now": Param(None, type=["null", "boolean"], title="Sync now",
                          description="Read every object from its watermark to now (e.g. at go-live). Empty: yes "
                                      "when triggered by hand without a logical date, else the run's data interval; "
                                      "true/false forces it."),
    }
    with DAG(dag_id=f"{pair}_delta", schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
             start_date=START, catchup=False, max_active_runs=1, tags=[*tags, "delta"], default_args=DEFAULT_ARGS,
             params=params,
             doc_md=_doc(pair, "delta", f"Every 15 minutes inside the cutover window (Variables "
                         f"`{pair}_cutover_start` / `{pair}_cutover_end`): the creates, updates and deletions "
                         "(archived in Odoo) since each object's watermark (how far the source was read and "
                         "landed), never later than `data_interval_start`, up to `data_interval_end`: a failed, "
                         "skipped or paused window is caught up by the next. Triggered by hand without a logical "
                         "date (or with `sync_now`), it is a sync now: from the watermarks to now, whatever the "
                         "cutover window. Watermarks move once every object of the run has landed. A record "
                         "edited in Odoo since the last load is reported as a conflict, not overwritten.")) as dag:
        gate = ShortCircuitOperator(task_id="in_cutover_window", python_callable=tasks.in_cutover_window,
                                    op_kwargs={"pair": pair}, ignore_downstream_trigger_rules=True)
        start = PythonOperator(task_id="start_run", python_callable=tasks.start_run,
                               op_kwargs={"pair": pair, "kind": "delta"})
        gate >> start
        tails = _object_tasks(pair, spec, pool, start, delta=True)
        # none_failed: a quiet object's load is skipped (no batch), and its watermark moves all the same
        marks = PythonOperator(task_id="set_watermarks", python_callable=tasks.set_watermarks,
                               op_kwargs={"pair": pair, "kind": "delta"}, trigger_rule=NONE_FAILED)
        for t in tails:
            t >> marks
    return dag


def _rollback(pair: str, spec: Any, tags: list[str]) -> DAG:
    params = {
        "run_id": Param("", type="string", minLength=1, title="Run to roll back",
                        description="The Airflow run id of the _migrate or _delta run to undo."),
        "force": Param(False, type="boolean", title="Force",
                       description="Roll back even records edited in Odoo after the run (their edits are lost)."),
        "approved_by": _approved_by(),
    }
    with DAG(dag_id=f"{pair}_rollback", schedule=None, start_date=START, catchup=False, max_active_runs=1,
             tags=[*tags, "rollback"], default_args=DEFAULT_ARGS, params=params,
             doc_md=_doc(pair, "rollback", "Undo one run: unlink what it created, write back what it changed, "
                         "newest first; refused if records were edited after the run, unless forced.")) as dag:
        start = PythonOperator(task_id="start_run", python_callable=tasks.start_run,
                               op_kwargs={"pair": pair, "kind": "rollback"})
        approve = MigrationApprovalOperator(
            task_id="approve", pair=pair, what="rollback", **approval_kwargs(spec, "rollback"),
            subject="{{ dag.dag_id }}: approve the rollback of {{ params.run_id }}",
            body="Everything run {{ params.run_id }} created in Odoo will be deleted and what it changed "
                 "written back.{{ ' Edits made in Odoo since then will be overwritten (force).' if params.force else '' }}",
            report="{{ (ti.xcom_pull(task_ids='start_run') or {}).get('target_report') or '' }}",
            checks=["What the run did, per object (the report: its audit summary): all of it is undone.",
                    "{{ (ti.xcom_pull(task_ids='start_run') or {}).get('undo') or '' }}",
                    "A later run that changed the same records must be rolled back first (the rollback refuses)."])
        undo = PythonOperator(task_id="rollback", python_callable=tasks.rollback, op_kwargs={"pair": pair},
                              pool="odoo_api")
        start >> approve >> undo
    return dag
