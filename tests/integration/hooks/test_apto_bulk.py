"""AptoHook.bulk_query and SoqlStream's path choice over real HTTP against the Apto sandbox.

The REST query of the same SOQL is the reference: Bulk API 2.0 must give the same records, value for
value and type for type (compared as JSON text).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crm_migration.hooks.apto import AptoApiError, AptoBulkJobError, AptoHook, soql_in
from crm_migration.streams import SoqlStream

sandbox = pytest.importorskip("crm_sandbox.apto.server", reason="Apto sandbox not available")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    srv = sandbox.serve(port=0, scale=3, seed=7)
    yield srv
    srv.stop()


@pytest.fixture
def org(server):
    return server.state


@pytest.fixture
def conn(server, monkeypatch):
    """Wire ``apto_default`` to the sandbox; return a setter for extras (``bulk_threshold``)."""
    creds = server.state.info(server.url)["credentials"]

    def set_conn(**extra: object) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps({
            "conn_type": "apto", "host": server.url, "login": creds["client_id"],
            "password": creds["client_secret"], "extra": {"auth": "client_credentials", **extra}}))

    set_conn()
    yield set_conn
    server.state.reset_stats()


def make_hook() -> AptoHook:
    hook = AptoHook()
    hook.sleep = lambda s: None  # the job's poll backoff: the sandbox needs none
    return hook


def every_field(hook: AptoHook, sobject: str, *parents: str) -> str:
    """All fields of ``sobject`` a query can read (blobs cannot go through Bulk API), then ``parents``."""
    names = [f["name"] for f in hook.describe(sobject)["fields"] if f["type"] not in {"base64", "address", "location"}]
    return ", ".join([*names, *parents])


def api_calls(org) -> dict[str, int]:
    """The sandbox's count of API calls per endpoint (the OAuth token request left out)."""
    return {k: v for k, v in org.get_stats()["calls"].items() if k != "token"}


def same(rest: list[dict], bulk: list[dict]) -> None:
    assert len(bulk) == len(rest) > 0
    for r, b in zip(rest, bulk, strict=True):
        assert json.dumps(b) == json.dumps(r), r.get("Id")   # values and JSON types alike


@pytest.mark.parametrize(("sobject", "parents"), [
    ("Account", ("Owner.Email", "Parent.Name", "Parent.Owner.Email")),
    ("Contact", ("Account.Name", "Account.Phone", "Owner.Email")),
    ("Opportunity", ("Account.Name", "Account.Owner.IsActive", "RecordType.DeveloperName", "Owner.Email")),
    ("Task", ("What.Name", "What.Type", "Who.Name", "Owner.Email")),
])
def test_bulk_and_rest_give_the_same_records(conn, sobject, parents):
    hook = make_hook()
    soql = f"SELECT {every_field(hook, sobject, *parents)} FROM {sobject} ORDER BY Id"
    rest = list(hook.query(soql))
    bulk = list(hook.bulk_query(soql))
    same(rest, bulk)
    if sobject == "Opportunity":   # the namespaced custom fields of every type are in there, typed as REST types them
        custom = {f["type"] for f in hook.describe(sobject)["fields"] if f["name"].startswith("McLabs2__")}
        assert {"currency", "percent", "double", "picklist", "multipicklist", "date", "reference"} <= custom
        assert any(isinstance(r["McLabs2__Commission__c"], float) for r in bulk)
    for rel in {p.split(".")[0] for p in parents}:   # the parents were there to compare
        assert any(isinstance(r[rel], dict) for r in bulk), rel


def test_parents_missing_and_parents_with_blank_fields_differ_as_in_rest(conn, org):
    hook = make_hook()
    soql = "SELECT Id, AccountId, Account.Phone, Account.Owner.Email FROM Contact ORDER BY Id"
    rest, bulk = list(hook.query(soql)), list(hook.bulk_query(soql))
    same(rest, bulk)
    assert any(r["Account"] is None for r in bulk)                                  # no account at all
    assert any(r["Account"] is not None and r["Account"]["Phone"] is None for r in bulk)   # account, no phone


def test_content_document_links_with_relationship_fields(conn):
    hook = make_hook()
    parents = [r["Id"] for r in hook.query("SELECT Id FROM Account ORDER BY Id LIMIT 150")]
    soql = ("SELECT Id, LinkedEntityId, ContentDocumentId, ContentDocument.Title, ContentDocument.FileType, "
            "ContentDocument.FileExtension, ContentDocument.LatestPublishedVersionId, ContentDocument.CreatedDate, "
            "ContentDocument.OwnerId, ContentDocument.Owner.Email, SystemModstamp FROM ContentDocumentLink "
            f"WHERE LinkedEntityId IN {soql_in(parents)} ORDER BY SystemModstamp, Id")
    rest, bulk = list(hook.query(soql)), list(hook.bulk_query(soql))
    same(rest, bulk)
    assert all(isinstance(r["ContentDocument"]["Title"], str) for r in bulk)
    assert bulk[0]["ContentDocument"]["CreatedDate"].endswith("+0000")
    with pytest.raises(AptoApiError, match="ContentDocumentLink requires a filter"):
        list(hook.bulk_query("SELECT Id FROM ContentDocumentLink"))


