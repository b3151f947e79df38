"""The Apto org generator: determinism and the hard cases every org must hold."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from crm_sandbox.apto.generator import generate_org
from crm_sandbox.apto.ids import to18

AS_OF = datetime(2025, 6, 30, tzinfo=UTC)
CUSTOM_TYPES = {"string", "textarea", "picklist", "multipicklist", "double", "currency", "percent", "date",
                "datetime", "boolean", "url", "email", "phone", "reference"}
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


@pytest.fixture(scope="module")
def org():
    return generate_org(scale=1, seed=7, as_of=AS_OF)


def test_same_seed_same_org(org) -> None:
    again = generate_org(scale=1, seed=7, as_of=AS_OF)
    assert again.tables == org.tables
    assert again.blobs == org.blobs
    assert again.tooling == org.tooling
    assert again.hard_cases == org.hard_cases


def test_other_seed_other_org(org) -> None:
    other = generate_org(scale=1, seed=8, as_of=AS_OF)
    assert other.tables["Account"] != org.tables["Account"]


def test_ids_do_not_depend_on_the_day(org) -> None:
    later = generate_org(scale=1, seed=7, as_of=datetime(2026, 1, 1, tzinfo=UTC))
    assert list(later.tables["Contact"]) == list(org.tables["Contact"])


def test_sizes_and_scale(org) -> None:
    c = org.counts()
    assert (c["Account"], c["Contact"], c["Opportunity"]) == (50, 150, 100)
    assert c["Task"] + c["Event"] >= 300
    assert c["ContentDocument"] >= 30
    c2 = generate_org(scale=2, seed=7, as_of=AS_OF).counts()
    assert (c2["Account"], c2["Contact"], c2["Opportunity"]) == (100, 300, 200)


def test_ids_have_the_right_key_prefixes(org) -> None:
    prefixes = {"Account": "001", "Contact": "003", "Opportunity": "006", "User": "005", "Task": "00T",
                "Event": "00U", "RecordType": "012", "ContentDocument": "069", "ContentVersion": "068",
                "Attachment": "00P", "Note": "002"}
    for obj, prefix in prefixes.items():
        for rid in org.tables[obj]:
            assert len(rid) == 18 and rid.startswith(prefix) and to18(rid[:15]) == rid


def test_timestamps_are_salesforce_shaped_and_spread(org) -> None:
    stamps = [r["CreatedDate"] for r in org.tables["Account"].values()]
    assert all(SF_DATETIME.match(s) for s in stamps)
    years = {s[:4] for s in stamps}
    assert len(years) >= 3
    for r in org.tables["Opportunity"].values():
        assert r["CreatedDate"] <= r["LastModifiedDate"] <= r["SystemModstamp"]


def test_account_cycle_and_self_parent(org) -> None:
    acc = org.tables["Account"]
    a, b, c = org.hard_cases["account_cycle"]
    assert (acc[a]["ParentId"], acc[b]["ParentId"], acc[c]["ParentId"]) == (b, c, a)
    s = org.hard_cases["account_self_parent"]
    assert acc[s]["ParentId"] == s


def test_system_only_changes(org) -> None:
    acc = org.tables["Account"]
    assert org.hard_cases["account_systemmodstamp_only"]
    for rid in org.hard_cases["account_systemmodstamp_only"]:
        assert acc[rid]["SystemModstamp"] > acc[rid]["LastModifiedDate"]


def test_contacts_in_several_accounts(org) -> None:
    rels = org.tables["AccountContactRelation"].values()
    for cid in org.hard_cases["contact_multi_account"]:
        mine = [r for r in rels if r["ContactId"] == cid]
        assert len({r["AccountId"] for r in mine}) >= 2
        direct = [r for r in mine if r["IsDirect"]]
        assert len(direct) == 1 and direct[0]["AccountId"] == org.tables["Contact"][cid]["AccountId"]


def test_owners(org) -> None:
    users = org.tables["User"]
    emails = [u["Email"] for u in users.values()]
    assert any(e != e.lower() for e in emails)
    assert "admin@example.com" in {e.lower() for e in emails} and "admin@example.com" not in emails
    assert sum(not u["IsActive"] for u in users.values()) >= 2
    owners = {r["OwnerId"] for r in org.tables["Account"].values()}
    assert owners & set(org.hard_cases["user_inactive"])


def test_pipelines_and_deals(org) -> None:
    assert len(org.pipelines) == 2
    stage_sets = [set(v) for v in org.pipelines.values()]
    assert stage_sets[0] != stage_sets[1]
    opps = org.tables["Opportunity"].values()
    for rt, stages in org.pipelines.items():
        assert {o["StageName"] for o in opps if o["RecordTypeId"] == rt} <= set(stages)
    won = [o for o in opps if o["IsWon"]]
    lost = [o for o in opps if o["IsClosed"] and not o["IsWon"]]
    assert won and lost
    assert all(o["McLabs2__Loss_Reason__c"] for o in lost)
    assert not any(o["McLabs2__Loss_Reason__c"] for o in won)
    hist = org.tables["OpportunityHistory"].values()
    for o in won[:5]:
        rows = sorted((h for h in hist if h["OpportunityId"] == o["Id"]), key=lambda h: h["CreatedDate"])
        assert rows and rows[-1]["StageName"] == o["StageName"]


def test_activities_of_every_kind(org) -> None:
    tasks = org.tables["Task"].values()
    for subtype in ("Task", "Email", "Call"):
        mine = [t for t in tasks if t["TaskSubtype"] == subtype]
        assert any(t["IsClosed"] for t in mine), subtype
    assert any(not t["IsClosed"] for t in tasks)
    assert all(t["CallDurationInSeconds"] for t in tasks if t["TaskSubtype"] == "Call")
    as_of = "2025-06-30T00:00:00.000+0000"
    events = org.tables["Event"].values()
    assert any(e["StartDateTime"] < as_of for e in events) and any(e["StartDateTime"] > as_of for e in events)
    assert any(e["IsAllDayEvent"] for e in events)
    assert org.tables["Note"] and org.tables["ContentNote"]


def test_files(org) -> None:
    docs = org.tables["ContentDocument"]
    versions = org.tables["ContentVersion"].values()
    non_ascii = docs[org.hard_cases["file_non_ascii"]]
    assert non_ascii["Title"] == "Exposé Büro 東京"
    empty = [v for v in versions if v["ContentDocumentId"] == org.hard_cases["file_empty"]]
    assert empty[0]["ContentSize"] == 0 and org.blobs[empty[0]["Id"]] == b""
    for v in versions:
        data = org.blobs[v["Id"]]
        assert v["ContentSize"] == len(data)
        assert v["Checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324
    for doc_id in org.hard_cases["file_multi_version"]:
        mine = [v for v in versions if v["ContentDocumentId"] == doc_id]
        assert len(mine) >= 2 and sum(v["IsLatest"] for v in mine) == 1
    links = org.tables["ContentDocumentLink"].values()
    assert all(any(lk["ContentDocumentId"] == d for lk in links) for d in docs)
    for a in org.tables["Attachment"].values():
        assert a["BodyLength"] == len(org.blobs[a["Id"]])
    # a missing file and a missing attachment: bytes known (sizes agree), served as 404, on live records
    missing_doc = docs[org.hard_cases["file_missing"]]
    att = org.tables["Attachment"][org.hard_cases["attachment_missing"]]
    assert org.missing_blobs == {missing_doc["LatestPublishedVersionId"], att["Id"]}
    assert org.blobs[att["Id"]] and not att["IsDeleted"]
    assert org.hard_cases["file_missing"] not in (org.hard_cases["file_empty"], org.hard_cases["file_non_ascii"])


def test_custom_fields_of_every_type(org) -> None:
    types = {f.type for o in ("Account", "Contact", "Opportunity") for f in org.schema[o].fields if f.custom}
    assert CUSTOM_TYPES <= types
    acc_fields = [f.name for f in org.schema["Account"].fields if f.custom]
    assert any(n.startswith("McLabs2__") for n in acc_fields)
    assert any(n.count("__") == 1 for n in acc_fields)      # customer fields have no namespace


def test_picklist_values_outside_their_picklist(org) -> None:
    assert len(org.hard_cases["picklist_outside"]) >= 3
    for key, rid in org.hard_cases["picklist_outside"].items():
        obj, fname = key.split(".")
        fdef = org.schema[obj].field(fname)
        value = org.tables[obj][rid][fname]
        parts = value.split(";") if fdef.type == "multipicklist" else [value]
        assert not set(parts) <= set(fdef.picklist), key


def test_recycle_bin(org) -> None:
    for obj in ("Account", "Contact", "Opportunity", "Task"):
        deleted = [r for r in org.tables[obj].values() if r["IsDeleted"]]
        assert deleted, obj
        assert {r["Id"] for r in deleted} == {rid for rid, _ in org.deleted_log[obj]}


def test_namespace_is_a_parameter() -> None:
    other = generate_org(scale=1, seed=7, namespace="Acme", as_of=AS_OF)
    assert "Acme__Property__c" in other.schema
    assert other.schema["Opportunity"].field("Acme__Priority__c") is not None
    assert other.schema["Opportunity"].field("McLabs2__Priority__c") is None
    assert {r["NamespacePrefix"] for r in other.tables["PackageLicense"].values()} >= {"Acme"}


def test_tooling_rows(org) -> None:
    for obj in ("WorkflowRule", "ValidationRule", "FlowDefinitionView", "ApexTrigger"):
        assert org.tooling[obj], obj


def test_same_org_in_another_process_and_hash_seed(org) -> None:
    import json
    import os
    import subprocess
    import sys

    code = ("import hashlib, json; from datetime import datetime, UTC; "
            "from crm_sandbox.apto.generator import generate_org; "
            "o = generate_org(1, 7, as_of=datetime(2025, 6, 30, tzinfo=UTC)); "
            "print(hashlib.sha256(json.dumps([o.tables, o.hard_cases, sorted((k, v.hex()) for k, v in o.blobs.items())], "
            "sort_keys=True, default=str).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True).stdout.strip() for seed in ("1", "2")}
    here = hashlib.sha256(json.dumps([org.tables, org.hard_cases, sorted((k, v.hex()) for k, v in org.blobs.items())],
                                     sort_keys=True, default=str).encode()).hexdigest()
    assert digests == {here}
