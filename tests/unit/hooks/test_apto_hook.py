"""AptoHook against a fake Salesforce org (httpx.MockTransport): what is sent, what comes back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_migration.errors import ConfigurationError, CrmMigrationError
from crm_migration.hooks.apto import (
    AptoApiError,
    AptoApiLimitError,
    AptoAuthError,
    AptoConfigurationError,
    AptoHook,
    AptoPaginationError,
    AptoUnavailableError,
    chunked,
    count_soql,
    is_sf_id,
    parse_limit_info,
    parse_sf_datetime,
    soql_datetime,
    soql_in,
    soql_in_chunks,
    soql_like,
    soql_literal,
    soql_object,
    soql_quote,
    to_18,
)

LOGIN = "https://login.example.test"
INSTANCE = "https://org7.my.example.test"
API = "/services/data/v60.0"
CLIENT_SECRET = "csecret-4f9a1b2c3d"
USER_PASSWORD = "pw-Hunter2-zz"
SEC_TOKEN = "tok-ABCDEF123456"
ACCESS = "00Dxx0000001gPL!AR8AQaccess-token-value"


def set_conn(monkeypatch: pytest.MonkeyPatch, *, login: str = "client-id-123", password: str | None = CLIENT_SECRET,
             user_password: str | None = None, **extra: object) -> None:
    extra.setdefault("auth", "client_credentials")
    if user_password is not None:
        extra["password"] = user_password  # the user's password when login/password are the client's
    conn = {"conn_type": "apto", "host": LOGIN, "login": login, "password": password, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps(conn))


class FakeOrg:
    """A tiny Salesforce: a token endpoint plus routes ``(method, path) -> handler``; records requests."""

    def __init__(self, *, limit_info: str | None = "api-usage=10/1000") -> None:
        self.sent: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.tokens = 0
        self.limit_info = limit_info
        self.token_reply: Callable[[httpx.Request], httpx.Response] | None = None

    def route(self, path: str, handler: Callable[[httpx.Request], httpx.Response] | dict | list,
              method: str = "GET") -> None:
        if not callable(handler):
            body = handler
            handler = lambda r: httpx.Response(200, json=body)  # noqa: E731
        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.path == "/services/oauth2/token":
            assert str(request.url).startswith(LOGIN)
            self.tokens += 1
            if self.token_reply:
                return self.token_reply(request)
            return httpx.Response(200, json={"access_token": f"{ACCESS}{self.tokens}", "instance_url": INSTANCE,
                                             "token_type": "Bearer"})
        assert str(request.url).startswith(INSTANCE), request.url
        assert request.headers["Authorization"].startswith(f"Bearer {ACCESS}")
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, json=[{"message": "The requested resource does not exist",
                                              "errorCode": "NOT_FOUND"}])
        resp = handler(request)
        if self.limit_info and "Sforce-Limit-Info" not in resp.headers:
            resp.headers["Sforce-Limit-Info"] = self.limit_info
        return resp

    def api(self) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.path != "/services/oauth2/token"]

    def hook(self, **kwargs: object) -> AptoHook:
        hook = AptoHook(transport=httpx.MockTransport(self), **kwargs)
        hook.sleep = lambda s: None
        return hook


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def page(records: list[dict], *, done: bool = True, next_url: str | None = None, total: int | None = None) -> dict:
    body = {"totalSize": total if total is not None else len(records), "done": done,
            "records": [{"attributes": {"type": "Account", "url": f"{API}/sobjects/Account/{r['Id']}"}, **r}
                        for r in records]}
    if next_url:
        body["nextRecordsUrl"] = next_url
    return body


# ---- OAuth flows ----------------------------------------------------------------------------------------


def test_client_credentials_form_and_instance_url(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/sobjects", {"sobjects": []})
    hook = org.hook()
    assert hook.describe_global() == {"sobjects": []}
    token = org.sent[0]
    assert token.method == "POST" and str(token.url) == f"{LOGIN}/services/oauth2/token"
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(token) == {"grant_type": "client_credentials", "client_id": "client-id-123",
                           "client_secret": CLIENT_SECRET}
    assert str(org.sent[1].url) == f"{INSTANCE}{API}/sobjects"
    assert org.sent[1].headers["Authorization"] == f"Bearer {ACCESS}1"


def test_password_flow_appends_security_token(monkeypatch):
    set_conn(monkeypatch, login="client-id-123", password=CLIENT_SECRET, auth="password",
             username="broker@example.com", user_password=USER_PASSWORD, security_token=SEC_TOKEN)
    org = FakeOrg()
    org.hook().authenticate()
    assert form(org.sent[0]) == {"grant_type": "password", "client_id": "client-id-123",
                                 "client_secret": CLIENT_SECRET, "username": "broker@example.com",
                                 "password": USER_PASSWORD + SEC_TOKEN}


def test_password_flow_with_user_in_login(monkeypatch):
    set_conn(monkeypatch, login="broker@example.com", password=USER_PASSWORD, auth="password",
             client_id="cid-9", client_secret=CLIENT_SECRET, security_token=SEC_TOKEN)
    org = FakeOrg()
    org.hook().authenticate()
    sent = form(org.sent[0])
    assert (sent["username"], sent["password"], sent["client_id"]) == (
        "broker@example.com", USER_PASSWORD + SEC_TOKEN, "cid-9")


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, public


def test_jwt_assertion_is_signed_with_the_right_claims(monkeypatch, rsa_pair):
    pem, public = rsa_pair
    set_conn(monkeypatch, password=None, auth="jwt", username="integration@example.com", private_key=pem)
    org = FakeOrg()
    org.hook().authenticate()
    sent = form(org.sent[0])
    assert sent["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert set(sent) == {"grant_type", "assertion"}
    claims = jwt.decode(sent["assertion"], public, algorithms=["RS256"], audience=LOGIN)
    assert claims["iss"] == "client-id-123"
    assert claims["sub"] == "integration@example.com"
    assert claims["aud"] == LOGIN
    assert 0 < claims["exp"] - datetime.now(UTC).timestamp() <= 300
    assert jwt.get_unverified_header(sent["assertion"])["alg"] == "RS256"


def test_jwt_bad_key_is_a_configuration_error_without_the_key(monkeypatch):
    bad = "-----BEGIN PRIVATE KEY-----\nnot-a-key-material-XYZ\n-----END PRIVATE KEY-----"
    set_conn(monkeypatch, auth="jwt", username="u@example.com", private_key=bad)
    with pytest.raises(AptoConfigurationError) as err:
        FakeOrg().hook().authenticate()
    assert "not-a-key-material" not in str(err.value)
    assert isinstance(err.value, ConfigurationError)


@pytest.mark.parametrize(("extra", "password", "words"), [
    ({"auth": "magic"}, CLIENT_SECRET, "extra.auth"),
    ({"auth": "client_credentials"}, None, "client secret"),
    ({"auth": "jwt", "username": "u@example.com"}, None, "private_key"),
    ({"auth": "client_credentials", "max_api_share": 1.5}, CLIENT_SECRET, "max_api_share"),
])
def test_configuration_errors(monkeypatch, extra, password, words):
    set_conn(monkeypatch, password=password, **extra)
    with pytest.raises(AptoConfigurationError, match=words):
        FakeOrg().hook().authenticate()


def test_token_refused_is_an_auth_error(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.token_reply = lambda r: httpx.Response(400, json={"error": "invalid_client",
                                                          "error_description": "invalid client credentials"})
    with pytest.raises(AptoAuthError, match="invalid_client: invalid client credentials") as err:
        org.hook().authenticate()
    assert CLIENT_SECRET not in str(err.value)


# ---- session: re-authenticate once -----------------------------------------------------------------------

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_reauthenticates_once_on_invalid_session(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    replies = iter([httpx.Response(401, json=INVALID_SESSION), httpx.Response(200, json={"sobjects": ["ok"]})])
    org.route(f"{API}/sobjects", lambda r: next(replies))
    assert org.hook().describe_global() == {"sobjects": ["ok"]}
    assert org.tokens == 2
    assert org.api()[-1].headers["Authorization"] == f"Bearer {ACCESS}2"


def test_invalid_session_twice_fails_clearly(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/sobjects", lambda r: httpx.Response(401, json=INVALID_SESSION))
    with pytest.raises(AptoAuthError, match="re-authenticating"):
        org.hook().describe_global()
    assert org.tokens == 2 and len(org.api()) == 2


def test_threads_downloading_at_once_share_one_session_and_renew_it_once(monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    set_conn(monkeypatch)
    org = FakeOrg()
    expired = threading.Barrier(8, timeout=10)     # all eight are sent with the first session before any answer

    def body(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == f"Bearer {ACCESS}1":
            expired.wait()
            return httpx.Response(401, json=INVALID_SESSION)
        return httpx.Response(200, content=request.url.path.encode())

    for n in range(8):
        org.route(f"{API}/sobjects/ContentVersion/068{n}/VersionData", body)
    hook = org.hook()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda n: hook.download(f"ContentVersion/068{n}/VersionData"), range(8)))
    assert got == [f"{API}/sobjects/ContentVersion/068{n}/VersionData".encode() for n in range(8)]
    assert org.tokens == 2              # one session for the eight threads, renewed once when it was refused


# ---- queries ------------------------------------------------------------------------------------------------


def test_paging_follows_next_records_url_and_yields_each_record_once(monkeypatch):
    set_conn(monkeypatch, batch_size=200)
    org = FakeOrg()
    org.route(f"{API}/query", page([{"Id": "a1"}, {"Id": "a2"}], done=False, next_url=f"{API}/query/01gX-2", total=5))
    org.route(f"{API}/query/01gX-2", page([{"Id": "a3"}, {"Id": "a4"}], done=False, next_url=f"{API}/query/01gX-4",
                                          total=5))
    org.route(f"{API}/query/01gX-4", page([{"Id": "a5", "Owner": {"attributes": {"type": "User"}, "Name": "Ann"}}],
                                          total=5))
    hook = org.hook()
    it = hook.query("SELECT Id, Owner.Name FROM Account")
    assert org.api() == []  # lazy: nothing sent before the first record is asked for
    first = next(it)
    assert first == {"Id": "a1"} and len(org.api()) == 1  # memory flat: one page at a time
    rest = list(it)
    assert [r["Id"] for r in [first, *rest]] == ["a1", "a2", "a3", "a4", "a5"]
    assert rest[-1]["Owner"] == {"Name": "Ann"}  # nested attributes stripped too
    assert [r.url.path for r in org.api()] == [f"{API}/query", f"{API}/query/01gX-2", f"{API}/query/01gX-4"]
    assert org.api()[0].url.params["q"] == "SELECT Id, Owner.Name FROM Account"
    assert all(r.headers["Sforce-Query-Options"] == "batchSize=200" for r in org.api())


def test_paging_loop_guard(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/query", page([{"Id": "a1"}], done=False, next_url=f"{API}/query/01gX-1"))
    org.route(f"{API}/query/01gX-1", page([{"Id": "a2"}], done=False, next_url=f"{API}/query/01gX-1"))
    with pytest.raises(AptoPaginationError, match="Account: nextRecordsUrl repeated"):
        list(org.hook().query("SELECT Id FROM Account"))


def test_query_all_for_deleted_rows_and_count(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/queryAll", page([{"Id": "a1", "IsDeleted": True}]))
    org.route(f"{API}/query", {"totalSize": 42, "done": True, "records": []})
    hook = org.hook()
    assert list(hook.query("SELECT Id, IsDeleted FROM Account", include_deleted=True)) == [
        {"Id": "a1", "IsDeleted": True}]
    assert hook.count("SELECT Id, Name FROM Account WHERE Name != null ORDER BY Id") == 42
    assert org.api()[-1].url.params["q"] == "SELECT COUNT() FROM Account WHERE Name != null"


def test_count_soql_and_object_skip_quotes_and_subqueries():
    soql = "SELECT Id, (SELECT Id FROM Contacts ORDER BY Id) FROM Account WHERE Name = 'x FROM y ORDER BY z' " \
           "ORDER BY Name LIMIT 10"
    assert count_soql(soql) == "SELECT COUNT() FROM Account WHERE Name = 'x FROM y ORDER BY z' LIMIT 10"
    assert soql_object(soql) == "Account"
    assert soql_object("select id from McLabs2__Property__c") == "McLabs2__Property__c"


# ---- limits, retries, errors --------------------------------------------------------------------------------


def test_stops_once_api_share_is_reached(monkeypatch):
    set_conn(monkeypatch)  # default share 0.8
    org = FakeOrg(limit_info=None)
    org.route(f"{API}/query", lambda r: httpx.Response(
        200, json=page([{"Id": "a1"}], done=False, next_url=f"{API}/query/01gX-1"),
        headers={"Sforce-Limit-Info": "api-usage=800/1000"}))
    org.route(f"{API}/query/01gX-1", page([{"Id": "a2"}]))
    it = org.hook().query("SELECT Id FROM Account")
    assert next(it)["Id"] == "a1"
    with pytest.raises(AptoApiLimitError, match="800/1000") as err:
        next(it)
    assert (err.value.used, err.value.limit) == (800, 1000)
    assert len(org.api()) == 1  # the next page was never asked for


def test_api_share_is_configurable(monkeypatch):
    set_conn(monkeypatch, max_api_share=0.95)
    org = FakeOrg(limit_info="api-usage=900/1000")
    org.route(f"{API}/query", page([{"Id": "a1"}], done=False, next_url=f"{API}/query/01gX-1"))
    org.route(f"{API}/query/01gX-1", page([{"Id": "a2"}]))
    hook = org.hook()
    assert len(list(hook.query("SELECT Id FROM Account"))) == 2
    assert hook.api_usage == (900, 1000)


def test_request_limit_exceeded_is_not_retried(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/query", lambda r: httpx.Response(
        403, json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
    with pytest.raises(AptoApiLimitError, match="REQUEST_LIMIT_EXCEEDED") as err:
        list(org.hook().query("SELECT Id FROM Account"))
    assert err.value.status == 403 and len(org.api()) == 1


def test_503_is_retried_with_retry_after(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    replies = iter([httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(502),
                    httpx.Response(200, json=page([{"Id": "a1"}]))])
    org.route(f"{API}/query", lambda r: next(replies))
    hook = org.hook()
    waits: list[float] = []
    hook.sleep = waits.append
    assert [r["Id"] for r in hook.query("SELECT Id FROM Account")] == ["a1"]
    assert len(org.api()) == 3
    assert waits[0] == 7.0 and 0 < waits[1] <= 30


def test_persistent_503_gives_up_with_an_api_error(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/query", lambda r: httpx.Response(503, text="Service Unavailable"))
    with pytest.raises(AptoApiError) as err:
        list(org.hook(max_attempts=3).query("SELECT Id FROM Account"))
    assert err.value.status == 503 and len(org.api()) == 3


def test_dropped_connections_are_retried_then_reported(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    org.route(f"{API}/sobjects", drop)
    with pytest.raises(AptoUnavailableError, match="gave up after 3 attempts: RemoteProtocolError"):
        org.hook(max_attempts=3).describe_global()
    assert len(org.api()) == 3


def test_other_4xx_not_retried(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/query", lambda r: httpx.Response(400, json=[
        {"message": "\nSELECT Bogus__c FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Bogus__c'",
         "errorCode": "INVALID_FIELD"}]))
    with pytest.raises(AptoApiError) as err:
        list(org.hook().query("SELECT Bogus__c FROM Account"))
    exc = err.value
    assert (exc.status, exc.error_code) == (400, "INVALID_FIELD")
    assert "No such column 'Bogus__c'" in exc.message and f"GET {API}/query" in str(exc)
    assert exc.errors[0]["errorCode"] == "INVALID_FIELD"
    assert isinstance(exc, CrmMigrationError) and len(org.api()) == 1


def test_not_found_error_code(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    with pytest.raises(AptoApiError) as err:
        org.hook().describe("Nope__c")
    assert (err.value.status, err.value.error_code) == (404, "NOT_FOUND")


def test_no_secret_in_logs_errors_or_repr(monkeypatch, caplog, capfd, rsa_pair):
    pem, _ = rsa_pair
    set_conn(monkeypatch, auth="password", username="broker@example.com", security_token=SEC_TOKEN,
             user_password=USER_PASSWORD)
    org = FakeOrg()
    sessions = iter([httpx.Response(401, json=INVALID_SESSION)])
    org.route(f"{API}/sobjects", lambda r: next(sessions, None) or httpx.Response(
        400, json=[{"message": f"echo {ACCESS}2 {USER_PASSWORD}", "errorCode": "MALFORMED_QUERY"}]))
    hook = org.hook()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AptoApiError) as err:
        hook.describe_global()
    org.token_reply = lambda r: httpx.Response(400, json={"error": "invalid_grant",
                                                          "error_description": f"bad {USER_PASSWORD}"})
    with pytest.raises(AptoAuthError) as auth_err:
        hook.authenticate()
    out, errout = capfd.readouterr()  # Airflow's structlog writes to the console; stdlib goes to caplog
    logs = "\n".join([caplog.text, out, errout])
    texts = [logs, str(err.value), repr(err.value), str(auth_err.value), repr(hook), repr(hook.settings)]
    assert "re-authenticating once" in logs  # the log did record the flow
    for secret in (CLIENT_SECRET, USER_PASSWORD, SEC_TOKEN, ACCESS, pem[40:80]):
        assert not any(secret in text for text in texts), secret


# ---- metadata, namespace, blobs, deltas ------------------------------------------------------------------------

DESCRIBE = {"name": "Opportunity", "fields": [
    {"name": "Id", "type": "id", "custom": False, "label": "Opportunity ID"},
    {"name": "McLabs2__Priority__c", "type": "picklist", "custom": True, "label": "Priority", "length": 255,
     "precision": 0, "scale": 0, "picklistValues": [{"value": "High", "active": True}], "referenceTo": [],
     "nillable": True},
]}


def test_describe_is_cached_and_custom_fields_are_shaped(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    org.route(f"{API}/sobjects/Opportunity/describe", DESCRIBE)
    hook = org.hook()
    assert hook.custom_fields("Opportunity") == [{
        "name": "McLabs2__Priority__c", "type": "picklist", "label": "Priority", "length": 255, "precision": 0,
        "scale": 0, "picklistValues": [{"value": "High", "active": True}], "referenceTo": []}]
    hook.describe("Opportunity")
    assert len(org.api()) == 1
    with pytest.raises(ValueError):
        hook.describe("Account/../../x")


def test_stage_picklist_tooling_and_deltas(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    rt = "012000000000001AAA"
    org.route(f"{API}/ui-api/object-info/Opportunity/picklist-values/{rt}/StageName", {
        "controllerValues": {}, "defaultValue": None,
        "values": [{"attributes": None, "label": "Prospecting", "validFor": [], "value": "Prospecting"}]})
    org.route(f"{API}/tooling/query", page([{"Id": "01Q1", "Name": "Rule"}]))
    org.route(f"{API}/sobjects/Account/deleted/", {"deletedRecords": [{"id": "001x", "deletedDate": "d"}],
                                                   "earliestDateAvailable": "e", "latestDateCovered": "l"})
    org.route(f"{API}/sobjects/Account/updated/", {"ids": ["001y"], "latestDateCovered": "l"})
    hook = org.hook()
    assert hook.stage_picklist(rt) == [{"label": "Prospecting", "validFor": [], "value": "Prospecting"}]
    assert list(hook.tooling_query("SELECT Id, Name FROM ValidationRule")) == [{"Id": "01Q1", "Name": "Rule"}]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    end = start + timedelta(hours=1)
    assert hook.get_deleted("Account", start, end)["deletedRecords"][0]["id"] == "001x"
    assert hook.get_updated("Account", start, end)["ids"] == ["001y"]
    sent = org.api()[-1].url.params
    assert sent["start"] == start.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert sent["end"] == end.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    with pytest.raises(ValueError):
        hook.stage_picklist("not-an-id")


def ns_org(licenses: list[str] | None, sobjects: list[str]) -> FakeOrg:
    org = FakeOrg()
    if licenses is None:
        org.route(f"{API}/query", lambda r: httpx.Response(400, json=[
            {"message": "sObject type 'PackageLicense' is not supported.", "errorCode": "INVALID_TYPE"}]))
    else:
        org.route(f"{API}/query", page([{"Id": f"050{i}", "NamespacePrefix": n} for i, n in enumerate(licenses)]))
    org.route(f"{API}/sobjects", {"sobjects": [{"name": n} for n in sobjects]})
    return org


@pytest.mark.parametrize(("licenses", "sobjects", "expected"), [
    (["McLabs2"], ["Account"], "McLabs2"),
    (["Other", "McLabs2", None], ["Account", "McLabs2__Property__c", "McLabs2__Comp__c", "Other__Log__c"], "McLabs2"),
    ([], ["Account", "McLabs2__Property__c", "McLabs2__Comp__c", "Custom__c"], "McLabs2"),
    (None, ["Account", "McLabs2__Listing__c"], "McLabs2"),
    ([], ["Account", "Custom__c"], ""),
])
def test_namespace_discovery(monkeypatch, licenses, sobjects, expected):
    set_conn(monkeypatch)
    org = ns_org(licenses, sobjects)
    hook = org.hook()
    assert hook.namespace == expected
    assert org.api()[0].url.params["q"] == "SELECT NamespacePrefix FROM PackageLicense"
    assert hook.namespaced("<ns>__Priority__c") == (f"{expected}__Priority__c" if expected else "Priority__c")


def test_namespace_override_sends_nothing(monkeypatch):
    set_conn(monkeypatch, namespace="Acme")
    org = ns_org(["McLabs2"], [])
    assert org.hook().namespace == "Acme"
    assert org.sent == []


def test_stream_download_is_chunked_and_stays_on_the_instance(monkeypatch):
    set_conn(monkeypatch)
    org = FakeOrg()
    blob = bytes(range(256)) * 1000
    org.route(f"{API}/sobjects/ContentVersion/068000000000001AAA/VersionData",
              lambda r: httpx.Response(200, content=blob, headers={"Content-Type": "application/octet-stream"}))
    org.route(f"{API}/sobjects/Attachment/00P000000000001AAA/Body", lambda r: httpx.Response(200, content=b"hi"))
    hook = org.hook()
    chunks = list(hook.stream_download("ContentVersion/068000000000001AAA/VersionData", chunk_size=4096))
    assert b"".join(chunks) == blob and max(len(c) for c in chunks) <= 4096
    assert hook.download("/sobjects/Attachment/00P000000000001AAA/Body") == b"hi"
    out = io.BytesIO()
    result = hook.download_to("ContentVersion/068000000000001AAA/VersionData", out)
    assert result.size == len(blob) and out.getvalue() == blob and len(result.sha256) == 64
    with pytest.raises(ValueError, match="another host"):
        hook.download("https://evil.example.test/services/data/v60.0/sobjects/Attachment/x/Body")


# ---- SOQL literals and ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", "'plain'"),
    ("Bob's BBQ", r"'Bob\'s BBQ'"),
    ('say "hi"', r"""'say \"hi\"'"""),
    ("C:\\path\\x", r"'C:\\path\\x'"),
    ("\\'", r"'\\\''"),
    ("a\nb\rc\td", r"'a\nb\rc\td'"),
    ("bell\bform\f", r"'bell\bform\f'"),
    ("nul\x00esc\x1b", r"'nul\u0000esc\u001b'"),
    ("Zürich – 東京 😀", "'Zürich – 東京 😀'"),
    ("50% off_sale", "'50% off_sale'"),
    ("", "''"),
    ("' OR Name != '", r"'\' OR Name != \''"),
])
def test_soql_quote(value, expected):
    assert soql_quote(value) == expected


def test_soql_like_and_literals():
    assert soql_like("50%_x'") == r"'50\%\_x\''"
    assert [soql_literal(v) for v in (None, True, 3, 2.5, "x")] == ["null", "true", "3", "2.5", "'x'"]
    assert soql_literal(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).date()) == "2024-01-02"
    with pytest.raises(TypeError):
        soql_quote(5)  # type: ignore[arg-type]


def test_soql_datetime():
    assert soql_datetime(datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    paris = timezone(timedelta(hours=2))
    assert soql_datetime(datetime(2024, 6, 1, 2, 0, tzinfo=paris)) == "2024-06-01T00:00:00Z"
    with pytest.raises(ValueError, match="naive"):
        soql_datetime(datetime(2024, 1, 1))
    assert parse_sf_datetime("2024-01-02T03:04:05.000+0000") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_sf_datetime("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_soql_in_and_chunks():
    assert soql_in(["a'b", "c"]) == r"('a\'b', 'c')"
    with pytest.raises(ValueError):
        soql_in([])
    ids = [f"001{i:012d}" for i in range(450)]
    assert [len(c) for c in chunked(ids)] == [200, 200, 50]
    assert len(list(soql_in_chunks(ids, 100))) == 5


@pytest.mark.parametrize(("id15", "id18"), [
    ("001000000000001", "001000000000001AAA"),
    ("0013k00002crTPa", "0013k00002crTPaAAM"),  # Apex's own Id conversion
    ("001A000010khO8J", "001A000010khO8JIAU"),
])
def test_to_18(id15, id18):
    assert to_18(id15) == id18
    assert to_18(id18) == id18
    assert is_sf_id(id15) and is_sf_id(id18)
    assert not is_sf_id(id18[:-1] + ("A" if id18[-1] != "A" else "B"))


def test_bad_ids():
    for bad in ("", "001", "001000000000001AA", "001000000000001AAB", "00100000000000!", None):
        assert not is_sf_id(bad)
    with pytest.raises(ValueError):
        to_18("001000000000001AAB")


def test_parse_limit_info():
    assert parse_limit_info("api-usage=25/5000") == (25, 5000)
    assert parse_limit_info("api-usage=25/5000; per-app-api-usage=2/250(appName=x)") == (25, 5000)
    assert parse_limit_info(None) is None
