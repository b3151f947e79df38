"""Fixtures for loader tests: the Odoo sandbox over real HTTP and a fresh state DB."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def odoo_server():
    from crm_sandbox.odoo.server import serve

    server = serve(port=0)
    yield server
    server.stop()


@pytest.fixture
def odoo_conn_json(odoo_server):
    return json.dumps({"conn_type": "odoo", "host": odoo_server.url, "schema": "crmtest", "login": "admin",
                       "password": "admin", "extra": {"transport": "xmlrpc"}})


@pytest.fixture
def odoo(odoo_conn_json, monkeypatch):
    from crm_migration.engine.schema import ensure_migration_keys
    from crm_migration.hooks.odoo import OdooHook

    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_conn_json)
    hook = OdooHook()
    ensure_migration_keys(hook, ["res.partner", "crm.lead"])
    hook.calls.clear()
    yield hook
    hook.close()


@pytest.fixture
def state(state_db):
    from crm_migration.hooks.state import MigrationStateHook

    hook = MigrationStateHook()
    hook.migrate()
    yield hook
    hook.close()
