"""Pure helpers of the plan step: value profiles, bad-data checks, automation entries, the report."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest

from crm_migration.engine.plan import (
    Plan,
    _Planner,
    automation_reference,
    build_plan,
    invalid_emails,
    missing_required,
    picklist_outside,
    stages_outside,
    value_profile,
)
from crm_migration.hooks.apto import AptoApiError
from crm_migration.mapping.spec import load_pair
from crm_migration.reports.plan import AUTOMATION_FILE, PLAN_FILE, summary_lines, write_plan_report
from crm_migration.streams.apto_plan import AptoPlanReader, automation_entry

PAIR = load_pair("apto_to_odoo").with_namespace("McLabs2")


# ---- value profiles -----------------------------------------------------------------------------------------

def test_value_profile_counts_blanks_as_empty():
    records = [{"Id": "1", "A": "x", "B": None, "C": {"Name": "nested"}},
               {"Id": "2", "A": "x", "B": "  ", "C": None},
               {"Id": "3", "A": "y", "B": float("nan"), "C": None},
               {"Id": "4", "A": "", "B": "b", "C": None}]
    rows = {r["field"]: r for r in value_profile("Obj", records, ["A", "B", "C"])}
    assert rows["A"] == {"object": "Obj", "field": "A", "sampled": 4, "filled": 3, "fill %": 75.0, "distinct": 2,
                         "top value": "x", "top count": 2}
    assert (rows["B"]["filled"], rows["B"]["distinct"], rows["B"]["top value"]) == (1, 1, "b")
    assert rows["C"]["filled"] == 0 and rows["C"]["top value"] == ""     # a relationship dict is not a value
    assert value_profile("Obj", [], ["A"]) == []


def test_invalid_emails_uses_the_mappings_rule_and_says_what_happens():
    records = [{"Id": "1", "Email": "Jane <Jane@X.com>"}, {"Id": "2", "Email": "not-an-email"},
               {"Id": "3", "Email": "not-an-email"}, {"Id": "4", "Email": None}, {"Id": "5", "Email": "a@b..com"},
               {"Id": "6", "Account": {"Email": "x@"}}]
    rows = invalid_emails("Contact", records, {"Email": "dead letter (field email)", "Account.Email": "copied"})
    found = {(r["field"], r["value"]): r for r in rows}
    assert set(found) == {("Email", "not-an-email"), ("Email", "a@b..com"), ("Account.Email", "x@")}
    assert found[("Email", "not-an-email")]["records in sample"] == 2
    assert found[("Email", "not-an-email")]["example id"] == "2"
    assert found[("Email", "not-an-email")]["consequence"] == "dead letter (field email)"


def test_picklist_outside_single_multi_and_inactive():
    field = {"name": "P", "type": "picklist", "picklistValues": [
        {"value": "A", "active": True}, {"value": "Old", "active": False}]}
    records = [{"Id": "1", "P": "A"}, {"Id": "2", "P": "Z"}, {"Id": "3", "P": "Old"}, {"Id": "4", "P": None}]
    rows = {r["value"]: r["check"] for r in picklist_outside("O", records, field)}
    assert rows == {"Z": "value outside the picklist", "Old": "inactive picklist value"}
    multi = {"name": "M", "type": "multipicklist", "picklistValues": [{"value": "A"}, {"value": "B"}]}
    records = [{"Id": "1", "M": "A;B"}, {"Id": "2", "M": "A; Crypto"}, {"Id": "3", "M": None}, {"Id": "4", "M": ""},
               {"Id": "5", "M": "Crypto;Crypto"}]
    rows = picklist_outside("O", records, multi)
    assert [(r["value"], r["records in sample"], r["example id"]) for r in rows] == [("Crypto", 2, "2")]
    assert picklist_outside("O", [{"Id": "1", "M": None}], multi) == []


def test_stages_outside_their_pipeline():
    stages = {"rt1": ["Open", "Won"], "rt2": ["Tour", "Signed"]}
    records = [{"Id": "1", "RecordTypeId": "rt1", "StageName": "Open"},
               {"Id": "2", "RecordTypeId": "rt1", "StageName": "Tour"},
               {"Id": "3", "RecordTypeId": "rt1", "StageName": "Tour"},
               {"Id": "4", "RecordTypeId": "rt9", "StageName": "Open"},
               {"Id": "5", "RecordTypeId": None, "StageName": "Open"}]
    rows = stages_outside("Opportunity", records, stages, names={"rt1": "Brokerage"})
    by_check = Counter(r["check"] for r in rows)
    assert by_check == {"stage not in its pipeline": 1, "pipeline not planned": 2}
    stage = next(r for r in rows if r["check"] == "stage not in its pipeline")
    assert (stage["value"], stage["records in sample"], stage["example id"]) == ("Tour (pipeline Brokerage)", 2, "2")
    assert stages_outside("Opportunity", [], stages) == []


def test_missing_required_and_orphans_with_the_real_pair():
    opp = PAIR.objects["Opportunity"]
    ok = {"Id": "006A", "Name": "Deal", "RecordTypeId": "012A", "StageName": "Open", "OwnerId": "005A"}
    bad = {"Id": "006B", "Name": "Deal", "RecordTypeId": None, "StageName": "Open", "OwnerId": "005A"}
    rows = missing_required(opp, [ok, bad])
    assert {(r["field"], r["example id"]) for r in rows} == {("team_id", "006B"), ("stage_id", "006B")}
    task = PAIR.objects["Task"]
    orphan = {"Id": "00TA", "WhatId": "a0B5g000030023jAAA", "WhoId": None, "CreatedDate": "2024-01-01T00:00:00Z"}
    fine = {"Id": "00TB", "WhatId": None, "WhoId": "0035g000030023jAAA", "CreatedDate": "2024-01-01T00:00:00Z"}
    rows = missing_required(task, [orphan, fine])
    assert [(r["check"], r["example id"], r["records in sample"]) for r in rows] == [
        ("no record to attach to", "00TA", 1)]


# ---- automation entries -------------------------------------------------------------------------------------

MODELS = {"Opportunity": "crm.lead", "Account": "res.partner"}


def test_validation_rule_entry():
    row = {"attributes": {"type": "ValidationRule"}, "Id": "03d1", "ValidationName": "Loss_Reason_Required",
           "EntityDefinitionId": "Opportunity", "Active": True, "ErrorMessage": "Enter a loss reason.",
           "ErrorDisplayField": "McLabs2__Loss_Reason__c", "NamespacePrefix": None, "Description": "why"}
    e = automation_entry("ValidationRule", row, MODELS)
    assert (e["type"], e["name"], e["object"], e["odoo_model"], e["active"]) == (
        "ValidationRule", "Loss_Reason_Required", "Opportunity", "crm.lead", True)
    assert "Enter a loss reason." in e["actions"] and "McLabs2__Loss_Reason__c" in e["actions"]
    assert e["rebuild_as"].startswith("constraint")
    assert "attributes" not in e["source"] and e["source"]["Id"] == "03d1"
    json.dumps(e)   # plain data


@pytest.mark.parametrize(("trigger", "ptype", "hint"), [
    ("RecordAfterSave", "AutoLaunchedFlow", "base.automation"),
    ("Scheduled", "AutoLaunchedFlow", "ir.cron"),
    (None, "Flow", "server action"),
])
def test_flow_entry_hint_follows_its_trigger(trigger, ptype, hint):
    row = {"Id": "300A", "ApiName": "F", "Label": "My flow", "ProcessType": ptype, "TriggerType": trigger,
           "IsActive": False, "TriggerObjectOrEventId": "Account" if trigger else None}
    e = automation_entry("FlowDefinitionView", row, MODELS)
    assert hint in e["rebuild_as"] and e["name"] == "My flow" and e["active"] is False
    assert e["trigger"] == (trigger or ptype)
    assert e["odoo_model"] == ("res.partner" if trigger else None)


def test_apex_trigger_entry_events_body_and_managed():
    row = {"Id": "01qA", "Name": "OpportunityTrigger", "TableEnumOrId": "Opportunity", "NamespacePrefix": "McLabs2",
           "Status": "Active", "UsageBeforeInsert": True, "UsageBeforeUpdate": True, "UsageAfterUpdate": False,
           "Body": "(hidden)"}
    e = automation_entry("ApexTrigger", row, MODELS)
    assert e["trigger"] == "before insert, before update" and e["active"] is True
    assert e["formula"] is None and "hidden" in e["actions"]
    assert e["rebuild_as"].startswith("managed package logic") and "create/write" in e["rebuild_as"]
    own = automation_entry("ApexTrigger", {**row, "NamespacePrefix": None, "Status": "Inactive",
                                           "Body": "trigger T on Opportunity (before insert) {}"})
    assert own["active"] is False and own["formula"].startswith("trigger T") and own["odoo_model"] is None


def test_automation_reference_counts_per_type():
    plan = _plan()
    plan.automations = [automation_entry("WorkflowRule", {"Id": "1", "Name": "a"}),
                        automation_entry("WorkflowRule", {"Id": "2", "Name": "b"}),
                        automation_entry("ApexTrigger", {"Id": "3", "Name": "c"})]
    ref = automation_reference(plan)
    assert ref["counts"] == {"ApexTrigger": 1, "WorkflowRule": 2} and len(ref["automations"]) == 3
    assert "nothing here is migrated" in ref["note"]


# ---- GROUP BY when the org answers it, and when it does not ---------------------------------------------------

class FakeApto:
    """Answers GROUP BY queries from a table of OwnerIds, or refuses them like the Apto sandbox."""

    def __init__(self, owners: list[str], group_by: bool) -> None:
        self.owners, self.group_by, self.sent = owners, group_by, []

    def query(self, soql: str, **_kw):
        self.sent.append(soql)
        if "GROUP BY" in soql:
            if not self.group_by:
                raise AptoApiError(400, "MALFORMED_QUERY", "GROUP BY is not supported")
            return iter([{"OwnerId": o, "n": n} for o, n in Counter(self.owners).items()])
        raise AssertionError(soql)

    def count(self, soql: str, **_kw) -> int:
        self.sent.append(soql)
        ids = soql.split("IN (")[1].rstrip(")").replace("'", "").split(", ")
        return sum(o in ids for o in self.owners)


def _planner(apto: FakeApto) -> tuple[_Planner, Plan]:
    plan = _plan()
    plan.owners = [{"source user": "005A", "name": "Ann", "matched": True},
                   {"source user": "005B", "name": "Bob", "matched": False}]
    reader = AptoPlanReader(apto)
    reader.begin(PAIR, plan, sample_limit=10)
    planner = _Planner(reader, None, PAIR, plan, sample_limit=10, logger=logging.getLogger("t"))
    planner.owner_objects = lambda: [(PAIR.objects["Account"], "OwnerId"), (PAIR.objects["Task"], "OwnerId")]
    return planner, plan


def test_owner_counts_by_group_by():
    planner, plan = _planner(FakeApto(["005A", "005B", "005B"], group_by=True))
    planner.owner_counts()
    assert [r["records going to the fallback user"] for r in plan.fallback_records] == [2, 2]
    assert plan.owner_counts[1] == {"source user": "005B", "name": "Bob", "Account.OwnerId": 2, "Task.OwnerId": 2}
    assert plan.owners[0]["records owned"] == 2 and "GROUP BY" in plan.owner_counts_note
    assert "WHERE (IsClosed = true) GROUP BY OwnerId" in planner.reader.apto.sent[1]          # the stream's filters apply


def test_owner_counts_without_group_by_count_the_fallback_records_only():
    apto = FakeApto(["005A", "005B", "005B"], group_by=False)
    planner, plan = _planner(apto)
    planner.owner_counts()
    assert [r["records going to the fallback user"] for r in plan.fallback_records] == [2, 2]
    assert plan.owner_counts == [] and "not counted" in plan.owner_counts_note
    assert sum("GROUP BY" in q for q in apto.sent) == 1                  # tried once, then given up


def test_sample_limit_is_one_page():
    with pytest.raises(ValueError, match="sample_limit"):
        build_plan(None, None, PAIR, sample_limit=5000)


# ---- the report -----------------------------------------------------------------------------------------------

def _plan(**kw) -> Plan:
    base = dict(pair="apto_to_odoo", source="apto", namespace="McLabs2", namespace_how="set in the connection",
                fallback_user="admin", fallback_user_from="pair settings.fallback_user", fallback_user_id=2,
                started_at="2026-01-01T00:00:00+00:00", sample_limit=100, source_label="Apto", source_place="org")
    return Plan(**{**base, **kw})


def test_report_escapes_data_and_says_what_to_do(tmp_path):
    plan = _plan(fallback_user_id=None)
    plan.owners = [{"source user": "005A", "name": "<script>alert(1)</script>", "matched": False, "reason": "x"}]
    plan.cycles = [{"object": "Account", "kind": "cycle of 2", "record cut": "001A", "record name": "A & Co",
                    "parent removed": "001B", "parent name": "B", "cycle": "A & Co → B → A & Co"}]
    plan.unknown_fields = [{"object": "Contact", "source object": "Contact", "field": "Nick__c", "why": "no field"}]
    plan.problem("blocking", "owners", "the fallback user 'admin' does not exist in Odoo")
    plan.automations = [automation_entry("WorkflowRule", {"Id": "01Q", "Name": "Rule"})]
    path = write_plan_report(plan, pair="apto_to_odoo", run_id="manual__1", root=tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "&lt;script&gt;" in text
    assert "A &amp; Co" in text and "1 cycle will be cut" in text
    assert "does not exist in Odoo" in text and "1 field(s) the mapping reads are unknown to the org: Contact.Nick__c" \
        in text
    ref = json.loads((path.parent / AUTOMATION_FILE).read_text(encoding="utf-8"))
    assert [a["name"] for a in ref["automations"]] == ["Rule"]
    assert json.loads((path.parent / PLAN_FILE).read_text(encoding="utf-8"))["pair"] == "apto_to_odoo"
    assert (path.parent / "plan_01_problems_to_act_on.csv").exists()


def test_summary_lines_all_good():
    plan = _plan()
    plan.owners = [{"source user": "005A", "name": "Ann", "matched": True}]
    lines = summary_lines(plan)
    assert "No blocking problem" in lines[1]
    assert any("All 1 Apto owners match" in line for line in lines)
    assert any("Every field the mapping reads exists" in line for line in lines)
    assert any("No bad data found" in line for line in lines)
