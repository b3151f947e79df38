"""load_batch against the Odoo sandbox over HTTP and a real private PostgreSQL."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from crm_migration.engine.load import Target, load_batch
from crm_migration.engine.rollback import rollback_run

pytestmark = pytest.mark.integration

CONTACT = Target(pair="apto_to_odoo", source="apto", source_object="Contact", model="res.partner")


def rows(n: int, *, start: int = 0, **extra):
    return [{"source_id": f"003{i:012d}", "record": {"Id": f"003{i:012d}"},
             "values": {"name": f"Person {i}", "email": f"p{i}@example.org", "phone": f"+1 555 {i:04d}",
                        "is_company": False, **extra}} for i in range(start, start + n)]


def keyed(odoo, model="res.partner"):
    """Records of ``model`` carrying a migration key, by key (archived included)."""
    out = {}
    for r in odoo.search_read(model, [("x_migration_key", "!=", False)], ["x_migration_key", "name", "email"],
                              context={"active_test": False}):
        assert r["x_migration_key"] not in out, f"duplicate key {r['x_migration_key']}"
        out[r["x_migration_key"]] = r
    return out


def writes(odoo) -> int:
    return sum(v for (m, meth), v in odoo.calls.items() if meth in ("create", "write", "unlink"))


def test_new_records_land_once_with_their_key_and_are_recorded(odoo, state):
    batch = rows(250)
    result = load_batch(odoo, state, CONTACT, batch, run_id="run-1")
    key_lookups = odoo.calls[("res.partner", "search_read")]
    assert (result["created"], result["updated"], result["skipped"], result["dead_lettered"]) == (250, 0, 0, 0)
    landed = keyed(odoo)
    assert len(landed) == 250
    assert landed["apto:Contact:003000000000007"]["name"] == "Person 7"
    assert state.count("crosswalk", pair="apto_to_odoo", source_object="Contact") == 250
    assert state.count("rollback_manifest", run_id="run-1", action="created") == 250
    assert state.count("audit_log", run_id="run-1", action="create") == 250
    # calls: fields_get (cached per hook) + one create; no key lookup on a first attempt
    assert result["odoo_calls"] <= math.ceil(250 / 250) + 2
    assert key_lookups == 0
    assert state.count("pending") == 0


def test_a_rerun_writes_nothing_and_a_change_writes_only_the_changed_field(odoo, state):
    load_batch(odoo, state, CONTACT, rows(20), run_id="run-1")
    odoo.calls.clear()
    again = load_batch(odoo, state, CONTACT, rows(20), run_id="run-1")
    assert (again["created"], again["updated"], again["skipped"]) == (0, 0, 20)
    assert writes(odoo) == 0

    changed = rows(20)
    changed[3]["values"]["email"] = "new@example.org"
    odoo.calls.clear()
    result = load_batch(odoo, state, CONTACT, changed, run_id="run-2")
    assert (result["created"], result["updated"], result["skipped"]) == (0, 1, 19)
    assert writes(odoo) == 1
    assert keyed(odoo)["apto:Contact:003000000000003"]["email"] == "new@example.org"
    (m,) = state.iter_manifest("run-2")
    assert m["prior_values"] == {"email": "p3@example.org"} and m["new_values"] == {"email": "new@example.org"}
    assert len(keyed(odoo)) == 20


def test_a_bad_record_is_dead_lettered_and_the_rest_of_its_batch_lands(odoo, state):
    batch = rows(64)
    batch[41]["values"]["type"] = "no-such-type"            # selection value Odoo refuses
    odoo.calls.clear()
    result = load_batch(odoo, state, CONTACT, batch, run_id="run-1")
    assert result["created"] == 63 and result["dead_letter_ids"] == ["003000000000041"]
    (dl,) = state.dead_letters(run_id="run-1")
    assert dl["field"] == "type", dl
    assert "no-such-type" in dl["reason"], dl["reason"]
    assert dl["record"] == {"Id": "003000000000041"}
    assert len(keyed(odoo)) == 63
    creates = odoo.calls[("res.partner", "create")]
    assert creates - 1 <= 2 * math.ceil(math.log2(64))
    # fixing the record lands it and resolves the dead letter
    batch[41]["values"]["type"] = "contact"
    again = load_batch(odoo, state, CONTACT, batch, run_id="run-2")
    assert again["created"] == 1 and again["skipped"] == 63
    assert state.dead_letters(run_id="run-1") == []


def test_mapping_errors_are_dead_lettered_without_calling_odoo(odoo, state):
    batch = rows(3)
    batch[1] = {"source_id": batch[1]["source_id"], "record": {"Email": "not-an-email"},
                "error": ("email", "invalid email 'not-an-email'")}
    result = load_batch(odoo, state, CONTACT, batch, run_id="run-1")
    assert result["created"] == 2 and result["dead_letter_ids"] == [batch[1]["source_id"]]
    (dl,) = state.dead_letters(run_id="run-1")
    assert (dl["field"], dl["reason"]) == ("email", "invalid email 'not-an-email'")


def test_an_edit_in_odoo_is_a_conflict_reported_not_overwritten(odoo, state):
    load_batch(odoo, state, CONTACT, rows(5), run_id="run-1")
    oid = keyed(odoo)["apto:Contact:003000000000002"]["id"]
    odoo.write_batch("res.partner", {oid: {"email": "edited.in.odoo@example.org"}})
    src = rows(5)
    src[2]["values"]["email"] = "changed.in.source@example.org"
    result = load_batch(odoo, state, CONTACT, src, run_id="run-2")
    assert result["conflicts"] == 1 and result["updated"] == 0
    assert keyed(odoo)["apto:Contact:003000000000002"]["email"] == "edited.in.odoo@example.org"
    assert state.count("audit_log", run_id="run-2", action="conflict") == 1
    (met,) = state.conflicts("run-2")                   # both values per field, for the conflicts report
    assert (met["source_id"], met["odoo_id"], met["changes"]) == ("003000000000002", oid, {"email": {
        "tool_wrote": rows(5)[2]["values"]["email"], "odoo": "edited.in.odoo@example.org",
        "source": "changed.in.source@example.org"}})
    assert "kept, not overwritten" in met["message"]

    src[2]["values"]["email"] = "changed.again@example.org"
    wins = Target(pair="apto_to_odoo", source="apto", source_object="Contact", model="res.partner",
                  conflict_policy="source_wins")
    result = load_batch(odoo, state, wins, src, run_id="run-3")
    assert result["conflicts"] == 1 and result["updated"] == 1
    assert keyed(odoo)["apto:Contact:003000000000002"]["email"] == "changed.again@example.org"


def test_dry_run_writes_nothing(odoo, state):
    result = load_batch(odoo, state, CONTACT, rows(10), run_id="run-1", dry_run=True)
    assert result["created"] == 10
    assert keyed(odoo) == {} and state.count("crosswalk") == 0 and writes(odoo) == 0


def test_a_migration_sends_no_mail_and_posts_no_chatter(odoo, state):
    before_msgs = odoo.call("mail.message", "search_count", [[]])
    before_mail = odoo.call("mail.mail", "search_count", [[]])
    before_followers = odoo.call("mail.followers", "search_count", [[]])
    load_batch(odoo, state, CONTACT, rows(30), run_id="run-1")
    changed = rows(30)
    for r in changed:
        r["values"]["phone"] = "+44 20 0000 0000"
    load_batch(odoo, state, CONTACT, changed, run_id="run-2")
    assert odoo.call("mail.message", "search_count", [[]]) == before_msgs
    assert odoo.call("mail.mail", "search_count", [[]]) == before_mail
    assert odoo.call("mail.followers", "search_count", [[]]) == before_followers


CRASHING_LOADER = textwrap.dedent("""
    import os, signal, sys
    from crm_migration.engine.load import Target, load_batch
    from crm_migration.hooks.odoo import OdooHook
    from crm_migration.hooks.state import MigrationStateHook

    def die(*a, **k):                       # Odoo has committed; the state DB has not recorded yet
        os.kill(os.getpid(), signal.SIGKILL)
    MigrationStateHook.record_batch = die

    rows = [{"source_id": f"003{i:012d}", "values": {"name": f"Person {i}", "is_company": False}}
            for i in range(int(sys.argv[1]))]
    load_batch(OdooHook(), MigrationStateHook(), Target(pair="apto_to_odoo", source="apto",
               source_object="Contact", model="res.partner"), rows, run_id="run-crash")
