"""``<pair>_plan`` of both pairs under dag.test(): the task builds the pair's source adapter from the pair's source
(Apto org, Link app tenant, both sandboxes over HTTP), audits the Odoo sandbox and writes the plan report; nothing
is written to Odoo. One body for both pairs; the plan's findings on each target are the integration suite's
(tests/integration/plan)."""

from __future__ import annotations

import json

import pytest
from dag_flow import airflow_world

pytestmark = pytest.mark.integration
WATCHED = ("res.partner", "res.users", "crm.team", "crm.stage", "crm.lost.reason", "crm.lead", "ir.model.fields")


@pytest.fixture(scope="module")
def world(make_odoo_target, tmp_path_factory, private_pg):
    from crm_sandbox.apto.server import serve as serve_apto
    from crm_sandbox.link_app.server import serve as serve_link

    odoo, close = make_odoo_target("sandbox", "t_plan_dags")
    apto, link = serve_apto(port=0, scale=1, seed=7), serve_link(port=0, scale=1, seed=7)
    reports = tmp_path_factory.mktemp("reports")
    env = {"AIRFLOW_CONN_CRM_MIGRATION_STATE": private_pg.new_database("plandags"),
           "AIRFLOW_CONN_APTO_DEFAULT": json.dumps(apto.state.airflow_conn(apto.url)),
           "AIRFLOW_CONN_LINK_APP_DEFAULT": json.dumps(link.state.airflow_conn(link.url)),
           "AIRFLOW_CONN_ODOO_DEFAULT": odoo.conn_json(), "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(reports)}
    try:
        with airflow_world(env) as bag:
            from crm_migration.hooks.state import MigrationStateHook

            yield {"bag": bag, "reports": reports, "rpc": odoo.rpc(), "state": MigrationStateHook(),
                   "sources": {"apto_to_odoo": apto.state, "link_app_to_odoo": link.state}}
    finally:
        apto.stop()
        link.stop()
        close()


def _odoo_state(rpc) -> dict[str, int]:
    return {m: rpc(m, "search_count", [], context={"active_test": False}) for m in WATCHED}


@pytest.mark.parametrize("pair", ["apto_to_odoo", "link_app_to_odoo"])
def test_plan_dag_writes_the_report_and_nothing_to_odoo_then_the_mapping_is_confirmed(world, pair):
    from crm_migration.mapping.spec import read_pair_file

    before = _odoo_state(world["rpc"])
    world["sources"][pair].reset_stats()
    dr = world["bag"].dags[f"{pair}_plan"].test(run_conf={"approved_by": "Grace (scripted)"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert str(getattr(dr.state, "value", dr.state)) == "success", states
    assert states == {"plan": "success", "confirm_mapping": "success"}
    (html,) = (world["reports"] / pair).glob("*/plan.html")          # the run's report folder (run id made safe)
    folder = html.parent
    text = (folder / "plan.html").read_text(encoding="utf-8")
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    assert plan["pair"] == pair and plan["source"] == pair.split("_to_")[0]
    assert "1 cycle will be cut" in text and "No blocking problem" in text
    assert f"This plan cost {len(plan['source_requests'])} " in text
    assert len(plan["source_requests"]) == world["sources"][pair].get_stats()["total"]
    assert (folder / "automation_reference.json").exists()
    assert _odoo_state(world["rpc"]) == before
    # the confirm step, answered headlessly: the mapping in force is confirmed, with a snapshot of it, and the
    # step pointed at the plan report
    mf = read_pair_file(pair)
    conf = world["state"].mapping_confirmation(pair, mf.sha256)
    assert (conf["confirmed_by"], conf["how"], conf["run_id"]) == ("Grace (scripted)", "approved_by", dr.run_id)
    assert conf["mapping_text"] == mf.text and conf["report"] == html.as_uri()
    (decision,) = world["state"].approvals(dr.run_id)
    assert (decision["what"], decision["decision"], decision["task_id"]) == ("mapping", "approved", "confirm_mapping")
