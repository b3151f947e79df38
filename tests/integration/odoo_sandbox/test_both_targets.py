"""Facts of Odoo the tool relies on, checked on the sandbox and on the real Odoo 17 (one body each).

Where the two disagree the real server is right and the sandbox is mended; each case here is one such
fact (``../shared/odoo17/loader-traps.md``, ``behaviours.json``).
"""

from __future__ import annotations

import pytest

from crm_migration.hooks.odoo import OdooMissingRecord, OdooRecordError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpc(odoo_target):
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def hook(odoo_target):
    from crm_migration.engine.schema import ensure_migration_keys
    from crm_migration.hooks.odoo import OdooHook

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="jsonrpc"))
        h = OdooHook()
        ensure_migration_keys(h, ["res.partner", "crm.lead", "mail.activity"])
        yield h
        h.close()


@pytest.fixture(scope="module")
def other_user(rpc):
    """A sales rep who is not the migration user."""
    return rpc("res.users", "create", {"name": "Rep Other", "login": "rep.other@example.com",
                                       "email": "rep.other@example.com"})


def _mail_counts(rpc) -> tuple[int, int]:
    return (rpc("mail.mail", "search_count", [], context={"active_test": False}),
            rpc("mail.message", "search_count", [("message_type", "=", "user_notification")]))


def test_reading_only_id_answers_deleted_records_too_and_the_hook_does_not(rpc, hook):
    pid = rpc("res.partner", "create", {"name": "Soon gone"})
    rpc("res.partner", "unlink", [pid])
    assert rpc("res.partner", "read", [pid], ["id"]) == [{"id": pid}]      # Odoo fetches no column
    assert rpc("res.partner", "read", [pid], ["name"]) == []
    assert hook.read("res.partner", [pid], ["id"]) == []
    archived = rpc("res.partner", "create", {"name": "Archived", "active": False})
    assert hook.read("res.partner", [pid, archived], ["id"]) == [{"id": archived}]


def test_an_activity_assigned_to_another_user_mails_them_unless_quick_update(rpc, hook, other_user):
    lead = rpc("crm.lead", "create", {"name": "Deal for the rep"})
    (model_id,) = rpc("ir.model", "search", [("model", "=", "crm.lead")])
    vals = {"res_model_id": model_id, "res_id": lead, "user_id": other_user, "summary": "Call back",
            "date_deadline": "2030-01-01"}
    before = _mail_counts(rpc)
    rpc("mail.activity", "create", vals, context={"tracking_disable": True, "mail_create_nolog": True,
                                                   "mail_create_nosubscribe": True, "mail_notrack": True})
    mails, notes = _mail_counts(rpc)
    assert (mails - before[0], notes - before[1]) == (1, 1)       # the trap: the four keys are not enough
    before = (mails, notes)
    hook.create_batch("mail.activity", [dict(vals, summary="Keyed")], keys=["test:Task:1"])
    assert _mail_counts(rpc) == before                          # the migration context queues nothing


