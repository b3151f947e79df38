"""map_record on representative Apto records: the exact values Odoo needs; errors become dead-letter rows."""

from __future__ import annotations

import base64
import json

import pytest

from crm_migration.engine.values import canonical
from crm_migration.mapping.mapper import (
    CountryIndex,
    StateIndex,
    StaticRefs,
    break_cycles,
    get_path,
    hierarchy_levels,
    lookups_needed,
    map_batch,
    map_record,
    matches,
    refs_needed,
    resolve_owners,
    timeline_position,
)
from crm_migration.mapping.spec import PairSpec, load_pair

# Salesforce-shaped ids (key prefix + 15 characters)
ACC, ACC_PARENT, ACC_OTHER = "0015g00000Acc01AAA", "0015g00000Par01AAA", "0015g00000Oth01AAA"
CON, CON_2 = "0035g00000Con01AAA", "0035g00000Con02AAA"
OPP, RT = "0065g00000Opp01AAA", "0125g00000Rt001AAA"
USR, USR_UNMATCHED = "0055g00000Usr01AAA", "0055g00000Usr02AAA"
LEAD = "00Q5g00000Led01AAA"


@pytest.fixture(scope="module")
def pair() -> PairSpec:
    return load_pair("apto_to_odoo").with_namespace("McLabs2")


@pytest.fixture(scope="module")
def odoo_records(shared_dir) -> dict:
    return json.loads((shared_dir / "odoo17" / "records.json").read_text())


@pytest.fixture
def refs(odoo_records) -> StaticRefs:
    countries = CountryIndex(odoo_records["res.country"])
    states = StateIndex(odoo_records["res.country.state (US, CA, DE)"], countries, {"DE": {"Bavaria": "Bayern"}})
    owners = resolve_owners([{"Id": USR, "Name": "Ada", "Email": "Admin@Example.com"},
                             {"Id": USR_UNMATCHED, "Name": "Ex", "Email": "ex@old.invalid"}],
                            odoo_records["res.users"], fallback_login="admin")
    return StaticRefs(
        ids={"Account": {ACC: 11, ACC_PARENT: 10, ACC_OTHER: 12}, "Contact": {CON: 21},
             "RecordType": {RT: 3}, "OpportunityStage": {f"{RT}/Closed Won": 7, f"{RT}/Closed Lost": 8,
                                                         f"{RT}/Marketing": 5},
             "Opportunity": {OPP: 31}},
        lookups={"owner": {k: v["user_id"] for k, v in owners.items()},
                 "owner_partner": {k: v["partner_id"] for k, v in owners.items()},
                 "country": countries, "state": states, "lost_reason": {"Price": 1, "Timing": 2},
                 "subtype": {s["xmlid"]: s["id"] for s in odoo_records["mail.message.subtype"]},
                 "activity_type": {a["xmlid"]: a["id"] for a in odoo_records["mail.activity.type"]},
                 "model": {m["model"]: m["id"] for m in odoo_records["ir.model"]}})


def _ok(row):
    assert "error" not in row, row.get("error")
    return row["values"]


def test_user_is_matched_not_created(pair, refs):
    spec = pair.objects["User"]
    assert spec.target.action == "match" and spec.target.match["by"] == "email"
    rec = {"Id": USR, "Name": "Jane Broker", "Email": "Jane.Broker@AptoDemo.COM", "IsActive": True}
    assert _ok(map_record(spec, rec, refs)) == {"name": "Jane Broker", "email": "jane.broker@aptodemo.com"}
    odd = map_record(spec, {**rec, "Email": "no email"}, refs)        # kept as written, flagged
    assert odd["values"]["email"] == "no email" and odd["warnings"][0][0] == "email"
    with pytest.raises(Exception, match="not loaded into Odoo"):
        pair.target_kwargs("User")


# ---- companies and people ---------------------------------------------------------------------------


def test_account_company_with_own_address(pair, refs):
    rec = {"Id": ACC, "Name": "Müller & Söhne Immobilien GmbH", "ParentId": ACC_PARENT, "Type": "Partner",
           "BillingStreet": "Maximilianstraße 5\nSuite 200", "BillingCity": "München", "BillingState": "Bavaria",
           "BillingPostalCode": "80331", "BillingCountry": "Germany", "Phone": "(212)  555-0100",
           "Website": "www.mueller.example", "Industry": "Real Estate", "Description": "Key <client>",
           "OwnerId": USR, "Parent": {"BillingStreet": "1 Main St", "BillingCity": "Boston", "BillingState": "MA",
                                      "BillingPostalCode": "02108", "BillingCountry": "USA"}}
    row = map_record(pair.objects["Account"], rec, refs)
    assert row["source_id"] == ACC and row["record"] is rec
    assert _ok(row) == {
        "name": "Müller & Söhne Immobilien GmbH", "is_company": True, "type": "other", "parent_id": 10,
        "street": "Maximilianstraße 5", "street2": "Suite 200", "city": "München", "zip": "80331",
        "state_id": 1388, "country_id": 57, "phone": "(212) 555-0100", "website": "http://www.mueller.example",
        "comment": "<p>Key &lt;client&gt;</p>", "user_id": 2, "x_apto_industry": "Real Estate",
        "x_apto_account_type": "Partner"}


