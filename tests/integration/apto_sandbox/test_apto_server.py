"""The Apto sandbox over real HTTP: OAuth, query paging, describe, delta, blobs, errors, admin calls."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crm_sandbox.apto.org import CDL_RESTRICTION, DEFAULT_PASSWORD, DEFAULT_SECURITY_TOKEN, DEFAULT_USERNAME
from crm_sandbox.apto.server import AptoOrg, serve

pytestmark = pytest.mark.integration
V = "/services/data/v60.0"


@pytest.fixture(scope="module")
def _server() -> Iterator:
    server = serve(port=0, scale=1, seed=7)
    yield server
    server.stop()


@pytest.fixture
def srv(_server):
    """The module's server, its org regenerated for each test (reset is cheap; stopping a server is not)."""
    _server.state.reset()
    _server.state.clock = None
    return _server


@pytest.fixture
def org(srv) -> AptoOrg:
    return srv.state


def token_for(srv) -> str:
    org = srv.state
    r = httpx.post(f"{srv.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": org.client_id, "client_secret": org.client_secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def api(srv) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {token_for(srv)}"}, timeout=10) as c:
        yield c


def query(api: httpx.Client, soql: str, *, all_rows: bool = False, batch: int | None = None) -> list[dict]:
    """Follow nextRecordsUrl to the end, as the hook does."""
    headers = {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
    r = api.get(f"{V}/{'queryAll' if all_rows else 'query'}", params={"q": soql}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    records = list(page["records"])
    seen_urls = set()
    while not page["done"]:
        assert page["nextRecordsUrl"] not in seen_urls
        seen_urls.add(page["nextRecordsUrl"])
        r = api.get(page["nextRecordsUrl"])
        assert r.status_code == 200, r.text
        page = r.json()
        records += page["records"]
    return records


# ------------------------------------------------------------------------------------------- OAuth

def _jwt(claims: dict) -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2lnbmF0dXJl"


def test_oauth_flows(srv, org) -> None:
    url = f"{srv.url}/services/oauth2/token"
    cc = httpx.post(url, data={"grant_type": "client_credentials", "client_id": org.client_id,
                               "client_secret": org.client_secret})
    pw = httpx.post(url, data={"grant_type": "password", "client_id": org.client_id, "client_secret": org.client_secret,
                               "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN})
    jwt = httpx.post(url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": _jwt(
        {"iss": org.client_id, "sub": "jane.broker@mclabs2.sandbox", "aud": srv.url, "exp": int(time.time()) + 300})})
    for r in (cc, pw, jwt):
        assert r.status_code == 200, r.text
        body = r.json()
        assert {"access_token", "instance_url", "token_type", "issued_at", "id"} <= set(body)
        assert body["instance_url"] == srv.url and body["token_type"] == "Bearer"
        ok = httpx.get(f"{srv.url}{V}/limits", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert ok.status_code == 200


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "password", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}, "invalid_grant"),
    ({"grant_type": "password", "username": "nobody@x", "password": "x"}, "invalid_grant"),
    ({"grant_type": "client_credentials", "client_secret": "wrong"}, "invalid_client"),
    ({"grant_type": "client_credentials", "client_id": "wrong"}, "invalid_client_id"),
    ({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "not-a-jwt"}, "invalid_grant"),
    ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
])
def test_oauth_bad_credentials(srv, org, form, error) -> None:
    data = {"client_id": org.client_id, "client_secret": org.client_secret, **form}
    r = httpx.post(f"{srv.url}/services/oauth2/token", data=data)
    assert r.status_code == 400
    assert r.json()["error"] == error
    if form.get("username"):
        assert r.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_jwt_unknown_or_inactive_user(srv, org) -> None:
    inactive = org.tables["User"][org.data.hard_cases["user_inactive"][0]]["Username"]
    for sub in ("ghost@nowhere", inactive):
        r = httpx.post(f"{srv.url}/services/oauth2/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _jwt({"iss": org.client_id, "sub": sub, "exp": int(time.time()) + 60})})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_session_expired_shape_and_reauth(srv, api) -> None:
    assert httpx.get(f"{srv.url}{V}/sobjects").status_code == 401
    assert api.get(f"{V}/sobjects").status_code == 200
    assert httpx.post(f"{srv.url}/sandbox/expire-tokens").json()["expired"] >= 1
    r = api.get(f"{V}/sobjects")
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    fresh = token_for(srv)
    assert httpx.get(f"{srv.url}{V}/sobjects", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_wrong_method_keeps_the_connection_usable(api) -> None:
    r = api.post(f"{V}/query", content=b"x" * 5000)
    assert r.status_code == 405 and r.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert api.get(f"{V}/limits").status_code == 200


def test_versions_need_no_auth(srv) -> None:
    r = httpx.get(f"{srv.url}/services/data/")
    assert r.status_code == 200
    assert {"version": "60.0", "url": "/services/data/v60.0"}.items() <= r.json()[-3].items() or any(
        v["version"] == "60.0" for v in r.json())


# ------------------------------------------------------------------------------------------- query

def test_namespace_discovery(api) -> None:
    rows = query(api, "SELECT NamespacePrefix FROM PackageLicense")
    assert "McLabs2" in {r["NamespacePrefix"] for r in rows}
    names = {o["name"] for o in api.get(f"{V}/sobjects").json()["sobjects"]}
    assert "McLabs2__Property__c" in names and {"Account", "Contact", "Opportunity", "Task"} <= names


def test_paging_returns_every_record_once(api, org) -> None:
    total = api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Task"}).json()["totalSize"]
    first = api.get(f"{V}/query", params={"q": "SELECT Id FROM Task"}, headers={"Sforce-Query-Options": "batchSize=200"})
    page = first.json()
    assert page["totalSize"] == total and not page["done"] and len(page["records"]) == 200
    assert page["nextRecordsUrl"].startswith(f"{V}/query/01g")
    ids = [r["Id"] for r in query(api, "SELECT Id FROM Task", batch=200)]
    assert len(ids) == len(set(ids)) == total
    # default page size is 2,000
    org.create("Task", [{"Subject": f"bulk {i}"} for i in range(2100)])
    page = api.get(f"{V}/query", params={"q": "SELECT Id, Subject FROM Task"}).json()
    assert len(page["records"]) == 2000 and page["totalSize"] == total + 2100
    ids = [r["Id"] for r in query(api, "SELECT Id FROM Task ORDER BY CreatedDate, Id")]
    assert len(ids) == len(set(ids)) == total + 2100


def test_bad_locator(api) -> None:
    r = api.get(f"{V}/query/01gXXXXXXXXXXXXXXX-2000")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_sees_the_recycle_bin(api, org) -> None:
    deleted = set(org.data.hard_cases["deleted_Opportunity"])
    live = {r["Id"] for r in query(api, "SELECT Id FROM Opportunity")}
    every = {r["Id"]: r for r in query(api, "SELECT Id, IsDeleted FROM Opportunity", all_rows=True)}
    assert not live & deleted
    assert set(every) == live | deleted
    assert all(every[i]["IsDeleted"] for i in deleted)
    assert query(api, "SELECT Id FROM Opportunity WHERE IsDeleted = true") == []
    assert {r["Id"] for r in query(api, "SELECT Id FROM Opportunity WHERE IsDeleted = true", all_rows=True)} == deleted


def test_relationship_fields_and_record_shape(api, org) -> None:
    acct = org.data.hard_cases["account_self_parent"]
    rows = query(api, f"SELECT Id, Name, Owner.Email, Parent.Name, Parent.ParentId FROM Account WHERE Id = '{acct}'")
    assert len(rows) == 1
    r = rows[0]
    assert r["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{acct}"}
    assert r["Parent"]["attributes"]["type"] == "Account" and r["Parent"]["ParentId"] == acct
    assert "@" in r["Owner"]["Email"]
    orphan = query(api, "SELECT Id, Account.Name, Account.Owner.Email FROM Contact WHERE AccountId = null LIMIT 1")
    assert orphan[0]["Account"] is None
    cycle = org.data.hard_cases["account_cycle"]
    rows = query(api, f"SELECT Id, Account.Name, Account.Owner.Email, Account.Parent.Parent.Name FROM Contact "
                      f"WHERE Account.Parent.Parent.Id = '{cycle[0]}'")
    for row in rows:
        acc = row["Account"]
        assert acc["attributes"]["type"] == "Account" and "@" in acc["Owner"]["Email"]
        assert acc["Parent"]["Parent"]["Name"] == "Cycle Holdings A"
        assert acc["Parent"]["Parent"]["attributes"]["url"].endswith(cycle[0])
    assert {r["Account"]["Name"] for r in rows} <= {"Cycle Holdings B"}
    grand = query(api, f"SELECT Name, Parent.Parent.Name FROM Account WHERE Parent.Parent.Id = '{cycle[0]}'")
    assert [(r["Name"], r["Parent"]["Parent"]["Name"]) for r in grand] == [("Cycle Holdings B", "Cycle Holdings A")]


def test_polymorphic_what_type_and_retrieve(api, org) -> None:
    rows = query(api, "SELECT Id, WhatId, What.Type, What.Name, Who.Name FROM Task WHERE WhatId != null")
    assert {r["What"]["Type"] for r in rows} == {"Account", "Opportunity"}
    assert all(r["What"]["attributes"]["type"] == r["What"]["Type"] for r in rows)
    rid = rows[0]["Id"]
    one = api.get(f"{V}/sobjects/Task/{rid}", params={"fields": "Id,Subject,TaskSubtype"})
    assert one.status_code == 200 and set(one.json()) == {"attributes", "Id", "Subject", "TaskSubtype"}
    assert api.get(f"{V}/sobjects/Task/{rid[:15]}").json()["Id"] == rid
    gone = org.data.hard_cases["deleted_Task"][0]
    r = api.get(f"{V}/sobjects/Task/{gone}")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    r = api.get(f"{V}/query", params={"q": "SELECT Id FROM Task WHERE WhatId = 'nope'"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"


def test_escaped_literals_reach_the_right_record(api) -> None:
    name = 'The "100%" Fund \\ Partners'
    literal = name.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    rows = query(api, f"SELECT Name FROM Account WHERE Name = '{literal}'")
    assert [r["Name"] for r in rows] == [name]
    rows = query(api, "SELECT Name FROM Account WHERE Name = 'O\\'Brien & Sons Realty'")
    assert len(rows) == 1


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Foo FROM Account", "INVALID_FIELD"),
    ("SELECT Id FROM Foo__c", "INVALID_TYPE"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
])
def test_query_errors(api, soql, code) -> None:
    r = api.get(f"{V}/query", params={"q": soql})
    assert r.status_code == 400
    body = r.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code and body[0]["message"]
    if code == "INVALID_FIELD":
        assert "No such column 'Foo' on entity 'Account'" in body[0]["message"]


def test_content_document_link_restriction(api, org) -> None:
    r = api.get(f"{V}/query", params={"q": "SELECT Id, ContentDocumentId FROM ContentDocumentLink"})
    assert r.status_code == 400
    assert r.json() == [{"message": CDL_RESTRICTION, "errorCode": "MALFORMED_QUERY"}]
    some = next(iter(org.tables["Account"]))
    r = api.get(f"{V}/query", params={"q": f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId != '{some}'"})
    assert r.status_code == 400 and r.json()[0]["message"] == CDL_RESTRICTION
    r = api.get(f"{V}/query", params={"q": f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '{some}' "
                                           "OR ContentDocumentId = null"})
    assert r.status_code == 400 and r.json()[0]["message"] == CDL_RESTRICTION
    accounts = [a["Id"] for a in query(api, "SELECT Id FROM Account")]
    in_list = ", ".join(f"'{a}'" for a in accounts)
    links = query(api, f"SELECT LinkedEntityId, ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId IN ({in_list})")
    expected = [lk for lk in org.tables["ContentDocumentLink"].values() if lk["LinkedEntityId"] in set(accounts)]
    assert len(links) == len(expected) > 0
    semi = query(api, "SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId IN (SELECT Id FROM Account)")
    assert len(semi) == len(links)
    docs = sorted({lk["ContentDocumentId"] for lk in expected})
    by_doc = query(api, f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN ({', '.join(repr(d) for d in docs)})")
    assert len(by_doc) >= len(links)          # every link of those documents, to accounts or not
    # Salesforce: a filter on ContentDocument fields only next to one on LinkedEntityId
    r = api.get(f"{V}/query", params={"q": f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{docs[0]}' "
                                           "AND ContentDocument.FileType = 'PDF'"})
    assert r.status_code == 400 and "only when it is filtered by LinkedEntityId" in r.json()[0]["message"]
    assert query(api, f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId IN ({in_list}) "
                      "AND ContentDocument.FileType != 'SNOTE'")


def test_count_and_limit_header(api, srv) -> None:
    r1 = api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"})
    r2 = api.get(f"{V}/query", params={"q": "SELECT COUNT(Id) total FROM Account"})
    n1 = int(r1.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
    n2, limit = map(int, r2.headers["Sforce-Limit-Info"].split("=")[1].split("/"))
    assert n2 == n1 + 1 and limit == 100_000
    assert r2.json()["records"][0]["total"] == r1.json()["totalSize"]
    bad = api.get(f"{V}/query", params={"q": "SELECT Nope FROM Account"})
    assert "Sforce-Limit-Info" in bad.headers
    httpx.post(f"{srv.url}/sandbox/api-usage", json={"used": 10, "limit": 11})
    assert api.get(f"{V}/limits").headers["Sforce-Limit-Info"] == "api-usage=11/11"
    r = api.get(f"{V}/limits")
    assert r.status_code == 403
    assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert r.headers["Sforce-Limit-Info"] == "api-usage=11/11"


# ---------------------------------------------------------------------------------------- metadata

def test_describe_custom_fields_of_every_type(api) -> None:
    fields = {}
    for obj in ("Account", "Contact", "Opportunity"):
        d = api.get(f"{V}/sobjects/{obj}/describe").json()
        assert d["name"] == obj and d["keyPrefix"]
        fields.update({f"{obj}.{f['name']}": f for f in d["fields"] if f["custom"]})
    types = {f["type"] for f in fields.values()}
    assert {"string", "textarea", "picklist", "multipicklist", "double", "currency", "percent", "date", "datetime",
            "boolean", "url", "email", "phone", "reference"} <= types
    prio = fields["Opportunity.McLabs2__Priority__c"]
    assert prio["label"] == "Priority" and [v["value"] for v in prio["picklistValues"]][:2] == ["Low", "Medium"]
    prop = fields["Opportunity.McLabs2__Property__c"]
    assert prop["referenceTo"] == ["McLabs2__Property__c"] and prop["relationshipName"] == "McLabs2__Property__r"
    money = fields["Account.McLabs2__Portfolio_Value__c"]
    assert (money["precision"], money["scale"]) == (16, 2)
    assert fields["Account.McLabs2__Market__c"]["length"] == 80
    assert "Account.Region__c" in fields            # customer field, no namespace
    opp = api.get(f"{V}/sobjects/Opportunity/describe").json()
    stage = next(f for f in opp["fields"] if f["name"] == "StageName")
    assert [v["value"] for v in stage["picklistValues"] if not v["active"]] == ["Legacy - On Hold"]
    assert {rt["name"] for rt in opp["recordTypeInfos"]} == {"Brokerage", "Leasing", "Master"}
    assert api.get(f"{V}/sobjects/Nope__c/describe").status_code == 404


def test_picklist_values_differ_per_record_type(api, org) -> None:
    rts = query(api, "SELECT Id, Name, DeveloperName FROM RecordType WHERE SobjectType = 'Opportunity' AND IsActive = true")
    assert len(rts) == 2
    stages = {}
    for rt in rts:
        r = api.get(f"{V}/ui-api/object-info/Opportunity/picklist-values/{rt['Id']}/StageName")
        assert r.status_code == 200
        body = r.json()
        stages[rt["Name"]] = [v["value"] for v in body["values"]]
        won = [v for v in body["values"] if v["attributes"]["won"]]
        assert len(won) == 1 and won[0]["attributes"]["closed"]
    assert set(stages["Brokerage"]) != set(stages["Leasing"])
    assert stages["Leasing"][-2:] == ["Lease Signed", "Dead"]
    assert api.get(f"{V}/ui-api/object-info/Opportunity/picklist-values/012000000000000ZZZ/StageName").status_code == 404


def test_tooling_query(api) -> None:
    r = api.get(f"{V}/tooling/query", params={"q": "SELECT Id, Name, TableEnumOrId, Status, NamespacePrefix FROM ApexTrigger"})
    assert r.status_code == 200
    rows = r.json()["records"]
    assert len(rows) >= 3 and rows[0]["attributes"]["url"].startswith(f"{V}/tooling/sobjects/ApexTrigger/")
    for obj in ("WorkflowRule", "ValidationRule", "FlowDefinitionView"):
        assert api.get(f"{V}/tooling/query", params={"q": f"SELECT Id FROM {obj}"}).json()["totalSize"] > 0
    flows = api.get(f"{V}/tooling/query", params={
        "q": "SELECT ApiName FROM FlowDefinitionView WHERE IsActive = true AND TriggerObjectOrEventLabel = 'Opportunity'"})
    assert flows.json()["totalSize"] == 1
    bad = api.get(f"{V}/tooling/query", params={"q": "SELECT Id FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_TYPE"


# ------------------------------------------------------------------------------------------- blobs

def test_blob_bytes_match_content_size(api, org) -> None:
    versions = query(api, "SELECT Id, Title, ContentSize, Checksum, VersionData FROM ContentVersion WHERE IsLatest = true")
    titles = {v["Title"] for v in versions}
    assert "Exposé Büro 東京" in titles
    sizes = set()
    gone = org.data.missing_blobs
    for v in versions:
        r = api.get(v["VersionData"])
        if v["Id"] in gone:                     # the missing file: its record and URL are there, its bytes not
            assert (r.status_code, r.json()[0]["errorCode"]) == (404, "NOT_FOUND")
            continue
        assert r.status_code == 200
        assert len(r.content) == v["ContentSize"]
        assert hashlib.md5(r.content).hexdigest() == v["Checksum"]  # noqa: S324
        sizes.add(v["ContentSize"])
    assert 0 in sizes
    atts = query(api, "SELECT Id, Name, BodyLength, ContentType, Body FROM Attachment")
    for a in atts:
        r = api.get(a["Body"])
        if a["Id"] in gone:
            assert r.status_code == 404 and a["Body"] and a["BodyLength"] > 0
            continue
        assert len(r.content) == a["BodyLength"] and r.headers["content-type"] == a["ContentType"]
    assert len(gone) == 2 and org.data.hard_cases["attachment_missing"] in gone
    assert api.get(f"{V}/sobjects/ContentVersion/068000000000000AAA/VersionData").status_code == 404
    notes = query(api, "SELECT Id, Title, Content, ContentSize, LatestPublishedVersionId FROM ContentNote")
    assert notes and all(n["Content"].endswith(f"/ContentNote/{n['Id']}/Content") for n in notes)
    body = api.get(notes[0]["Content"]).content
    assert len(body) == notes[0]["ContentSize"] and body.startswith(b"<p>")
    assert body == api.get(f"{V}/sobjects/ContentVersion/{notes[0]['LatestPublishedVersionId']}/VersionData").content


# ------------------------------------------------------------------------------------- delta, admin

def test_mutate_then_window_query_returns_exactly_the_mutated(api, srv, org) -> None:
    at = "2031-01-02T03:04:05.000+0000"
    accounts = [a["Id"] for a in query(api, "SELECT Id FROM Account ORDER BY Name LIMIT 3")]
    r = httpx.post(f"{srv.url}/sandbox/mutate", json={
        "timestamp": at, "creates": {"Account": [{"Name": "Fresh Co", "McLabs2__Market__c": "Boston"}]},
        "updates": {"Account": [{"Id": accounts[0], "Phone": "+1 555 0100"}]},
        "deletes": {"Account": [accounts[1]]}})
    assert r.status_code == 200, r.text
    created = r.json()["created"]["Account"][0]
    window = "SystemModstamp >= 2031-01-02T03:04:05Z AND SystemModstamp < 2031-01-02T03:04:06Z"
    assert {x["Id"] for x in query(api, f"SELECT Id FROM Account WHERE {window}")} == {created, accounts[0]}
    assert {x["Id"] for x in query(api, f"SELECT Id FROM Account WHERE {window}", all_rows=True)} == {
        created, accounts[0], accounts[1]}
    row = query(api, f"SELECT Name, CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted FROM Account WHERE Id = '{created}'")[0]
    assert row["CreatedDate"] == row["SystemModstamp"] == at and row["IsDeleted"] is False
    # mutations "now" fall in a window taken around them
    before = datetime.now(UTC).replace(microsecond=0)
    ids = org.update("Contact", [{"Id": c, "Title": "Changed"} for c in list(org.tables["Contact"])[20:25]])
    after = datetime.now(UTC) + timedelta(seconds=1)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    rows = query(api, f"SELECT Id FROM Contact WHERE SystemModstamp >= {before.strftime(fmt)} "
                      f"AND SystemModstamp < {after.strftime(fmt)}")
    assert {x["Id"] for x in rows} == set(ids)


def test_stage_change_writes_history(api, org) -> None:
    deal = org.data.hard_cases["opportunity_lost"][0]
    rt = org.tables["Opportunity"][deal]["RecordTypeId"]
    target = org.data.pipelines[rt][1]
    org.update("Opportunity", [{"Id": deal, "StageName": target}], at="2031-05-06T07:08:09Z")
    row = query(api, f"SELECT IsClosed, IsWon, LastStageChangeDate FROM Opportunity WHERE Id = '{deal}'")[0]
    assert (row["IsClosed"], row["IsWon"], row["LastStageChangeDate"]) == (False, False, "2031-05-06T07:08:09.000+0000")
    hist = query(api, f"SELECT StageName, CreatedDate FROM OpportunityHistory WHERE OpportunityId = '{deal}' "
                      "ORDER BY CreatedDate DESC LIMIT 1")
    assert hist[0]["StageName"] == target and hist[0]["CreatedDate"] == "2031-05-06T07:08:09.000+0000"


def test_get_updated_and_get_deleted(api, org) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    end = (now + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    victim = next(i for i, r in org.tables["Contact"].items() if not r["IsDeleted"])
    changed = next(i for i, r in list(org.tables["Contact"].items())[30:] if not r["IsDeleted"])
    org.mutate({"deletes": {"Contact": [victim]}, "updates": {"Contact": [{"Id": changed, "Title": "CFO"}]}})
    r = api.get(f"{V}/sobjects/Contact/deleted/", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"deletedRecords", "earliestDateAvailable", "latestDateCovered"} <= set(body)
    got = {d["id"]: d["deletedDate"] for d in body["deletedRecords"]}
    assert victim in got and got[victim].endswith("+0000")
    r = api.get(f"{V}/sobjects/Contact/updated/", params={"start": start, "end": end})
    assert changed in r.json()["ids"] and victim not in r.json()["ids"]
    # generated recycle-bin rows (deleted in the last 10 days) are in the delete log too
    week = api.get(f"{V}/sobjects/Opportunity/deleted/", params={
        "start": (now - timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end}).json()
    assert {d["id"] for d in week["deletedRecords"]} == set(org.data.hard_cases["deleted_Opportunity"])
    old = api.get(f"{V}/sobjects/Contact/deleted/", params={
        "start": (now - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end})
    assert old.status_code == 400 and old.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_faults(api, srv) -> None:
    admin = f"{srv.url}/sandbox/faults"
    httpx.post(admin, json={"kind": "status", "status": 503, "count": 2})
    assert [api.get(f"{V}/limits").status_code for _ in range(3)] == [503, 503, 200]
    httpx.post(admin, json={"kind": "status", "status": 500, "count": 1, "match": "/query"})
    assert api.get(f"{V}/limits").status_code == 200
    r = api.get(f"{V}/query", params={"q": "SELECT Id FROM User"})
    assert r.status_code == 500 and r.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    httpx.post(admin, json={"kind": "invalid_session"})
    assert api.get(f"{V}/limits").json()[0]["errorCode"] == "INVALID_SESSION_ID"
    httpx.post(admin, json={"kind": "limit_exceeded"})
    assert api.get(f"{V}/limits").status_code == 403
    httpx.post(admin, json={"kind": "drop"})
    with pytest.raises(httpx.TransportError):
        api.get(f"{V}/limits")
    httpx.post(admin, json={"kind": "delay", "delay": 0.3})
    t0 = time.monotonic()
    assert api.get(f"{V}/limits").status_code == 200
    assert time.monotonic() - t0 >= 0.3
    stats = httpx.get(f"{srv.url}/sandbox/stats").json()
    assert stats["calls"]["limits"] >= 3 and "query" not in stats["calls"]   # faulted calls never reached it
    assert stats["events"]["fault:status"] == 3
    httpx.post(admin, json={"kind": "status", "status": 504, "count": 5})
    assert httpx.get(admin).json()["faults"][0]["count"] == 5
    assert api.get(f"{V}/limits").status_code == 504
    httpx.delete(admin)
    assert api.get(f"{V}/limits").status_code == 200
    assert httpx.post(f"{srv.url}/sandbox/stats/reset").json()["total"] == 0


def test_reset_restores_the_generated_org(api, srv, org) -> None:
    before = query(api, "SELECT COUNT() FROM Account") or api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"})
    n = api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"}).json()["totalSize"]
    org.create("Account", [{"Name": "Temp"}])
    assert api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"}).json()["totalSize"] == n + 1
    assert httpx.post(f"{srv.url}/sandbox/reset").json() == {"reset": True}
    assert api.get(f"{V}/query", params={"q": "SELECT COUNT() FROM Account"}).json()["totalSize"] == n
    assert before is not None


def test_info_lists_credentials_and_hard_cases(srv) -> None:
    info = httpx.get(f"{srv.url}/sandbox/info").json()
    assert info["namespace"] == "McLabs2" and info["credentials"]["client_id"]
    assert len(info["hard_cases"]["account_cycle"]) == 3


def test_bulk_query_job(api, org) -> None:
    r = api.post(f"{V}/jobs/query", json={"operation": "queryAll", "query": "SELECT Id, Name, Owner.Email, IsDeleted FROM Account"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "UploadComplete" and job["object"] == "Account" and job["id"].startswith("750")
    states = [api.get(f"{V}/jobs/query/{job['id']}").json()["state"] for _ in range(2)]
    assert states == ["InProgress", "JobComplete"]
    rows, locator = [], None
    while True:
        params = {"maxRecords": "20", **({"locator": locator} if locator else {})}
        page = api.get(f"{V}/jobs/query/{job['id']}/results", params=params)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/csv")
        got = list(csv.DictReader(io.StringIO(page.text)))
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(got)
        rows += got
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert len(rows) == len(org.tables["Account"]) and set(rows[0]) == {"Id", "Name", "Owner.Email", "IsDeleted"}
    assert {r["IsDeleted"] for r in rows} == {"true", "false"}
    assert api.delete(f"{V}/jobs/query/{job['id']}").status_code == 204
    assert api.get(f"{V}/jobs/query/{job['id']}").status_code == 404
    bad = api.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


def _bulk_job(api: httpx.Client, soql: str, **options: str) -> str:
    r = api.post(f"{V}/jobs/query", json={"operation": "query", "query": soql, **options})
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    while api.get(f"{V}/jobs/query/{job_id}").json()["state"] != "JobComplete":
        pass
    return job_id


def test_bulk_results_are_in_the_bulk_api_value_format(api, org) -> None:
    """Not the REST JSON's: dateTime ends in Z, numbers of double fields carry a decimal point."""
    job_id = _bulk_job(api, "SELECT Id, CreatedDate, CloseDate, Amount, Probability, IsWon, Account.Name "
                            "FROM Opportunity ORDER BY Id")
    rows = list(csv.DictReader(io.StringIO(api.get(f"{V}/jobs/query/{job_id}/results").text)))
    rest = {r["Id"]: r for r in query(api, "SELECT Id, CreatedDate, Amount FROM Opportunity")}
    assert rows and len(rows) == len(rest)
    for row in rows:
        assert row["CreatedDate"] == rest[row["Id"]]["CreatedDate"].replace("+0000", "Z")
        assert row["CreatedDate"].endswith(".000Z") and len(row["CloseDate"]) == 10
        assert row["IsWon"] in {"true", "false"}
        if row["Amount"]:
            assert "." in row["Amount"] and float(row["Amount"]) == rest[row["Id"]]["Amount"]
    assert all(r["Account.Name"] for r in rows)          # a parent's field: its path is the column name


def test_bulk_line_ending_and_delimiter_are_the_job_s(api) -> None:
    job_id = _bulk_job(api, "SELECT Id, Name, BillingStreet FROM Account", lineEnding="CRLF", columnDelimiter="TAB")
    info = api.get(f"{V}/jobs/query/{job_id}").json()
    assert (info["lineEnding"], info["columnDelimiter"]) == ("CRLF", "TAB")
    body = api.get(f"{V}/jobs/query/{job_id}/results").content.decode()
    assert body.startswith('"Id"\t"Name"\t"BillingStreet"\r\n')
    rows = list(csv.reader(io.StringIO(body, newline=""), delimiter="\t"))
    assert any("\n" in r[2] for r in rows[1:])          # a street on two lines stays one quoted value


def test_bulk_jobs_refuse_blobs_and_can_fail(api, srv, org) -> None:
    r = api.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Id, VersionData FROM ContentVersion"})
    assert r.status_code == 400 and "VersionData" in r.json()[0]["message"]
    before = api.get(f"{V}/limits").json()["DailyBulkV2QueryJobs"]["Remaining"]
    assert httpx.post(f"{srv.url}/sandbox/bulk-fail", json={"count": 1}).json() == {"failing": 1}
    job_id = api.post(f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM User"}).json()["id"]
    states = [api.get(f"{V}/jobs/query/{job_id}").json() for _ in range(2)]
    assert [s["state"] for s in states] == ["InProgress", "Failed"] and "QUERY_TIMEOUT" in states[1]["errorMessage"]
    assert api.get(f"{V}/jobs/query/{job_id}/results").status_code == 400
    assert api.get(f"{V}/limits").json()["DailyBulkV2QueryJobs"]["Remaining"] == before - 1


def test_bulk_results_are_the_job_s_snapshot(api, org) -> None:
    job_id = _bulk_job(api, "SELECT Id, Phone FROM Account ORDER BY Id")
    victim = sorted(org.tables["Account"])[0]
    org.update("Account", [{"Id": victim, "Phone": "+1 555 0123"}])
    page = api.get(f"{V}/jobs/query/{job_id}/results", params={"maxRecords": "5"})
    rows = list(csv.DictReader(io.StringIO(page.text)))
    assert rows[0]["Id"] == victim and rows[0]["Phone"] != "+1 555 0123"
    assert int(page.headers["Sforce-NumberOfRecords"]) == len(rows) == 5


@pytest.mark.parametrize("auth", ["client_credentials", "password"])
def test_airflow_conn_json_authenticates(srv, org, auth) -> None:
    conn = org.airflow_conn(srv.url, auth)
    assert conn["conn_type"] == "apto" and conn["host"] == srv.url
    x = conn["extra"]
    if auth == "client_credentials":
        form = {"grant_type": auth, "client_id": conn["login"], "client_secret": conn["password"]}
    else:
        form = {"grant_type": auth, "client_id": x["client_id"], "client_secret": x["client_secret"],
                "username": conn["login"], "password": conn["password"] + x["security_token"]}
    assert httpx.post(f"{srv.url}/services/oauth2/token", data=form).status_code == 200


def test_session_timeout() -> None:
    # long enough that a loaded 2-core machine answers the first call in time
    with serve(port=0, session_timeout=2.0) as server:
        tok = token_for(server)
        headers = {"Authorization": f"Bearer {tok}"}
        assert httpx.get(f"{server.url}{V}/limits", headers=headers).status_code == 200
        time.sleep(2.1)
        r = httpx.get(f"{server.url}{V}/limits", headers=headers)
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
