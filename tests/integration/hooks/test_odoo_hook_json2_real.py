"""OdooHook's JSON-2 transport against the real Odoo 19.0 server (``../shared/odoo19-server``).

One database and one API key for the module. ``transport: auto`` must pick JSON-2 with a key and JSON-RPC
without one; the round trips a migration makes must come back as sent; Odoo 19's error answers must be
classified like the RPC faults, with no server traceback (``debug``) and no key in what a person reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import httpx
import pytest

from crm_migration.hooks.odoo import (
    MIGRATION_KEY,
    FieldDef,
    OdooAccessDenied,
    OdooError,
    OdooHook,
    OdooMissingRecord,
    OdooRecordError,
)

pytestmark = pytest.mark.integration

CONN = "odoo_json2_real"
LOGGER = "test.odoo_hook_json2_real"


class Recording(httpx.HTTPTransport):
    """The network, with the path of every request kept (which endpoint the hook really used)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


@pytest.fixture(scope="module")
def odoo19(real_odoo19):
    """``(url, database, api key)``: a fresh database of the real Odoo 19 and an API key of admin."""
    db = real_odoo19.new_db("t_json2_real")
    try:
        yield real_odoo19.url, db, real_odoo19.api_key(db)
    finally:
        real_odoo19.drop_db(db)


@pytest.fixture(scope="module")
def keyed(odoo19):
    """``x_migration_key`` on the models the round trips write, made over JSON-2 in one call."""
    url, db, key = odoo19
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({
            "conn_type": "odoo", "host": url, "schema": db, "password": key, "extra": {"transport": "json2"}}))
        hook = OdooHook(CONN)
        created = hook.ensure_fields([FieldDef(m, MIGRATION_KEY, "char", "Migration key", index=True)
                                      for m in ("res.partner", "mail.message", "ir.attachment")])
        assert len(created) == 3
        assert hook.fields_get("res.partner")[MIGRATION_KEY]["type"] == "char"
        hook.close()


@pytest.fixture
def make_hook(odoo19, monkeypatch):
    """``make(password, transport="auto") -> (hook, recorded paths)`` on the module's database."""
    url, db, _ = odoo19
    hooks: list[OdooHook] = []

    def make(password: str, transport: str = "auto") -> tuple[OdooHook, list[str]]:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({
            "conn_type": "odoo", "host": url, "schema": db, "login": "admin", "password": password,
            "extra": {"transport": transport, "timeout": 30, "max_attempts": 2}}))
        wire = Recording()
        hook = OdooHook(CONN, transport=wire)
        hook._sleep = lambda _s: None
        hook._log = logging.getLogger(LOGGER)  # a stdlib logger, so caplog sees the hook's lines
        hooks.append(hook)
        return hook, wire.paths

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def hook(odoo19, make_hook):
    return make_hook(odoo19[2])[0]


def test_auto_with_an_api_key_uses_json2(odoo19, make_hook, caplog):
    key = odoo19[2]
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    hook, paths = make_hook(key)
    assert hook.wire.name == "json2"
    assert hook.version()["server_version_info"][0] == 19
    assert hook.uid == 2  # admin, from the key itself (res.users/context_get)
    ok, message = hook.test_connection()
    assert ok and "Odoo 19.0" in message and "transport json2" in message
    assert hook.search_ids("res.partner", [("id", "=", 3)]) == [3]
    assert paths[-1] == "/json/2/res.partner/search"
    assert not [p for p in paths if p.startswith(("/jsonrpc", "/xmlrpc"))][1:], paths  # only version asked
    assert key not in caplog.text and key not in message