def test_account_state_and_country_ids(odoo_records):
    de = next(c["id"] for c in odoo_records["res.country"] if c["code"] == "DE")
    bayern = next(s["id"] for s in odoo_records["res.country.state (US, CA, DE)"] if s["code"] == "DE-BY")
    assert (de, bayern) == (57, 1388)     # the ids test_account_company_with_own_address expects


def test_subsidiary_at_parent_address_is_a_contact_type_that_still_sends_its_address(pair, refs):
    """Same address as the parent: type 'contact' (Odoo keeps it in step with the parent's, trap 4), and the
    address is sent all the same: the parent link comes later (link), or never (a cycle's cut link)."""
    addr = {"BillingStreet": "1 Main St", "BillingCity": "Boston", "BillingState": "MA",
            "BillingPostalCode": "02108", "BillingCountry": "United States"}
    rec = {"Id": ACC, "Name": "Harbor Child East", "ParentId": ACC_PARENT, "OwnerId": USR, **addr,
           "Parent": dict(addr)}
    values = _ok(map_record(pair.objects["Account"], rec, refs))
    assert values["type"] == "contact" and values["parent_id"] == 10
    assert (values["street"], values["city"], values["zip"], values["state_id"], values["country_id"]) == (
        "1 Main St", "Boston", "02108", 42, 233)


def test_account_whose_cycle_link_was_cut_keeps_its_address(pair, refs):
    """break_cycles nulls ParentId but the record still holds Parent.*: no parent means the address is sent."""
    addr = {"BillingStreet": "1 Main St", "BillingCity": "Boston", "BillingState": "MA",
            "BillingPostalCode": "02108", "BillingCountry": "United States"}
    rec = {"Id": ACC, "Name": "Cycle Holdings A", "ParentId": ACC_PARENT, "OwnerId": USR, **addr,
           "Parent": dict(addr)}
    (cut,), _report = break_cycles([{**rec, "ParentId": ACC}])     # a self-parent
    values = _ok(map_record(pair.objects["Account"], cut, refs))
    assert values["parent_id"] is None and values["type"] == "contact"
    assert (values["street"], values["city"], values["state_id"], values["country_id"]) == ("1 Main St", "Boston",
                                                                                          42, 233)


def test_contact_with_own_address_is_type_other(pair, refs):
    rec = {"Id": CON, "FirstName": "Zoë", "LastName": "O'Neil", "Email": " Zoe.ONeil@AptoClient.COM ",
           "Phone": "+1 (212) 555-0101", "MobilePhone": None, "Title": "CFO", "AccountId": ACC,
           "Description": None, "OwnerId": USR_UNMATCHED, "MailingStreet": "9 Elm Ave", "MailingCity": "Austin",
           "MailingState": "TX", "MailingPostalCode": "73301", "MailingCountry": "US",
           "Account": {"BillingStreet": "1 Main St", "BillingCity": "Boston", "BillingState": "MA",
                       "BillingPostalCode": "02108", "BillingCountry": "United States"}}
    values = _ok(map_record(pair.objects["Contact"], rec, refs))
    assert values == {
        "name": "Zoë O'Neil", "is_company": False, "type": "other", "parent_id": 11, "function": "CFO",
        "email": "zoe.oneil@aptoclient.com", "phone": "+1 (212) 555-0101", "mobile": None,
        "street": "9 Elm Ave", "street2": None, "city": "Austin", "zip": "73301", "state_id": 52,
        "country_id": 233, "comment": None, "user_id": 2}       # unmatched owner -> fallback admin (2)


def test_contact_without_name_or_company(pair, refs):
    rec = {"Id": CON, "FirstName": None, "LastName": "  ", "Email": None, "AccountId": None, "OwnerId": USR,
           "MailingStreet": None, "MailingCity": None, "MailingState": None, "MailingPostalCode": None,
           "MailingCountry": None, "Account": None}
    values = _ok(map_record(pair.objects["Contact"], rec, refs))
    assert values["name"] == "(no name)" and values["type"] == "contact" and values["parent_id"] is None
    assert values["street"] is None and values["country_id"] is None     # no company: the address is sent


def test_bad_email_lands_as_written_and_is_flagged_naming_the_field(pair, refs):
    rec = {"Id": CON, "FirstName": "A", "LastName": "B", "Email": "not@@an-email", "AccountId": ACC, "OwnerId": USR}
    row = map_record(pair.objects["Contact"], rec, refs)
    assert "error" not in row and row["values"]["email"] == "not@@an-email"
    assert ("email", "invalid email address 'not@@an-email', kept as written") in row["warnings"]


