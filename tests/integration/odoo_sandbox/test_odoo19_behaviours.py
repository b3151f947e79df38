"""Odoo 19.0 where it differs from 17.0 on what the tool writes, one body each on the sandbox's 19 mode and the
real Odoo 19 server (JSON-2 with an API key; one database for the module), both held to the captures of
``data/`` (``python -m crm_sandbox.odoo.capture --server odoo19``): the ``fields_get`` of every model the Apto pair
writes or resolves (so the sandbox's answers are the real server's, attribute for attribute), the default records
and defaults, activities without an assignee, a meeting's contact details block, ``record_name`` and
``won_status`` computed, archive versus lost, the 17-only fields refused. Where the two disagree the real server
is right and the sandbox is mended."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crm_sandbox.odoo.capture import ATTRIBUTES
from crm_sandbox.odoo.schema import load_data
from crm_sandbox.odoo.testing import post_json

pytestmark = pytest.mark.integration
RECORDS = load_data("records19.json")
#: records19.json key -> model (the lists of default records)
RECORD_KEYS = {k: k.split(" (")[0] for k, v in RECORDS.items() if isinstance(v, list) and v
               and k != "ir.module.module (installed)"}
DT = re.compile(r"\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d)?$")


@pytest.fixture(scope="module", params=("sandbox19", "odoo19"))
def odoo_target(request, make_odoo_target):
    target, close = make_odoo_target(request.param, "t_odoo19_behaviours")
    yield target
    close()


@pytest.fixture(scope="module")
def j2(odoo_target):
    """``j2(model, method, **body) -> (status, answer)`` over JSON-2 (an error answer without its traceback)."""
    def call(model: str, method: str, **body: Any) -> tuple[int, Any]:
        status, answer, _ = post_json(f"{odoo_target.url}/json/2/{model}/{method}", body, {
            "Authorization": f"bearer {odoo_target.api_key}", "X-Odoo-Database": odoo_target.db})
        if isinstance(answer, dict):
            answer.pop("debug", None)
        return status, answer
    return call


def ok(answer: tuple[int, Any]) -> Any:
    status, got = answer
    assert status == 200, got
    return got


def _pair_models() -> list[str]:
    """The models the Apto pair (as on 19) writes, and those its lookups resolve."""
    from crm_migration.mapping.spec import load_pair

    spec = load_pair("apto_to_odoo").for_target(19)
    return sorted({o.model for o in spec.objects.values() if o.model} | {lk.model for lk in spec.lookups.values()})


MODELS = _pair_models()


def test_the_pair_writes_the_models_that_changed_on_19():
    assert {"res.partner", "crm.lead", "crm.stage", "mail.message", "mail.activity", "calendar.event",
            "ir.attachment", "res.users"} <= set(MODELS) <= set(load_data("fields19.json"))


@pytest.mark.parametrize("model", MODELS)
def test_fields_get_is_the_captured_19_schema(model, j2):
    want, got = load_data("fields19.json")[model], ok(j2(model, "fields_get", attributes=list(ATTRIBUTES)))
    assert sorted(want.keys() - got.keys()) == [] and sorted(got.keys() - want.keys()) == []
    assert {f: {a: (want[f].get(a), got[f].get(a)) for a in want[f].keys() | got[f].keys()
                if want[f].get(a) != got[f].get(a)} for f in want if want[f] != got[f]} == {}


@pytest.mark.parametrize("key", sorted(RECORD_KEYS))
def test_default_records_are_the_captured_ones(key, j2):
    model, recs = RECORD_KEYS[key], RECORDS[key]
    fields = sorted({f for r in recs for f in r} - {"id", "xmlid", "country_code"})
    got = {r["id"]: r for r in ok(j2(model, "search_read", domain=[("id", "in", [r["id"] for r in recs])],
                                     fields=fields, context={"active_test": False}))}
    for rec in recs:
        assert got.get(rec["id"]) == {f: rec[f] for f in ["id", *fields]}, rec["xmlid"]


@pytest.mark.parametrize("model", sorted(RECORDS["default_get (admin, empty context)"]))
def test_default_get_is_the_captured_one(model, j2):
    want = RECORDS["default_get (admin, empty context)"][model]["jsonrpc_result"]
    names = sorted(ok(j2(model, "fields_get", attributes=["type"])))
    got = ok(j2(model, "default_get", fields=names))
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        if isinstance(v, str) and DT.match(v):
            assert isinstance(got[k], str) and len(got[k]) == len(v), k      # dated "now": same shape
        else:
            assert got[k] == v, k


def test_an_activity_needs_a_document_or_an_assignee_and_gets_no_assignee_by_default(j2):
    status, got = j2("mail.activity", "create", vals_list=[{"summary": "Floating"}])
    assert (status, got["name"], got["message"]) == (
        422, "odoo.exceptions.ValidationError",
        "The operation cannot be completed: Activities must be assigned if not attached to a document.")
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Deal A19"}]))
    (model_id,) = ok(j2("ir.model", "search", domain=[("model", "=", "crm.lead")]))
    (act,) = ok(j2("mail.activity", "create", vals_list=[{"res_model_id": model_id, "res_id": lead, "summary": "s"}]))
    (row,) = ok(j2("mail.activity", "read", ids=[act], fields=["user_id", "activity_type_id", "res_model", "res_name"]))
    assert row == {"id": act, "user_id": False, "activity_type_id": [4, "To-Do"], "res_model": "crm.lead",
                   "res_name": "Deal A19"}


def test_a_meeting_gets_its_organizer_and_first_contact_in_its_description_and_keeps_its_notes(j2):
    (pid,) = ok(j2("res.partner", "create", vals_list=[{"name": "Jo Contact", "email": "jo@x.example",
                                                        "phone": "+1 555"}]))
    (uid,) = ok(j2("res.users", "create", vals_list=[{"name": "Rep Nineteen", "login": "rep19@x.example",
                                                      "email": "rep19@x.example"}]))
    jo = '<strong>Contact Details</strong><br>Jo Contact<br><a href="mailto:jo@x.example">jo@x.example</a><br>' \
         '<a href="tel:+1%20555">+1 555</a>'
    cases = [
        ({"user_id": uid, "partner_ids": [[6, 0, [pid]]], "description": "<p>hello</p>"},
         '<div><p>hello</p><br><strong>Organized by</strong><br>Rep Nineteen<br>'
         f'<a href="mailto:rep19@x.example">rep19@x.example</a><br><br>{jo}</div>', False),
        ({"partner_ids": [[6, 0, [pid, 3]]]},               # the caller organizes; admin has no email on 19
         f"<div><strong>Organized by</strong><br>Administrator<br><br>{jo}</div>", False),
        ({"notes": "<p>n</p>"}, "<div><strong>Organized by</strong><br>Administrator</div>", "<p>n</p>"),
    ]
    for vals, description, notes in cases:
        (eid,) = ok(j2("calendar.event", "create", vals_list=[{"name": "M19", "start": "2020-01-01 10:00:00",
                                                                "stop": "2020-01-01 11:00:00", **vals}],
                       context={"no_mail_to_attendees": True}))
        (row,) = ok(j2("calendar.event", "read", ids=[eid], fields=["description", "notes", "privacy"]))
        assert row == {"id": eid, "description": description, "notes": notes, "privacy": False}, vals
    (eid,) = ok(j2("calendar.event", "create", vals_list=[{"name": "M19", "start": "2020-01-01 10:00:00",
                                                            "partner_ids": [[6, 0, [pid]]]}],
                   context={"skip_contact_description": True}))
    assert ok(j2("calendar.event", "read", ids=[eid], fields=["description"]))[0]["description"] is False


def test_record_name_and_won_status_are_computed(j2):
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Deal B19"}]))
    (mid,) = ok(j2("mail.message", "create", vals_list=[{"model": "crm.lead", "res_id": lead, "body": "b",
                                                         "record_name": "ignored", "message_type": "comment"}]))
    assert ok(j2("mail.message", "read", ids=[mid], fields=["record_name", "email_from", "display_name"])) == [
        {"id": mid, "record_name": "Deal B19", "email_from": False, "display_name": False}]
    assert ok(j2("crm.lead", "read", ids=[lead], fields=["won_status"])) == [{"id": lead, "won_status": "pending"}]
    ok(j2("crm.lead", "write", ids=[lead], vals={"stage_id": 4}))                     # Won
    assert ok(j2("crm.lead", "read", ids=[lead], fields=["won_status", "probability"])) == [
        {"id": lead, "won_status": "won", "probability": 100.0}]
    status, got = j2("crm.lead", "action_set_lost", ids=[lead])                      # 19.0's _check_won_validity
    assert (status, got["name"], got["message"]) == (
        422, "odoo.exceptions.ValidationError", "A lead in a Won stage cannot be lost. Move it to another stage first.")
    ok(j2("crm.lead", "write", ids=[lead], vals={"stage_id": 1}))
    ok(j2("crm.lead", "action_set_lost", ids=[lead]))
    assert ok(j2("crm.lead", "read", ids=[lead], fields=["won_status", "probability", "active"],
                 context={"active_test": False})) == [{"id": lead, "won_status": "lost", "probability": 0.0,
                                                      "active": False}]


def test_a_stage_date_given_to_create_is_kept_and_a_stage_change_still_resets_it(j2):
    """17 sets ``date_last_stage_update`` (and ``date_open``) to now on create whatever it is given (loader trap 2);
    19 computes them only when empty, so a deal's historical stage date can come with its create."""
    then, opened, closed = "2019-03-04 05:06:07", "2018-01-02 03:04:05", "2019-04-05 06:07:08"
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Dated B19", "stage_id": 4, "user_id": 2,
                                                      "date_last_stage_update": then, "date_open": opened,
                                                      "date_closed": closed}]))
    fields = ["date_last_stage_update", "date_open", "date_closed"]
    assert ok(j2("crm.lead", "read", ids=[lead], fields=fields)) == [
        {"id": lead, "date_last_stage_update": then, "date_open": opened, "date_closed": closed}]
    ok(j2("crm.lead", "write", ids=[lead], vals={"stage_id": 1, "date_last_stage_update": then}))
    (got,) = ok(j2("crm.lead", "read", ids=[lead], fields=fields))
    assert got["date_last_stage_update"] != then and got["date_closed"] is False


