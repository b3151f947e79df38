"""The sandbox's Odoo 19 mode serves the 19.0 schema: its ``fields_get`` (over JSON-2, as a 19 target is used)
equals the real Odoo 19 server's on every model the Apto pair writes or resolves, attribute for attribute
(those ``data/fields19.json`` was captured with, ``python -m crm_sandbox.odoo.capture --server odoo19``).

Compared with the real server when ``../shared/odoo19-server`` is there (one fresh database for the module),
and with the packaged capture always, so a machine without the real server still holds the sandbox to it.
"""

from __future__ import annotations

from typing import Any

import pytest

from crm_sandbox.odoo.capture import ATTRIBUTES
from crm_sandbox.odoo.schema import load_data
from crm_sandbox.odoo.testing import post_json

pytestmark = pytest.mark.integration


def _pair_models() -> list[str]:
    """The models the Apto pair (as on 19) writes, and those its lookups resolve."""
    from crm_migration.mapping.spec import load_pair

    spec = load_pair("apto_to_odoo").for_target(19)
    models = {o.model for o in spec.objects.values() if o.model}
    models |= {lk.model for lk in spec.lookups.values()}
    return sorted(models)


MODELS = _pair_models()


def json2(target, model: str, method: str, **body: Any) -> tuple[int, Any]:
    status, answer, _headers = post_json(f"{target.url}/json/2/{model}/{method}", body, {
        "Authorization": f"bearer {target.api_key}", "X-Odoo-Database": target.db})
    return status, answer


@pytest.fixture(scope="module")
def sandbox19(make_odoo_target):
    target, close = make_odoo_target("sandbox19", "t_schema19")
    yield target
    close()


@pytest.fixture(scope="module")
def odoo19(make_odoo_target):
    target, close = make_odoo_target("odoo19", "t_schema19")
    yield target
    close()


def _fields_get(target, model: str) -> dict[str, Any]:
    status, got = json2(target, model, "fields_get", attributes=list(ATTRIBUTES))
    assert status == 200, (model, got)
    return got


def _differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = [f"missing {f}" for f in sorted(want.keys() - got.keys())]
    out += [f"extra {f}" for f in sorted(got.keys() - want.keys())]
    for f in sorted(want.keys() & got.keys()):
        diff = {a: (want[f].get(a), got[f].get(a)) for a in want[f].keys() | got[f].keys()
                if want[f].get(a) != got[f].get(a)}
        if diff:
            out.append(f"{f}: {diff}")
    return out


def test_the_pair_writes_the_models_that_changed_on_19():
    assert {"res.partner", "crm.lead", "crm.stage", "mail.message", "mail.activity", "calendar.event",
            "ir.attachment", "res.users"} <= set(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=[f"odoo19-{m}" for m in MODELS])   # counted as real-19 cases
def test_sandbox19_fields_get_is_the_real_19s(model, sandbox19, odoo19):
    assert _differences(_fields_get(odoo19, model), _fields_get(sandbox19, model)) == []


@pytest.mark.parametrize("model", MODELS)
def test_sandbox19_fields_get_is_the_capture(model, sandbox19):
    captured = load_data("fields19.json")
    if model not in captured:
        pytest.skip(f"{model} is not captured (the sandbox synthesises it)")
    assert _differences(captured[model], _fields_get(sandbox19, model)) == []


def test_the_17_only_fields_are_gone_and_refused_as_the_real_19_refuses_them(sandbox19):
    """A sandbox without ../shared still answers as the real 19 (README of odoo19-server; its answers)."""
    partner, stage = _fields_get(sandbox19, "res.partner"), _fields_get(sandbox19, "crm.stage")
    assert "mobile" not in partner and "title" not in partner
    assert "team_id" not in stage and stage["team_ids"]["type"] == "many2many"
    status, got = json2(sandbox19, "res.partner", "create", vals_list=[{"name": "Pat", "mobile": "+1 555"}])
    assert (status, got["name"], got["message"]) == (500, "builtins.ValueError",
                                                     "Invalid field 'mobile' in 'res.partner'")
    status, got = json2(sandbox19, "crm.stage", "create", vals_list=[{"name": "S", "team_id": 1}])
    assert (status, got["message"]) == (500, "Invalid field 'team_id' in 'crm.stage'")
    status, got = json2(sandbox19, "res.partner.title", "search", domain=[])
    assert (status, got["message"]) == (404, "the model 'res.partner.title' does not exist")
