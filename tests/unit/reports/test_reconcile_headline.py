"""Dead letters are not "ok": the reconciliation's headline names the objects with open dead letters as needing
action, and the page lists their reasons, grouped and counted."""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath

from crm_migration.reports.reconcile import write_reconciliation_report


def _row(name: str, *, dead: int = 0, status: str = "ok", reasons: list | None = None) -> dict:
    return {"object": name, "model": "res.partner", "scope": name, "staged": 10, "landed": 10 - dead,
            "crosswalk": 10 - dead, "odoo": 10 - dead, "dead_letters": dead, "unaccounted": 0, "moved": 0,
            "compared": 10 - dead, "differing": 0, "missing_in_odoo": 0, "checksum_crosswalk": "a" * 64,
            "checksum_odoo": "a" * 64, "examples": [], "problems": [] if status == "ok" else ["checksum differs"],
            "status": status, "seconds": 0.1, "dead_letters_counted": dead, "dead_letter_share": dead / 10,
            "dead_letter_limit": 0.5, "dead_letter_reasons": reasons or []}


def _page(rows, tmp_path) -> str:
    return ObjectStoragePath(str(write_reconciliation_report(rows, pair="p", run_id="r", root=tmp_path.as_uri()))
                             ).read_text(encoding="utf-8")


def test_open_dead_letters_put_their_object_in_the_headline_as_needing_action(tmp_path):
    rows = [_row("Account"), _row("Contact", dead=2, reasons=[["email: Odoo refused it", 2, True]])]
    page = _page(rows, tmp_path)
    head = page[page.index("<h1"):page.index("Per object")]
    assert "1 of 2 objects need action: open dead letters in Contact" in head
    assert "All 2 objects reconcile" not in page
    assert "Contact: 2 dead letters need action" in head and "2 × email: Odoo refused it" in head
    assert "needs action (2 open dead letters)" in page


def test_without_dead_letters_all_reconcile_and_a_mismatch_still_comes_first(tmp_path):
    assert "All 2 objects reconcile" in _page([_row("Account"), _row("Contact")], tmp_path / "a")
    page = _page([_row("Account", status="mismatch"), _row("Contact", dead=1)], tmp_path / "b")
    assert "1 of 2 objects do not reconcile: Account. 1 more need action: open dead letters in Contact." in page
