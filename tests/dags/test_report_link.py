"""A task that returns a report's URI gets a "Report" link to it in the on-call view (under dag.test())."""

from __future__ import annotations

import textwrap

DAG_FILE = textwrap.dedent('''
    from airflow.sdk import DAG, BaseOperator

    from crm_migration.operators.links import ReportLink
    from crm_migration.reports.writer import Report


    class WriteReport(BaseOperator):
        operator_extra_links = (ReportLink(),)

        def execute(self, context):
            report = Report(title="Audit summary", pair="apto_to_odoo", run_id=context["run_id"], kind="audit",
                            headline="Nothing to do.")
            return {"report": str(report.write()), "objects": 0}


    with DAG("crm_report_link", schedule=None) as dag:
        WriteReport(task_id="write_report")
''')


def test_a_task_returning_a_report_gets_a_link_to_it_in_the_on_call_view(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", (tmp_path / "reports").as_uri())
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "crm_report_link.py").write_text(DAG_FILE)
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils import db
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # dag.test() syncs the dags-folder bundle (settings.DAGS_FOLDER, read once when Airflow loads): point it here
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path / "dags"))
    db.resetdb()
    bag = DagBag(dag_folder=str(tmp_path / "dags"))
    assert bag.import_errors == {}
    dr = bag.dags["crm_report_link"].test()
    with create_session() as session:
        rows = dict(session.execute(select(XComModel.key, XComModel.value).where(
            XComModel.dag_id == "crm_report_link", XComModel.run_id == dr.run_id)).all())
    values = {k: XComModel.deserialize_value(type("Row", (), {"value": v})()) for k, v in rows.items()}
    safe_run = "".join(c if c.isalnum() or c in "_.-" else "_" for c in dr.run_id).strip("_")
    assert values["return_value"]["report"] == (tmp_path / "reports" / "apto_to_odoo" / safe_run / "audit.html").as_uri()
    assert values["_link_ReportLink"] == f"/crm-migration/reports/apto_to_odoo/{safe_run}/audit.html"