def test_auto_without_a_key_falls_back_to_jsonrpc(make_hook, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    hook, paths = make_hook("admin")  # admin's password: JSON-2 answers 401, JSON-RPC takes it
    assert hook.wire.name == "jsonrpc"
    assert hook.uid == 2
    assert hook.search_ids("res.partner", [("id", "=", 3)]) == [3]
    assert paths[-1] == "/jsonrpc"
    assert "JSON-2 not usable" in caplog.text and "using JSON-RPC" in caplog.text
    assert "Traceback" not in caplog.text and 'File "' not in caplog.text


def test_a_wrong_key_is_an_access_error_without_the_key(make_hook, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    bad = "0" * 40
    hook, _ = make_hook(bad, transport="json2")
    with pytest.raises(OdooAccessDenied) as err:
        hook.search_ids("res.partner", [])
    assert err.value.code == 401 and "Invalid apikey" in str(err.value)
    assert bad not in str(err.value) and bad not in caplog.text
    ok, message = hook.test_connection()
    assert not ok and "Invalid apikey" in message and bad not in message


def test_create_write_read_search_read_unlink_round_trip(hook, keyed):
    [pid] = hook.create_batch("res.partner", [{"name": "Zoë Ångström", "email": "zoe@example.com"}],
                              keys=["test:Contact:1"])
    assert hook.find_by_keys("res.partner", ["test:Contact:1"]) == {"test:Contact:1": pid}
    assert hook.write_batch("res.partner", {pid: {"name": "Zoë Ångström-Ørsted", "comment": None}}) == 1
    [row] = hook.read("res.partner", [pid], ["name", "email", "comment"])
    assert row == {"id": pid, "name": "Zoë Ångström-Ørsted", "email": "zoe@example.com", "comment": False}
    rows = list(hook.search_read("res.partner", [("x_migration_key", "=like", "test:%")], ["name"], page_size=1))
    assert [r["id"] for r in rows] == [pid]
    assert hook.unlink("res.partner", [pid]) == 1
    assert hook.read("res.partner", [pid], ["id"]) == []
    with pytest.raises(OdooMissingRecord) as err:
        hook.unlink("res.partner", [pid])
    assert err.value.ids == (pid,) and err.value.code == 404


def test_fields_get_is_the_19_schema(hook):
    partner = hook.fields_get("res.partner")
    assert partner["name"]["type"] == "char" and partner["parent_id"]["relation"] == "res.partner"
    assert "mobile" not in partner  # gone in 19.0
    assert "team_id" not in hook.fields_get("crm.stage") and "team_ids" in hook.fields_get("crm.stage")


def test_a_historical_datetime_and_binary_bytes_come_back_unchanged(hook, keyed):
    [pid] = hook.create_batch("res.partner", [{"name": "Chatter"}], keys=["test:Account:dt"])
    [mid] = hook.create_batch("mail.message", [{
        "model": "res.partner", "res_id": pid, "body": "<p>old call</p>", "message_type": "comment",
        "date": "2019-03-04 05:06:07"}], keys=["test:Task:dt"])
    assert hook.read("mail.message", [mid], ["date"])[0]["date"] == "2019-03-04 05:06:07"
    raw = bytes(range(256)) + "é\x00ü".encode("latin-1") + b"\xff\xfe"
    [aid] = hook.create_batch("ir.attachment", [{
        "name": "blob.bin", "res_model": "res.partner", "res_id": pid,
        "datas": base64.b64encode(raw).decode()}], keys=["test:Attachment:bin"])
    [att] = hook.read("ir.attachment", [aid], ["datas", "file_size", "checksum"])
    assert base64.b64decode(att["datas"]) == raw
    assert att["file_size"] == len(raw) and att["checksum"] == hashlib.sha1(raw).hexdigest()


# what a person reads for each of Odoo 19's error answers: (call, error class, HTTP status, field, words)
ERRORS = {
    "403 AccessError": (("res.partner", "_read", [[3]]), OdooAccessDenied, 403, None, "Private methods"),
    "404 MissingError": (("res.partner", "write", [[999999], {"name": "x"}]), OdooMissingRecord, 404, None,
                         "Record does not exist"),
    "404 unknown model": (("x_no.such_model", "search", [[]]), OdooError, 404, None,
                          "the model 'x_no.such_model' does not exist on this database"),
    "404 unknown method": (("res.partner", "no_such_method", [[3]]), OdooError, 404, None,
                           "The method 'res.partner.no_such_method' does not exist"),
    "422 ValidationError names the field": (("crm.stage", "create", [[{"name": False}]]), OdooRecordError, 422,
                                            "name", "Missing required value for the field 'Stage Name'"),
    "422 ValidationError": (("res.partner", "create", [[{"name": False}]]), OdooRecordError, 422, None,
                            "Contacts require a name"),
    "500 ValueError invalid field": (("res.partner", "create", [[{"name": "a", "mobile": "+1 555"}]]),
                                     OdooRecordError, 500, "mobile", "Invalid field 'mobile' in 'res.partner'"),
    "500 KeyError on write names the field": (("res.partner", "write", [[3], {"mobile": "+1 555"}]), OdooRecordError,
                                             500, "mobile", "Invalid field 'mobile' in 'res.partner'"),
    "500 ValueError on read names the field": (("res.partner", "read", [[3], ["mobile"]]), OdooRecordError, 500,
                                               "mobile", "Invalid field 'mobile' on 'res.partner'"),
    "500 ValueError selection": (("crm.lead", "create", [[{"name": "a", "priority": "9"}]]), OdooRecordError,
                                 500, "priority", "Wrong value for crm.lead.priority"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error_answers_are_classified_without_the_traceback(odoo19, hook, case, caplog):
    (model, method, args), cls, status, field, words = ERRORS[case]
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with pytest.raises(cls) as err:
        hook.call(model, method, args)
    exc = err.value
    assert type(exc) is cls, f"{type(exc).__name__}: {exc}"
    assert exc.code == status and words in str(exc)
    if cls is OdooRecordError:
        assert exc.field == field
    for text in (str(exc), caplog.text):
        assert "Traceback" not in text and 'File "' not in text and ".py\", line" not in text
        assert odoo19[2] not in text
    assert hook.calls[(model, method)] == 0  # refused, not retried


def test_an_unknown_database_is_a_clear_error(odoo19, make_hook, monkeypatch):
    url, _, key = odoo19
    hook, _ = make_hook(key, transport="json2")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({
        "conn_type": "odoo", "host": url, "schema": "no_such_db", "password": key,
        "extra": {"transport": "json2", "max_attempts": 1}}))
    hook = OdooHook(CONN)
    hook._log = logging.getLogger(LOGGER)
    with pytest.raises(OdooError) as err:
        hook.search_ids("res.partner", [])
    assert err.value.code == 404 and "does database 'no_such_db' exist" in str(err.value)
    assert key not in str(err.value)
    hook.close()
