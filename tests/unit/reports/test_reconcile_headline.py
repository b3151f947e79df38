"""Dead letters are not "ok": the reconciliation's headline names the objects with open dead letters as needing
action, and the page lists their reasons, grouped and counted."""

from __future__ import annotations

from airflow.sdk import ObjectStoragePath

from crm_migration.reports.reconcile import write_reconciliation_report


def _row(name: str, *, dead: int = 0, status: str = "ok", reasons: list | None = None,
         model: str = "res.partner") -> dict:
    return {"object": name, "model": model, "scope": name, "staged": 10, "landed": 10 - dead,
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


def _checked(row: dict, **counts) -> dict:
    c = {"checked": True, "note": "", "source_alive": 10, "odoo": 10, "odoo_active": 10, "missing": [],
         "missing_count": 0, "dead_lettered": 0, "pending": 0, "extra": [], "extra_count": 0, "extra_kept": 0,
         "changed_in_source": [], "changed_count": 0, "duplicates": 0, **counts}
    return {**row, "completeness": c, "differences": []}


def test_the_final_reconciliation_says_in_one_line_whether_the_cutover_is_complete(tmp_path):
    from crm_migration.reports.reconcile import cutover_line

    done = [_checked(_row("Account")), _checked(_row("Note", model="mail.message"), extra_count=2, extra_kept=2)]
    assert cutover_line(done).startswith("Cutover complete: all 20 records alive in the source are in Odoo")
    assert "2 deleted in the source stay on models Odoo cannot archive" in cutover_line(done)
    assert cutover_line([_row("Account")]) is None                 # ids not compared: no verdict
    left = [_checked(_row("Account"), missing_count=2, missing=[["001A", "never loaded (not in the crosswalk)"],
                                                                ["001B", "never loaded (not in the crosswalk)"]]),
            _checked(_row("Contact", dead=1), extra_count=1, extra=[["003X", "not alive in the source"]],
                     pending=3)]
    left[1]["differing"] = 1
    left[1]["differences"] = [{"source_id": "003Y", "odoo_id": 9, "field": "function", "crosswalk": "CEO",
                               "odoo": "Edited"}]
    line = cutover_line(left)
    assert line == ("Cutover NOT complete: 2 missing (Account); 1 extra (Contact); 1 different in Odoo from what the "
                    "tool wrote (Contact); 1 open dead letters (Contact); 3 created or changed in the source since "
                    "the last landed read, which the next delta lands (Contact).")
    page = ObjectStoragePath(str(write_reconciliation_report(
        left, pair="p", run_id="r", root=tmp_path.as_uri(),
        dead_letters={"Contact": {"open": 1, "resolved": 2, "replayed": 2}}))).read_text(encoding="utf-8")
    assert line in page[page.index("<h1"):page.index("Per object")]
    assert "Dead letters of the pair (records, all runs): 1 open, 2 resolved (2 replayed); Contact 1 open / 2 resolved." \
        in page
    assert "001A" in page and "003X" in page and "function: the tool wrote CEO, Odoo now Edited" in page


def test_the_conflicts_report_shows_both_values_per_field(tmp_path):
    from crm_migration.reports.reconcile import write_conflicts_report

    row = _checked(_row("Contact"))
    row["differences"] = [{"source_id": "003Y", "odoo_id": 9, "field": "function", "crosswalk": "CEO",
                           "odoo": "Edited"}]
    met = [{"source_object": "Contact", "source_id": "003Y", "odoo_model": "res.partner", "odoo_id": 9,
            "changes": {"function": {"tool_wrote": "CEO", "odoo": "Edited", "source": "CTO"}},
            "message": "edited in Odoo since the last load: function (kept, not overwritten)"}]
    page = ObjectStoragePath(str(write_conflicts_report([row], met, pair="p", run_id="r", root=tmp_path.as_uri(),
                                                        policies={"Contact": "keep_odoo"}))).read_text(encoding="utf-8")
    assert "1 record(s) were edited in Odoo since the tool wrote them" in page
    assert "<td>function</td><td>CEO</td><td>Edited</td><td>CTO</td><td>edited in Odoo since the last load: function " \
           "(kept, not overwritten)</td>" in page.replace("\n", "")
    assert "<td>function</td><td>CEO</td><td>Edited</td><td>keep_odoo</td>" in page.replace("\n", "")
