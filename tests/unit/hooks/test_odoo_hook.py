"""OdooHook without network: a fake Odoo behind ``httpx.MockTransport``; faults from the real captures."""

from __future__ import annotations

import json
import logging
import re
import xmlrpc.client
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_migration.errors import ConfigurationError
from crm_migration.hooks import _http
from crm_migration.hooks import odoo as odoo_mod
from crm_migration.hooks.odoo import (
    MIGRATION_CONTEXT,
    OdooAccessDenied,
    OdooBatchMismatch,
    OdooError,
    OdooHook,
    OdooMissingRecord,
    OdooRecordError,
    OdooSchemaError,
    OdooTransientError,
    exception_line,
)

SECRET = "s3cr3t-Odoo-pw"
DB = "crm"
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
FAULTS_FILE = SHARED / "odoo17" / "faults.json"


@dataclass
class JsonErr:
    """A JSON-RPC ``error`` object (or, for JSON-2, an error body with an HTTP status)."""

    body: dict[str, Any]
    status: int = 500


@dataclass
class Sent:
    """One request the hook sent, decoded."""

    protocol: str
    service: str
    method: str
    args: list[Any]
    model: str | None = None
    call: str | None = None
    call_args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    request: httpx.Request | None = None


class FakeOdoo:
    """Just enough Odoo: the three protocols, ``common`` and scripted ``object`` replies.

    A reply is a value, an ``xmlrpc.client.Fault``, a :class:`JsonErr`, a raw ``httpx.Response`` or an
    exception to raise (``httpx.ReadTimeout``). ``replies`` are consumed first, then ``handlers``.
    """

    def __init__(self, *, version: int = 17, uid: Any = 2, json2: bool = True, api_key: bool = True) -> None:
        self.version_info = [version, 0, 0, "final", 0, ""]
        self.uid, self.json2, self.api_key = uid, json2, api_key
        self.sent: list[Sent] = []
        self.replies: deque[Any] = deque()
        self.common_replies: deque[Any] = deque()
        self.handlers: dict[tuple[str, str], Callable[..., Any]] = {}

    # -- what the hook sent
    def calls(self, call: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.service == "object" and (call is None or s.call == call)]

    # -- the server
    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/xmlrpc/2/"):
            params, method = xmlrpc.client.loads(request.content, use_builtin_types=True)
            return self._dispatch("xmlrpc", path.rsplit("/", 1)[1], method, list(params), request)
        if path == "/jsonrpc":
            body = json.loads(request.content)
            assert body["jsonrpc"] == "2.0" and body["method"] == "call"
            p = body["params"]
            return self._dispatch("jsonrpc", p["service"], p["method"], p["args"], request, rid=body["id"])
        if path == "/web/version" and self.json2:
            return httpx.Response(200, json={"version": f"{self.version_info[0]}.0",
                                             "version_info": self.version_info})
        if path.startswith("/json/2/") and self.json2:
            if not self.api_key or request.headers.get("Authorization") != f"bearer {SECRET}":
                return httpx.Response(401, json={"name": "werkzeug.exceptions.Unauthorized",
                                                 "message": "Invalid apikey", "arguments": [], "debug": ""})
            model, method = path.removeprefix("/json/2/").split("/")
            kwargs = json.loads(request.content)
            sent = Sent("json2", "object", "execute", [], model, method, [], kwargs, request)
            self.sent.append(sent)
            if model == "res.users" and method == "context_get":
                return httpx.Response(200, json={"uid": 2, "lang": "en_US", "tz": False})
            return self._encode("json2", self._reply(model, method, [], kwargs), None)
        return httpx.Response(404, text="<html>Not Found</html>")

    def _dispatch(self, protocol: str, service: str, method: str, args: list[Any], request: httpx.Request,
                  rid: Any = None) -> httpx.Response:
        if service == "common":
            self.sent.append(Sent(protocol, service, method, args, request=request))
            if self.common_replies:
                return self._encode(protocol, self.common_replies.popleft(), rid)
            if method == "version":
                return self._encode(protocol, {"server_version": f"{self.version_info[0]}.0",
                                               "server_version_info": self.version_info,
                                               "server_serie": f"{self.version_info[0]}.0",
                                               "protocol_version": 1}, rid)
            return self._encode(protocol, self.uid, rid)
        assert method == "execute_kw", method
        db, uid, pwd, model, call, call_args, *rest = args
        assert (db, uid, pwd) == (DB, 2, SECRET)
        kwargs = rest[0] if rest else {}
        self.sent.append(Sent(protocol, service, method, args, model, call, call_args, kwargs, request))
        return self._encode(protocol, self._reply(model, call, call_args, kwargs), rid)

    def _reply(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if self.replies:
            return self.replies.popleft()
        if (model, method) in self.handlers:
            return self.handlers[(model, method)](args, kwargs)
        if method == "create":
            rows = args[0] if args else kwargs["vals_list"]
            return list(range(100, 100 + len(rows)))
        if method in ("search_read", "search", "read"):
            return []
        return True

    @staticmethod
    def _encode(protocol: str, reply: Any, rid: Any) -> httpx.Response:
        if isinstance(reply, BaseException) and not isinstance(reply, xmlrpc.client.Fault):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        if protocol == "xmlrpc":
            body = (xmlrpc.client.dumps(reply, methodresponse=True) if isinstance(reply, xmlrpc.client.Fault)
                    else xmlrpc.client.dumps((reply,), methodresponse=True, allow_none=True))
            return httpx.Response(200, content=body.encode(), headers={"Content-Type": "text/xml"})
        if protocol == "jsonrpc":
            if isinstance(reply, JsonErr):
                return httpx.Response(200, json={"jsonrpc": "2.0", "id": rid, "error": reply.body})
            envelope = {"jsonrpc": "2.0", "id": rid}
            if reply is not None:  # Odoo omits "result" for a None result
                envelope["result"] = reply
            return httpx.Response(200, json=envelope)
        if isinstance(reply, JsonErr):
            return httpx.Response(reply.status, json=reply.body)
        return httpx.Response(200, json=reply)


def set_conn(monkeypatch, transport: str = "xmlrpc", **extra: Any) -> None:
    conn = {"conn_type": "odoo", "host": "http://odoo.test:8069", "schema": DB, "login": "admin",
            "password": SECRET, "extra": {"transport": transport, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps(conn))


@pytest.fixture
def make_hook(monkeypatch):
    """``make_hook(transport, server)`` -> (hook, server, waits): no network, no real sleeping."""

    def make(transport: str = "xmlrpc", server: FakeOdoo | None = None, **extra: Any):
        set_conn(monkeypatch, transport, **extra)
        server = server or FakeOdoo()
        hook = OdooHook(transport=httpx.MockTransport(server))
        waits: list[float] = []
        hook._sleep = waits.append
        hook._log = logging.getLogger("test.odoo_hook")  # stdlib logger, so caplog sees the lines
        return hook, server, waits

    return make


# ------------------------------------------------------------------------------ connection / URL


@pytest.mark.parametrize(("conn", "url"), [
    ({"host": "https://odoo.example.com/", "schema": "db"}, "https://odoo.example.com"),
    ({"host": "odoo.local", "port": 8069, "schema": "db"}, "http://odoo.local:8069"),
    ({"host": "odoo.local", "schema": "db", "extra": {"scheme": "https"}}, "https://odoo.local"),
])
def test_base_url_never_takes_the_database_for_a_scheme(monkeypatch, conn, url):
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps(
        {"conn_type": "odoo", "login": "a", "password": "p", **conn}))
    assert OdooHook().settings.url == url


def test_missing_connection_fields_are_a_configuration_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps({"conn_type": "odoo", "host": "http://x"}))
    with pytest.raises(ConfigurationError, match="schema .database.*login.*password"):
        OdooHook().settings  # noqa: B018