def test_missing_parent_company_lands_flagged_or_is_an_error_as_configured(pair, refs):
    rec = {"Id": CON, "FirstName": "A", "LastName": "B", "AccountId": "0015g00000Gone1AAA", "OwnerId": USR}
    row = map_record(pair.objects["Contact"], rec, refs)          # settings.on_missing_ref: null (repair and flag)
    assert "error" not in row and row["values"]["parent_id"] is None
    assert row["warnings"] == [("parent_id", "Account 0015g00000Gone1AAA not migrated (yet)")]
    from crm_migration.mapping.spec import parse_pair, thaw
    edited = thaw(load_pair("apto_to_odoo").raw)
    edited["objects"]["Contact"]["fields"]["parent_id"]["on_missing"] = "error"
    spec = parse_pair(edited).objects["Contact"]
    row = map_record(spec, rec, refs)
    assert row["error"] == ("parent_id", "Account 0015g00000Gone1AAA not migrated (yet)")


def test_extra_company_becomes_a_child_contact(pair, refs):
    rec = {"Id": "07k5g00000Acr01AAA", "AccountId": ACC_OTHER, "ContactId": CON, "IsDirect": False,
           "IsActive": True, "Roles": "Decision Maker;Influencer",
           "Contact": {"FirstName": "Jane", "LastName": "Doe", "Email": "JANE@X.COM", "Phone": None,
                       "MobilePhone": "+1 555", "Title": "CFO", "OwnerId": USR}}
    spec = pair.objects["AccountContactRelation"]
    assert matches(spec, rec) and not matches(spec, {**rec, "IsDirect": True})
    assert _ok(map_record(spec, rec, refs)) == {
        "name": "Jane Doe", "is_company": False, "type": "contact", "parent_id": 12, "x_apto_contact_id": 21,
        "function": "Decision Maker, Influencer", "email": "jane@x.com", "phone": None, "mobile": "+1 555",
        "active": True, "user_id": 2}


# ---- pipelines and deals ------------------------------------------------------------------------------


def test_pipeline_and_stage(pair, refs):
    team = _ok(map_record(pair.objects["RecordType"], {"Id": RT, "Name": "Brokerage", "SobjectType": "Opportunity",
                                                       "IsActive": True}, refs))
    assert team == {"name": "Brokerage", "use_opportunities": True, "use_leads": False, "active": True}
    assert pair.objects["RecordType"].key({"Id": RT}) == f"apto:pipeline:{RT}"
    stage = {"RecordTypeId": RT, "ApiName": "Closed Lost", "MasterLabel": "Closed Lost", "SortOrder": 7,
             "IsWon": False, "IsClosed": True, "DefaultProbability": 0.0}
    row = map_record(pair.objects["OpportunityStage"], stage, refs)
    assert row["source_id"] == f"{RT}/Closed Lost"
    assert _ok(row) == {"name": "Closed Lost", "team_id": 3, "sequence": 7, "is_won": False, "fold": True}


def _deal(**over):
    rec = {"Id": OPP, "Name": "Sale - Harbor #1", "RecordTypeId": RT, "StageName": "Closed Won",
           "Amount": 1500000.0, "CloseDate": "2024-06-30", "Probability": 100.0, "IsClosed": True, "IsWon": True,
           "AccountId": ACC, "ContactId": None, "OwnerId": USR, "Description": "Quick close",
           "LastStageChangeDate": "2024-06-29T10:00:00.000+0000", "McLabs2__Priority__c": "Critical",
           "McLabs2__Loss_Reason__c": None,
           "OpportunityHistories": {"totalSize": 2, "done": True, "records": [
               {"StageName": "Marketing", "CreatedDate": "2024-01-10T09:00:00.000+0000"},
               {"StageName": "Closed Won", "CreatedDate": "2024-06-28T16:45:00.000-0400"}]}}
    rec.update(over)
    return rec


def test_won_deal(pair, refs):
    row = map_record(pair.objects["Opportunity"], _deal(), refs)
    assert _ok(row) == {
        "name": "Sale - Harbor #1", "type": "opportunity", "team_id": 3, "stage_id": 7, "partner_id": 11,
        "user_id": 2, "expected_revenue": 1500000.0, "date_deadline": "2024-06-30", "probability": 100.0,
        "active": True, "priority": "3", "x_apto_priority": "Critical", "lost_reason_id": None,
        "x_apto_loss_reason": None, "description": "<p>Quick close</p>", "x_stage_entered_at": "2024-06-28 20:45:00"}
    assert row["deferred"] == {"date_last_stage_update": "2024-06-28 20:45:00", "date_closed": "2024-06-30 12:00:00"}


