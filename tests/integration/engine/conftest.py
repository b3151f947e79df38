"""Fixtures for loader tests: a fresh Odoo per test (the sandbox, then a real Odoo 17 database); the fresh state DB
is tests/conftest.py's ``state``."""

from __future__ import annotations

import pytest

#: the models the engine tests write keyed records to (their ``x_migration_key`` field made once per session on a
#: real server: each creation reloads Odoo's registry, seconds per test)
KEYED_MODELS = ("res.partner", "crm.lead", "mail.message", "mail.activity", "ir.attachment")


def keyed_models(target) -> None:
    """Prepare a real server's database for the engine tests: the key fields of :data:`KEYED_MODELS`."""
    from crm_migration.engine.schema import ensure_migration_keys
    from crm_migration.hooks.odoo import OdooHook

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", target.conn_json(transport="json2" if target.api_key else "xmlrpc"))
        hook = OdooHook()
        ensure_migration_keys(hook, list(KEYED_MODELS))
        hook.close()


@pytest.fixture(params=("sandbox", "odoo17", "odoo19"))
def odoo_target(request, make_odoo_target):
    """A fresh Odoo for each test: a new sandbox, or a new database of the real server (a copy of one with the key
    fields already made)."""
    target, close = make_odoo_target(request.param, "t_engine", prepare=keyed_models)
    yield target
    close()


@pytest.fixture
def odoo_conn_json(odoo_target):
    return odoo_target.conn_json(transport="json2" if odoo_target.api_key else "xmlrpc")


@pytest.fixture
def odoo(odoo_conn_json, monkeypatch):
    from crm_migration.engine.schema import ensure_migration_keys
    from crm_migration.hooks.odoo import OdooHook

    monkeypatch.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_conn_json)
    hook = OdooHook()
    ensure_migration_keys(hook, ["res.partner", "crm.lead", "ir.attachment"])
    hook.calls.clear()
    yield hook
    hook.close()