def test_an_archived_lead_keeps_its_probability_a_lost_one_is_at_zero(j2):
    won, open_, lost = ok(j2("crm.lead", "create", vals_list=[{"name": "Won arch", "stage_id": 4},
                                                              {"name": "Open arch", "probability": 30},
                                                              {"name": "Lost", "probability": 30}]))
    ok(j2("crm.lead", "action_archive", ids=[won, open_]))
    ok(j2("crm.lead", "action_set_lost", ids=[lost], lost_reason_id=1))
    got = {r["name"]: (r["active"], r["probability"], r["won_status"], r["lost_reason_id"] and r["lost_reason_id"][0])
           for r in ok(j2("crm.lead", "read", ids=[won, open_, lost],
                          fields=["name", "active", "probability", "won_status", "lost_reason_id"],
                          context={"active_test": False}))}
    assert got == {"Won arch": (False, 100.0, "won", False), "Open arch": (False, 30.0, "pending", False),
                   "Lost": (False, 0.0, "lost", 1)}


def _addr(j2, pid):
    (row,) = ok(j2("res.partner", "read", ids=[pid], fields=["street", "city"]))
    return row["street"], row["city"]


def test_a_contacts_address_goes_up_to_its_company_an_other_address_stays_its_own(j2):
    """19.0's _fields_sync: a contact-type child's address is its company's (written up, then down to the other
    contacts); an 'other' address (how the pair keeps a contact's own address) touches nothing else."""
    bare, solo = ok(j2("res.partner", "create", vals_list=[{"name": "Bare 19", "is_company": True},
                                                           {"name": "Solo 19", "is_company": True}]))
    ok(j2("res.partner", "create", vals_list=[{"name": "Own", "type": "other", "parent_id": bare,
                                               "street": "1 Own St", "city": "Austin"}]))
    assert _addr(j2, bare) == (False, False)
    first, second = ok(j2("res.partner", "create", vals_list=[
        {"name": "First", "type": "contact", "parent_id": bare, "street": "9 Elm Ave", "city": "Denver"},
        {"name": "Second", "type": "contact", "parent_id": bare}]))
    assert _addr(j2, bare) == _addr(j2, first) == _addr(j2, second) == ("9 Elm Ave", "Denver")
    ok(j2("res.partner", "write", ids=[second], vals={"street": "2 New Rd"}))
    assert _addr(j2, bare) == _addr(j2, first) == ("2 New Rd", "Denver")
    (kid,) = ok(j2("res.partner", "create", vals_list=[{"name": "Kid", "type": "other", "street": "5 Kid Ln"}]))
    ok(j2("res.partner", "write", ids=[kid], vals={"parent_id": solo}))
    assert _addr(j2, solo) == (False, False) and _addr(j2, kid) == ("5 Kid Ln", False)