def test_lost_deal_with_reason_outside_the_picklist(pair, refs):
    rec = _deal(StageName="Closed Lost", IsWon=False, Probability=0.0, ContactId=CON,
                McLabs2__Loss_Reason__c="Client went dark", McLabs2__Priority__c="Urgent!!", OpportunityHistories=None)
    row = map_record(pair.objects["Opportunity"], rec, refs)
    values = _ok(row)
    assert values["active"] is False and values["probability"] == 0.0 and values["stage_id"] == 8
    assert values["partner_id"] == 21                                 # the contact before the company
    assert values["lost_reason_id"] is None and values["x_apto_loss_reason"] == "Client went dark"
    assert values["priority"] == "3" and values["x_apto_priority"] == "Urgent!!"
    assert values["x_stage_entered_at"] == "2024-06-29 10:00:00"     # no history: LastStageChangeDate
    assert ("lost_reason_id", "lost_reason 'Client went dark' not found in Odoo") in row["warnings"]
    known = _ok(map_record(pair.objects["Opportunity"], {**rec, "McLabs2__Loss_Reason__c": "price"}, refs))
    assert known["lost_reason_id"] == 1


def test_open_deal(pair, refs):
    rec = _deal(StageName="Marketing", IsClosed=False, IsWon=False, Probability=60.0, McLabs2__Priority__c=None,
                McLabs2__Loss_Reason__c="Price")
    row = map_record(pair.objects["Opportunity"], rec, refs)
    values = _ok(row)
    assert (values["stage_id"], values["probability"], values["active"], values["priority"]) == (5, 60.0, True, "0")
    assert values["lost_reason_id"] is None                           # a reason on an open deal is ignored
    assert values["x_stage_entered_at"] == "2024-01-10 09:00:00"
    assert row["deferred"]["date_closed"] is None


def test_deal_in_unknown_stage_of_an_unknown_pipeline_is_a_dead_letter(pair, refs):
    row = map_record(pair.objects["Opportunity"], _deal(StageName="Legacy - On Hold"), refs)
    assert row["error"] == ("stage_id", f"OpportunityStage {RT}/Legacy - On Hold not migrated (yet)")


def test_deal_in_a_stage_outside_its_pipeline_lands_there_flagged(pair, refs):
    from crm_migration.mapping import transforms as T

    asked = []

    def pipeline_stage(key):
        asked.append(key)
        return T.Flagged(5, f"stage {key[1]!r} is not a stage of pipeline {key[0]}: placed in its first stage")

    lenient = StaticRefs(refs.ids, {**refs.lookups, "pipeline_stage": pipeline_stage})
    row = map_record(pair.objects["Opportunity"], _deal(StageName="Legacy - On Hold"), lenient)
    assert "error" not in row and row["values"]["stage_id"] == 5 and asked == [(RT, "Legacy - On Hold")]
    assert ("stage_id", f"stage 'Legacy - On Hold' is not a stage of pipeline {RT}: placed in its first stage") \
        in row["warnings"]
    same = map_record(pair.objects["Opportunity"], _deal(StageName="Marketing"), lenient)
    assert same["values"]["stage_id"] == 5 and len(asked) == 1        # its own stage: no fallback asked


def test_stage_history_note(pair, refs):
    rec = {"Id": "0085g00000His01AAA", "OpportunityId": OPP, "StageName": "Marketing", "Probability": 60.0,
           "Amount": None, "CreatedDate": "2024-01-10T09:00:00.000+0000", "CreatedById": USR}
    assert _ok(map_record(pair.objects["OpportunityHistory"], rec, refs)) == {
        "model": "crm.lead", "res_id": 31, "message_type": "comment", "subtype_id": 2,
        "body": "<p>Stage: <b>Marketing</b> (probability 60%)</p>", "date": "2024-01-10 09:00:00", "author_id": 3}


# ---- activities ------------------------------------------------------------------------------------------


def _task(**over):
    rec = {"Id": "00T5g00000Tsk01AAA", "WhoId": CON, "WhatId": OPP, "Subject": "Call intro", "Description": None,
           "ActivityDate": "2024-03-05", "Status": "Completed", "IsClosed": True,
           "CompletedDateTime": "2024-03-05T14:02:11.000+0000", "TaskSubtype": "Call", "CallDurationInSeconds": 600,
           "CallType": "Outbound", "CallDisposition": "Connected", "OwnerId": USR,
           "CreatedDate": "2024-03-01T08:00:00.000+0000"}
    rec.update(over)
    return rec


def test_done_call_is_a_done_activity_message_on_the_deal(pair, refs):
    assert _ok(map_record(pair.objects["Task"], _task(), refs)) == {
        "model": "crm.lead", "res_id": 31, "date": "2024-03-05 14:02:11", "author_id": 3,
        "message_type": "notification", "subtype_id": 3, "mail_activity_type_id": 2, "subject": "Call intro",
        "body": "<p><b>Call intro</b> (Outbound, 10 min, Connected)</p>"}