def test_query_all_brings_the_recycle_bin(conn):
    hook = make_hook()
    soql = "SELECT Id, Name, IsDeleted, Owner.Email, SystemModstamp FROM Account ORDER BY Id"
    rest = list(hook.query(soql, include_deleted=True))
    bulk = list(hook.bulk_query(soql, include_deleted=True))
    same(rest, bulk)
    deleted = [r["Id"] for r in bulk if r["IsDeleted"] is True]
    assert deleted and not set(deleted) & {r["Id"] for r in hook.bulk_query(soql)}


def test_pages_follow_the_locator_and_every_request_is_counted(conn, org):
    hook = make_hook()
    total = hook.count("SELECT Id FROM Task")
    hook.describe("Task")              # typing the CSV needs it; asked once per hook, as REST asks it too
    org.reset_stats()
    used = org.get_stats()["api_usage"]["used"]
    rows = list(hook.bulk_query("SELECT Id, Subject, ActivityDate FROM Task ORDER BY Id", max_records=100))
    assert len(rows) == len({r["Id"] for r in rows}) == total > 300
    stats = org.get_stats()
    calls = api_calls(org)
    pages = -(-total // 100)
    assert calls == {"bulk_create": 1, "bulk_job": 2, "bulk_results": pages}   # 2 polls: InProgress, JobComplete
    assert stats["api_usage"]["used"] - used == 3 + pages == stats["total"]


def test_a_failed_job_says_which_and_why(conn, server):
    hook = make_hook()
    httpx.post(f"{server.url}/sandbox/bulk-fail", json={"message": "InvalidBatch : Failed to process query: "
                                                                   "QUERY_TIMEOUT: too long"}).raise_for_status()
    with pytest.raises(AptoBulkJobError) as err:
        list(hook.bulk_query("SELECT Id FROM Account"))
    assert err.value.state == "Failed" and err.value.job_id.startswith("750")
    assert str(err.value).startswith(f"Account: Bulk API query job {err.value.job_id} Failed: InvalidBatch")
    assert "QUERY_TIMEOUT" in str(err.value)
    assert len(list(hook.bulk_query("SELECT Id FROM Account"))) > 0     # the next job runs


def test_a_job_s_results_are_its_snapshot(conn, org):
    """Records changed or deleted while the pages are read do not show (and every page adds up)."""
    hook = make_hook()
    rows = hook.bulk_query("SELECT Id, Phone FROM Account ORDER BY Id", max_records=20)
    first = next(rows)                                   # the job has run; page 1 is being read
    ids = [r["Id"] for r in hook.query("SELECT Id FROM Account ORDER BY Id")]
    try:
        org.update("Account", [{"Id": ids[-1], "Phone": "+1 555 0199"}])
        org.delete("Account", [ids[-2]])
        read = [first, *rows]
    finally:
        org.reset()
    assert [r["Id"] for r in read] == ids and read[-1]["Phone"] != "+1 555 0199"


# ---- SoqlStream: which path --------------------------------------------------------------------------------


def test_stream_full_read_over_threshold_goes_bulk_and_a_delta_goes_rest(conn, org):
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    stream = SoqlStream(source_object="Opportunity",
                        fields=("Id", "Name", "Amount", "<ns>__Commission__c", "Account.Name", "IsClosed"))
    conn(bulk_threshold=1, namespace="McLabs2")
    org.reset_stats()
    bulk = list(stream.records(make_hook(), None, end))
    calls = api_calls(org)
    assert calls.get("query") == 1 and calls.get("bulk_create") == 1 and "query_more" not in calls  # COUNT(), job

    conn(bulk_threshold=10**6, namespace="McLabs2")
    org.reset_stats()
    rest = list(stream.records(make_hook(), None, end))
    calls = api_calls(org)
    assert calls.get("query") == 2 and not any(k.startswith("bulk") for k in calls)  # COUNT(), then the query
    same(rest, bulk)

    conn(bulk_threshold=0, namespace="McLabs2")
    org.reset_stats()
    window = list(stream.records(make_hook(), end - timedelta(days=3650), end))
    calls = api_calls(org)
    assert calls == {"query": 1} and len(window) == len(rest)   # a delta window: one REST query, no COUNT()


def test_stream_bulk_never_and_always(conn, org):
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    conn(bulk_threshold=0, namespace="McLabs2")
    org.reset_stats()
    stream = SoqlStream(source_object="Account", fields=("Id", "Name"), bulk="never")
    never = list(stream.records(make_hook(), None, end))
    assert set(api_calls(org)) == {"query"}
    org.reset_stats()
    start = end - timedelta(days=3650)
    stream = SoqlStream(source_object="Account", fields=("Id", "Name"), bulk="always")
    always = list(stream.records(make_hook(), start, end))
    assert set(api_calls(org)) == {"bulk_create", "bulk_job", "bulk_results", "describe"}  # describe: CSV types
    assert len(always) == len(never) > 0
