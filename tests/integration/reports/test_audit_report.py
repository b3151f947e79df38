"""The per-run audit summary report, from a real state DB: counts per object and the dead letters."""

from __future__ import annotations

import csv
import io

import pytest

from crm_migration.hooks.state import MigrationStateHook
from crm_migration.reports.audit import audit_lines, write_audit_report

pytestmark = pytest.mark.integration


def test_the_audit_summary_counts_per_object_and_lists_the_dead_letters(state_with_runs, tmp_path):
    run_id = state_with_runs["runs"][1][0]
    state = MigrationStateHook()
    counts = state.run_counts([run_id])
    assert audit_lines(counts) == [
        "Account: 2 source records read, 1 updated, 1 conflicts",
        "Contact: 3 source records read, 2 created, 1 flagged, 1 dead letters, 1 dead letters open"]
    path = write_audit_report(state, pair="apto_to_odoo", run_id=run_id, root=f"file://{tmp_path}")
    state.close()
    page = path.read_text(encoding="utf-8")
    assert "2 created, 1 updated, 1 flagged, 1 dead letter(s) over 2 object(s)." in page
    assert page.index("Needs action") < page.index("1 record(s) did not land") < page.index("<table>")
    assert "mode full, status success, approved by Jane Doe" in page
    assert "<script>" not in page and "&lt;script&gt;alert(&#34;dead&#34;)&lt;/script&gt;" in page
    (per_object,) = [p for p in path.parent.iterdir() if p.name == "audit_01_per_object.csv"]
    rows = {r["object"]: r for r in csv.DictReader(io.StringIO(per_object.read_text(encoding="utf-8")))}
    assert (rows["Contact"]["created"], rows["Contact"]["dead letters"], rows["Account"]["conflicts"]) == ("2", "1", "1")
