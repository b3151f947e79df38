"""Two loader features over the Odoo sandbox (HTTP) and a real PostgreSQL:

- a batch mixing several objects of one model (the chatter timeline) is created in one call, in the
  order given, and recorded per object;
- a source record that moves to another model (an open task, loaded as an activity, closed later) has
  its old record replaced: the message is created, the activity removed, and a rollback brings the
  activity back, bound again in the crosswalk.
"""

from __future__ import annotations

import pytest

from crm_migration.engine.load import Target, load_batch
from crm_migration.engine.rollback import rollback_run
from crm_migration.engine.schema import ensure_migration_keys

pytestmark = pytest.mark.integration

PAIR = "apto_to_odoo"
HISTORY = Target(pair=PAIR, source="apto", source_object="OpportunityHistory", model="mail.message")
TASK_MSG = Target(pair=PAIR, source="apto", source_object="Task", model="mail.message")
TASK_ACT = Target(pair=PAIR, source="apto", source_object="Task", model="mail.activity")
LEAD = Target(pair=PAIR, source="apto", source_object="Opportunity", model="crm.lead")


@pytest.fixture
def lead(odoo, state):
    ensure_migration_keys(odoo, ["mail.message", "mail.activity"])
    load_batch(odoo, state, LEAD, [{"source_id": "0061", "values": {"name": "Deal", "type": "opportunity"}}],
               run_id="r0")
    return state.odoo_ids(PAIR, "Opportunity", ["0061"])["0061"]


def _msg(sid, date, lead_id, target=None):
    row = {"source_id": sid, "values": {"model": "crm.lead", "res_id": lead_id, "body": f"<p>{sid}</p>",
                                        "message_type": "comment", "date": date}}
    if target is not None:
        row["target"] = target
    return row


def test_a_mixed_batch_is_created_in_one_call_in_date_order_and_recorded_per_object(odoo, state, lead):
    rows = [_msg("h1", "2019-01-01 10:00:00", lead, HISTORY), _msg("t1", "2019-02-01 10:00:00", lead, TASK_MSG),
            _msg("h2", "2019-03-01 10:00:00", lead, HISTORY), _msg("t2", "2019-04-01 10:00:00", lead, TASK_MSG)]
    odoo.calls.clear()
    result = load_batch(odoo, state, HISTORY, rows, run_id="r1")
    assert result["created"] == 4 and odoo.calls[("mail.message", "create")] == 1
    msgs = odoo.search_read("mail.message", [("model", "=", "crm.lead"), ("res_id", "=", lead)],
                            ["date", "x_migration_key"], order="id asc")
    assert [m["x_migration_key"] for m in msgs] == ["apto:OpportunityHistory:h1", "apto:Task:t1",
                                                    "apto:OpportunityHistory:h2", "apto:Task:t2"]
    assert [m["date"] for m in msgs] == sorted(m["date"] for m in msgs)       # ids follow the dates
    assert state.count("crosswalk", pair=PAIR, source_object="Task") == 2
    assert state.count("crosswalk", pair=PAIR, source_object="OpportunityHistory") == 2
    assert state.count("audit_log", run_id="r1", source_object="Task", action="create") == 2
    # a rerun of the same mixed batch is all skips, per object
    again = load_batch(odoo, state, HISTORY, rows, run_id="r1")
    assert (again["created"], again["skipped"]) == (0, 4)


def test_a_closed_task_replaces_its_activity_and_a_rollback_brings_it_back(odoo, state, lead):
    (lead_model,) = [m["id"] for m in odoo.search_read("ir.model", [("model", "=", "crm.lead")], ["id"])]
    activity = {"source_id": "00T1", "values": {"res_model_id": lead_model, "res_id": lead, "summary": "Call back",
                                                "date_deadline": "2030-01-01", "user_id": 2}}
    load_batch(odoo, state, TASK_ACT, [activity], run_id="full")
    (act,) = odoo.search_read("mail.activity", [("x_migration_key", "=", "apto:Task:00T1")], ["id"])

    # the task is closed in the source: the delta maps it to a message
    result = load_batch(odoo, state, TASK_MSG, [_msg("00T1", "2030-01-02 09:00:00", lead)], run_id="delta")
    assert (result["created"], result["superseded"]) == (1, 1)
    assert odoo.call("mail.activity", "search_count", [[("x_migration_key", "=", "apto:Task:00T1")]]) == 0
    (msg,) = odoo.search_read("mail.message", [("x_migration_key", "=", "apto:Task:00T1")], ["date"])
    assert msg["date"] == "2030-01-02 09:00:00"
    bound = state.lookup(PAIR, "Task", ["00T1"])["00T1"]
    assert (bound.odoo_model, bound.odoo_id) == ("mail.message", msg["id"])
    removed = [m for m in state.iter_manifest("delta") if m["action"] == "deleted"]
    assert [(m["odoo_model"], m["odoo_id"]) for m in removed] == [("mail.activity", act["id"])]
    assert removed[0]["prior_values"]["summary"] == "Call back"
    # a rerun of the delta changes nothing (no second message, nothing else removed)
    again = load_batch(odoo, state, TASK_MSG, [_msg("00T1", "2030-01-02 09:00:00", lead)], run_id="delta")
    assert (again["created"], again["superseded"], again["skipped"]) == (0, 0, 1)

    back = rollback_run(odoo, state, "delta")
    assert back["status"] == "rolled_back"
    assert odoo.call("mail.message", "search_count", [[("x_migration_key", "=", "apto:Task:00T1")]]) == 0
    (act2,) = odoo.search_read("mail.activity", [("x_migration_key", "=", "apto:Task:00T1")],
                               ["summary", "date_deadline", "res_id", "user_id"])
    assert (act2["summary"], act2["date_deadline"], act2["res_id"]) == ("Call back", "2030-01-01", lead)
    rebound = state.lookup(PAIR, "Task", ["00T1"])["00T1"]
    assert (rebound.odoo_model, rebound.odoo_id) == ("mail.activity", act2["id"])
    # and the open task loads as unchanged again (no duplicate activity)
    assert load_batch(odoo, state, TASK_ACT, [activity], run_id="full-again")["created"] == 0
    assert odoo.call("mail.activity", "search_count", [[("x_migration_key", "=", "apto:Task:00T1")]]) == 1


