"""Bulk API 2.0 in AptoHook: CSV cells and rows -> REST-shaped records (no network), and the job
life cycle over httpx.MockTransport (what is sent, which errors come back)."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable

import httpx
import pytest

from crm_migration.hooks.apto import (
    AptoBulkJobError,
    AptoConfigurationError,
    AptoHook,
    BulkCsvDecoder,
    bulk_value,
    with_parent_ids,
)

LOGIN = "https://login.example.test"
INSTANCE = "https://org7.my.example.test"
API = "/services/data/v60.0"
SECRET = "csecret-4f9a1b2c3d"
JOB = "7505g000000BULKAAA"


def _f(name: str, kind: str, rel: str | None = None, to: tuple[str, ...] = ()) -> dict:
    return {"name": name, "type": kind, "relationshipName": rel, "referenceTo": list(to)}


DESCRIBES = {
    "Opportunity": {"fields": [
        _f("Id", "id"), _f("Name", "string"), _f("Amount", "currency"), _f("Probability", "percent"),
        _f("IsWon", "boolean"), _f("CloseDate", "date"), _f("SystemModstamp", "datetime"),
        _f("McLabs2__Square_Feet__c", "double"), _f("McLabs2__Units__c", "int"),
        _f("McLabs2__Tags__c", "multipicklist"),
        _f("Description", "textarea"), _f("AccountId", "reference", "Account", ("Account",)),
        _f("OwnerId", "reference", "Owner", ("User",))]},
    "Account": {"fields": [_f("Id", "id"), _f("Name", "string"), _f("Phone", "phone"),
                           _f("NumberOfEmployees", "int"), _f("OwnerId", "reference", "Owner", ("User",))]},
    "User": {"fields": [_f("Id", "id"), _f("Email", "email"), _f("IsActive", "boolean")]},
    "Task": {"fields": [_f("Id", "id"), _f("Subject", "string"),
                        _f("WhatId", "reference", "What", ("Account", "Opportunity"))]},
}


def describe(sobject: str) -> dict:
    return DESCRIBES.get(sobject, {"fields": []})


# ---- one cell ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind", "expected"), [
    ("", "string", None),
    ("", "boolean", None),
    ("", "currency", None),
    ("true", "boolean", True),
    ("false", "boolean", False),
    ("2871", "int", 2871),
    ("23.0", "int", 23),                                   # the CSV may write an int field as 23.0
    ("100.0", "currency", 100.0),
    ("100", "percent", 100.0),
    ("5.34", "percent", 5.34),
    ("4.0", "double", 4.0),
    ("2024-04-16T19:00:00.000Z", "datetime", "2024-04-16T19:00:00.000+0000"),
    ("2024-04-16T19:00:00Z", "datetime", "2024-04-16T19:00:00.000+0000"),
    ("2024-04-16", "date", "2024-04-16"),
    ("0015g000030023jAAA", "reference", "0015g000030023jAAA"),
    ("007", "string", "007"),                              # text stays text, leading zeros and all
    ("Distressed;Trophy", "multipicklist", "Distressed;Trophy"),
])
def test_cells_come_out_as_the_rest_json_has_them(raw, kind, expected):
    value = bulk_value(raw, kind)
    assert value == expected and type(value) is type(expected)


# ---- rows ----------------------------------------------------------------------------------------------


def test_rows_are_typed_nested_and_named_as_rest_names_them():
    header = ["id", "NAME", "amount", "Probability", "IsWon", "CloseDate", "SystemModstamp", "McLabs2__Units__c",
              "mclabs2__square_feet__c", "account.name", "Account.Owner.email", "Account.Id", "Account.Owner.Id"]
    decoder = BulkCsvDecoder("Opportunity", header, describe, implicit=("Account.Id", "Account.Owner.Id"))
    row = ["0065g000030023jAAA", "Deal, \"big\"", "16314500.0", "100.0", "true", "2023-11-07",
           "2026-10-24T06:00:23.000Z", "12", "", "Acme", "jane@example.com", "0015g000030023jAAA",
           "0055g000030023jAAA"]
    expected = {"Id": "0065g000030023jAAA", "Name": "Deal, \"big\"", "Amount": 16314500.0, "Probability": 100.0,
                "IsWon": True, "CloseDate": "2023-11-07", "SystemModstamp": "2026-10-24T06:00:23.000+0000",
                "McLabs2__Units__c": 12, "McLabs2__Square_Feet__c": None,
                "Account": {"Name": "Acme", "Owner": {"Email": "jane@example.com"}}}
    record = decoder.record(row)
    assert json.dumps(record) == json.dumps(expected)      # same keys, order, values and JSON types


def test_a_missing_parent_is_none_and_a_parent_with_blank_fields_is_not():
    header = ["Id", "Account.Phone", "Account.Owner.Email", "Account.Id", "Account.Owner.Id"]
    decoder = BulkCsvDecoder("Opportunity", header, describe, implicit=("Account.Id", "Account.Owner.Id"))
    assert decoder.record(["006A", "", "", "", ""]) == {"Id": "006A", "Account": None}
    assert decoder.record(["006B", "", "", "001B", ""]) == {"Id": "006B", "Account": {"Phone": None, "Owner": None}}
    assert decoder.record(["006C", "", "", "001C", "005C"]) == {
        "Id": "006C", "Account": {"Phone": None, "Owner": {"Email": None}}}


def test_without_an_id_column_a_wholly_blank_parent_is_none():
    decoder = BulkCsvDecoder("Opportunity", ["Id", "Account.Name", "Owner.Email"], describe)
    assert decoder.record(["006A", "", "x@example.com"]) == {"Id": "006A", "Account": None,
                                                             "Owner": {"Email": "x@example.com"}}


def test_an_asked_for_parent_id_stays_and_polymorphic_parents_resolve():
    decoder = BulkCsvDecoder("Task", ["Id", "What.Name", "What.Id"], describe)
    assert decoder.record(["00TA", "Acme", "001A"]) == {"Id": "00TA", "What": {"Name": "Acme", "Id": "001A"}}
    assert decoder.record(["00TB", "", ""]) == {"Id": "00TB", "What": None}


def test_object_qualified_and_unknown_columns():
    decoder = BulkCsvDecoder("Account", ["Account.Name", "NumberOfEmployees", "Mystery__c"], describe)
    assert decoder.record(["Acme", "12", "7"]) == {"Name": "Acme", "NumberOfEmployees": 12, "Mystery__c": "7"}
    with pytest.raises(ValueError, match="2 cells under a header of 3"):
        decoder.record(["Acme", "12"])


@pytest.mark.parametrize(("soql", "sent", "added"), [
    ("SELECT Id, Name FROM Account", "SELECT Id, Name FROM Account", ()),
    ("SELECT Id, Account.Name, Account.Owner.Email FROM Contact WHERE Email != null ORDER BY Id",
     "SELECT Id, Account.Name, Account.Owner.Email, Account.Id, Account.Owner.Id FROM Contact WHERE Email != null"
     " ORDER BY Id", ("Account.Id", "Account.Owner.Id")),
    ("SELECT Id, Account.Id, Account.Name FROM Contact", "SELECT Id, Account.Id, Account.Name FROM Contact", ()),
    ("SELECT Account.Name, Owner.Email FROM Account", "SELECT Account.Name, Owner.Email, Owner.Id FROM Account",
     ("Owner.Id",)),
    ("SELECT Id, toLabel(StageName), Account.Name FROM Opportunity",
     "SELECT Id, toLabel(StageName), Account.Name FROM Opportunity", ()),
])
def test_parent_ids_are_read_along(soql, sent, added):
    assert with_parent_ids(soql) == (sent, added)


# ---- the job over a fake org ---------------------------------------------------------------------------


def csv_page(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode()


class FakeBulkOrg:
    """Token, describe and one Bulk API query job: ``states`` answered in turn, then ``pages``."""

    def __init__(self, states: list[dict], pages: list[tuple[bytes, str, int]]) -> None:
        self.states, self.pages, self.sent = states, pages, []
        self.results: Callable[[httpx.Request], httpx.Response] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        path = request.url.path
        if path == "/services/oauth2/token":
            return httpx.Response(200, json={"access_token": "00Dxx!token-value-1", "instance_url": INSTANCE})
        headers = {"Sforce-Limit-Info": "api-usage=10/1000"}
        if path.endswith("/describe"):
            return httpx.Response(200, json=describe(path.split("/")[-2]), headers=headers)
        if path == f"{API}/jobs/query" and request.method == "POST":
            return httpx.Response(200, json={"id": JOB, "state": "UploadComplete", "object": "Opportunity"},
                                  headers=headers)
        if path == f"{API}/jobs/query/{JOB}" and request.method == "GET":
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return httpx.Response(200, json={"id": JOB, "columnDelimiter": "COMMA", **state}, headers=headers)
        if path == f"{API}/jobs/query/{JOB}" and request.method == "PATCH":
            return httpx.Response(200, json={"id": JOB, "state": "Aborted"}, headers=headers)
        if path == f"{API}/jobs/query/{JOB}/results":
            body, locator, n = self.pages.pop(0)
            chunks = [body[i:i + 7] for i in range(0, len(body), 7)]   # a body arriving in small pieces
            return httpx.Response(200, content=iter(chunks), headers={
                **headers, "Content-Type": "text/csv", "Sforce-Locator": locator, "Sforce-NumberOfRecords": str(n)})
        return httpx.Response(404, json=[{"errorCode": "NOT_FOUND", "message": path}])

    def hook(self, monkeypatch: pytest.MonkeyPatch, **extra: object) -> AptoHook:
        monkeypatch.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps({
            "conn_type": "apto", "host": LOGIN, "login": "client-id-123", "password": SECRET,
            "extra": {"auth": "client_credentials", **extra}}))
        hook = AptoHook(transport=httpx.MockTransport(self))
        hook.sleep = lambda s: None
        return hook

    def api(self, method: str, suffix: str) -> list[httpx.Request]:
        return [r for r in self.sent if r.method == method and r.url.path.endswith(suffix)]


HEADER = ["Id", "Name", "Amount", "Description", "Account.Name", "Account.Id"]


def test_job_pages_follow_the_locator_and_records_match_rest(monkeypatch):
    page1 = csv_page(HEADER, [["006A", "Exposé Büro 東京", "100.0", "line one\nline \"two\", three", "Acme",
                               "001A"],
                              ["006B", "Plain", "", "", "", ""]])
    page2 = csv_page(HEADER, [["006C", "Last", "2.5", "", "", "001C"]])
    org = FakeBulkOrg([{"state": "InProgress"}, {"state": "JobComplete", "numberRecordsProcessed": 3}],
                      [(page1, "MjAwMA", 2), (page2, "null", 1)])
    hook = org.hook(monkeypatch)
    records = list(hook.bulk_query("SELECT Id, Name, Amount, Description, Account.Name FROM Opportunity",
                                   include_deleted=True, max_records=2))
    assert records == [
        {"Id": "006A", "Name": "Exposé Büro 東京", "Amount": 100.0, "Description": "line one\nline \"two\", three",
         "Account": {"Name": "Acme"}},
        {"Id": "006B", "Name": "Plain", "Amount": None, "Description": None, "Account": None},
        {"Id": "006C", "Name": "Last", "Amount": 2.5, "Description": None, "Account": {"Name": None}}]
    (create,) = org.api("POST", "/jobs/query")
    assert json.loads(create.content) == {
        "operation": "queryAll", "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF",
        "query": "SELECT Id, Name, Amount, Description, Account.Name, Account.Id FROM Opportunity"}
    assert len(org.api("GET", f"/jobs/query/{JOB}")) == 2
    first, second = org.api("GET", "/results")
    assert dict(first.url.params) == {"maxRecords": "2"} and first.headers["Accept"] == "text/csv"
    assert dict(second.url.params) == {"maxRecords": "2", "locator": "MjAwMA"}


def test_a_failed_job_names_its_id_and_salesforce_s_message(monkeypatch):
    message = f"InvalidBatch : Failed to process query: QUERY_TIMEOUT (session {SECRET})"
    org = FakeBulkOrg([{"state": "InProgress"}, {"state": "Failed", "errorMessage": message}], [])
    with pytest.raises(AptoBulkJobError) as err:
        list(org.hook(monkeypatch).bulk_query("SELECT Id FROM Opportunity"))
    text = str(err.value)
    assert JOB in text and "Failed" in text and "QUERY_TIMEOUT" in text and SECRET not in text
    assert err.value.job_id == JOB and err.value.state == "Failed" and not org.api("GET", "/results")


def test_an_aborted_job_is_an_error_too(monkeypatch):
    org = FakeBulkOrg([{"state": "Aborted"}], [])
    with pytest.raises(AptoBulkJobError, match=f"{JOB} Aborted: Salesforce gave no errorMessage"):
        list(org.hook(monkeypatch).bulk_query("SELECT Id FROM Opportunity"))


def test_a_job_past_its_timeout_is_aborted(monkeypatch):
    org = FakeBulkOrg([{"state": "InProgress"}], [])
    hook = org.hook(monkeypatch, bulk_timeout=20)
    with pytest.raises(AptoBulkJobError, match=r"not complete after 20 s .*the job was aborted"):
        list(hook.bulk_query("SELECT Id FROM Opportunity"))
    (abort,) = org.api("PATCH", f"/jobs/query/{JOB}")
    assert json.loads(abort.content) == {"state": "Aborted"}
    assert 5 <= len(org.api("GET", f"/jobs/query/{JOB}")) <= 8       # 0.25 s doubling: a handful of polls


def test_a_page_short_of_its_announced_rows_is_an_error(monkeypatch):
    page = csv_page(["Id"], [["006A"]])
    org = FakeBulkOrg([{"state": "JobComplete", "numberRecordsProcessed": 2}], [(page, "null", 2)])
    with pytest.raises(AptoBulkJobError, match="held 1 records, Sforce-NumberOfRecords said 2"):
        list(org.hook(monkeypatch).bulk_query("SELECT Id FROM Opportunity"))


def test_an_empty_result_yields_nothing(monkeypatch, caplog, capfd):
    org = FakeBulkOrg([{"state": "JobComplete", "numberRecordsProcessed": 0}], [(b"", "null", 0)])
    caplog.set_level(logging.INFO)
    assert list(org.hook(monkeypatch).bulk_query("SELECT Id FROM Opportunity")) == []
    logs = "\n".join([caplog.text, *capfd.readouterr()])  # Airflow's structlog writes to the console
    assert "0 records in 1 page(s), 3 API calls" in logs and SECRET not in logs


@pytest.mark.parametrize(("extra", "threshold"), [({}, 50_000), ({"bulk_threshold": 0}, 0),
                                                  ({"bulk_threshold": "1200"}, 1200)])
def test_bulk_threshold_is_read_from_the_connection(monkeypatch, extra, threshold):
    assert FakeBulkOrg([], []).hook(monkeypatch, **extra).bulk_threshold == threshold


@pytest.mark.parametrize("extra", [{"bulk_threshold": -1}, {"bulk_timeout": -5}, {"bulk_threshold": "many"}])
def test_bad_bulk_settings_are_refused(monkeypatch, extra):
    with pytest.raises(AptoConfigurationError, match="bulk|bad number"):
        _ = FakeBulkOrg([], []).hook(monkeypatch, **extra).bulk_threshold