def test_email_task_on_the_contact_when_no_deal(pair, refs):
    rec = _task(TaskSubtype="Email", WhatId=None, Subject="Email: LOI draft", Description="Hi\nThanks",
                CallDurationInSeconds=None, CallType=None, CallDisposition=None, CompletedDateTime=None)
    assert _ok(map_record(pair.objects["Task"], rec, refs)) == {
        "model": "res.partner", "res_id": 21, "date": "2024-03-01 08:00:00", "author_id": 3,
        "message_type": "email", "subtype_id": 1, "mail_activity_type_id": None, "subject": "Email: LOI draft",
        "body": "<p><b>Email: LOI draft</b></p><p>Hi<br>Thanks</p>"}


def test_activity_on_a_lead_or_nothing_is_a_dead_letter(pair, refs):
    row = map_record(pair.objects["Task"], _task(WhoId=LEAD, WhatId=None), refs)
    assert row["error"][0] == "res_id" and "no parent record" in row["error"][1]
    row = map_record(pair.objects["Task"], _task(WhatId="0065g00000Gone1AAA", WhoId=None), refs)
    assert row["error"] == ("res_id", "parent record not migrated (yet): WhatId → Opportunity 0065g00000Gone1AAA")
    # the deal is missing but the contact is there: falls back to the contact
    values = _ok(map_record(pair.objects["Task"], _task(WhatId="0065g00000Gone1AAA"), refs))
    assert (values["model"], values["res_id"]) == ("res.partner", 21)


def test_open_task_is_an_activity(pair, refs):
    rec = _task(IsClosed=False, Status="Not Started", TaskSubtype="Task", Subject="Send BOV",
                Description="Internal", WhatId=ACC, CompletedDateTime=None, ActivityDate=None)
    spec = pair.objects["OpenTask"]
    assert not matches(pair.objects["Task"], rec) and matches(spec, rec)
    assert _ok(map_record(spec, rec, refs)) == {
        "res_model_id": 85, "res_id": 11, "activity_type_id": 4, "summary": "Send BOV",
        "note": "<p>Internal</p>", "date_deadline": "2024-03-01", "user_id": 2}
    assert spec.key(rec) == "apto:Task:00T5g00000Tsk01AAA"      # one key per task, open or closed


def test_timeline_position_is_the_message_date_and_the_record_it_is_posted_on(pair):
    task = pair.objects["Task"]
    # the deal wins over the contact, as in the mapping; the completion time over the creation time, in UTC
    assert timeline_position(task, _task(CompletedDateTime="2021-03-04T23:30:00.000-0200")) == (
        "2021-03-05 01:30:00", OPP)
    assert timeline_position(task, _task(WhatId=None, CompletedDateTime=None,
                                         CreatedDate="2020-01-02T03:04:05.000+0000")) == ("2020-01-02 03:04:05", CON)
    # a WhatId of an object that is not migrated (a case) leaves the message on the contact
    assert timeline_position(task, _task(WhatId="5005g00000Cas01AAA"))[1] == CON
    hist = pair.objects["OpportunityHistory"]
    assert timeline_position(hist, {"Id": "0085g00000His01AAA", "OpportunityId": OPP,
                                    "CreatedDate": "2019-05-06T07:08:09.000+0000"}) == ("2019-05-06 07:08:09", OPP)
    note = pair.objects["ContentNote"]
    assert timeline_position(note, {"LinkedEntityId": ACC, "ContentDocument": {"CreatedDate": None}}) == ("", ACC)


def test_meeting_links_its_deal_later_and_invites_its_contact_and_company(pair, refs):
    rec = {"Id": "00U5g00000Evt01AAA", "WhoId": CON, "WhatId": OPP, "Subject": "Property tour",
           "Description": None, "Location": "On site", "StartDateTime": "2024-03-05T14:00:00.000+0000",
           "EndDateTime": "2024-03-05T15:30:00.000+0000", "IsAllDayEvent": False, "ShowAs": "Busy", "OwnerId": USR}
    row = map_record(pair.objects["Event"], rec, refs)
    assert _ok(row) == {
        "name": "Property tour", "start": "2024-03-05 14:00:00", "stop": "2024-03-05 15:30:00", "allday": False,
        "location": "On site", "description": None, "show_as": "busy", "user_id": 2, "partner_ids": [(6, 0, [21])]}
    assert row["deferred"] == {"opportunity_id": 31}
    allday = _ok(map_record(pair.objects["Event"], {**rec, "IsAllDayEvent": True, "WhatId": ACC, "WhoId": LEAD,
                                                    "StartDateTime": "2024-03-05T00:00:00.000+0000",
                                                    "EndDateTime": "2024-03-06T00:00:00.000+0000"}, refs))
    assert (allday["start"], allday["stop"], allday["allday"]) == ("2024-03-05 08:00:00", "2024-03-05 18:00:00", True)
    assert allday["partner_ids"] == [(6, 0, [11])]               # the company; a Lead is not a contact
    on_company = map_record(pair.objects["Event"], {**rec, "WhatId": ACC}, refs)
    assert _ok(on_company)["partner_ids"] == [(6, 0, [11, 21])] and on_company["deferred"] == {"opportunity_id": None}
    assert "warnings" not in on_company                           # a company is not a deal: nothing to flag
    gone = map_record(pair.objects["Event"], {**rec, "WhatId": ACC_PARENT.replace("Par", "Gon")}, refs)
    assert _ok(gone)["partner_ids"] == [(6, 0, [21])]
    assert gone["warnings"] == [("partner_ids", "not migrated (yet): Account 0015g00000Gon01AAA")]


