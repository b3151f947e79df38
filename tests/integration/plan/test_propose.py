"""The mapping the plan proposes on sandboxes whose fields differ from the default profile (``variant``): Apto (a
renamed standard field, two of the customer's own custom fields, another package's namespace) and Link app (a renamed
field, more custom fields, a custom value without a definition): nothing is lost (every field the source holds is in
the proposal, with a target or a reason), the renamed fields go where the originals went, every custom field's type
holds its values, and the proposal loads as a pair file. The default sandboxes' proposals (precision and recall
against the pair files, the files written next to the mapping in force) are checked in test_plan_pairs.py, on the
Odoo sandbox and the real Odoo 17.

One world for the module: the two plans are made once (module fixture)."""

from __future__ import annotations

import json

import pytest
import yaml
from proposal_checks import check_custom_types

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
#: the proposer reads only fields_get of the target: the sandbox's is captured from a real Odoo 17
ODOO_TARGETS = ("sandbox",)


@pytest.fixture(scope="module")
def worlds(odoo_target):
    apto = apto_sandbox.serve(port=0, scale=1, seed=7, profile="variant")
    link = link_sandbox.serve(port=0, scale=1, seed=7, profile="variant")
    out = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="jsonrpc"))
            mp.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps(apto.state.airflow_conn(apto.url)))
            mp.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps(link.state.airflow_conn(link.url)))
            for name, srv, source, pair in (("apto_variant", apto, AptoSource(AptoHook()), "apto_to_odoo"),
                                            ("link_variant", link, LinkAppSource(LinkAppHook()), "link_app_to_odoo")):
                out[name] = {"plan": build_plan(source, OdooHook(), load_pair(pair)), "server": srv, "pair": pair}
        yield out
    finally:
        apto.stop()
        link.stop()


def test_nothing_is_lost_on_a_tenant_with_renamed_and_extra_fields(worlds):
    world = worlds["link_variant"]
    plan, state = world["plan"], world["server"].state
    rows = {(r["object"], r["source field"]): r for r in plan.proposal["rows"]}
    for obj in ("companies", "contacts", "deals"):
        paths: set[str] = set()
        objects = {k for rec in state.tables[obj].values() for k, v in rec.items() if isinstance(v, dict)}
        for rec in state.tables[obj].values():
            for key, value in rec.items():
                if key == "custom_fields":
                    paths |= {f"custom_fields.{k}" for k in value}
                elif isinstance(value, dict):
                    paths |= {f"{key}.{k}" for k in value}
                elif key not in objects:                        # a record without an address has address: null
                    paths.add(key)
        for path in paths:
            r = rows[(obj, path)]                              # every field the tenant holds is in the proposal
            assert r["target"] or (r["kind"] == "not migrated" and r["reasons"]), r
    assert rows[("contacts", "job_title")]["target"] == "function"            # the renamed field
    assert rows[("companies", "custom_fields.account_tier")]["kind"] == "custom rule"
    assert rows[("companies", "custom_fields.account_tier")]["outside options"].get("Platinum", 0) > 0
    assert rows[("deals", "custom_fields.renewal_date")]["ttype"] == "date"
    legacy = rows[("deals", "custom_fields.legacy_region")]
    assert legacy["kind"] == "new x_" and legacy["target"] == "x_link_app_legacy_region"
    spec = parse_pair(yaml.safe_load(plan.proposal["yaml"]), origin="proposal")
    assert spec.objects["contacts"].fields["function"].sources == ("job_title",)
    assert spec.x_fields["crm.lead"]["x_link_app_legacy_region"]["ttype"] == "char"


def test_nothing_is_lost_on_an_org_with_renamed_and_extra_fields(worlds):
    world = worlds["apto_variant"]
    plan, state = world["plan"], world["server"].state
    rows = {(r["object"], r["source field"]): r for r in plan.proposal["rows"]}
    for obj in ("Account", "Contact", "Opportunity"):
        for fdef in state.schema[obj].fields:
            if fdef.type in ("base64", "address", "location"):
                continue
            r = rows[(obj, fdef.name)]                          # every field of the org is in the proposal
            assert r["target"] or (r["kind"] == "not migrated" and r["reasons"]), r
    variant = state.data.hard_cases["variant"]
    assert rows[("Account", "MainPhone")]["target"] == "phone"                 # the renamed standard field
    targets = {}
    for key in (*variant["customer_fields"], *variant["other_namespace_fields"]):
        r = rows[tuple(key.split("."))]
        assert r["kind"] == "custom rule" and r["target"].startswith("x_"), r
        targets[key] = r["target"]
    # Brokerly's Market__c does not land on the Apto package's x_market
    assert targets["Account.Brokerly__Market__c"] != rows[("Account", "McLabs2__Market__c")]["target"]
    spec = parse_pair(yaml.safe_load(plan.proposal["yaml"]), origin="proposal").with_namespace(plan.namespace)
    assert spec.objects["Account"].fields["phone"].sources == ("MainPhone",)
    assert "MainPhone" in spec.objects["Account"].stream_fields()
    assert "Phone" not in spec.objects["Account"].stream_fields()
    # the mapping in force reads Account.Phone, which this org lacks: the plan says so, and the proposal mends it
    assert any(u["field"] == "Phone" for u in plan.unknown_fields)
    assert "-      phone: {from: Phone, fn: phone}" in plan.proposal["diff"]
    assert "+      phone: {from: MainPhone, fn: phone}" in plan.proposal["diff"]


@pytest.mark.parametrize("name", ["apto_variant", "link_variant"])
def test_every_custom_field_gets_a_type_holding_its_values(worlds, name):
    world = worlds[name]
    check_custom_types(world["plan"], world["server"].state, apto=name.startswith("apto"))
    assert world["plan"].proposal["error"] is None
