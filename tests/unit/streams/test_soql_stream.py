"""SoqlStream: SOQL text for a window, namespace placeholders, chunked parent ids, signpost, specs."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
import yaml

from crm_migration.errors import ConfigurationError
from crm_migration.hooks.apto import AptoHook, AptoUnknownFieldError, count_soql
from crm_migration.mapping.spec import parse_pair
from crm_migration.streams import SoqlStream, StreamSpecError, stream_from_spec

T0 = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)

DEAL = SoqlStream(source_object="Opportunity",
                  fields=("Id", "Name", "StageName", "<ns>__Priority__c", "Owner.<ns>__Code__c"),
                  filters=("<ns>__Archived__c = false",))


class FakeHook:
    """Duck-typed AptoHook: records the SOQL it is given and replays pages of records."""

    def __init__(self, records: list[dict] | None = None, *, namespace: str = "McLabs2",
                 describe: dict | None = None, bulk_threshold: int = 50_000) -> None:
        self.namespace, self.records, self._describe = namespace, records or [], describe or {}
        self.bulk_threshold = bulk_threshold
        self.queries: list[tuple[str, bool]] = []
        self.bulk_queries: list[tuple[str, bool]] = []
        self.counts: list[str] = []
        self.log = logging.getLogger("fake-apto")

    def query(self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None):
        self.queries.append((soql, include_deleted))
        yield from self.records

    def bulk_query(self, soql: str, *, include_deleted: bool = False):
        self.bulk_queries.append((soql, include_deleted))
        yield from self.records

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        self.counts.append(soql)
        return 3

    def describe(self, sobject: str) -> dict:
        return self._describe


def test_soql_for_a_window():
    assert DEAL.soql(T0, T1, "McLabs2") == (
        "SELECT Id, Name, StageName, McLabs2__Priority__c, Owner.McLabs2__Code__c, SystemModstamp"
        " FROM Opportunity"
        " WHERE SystemModstamp >= 2024-03-01T00:00:00Z AND SystemModstamp < 2024-03-01T01:00:00Z"
        " AND (McLabs2__Archived__c = false)"
        " ORDER BY SystemModstamp, Id")


def test_records_by_id_keep_the_filters_and_drop_the_window_in_chunks():
    ids = [f"006{n:012d}AAA" for n in range(201)]
    hook = FakeHook([{"Id": ids[0]}])
    assert list(DEAL.records_by_id(hook, [*ids, ids[0]])) == [{"Id": ids[0]}] * 2     # one per chunk of 200
    (first, _), (second, _) = hook.queries
    assert first.startswith("SELECT Id, Name, StageName, McLabs2__Priority__c, Owner.McLabs2__Code__c, SystemModstamp"
                            " FROM Opportunity WHERE (McLabs2__Archived__c = false) AND Id IN ('0060")
    assert "SystemModstamp >=" not in first and first.count("'006") == 200 and second.count("'006") == 1
    with pytest.raises(ValueError, match="not Salesforce ids"):
        list(DEAL.records_by_id(FakeHook(), ["x'); DELETE"]))


def test_soql_without_namespace_start_or_replication_key():
    assert DEAL.soql(None, T1, "") == (
        "SELECT Id, Name, StageName, Priority__c, Owner.Code__c, SystemModstamp FROM Opportunity"
        " WHERE SystemModstamp < 2024-03-01T01:00:00Z AND (Archived__c = false) ORDER BY SystemModstamp, Id")
    stages = SoqlStream(source_object="OpportunityStage", fields=("ApiName", "IsWon"), replication_key=None)
    assert stages.soql(T0, T1, "ns") == "SELECT ApiName, IsWon, Id FROM OpportunityStage ORDER BY Id"


def test_keys_are_added_once_and_naive_datetimes_refused():
    stream = SoqlStream(source_object="Account", fields=["Name", "id"])
    assert stream.fields == ("Name", "id", "SystemModstamp")
    with pytest.raises(ValueError, match="naive"):
        stream.soql(datetime(2024, 1, 1), T1, "")
    with pytest.raises(ValueError, match="empty window"):
        stream.soql(T1, T0, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stream.source_object = "Contact"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"fields": ()},
    {"fields": ("Name; DELETE",)},
    {"fields": ("Id",), "filters": ("",)},
    {"fields": ("Id",), "parent_chunk_size": 0},
])
def test_invalid_declarations(kwargs):
    with pytest.raises(StreamSpecError, match="stream Account"):
        SoqlStream(source_object="Account", **kwargs)


def test_records_use_query_all_when_asked_and_keep_the_signpost():
    inside = {"Id": "001000000000001AAA", "SystemModstamp": "2024-03-01T00:59:59.999+0000"}
    at_end = {"Id": "001000000000002AAA", "SystemModstamp": "2024-03-01T01:00:00.000+0000"}
    late = {"Id": "001000000000003AAA", "SystemModstamp": "2024-03-01T01:00:05.000+0000"}
    hook = FakeHook([inside, at_end, late])
    stream = SoqlStream(source_object="Account", fields=("Id", "IsDeleted"), include_deleted=True)
    assert list(stream.records(hook, T0, T1)) == [inside]
    assert hook.queries[0][1] is True


def test_parent_filter_chunks_ids():
    links = SoqlStream(source_object="ContentDocumentLink", fields=("LinkedEntityId", "ContentDocumentId"),
                      parent_filter="LinkedEntityId", parent_chunk_size=200)
    ids = [f"001{i:012d}" for i in range(450)]
    hook = FakeHook([])
    assert list(links.records(hook, T0, T1, parent_ids=ids)) == []
    assert len(hook.queries) == 3
    first = hook.queries[0][0]
    assert "LinkedEntityId IN ('001000000000000', " in first and first.count("'001") == 200
    assert hook.queries[2][0].count("'001") == 50
    assert links.count(hook, T0, T1, parent_ids=ids) == 9
    assert count_soql(hook.counts[0]).startswith("SELECT COUNT() FROM ContentDocumentLink WHERE SystemModstamp >= ")
    assert list(links.records(hook, T0, T1, parent_ids=[])) == [] and len(hook.queries) == 3
    with pytest.raises(StreamSpecError, match="needs parent ids"):
        list(links.records(hook, T0, T1))
    with pytest.raises(ValueError, match="not Salesforce ids"):
        links.soql(T0, T1, "", parent_ids=["1' OR Id != '"])


def test_a_delta_window_follows_the_changed_documents_not_every_parent():
    links = dataclasses.replace(stream_from_spec({
        "fields": ["Id", "LinkedEntityId", "ContentDocumentId"], "parent_filter": "LinkedEntityId",
        "filters": ["ContentDocument.FileType = 'SNOTE'"],
        "delta_by": {"source_object": "ContentDocument", "fields": ["Id"], "filters": ["FileType = 'SNOTE'"],
                     "match": "ContentDocumentId"}}, source_object="ContentDocumentLink"), include_deleted=True)
    empty = FakeHook([])
    assert list(links.records(empty, T0, T1)) == []
    (docs,) = empty.queries                   # nothing changed: one query, no link asked
    assert docs[1] is True and docs[0].startswith("SELECT Id, SystemModstamp, IsDeleted FROM ContentDocument WHERE "
                                                  "SystemModstamp >= 2024-03-01T00:00:00Z AND SystemModstamp < ")
    assert docs[0].endswith("AND (FileType = 'SNOTE') ORDER BY SystemModstamp, Id")
    doc = {"Id": "069000000000001AAA", "SystemModstamp": "2024-03-01T00:30:00.000+0000"}
    hook = FakeHook([doc])
    list(links.records(hook, T0, T1, parent_ids=["001000000000001AAA"]))
    _, (by_doc, deleted) = hook.queries       # its links, by document: no window, no ContentDocument filter
    assert deleted is True and "WHERE ContentDocumentId IN ('069000000000001AAA') ORDER BY" in by_doc
    assert "LinkedEntityId IN" not in by_doc and "FileType" not in by_doc
    full = FakeHook([])
    list(links.records(full, None, T1, parent_ids=["001000000000001AAA"]))     # a full read: by parent ids
    assert "LinkedEntityId IN ('001000000000001AAA')" in full.queries[0][0]
    by_object = FakeHook([])                                                   # or one semi-join per parent object
    list(links.records(by_object, None, T1, parent_objects=["Account", "<ns>__Property__c", "Account"]))
    assert [q for q, _ in by_object.queries] == [
        "SELECT Id, LinkedEntityId, ContentDocumentId, SystemModstamp FROM ContentDocumentLink WHERE "
        f"SystemModstamp < 2024-03-01T01:00:00Z AND (ContentDocument.FileType = 'SNOTE') AND LinkedEntityId IN "
        f"(SELECT Id FROM {o}) ORDER BY SystemModstamp, Id" for o in ("Account", "McLabs2__Property__c")]
    with pytest.raises(StreamSpecError, match="delta_by must be"):
        stream_from_spec({"fields": ["Id"], "delta_by": {"source_object": "ContentDocument", "fields": ["Id"]}},
                         source_object="ContentDocumentLink")


def test_missing_fields_name_object_and_field():
    describe = {"fields": [{"name": "Id"}, {"name": "Name"}, {"name": "StageName"}, {"name": "SystemModstamp"},
                           {"name": "McLabs2__Archived__c"},
                           {"name": "OwnerId", "relationshipName": "Owner"}]}
    hook = FakeHook(describe=describe)
    assert DEAL.missing_fields(hook) == ["McLabs2__Priority__c"]
    with pytest.raises(AptoUnknownFieldError, match=r"Opportunity: unknown field\(s\) McLabs2__Priority__c"):
        DEAL.check_fields(hook)


def test_stream_from_yaml_spec():
    spec = yaml.safe_load("""
    stream:
      kind: soql
      fields: [Id, FirstName, LastName, Email, AccountId, <ns>__Rating__c]
      replication_key: SystemModstamp
      filters: ["IsDeleted = false"]
    """)["stream"]
    stream = stream_from_spec(spec, source_object="Contact")
    assert stream == SoqlStream(source_object="Contact",
                                fields=("Id", "FirstName", "LastName", "Email", "AccountId", "<ns>__Rating__c"),
                                filters=("IsDeleted = false",))
    assert stream.soql(T0, T1, "McLabs2").startswith(
        "SELECT Id, FirstName, LastName, Email, AccountId, McLabs2__Rating__c, SystemModstamp FROM Contact WHERE")
    frozen = MappingProxyType({"kind": "soql", "fields": ("Id", "Name"), "filters": ("IsActive = true",)})
    assert stream_from_spec(frozen, source_object="User").fields == ("Id", "Name", "SystemModstamp")
    full = stream_from_spec({"object": "RecordType", "fields": ["Name"], "replication_key": None,
                             "filters": "SobjectType = 'Opportunity'"})
    assert full.replication_key is None and full.filters == ("SobjectType = 'Opportunity'",)


@pytest.mark.parametrize(("spec", "words"), [
    ({"kind": "rest", "fields": ["Id"]}, "kind must be 'soql'"),
    ({"fields": ["Id"], "page_size": 5}, r"unknown key\(s\) \['page_size'\]"),
    ({"fields": []}, "fields must be a non-empty list"),
    ({"fields": ["Id"], "include_deleted": "yes"}, "include_deleted"),
    ({"fields": ["Id"], "bulk": "sometimes"}, "bulk must be one of auto, always, never"),
    ({"fields": ["Id"], "bulk": True}, "bulk must be one of"),
])
def test_bad_specs(spec, words):
    with pytest.raises(ConfigurationError, match=words):
        stream_from_spec(spec, source_object="Account")


def test_records_through_a_real_hook(monkeypatch):
    """End to end over httpx.MockTransport: namespace from PackageLicense, then the window query."""
    monkeypatch.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps({
        "conn_type": "apto", "host": "https://login.example.test", "login": "cid", "password": "secret-1234",
        "extra": {"auth": "client_credentials"}}))
    seen: list[str] = []

    def org(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "tok-123456", "instance_url": "https://i.example.test"})
        if request.url.path.endswith("/sobjects"):
            return httpx.Response(200, json={"sobjects": [{"name": "McLabs2__Property__c"}]})
        q = request.url.params["q"]
        seen.append(q)
        if "PackageLicense" in q:
            return httpx.Response(200, json={"totalSize": 1, "done": True, "records": [{"NamespacePrefix": "McLabs2"}]})
        return httpx.Response(200, json={"totalSize": 1, "done": True, "records": [
            {"attributes": {"type": "Opportunity"}, "Id": "006000000000001AAA",
             "SystemModstamp": "2024-03-01T00:30:00.000+0000"}]})

    hook = AptoHook(transport=httpx.MockTransport(org))
    stream = dataclasses.replace(DEAL, fields=("Id", "<ns>__Priority__c"), filters=())
    assert list(stream.records(hook, T0, T0 + timedelta(hours=1))) == [
        {"Id": "006000000000001AAA", "SystemModstamp": "2024-03-01T00:30:00.000+0000"}]
    assert seen[-1] == ("SELECT Id, McLabs2__Priority__c, SystemModstamp FROM Opportunity WHERE SystemModstamp"
                        " >= 2024-03-01T00:00:00Z AND SystemModstamp < 2024-03-01T01:00:00Z ORDER BY SystemModstamp, Id")


# ---- REST or Bulk API 2.0 ----------------------------------------------------------------------------------

ROW = {"Id": "001000000000001AAA", "SystemModstamp": "2024-03-01T00:30:00.000+0000"}


def logged(caplog, capfd) -> str:
    return "\n".join([caplog.text, *capfd.readouterr()])  # Airflow's structlog writes to the console


@pytest.mark.parametrize(("threshold", "path"), [(3, "bulk"), (4, "rest"), (0, "bulk")])
def test_auto_full_read_counts_first_then_picks_the_path(threshold, path, caplog, capfd):
    caplog.set_level(logging.INFO)
    hook = FakeHook([ROW], bulk_threshold=threshold)
    stream = SoqlStream(source_object="Account", fields=("Id",), include_deleted=True)
    assert list(stream.records(hook, None, T1)) == [ROW]
    assert hook.counts == [stream.soql(None, T1, "McLabs2")]          # COUNT() of the very read
    read = hook.bulk_queries if path == "bulk" else hook.queries
    assert read == [(stream.soql(None, T1, "McLabs2"), True)] and len(hook.bulk_queries + hook.queries) == 1
    sign = ">=" if path == "bulk" else "<"
    assert f"Account: {'Bulk API 2.0 query job' if path == 'bulk' else 'REST query'} (full read: 3 record(s) " \
           f"{sign} bulk_threshold {threshold})" in logged(caplog, capfd)


def test_a_delta_window_is_one_rest_query_and_no_count(caplog, capfd):
    caplog.set_level(logging.INFO)
    hook = FakeHook([ROW], bulk_threshold=0)
    assert list(SoqlStream(source_object="Account", fields=("Id",)).records(hook, T0, T1)) == [ROW]
    assert len(hook.queries) == 1 and not hook.counts and not hook.bulk_queries
    assert "Account: REST query (delta window from 2024-03-01T00:00:00Z)" in logged(caplog, capfd)


@pytest.mark.parametrize(("mode", "bulk"), [("always", True), ("never", False)])
def test_always_and_never_need_no_count(mode, bulk):
    hook = FakeHook([ROW], bulk_threshold=0 if mode == "never" else 10**9)
    stream = stream_from_spec({"fields": ["Id"], "bulk": mode}, source_object="Account")
    assert stream.bulk == mode and list(stream.records(hook, T0 if bulk else None, T1)) == [ROW]
    assert not hook.counts and bool(hook.bulk_queries) is bulk and bool(hook.queries) is not bulk


def test_parent_id_chunks_stay_on_rest_even_when_bulk_is_always():
    links = SoqlStream(source_object="ContentDocumentLink", fields=("LinkedEntityId",),
                       parent_filter="LinkedEntityId", bulk="always")
    hook = FakeHook([], bulk_threshold=0)
    list(links.records(hook, None, T1, parent_ids=[f"001{i:012d}" for i in range(250)]))
    assert len(hook.queries) == 2 and not hook.bulk_queries and not hook.counts


def test_the_mapping_file_accepts_the_bulk_key():
    raw = yaml.safe_load((Path(__file__).resolve().parents[3] / "include/pairs/apto_to_odoo.yaml").read_text())
    raw["objects"]["Task"]["stream"]["bulk"] = "always"
    spec = parse_pair(raw)
    assert stream_from_spec(spec.objects["Task"].stream, source_object="Task").bulk == "always"