def test_notes(pair, refs):
    note = {"Id": "0025g00000Not01AAA", "ParentId": ACC, "Title": "Call recap", "Body": "Multi-line\nnote",
            "OwnerId": USR, "CreatedDate": "2021-05-06T07:08:09.000+0000"}
    assert _ok(map_record(pair.objects["Note"], note, refs)) == {
        "model": "res.partner", "res_id": 11, "message_type": "comment", "subtype_id": 2,
        "body": "<p><b>Call recap</b></p><p>Multi-line<br>note</p>", "date": "2021-05-06 07:08:09", "author_id": 3}
    snote = {"Id": "06A5g00000Lnk01AAA", "LinkedEntityId": OPP, "ContentDocumentId": "0695g00000Doc01AAA",
             "ContentDocument": {"Title": "Meeting notes 1", "FileType": "SNOTE",
                                 "CreatedDate": "2022-02-12T19:43:07.000+0000", "OwnerId": USR},
             "_blob": b"<p>Next: send LOI &amp; comps \xe2\x80\x93 caf\xc3\xa9</p><script>x()</script>"}
    spec = pair.objects["ContentNote"]
    row = map_record(spec, snote, refs)
    assert row["source_id"] == f"0695g00000Doc01AAA/{OPP}"
    assert _ok(row)["body"] == "<p><b>Meeting notes 1</b></p><p>Next: send LOI &amp; comps – café</p>"
    assert _ok(row)["res_id"] == 31 and _ok(row)["model"] == "crm.lead"


def test_files(pair, refs):
    blob = b"\x89PNG\r\n\x1a\nrest"
    link = {"Id": "06A5g00000Lnk02AAA", "LinkedEntityId": CON, "ContentDocumentId": "0695g00000Doc02AAA",
            "ContentDocument": {"Title": "Grundriss Straße 5", "FileExtension": "png", "FileType": "PNG",
                                "LatestPublishedVersionId": "0685g00000Ver02AAA"}, "_blob": blob}
    spec = pair.objects["ContentVersion"]
    row = map_record(spec, link, refs)
    assert spec.key(link) == f"apto:ContentVersion:0695g00000Doc02AAA/{CON}"
    assert _ok(row) == {"res_model": "res.partner", "res_id": 21, "name": "Grundriss Straße 5.png", "type": "binary",
                        "datas": base64.b64encode(blob).decode(), "mimetype": "image/png"}
    user_link = {**link, "LinkedEntityId": USR}
    assert not matches(spec, user_link)                                # links to users are not files of a record
    assert map_batch(spec, [link, user_link, {**link, "ContentDocument": {"FileType": "SNOTE"}}], refs) \
        == [row]
    att = {"Id": "00P5g00000Att01AAA", "ParentId": OPP, "Name": "leer.txt", "ContentType": "text/plain",
           "Description": None, "_blob": b""}
    assert _ok(map_record(pair.objects["Attachment"], att, refs)) == {
        "res_model": "crm.lead", "res_id": 31, "name": "leer.txt", "type": "binary", "datas": "",
        "mimetype": "text/plain", "description": None}


# ---- batch helpers ---------------------------------------------------------------------------------------


def test_refs_needed_groups_ids_per_object(pair):
    records = [_deal(), _deal(Id="0065g00000Opp02AAA", ContactId=CON, StageName="Marketing"),
               _deal(Id="0065g00000Opp03AAA", RecordTypeId=None)]
    needed = refs_needed(pair.objects["Opportunity"], records)
    assert needed == {"RecordType": {RT}, "OpportunityStage": {f"{RT}/Closed Won", f"{RT}/Marketing"},
                      "Contact": {CON}, "Account": {ACC}}
    tasks = [_task(), _task(WhatId=ACC, WhoId=LEAD), _task(IsClosed=False)]        # the open one is not a Task row
    assert refs_needed(pair.objects["Task"], tasks) == {"Opportunity": {OPP}, "Contact": {CON}, "Account": {ACC}}
    events = [{"Id": "00U5g00000Evt01AAA", "WhoId": LEAD, "WhatId": ACC},        # a Lead is not a contact
              {"Id": "00U5g00000Evt02AAA", "WhoId": CON, "WhatId": OPP}]          # a deal is not a company
    assert refs_needed(pair.objects["Event"], events) == {"Account": {ACC}, "Contact": {CON}, "Opportunity": {OPP}}


