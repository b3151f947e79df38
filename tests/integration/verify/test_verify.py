"""Verify after a real load: the Apto sandbox and the Odoo sandbox over HTTP, a private PostgreSQL.

One world is loaded per module (every loadable object, as the migrate DAG does it); the tests read it,
and the one that edits Odoo behind the tool's back puts the values back before it ends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest
import yaml

RUN = "verify-run"
SCRIPT_HTML = ('<p onclick="steal()">Kick-off <script>alert("x")</script><b>agreed</b>'
               '<img src="javascript:alert(1)" onerror="steal()"></p>')


@pytest.fixture(scope="module")
def world(apto_pipeline, odoo_target):
    from crm_migration.mapping.spec import parse_pair
    from crm_sandbox.apto.server import serve as apto_serve

    apto = apto_serve(port=0, scale=1, seed=7)
    # the deal's description read as rich text (html_clean), and enhanced notes whose html carries a
    # script: the tool sanitises both itself, and what it sends is what Odoo stores
    raw = yaml.safe_load((files("crm_migration") / "pairs" / "apto_to_odoo.yaml").read_text(encoding="utf-8"))
    raw["objects"]["Opportunity"]["fields"]["description"] = {"from": "Description", "fn": "html_clean"}
    spec = parse_pair(raw, origin="test:apto_to_odoo")
    deals = sorted(apto.state.tables["Opportunity"])[:6]
    apto.state.update("Opportunity", [{"Id": d, "Description": SCRIPT_HTML} for d in deals])
    notes = list(apto.state.data.hard_cases["content_note"])
    for doc in notes:
        apto.state.data.blobs[apto.state.tables["ContentDocument"][doc]["LatestPublishedVersionId"]] = \
            SCRIPT_HTML.encode()
    with apto_pipeline(apto, odoo_target, RUN, spec=spec) as pipe:
        end = datetime.now(UTC) + timedelta(minutes=1)
        for name in pipe.loadable():
            for b in pipe.extract(name, run_id=RUN, start=None, end=end, batch_size=50):
                pipe.load(name, run_id=RUN, batch_no=b["batch_no"])
            pipe.link(name, run_id=RUN)
        yield {"pipe": pipe, "apto": apto, "state": pipe.state, "odoo": pipe.odoo, "deals": deals, "notes": notes}
    apto.stop()


@pytest.fixture(scope="module")
def diffs(world):
    from crm_migration.engine.verify import field_diff

    return {name: field_diff(world["pipe"], name, run_id=RUN) for name in world["pipe"].loadable()}


def _bound(world, name):
    """``{source_id: Bound}`` of the records of ``name`` staged in the run that are in the crosswalk."""
    pipe, state = world["pipe"], world["state"]
    scope = pipe.target(name).source_object
    sids = [r[0] for r in state.get_records(
        "SELECT source_id FROM crm_migration.staging WHERE run_id = %s AND source_object = %s AND NOT deleted",
        parameters=(RUN, name))]
    return sids, state.lookup(pipe.pair, scope, sids)


def _open_dead_letters(world, name):
    scope = world["pipe"].target(name).source_object
    return {d["source_id"]: d for d in world["state"].dead_letters(pair=world["pipe"].pair)
            if d["source_object"] == scope}


def test_diff_has_every_mapped_field_of_every_loaded_record_and_all_match(world, diffs):
    from crm_migration.hooks.odoo import MIGRATION_KEY

    pipe = world["pipe"]
    total = 0
    for name in pipe.loadable():
        rows = diffs[name]
        sids, bound = _bound(world, name)
        assert bound, f"{name}: nothing landed"
        self_refs = set(pipe.self_ref_fields(pipe.spec.object(name)))
        got = {(r["source_id"], r["field"]) for r in rows if r["kind"] == "field"}
        # what the load recorded writing (values + deferred, link's writes), the self-references, the key
        want = {(sid, f) for sid, b in bound.items() for f in {*b.written, *self_refs, MIGRATION_KEY}}
        assert got == want, f"{name}: missing {sorted(want - got)[:5]}, unexpected {sorted(got - want)[:5]}"
        bad = [r for r in rows if r["kind"] == "field" and not r["match"]]
        assert not bad, f"{name}: {bad[:3]}"
        assert {r["odoo_id"] for r in rows if r["kind"] == "field"} == {b.odoo_id for b in bound.values()}
        # every staged record is compared or named as a dead letter, once
        dead = {r["source_id"] for r in rows if r["kind"] == "dead_letter"}
        assert dead | set(bound) == set(sids) and not dead & set(bound)
        assert not [r for r in rows if r["kind"] not in ("field", "dead_letter")]
        total += len(got)
    assert total > 10_000

    # spot check against the org itself: a contact's name and email as Apto has them
    contacts = world["apto"].state.tables["Contact"]
    rows = {(r["source_id"], r["field"]): r for r in diffs["Contact"] if r["kind"] == "field"}
    sid = next(s for (s, f) in rows if f == "email" and rows[(s, f)]["sent"])
    src = contacts[sid]
    assert rows[(sid, "name")]["sent"] == " ".join(p for p in (src["FirstName"], src["LastName"]) if p)
    assert rows[(sid, "name")]["source"] == f"FirstName={src['FirstName']} · LastName={src['LastName']}"
    assert rows[(sid, "email")]["odoo"].lower() == src["Email"].strip().lower()
    # files: compared by checksum, never read back
    files_ = [r for r in diffs["ContentVersion"] if r["field"] == "datas" and r["kind"] == "field"]
    assert all(r["match"] and "checksum" in r["note"] for r in files_)
    # the file gone from the org (its download answers 404) is named as a dead letter, with its reason
    gone = [r for r in diffs["ContentVersion"] if r["kind"] == "dead_letter"
            and r["source_id"].startswith(world["apto"].state.data.hard_cases["file_missing"])]
    assert gone and all("file missing in the source (HTTP 404)" in r["note"] and r["field"] == "datas" for r in gone)
    assert sum(str(r["sent"]).startswith("sha1:") for r in files_) >= 30      # one file of the org is empty
    assert all(r["sent"] is False and r["source"] == "<0 bytes>" for r in files_ if not r["sent"])


def test_edit_behind_the_tools_back_is_a_difference_and_a_checksum_mismatch(world, tmp_path):
    from crm_migration.engine.verify import field_diff, reconcile
    from crm_migration.reports.diff import write_diff_report
    from crm_migration.reports.reconcile import summary_lines, write_reconciliation_report

    pipe, odoo = world["pipe"], world["odoo"]
    _, bound = _bound(world, "Contact")
    sid = sorted(s for s, b in bound.items() if b.written.get("email"))[0]
    oid = bound[sid].odoo_id
    before = odoo.read("res.partner", [oid], ["name", "email"])[0]
    odoo.write_batch("res.partner", {oid: {"name": "Someone Else", "email": "someone.else@example.org"}})
    try:
        rows = field_diff(pipe, "Contact", run_id=RUN)
        bad = [r for r in rows if r["kind"] == "field" and not r["match"]]
        assert {(r["source_id"], r["field"]) for r in bad} == {(sid, "name"), (sid, "email")}
        by_field = {r["field"]: r for r in bad}
        assert by_field["name"]["odoo"] == "Someone Else" and by_field["name"]["sent"] == before["name"]
        assert by_field["email"]["odoo"] == "someone.else@example.org"
        assert all("changed in Odoo after the load" in r["note"] for r in bad)

        recon = {r["object"]: r for r in reconcile(pipe, run_id=RUN, objects=["Account", "Contact"])}
        contact = recon["Contact"]
        assert contact["status"] == "mismatch" and contact["checksum_crosswalk"] != contact["checksum_odoo"]
        assert contact["differing"] == 1
        assert {(e["source_id"], e["field"]) for e in contact["examples"]} == {(sid, "name"), (sid, "email")}
        assert recon["Account"]["status"] == "ok"        # same model, other key: untouched
        lines = summary_lines(recon.values())
        assert any(line.startswith("Contact:") and "checksum MISMATCH" in line and sid in line for line in lines)

        html = write_diff_report(rows, pair=pipe.pair, run_id=RUN, root=tmp_path).read_text()
        assert "2 differences to review" in html and sid in html and "Someone Else" in html
        diff_csv = (tmp_path / pipe.pair / RUN / "diff_01_differences.csv").read_text()
        assert diff_csv.count(sid) == 2
        html = write_reconciliation_report(list(recon.values()), pair=pipe.pair, run_id=RUN,
                                           root=tmp_path).read_text()
        assert "1 of 2 objects do not reconcile: Contact" in html and sid in html
    finally:
        odoo.write_batch("res.partner", {oid: {"name": before["name"], "email": before["email"]}})
    assert reconcile(pipe, run_id=RUN, objects=["Contact"])[0]["status"] == "ok"


def test_html_is_sanitised_by_the_tool_and_stored_as_sent(world, diffs):
    from crm_migration.engine.verify import html_normal, reconcile

    rows = [r for r in diffs["Opportunity"] if r["field"] == "description" and r["source_id"] in world["deals"]]
    assert rows, "none of the deals with a script landed"
    for r in rows:                         # sanitised by the tool, whatever the target does; nothing to forgive
        assert r["sent"] == r["odoo"] == "<p>Kick-off <b>agreed</b><img></p>"
        assert r["match"] and r["note"] == ""
    # a script in a source note never reaches Odoo
    bodies = [r for r in diffs["ContentNote"] if r["field"] == "body" and r["source_id"].split("/")[0] in world["notes"]]
    assert bodies, "none of the notes with a script landed"
    for r in bodies:
        assert r["odoo"].endswith("<p>Kick-off <b>agreed</b><img></p>") and r["odoo"].startswith("<p><b>")
        assert not {"script", "alert", "onclick", "onerror", "javascript"} & set(re.findall(r"[a-z]+", r["odoo"]))
        assert r["sent"] == r["odoo"] and r["match"] and r["note"] == ""
    assert all(s["status"] == "ok" for s in reconcile(world["pipe"], run_id=RUN, objects=["Opportunity", "ContentNote"]))
    # the normalisation only forgives what the sanitiser does: a change of text or markup is a difference
    assert html_normal(SCRIPT_HTML) == html_normal(rows[0]["odoo"])
    assert html_normal("<p>Kick-off <b>agreed</b></p>") != html_normal("<p>Kick-off <b>Agreed</b></p>")
    assert html_normal("<p>Kick-off <b>agreed</b></p>") != html_normal("<p>Kick-off <i>agreed</i></p>")
    assert html_normal("<p>a  \n b</p>") == html_normal("<p>a b</p>")


def test_dead_lettered_record_shows_its_reason(world, diffs):
    # repair and flag: contacts and deals whose company the source deleted land without it, flagged
    assert not _open_dead_letters(world, "Contact") and not _open_dead_letters(world, "Opportunity")
    for name in ("AccountContactRelation", "OpportunityHistory"):       # their required parent was deleted
        dead = _open_dead_letters(world, name)
        assert dead, f"the sandbox org is expected to dead-letter some {name} records"
        rows = {r["source_id"]: r for r in diffs[name] if r["kind"] == "dead_letter"}
        assert set(rows) == set(dead)
        for sid, r in rows.items():
            assert not r["match"] and r["odoo_id"] is None and r["field"] == (dead[sid]["field"] or "")
            assert dead[sid]["reason"] in r["note"] and "not migrated" in r["note"]


def test_reconciliation_counts_equal_the_org_minus_dead_letters(world):
    from crm_migration.engine.verify import reconcile
    from crm_migration.reports.reconcile import summary_lines

    pipe, org = world["pipe"], world["apto"].state
    rows = reconcile(pipe, run_id=RUN)
    assert [r["object"] for r in rows] == pipe.loadable()
    by = {r["object"]: r for r in rows}
    assert all(r["status"] == "ok" and not r["problems"] for r in rows), [r for r in rows if r["status"] != "ok"]
    for name in ("Account", "Contact", "Opportunity", "Event", "Note", "OpportunityHistory", "Attachment"):
        in_org = sum(not rec.get("IsDeleted") for rec in org.tables[name].values())
        dead = len(_open_dead_letters(world, name))
        r = by[name]
        assert r["staged"] == in_org, name
        assert r["dead_letters"] == dead, name
        assert r["crosswalk"] == r["odoo"] == r["landed"] == r["compared"] == in_org - dead, name
        assert r["unaccounted"] == 0 and r["differing"] == 0
    c = by["Contact"]
    assert f"Contact: source {c['staged']}, Odoo {c['odoo']}, dead letters {c['dead_letters']}, checksum ok" \
        in summary_lines(rows)


def test_staged_but_not_loaded_is_unaccounted(world):
    """A record staged in a run but never loaded is neither landed nor a dead letter: both views say so."""
    from crm_migration.engine.verify import field_diff, reconcile

    pipe, org = world["pipe"], world["apto"].state
    run = "verify-staged-only"
    (new,) = org.create("Contact", [{"FirstName": "Late", "LastName": "Arrival", "Email": "late@example.org"}])
    try:
        for _ in pipe.extract("Contact", run_id=run, start=None, end=datetime.now(UTC) + timedelta(minutes=1),
                              batch_size=50):
            pass                                            # staged, not loaded
        rows = field_diff(pipe, "Contact", run_id=run)
        late = [r for r in rows if r["source_id"] == new]
        assert [r["kind"] for r in late] == ["not_loaded"] and not late[0]["match"]
        assert all(r["match"] for r in rows if r["kind"] == "field")
        (r,) = reconcile(pipe, run_id=run, objects=["Contact"])
        assert r["status"] == "mismatch" and r["unaccounted"] == 1
        assert r["staged"] == r["landed"] + r["dead_letters"] + 1
        assert r["checksum_crosswalk"] == r["checksum_odoo"]            # what did land still agrees
        assert any("neither landed nor dead-lettered" in p for p in r["problems"])
    finally:
        org.delete("Contact", [new])