def test_a_meeting_linked_to_a_record_makes_its_meeting_activity_there(j2):
    """17.0 made it only from a record's form (a context key); 19.0 whenever res_model_id/res_id name a record."""
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Deal M19"}]))
    (model_id,) = ok(j2("ir.model", "search", domain=[("model", "=", "crm.lead")]))
    (uid,) = ok(j2("res.users", "create", vals_list=[{"name": "Rep M19", "login": "repm19@x.example",
                                                      "email": "repm19@x.example"}]))
    eid = ok(j2("calendar.event", "create", vals_list=[{
        "name": "Tour 19", "start": "2030-03-04 10:00:00", "stop": "2030-03-04 11:00:00", "user_id": uid,
        "res_model_id": model_id, "res_id": lead, "description": "<p>Bring the keys</p>"}],
        context={"no_mail_to_attendees": True, "mail_create_nosubscribe": True}))[0]
    acts = ok(j2("mail.activity", "search_read", domain=[("res_model", "=", "crm.lead"), ("res_id", "=", lead)],
                 fields=["activity_type_id", "summary", "date_deadline", "user_id", "calendar_event_id", "note"]))
    assert [{k: (v[0] if isinstance(v, list) else v) for k, v in a.items() if k != "id"} for a in acts] == [
        {"activity_type_id": 3, "summary": "Tour 19", "date_deadline": "2030-03-04", "user_id": uid,
         "calendar_event_id": eid, "note": "<p>Bring the keys</p>"}]


