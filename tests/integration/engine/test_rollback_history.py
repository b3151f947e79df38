"""Rollback judged against the tool's own history, on the sandbox and on a real Odoo 17 (one body each).

Runs are rolled back newest first, without force: a field holding the last value the tool wrote (in any
run, or written back by a rollback) is not an edit, nor a field Odoo resets itself after a write of the
tool (a deal's stage date). Each rollback gives back every stored field as it was, what Odoo computes by itself
included (a deal's automated probability), and the bytes of a file a run replaced. A later run still in force blocks the rollback of an earlier one, named; a
person's edit refuses it, naming the record and the field, until forced.
"""

from __future__ import annotations

import base64
import csv

import pytest

from crm_migration.engine.load import Target, load_batch
from crm_migration.engine.rollback import rollback_run
from crm_migration.reports.rollback import write_rollback_report

pytestmark = pytest.mark.integration

PAIR = "apto_to_odoo"
CONTACT = Target(pair=PAIR, source="apto", source_object="Contact", model="res.partner")
LEAD = Target(pair=PAIR, source="apto", source_object="Opportunity", model="crm.lead")
FILE = Target(pair=PAIR, source="apto", source_object="Attachment", model="ir.attachment")
#: what Odoo stamps on every write, whoever writes
STAMPS = frozenset({"write_date", "write_uid", "__last_update"})
#: the records of a model a snapshot holds: all, but for files only the tool's (Odoo keeps its own assets there)
DOMAINS = {"ir.attachment": [("x_migration_key", "!=", False)]}


def snapshot(odoo, models=("res.partner", "crm.lead", "ir.attachment")):
    """Every record of ``models`` (archived included), every stored field but Odoo's write stamps (a file by its
    stored checksum)."""
    snap = {}
    for model in models:
        fields = [f for f, meta in odoo.fields_get(model).items()
                  if meta.get("store") and meta.get("type") != "binary" and f not in STAMPS]
        snap[model] = sorted(odoo.search_read(model, DOMAINS.get(model, []), fields, context={"active_test": False}),
                             key=lambda r: r["id"])
    return snap


def changed(before, after):
    """``{(model, id): [fields]}`` that differ between two snapshots (records added or gone: ``["<record>"]``)."""
    out = {}
    for model in before:
        b, a = {r["id"]: r for r in before[model]}, {r["id"]: r for r in after[model]}
        for rid in b.keys() | a.keys():
            if rid not in b or rid not in a:
                out[(model, rid)] = ["<record>"]
            elif diff := sorted(f for f in b[rid] if b[rid][f] != a[rid][f]):
                out[(model, rid)] = diff
    return out


def contacts(n, **changes):
    rows = [{"source_id": f"003{i}", "values": {"name": f"Person {i}", "email": f"p{i}@example.org",
                                                "phone": f"+1 415 555 01{i:02d}", "is_company": False}}
            for i in range(n)]
    for i, vals in changes.items():
        rows[int(i.removeprefix("c"))]["values"].update(vals)
    return rows


def contract(holder, text):
    """One file as the pair maps it, on the partner ``holder``."""
    return [{"source_id": "00PA", "values": {"name": "Contract.pdf", "datas": base64.b64encode(text).decode(),
                                             "mimetype": "application/pdf", "res_model": "res.partner",
                                             "res_id": holder}}]


def deal(stage, entered, *, probability=10.0, closed=False):
    """One deal as the pair maps it: the stage date and close date in a second (deferred) write."""
    return [{"source_id": "006A", "values": {"name": "Deal A", "type": "opportunity", "stage_id": stage,
                                             "probability": probability},
             "deferred": {"date_last_stage_update": entered, "date_closed": closed}}]


@pytest.fixture
def stages(odoo):
    rows = list(odoo.search_read("crm.stage", [], ["is_won"]))
    new, qualified = [s["id"] for s in rows if not s["is_won"]][:2]
    won = next(s["id"] for s in rows if s["is_won"])
    return new, qualified, won


def keyed(odoo):
    return sum(odoo.call(m, "search_count", [[("x_migration_key", "!=", False)]], {"context": {"active_test": False}})
               for m in ("res.partner", "crm.lead"))


