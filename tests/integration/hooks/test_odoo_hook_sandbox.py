"""OdooHook against the Odoo sandbox over real HTTP, for every transport the sandbox speaks."""

from __future__ import annotations

import json
import logging
import os
import time

import httpx
import pytest

from crm_migration.hooks.odoo import (
    OdooAccessDenied,
    OdooError,
    OdooHook,
    OdooMissingRecord,
    OdooRecordError,
    OdooTransientError,
)

sandbox = pytest.importorskip("crm_sandbox.odoo.server")

pytestmark = pytest.mark.integration

DB = "crmtest"
API_KEY = "sandbox-api-key-0123456789"
# (transport in the connection, sandbox Odoo version, secret, the transport the hook must end up on)
TRANSPORTS = [
    ("xmlrpc", 17, "admin", "xmlrpc"),
    ("jsonrpc", 17, "admin", "jsonrpc"),
    ("auto", 17, "admin", "jsonrpc"),
    ("json2", 19, API_KEY, "json2"),
    ("auto", 19, API_KEY, "json2"),
]


@pytest.fixture(scope="module")
def servers():
    """One sandbox per Odoo version for the module; each test starts from a reset database."""
    started = {17: sandbox.serve(port=0), 19: sandbox.serve(port=0, version=19, api_key=API_KEY)}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(params=TRANSPORTS, ids=[f"{t}-sandbox{v}" for t, v, _, _ in TRANSPORTS])
def odoo(request, servers, monkeypatch):
    """``(hook, server, waits)``: a fresh database and a hook on it (retry waits recorded, not slept)."""
    transport, version, secret, wire = request.param
    server = servers[version]
    server.state.reset()
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps({
        "conn_type": "odoo", "host": server.url, "schema": DB, "login": "admin", "password": secret,
        "extra": {"transport": transport, "timeout": 5}}))
    hook = OdooHook()
    waits: list[float] = []
    hook._sleep = waits.append
    assert hook.wire.name == wire
    yield hook, server, waits
    hook.close()


def test_schema_then_keyed_batches_round_trip(odoo):
    hook, server, _ = odoo
    fid = hook.ensure_field("res.partner", "x_migration_key", "char", string="Migration key", index=True,
                            copy=False)
    assert hook.ensure_field("res.partner", "x_migration_key", "char", string="Migration key") == fid
    assert hook.calls[("ir.model.fields", "create")] == 1  # idempotent
    assert hook.fields_get("res.partner")["x_migration_key"]["type"] == "char"

    keys = [f"test:Account:{i:03d}" for i in range(7)]
    ids = hook.create_batch("res.partner", [{"name": f"Co {i}", "is_company": True, "email": None}
                                            for i in range(7)], keys=keys)
    assert len(ids) == 7 and hook.calls[("res.partner", "create")] == 1

    assert hook.write_batch("res.partner", {ids[0]: {"phone": "1"}, ids[1]: {"phone": "1"},
                                            ids[2]: {"phone": "2"}, ids[3]: {"active": False}}) == 2
    # the three phones (two values) in one load(), the archive in one write
    assert hook.calls[("res.partner", "load")] == 1 and hook.calls[("res.partner", "write")] == 1
    rows = list(hook.search_read("res.partner", [("x_migration_key", "like", "test:Account:")],
                                 ["name", "phone", "email", "x_migration_key"], page_size=3))
    assert [r["id"] for r in rows] == sorted(set(ids) - {ids[3]})  # archived one hidden, by id, no repeat
    assert hook.calls[("res.partner", "search_read")] == 3  # 6 rows in pages of 3, 3 and 0
    by_id = {r["id"]: r for r in rows}
    assert by_id[ids[0]]["phone"] == by_id[ids[1]]["phone"] == "1" and by_id[ids[2]]["phone"] == "2"
    assert by_id[ids[0]]["email"] is False  # None was sent as False
    assert by_id[ids[4]]["x_migration_key"] == keys[4]

    found = hook.find_by_keys("res.partner", [*keys, "test:Account:none"], chunk_size=4)
    assert found == dict(zip(keys, ids, strict=True))  # archived record included

    assert hook.unlink("res.partner", ids) == 7
    assert hook.find_by_keys("res.partner", keys) == {}


def test_real_and_injected_faults_are_classified(odoo):
    hook, server, waits = odoo
    with pytest.raises(OdooMissingRecord) as missing:
        hook.write_batch("res.partner", {999999: {"name": "x"}})
    assert missing.value.ids == (999999,)
    with pytest.raises(OdooRecordError) as unknown:
        hook.create_batch("res.partner", [{"name": "x", "no_such_field": 1}])
    assert unknown.value.field == "no_such_field"
    with pytest.raises(OdooRecordError) as fk:
        hook.create_batch("crm.lead", [{"name": "x", "stage_id": 999999}])
    assert fk.value.field == "stage_id"

    server.state.inject_fault("odoo", case="res.partner create without name (no field is required by fields_get)",
                              model="res.partner", method="create")
    with pytest.raises(OdooRecordError, match="Contacts require a name"):
        hook.create_batch("res.partner", [{"name": "ok"}])
    assert not waits

    server.state.inject_fault("http", status=503, count=2, model="res.partner", method="search")
    server.state.inject_fault("http", status=429, retry_after=3, model="res.partner", method="search")
    assert isinstance(hook.search_ids("res.partner", [("id", "=", 1)]), list)
    assert waits == [0.5, 1.0, 3.0]

    server.state.inject_fault("serialization", model="res.partner", method="write")
    assert hook.write_batch("res.partner", {3: {"comment": "<p>x</p>"}}) == 1
    assert hook.calls[("res.partner", "write")] == 1 and len(waits) == 4


