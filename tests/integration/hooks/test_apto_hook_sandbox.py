"""AptoHook and SoqlStream over real HTTP against the Apto sandbox (Salesforce REST shape)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_migration.hooks.apto import (
    AptoApiError,
    AptoApiLimitError,
    AptoAuthError,
    AptoHook,
    AptoUnavailableError,
    parse_sf_datetime,
    soql_in,
    soql_quote,
)
from crm_migration.streams import SoqlStream

sandbox = pytest.importorskip("crm_sandbox.apto.server", reason="Apto sandbox not available")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    srv = sandbox.serve(port=0, scale=5, seed=7)  # scale 5: 250 accounts, several pages of 200
    yield srv
    srv.stop()


@pytest.fixture
def info(server):
    return server.state.info(server.url)


def admin(server, method: str, what: str, body: dict | None = None) -> dict:
    resp = httpx.request(method, f"{server.url}/sandbox/{what}", json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


@pytest.fixture
def conn(server, info, monkeypatch):
    """Wire ``apto_default`` to the sandbox; return a setter for other flows."""
    creds = info["credentials"]

    def set_conn(**extra: object) -> dict:
        extra.setdefault("auth", "client_credentials")
        login, password = creds["client_id"], creds["client_secret"]
        monkeypatch.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps({
            "conn_type": "apto", "host": server.url, "login": login, "password": password, "extra": extra}))
        return creds

    set_conn()
    yield set_conn
    admin(server, "DELETE", "faults")
    admin(server, "POST", "api-usage", {"used": 0, "limit": 100_000})


def make_hook() -> AptoHook:
    hook = AptoHook()
    hook.sleep = lambda s: None  # the sandbox asks Retry-After: 1; don't spend it
    return hook


def test_client_credentials_password_and_jwt_flows(conn, server, info):
    creds = conn()
    assert make_hook().count("SELECT Id FROM User") == info["counts"]["User"]
    conn(auth="password", username=creds["username"], password=creds["password"],
         security_token=creds["security_token"])
    assert make_hook().test_connection()[0]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    conn(auth="jwt", username=creds["username"], private_key=pem)
    hook = make_hook()
    assert hook.describe("Account")["name"] == "Account"
    assert hook.instance_url == server.url
    conn(auth="password", username=creds["username"], password="wrong", security_token="")
    ok, message = make_hook().test_connection()
    assert not ok and "invalid_grant" in message and "wrong" not in message


def test_namespace_is_discovered(conn, info):
    hook = make_hook()
    assert hook.namespace == info["namespace"] == "McLabs2"


def test_query_all_accounts_across_pages(conn, server):
    before = server.state.get_stats()
    hook = make_hook()
    ids = [r["Id"] for r in hook.query("SELECT Id, Name FROM Account ORDER BY Id", batch_size=200)]
    assert len(ids) == len(set(ids)) == hook.count("SELECT Id FROM Account") > 200
    after = server.state.get_stats()
    assert json.dumps(after) != json.dumps(before)  # the sandbox counted the calls
    deleted = {r["Id"] for r in hook.query("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true",
                                           include_deleted=True)}
    assert deleted and not deleted & set(ids)
    assert hook.count("SELECT Id FROM Account", include_deleted=True) == len(ids) + len(deleted)


def test_describe_custom_fields_and_stage_picklists(conn, info):
    hook = make_hook()
    custom = hook.custom_fields("Opportunity")
    assert custom and all(f["name"].endswith("__c") for f in custom)
    assert {"name", "type", "label", "length", "precision", "scale", "picklistValues", "referenceTo"} <= set(custom[0])
    assert any(f["name"].startswith("McLabs2__") for f in custom)
    for rt_id, stages in info["pipelines"].items():
        assert [v["value"] for v in hook.stage_picklist(rt_id)] == stages


def test_blob_downloads_match_their_sizes(conn, info):
    hook = make_hook()
    doc_ids = [info["hard_cases"]["file_non_ascii"], info["hard_cases"]["file_empty"]]
    versions = list(hook.query("SELECT Id, ContentSize, Title FROM ContentVersion WHERE ContentDocumentId IN "
                               f"{soql_in(doc_ids)} AND IsLatest = true"))
    assert len(versions) == 2
    sizes = sorted(len(hook.download(f"ContentVersion/{v['Id']}/VersionData")) for v in versions)
    assert sizes == sorted(v["ContentSize"] for v in versions) and sizes[0] == 0
    att = info["hard_cases"]["attachment_non_ascii"]
    (row,) = hook.query(f"SELECT Id, BodyLength FROM Attachment WHERE Id = {soql_quote(att)}")
    assert sum(len(c) for c in hook.stream_download(f"Attachment/{att}/Body", chunk_size=64)) == row["BodyLength"]


def test_a_download_cut_half_way_is_downloaded_again_whole(conn, server, info):
    hook = make_hook()
    att = info["hard_cases"]["attachment_non_ascii"]
    (row,) = hook.query(f"SELECT Id, BodyLength FROM Attachment WHERE Id = {soql_quote(att)}")
    whole = hook.download(f"Attachment/{att}/Body")
    assert len(whole) == row["BodyLength"] > 1
    admin(server, "POST", "faults", {"kind": "cut", "count": 2, "match": f"/Attachment/{att}/Body"})
    assert hook.download(f"Attachment/{att}/Body") == whole          # third attempt: whole, and only once
    buf = io.BytesIO(b"kept")
    buf.seek(4)
    admin(server, "POST", "faults", {"kind": "cut", "count": 1, "match": f"/Attachment/{att}/Body"})
    got = hook.download_to(f"Attachment/{att}/Body", buf)
    assert buf.getvalue() == b"kept" + whole and got.size == len(whole)
    admin(server, "POST", "faults", {"kind": "cut", "count": 5, "match": f"/Attachment/{att}/Body"})
    with pytest.raises(AptoUnavailableError, match="download cut after"):
        hook.download(f"Attachment/{att}/Body")


def test_quoted_names_round_trip_through_the_soql_parser(conn, info):
    hook = make_hook()
    for account_id in info["hard_cases"]["account_quotes"] + info["hard_cases"]["account_non_ascii"]:
        (row,) = hook.query(f"SELECT Name FROM Account WHERE Id = {soql_quote(account_id)}")
        found = [r["Id"] for r in hook.query(f"SELECT Id FROM Account WHERE Name = {soql_quote(row['Name'])}")]
        assert account_id in found, row["Name"]


def test_salesforce_errors_are_parsed(conn):
    hook = make_hook()
    with pytest.raises(AptoApiError) as err:
        list(hook.query("SELECT Bogus__c FROM Account"))
    assert err.value.error_code == "INVALID_FIELD" and err.value.status == 400
    with pytest.raises(AptoApiError) as err:
        list(hook.query("SELEKT Id FROM Account"))
    assert err.value.error_code == "MALFORMED_QUERY"
    missing = SoqlStream(source_object="Account", fields=("Name", "<ns>__Nope__c")).missing_fields(hook)
    assert missing == ["McLabs2__Nope__c"]


def test_delta_window_sees_updates_and_deletions(conn, server):
    hook = make_hook()
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(minutes=10)
    t1 = now - timedelta(minutes=5)
    (a, b) = [r["Id"] for r in hook.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")]
    admin(server, "POST", "mutate", {"updates": {"Account": [{"Id": a, "Phone": "+1 555 0100"}]},
                                     "timestamp": (t0 + timedelta(minutes=1)).isoformat()})
    admin(server, "POST", "mutate", {"updates": {"Account": [{"Id": b, "Phone": "+1 555 0101"}]},
                                     "timestamp": t1.isoformat()})  # at the window's end: next window
    stream = SoqlStream(source_object="Account", fields=("Id", "Phone"))
    rows = list(stream.records(hook, t0, t1))
    assert [r["Id"] for r in rows] == [a] and rows[0]["Phone"] == "+1 555 0100"
    assert t0 <= parse_sf_datetime(rows[0]["SystemModstamp"]) < t1
    assert stream.count(hook, t0, t1) == 1
    assert [r["Id"] for r in stream.records(hook, t1, now + timedelta(seconds=1))] == [b]
    assert a in hook.get_updated("Account", t0, t1)["ids"]
    admin(server, "POST", "mutate", {"deletes": {"Account": [a]}, "timestamp": (t1 + timedelta(minutes=1)).isoformat()})
    gone = SoqlStream(source_object="Account", fields=("Id", "IsDeleted"), include_deleted=True)
    seen = {r["Id"]: r["IsDeleted"] for r in gone.records(hook, t1, now + timedelta(minutes=2))}
    assert seen == {a: True, b: False}
    assert a not in {r["Id"] for r in stream.records(hook, t1, now + timedelta(minutes=2))}
    assert a in [d["id"] for d in hook.get_deleted("Account", t1, now + timedelta(minutes=1))["deletedRecords"]]


def test_faults_retry_reauth_and_limits(conn, server):
    hook = make_hook()
    hook.describe_global()
    admin(server, "POST", "faults", {"kind": "status", "status": 503, "count": 2, "match": "/query"})
    assert hook.count("SELECT Id FROM User") > 0
    admin(server, "POST", "faults", {"kind": "drop", "count": 1, "match": "/query"})
    assert hook.count("SELECT Id FROM User") > 0
    admin(server, "POST", "expire-tokens")
    assert hook.count("SELECT Id FROM User") > 0  # re-authenticated once
    admin(server, "POST", "faults", {"kind": "invalid_session", "count": 2, "match": "/query"})
    with pytest.raises(AptoAuthError, match="re-authenticating"):
        hook.count("SELECT Id FROM User")
    admin(server, "POST", "faults", {"kind": "limit_exceeded", "count": 1, "match": "/query"})
    with pytest.raises(AptoApiLimitError, match="REQUEST_LIMIT_EXCEEDED"):
        hook.count("SELECT Id FROM User")
    admin(server, "POST", "api-usage", {"used": 85_000, "limit": 100_000})
    hook.count("SELECT Id FROM User")  # this answer carries the usage
    with pytest.raises(AptoApiLimitError, match="API_SHARE_REACHED"):
        hook.count("SELECT Id FROM User")


def test_content_document_links_by_parent_ids(conn, info):
    hook = make_hook()
    links = SoqlStream(source_object="ContentDocumentLink", fields=("LinkedEntityId", "ContentDocumentId"),
                       parent_filter="LinkedEntityId", parent_chunk_size=200)
    parents = [r["Id"] for r in hook.query("SELECT Id FROM Account")]
    parents += [r["Id"] for r in hook.query("SELECT Id FROM Opportunity")]
    assert len(parents) > 200  # two chunks at least
    end = datetime.now(UTC).replace(microsecond=0)
    rows = list(links.records(hook, None, end, parent_ids=parents))
    assert rows and {r["LinkedEntityId"] for r in rows} <= set(parents)
    assert links.count(hook, None, end, parent_ids=parents) == len(rows)
    with pytest.raises(AptoApiError):  # Salesforce refuses an unfiltered ContentDocumentLink query
        list(hook.query("SELECT Id FROM ContentDocumentLink"))


def test_a_missing_file_is_missing_at_once_other_errors_stay_errors(conn, server, info):
    """AptoSource.blob: 404/410 is MissingFile on the first answer (never retried, never raised); 5xx is
    retried, a refused session is an auth error; an empty file is b"", not missing."""
    from crm_migration.mapping.spec import load_pair
    from crm_migration.streams import MissingFile
    from crm_migration.streams.apto_source import AptoSource

    hook = make_hook()
    source = AptoSource(hook)
    spec = load_pair("apto_to_odoo").with_namespace("McLabs2")
    att, files = spec.object("Attachment"), spec.object("ContentVersion")
    hard, org = info["hard_cases"], server.state
    missing = {"Id": hard["attachment_missing"]}
    org.reset_stats()
    got = source.blob(att, missing)
    assert got == MissingFile(404, f"/services/data/v60.0/sobjects/Attachment/{missing['Id']}/Body")
    assert got.reason == "file missing in the source (HTTP 404)"
    assert org.get_stats()["calls"].get("blob") == 1                 # asked once: a 404 is not retried
    other = {"Id": hard["attachment_non_ascii"]}
    whole = source.blob(att, other)
    assert isinstance(whole, bytes) and len(whole) == 900
    admin(server, "POST", "faults", {"kind": "status", "status": 410, "count": 1, "match": f"/Attachment/{other['Id']}/"})
    assert source.blob(att, other) == MissingFile(410, f"/services/data/v60.0/sobjects/Attachment/{other['Id']}/Body")
    admin(server, "POST", "faults", {"kind": "status", "status": 500, "count": 2, "match": f"/Attachment/{other['Id']}/"})
    assert source.blob(att, other) == whole                          # 5xx: retried, then the bytes
    admin(server, "POST", "faults", {"kind": "status", "status": 500, "count": hook.max_attempts,
                                     "match": f"/Attachment/{other['Id']}/"})
    with pytest.raises(AptoApiError) as err:
        source.blob(att, other)
    assert err.value.status == 500
    admin(server, "POST", "faults", {"kind": "invalid_session", "count": 2, "match": f"/Attachment/{other['Id']}/"})
    with pytest.raises(AptoAuthError):
        source.blob(att, other)
    admin(server, "DELETE", "faults")
    (empty,) = hook.query("SELECT LatestPublishedVersionId FROM ContentDocument WHERE Id = "
                          f"{soql_quote(hard['file_empty'])}")
    assert source.blob(files, {"ContentDocument": empty}) == b""
