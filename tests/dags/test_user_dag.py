"""A user's own DAG built from the operators, on connections of its own, under dag.test().

The DAG (``USER_DAG``, a file in a dags folder of its own) migrates the Link app tenant's companies (their
hierarchy linked after the load, batches of the DAG's own Param) through ``my_link_app``, ``my_odoo`` and ``my_state``; the contract's default connections point nowhere, so a task
reaching for one fails. A second DAG rolls the run back. One module-scoped world per Odoo target (the sandbox,
a real Odoo 17): the run lands every company, keyed, the reconciliation adds up, and the rollback leaves none.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from dag_flow import airflow_world, keyed, last_ids, mail_counts, run

pytestmark = pytest.mark.integration
PAIR = "link_app_to_odoo"
NOWHERE = "http://127.0.0.1:9"          # nothing listens there: a task using a default connection fails

USER_DAG = textwrap.dedent('''
    from airflow.sdk import DAG, Param

    from crm_migration.operators.migration import (
        ExtractObjectOperator, LinkOperator, LoadBatchOperator, PrepareSchemaOperator, RollbackOperator,
        SetWatermarksOperator, StartRunOperator, VerifyOperator)

    CONNS = {"source_conn_id": "my_link_app", "odoo_conn_id": "my_odoo", "state_conn_id": "my_state"}
    PAIR = "link_app_to_odoo"

    with DAG("my_companies_to_odoo", schedule=None, params={"batch_size": Param(25, type="integer")}):
        start = StartRunOperator(task_id="start_run", pair=PAIR, kind="migrate", mode="full", approved_by="ci",
                                 **CONNS)
        schema = PrepareSchemaOperator(task_id="prepare_schema", pair=PAIR, **CONNS)
        extract = ExtractObjectOperator(task_id="extract_companies", pair=PAIR, source_object="companies",
                                        batch_size="{{ params.batch_size }}", **CONNS)
        load = LoadBatchOperator.partial(task_id="load_companies", pair=PAIR, source_object="companies", **CONNS
                                         ).expand(batch=extract.output)
        link = LinkOperator(task_id="link_companies", pair=PAIR, source_object="companies", **CONNS)
        marks = SetWatermarksOperator(task_id="set_watermarks", pair=PAIR, kind="migrate", **CONNS)
        verify = VerifyOperator(task_id="verify", pair=PAIR, check="reconciliation", objects=["companies"], **CONNS)
        start >> schema >> extract >> load >> link >> marks >> verify

    with DAG("my_rollback", schedule=None, params={"run_id": Param("", type="string")}):
        StartRunOperator(task_id="start_run", pair=PAIR, kind="rollback", target_run_id="{{ params.run_id }}",
                         **CONNS) >> RollbackOperator(task_id="rollback", pair=PAIR,
                                                      target_run_id="{{ params.run_id }}", **CONNS)
''')


#: the sandbox, then a real Odoo 17 database (tests/conftest.py's ``odoo_target``)
ODOO_TARGETS = ("sandbox", "odoo17")


@pytest.fixture(scope="module")
def airflow(private_pg, tmp_path_factory):
    """This module's Airflow (one metadata DB for both targets) with the user's DAG file, and the Link app tenant;
    the contract's connection ids exist but lead nowhere: only the DAG's own connections can make it work."""
    from crm_sandbox.link_app.server import serve as link_serve

    dags = tmp_path_factory.mktemp("user_dags")
    (dags / "my_companies_to_odoo.py").write_text(USER_DAG, encoding="utf-8")
    link = link_serve(port=0, scale=1, seed=7)
    tenant = link.state
    env = {
        "AIRFLOW_CONN_MY_STATE": private_pg.airflow_conn_for("userdag"),     # made afresh per target by world
        "AIRFLOW_CONN_MY_LINK_APP": json.dumps(tenant.airflow_conn(link.url)),
        "AIRFLOW_CONN_CRM_MIGRATION_STATE": private_pg.airflow_conn_for("no_such_database"),
        "AIRFLOW_CONN_LINK_APP_DEFAULT": json.dumps({**tenant.airflow_conn(link.url), "host": NOWHERE}),
        "AIRFLOW_CONN_ODOO_DEFAULT": json.dumps({"conn_type": "odoo", "host": NOWHERE, "schema": "nowhere",
                                                 "login": "admin", "password": "admin"}),
        "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(tmp_path_factory.mktemp("reports")),
        "CRM_MIGRATION_RETRY_DELAY_SECONDS": "1",
    }
    try:
        with airflow_world(env, dag_folder=dags) as bag:
            yield {"bag": bag, "tenant": tenant}
    finally:
        link.stop()


@pytest.fixture(scope="module")
def world(airflow, private_pg, odoo_target):
    """One target's world: a fresh state DB behind ``my_state``, ``my_odoo`` on the target."""
    private_pg.new_database("userdag")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_MY_ODOO", odoo_target.conn_json())
        from crm_migration.hooks.odoo import OdooHook
        from crm_migration.hooks.state import MigrationStateHook

        rpc = odoo_target.rpc()
        state = MigrationStateHook(postgres_conn_id="my_state")
        yield {**airflow, "rpc": rpc, "hook": OdooHook("my_odoo"), "state": state, "baseline": last_ids(rpc),
               "mail": mail_counts(rpc), "runs": {}}
        state.close()


def test_a_users_dag_migrates_on_its_own_connections(world):
    tenant = world["tenant"]
    rid = run(world, "my_companies_to_odoo")
    row = world["state"].get_run(rid)           # recorded in my_state
    assert (row["pair"], row["kind"], row["mode"], row["status"]) == (PAIR, "migrate", "full", "success")
    assert row["stats"]["mismatches"] == 0 and row["stats"]["objects"] == 1, row["stats"]
    assert keyed(world, "res.partner", "link_app:companies:") == len(tenant.tables["companies"])
    assert keyed(world, "res.partner", "link_app:contacts:") == 0
    # the hierarchy, written by the link task once every company had landed
    chain = tenant.hard_cases["company_hierarchy"]
    ids = world["state"].odoo_ids(PAIR, "companies", chain)
    linked = {r["id"]: (r["parent_id"] or [None])[0] for r in world["hook"].read("res.partner", list(ids.values()),
                                                                                  ["parent_id"])}
    assert [linked[ids[c]] for c in chain] == [ids.get(tenant.tables["companies"][c]["parent_company_id"])
                                               for c in chain]
    assert any(linked.values())
    # batches of the DAG's own Param: the companies came in several mapped load tasks
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        loads = session.scalar(select(func.count()).select_from(TaskInstance).where(
            TaskInstance.run_id == rid, TaskInstance.task_id == "load_companies"))
    assert loads == -(-len(tenant.tables["companies"]) // 25) > 1
    world["runs"]["full"] = rid


def test_its_rollback_takes_back_what_it_created(world):
    rid = world["runs"]["full"]
    run(world, "my_rollback", run_conf={"run_id": rid})
    assert keyed(world, "res.partner", "link_app:companies:") == 0