def test_a_crash_after_the_message_landed_adopts_it_instead_of_posting_twice(odoo, state, lead):
    (lead_model,) = [m["id"] for m in odoo.search_read("ir.model", [("model", "=", "crm.lead")], ["id"])]
    load_batch(odoo, state, TASK_ACT, [{"source_id": "00T2", "values": {
        "res_model_id": lead_model, "res_id": lead, "summary": "x", "date_deadline": "2030-01-01", "user_id": 2}}],
        run_id="full")
    # the message landed in Odoo but the loader died before recording anything
    odoo.create_batch("mail.message", [_msg("00T2", "2030-01-02 09:00:00", lead)["values"]], keys=["apto:Task:00T2"])
    result = load_batch(odoo, state, TASK_MSG, [_msg("00T2", "2030-01-02 09:00:00", lead)], run_id="delta")
    assert (result["created"], result["adopted"], result["superseded"]) == (0, 1, 1)
    assert odoo.call("mail.message", "search_count", [[("x_migration_key", "=", "apto:Task:00T2")]]) == 1
    assert odoo.call("mail.activity", "search_count", [[("x_migration_key", "=", "apto:Task:00T2")]]) == 0


def test_messages_loaded_earlier_are_placed_back_in_date_order_when_older_ones_arrive(odoo, state, lead):
    def group(row):
        return row["values"]["model"], row["values"]["res_id"]

    # a sample loaded the newest message of the deal first
    load_batch(odoo, state, HISTORY, [_msg("h3", "2019-03-01 10:00:00", lead)], run_id="sample", order_group=group)
    (old,) = odoo.search_read("mail.message", [("x_migration_key", "=", "apto:OpportunityHistory:h3")], ["id"])
    full = [_msg("h1", "2019-01-01 10:00:00", lead), _msg("h2", "2019-02-01 10:00:00", lead),
            _msg("h3", "2019-03-01 10:00:00", lead)]
    result = load_batch(odoo, state, HISTORY, full, run_id="full", order_group=group)
    assert (result["created"], result["superseded"]) == (3, 1)
    msgs = odoo.search_read("mail.message", [("model", "=", "crm.lead"), ("res_id", "=", lead)],
                            ["x_migration_key"], order="id asc")
    assert [m["x_migration_key"] for m in msgs] == [f"apto:OpportunityHistory:h{i}" for i in (1, 2, 3)]
    assert old["id"] not in [m["id"] for m in msgs]                       # no second copy
    assert load_batch(odoo, state, HISTORY, full, run_id="full", order_group=group)["skipped"] == 3
    # rolling back the full run leaves the sample's message as the sample left it
    rollback_run(odoo, state, "full")
    (back,) = odoo.search_read("mail.message", [("model", "=", "crm.lead"), ("res_id", "=", lead)],
                               ["x_migration_key", "date"])
    assert (back["x_migration_key"], back["date"]) == ("apto:OpportunityHistory:h3", "2019-03-01 10:00:00")
    assert state.odoo_ids(PAIR, "OpportunityHistory", ["h3"]) == {"h3": back["id"]}
    # then rolling back the sample removes it, without force: the sample created the message, the full run's
    # rollback created it again under a new id, and that is the record the sample's rollback removes
    undone = rollback_run(odoo, state, "sample")
    assert (undone["status"], undone["unlinked"], undone["already_gone"]) == (
        "rolled_back", {"mail.message": 1}, {"mail.message": 0})
    assert odoo.call("mail.message", "search_count", [[("x_migration_key", "!=", False)]]) == 0
    assert state.odoo_ids(PAIR, "OpportunityHistory", ["h3"]) == {}


def test_a_message_edited_in_odoo_is_not_moved_for_the_order(odoo, state, lead):
    def group(row):
        return row["values"]["model"], row["values"]["res_id"]

    load_batch(odoo, state, HISTORY, [_msg("h3", "2019-03-01 10:00:00", lead)], run_id="sample", order_group=group)
    (old,) = odoo.search_read("mail.message", [("x_migration_key", "=", "apto:OpportunityHistory:h3")], ["id"])
    odoo.write_batch("mail.message", {old["id"]: {"body": "<p>annotated by a user</p>"}})
    full = [_msg("h1", "2019-01-01 10:00:00", lead), _msg("h3", "2019-03-01 10:00:00", lead)]
    result = load_batch(odoo, state, HISTORY, full, run_id="full", order_group=group)
    assert (result["created"], result["superseded"]) == (1, 0)
    (kept,) = odoo.search_read("mail.message", [("x_migration_key", "=", "apto:OpportunityHistory:h3")], ["body"])
    assert (kept["id"], kept["body"]) == (old["id"], "<p>annotated by a user</p>")
