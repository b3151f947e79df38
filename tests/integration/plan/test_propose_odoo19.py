"""The proposed mapping against a real Odoo 19 (its fields_get differs from 17's: no res.partner/crm.lead ``mobile`` nor
``title``, crm.stage ``team_ids``): both pairs' plans propose only targets Odoo 19 has or the proposal declares as
typed x_ fields that 19 can create, reproduce the pair files as resolved for 19 (the ``targets: "19"`` overrides:
a contact's mobile in ``x_mobile``), and type every custom field to hold its values.

One world for the module (the two plans are made once); on the sandbox and Odoo 17 the same checks are
test_plan_pairs.py's."""

from __future__ import annotations

import json

import pytest
import yaml
from proposal_checks import FLOORS, check_custom_types, score

from crm_migration.engine.plan import build_plan
from crm_migration.hooks.apto import AptoHook
from crm_migration.hooks.link_app import LinkAppHook
from crm_migration.hooks.odoo import OdooHook
from crm_migration.mapping.spec import load_pair, parse_pair
from crm_migration.streams.apto_source import AptoSource
from crm_migration.streams.link_app_source import LinkAppSource

apto_sandbox = pytest.importorskip("crm_sandbox.apto.server")
link_sandbox = pytest.importorskip("crm_sandbox.link_app.server")

pytestmark = pytest.mark.integration
ODOO_TARGETS = ("odoo19",)
PAIRS = ("apto_to_odoo", "link_app_to_odoo")
#: fields Odoo 19 removed from the record objects' models (../shared/odoo19-server/README.md)
REMOVED_ON_19 = {"res.partner": {"mobile", "title", "date", "additional_info", "team_id"},
                 "crm.lead": {"mobile", "title", "kanban_state"}}


@pytest.fixture(scope="module")
def world(odoo_target):
    apto = apto_sandbox.serve(port=0, scale=1, seed=7)
    link = link_sandbox.serve(port=0, scale=1, seed=7)
    rpc = odoo_target.rpc()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="json2"))
            mp.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps(apto.state.airflow_conn(apto.url)))
            mp.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps(link.state.airflow_conn(link.url)))
            plans = {pair: build_plan(source, OdooHook(), load_pair(pair)) for pair, source in (
                ("apto_to_odoo", AptoSource(AptoHook())), ("link_app_to_odoo", LinkAppSource(LinkAppHook())))}
        fields = {m: rpc(m, "fields_get", [], attributes=["type", "relation"]) for m in ("res.partner", "crm.lead")}
        ttypes = {k for k, _label in rpc("ir.model.fields", "fields_get", ["ttype"], attributes=["selection"])[
            "ttype"]["selection"]}
        yield {"plans": plans, "fields": fields, "ttypes": ttypes,
               "states": {"apto_to_odoo": apto.state, "link_app_to_odoo": link.state}}
    finally:
        apto.stop()
        link.stop()


@pytest.mark.parametrize("pair", PAIRS)
def test_the_proposal_on_odoo19_names_only_fields_19_has_or_declares(world, pair):
    plan = world["plans"][pair]
    prop = plan.proposal
    assert prop["error"] is None
    spec = parse_pair(yaml.safe_load(prop["yaml"]), origin="proposal").with_namespace(plan.namespace or None)
    spec = spec.for_target(19)
    for name, entries in prop["entries"].items():
        model = spec.objects[name].model
        have, declared = world["fields"][model], spec.x_fields.get(model) or {}
        for target in entries:
            assert target in have or target in declared, (name, target)
            assert target not in REMOVED_ON_19[model], (name, target)
        # every field of the object as resolved for 19 exists there or is an x_ field it declares
        for target in spec.objects[name].fields:
            assert target in have or target in declared, (name, target)
    # what the pair file resolves for 19 (a contact's mobile in x_mobile), reproduced
    result = score(plan, pair, version=19)
    assert (result["precision"], result["recall"]) >= FLOORS[pair], result
    mobile = next(r for r in prop["rows"] if r["object"] in ("Contact", "contacts")
                  and r["source field"] in ("MobilePhone", "mobile"))
    assert mobile["target"] == "x_mobile" and mobile["transform"] == "phone", mobile


@pytest.mark.parametrize("pair", PAIRS)
def test_every_x_field_of_the_proposal_is_typed_for_19_and_holds_its_values(world, pair):
    plan = world["plans"][pair]
    spec = parse_pair(yaml.safe_load(plan.proposal["yaml"]), origin="proposal").for_target(19)
    for model, fields in spec.x_fields.items():
        for x_name, decl in fields.items():
            assert decl["ttype"] in world["ttypes"], (model, x_name, decl)
            if decl.get("relation"):
                assert decl["relation"] in ("res.partner", "crm.lead", "crm.team", "res.users"), (x_name, decl)
            have = world["fields"].get(model, {}).get(x_name)
            assert have is None or have["type"] == decl["ttype"], (x_name, have, decl)
    rows = [r for r in plan.proposal["rows"] if r["target"] and str(r["target"]).startswith("x_")
            and r["kind"] in ("custom rule", "new x_")]
    assert rows and all(r["ttype"] in world["ttypes"] for r in rows)
    check_custom_types(plan, world["states"][pair], apto=pair == "apto_to_odoo")