def test_unknown_transport_is_refused(monkeypatch):
    set_conn(monkeypatch, "soap")
    with pytest.raises(ConfigurationError, match="soap"):
        OdooHook().settings  # noqa: B018


def test_parse_retry_after_seconds_and_http_date():
    assert _http.parse_retry_after("7") == 7.0
    assert _http.parse_retry_after("3600") == _http.MAX_WAIT_SECONDS
    assert _http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _http.parse_retry_after(None) is None


# --------------------------------------------------------------------------- the exact requests


def test_xmlrpc_authenticates_once_then_execute_kw_with_migration_context(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    ids = hook.create_batch("res.partner", [{"name": "A"}, {"name": "B"}], keys=["k:1", "k:2"])
    hook.create_batch("res.partner", [{"name": "C"}])
    assert ids == [100, 101]
    common = [s for s in server.sent if s.service == "common"]
    assert [(s.method, s.args) for s in common] == [("authenticate", [DB, "admin", SECRET, {}])]
    first = server.calls("create")[0]
    assert first.request.url.path == "/xmlrpc/2/object"
    assert first.request.headers["Content-Type"] == "text/xml"
    assert first.args[:5] == [DB, 2, SECRET, "res.partner", "create"]
    assert first.call_args == [[{"name": "A", "x_migration_key": "k:1"}, {"name": "B", "x_migration_key": "k:2"}]]
    assert first.kwargs == {"context": MIGRATION_CONTEXT}
    assert hook.calls[("res.partner", "create")] == 2


def test_jsonrpc_envelope(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    hook.write_batch("crm.lead", {7: {"probability": 0}})
    sent = server.calls("write")[0]
    body = json.loads(sent.request.content)
    assert sent.request.url.path == "/jsonrpc"
    assert body["jsonrpc"] == "2.0" and body["method"] == "call"
    assert body["params"] == {"service": "object", "method": "execute_kw", "args": [
        DB, 2, SECRET, "crm.lead", "write", [[7], {"probability": 0}], {"context": MIGRATION_CONTEXT}]}


def test_json2_named_body_bearer_and_database_headers(make_hook):
    hook, server, _ = make_hook("json2", FakeOdoo(version=19))
    assert hook.create_batch("res.partner", [{"name": "A"}], keys=["k:1"], context={"lang": "fr_FR"}) == [100]
    hook.write_batch("res.partner", {100: {"name": "B"}})
    create, write = server.calls("create")[0], server.calls("write")[0]
    assert create.request.url.path == "/json/2/res.partner/create"
    assert create.request.headers["Authorization"] == f"bearer {SECRET}"
    assert create.request.headers["X-Odoo-Database"] == DB
    assert create.kwargs == {"vals_list": [{"name": "A", "x_migration_key": "k:1"}],
                             "context": {**MIGRATION_CONTEXT, "lang": "fr_FR"}}
    assert write.kwargs == {"ids": [100], "vals": {"name": "B"}, "context": MIGRATION_CONTEXT}
    assert not [s for s in server.sent if s.service == "common"]  # no uid/password dance


def test_json2_refuses_positional_args_it_cannot_name(make_hook):
    hook, server, _ = make_hook("json2", FakeOdoo(version=19))
    with pytest.raises(ConfigurationError, match="named arguments"):
        hook.call("crm.lead", "some_method", ["a", "b"])
    assert not server.calls()


@pytest.mark.parametrize(("server", "wire"), [
    (FakeOdoo(version=17), "jsonrpc"),
    (FakeOdoo(version=19), "json2"),
    (FakeOdoo(version=19, json2=False), "jsonrpc"),
])
def test_auto_picks_json2_on_19_else_jsonrpc(make_hook, server, wire):
    hook, _, _ = make_hook("auto", server)
    assert hook.wire.name == wire
    assert hook.version()["server_version_info"][0] == server.version_info[0]


def test_auto_falls_back_to_jsonrpc_when_the_secret_is_a_password_not_an_api_key(make_hook):
    hook, server, _ = make_hook("auto", FakeOdoo(version=19, api_key=False))
    assert hook.wire.name == "jsonrpc"
    assert hook.call("res.partner", "search", [[]]) == []
    assert server.calls("search")[0].protocol == "jsonrpc"


# ----------------------------------------------------------------------- classification (real faults)


def _load_faults() -> list[dict[str, Any]]:
    return json.loads(FAULTS_FILE.read_text())


FAULTS = _load_faults() if FAULTS_FILE.exists() else []

# The class each captured case must raise (None: not a fault, the result comes back).
EXPECTED: dict[tuple[str, str], type[OdooError] | None] = {
    ("xmlrpc", "unknown field on create"): OdooRecordError,
    ("xmlrpc", "unknown field on write"): OdooRecordError,
    ("xmlrpc", "unknown field in read fields list"): OdooRecordError,
    ("xmlrpc", "unknown field in search domain"): OdooRecordError,
    ("xmlrpc", "bad selection value"): OdooRecordError,
    ("xmlrpc", "selection given as int"): OdooRecordError,
    ("xmlrpc", "missing required field (crm.lead without name)"): OdooRecordError,
    ("xmlrpc", "required field given as empty string"): None,
    ("xmlrpc", "required field given as False"): OdooRecordError,
    ("xmlrpc", "res.partner create without name (no field is required by fields_get)"): OdooRecordError,
    ("xmlrpc", "many2one to a missing id"): OdooRecordError,
    ("xmlrpc", "many2one to a missing id (res.partner country_id)"): OdooRecordError,
    ("xmlrpc", "many2one given as a string"): OdooRecordError,
    ("xmlrpc", "many2many (6,0,ids) with a missing id"): OdooRecordError,
    ("xmlrpc", "write of a missing id"): OdooMissingRecord,
    ("xmlrpc", "unlink of a missing id"): OdooMissingRecord,
    ("xmlrpc", "write of a missing id (crm.lead)"): OdooMissingRecord,
    ("xmlrpc", "read of a missing id (not a fault)"): None,
    ("xmlrpc", "read of one existing and one missing id"): None,
    ("xmlrpc", "search_read with id in missing ids"): None,
    ("xmlrpc", "unknown model"): OdooError,
    ("xmlrpc", "unknown method"): OdooError,
    ("xmlrpc", "private method (leading underscore)"): OdooAccessDenied,
    ("xmlrpc", "private method (unknown name with leading underscore)"): OdooAccessDenied,
    ("xmlrpc", "wrong password in execute_kw"): OdooAccessDenied,
    ("xmlrpc", "unknown uid in execute_kw"): OdooAccessDenied,
    ("xmlrpc", "unknown database in execute_kw"): OdooError,
    ("xmlrpc", "authenticate with a wrong password (not a fault)"): OdooAccessDenied,
    ("xmlrpc", "authenticate with an unknown login (not a fault)"): OdooAccessDenied,
    ("xmlrpc", "login() with a wrong password (not a fault)"): OdooAccessDenied,
    ("xmlrpc", "authenticate against an unknown database"): OdooError,
    ("xmlrpc", "method returning None over XML-RPC (crm.lead action_set_lost)"): OdooError,
    ("jsonrpc", "same method over JSON-RPC (null result is fine)"): None,
    ("xmlrpc", "default_get on res.partner over XML-RPC (a default is None: barcode)"): OdooError,
    ("xmlrpc", "batch create where the 2nd dict is bad"): OdooRecordError,
    ("xmlrpc", "batch create where the 2nd dict misses a required field"): OdooRecordError,
    ("xmlrpc", "custom field name without x_ prefix"): OdooRecordError,
    ("xmlrpc", "custom selection field without selection values"): None,
    ("xmlrpc", "recursive partner parent_id (A parent of B, then B parent of A)"): OdooRecordError,
    ("xmlrpc", "partner parent_id = itself"): OdooRecordError,
    ("xmlrpc", "message_post with an author_id partner that has no email"): OdooRecordError,
    ("xmlrpc", "message_post with author_id without email but explicit email_from"): None,
    ("xmlrpc", "mail.message create with an author_id partner that has no email (not a fault)"): None,
    ("xmlrpc", "message_post on a missing record id"): OdooMissingRecord,
    ("xmlrpc", "message_post with two record ids"): OdooError,
    ("xmlrpc", "load() with an unknown column"): OdooError,
    ("xmlrpc", "load() with a missing many2one reference (xmlid)"): None,
    ("xmlrpc", "load() with a missing many2one reference (by name)"): None,
    ("xmlrpc", "load() with a missing many2one reference (database id)"): None,
    ("xmlrpc", "load() with a bad selection value"): None,
    ("xmlrpc", "load() where row 2 of 3 is bad"): None,
    ("xmlrpc", "load() with a missing required value"): None,
    ("xmlrpc", "bad date string"): OdooRecordError,
    ("xmlrpc", "datetime with ISO T and timezone offset"): OdooRecordError,
    ("xmlrpc", "datetime with ISO T, no offset"): OdooRecordError,
    ("xmlrpc", "datetime with microseconds"): OdooRecordError,
    ("xmlrpc", "attachment with datas that is not base64"): OdooRecordError,
    ("xmlrpc", "unknown xmlid in check_object_reference"): OdooMissingRecord,
    ("xmlrpc", "legacy /xmlrpc/object endpoint (string faultCode), missing id write"): OdooMissingRecord,
    ("jsonrpc", "unknown field on create"): OdooRecordError,
    ("jsonrpc", "write of a missing id"): OdooMissingRecord,
    ("jsonrpc", "missing required field"): OdooRecordError,
    ("jsonrpc", "wrong password"): OdooAccessDenied,
    ("jsonrpc", "unknown model"): OdooError,
    ("jsonrpc", "private method"): OdooAccessDenied,
    ("jsonrpc", "authenticate with a wrong password"): OdooAccessDenied,
    ("jsonrpc", "read of a missing id"): None,
}
FIELDS = {
    "unknown field on create": "no_such_field", "unknown field in search domain": "no_such_field",
    "bad selection value": "priority", "missing required field (crm.lead without name)": "name",
    "many2one to a missing id": "stage_id", "many2one to a missing id (res.partner country_id)": "country_id",
}
_CALL = re.compile(r"execute_kw\([^,]+, [^,]+, [^,]+, '(?P<model>[\w.]+)', '(?P<method>\w+)'")


def test_every_captured_fault_has_an_expectation():
    assert len(FAULTS) == 67, "faults.json changed: review EXPECTED"
    assert {(c["transport"], c["case"]) for c in FAULTS} == set(EXPECTED)


def _traceback(case: dict[str, Any]) -> str:
    """A fault-1 faultString shaped like Odoo's: frames, then the captured last line(s)."""
    frames = ['  File "/usr/lib/python3/dist-packages/odoo/service/model.py", line 133, in retrying\n'
              "    result = func()\n"] * max(1, (case.get("traceback_lines", 5) - 2) // 2)
    tail = case["message"]
    if "exception_line" in case:  # psycopg2: the SQL and a caret follow the exception line
        tail = f"{case['exception_line']}\nLINE 1: ...VALUES (1, 'New')\n{case['message']}"
    return f"{case['faultString_first_line']}\n{''.join(frames)}{tail}\n"


def _script(server: FakeOdoo, case: dict[str, Any]) -> None:
    """Make ``server`` answer the case's call the way the real Odoo did."""
    if "json_error" in case:
        reply: Any = JsonErr(case["json_error"])
    elif "json_result" in case:
        reply = case["json_result"]
    elif not case.get("fault"):
        reply = case["result"]
    elif isinstance(case["faultCode"], str):
        reply = xmlrpc.client.Fault(case["faultCode"], case["faultString"])
    elif case["faultCode"] == 1:
        reply = xmlrpc.client.Fault(1, _traceback(case))
    else:
        reply = xmlrpc.client.Fault(case["faultCode"], case["faultString"])
    on_common = re.search(r"common\.(authenticate|login)\(", case["call"])
    (server.common_replies if on_common else server.replies).append(reply)


@pytest.mark.parametrize("case", FAULTS, ids=[f"{c['transport']}:{c['case']}" for c in FAULTS])
def test_real_fault_shapes_are_classified(make_hook, monkeypatch, caplog, case):
    monkeypatch.setattr(odoo_mod, "NONE_RETURNING_METHODS", frozenset())  # let the call through
    hook, server, waits = make_hook(case["transport"])
    _script(server, case)
    m = _CALL.search(case["call"])
    model, method = (m["model"], m["method"]) if m else ("res.partner", "search")
    expected = EXPECTED[(case["transport"], case["case"])]
    caplog.set_level(logging.DEBUG, logger="test.odoo_hook")
    if expected is None:
        want = case.get("json_result", case.get("result"))
        assert hook.call(model, method, [[]]) == want
        return
    with pytest.raises(OdooError) as info:
        hook.call(model, method, [[]])
    exc = info.value
    assert type(exc) is expected, f"{case['case']}: {type(exc).__name__}: {exc}"
    assert not waits and len(server.sent) == len([s for s in server.sent if s.service == "common"]) + (
        0 if re.search(r"common\.", case["call"]) else 1), "a non-transient fault must not be retried"
    assert "Traceback" not in str(exc) and "\n  File" not in str(exc)
    if case.get("faultCode") == 1:
        line = " ".join((case.get("exception_line") or case["message"]).split())
        assert line in str(exc) and "\n" not in str(exc)  # the line a person reads, on one line
        # the server's traceback reaches no log (it may hold values); its size does, at debug
        assert "Traceback (most recent call last)" not in caplog.text and "\n  File" not in caplog.text
        assert "characters not logged" in caplog.text
    if case["case"] in FIELDS and case["transport"] == "xmlrpc":
        assert exc.field == FIELDS[case["case"]]
    if isinstance(exc, OdooMissingRecord) and "999999" in case.get("faultString", "") + str(
            case.get("json_error", "")):
        assert exc.ids == (999999,)
    if not re.search(r"common\.", case["call"]):
        assert (exc.model, exc.method) == (model, method)


@pytest.mark.parametrize(("text", "line"), [
    ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\nValueError: bad\n",
     "ValueError: bad"),
    ("Traceback (most recent call last):\n  File \"x\", line 2\npsycopg2.errors.NotNullViolation: null value "
     "in column \"name\"\nDETAIL:  Failing row contains (1).\n", "psycopg2.errors.NotNullViolation: null value "
     "in column \"name\""),
    ("just a message", "just a message"),
])
def test_exception_line(text, line):
    assert exception_line(text) == line


@pytest.mark.parametrize("transport", ["xmlrpc", "jsonrpc"])
@pytest.mark.parametrize("shape", ["psycopg2.errors.SerializationFailure: could not serialize access due to "
                                   "concurrent update", "psycopg2.errors.DeadlockDetected: deadlock detected"])
def test_serialization_failure_and_deadlock_are_retried(make_hook, transport, shape):
    hook, server, waits = make_hook(transport)
    name, msg = shape.split(": ", 1)
    if transport == "xmlrpc":
        server.replies.append(xmlrpc.client.Fault(1, f"Traceback (most recent call last):\n  File \"x\"\n{shape}\n"))
    else:
        server.replies.append(JsonErr({"code": 200, "message": "Odoo Server Error",
                                       "data": {"name": name, "message": msg, "debug": "", "arguments": [msg]}}))
    assert hook.create_batch("crm.lead", [{"name": "x"}], keys=["k"]) == [100]
    assert len(server.calls("create")) == 2 and waits == [0.5]


# ------------------------------------------------------------------------------------ retries


def test_503_then_success_is_retried_with_backoff(make_hook):
    hook, server, waits = make_hook("jsonrpc")
    server.replies.extend([httpx.Response(503), httpx.Response(503), [1, 2]])
    assert hook.call("res.partner", "search", [[]]) == [1, 2]
    assert len(server.calls("search")) == 3 and waits == [0.5, 1.0]
    assert hook.calls[("res.partner", "search")] == 1


def test_429_retry_after_is_honoured(make_hook):
    hook, server, waits = make_hook("xmlrpc")
    server.replies.extend([httpx.Response(429, headers={"Retry-After": "7"}), [3]])
    assert hook.search_ids("res.partner", []) == [3]
    assert waits == [7.0]


def test_retries_are_bounded(make_hook):
    hook, server, waits = make_hook("jsonrpc", max_attempts=3)
    server.replies.extend([httpx.Response(502)] * 5)
    with pytest.raises(OdooTransientError) as info:
        hook.call("res.partner", "read", [[1], ["name"]])
    assert info.value.code == 502 and len(server.calls("read")) == 3 and len(waits) == 2


def test_access_denied_is_not_retried(make_hook):
    hook, server, waits = make_hook("xmlrpc")
    server.replies.append(xmlrpc.client.Fault(3, "Access Denied"))
    with pytest.raises(OdooAccessDenied):
        hook.call("res.partner", "search", [[]])
    assert len(server.calls()) == 1 and not waits


def test_authenticate_false_is_access_denied_without_the_secret(make_hook):
    hook, server, waits = make_hook("jsonrpc", FakeOdoo(uid=False))
    with pytest.raises(OdooAccessDenied) as info:
        hook.call("res.partner", "search", [[]])
    assert "admin" in str(info.value) and DB in str(info.value) and SECRET not in str(info.value)
    assert not server.calls() and not waits


def test_a_lost_answer_to_create_is_not_blindly_resent(make_hook):
    """A timeout after sending may mean Odoo committed: without keys it is raised, not retried."""
    hook, server, waits = make_hook("jsonrpc")
    server.replies.append(httpx.ReadTimeout("timed out"))
    with pytest.raises(OdooTransientError) as info:
        hook.create_batch("res.partner", [{"name": "A"}])
    assert info.value.maybe_committed and len(server.calls("create")) == 1


def test_a_lost_answer_to_a_keyed_create_is_recovered_from_odoo(make_hook):
    hook, server, waits = make_hook("jsonrpc")
    server.replies.append(httpx.ReadTimeout("timed out"))
    server.handlers[("res.partner", "search_read")] = lambda args, kw: [
        {"id": 41, "x_migration_key": "k:1"}, {"id": 42, "x_migration_key": "k:2"}]
    assert hook.create_batch("res.partner", [{"name": "A"}, {"name": "B"}], keys=["k:1", "k:2"]) == [41, 42]
    assert len(server.calls("create")) == 1 and waits == [0.5]  # waited before looking
    lookup = server.calls("search_read")[0]
    assert lookup.call_args[0] == [["x_migration_key", "in", ["k:1", "k:2"]]]
    assert lookup.kwargs["context"]["active_test"] is False


def test_a_lost_answer_to_a_keyed_create_that_did_not_land_is_resent(make_hook):
    hook, server, waits = make_hook("jsonrpc")
    server.replies.append(httpx.RemoteProtocolError("server disconnected"))
    assert hook.create_batch("res.partner", [{"name": "A"}], keys=["k:1"]) == [100]
    assert len(server.calls("create")) == 2 and len(server.calls("search_read")) == 1 and waits == [0.5]


def test_a_lost_answer_to_a_keyed_create_whose_keys_partly_exist_is_not_resent(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.replies.append(httpx.ReadTimeout("timed out"))
    server.handlers[("res.partner", "search_read")] = lambda a, kw: [{"id": 9, "x_migration_key": "k:1"}]
    with pytest.raises(OdooError, match="1 of 2 keys"):
        hook.create_batch("res.partner", [{"name": "A"}, {"name": "B"}], keys=["k:1", "k:2"])
    assert len(server.calls("create")) == 1


@pytest.mark.parametrize(("method", "args", "safe"), [
    ("search_read", [[]], True),
    ("write", [[1], {"name": "x", "tag_ids": [[6, 0, [1, 2]]]}], True),
    ("write", [[1], {"child_ids": [[0, 0, {"name": "c"}]]}], False),
    ("create", [[{"name": "x"}]], False),
    ("unlink", [[1]], False),
])
def test_replay_safe(method, args, safe):
    assert odoo_mod.replay_safe(method, args) is safe


def test_a_lost_answer_to_a_plain_write_is_retried(make_hook):
    hook, server, waits = make_hook("jsonrpc")
    server.replies.extend([httpx.ReadTimeout("timed out"), True])
    assert hook.write_batch("res.partner", {1: {"name": "x"}}) == 1
    assert len(server.calls("write")) == 2 and waits == [0.5]


# ------------------------------------------------------------------------------------- secrets


def test_the_secret_never_appears_in_errors_logs_or_reprs(make_hook, caplog):
    caplog.set_level(logging.DEBUG, logger="test.odoo_hook")
    hook, server, _ = make_hook("xmlrpc")
    server.replies.append(xmlrpc.client.Fault(
        1, f"Traceback (most recent call last):\n  File \"x\", line 1\n    login('admin', '{SECRET}')\n"
           f"ValueError: bad password {SECRET}\n"))
    server.replies.append(httpx.Response(503))
    server.replies.append(xmlrpc.client.Fault(2, f"Record does not exist or has been deleted.\n{SECRET}"))
    errors = []
    for _ in range(2):
        with pytest.raises(OdooError) as info:
            hook.call("res.partner", "write", [[1], {"name": "x"}])
        errors.append(info.value)
    assert "***" in str(errors[0])
    for exc in errors:
        assert SECRET not in str(exc) and SECRET not in repr(exc) and SECRET not in exc.message
        assert all(SECRET not in str(a) for a in exc.args)
    assert SECRET not in caplog.text and "***" in caplog.text
    assert SECRET not in repr(hook) and SECRET not in repr(hook.settings)


# ------------------------------------------------------------------------------------ batch API


def test_create_batch_count_mismatch(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.replies.append([100])
    with pytest.raises(OdooBatchMismatch) as info:
        hook.create_batch("res.partner", [{"name": "A"}, {"name": "B"}])
    assert (info.value.expected, info.value.got) == (2, 1)


def test_create_batch_nothing_to_do_sends_nothing(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    assert hook.create_batch("res.partner", []) == []
    assert not server.sent


def test_write_batch_groups_identical_values(make_hook, caplog):
    caplog.set_level(logging.INFO, logger="test.odoo_hook")
    hook, server, _ = make_hook("xmlrpc")
    n = hook.write_batch("crm.lead", {1: {"stage_id": 4, "active": True}, 2: {"stage_id": 5},
                                      3: {"active": True, "stage_id": 4}, 4: {}})
    assert n == 2
    assert sorted((s.call_args[0], s.call_args[1]) for s in server.calls("write")) == [
        ([1, 3], {"active": True, "stage_id": 4}), ([2], {"stage_id": 5})]
    assert all(s.kwargs["context"] == MIGRATION_CONTEXT for s in server.calls("write"))
    assert len([r for r in caplog.records if "crm.lead.write" in r.getMessage()]) == 1  # one line per batch


@pytest.mark.parametrize("transport", ["xmlrpc", "json2"])
def test_write_batch_sends_distinct_values_in_one_load_call(make_hook, transport):
    hook, server, _ = make_hook(transport, FakeOdoo(version=19) if transport == "json2" else None)
    server.handlers[("crm.lead", "fields_get")] = lambda a, kw: {
        "date_last_stage_update": {"type": "datetime"}, "partner_id": {"type": "many2one"},
        "tag_ids": {"type": "many2many"}, "probability": {"type": "float"}, "active": {"type": "boolean"}}
    server.handlers[("crm.lead", "load")] = lambda a, kw: {"ids": [7, 8, 9], "messages": [], "nextrow": 0}
    n = hook.write_batch("crm.lead", {
        7: {"date_last_stage_update": datetime(2019, 3, 1, 10, 0, tzinfo=UTC), "partner_id": 3, "tag_ids": [(6, 0, [1, 2])],
            "probability": 12.5, "active": True},
        8: {"date_last_stage_update": "2019-03-02 11:00:00", "partner_id": None, "tag_ids": [], "probability": 0,
            "active": False},
        9: {"date_last_stage_update": None, "partner_id": 4, "tag_ids": [5], "probability": 1.0, "active": True}})
    assert n == 1 and not server.calls("write")
    (sent,) = server.calls("load")
    fields, data = (sent.call_args if transport == "xmlrpc" else [sent.kwargs["fields"], sent.kwargs["data"]])
    assert fields == [".id", "active", "date_last_stage_update", "partner_id/.id", "probability", "tag_ids/.id"]
    assert data == [["7", "1", "2019-03-01 10:00:00", "3", "12.5", "1,2"], ["8", "0", "2019-03-02 11:00:00", "", "0", ""],
                    ["9", "1", "", "4", "1.0", "5"]]
    assert sent.kwargs["context"] == {**MIGRATION_CONTEXT, "tz": "UTC", "active_test": False}


def test_a_stage_date_load_goes_without_prefetching_and_a_load_of_other_fields_with_it(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    server.handlers[("crm.lead", "fields_get")] = lambda a, kw: {
        "date_last_stage_update": {"type": "datetime"}, "date_closed": {"type": "datetime"},
        "partner_id": {"type": "many2one"}}
    server.handlers[("crm.lead", "load")] = lambda a, kw: {"ids": [7, 8], "messages": [], "nextrow": 0}
    hook.write_batch("crm.lead", {7: {"date_last_stage_update": "2019-03-01 10:00:00", "date_closed": None},
                                  8: {"date_last_stage_update": "2019-03-02 11:00:00", "date_closed": None}})
    hook.write_batch("crm.lead", {7: {"date_last_stage_update": "2019-03-01 10:00:00", "partner_id": 3},
                                  8: {"date_last_stage_update": "2019-03-02 11:00:00", "partner_id": 4}})
    dates, others = server.calls("load")
    assert dates.call_args[0] == [".id", "date_closed", "date_last_stage_update"]
    assert dates.kwargs["context"] == {**MIGRATION_CONTEXT, "tz": "UTC", "active_test": False, "prefetch_fields": False}
    assert others.kwargs["context"] == {**MIGRATION_CONTEXT, "tz": "UTC", "active_test": False}


def test_a_load_error_is_a_record_error_naming_the_field_and_the_record(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("res.partner", "fields_get")] = lambda a, kw: {"parent_id": {"type": "many2one"}}
    server.handlers[("res.partner", "load")] = lambda a, kw: {"ids": False, "nextrow": 0, "messages": [
        {"type": "error", "record": 1, "field": "parent_id", "rows": {"from": 1, "to": 1},
         "message": "No matching record found for database id '99' in field 'Related Company'"}]}
    with pytest.raises(OdooRecordError) as refused:
        hook.write_batch("res.partner", {5: {"parent_id": 1}, 6: {"parent_id": 99}})
    assert refused.value.field == "parent_id" and "(record 6)" in refused.value.message
    server.handlers[("res.partner", "load")] = lambda a, kw: {"ids": False, "nextrow": 0, "messages": [
        {"type": "error", "record": 0, "field": ".id", "rows": {"from": 0, "to": 0},
         "message": "Unknown database identifier '5'"}]}
    with pytest.raises(OdooMissingRecord) as gone:
        hook.write_batch("res.partner", {5: {"parent_id": 1}, 6: {"parent_id": 2}})
    assert gone.value.ids == (5,)


def test_ten_ids_sharing_values_are_one_write_the_rest_one_load(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    server.handlers[("res.partner", "fields_get")] = lambda a, kw: {"parent_id": {"type": "many2one"}}
    server.handlers[("res.partner", "load")] = lambda a, kw: {"ids": [r[0] for r in a[1]], "messages": [], "nextrow": 0}
    updates = {i: {"parent_id": 1} for i in range(10, 20)} | {i: {"parent_id": i} for i in range(30, 35)}
    assert hook.write_batch("res.partner", updates) == 2
    assert [s.call_args for s in server.calls("write")] == [[list(range(10, 20)), {"parent_id": 1}]]
    assert [len(s.call_args[1]) for s in server.calls("load")] == [5]


def _selection_server(server: Any, options: list[str]) -> None:
    """``x_tier`` (ir.model.fields 41) of res.partner, its options kept in ``options`` as Odoo keeps them."""
    server.handlers[("res.partner", "fields_get")] = lambda a, kw: {
        "x_tier": {"type": "selection", "selection": [[v, v] for v in options[:1]]}}
    server.handlers[("ir.model.fields", "search_read")] = lambda a, kw: [{"id": 41, "name": "x_tier"}]
    server.handlers[("ir.model.fields.selection", "search_read")] = lambda a, kw: [
        {"id": 500 + i, "field_id": [41, "Tier"], "value": v, "sequence": i} for i, v in enumerate(options)]

    def create(args: list[Any], kw: dict[str, Any]) -> list[int]:
        options.extend(r["value"] for r in args[0])
        return list(range(600, 600 + len(args[0])))

    server.handlers[("ir.model.fields.selection", "create")] = create


def test_selection_options_are_read_from_odoo_and_learnt_by_the_cached_fields(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    options = ["gold"]
    _selection_server(server, options)
    assert hook.fields_get("res.partner")["x_tier"]["selection"] == [["gold", "gold"]]
    assert hook.add_options({"res.partner": {"x_tier": ["gold", "silver"]}}) == 1
    assert hook.fields_get("res.partner")["x_tier"]["selection"] == [["gold", "gold"], ["silver", "silver"]]
    options.append("platinum")            # another task (its own hook) added one since this hook read the fields
    assert hook.add_options({"res.partner": {"x_tier": ["silver", "platinum", "bronze"]}}) == 1
    assert [s.call_args[0] for s in server.calls("create")] == [
        [{"field_id": 41, "value": "silver", "name": "silver", "sequence": 1}],
        [{"field_id": 41, "value": "bronze", "name": "bronze", "sequence": 3}]]
    assert options == ["gold", "silver", "platinum", "bronze"]            # each once
    assert [v for v, _ in hook.fields_get("res.partner")["x_tier"]["selection"]] == options
    assert len(server.calls("fields_get")) == 1 and len(server.calls("search_read")) == 3   # field id learnt once


def test_an_option_another_task_adds_between_the_read_and_the_create_is_read_again_not_doubled(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    options = ["gold"]
    _selection_server(server, options)
    create = server.handlers[("ir.model.fields.selection", "create")]
    refused = JsonErr({"code": 200, "message": "Odoo Server Error", "data": {
        "name": "odoo.exceptions.ValidationError", "debug": "",
        "message": "The operation cannot be completed: Selections values must be unique per field"}})

    def raced(args: list[Any], kw: dict[str, Any]) -> Any:
        server.handlers[("ir.model.fields.selection", "create")] = create
        options.append("silver")          # the other task's create committed first: Odoo refuses this one whole
        return refused

    server.handlers[("ir.model.fields.selection", "create")] = raced
    assert hook.add_options({"res.partner": {"x_tier": ["silver", "bronze"]}}) == 1
    assert options == ["gold", "silver", "bronze"]
    assert [[r["value"] for r in s.call_args[0]] for s in server.calls("create")] == [["silver", "bronze"], ["bronze"]]
    # anything else Odoo refuses is the caller's to hear
    server.handlers[("ir.model.fields.selection", "create")] = lambda a, kw: JsonErr({
        "code": 200, "message": "Odoo Server Error", "data": {"name": "odoo.exceptions.ValidationError",
                                                              "debug": "", "message": "Value too long"}})
    with pytest.raises(OdooRecordError, match="Value too long"):
        hook.add_options({"res.partner": {"x_tier": ["copper"]}})


def _paged_partners(total: int):
    rows = [{"id": i, "name": f"P{i}"} for i in range(1, total + 1)]

    def search_read(args, kw):
        domain = args[0]
        bound = next((leaf[2] for leaf in domain if leaf[:2] == ["id", ">"]), 0)
        return [r for r in rows if r["id"] > bound][: kw["limit"]]

    return search_read


@pytest.mark.parametrize(("total", "calls"), [(5, 3), (4, 3), (0, 1), (1, 1)])
def test_search_read_pages_by_id_keyset_and_stops(make_hook, total, calls):
    hook, server, _ = make_hook("xmlrpc")
    server.handlers[("res.partner", "search_read")] = _paged_partners(total)
    got = list(hook.search_read("res.partner", [("is_company", "=", True)], ["name"], page_size=2))
    assert [r["id"] for r in got] == list(range(1, total + 1))
    sent = server.calls("search_read")
    assert len(sent) == calls
    assert sent[0].call_args == [[["is_company", "=", True]], ["name"]]
    assert sent[0].kwargs["limit"] == 2 and sent[0].kwargs["order"] == "id" and "offset" not in sent[0].kwargs
    if calls > 1:
        assert sent[1].call_args[0] == [["is_company", "=", True], ["id", ">", 2]]


def test_search_read_refuses_a_server_that_ignores_the_bound(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("res.partner", "search_read")] = lambda a, kw: [{"id": 1}, {"id": 2}]
    with pytest.raises(OdooError, match="did not advance"):
        list(hook.search_read("res.partner", [], ["name"], page_size=2))


def test_search_read_only_pages_by_id(make_hook):
    hook, _, _ = make_hook("jsonrpc")
    with pytest.raises(ValueError, match="order"):
        list(hook.search_read("res.partner", [], ["name"], order="name"))


def test_xmlrpc_none_becomes_false_and_big_ints_never_cross(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    hook.create_batch("res.partner", [{"name": "A", "phone": None}])
    assert server.calls("create")[0].call_args == [[{"name": "A", "phone": False}]]
    with pytest.raises(OdooRecordError, match="x_amount.*32-bit") as info:
        hook.create_batch("crm.lead", [{"name": "B", "x_amount": 2**31}])
    assert info.value.field == "x_amount"
    assert len(server.calls("create")) == 1  # the refused batch was never sent


def test_jsonrpc_carries_big_ints_and_turns_none_into_false(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    hook.create_batch("crm.lead", [{"name": "B", "x_amount": 2**40, "email_from": None}])
    assert server.calls("create")[0].call_args == [[{"name": "B", "x_amount": 2**40, "email_from": False}]]


def test_values_are_sent_as_odoo_takes_them(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    plus_two = timezone(timedelta(hours=2))
    hook.write_batch("crm.lead", {1: {"date_closed": datetime(2024, 3, 4, 7, 6, 5, 123, tzinfo=plus_two),
                                      "date_deadline": date(2024, 5, 6), "expected_revenue": Decimal("12.50")}})
    assert server.calls("write")[0].call_args[1] == {
        "date_closed": "2024-03-04 05:06:05", "date_deadline": "2024-05-06", "expected_revenue": 12.5}


def test_fallback_user_defaults_to_the_login(make_hook, monkeypatch):
    hook, _, _ = make_hook("jsonrpc")
    assert hook.fallback_user == "admin"
    hook, _, _ = make_hook("jsonrpc", fallback_user="migration.bot")
    assert hook.fallback_user == "migration.bot"


def test_none_returning_methods_are_refused_over_xmlrpc(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    with pytest.raises(OdooError, match="write the values instead"):
        hook.call("crm.lead", "action_set_lost", [[1]])
    assert not server.calls()


def test_unlink_and_missing_record(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    assert hook.unlink("crm.lead", [1, 2, 3], chunk_size=2) == 3
    assert [s.call_args for s in server.calls("unlink")] == [[[1, 2]], [[3]]]
    server.replies.append(xmlrpc.client.Fault(
        2, "Record does not exist or has been deleted.\n(Record: crm.lead(9, 10), User: 2)"))
    with pytest.raises(OdooMissingRecord) as info:
        hook.unlink("crm.lead", [9, 10])
    assert info.value.ids == (9, 10)


def test_fields_get_is_cached_per_model(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("res.partner", "fields_get")] = lambda a, kw: {"name": {"type": "char"}}
    assert hook.fields_get("res.partner") == hook.fields_get("res.partner") == {"name": {"type": "char"}}
    assert len(server.calls("fields_get")) == 1


def test_ensure_field_is_idempotent_and_checks_the_type(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    fields = {"name": {"type": "char"}}
    server.handlers[("crm.lead", "fields_get")] = lambda a, kw: dict(fields)
    server.handlers[("ir.model", "search")] = lambda a, kw: [77]
    server.handlers[("ir.model.fields", "search")] = lambda a, kw: [500]

    def create_field(args, kw):
        fields[args[0][0]["name"]] = {"type": args[0][0]["ttype"]}
        return [500]

    server.handlers[("ir.model.fields", "create")] = create_field
    assert hook.ensure_field("crm.lead", "x_migration_key", "char", string="Migration key", index=True,
                             copy=False) == 500
    vals = server.calls("create")[0].call_args[0][0]
    assert vals == {"model_id": 77, "name": "x_migration_key", "field_description": "Migration key",
                    "ttype": "char", "state": "manual", "index": True, "store": True, "copied": False}
    assert hook.ensure_field("crm.lead", "x_migration_key", "char", string="Migration key") == 500
    assert len(server.calls("create")) == 1  # second time: nothing created
    assert len(server.calls("fields_get")) == 2  # the cache was dropped after the create
    with pytest.raises(OdooSchemaError, match="exists as char, not integer"):
        hook.ensure_field("crm.lead", "x_migration_key", "integer", string="x")
    with pytest.raises(ConfigurationError, match="x_"):
        hook.ensure_field("crm.lead", "apto_id", "char", string="x")


def test_ensure_field_selection_values(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("ir.model", "search")] = lambda a, kw: [77]
    server.handlers[("crm.lead", "fields_get")] = lambda a, kw: {}
    server.handlers[("ir.model.fields", "create")] = lambda a, kw: [9]
    hook.ensure_field("crm.lead", "x_prio", "selection", string="Raw priority",
                      selection=[("hi", "High"), ("lo", "Low")])
    vals = server.calls("create")[0].call_args[0][0]
    assert vals["selection_ids"] == [[0, 0, {"value": "hi", "name": "High", "sequence": 0}],
                                     [0, 0, {"value": "lo", "name": "Low", "sequence": 1}]]


def test_find_by_keys_is_chunked_and_sees_archived_records(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("crm.lead", "search_read")] = lambda a, kw: [
        {"id": int(k.split(":")[1]), "x_migration_key": k} for k in a[0][0][2] if k != "k:2"]
    keys = [f"k:{i}" for i in range(1, 6)]
    assert hook.find_by_keys("crm.lead", keys, chunk_size=2) == {"k:1": 1, "k:3": 3, "k:4": 4, "k:5": 5}
    sent = server.calls("search_read")
    assert [s.call_args[0][0][2] for s in sent] == [["k:1", "k:2"], ["k:3", "k:4"], ["k:5"]]
    assert all(s.kwargs["context"]["active_test"] is False for s in sent)


def test_resolve_xmlid(make_hook):
    hook, server, _ = make_hook("jsonrpc")
    server.handlers[("ir.model.data", "search_read")] = lambda a, kw: (
        [{"id": 5, "model": "crm.stage", "res_id": 4}] if ["name", "=", "stage_lead4"] in a[0] else [])
    assert hook.resolve_xmlid("crm.stage_lead4") == ("crm.stage", 4)
    assert hook.resolve_xmlid("crm.stage_lead4") == ("crm.stage", 4)
    assert len(server.calls("search_read")) == 1  # cached
    with pytest.raises(OdooMissingRecord, match="crm.nope"):
        hook.resolve_xmlid("crm.nope")


def test_test_connection_reports_version_and_transport(make_hook):
    hook, _, _ = make_hook("xmlrpc")
    ok, message = hook.test_connection()
    assert ok and "17.0" in message and "xmlrpc" in message


def test_a_non_odoo_url_is_a_clear_error(make_hook):
    hook, server, _ = make_hook("xmlrpc")
    server.common_replies.append(httpx.Response(404, text="<html>nope</html>"))
    with pytest.raises(OdooError, match="HTTP 404.*Odoo URL"):
        hook.call("res.partner", "search", [[]])


@pytest.mark.parametrize(("version", "kept"), [
    (16, set()), (17, {"date_closed"}), (18, {"date_closed"}), (19, {"date_closed", "date_last_stage_update"}),
    (20, {"date_closed", "date_last_stage_update"}),
])
def test_the_fields_kept_on_create_come_from_the_version_asked_once(make_hook, version, kept):
    """A deal's stage date goes with its create only where the server is known to keep it (19 on); an older or
    unknown version writes it after the create, which holds everywhere."""
    hook, server, _ = make_hook("jsonrpc", FakeOdoo(version=version))
    assert [set(hook.kept_on_create("crm.lead")) for _ in range(3)] == [kept] * 3
    assert hook.kept_on_create("res.partner") == frozenset()
    assert len([s for s in server.sent if s.method == "version"]) == 1


@pytest.mark.parametrize(("version", "apart"), [
    (16, ("res_model_id", "res_id", "user_id")), (17, ("res_model_id", "res_id", "user_id")),
    (18, ("res_model_id", "res_id", "user_id")), (19, ()), (20, ()),
])
def test_what_one_create_call_may_hold_once_comes_from_the_version_asked_once(make_hook, version, apart):
    """Odoo 17 refuses one create of two activities of one user on one record he does not follow yet; 19 takes it."""
    hook, server, _ = make_hook("jsonrpc", FakeOdoo(version=version))
    assert [hook.create_apart("mail.activity") for _ in range(3)] == [apart] * 3
    assert hook.create_apart("res.partner") == ()
    assert len([s for s in server.sent if s.method == "version"]) == 1


@pytest.mark.parametrize(("version", "deletes"), [(16, True), (17, True), (18, True), (19, False), (20, False)])
def test_whether_archiving_deletes_activities_comes_from_the_version_and_the_models_fields(make_hook, version,
                                                                                          deletes):
    """Odoo 17's mail.activity.mixin unlinks a record's activities on archive, 19 keeps them (a version in between
    takes the one below); a model without activities or without active never loses any."""
    hook, server, _ = make_hook("jsonrpc", FakeOdoo(version=version))
    assert hook.archive_deletes_activities({"activity_ids": {}, "active": {}}) is deletes
    assert hook.archive_deletes_activities() is deletes
    assert hook.archive_deletes_activities({"active": {}}) is False
    assert hook.archive_deletes_activities({"activity_ids": {}}) is False
    assert len([s for s in server.sent if s.method == "version"]) == 1
