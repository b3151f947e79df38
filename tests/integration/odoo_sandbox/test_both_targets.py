"""Facts of Odoo the tool relies on, checked on the sandbox and on the real Odoo 17 (one body each).

Where the two disagree the real server is right and the sandbox is mended; each case here is one such
fact (``../shared/odoo17/loader-traps.md``, ``behaviours.json``).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpc(odoo_target):
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def hook(odoo_target):
    from crm_migration.engine.schema import ensure_migration_keys
    from crm_migration.hooks.odoo import OdooHook

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="jsonrpc"))
        h = OdooHook()
        ensure_migration_keys(h, ["res.partner", "crm.lead", "mail.activity"])
        yield h
        h.close()


@pytest.fixture(scope="module")
def other_user(rpc):
    """A sales rep who is not the migration user."""
    return rpc("res.users", "create", {"name": "Rep Other", "login": "rep.other@example.com",
                                       "email": "rep.other@example.com"})


def _mail_counts(rpc) -> tuple[int, int]:
    return (rpc("mail.mail", "search_count", [], context={"active_test": False}),
            rpc("mail.message", "search_count", [("message_type", "=", "user_notification")]))


def test_reading_only_id_answers_deleted_records_too_and_the_hook_does_not(rpc, hook):
    pid = rpc("res.partner", "create", {"name": "Soon gone"})
    rpc("res.partner", "unlink", [pid])
    assert rpc("res.partner", "read", [pid], ["id"]) == [{"id": pid}]      # Odoo fetches no column
    assert rpc("res.partner", "read", [pid], ["name"]) == []
    assert hook.read("res.partner", [pid], ["id"]) == []
    archived = rpc("res.partner", "create", {"name": "Archived", "active": False})
    assert hook.read("res.partner", [pid, archived], ["id"]) == [{"id": archived}]


def test_an_activity_assigned_to_another_user_mails_them_unless_quick_update(rpc, hook, other_user):
    lead = rpc("crm.lead", "create", {"name": "Deal for the rep"})
    (model_id,) = rpc("ir.model", "search", [("model", "=", "crm.lead")])
    vals = {"res_model_id": model_id, "res_id": lead, "user_id": other_user, "summary": "Call back",
            "date_deadline": "2030-01-01"}
    before = _mail_counts(rpc)
    rpc("mail.activity", "create", vals, context={"tracking_disable": True, "mail_create_nolog": True,
                                                   "mail_create_nosubscribe": True, "mail_notrack": True})
    mails, notes = _mail_counts(rpc)
    assert (mails - before[0], notes - before[1]) == (1, 1)       # the trap: the four keys are not enough
    before = (mails, notes)
    hook.create_batch("mail.activity", [dict(vals, summary="Keyed")], keys=["test:Task:1"])
    assert _mail_counts(rpc) == before                          # the migration context queues nothing
