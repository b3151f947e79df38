"""Reports go through Airflow's ObjectStoragePath under the configured base, rendered with autoescape,
with no secret in them."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from airflow.sdk import ObjectStoragePath

from crm_migration.reports.diff import write_diff_report
from crm_migration.reports.rollback import write_rollback_report
from crm_migration.reports.writer import Report, reports_base_uri

ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _diff_rows(value: str) -> list[dict]:
    base = {"object": "Contact", "model": "res.partner", "source_id": "003A", "odoo_id": 7, "note": ""}
    return [{**base, "kind": "field", "field": "name", "source": value, "sent": value, "odoo": "Jane", "match": False},
            {**base, "kind": "field", "field": "email", "source": "j@x.io", "sent": "j@x.io", "odoo": "j@x.io",
             "match": True},
            {**base, "source_id": "003B", "kind": "dead_letter", "field": "email", "source": None, "sent": None,
             "odoo": None, "match": False, "note": "dead letter: email: Odoo refused it"}]


def test_the_default_base_is_a_local_folder_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert reports_base_uri() == (tmp_path / "crm_migration_reports").as_uri()
    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", str(tmp_path / "elsewhere"))
    assert reports_base_uri() == (tmp_path / "elsewhere").as_uri()         # a plain path becomes file://


def test_a_file_base_gets_the_report_and_its_csvs_and_the_uri_says_where(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", (tmp_path / "reports").as_uri())
    path = write_diff_report(_diff_rows("Jane"), pair="apto_to_odoo", run_id="manual__2026-12-06T08:00:00+00:00")
    uri = str(path)
    assert uri == (tmp_path / "reports" / "apto_to_odoo" / "manual__2026-12-06T08_00_00_00_00" / "diff.html").as_uri()
    page = ObjectStoragePath(uri).read_text(encoding="utf-8")
    # headline first, then what needs action, then the tables
    assert page.index("1 difference to review.") < page.index("Needs action") < page.index("<table>")
    assert "1 record did not land (dead letters)" in page and "Odoo refused it" in page
    csvs = sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".csv"))
    assert csvs[0] == "diff_01_differences.csv" and len(csvs) == 6
    assert f'href="{csvs[0]}"' in page                                      # linked from the page


def test_a_memory_base_works_like_any_object_store():
    base = f"memory://reports-{uuid.uuid4().hex[:8]}/crm"
    path = write_rollback_report({"run_id": "manual__1", "status": "rolled_back", "unlinked": {"res.partner": 3},
                                  "restored": {}, "recreated": {}, "already_gone": {}, "refused": [],
                                  "odoo_calls": 4, "seconds": 0.5},
                                 pair="apto_to_odoo", rollback_run_id="manual__rb", root=base)
    assert str(path) == f"{base}/apto_to_odoo/manual__rb/rollback.html"
    page = ObjectStoragePath(str(path)).read_text(encoding="utf-8")
    assert "Rollback of manual__1" in page and "res.partner" in page
    (table,) = [p for p in ObjectStoragePath(f"{base}/apto_to_odoo/manual__rb").iterdir()
                if p.name.startswith("rollback_01")]
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert rows[0]["model"] == "res.partner" and rows[0]["removed (created by the run)"] == "3"


def test_source_values_are_escaped_not_run(tmp_path):
    path = write_diff_report(_diff_rows(ATTACK), pair="apto_to_odoo", run_id=f"manual__{ATTACK}", root=tmp_path)
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page       # shown as text, in the table
    assert "<script" not in path.parent.name                                 # the run id is made safe for a path


@pytest.mark.parametrize("where", ["headline", "action", "cell"])
def test_a_secret_the_task_read_never_reaches_a_report(tmp_path, where):
    from airflow.sdk.log import mask_secret

    secret = f"tok-{uuid.uuid4().hex}"
    mask_secret(secret)                      # what Airflow does with every connection password a task reads
    report = Report(title="Audit summary", pair="link_app_to_odoo", run_id="manual__1", kind="audit")
    text = f"GET https://api.example/contacts?token={secret} answered 500"
    if where == "headline":
        report.headline = text
    elif where == "action":
        report.actions.append(text)
    else:
        report.add("Dead letters", [{"source id": "c1", "reason": text}])
    path = report.write(tmp_path)
    for f in path.parent.iterdir():
        content = f.read_text(encoding="utf-8")
        assert secret not in content, f.name
    assert "token=***" in path.read_text(encoding="utf-8")