def test_every_run_rolled_back_newest_first_needs_no_force(odoo, state, stages, tmp_path):
    new, qualified, won = stages
    made = odoo.call("res.partner", "create", [{"name": "Holds the contract"}])
    holder = made[0] if isinstance(made, list) else made
    before = snapshot(odoo)
    load_batch(odoo, state, CONTACT, contacts(3), run_id="sample")
    load_batch(odoo, state, LEAD, deal(new, "2020-01-01 09:00:00"), run_id="sample")
    load_batch(odoo, state, FILE, contract(holder, b"contract v1"), run_id="sample")
    # Odoo's own probability of the deal, as its scoring might have set it (the tool never writes it)
    (lead,) = odoo.search_read("crm.lead", [("x_migration_key", "=", "apto:Opportunity:006A")], ["id"])
    odoo.call("crm.lead", "write", [[lead["id"]], {"automated_probability": 12.5}])
    after_sample = snapshot(odoo)
    # the full run changes what the sample created (a name, the deal's stage and its stage date) and adds more
    load_batch(odoo, state, CONTACT, contacts(5, c1={"name": "Renamed"}), run_id="full")
    load_batch(odoo, state, LEAD, deal(qualified, "2021-02-02 10:00:00", probability=30.0), run_id="full")
    load_batch(odoo, state, FILE, contract(holder, b"contract v2, signed"), run_id="full")    # the file replaced
    after_full = snapshot(odoo)
    # a delta: a new phone and email, the deal won (Odoo sets its close date and probability on that write)
    load_batch(odoo, state, CONTACT, contacts(5, c1={"name": "Renamed"},
                                              c3={"phone": "+44 20 7946 0000", "email": "NEW@Example.org"}),
               run_id="delta")
    load_batch(odoo, state, LEAD, deal(won, "2022-03-03 11:00:00", probability=100.0, closed="2022-03-04 12:00:00"),
               run_id="delta")
    after_delta = snapshot(odoo)
    (won_lead,) = odoo.read("crm.lead", [lead["id"]], ["automated_probability"])
    assert won_lead["automated_probability"] == 100.0                       # Odoo's own, on the won stage

    # the full run cannot be rolled back while the delta is in force: the delta is named, nothing is touched
    blocked = rollback_run(odoo, state, "full")
    assert (blocked["status"], blocked["blocked_by"]) == ("refused", ["delta"])
    by = {(r["model"], r["source_id"]): r["fields"] for r in blocked["refused"]}
    assert by[("crm.lead", "006A")]["stage_id"] == {"by": "run", "run_id": "delta", "tool_wrote": won,
                                                   "odoo_now": won}
    assert by[("res.partner", "0033")]["phone"]["by"] == "run"
    assert not [e for f in by.values() for e in f.values() if e["by"] == "person"]
    assert snapshot(odoo) == after_delta
    report = write_rollback_report(blocked, pair=PAIR, rollback_run_id="rb-1", root=tmp_path)
    assert "roll back delta first" in report.read_text()

    # newest first, no force: each run gives back exactly the state before it, Odoo's own probability and the
    # file's bytes included
    for run_id, state_before in (("delta", after_full), ("full", after_sample), ("sample", before)):
        result = rollback_run(odoo, state, run_id)
        assert (result["status"], result["refused"], result["not_restored"]) == ("rolled_back", [], []), result
        assert changed(state_before, snapshot(odoo)) == {}, run_id
        if run_id == "delta":
            assert odoo.read("crm.lead", [lead["id"]], ["automated_probability"])[0]["automated_probability"] == 12.5
        if run_id == "full":
            (f,) = odoo.search_read("ir.attachment", [("x_migration_key", "=", "apto:Attachment:00PA")], ["datas"])
            assert base64.b64decode(f["datas"]) == b"contract v1"
    assert keyed(odoo) == 0