""")


def test_a_loader_killed_between_odoo_commit_and_state_record_loses_and_duplicates_nothing(
        odoo, state, odoo_conn_json, state_db, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_LOADER)
    env = {**os.environ, "AIRFLOW_CONN_ODOO_DEFAULT": odoo_conn_json,
           "AIRFLOW_CONN_CRM_MIGRATION_STATE": state_db["conn_json"]}
    proc = subprocess.run([sys.executable, str(script), "40"], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert len(keyed(odoo)) == 40                 # Odoo committed ...
    assert state.count("crosswalk") == 0          # ... the state DB never heard of it
    assert state.count("pending") == 40           # ... except that the attempt had claimed the ids

    batch = [{"source_id": f"003{i:012d}", "values": {"name": f"Person {i}", "is_company": False}}
             for i in range(50)]
    result = load_batch(odoo, state, CONTACT, batch, run_id="run-crash")
    assert (result["adopted"], result["created"]) == (40, 10)
    assert len(keyed(odoo)) == 50                 # no duplicate, no loss
    assert state.count("crosswalk") == 50
    assert state.count("rollback_manifest", run_id="run-crash", action="created") == 50
    assert state.count("audit_log", run_id="run-crash", action="adopt") == 40
    assert state.count("pending") == 0


def snapshot(odoo, models=("res.partner", "crm.lead")):
    snap = {}
    for model in models:
        fields = [f for f, meta in odoo.fields_get(model).items()
                  if meta.get("store") and meta.get("type") not in ("binary",)
                  and f not in ("write_date", "__last_update")]
        snap[model] = sorted(odoo.search_read(model, [], fields, context={"active_test": False}),
                             key=lambda r: r["id"])
    return snap


def test_rollback_restores_the_pre_run_state_and_is_idempotent(odoo, state):
    load_batch(odoo, state, CONTACT, rows(10), run_id="run-1")
    before_run_2 = snapshot(odoo)
    changed = rows(15)                             # 5 new, 2 changed, 8 unchanged
    changed[0]["values"]["email"] = "changed0@example.org"
    changed[1]["values"]["name"] = "Renamed"
    load_batch(odoo, state, CONTACT, changed, run_id="run-2")
    assert len(keyed(odoo)) == 15

    result = rollback_run(odoo, state, "run-2")
    assert result["status"] == "rolled_back"
    assert result["unlinked"] == {"res.partner": 5} and result["restored"] == {"res.partner": 2}
    assert snapshot(odoo) == before_run_2
    assert rollback_run(odoo, state, "run-2")["status"] == "nothing_to_do"
    # the crosswalk forgot what was removed: reloading recreates it, once
    again = load_batch(odoo, state, CONTACT, changed, run_id="run-3")
    assert again["created"] == 5 and again["updated"] == 2
    assert len(keyed(odoo)) == 15


def test_rollback_refuses_records_edited_after_the_run_unless_forced(odoo, state):
    before = snapshot(odoo)
    load_batch(odoo, state, CONTACT, rows(4), run_id="run-1")
    oid = keyed(odoo)["apto:Contact:003000000000001"]["id"]
    odoo.write_batch("res.partner", {oid: {"name": "Edited by a user"}})
    refused = rollback_run(odoo, state, "run-1")
    assert refused["status"] == "refused"
    assert [r["odoo_id"] for r in refused["refused"]] == [oid]
    assert refused["refused"][0]["fields"]["name"] == {"by": "person", "run_id": None, "tool_wrote": "Person 1",
                                                      "odoo_now": "Edited by a user"}
    assert len(keyed(odoo)) == 4                   # nothing was touched
    forced = rollback_run(odoo, state, "run-1", force=True)
    assert forced["status"] == "rolled_back" and forced["unlinked"] == {"res.partner": 4}
    assert snapshot(odoo) == before


LEAD = Target(pair="apto_to_odoo", source="apto", source_object="Opportunity", model="crm.lead")


def test_deferred_fields_survive_what_odoo_does_on_create_and_write(odoo, state, odoo_target):
    won = odoo.search_ids("crm.stage", [("is_won", "=", True)], limit=1)[0]
    new = odoo.search_ids("crm.stage", [("is_won", "=", False)], limit=1)[0]
    row = {"source_id": "006A", "values": {"name": "Deal A", "type": "opportunity", "stage_id": won,
                                           "probability": 100},
           "deferred": {"date_closed": "2021-06-30 12:00:00", "date_last_stage_update": "2021-06-01 09:30:00"}}
    odoo.calls.clear()
    load_batch(odoo, state, LEAD, [row], run_id="run-1")
    # the close date goes with the create (kept on 17 and 19); the stage date too on 19, after it on 17
    assert {m: odoo.calls[("crm.lead", m)] for m in ("create", "load", "write")} == {
        "create": 1, "load": 0, "write": 0 if odoo_target.version >= 19 else 1}
    (lead,) = odoo.search_read("crm.lead", [("x_migration_key", "=", "apto:Opportunity:006A")],
                               ["date_closed", "date_last_stage_update", "stage_id"])
    assert (lead["date_closed"], lead["date_last_stage_update"]) == ("2021-06-30 12:00:00", "2021-06-01 09:30:00")
    # a later change of stage: Odoo resets both dates on that write; the deferred write puts them back
    row2 = {**row, "values": {**row["values"], "stage_id": new, "probability": 20},
            "deferred": {"date_closed": False, "date_last_stage_update": "2022-01-02 03:04:05"}}
    result = load_batch(odoo, state, LEAD, [row2], run_id="run-2")
    assert result["updated"] == 1
    (lead,) = odoo.read("crm.lead", [lead["id"]], ["date_closed", "date_last_stage_update", "stage_id"])
    assert lead["stage_id"][0] == new
    assert (lead["date_closed"], lead["date_last_stage_update"]) == (False, "2022-01-02 03:04:05")
    assert load_batch(odoo, state, LEAD, [row2], run_id="run-3")["skipped"] == 1


def test_two_loads_at_once_adding_the_same_picklist_option_both_land(odoo):
    """Mapped loads run at once, each task with its own hook: the second to add a picklist option that the first
    added since it read the fields does not fail its batch (Odoo refuses a second copy of an option), and the
    option is there once."""
    from crm_migration.hooks.odoo import OdooHook

    odoo.ensure_field("res.partner", "x_test_tier", "selection", string="Tier", selection=[("Gold", "Gold")])
    other = OdooHook()
    for hook in (odoo, other):          # both tasks read the fields before either adds
        assert [v for v, _ in hook.fields_get("res.partner")["x_test_tier"]["selection"]] == ["Gold"]
    assert odoo.add_options({"res.partner": {"x_test_tier": ["Platinum"]}}) == 1
    assert other.add_options({"res.partner": {"x_test_tier": ["Platinum", "Silver"]}}) == 1
    (oid,) = other.create_batch("res.partner", [{"name": "Tiered", "x_test_tier": "Platinum"}], keys=["test:tier:1"])
    fresh = OdooHook()
    assert [v for v, _ in fresh.fields_get("res.partner")["x_test_tier"]["selection"]] == ["Gold", "Platinum", "Silver"]
    assert fresh.read("res.partner", [oid], ["x_test_tier"])[0]["x_test_tier"] == "Platinum"
    other.close()
    fresh.close()


def test_large_files_go_in_calls_of_bounded_size_and_a_file_over_128_mib_lands_unless_xml_rpc_refuses_it(
        odoo, odoo_target, state, monkeypatch):
    """A batch of files is cut in creates of at most ``CALL_BYTES`` of values (scaled down here: six small files,
    two a call); a file larger than that goes alone. A 97 MiB file (a request of about 130 MiB) lands over JSON-2
    and JSON-RPC; over XML-RPC, which Odoo refuses over 128 MiB (HTTP 413), it is dead-lettered with its size, not
    sent, the rest lands, and a rerun over JSON-RPC lands it."""
    import base64
    import hashlib

    from crm_migration.engine import load
    from crm_migration.hooks.odoo import OdooHook

    monkeypatch.setattr(load, "CALL_BYTES", 6_000)
    files = Target(pair="link_app_to_odoo", source="link_app", source_object="files", model="ir.attachment")

    def file(i: int, size: int) -> dict:
        data = base64.b64encode(bytes([65 + i]) * size).decode()
        return {"source_id": f"f{i}", "record": {"id": f"f{i}"},
                "values": {"name": f"file{i}.txt", "datas": data, "mimetype": "text/plain"}}

    big = 97 * 1024 * 1024
    batch = [file(i, 1500) for i in range(6)] + [file(6, big)]
    assert len(batch[6]["values"]["datas"]) > 128 * 1024 * 1024
    odoo.calls.clear()
    result = load_batch(odoo, state, files, batch, run_id="run-files")
    xml_rpc = odoo.wire.name == "xmlrpc"
    assert odoo.request_limit() == (128 * 1024 * 1024 if xml_rpc else None)
    if xml_rpc:
        assert (result["created"], result["dead_letter_ids"]) == (6, ["f6"])
        assert odoo.calls[("ir.attachment", "create")] == 3      # about 2,100 bytes a file: two a call
        (dl,) = state.dead_letters(run_id="run-files")
        assert dl["field"] == "datas", dl
        assert "129 MiB of values" in dl["reason"] and "HTTP 413" in dl["reason"] and "jsonrpc" in dl["reason"], dl
        monkeypatch.setenv("AIRFLOW_CONN_ODOO_JSONRPC", odoo_target.conn_json(transport="jsonrpc"))
        over_json = OdooHook("odoo_jsonrpc")
        again = load_batch(over_json, state, files, [batch[6]], run_id="run-files-again")
        assert (again["created"], again["dead_letter_ids"]) == (1, [])
        over_json.close()
    else:
        assert (result["created"], result["dead_letter_ids"]) == (7, [])
        assert odoo.calls[("ir.attachment", "create")] == 4      # the big one alone
    batch[6]["values"].clear()                  # the 130 MiB are not held while Odoo is read
    landed = {r["x_migration_key"]: r for r in odoo.search_read(
        "ir.attachment", [("x_migration_key", "like", "link_app:files:")], ["x_migration_key", "file_size", "checksum"])}
    assert sorted(landed) == [f"link_app:files:f{i}" for i in range(7)]
    assert landed["link_app:files:f3"]["checksum"] == hashlib.sha1(bytes([68]) * 1500).hexdigest()
    assert (landed["link_app:files:f6"]["file_size"], landed["link_app:files:f6"]["checksum"]) == (
        big, hashlib.sha1(bytes([71]) * big).hexdigest())