def test_attendees_do_not_follow_a_meeting(j2):
    (pid,) = ok(j2("res.partner", "create", vals_list=[{"name": "Attendee 19", "email": "att19@x.example"}]))
    (eid,) = ok(j2("calendar.event", "create", vals_list=[{"name": "F19", "start": "2020-01-01 10:00:00",
                                                            "partner_ids": [[6, 0, [pid, 3]]]}],
                   context={"no_mail_to_attendees": True}))
    followers = ok(j2("mail.followers", "search_read", domain=[("res_model", "=", "calendar.event"),
                                                               ("res_id", "=", eid)], fields=["partner_id"]))
    assert [f["partner_id"][0] for f in followers] == [3]             # the caller only


@pytest.mark.parametrize(("raw", "stored"), [("<div>a</div>", "<div>a</div>"),
                                             ("<div><p>x</p><p>y</p></div>", "<div><p>x</p><p>y</p></div>"),
                                             ("<p>a</p><p>b</p>", "<p>a</p><p>b</p>"), ("plain", "<p>plain</p>")])
def test_a_div_given_in_html_stays(raw, stored, j2):
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Html 19", "description": raw}]))
    assert ok(j2("crm.lead", "read", ids=[lead], fields=["description"]))[0]["description"] == stored


def test_a_lead_takes_the_first_stage_of_its_team_or_of_all_teams(j2):
    (team,) = ok(j2("crm.team", "create", vals_list=[{"name": "Team 19"}]))
    (own,) = ok(j2("crm.stage", "create", vals_list=[{"name": "Own first", "sequence": 0,
                                                      "team_ids": [[6, 0, [team]]]}]))
    leads = ok(j2("crm.lead", "create", vals_list=[{"name": "In team", "team_id": team},
                                                   {"name": "Other team", "team_id": 1}]))
    got = {r["name"]: r["stage_id"][0] for r in ok(j2("crm.lead", "read", ids=leads, fields=["name", "stage_id"]))}
    assert got == {"In team": own, "Other team": 1}


def test_the_17_only_fields_and_models_are_refused(j2):
    partner, stage = ok(j2("res.partner", "fields_get", attributes=["type"])), ok(j2("crm.stage", "fields_get",
                                                                                     attributes=["type"]))
    assert "mobile" not in partner and "title" not in partner
    assert "team_id" not in stage and stage["team_ids"]["type"] == "many2many"
    assert j2("res.partner", "create", vals_list=[{"name": "x", "mobile": "1"}]) == (500, {
        "name": "builtins.ValueError", "message": "Invalid field 'mobile' in 'res.partner'",
        "arguments": ["Invalid field 'mobile' in 'res.partner'"], "context": {}})
    status, got = j2("res.partner", "write", ids=[3], vals={"mobile": "1"})
    assert (status, got["name"], got["message"]) == (500, "builtins.KeyError", "mobile")
    status, got = j2("crm.stage", "create", vals_list=[{"name": "S", "team_id": 1}])
    assert (status, got["message"]) == (500, "Invalid field 'team_id' in 'crm.stage'")
    status, got = j2("res.partner.title", "search", domain=[])
    assert (status, got["name"], got["message"]) == (404, "werkzeug.exceptions.NotFound",
                                                     "the model 'res.partner.title' does not exist")


def test_archiving_a_record_keeps_its_activities_on_19(j2):
    """19.0 no longer unlinks the activities of a record it archives (17.0 does: test_behaviours.py)."""
    (lead,) = ok(j2("crm.lead", "create", vals_list=[{"name": "Deal archived A19"}]))
    (model_id,) = ok(j2("ir.model", "search", domain=[("model", "=", "crm.lead")]))
    (act,) = ok(j2("mail.activity", "create", vals_list=[{"res_model_id": model_id, "res_id": lead, "summary": "s"}]))
    ok(j2("crm.lead", "write", ids=[lead], vals={"active": False}))
    assert ok(j2("mail.activity", "search", domain=[("res_model", "=", "crm.lead"), ("res_id", "=", lead)])) == [act]