def test_two_activities_of_one_user_on_one_record_he_does_not_follow_fail_one_create_on_17(rpc, hook, other_user,
                                                                                           odoo_target):
    """Odoo 17's ``mail.activity.create`` subscribes each activity's user once per activity: two of one user on one
    record he does not follow yet insert the same follower twice and the whole call is refused. Once he follows the
    record, or on 19, they go in one call. The hook names what one call may hold once (the loader's rounds)."""
    (lead,) = hook.create_batch("crm.lead", [{"name": "Two tasks"}], keys=["test:Deal:two-tasks"])
    (model_id,) = rpc("ir.model", "search", [("model", "=", "crm.lead")])

    def tasks(*ns):
        return hook.create_batch("mail.activity", [
            {"res_model_id": model_id, "res_id": lead, "user_id": other_user, "summary": f"Task {n}",
             "date_deadline": "2030-01-01"} for n in ns], keys=[f"test:Task:two-{n}" for n in ns])

    if odoo_target.version >= 19:
        assert hook.create_apart("mail.activity") == ()
        tasks(1, 2)
        tasks(3)
    else:
        assert hook.create_apart("mail.activity") == ("res_model_id", "res_id", "user_id")
        with pytest.raises(OdooRecordError, match="a partner cannot follow twice the same object"):
            tasks(1, 2)
        assert rpc("mail.activity", "search_count", [("res_model", "=", "crm.lead"), ("res_id", "=", lead)]) == 0
        tasks(1)
        tasks(2, 3)                                     # he follows the deal now: one call takes both
    assert hook.create_apart("res.partner") == ()
    got = rpc("mail.activity", "search_read", [("res_model", "=", "crm.lead"), ("res_id", "=", lead)],
              fields=["summary", "user_id"], order="summary")
    assert [(a["summary"], a["user_id"][0]) for a in got] == [(f"Task {n}", other_user) for n in (1, 2, 3)]
    (partner,) = rpc("res.users", "read", [other_user], ["partner_id"])[0]["partner_id"][:1]
    assert rpc("mail.followers", "search_count", [("res_model", "=", "crm.lead"), ("res_id", "=", lead),
                                                  ("partner_id", "=", partner)]) == 1


def test_read_under_active_test_false_lists_archived_records_of_a_one2many_and_search_read_does_not(rpc):
    """Odoo 17's search_read applies active_test to its search only: what it reads, it reads without it."""
    partner = rpc("res.partner", "create", {"name": "Owner of an archived user"})
    user = rpc("res.users", "create", {"name": "Gone Rep", "login": "gone.rep@example.com", "partner_id": partner})
    rpc("res.users", "write", [user], {"active": False})
    ctx = {"active_test": False}
    assert rpc("res.partner", "read", [partner], ["user_ids"], context=ctx)[0]["user_ids"] == [user]
    assert rpc("res.partner", "read", [partner], ["user_ids"])[0]["user_ids"] == []
    (found,) = rpc("res.partner", "search_read", [("id", "=", partner)], fields=["user_ids"], context=ctx)
    assert found["user_ids"] == []


def test_a_stage_write_resets_the_stage_and_close_dates_written_with_it(rpc):
    """What a rollback writing a deal's prior values back meets: those two take a second write."""
    stages = rpc("crm.stage", "search_read", [], fields=["is_won"])
    new, other = [s["id"] for s in stages if not s["is_won"]][:2]
    won = next(s["id"] for s in stages if s["is_won"])
    lead = rpc("crm.lead", "create", {"name": "Dated deal", "type": "opportunity", "stage_id": new})
    rpc("crm.lead", "write", [lead], {"stage_id": won, "probability": 100, "date_closed": "2020-02-02 00:00:00",
                                      "date_last_stage_update": "2020-01-01 00:00:00"})
    (got,) = rpc("crm.lead", "read", [lead], ["date_closed", "date_last_stage_update"])
    assert got["date_closed"] != "2020-02-02 00:00:00" and got["date_last_stage_update"] != "2020-01-01 00:00:00"
    rpc("crm.lead", "write", [lead], {"stage_id": other, "probability": 10, "date_closed": "2020-02-02 00:00:00"})
    assert rpc("crm.lead", "read", [lead], ["date_closed"])[0]["date_closed"] is False
    rpc("crm.lead", "write", [lead], {"date_closed": "2020-02-02 00:00:00", "date_last_stage_update": "2020-01-01 00:00:00"})
    (got,) = rpc("crm.lead", "read", [lead], ["date_closed", "date_last_stage_update"])
    assert (got["date_closed"], got["date_last_stage_update"]) == ("2020-02-02 00:00:00", "2020-01-01 00:00:00")


