"""How Odoo 17 links a meeting to its record, on the sandbox and on the real Odoo 17 (one body each).

Loader trap 5 said a meeting created with ``res_model_id``/``res_id`` gets a meeting activity: the real
server does that only when the call comes from a record's form (``default_res_model`` or
``active_model`` in the context), never over plain RPC. A deal given with the create posts "Meeting
scheduled" on the lead; written afterwards it posts nothing. A partner's Meetings are the meetings it
(or a partner under it) attends.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration
#: Odoo 17's meeting links; Odoo 19's own: tests/integration/odoo_sandbox/test_odoo19_behaviours.py
ODOO_TARGETS = ("sandbox", "odoo17")

QUIET = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True,
         "mail_notrack": True, "no_mail_to_attendees": True}
PAST, LATER = ("2020-01-02 10:00:00", "2020-01-02 11:00:00"), ("2031-01-02 10:00:00", "2031-01-02 11:00:00")


@pytest.fixture(scope="module")
def rpc(odoo_target):
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def world(rpc):
    rep = rpc("res.users", "create", {"name": "Meeting Rep", "login": "meeting.rep@example.com",
                                      "email": "meeting.rep@example.com"})
    company = rpc("res.partner", "create", {"name": "Meeting Co", "is_company": True}, context=QUIET)
    contact = rpc("res.partner", "create", {"name": "Meeting Contact", "parent_id": company,
                                            "email": "meeting.contact@example.com"}, context=QUIET)
    lead = rpc("crm.lead", "create", {"name": "Meeting deal", "type": "opportunity"}, context=QUIET)
    models = {m["model"]: m["id"] for m in rpc("ir.model", "search_read", [["model", "in", ["crm.lead", "res.partner"]]],
                                                fields=["model"])}
    return {"rep": rep, "company": company, "contact": contact, "lead": lead, "models": models}


def _counts(rpc) -> dict[str, int]:
    return {m: rpc(m, "search_count", []) for m in ("mail.message", "mail.activity", "mail.mail")}


def _event(rpc, world, when=PAST, context=QUIET, **vals) -> int:
    return rpc("calendar.event", "create", {"name": "Tour", "start": when[0], "stop": when[1], "user_id": world["rep"],
                                            "partner_ids": [[6, 0, [world["contact"]]]], **vals}, context=context)


@pytest.mark.parametrize("when", [PAST, LATER], ids=["past", "future"])
def test_res_model_and_res_id_make_an_activity_only_from_a_record_form(rpc, world, when):
    lead_model = world["models"]["crm.lead"]
    before = _counts(rpc)
    eid = _event(rpc, world, when, res_model_id=lead_model, res_id=world["lead"])
    assert _counts(rpc) == before                 # linked, and nothing else: no activity, no message, no mail
    assert rpc("calendar.event", "read", [eid], fields=["res_model", "res_id"])[0] == {
        "id": eid, "res_model": "crm.lead", "res_id": world["lead"]}
    for ctx in ({"default_res_model": "crm.lead"}, {"active_model": "crm.lead", "active_id": world["lead"]}):
        mails = rpc("mail.mail", "search_count", [])
        eid = _event(rpc, world, when, context={**QUIET, **ctx}, res_model_id=lead_model, res_id=world["lead"])
        (act,) = rpc("mail.activity", "search_read", [["calendar_event_id", "=", eid]],
                     fields=["res_model", "res_id", "activity_type_id", "summary", "user_id"])
        assert (act["res_model"], act["res_id"], act["activity_type_id"][1], act["summary"], act["user_id"][0]) == (
            "crm.lead", world["lead"], "Meeting", "Tour", world["rep"])
        # and the organizer, not the caller, is mailed "assigned to you" (loader trap 8): a path a migration avoids
        assert rpc("mail.mail", "search_count", []) == mails + 1
        rpc("mail.activity", "unlink", [act["id"]])


def test_a_deal_given_with_the_create_posts_on_the_lead_written_later_posts_nothing(rpc, world):
    lead = world["lead"]

    def lead_messages() -> int:
        return rpc("mail.message", "search_count", [["model", "=", "crm.lead"], ["res_id", "=", lead]])

    before = lead_messages()
    eager = _event(rpc, world, opportunity_id=lead)
    assert lead_messages() == before + 1                    # "Meeting scheduled at ..." (loader trap 5)
    counts = _counts(rpc)
    later = _event(rpc, world)
    rpc("calendar.event", "write", [later], {"opportunity_id": lead}, context=QUIET)
    assert _counts(rpc) == counts                           # the deferred write: no message, no activity
    assert rpc("calendar.event", "read", [later], fields=["opportunity_id"])[0]["opportunity_id"][0] == lead
    (row,) = rpc("crm.lead", "read", [lead], fields=["calendar_event_ids"])
    assert {eager, later} <= set(row["calendar_event_ids"])


def test_a_partner_s_meetings_are_those_it_or_a_partner_under_it_attends(rpc, world):
    company, contact = world["company"], world["contact"]

    def meetings(pid: int) -> tuple[set[int], int]:
        (row,) = rpc("res.partner", "read", [pid], fields=["meeting_ids", "meeting_count"])
        return set(row["meeting_ids"]), row["meeting_count"]

    (co_ids, co_count), (ct_ids, ct_count) = meetings(company), meetings(contact)
    mails = rpc("mail.mail", "search_count", [])
    with_contact = _event(rpc, world)
    with_both = _event(rpc, world, LATER, partner_ids=[[6, 0, [contact, company]]])
    counts = _counts(rpc)
    added = _event(rpc, world)
    rpc("calendar.event", "write", [added], {"partner_ids": [[6, 0, [contact, company]]]}, context=QUIET)
    assert _counts(rpc) == counts                           # an attendee added later: no mail, no message
    assert meetings(company) == (co_ids | {with_both, added}, co_count + 3)   # its own, and its contact's
    assert meetings(contact) == (ct_ids | {with_contact, with_both, added}, ct_count + 3)
    # attendees follow the meeting; the caller is not subscribed under mail_create_nosubscribe
    followers = rpc("mail.followers", "search_read", [["res_model", "=", "calendar.event"], ["res_id", "=", with_both]],
                    fields=["partner_id"])
    assert sorted(f["partner_id"][0] for f in followers) == sorted([contact, company])
    rpc("calendar.event", "write", [with_both], {"partner_ids": [[6, 0, [contact]]]}, context=QUIET)
    followers = rpc("mail.followers", "search_read", [["res_model", "=", "calendar.event"], ["res_id", "=", with_both]],
                    fields=["partner_id"])
    assert [f["partner_id"][0] for f in followers] == [contact]
    assert rpc("mail.mail", "search_count", []) == mails          # attendees are never mailed under the context