def test_a_stage_written_back_takes_back_the_stage_date_odoo_resets(odoo, state, stages, tmp_path):
    new, qualified, _ = stages
    made = odoo.call("res.partner", "create", [{"name": "Holds the contract"}])
    holder = made[0] if isinstance(made, list) else made
    load_batch(odoo, state, FILE, contract(holder, b"contract v1"), run_id="run-1")
    load_batch(odoo, state, LEAD, deal(new, "2020-01-01 09:00:00"), run_id="run-1")
    (lead,) = odoo.search_read("crm.lead", [("x_migration_key", "=", "apto:Opportunity:006A")], ["id"])
    after_1 = snapshot(odoo)
    # a later run writes only the stage (the source's stage date did not move): Odoo sets the date to now
    load_batch(odoo, state, LEAD, deal(qualified, "2020-01-01 09:00:00"), run_id="run-2")
    (now,) = odoo.read("crm.lead", [lead["id"]], ["date_last_stage_update"])
    assert now["date_last_stage_update"] != "2020-01-01 09:00:00"
    # and replaces the file; its bytes from before are lost (as for a run made before the tool kept them)
    load_batch(odoo, state, FILE, contract(holder, b"contract v2"), run_id="run-2")
    state.run_in_transaction(lambda cur: cur.execute("DELETE FROM crm_migration.prior_files WHERE run_id = 'run-2'"))
    # rolling it back writes the stage back (Odoo sets the date to now again) and the date from before it
    result = rollback_run(odoo, state, "run-2")
    assert result["status"] == "rolled_back"
    (file_id,) = [r["id"] for r in after_1["ir.attachment"]]
    left = changed(after_1, snapshot(odoo))                                 # all as before but the file
    assert list(left) == [("ir.attachment", file_id)] and "checksum" in left[("ir.attachment", file_id)]
    # the file is named as not put back, with the reason, in the result and the report
    assert [(m["model"], m["odoo_id"], m["source_id"], m["field"], m["why"]) for m in result["not_restored"]] == [
        ("ir.attachment", file_id, "00PA", "datas",
         "the file's bytes from before the run were not kept: left as the run wrote it")]
    html = write_rollback_report(result, pair=PAIR, rollback_run_id="rb-2", root=tmp_path).read_text()
    assert "1 field(s) could not be put back as they were" in html and "Fields not put back" in html
    assert "the file&#39;s bytes from before the run were not kept" in html
    # so run-1 rolls back without force: its stage date is what it wrote
    result = rollback_run(odoo, state, "run-1")
    assert (result["status"], result["refused"]) == ("rolled_back", [])
    assert keyed(odoo) == 0


def test_a_persons_edit_refuses_the_rollback_naming_record_and_field_until_forced(odoo, state, tmp_path):
    before = snapshot(odoo)
    load_batch(odoo, state, CONTACT, contacts(3), run_id="full")
    load_batch(odoo, state, CONTACT, contacts(3, c1={"name": "Renamed"}), run_id="delta")
    assert rollback_run(odoo, state, "delta")["status"] == "rolled_back"
    ids = state.odoo_ids(PAIR, "Contact", ["0031", "0032"])
    # a person edits the email of one contact and the name the delta had changed (and its rollback put back)
    odoo.write_batch("res.partner", {ids["0031"]: {"name": "Renamed by hand"}, ids["0032"]: {"email": "x@y.org"}})
    refused = rollback_run(odoo, state, "full")
    assert (refused["status"], refused["blocked_by"]) == ("refused", [])
    got = {(r["model"], r["odoo_id"], r["source_id"]): r["fields"] for r in refused["refused"]}
    assert got == {
        ("res.partner", ids["0031"], "0031"): {"name": {"by": "person", "run_id": None, "tool_wrote": "Person 1",
                                                        "odoo_now": "Renamed by hand"}},
        ("res.partner", ids["0032"], "0032"): {"email": {"by": "person", "run_id": None,
                                                         "tool_wrote": "p2@example.org", "odoo_now": "x@y.org"}}}
    assert keyed(odoo) == 3                               # nothing was touched
    # the report names each record, field and who changed it
    html = write_rollback_report(refused, pair=PAIR, rollback_run_id="rb-1", root=tmp_path)
    with next(html.parent.glob("rollback_02_*.csv")).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["odoo id"], r["field"], r["changed by"], r["Odoo now"]) for r in rows} == {
        (str(ids["0031"]), "name", "a person (edited in Odoo)", "Renamed by hand"),
        (str(ids["0032"]), "email", "a person (edited in Odoo)", "x@y.org")}
    assert "2 records were edited in Odoo" in html.read_text()

    forced = rollback_run(odoo, state, "full", force=True)
    assert (forced["status"], forced["forced"], forced["unlinked"]) == ("rolled_back", True, {"res.partner": 3})
    assert changed(before, snapshot(odoo)) == {}