def test_distinct_values_per_record_are_written_in_one_load_call(rpc, hook):
    """Loader trap 9: ``write`` sends one set of values to every id; ``load()`` with a ``.id`` column writes a
    value per record in one call. The hook's ``write_batch`` uses it for records whose values differ (an
    archived record too), and a refused value raises naming the field, with nothing of that call written."""
    partners = hook.create_batch("res.partner", [{"name": f"Load target {i}"} for i in range(3)])
    leads = hook.create_batch("crm.lead", [{"name": f"Loaded deal {i}", "type": "opportunity"} for i in range(12)])
    rpc("crm.lead", "write", [leads[-1]], {"active": False})
    wanted = {lead: {"date_last_stage_update": f"2019-03-{i + 1:02d} {i:02d}:{i + 10}:07",
                     "partner_id": partners[i % 3] if i % 4 else False, "probability": i * 1.5,
                     "description": f"<p>deal {i}</p>"} for i, lead in enumerate(leads)}
    hook.fields_get("crm.lead")                                    # cached: the types load() needs
    before = dict(hook.calls)
    assert hook.write_batch("crm.lead", wanted) == 1
    assert {k: n - before.get(k, 0) for k, n in hook.calls.items() if n != before.get(k, 0)} == {("crm.lead", "load"): 1}
    got = {r["id"]: r for r in rpc("crm.lead", "read", leads, ["date_last_stage_update", "partner_id", "probability",
                                                                "description"], context={"active_test": False})}
    assert {i: (g["date_last_stage_update"], g["partner_id"] and g["partner_id"][0], g["probability"],
                g["description"]) for i, g in got.items()} == {
        i: (w["date_last_stage_update"], w["partner_id"], w["probability"], w["description"]) for i, w in wanted.items()}
    with pytest.raises(OdooRecordError) as refused:
        hook.write_batch("crm.lead", {leads[0]: {"date_last_stage_update": "2018-01-01 00:00:00"},
                                      leads[1]: {"date_last_stage_update": "2018-13-01 00:00:00"}})
    assert refused.value.field == "date_last_stage_update" and "2018-13-01" in refused.value.message
    assert rpc("crm.lead", "read", [leads[0]], ["date_last_stage_update"])[0]["date_last_stage_update"] == \
        wanted[leads[0]]["date_last_stage_update"]                 # nothing of the refused call was written
    with pytest.raises(OdooMissingRecord) as gone:
        hook.write_batch("crm.lead", {leads[0]: {"date_last_stage_update": "2018-01-01 00:00:00"},
                                      999999: {"date_last_stage_update": "2018-02-01 00:00:00"}})
    assert gone.value.ids == (999999,)


def test_load_reads_datetimes_in_the_context_time_zone_and_finds_ids_under_active_test(rpc):
    """What the hook's ``load()`` call relies on: it passes ``tz: UTC`` and ``active_test: False``."""
    lead = rpc("crm.lead", "create", {"name": "Zoned deal", "type": "opportunity"})
    cols = [".id", "date_last_stage_update"]
    done = rpc("crm.lead", "load", cols, [[str(lead), "2020-06-01 12:00:00"]], context={"tz": "Europe/Brussels"})
    assert done["ids"] == [lead] and done["messages"] == []
    assert rpc("crm.lead", "read", [lead], ["date_last_stage_update"])[0]["date_last_stage_update"] == \
        "2020-06-01 10:00:00"                                          # Brussels summer time is UTC+2
    rpc("crm.lead", "write", [lead], {"active": False})
    hidden = rpc("crm.lead", "load", cols, [[str(lead), "2020-06-02 12:00:00"]], context={"tz": "UTC"})
    assert hidden["ids"] is False                  # (Odoo then tries the row as a new record: more errors follow)
    first = hidden["messages"][0]
    assert (first["type"], first["field"], first["message"]) == ("error", ".id", f"Unknown database identifier '{lead}'")
    found = rpc("crm.lead", "load", cols, [[str(lead), "2020-06-02 12:00:00"]],
                context={"tz": "UTC", "active_test": False})
    assert found["ids"] == [lead] and found["messages"] == []