def test_json2_answers_of_19_are_classified(servers, monkeypatch):
    """The sandbox's 19 mode answers as the real 19.0 does (409 LockError, 401, 403, 404, KeyError on write)."""
    server = servers[19]
    server.state.reset()
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps({
        "conn_type": "odoo", "host": server.url, "schema": DB, "password": API_KEY,
        "extra": {"transport": "json2", "timeout": 5}}))
    hook = OdooHook()
    waits: list[float] = []
    hook._sleep = waits.append
    server.state.inject_fault("odoo", name="odoo.exceptions.LockError", message="Cannot grab a lock on records",
                              model="res.partner", method="write")
    assert hook.write_batch("res.partner", {3: {"comment": "<p>locked once</p>"}}) == 1
    assert waits == [0.5] and hook.read("res.partner", [3], ["comment"])[0]["comment"] == "<p>locked once</p>"
    with pytest.raises(OdooRecordError) as unknown:
        hook.write_batch("res.partner", {3: {"x_nope": "1"}})
    assert unknown.value.field == "x_nope" and "Invalid field 'x_nope'" in str(unknown.value)
    with pytest.raises(OdooAccessDenied) as private:
        hook.call("res.partner", "_read", [[3]])
    assert private.value.code == 403
    with pytest.raises(OdooError, match="the model 'x_no.model' does not exist on this database") as model:
        hook.call("x_no.model", "search", [[]])
    assert type(model.value) is OdooError and model.value.code == 404
    hook.close()


def test_retries_are_bounded_then_transient(odoo):
    hook, server, waits = odoo
    server.state.inject_fault("http", status=502, count=10, model="res.partner", method="read")
    with pytest.raises(OdooTransientError):
        hook.read("res.partner", [3], ["name"])
    assert len(waits) == hook.settings.max_attempts - 1


def test_a_keyed_create_whose_answer_is_lost_is_not_duplicated(odoo):
    hook, server, waits = odoo
    hook.ensure_field("res.partner", "x_migration_key", "char", string="Migration key")
    hook.client.timeout = httpx.Timeout(0.2)  # shorter than the injected delay: the answer is lost
    hook._sleep = lambda s: time.sleep(0.6)  # the server finishes the delayed call meanwhile
    server.state.inject_fault("delay", seconds=0.35, model="res.partner", method="create")
    keys = ["test:Contact:a", "test:Contact:b"]
    ids = hook.create_batch("res.partner", [{"name": "A"}, {"name": "B"}], keys=keys)
    found = hook.find_by_keys("res.partner", keys)
    assert found == dict(zip(keys, ids, strict=True))
    assert len(hook.read("res.partner", ids, ["name"])) == 2
    rows = list(hook.search_read("res.partner", [("x_migration_key", "in", keys)], ["name"]))
    assert len(rows) == 2  # landed once, not twice


def test_wrong_secret_is_access_denied_and_never_leaks(odoo, monkeypatch, caplog):
    hook, server, _ = odoo
    conn = json.loads(os.environ["AIRFLOW_CONN_ODOO_DEFAULT"])
    conn["password"] = "wrong-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps({**conn, "extra": {
        "transport": hook.wire.name, "timeout": 5}}))
    bad = OdooHook()
    bad._sleep = lambda s: pytest.fail("access denied must not be retried")
    bad._log = logging.getLogger("test.odoo_sandbox_hook")  # stdlib logger, so caplog sees the lines
    caplog.set_level(logging.DEBUG, logger="test.odoo_sandbox_hook")
    with pytest.raises(OdooAccessDenied) as info:
        bad.search_ids("res.partner", [])
    assert "wrong-secret-value" not in str(info.value) and "wrong-secret-value" not in caplog.text
    assert "Odoo POST" in caplog.text  # the debug lines were captured, and carry no secret


def test_xmlrpc_specifics_against_the_sandbox(servers, monkeypatch):
    server = servers[17]
    server.state.reset()
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", json.dumps({
        "conn_type": "odoo", "host": server.url, "schema": DB, "login": "admin", "password": "admin",
        "extra": {"transport": "xmlrpc"}}))
    hook = OdooHook()
    with pytest.raises(OdooRecordError, match="32-bit"):
        hook.create_batch("res.partner", [{"name": "big", "color": 2**31}])
    assert hook.search_ids("res.partner", [("name", "=", "big")]) == []
    (lead,) = hook.create_batch("crm.lead", [{"name": "lost deal"}])
    # lost = a write, never action_set_lost (which returns None: Fault 1 after committing)
    assert hook.write_batch("crm.lead", {lead: {"active": False, "probability": 0}}) == 1
    (row,) = hook.read("crm.lead", [lead], ["active", "probability"], context={"active_test": False})
    assert row["active"] is False and row["probability"] == 0
    hook.close()
