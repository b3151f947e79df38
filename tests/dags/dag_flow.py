"""Helpers of the DAG flow suites (one per pair): build a pair's world (:func:`flow_world`), run a DAG under
``dag.test()`` and check what every run must leave (no mail queued, nobody notified, every record created keyed),
count keyed records, read a run's audit."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: every model a pair writes: no record of these may appear without its x_migration_key
MIGRATION_MODELS = ("res.partner", "crm.lead", "crm.team", "crm.stage", "crm.lost.reason", "mail.message",
                    "mail.activity", "calendar.event", "ir.attachment")


@contextlib.contextmanager
def airflow_world(env, dag_folder=None):
    """Set ``env`` (connections, Variables as ``AIRFLOW_*``), reset the Airflow metadata DB and yield the DagBag
    of the project's dags folder (or of ``dag_folder``: ``dag.test()`` then syncs that folder as the dags
    bundle); put the environment back after."""
    from airflow import settings

    saved = {k: os.environ.get(k) for k in env}
    saved_folder = settings.DAGS_FOLDER
    os.environ.update(env)
    try:
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        if dag_folder is not None:
            settings.DAGS_FOLDER = str(dag_folder)
        db.resetdb()
        bag = DagBag(dag_folder=str(dag_folder or ROOT / "dags"))
        assert bag.import_errors == {}
        yield bag
    finally:
        settings.DAGS_FOLDER = saved_folder
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def flow_world(private_pg, odoo_target, reports, *, pair: str, source_conn: dict[str, str],
               cutover: tuple[datetime, datetime]):
    """The world of ``pair``'s DAG flow on ``odoo_target``: a fresh state database of its own on the private cluster,
    the connections (the source's ``{env name: JSON}``, the Odoo target's, the state DB's), the pair's cutover
    window as its Variables, the reports base ``reports`` and short retry waits, an Airflow metadata DB reset.
    Yields ``{"bag", "odoo", "rpc", "hook", "state", "runs"}``; the caller adds its ``baseline``
    (:func:`last_ids`) and ``mail`` (:func:`mail_counts`) once its own setup is written to Odoo."""
    dbname = pair.replace("_to_odoo", "").replace("_", "") + "dagruns"
    env = {
        "AIRFLOW_CONN_CRM_MIGRATION_STATE": private_pg.new_database(dbname),
        **source_conn,
        "AIRFLOW_CONN_ODOO_DEFAULT": odoo_target.conn_json(),
        f"AIRFLOW_VAR_{pair.upper()}_CUTOVER_START": cutover[0].isoformat(),
        f"AIRFLOW_VAR_{pair.upper()}_CUTOVER_END": cutover[1].isoformat(),
        "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(reports),
        "CRM_MIGRATION_RETRY_DELAY_SECONDS": "1",
    }
    with airflow_world(env) as bag:
        from crm_migration.hooks.odoo import OdooHook
        from crm_migration.hooks.state import MigrationStateHook

        state = MigrationStateHook()
        yield {"bag": bag, "odoo": odoo_target, "rpc": odoo_target.rpc(), "hook": OdooHook(), "state": state,
               "runs": {}}


def last_ids(rpc):
    """``{model: highest id}`` of every migration model (archived included): the baseline ``run`` checks from."""
    # a domain on id: ir.attachment then counts the attachments of binary fields too (Odoo hides them otherwise)
    return {m: (rpc(m, "search", [("id", ">", 0)], order="id desc", limit=1, context={"active_test": False})
                or [0])[0] for m in MIGRATION_MODELS}


def mail_counts(rpc):
    return (rpc("mail.mail", "search_count", [], context={"active_test": False}),
            rpc("mail.message", "search_count", [("message_type", "=", "user_notification")]))


def state_of(dr_or_ti):
    return str(getattr(dr_or_ti.state, "value", dr_or_ti.state))


def run(world, dag_id, **kw):
    """``dag.test(**kw)`` of ``dag_id``, which must succeed; then no mail queued, nobody notified, and every
    record created since the world began (``world["baseline"]``) keyed. Returns the run id."""
    dr = world["bag"].dags[dag_id].test(**kw)
    bad = {ti.task_id: state_of(ti) for ti in dr.get_task_instances() if state_of(ti) not in ("success", "skipped")}
    assert state_of(dr) == "success", bad
    assert mail_counts(world["rpc"]) == world["mail"], f"{dag_id} queued mail or notified a user"
    rpc = world["rpc"]
    for model in MIGRATION_MODELS:
        if "x_migration_key" not in rpc(model, "fields_get", [], attributes=["type"]):
            continue
        unkeyed = rpc(model, "search_read", [("id", ">", world["baseline"][model]), ("x_migration_key", "=", False)],
                      fields=["display_name"], context={"active_test": False}, limit=5)
        assert not unkeyed, f"{dag_id} left {model} records without x_migration_key: {unkeyed}"
    return dr.run_id


def keyed(world, model, prefix):
    return world["hook"].call(model, "search_count", [[("x_migration_key", "=like", prefix + "%")]],
                              {"context": {"active_test": False}})


def audit(world, run_id):
    """``{action: count}`` of the run's audit log."""
    rows = world["state"].get_records("SELECT action, count(*) FROM crm_migration.audit_log WHERE run_id = %s "
                                      "GROUP BY action", parameters=(run_id,))
    return dict(rows)


def refused(world, dag_id, **kw):
    """``dag.test(**kw)`` of ``dag_id``'s first task (``start_run``: the rest of the run would never start), which
    must fail before anything moves; returns the refusal the run recorded (what the task's error says)."""
    dag = world["bag"].dags[dag_id].partial_subset(task_ids=["start_run"], include_downstream=False,
                                                  include_upstream=False)
    dr = dag.test(**kw)
    (ti,) = dr.get_task_instances()
    assert state_of(dr) == "failed" and state_of(ti) == "failed", state_of(ti)
    row = world["state"].get_run(dr.run_id)
    assert row["status"] == "refused", row
    return row["stats"]["refused"]


def report_table(uri, title):
    """The rows of the table ``title`` of the report at ``uri`` (its CSV next to the page), as dicts."""
    import csv
    import re

    from airflow.sdk import ObjectStoragePath

    page = ObjectStoragePath(uri)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_").lower()
    (path,) = [p for p in page.parent.iterdir() if p.name.endswith(f"_{slug}.csv")]
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