def test_lookups_needed(pair):
    records = [_deal(), _deal(McLabs2__Loss_Reason__c="Price", IsWon=False)]
    needed = lookups_needed(pair.objects["Opportunity"], records)
    assert needed == {"owner": {USR}, "lost_reason": {"Price"}}
        # every candidate parent's model (the deal, and the contact in case the deal is not migrated)
    assert lookups_needed(pair.objects["OpenTask"], [_task(IsClosed=False)])["model"] == {"crm.lead", "res.partner"}


def test_map_batch_keeps_order_and_isolates_errors(pair, refs):
    records = [_deal(), _deal(Id="0065g00000Opp02AAA", OwnerId=None), _deal(Id="0065g00000Opp03AAA",
                                                                              AccountId="0015g00000Gone1AAA")]
    rows = map_batch(pair.objects["Opportunity"], records, refs)
    assert [r["source_id"] for r in rows] == [OPP, "0065g00000Opp02AAA", "0065g00000Opp03AAA"]
    assert "error" not in rows[0]
    assert rows[1]["error"] == ("user_id", "required value missing (from OwnerId)")
    assert "error" not in rows[2] and rows[2]["values"]["partner_id"] is None   # lands without its customer
    assert ("partner_id", "not migrated (yet): Account 0015g00000Gone1AAA") in rows[2]["warnings"]


def test_mapping_never_raises_on_odd_data(pair, refs):
    odd = [{"Id": OPP}, {"Id": OPP, "Amount": "lots", "RecordTypeId": RT, "StageName": "Marketing", "OwnerId": USR},
           {"Id": OPP, "CloseDate": "someday"}, {"Id": None}]
    rows = map_batch(pair.objects["Opportunity"], odd, refs)
    assert all("error" in r for r in rows)
    assert rows[1]["error"] == ("expected_revenue", "not a number: 'lots'")
    assert rows[3]["error"] == ("key", "no value for key field 'Id'")


def test_get_path():
    rec = {"Account": {"attributes": {}, "Name": "X", "Owner": None}, "Flat.Key": 1,
           "Kids": {"records": [{"A": 1}, {"A": 2}]}}
    assert get_path(rec, "Account.Name") == "X"
    assert get_path(rec, "Account.Owner.Email") is None
    assert get_path(rec, "Flat.Key") == 1
    assert get_path(rec, "Kids.A") == [1, 2]
    assert get_path({"Account": None}, "Account.Name") is None


# ---- hierarchy --------------------------------------------------------------------------------------------


def _acc(i, parent=None):
    return {"Id": f"0015g00000H{i:03d}AAA", "ParentId": f"0015g00000H{parent:03d}AAA" if parent is not None else None}


def test_break_cycles_three_cycle_and_self_parent():
    records = [_acc(3, 1), _acc(1, 2), _acc(2, 3),      # 3 -> 1 -> 2 -> 3
               _acc(7, 7),                               # self-parent
               _acc(8, 2), _acc(9, 8), _acc(10)]
    fixed, report = break_cycles(records)
    parents = {r["Id"][-6:-3]: r["ParentId"] for r in fixed}
    assert parents["001"] is None                        # the smallest id of the cycle loses its parent
    assert parents["002"] and parents["003"] and parents["007"] is None and parents["009"]
    assert [r["source_id"] for r in report] == ["0015g00000H001AAA", "0015g00000H007AAA"]
    assert report[0]["parent_id"] == "0015g00000H002AAA"
    assert report[0]["cycle"] == ["0015g00000H001AAA", "0015g00000H002AAA", "0015g00000H003AAA"]
    assert "cut" in report[0]["reason"] and report[1]["reason"].startswith("self-parent")
    assert records[1]["ParentId"] == "0015g00000H002AAA"    # the input is untouched
    # deterministic whatever the input order
    again, report2 = break_cycles(list(reversed(records)))
    assert report2 == report and sorted(again, key=lambda r: r["Id"]) == sorted(fixed, key=lambda r: r["Id"])
    assert break_cycles(fixed)[1] == []


def test_break_cycles_two_cycles_sharing_a_tail():
    records = [_acc(5, 6), _acc(6, 5), _acc(4, 5), _acc(20, 21), _acc(21, 22), _acc(22, 20)]
    fixed, report = break_cycles(records)
    assert [r["source_id"][-6:-3] for r in report] == ["005", "020"]
    assert [len(level) for level in hierarchy_levels(fixed)] == [2, 3, 1]     # 5 20 | 6 4 22 | 21


def test_hierarchy_levels_parents_first():
    records = [_acc(10, 9), _acc(9, 8), _acc(8), _acc(11, 8), _acc(12, 99), _acc(13)]   # 99: not in the set
    levels = hierarchy_levels(records)
    ids = [[r["Id"][-6:-3] for r in level] for level in levels]
    assert ids == [["008", "012", "013"], ["009", "011"], ["010"]]
    with pytest.raises(ValueError, match="break_cycles"):
        hierarchy_levels([_acc(1, 2), _acc(2, 1)])
    assert hierarchy_levels([]) == []


# ---- owners and places ------------------------------------------------------------------------------------


def test_resolve_owners_by_email_case_insensitive_with_fallback(odoo_records):
    users = [{"Id": USR, "Name": "Ada", "Email": "ADMIN@example.COM"}, {"Id": USR_UNMATCHED, "Name": "Ex",
             "Email": "ex@old.invalid"}, {"Id": "0055g00000Usr03AAA", "Name": "No Mail", "Email": None}]
    out = resolve_owners(users, odoo_records["res.users"], fallback_login="admin")
    assert out[USR]["matched"] and out[USR]["user_id"] == 2 and out[USR]["partner_id"] == 3
    assert not out[USR_UNMATCHED]["matched"] and out[USR_UNMATCHED]["user_id"] == 2
    assert "fallback user admin" in out[USR_UNMATCHED]["reason"]
    assert out["0055g00000Usr03AAA"]["reason"].startswith("no email")
    with pytest.raises(ValueError, match="fallback user 'nobody'"):
        resolve_owners(users, odoo_records["res.users"], fallback_login="nobody")


def test_countries_and_states(odoo_records):
    countries = CountryIndex(odoo_records["res.country"])
    assert [countries(v) for v in ("US", "usa", "United States", "United Kingdom", "UK", "gb", "Narnia", None)] \
        == [233, 233, 233, 231, 231, 231, None, None]
    states = StateIndex(odoo_records["res.country.state (US, CA, DE)"], countries, {"DE": {"Bavaria": "Bayern"}})
    assert states(("NY", "USA")) == 35 and states(("new york", "United States")) == 35
    assert states(("ON", "Canada")) == 541 and states(("BY", "Germany")) == states(("Bavaria", "DE")) == 1388
    assert states(("NY", "Canada")) is None and states((None, "US")) is None


# ---- settings -----------------------------------------------------------------------------------------------


def _raw_pair():
    from crm_migration.mapping.spec import thaw

    return thaw(load_pair("apto_to_odoo").raw)


def test_contact_type_follows_the_setting(refs):
    from crm_migration.mapping.spec import parse_pair

    raw = _raw_pair()
    raw["settings"]["contact_own_address_type"] = "contact"
    spec = parse_pair(raw).with_namespace("McLabs2").objects["Contact"]
    rec = {"Id": CON, "LastName": "B", "AccountId": ACC, "OwnerId": USR, "MailingCity": "Austin",
           "Account": {"BillingCity": "Boston"}}
    assert _ok(map_record(spec, rec, refs))["type"] == "contact"


def test_extra_companies_as_many2many(refs):
    from crm_migration.mapping.spec import SpecError, parse_pair

    raw = _raw_pair()
    raw["settings"]["contact_extra_companies"] = "many2many"
    with pytest.raises(SpecError, match="many2many but no object writes x_apto_company_ids"):
        parse_pair(raw)
    del raw["objects"]["AccountContactRelation"]
    del raw["targets"]["19"]["objects"]["AccountContactRelation"]     # and its per-version override
    contact = raw["objects"]["Contact"]
    contact["enrich"] = {"AccountContactRelations": {"object": "AccountContactRelation", "match": "ContactId",
                                                     "fields": ["AccountId"]}}
    contact["fields"]["x_apto_company_ids"] = {"from": "AccountContactRelations.AccountId", "ref": "Account",
                                               "on_missing": None}
    spec = parse_pair(raw).with_namespace("McLabs2").objects["Contact"]
    rec = {"Id": CON, "LastName": "B", "AccountId": ACC, "OwnerId": USR,
           "AccountContactRelations": {"records": [{"AccountId": ACC_OTHER}, {"AccountId": ACC_PARENT},
                                                   {"AccountId": "0015g00000Gone1AAA"}]}}
    assert refs_needed(spec, [rec])["Account"] == {ACC, ACC_OTHER, ACC_PARENT, "0015g00000Gone1AAA"}
    row = map_record(spec, rec, refs)
    assert _ok(row)["x_apto_company_ids"] == [(6, 0, [10, 12])]
    assert row["warnings"] == [("x_apto_company_ids", "Account 0015g00000Gone1AAA not migrated (yet)")]
    cleared = _ok(map_record(spec, {**rec, "AccountContactRelations": None}, refs))["x_apto_company_ids"]
    assert canonical(cleared, "many2many") == []                      # None: Odoo's "empty" for a many2many


def test_loader_target_keys_match_the_spec(pair):
    from crm_migration.engine.load import Target

    for name in ("RecordType", "OpportunityStage", "Contact", "OpenTask"):
        obj = pair.objects[name]
        target = Target(**pair.target_kwargs(name))
        rec = {"Id": "0125g00000Rt001AAA", "RecordTypeId": RT, "ApiName": "Closed Won"}
        assert target.key(obj.source_id(rec)) == obj.key(rec)
        assert target.model == obj.model
    assert Target(**pair.target_kwargs("RecordType")).key(RT) == f"apto:pipeline:{RT}"
