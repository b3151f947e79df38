"""The plan of both pairs, one test body each, against their source sandboxes (Apto org, Link app tenant) and each
Odoo target (the Odoo sandbox and the real Odoo 17): what the report names equals what the source holds (counts,
custom field definitions with types and options, owners matched / falling back / matching an archived Odoo user,
stages per pipeline, the cycle and self-parent, values outside their picklist, the automations exported), and the
source requests stay bounded: Link app exactly one request per page of each resource, never one per record.

One Odoo database per target for the module; the two plans of a target are made once (module fixture)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from proposal_checks import FLOORS, check_custom_types, score

from crm_migration.engine.plan import build_plan
from crm_migration.hooks.apto import AptoHook
from crm_migration.hooks.link_app import LinkAppHook
from crm_migration.hooks.odoo import OdooHook
from crm_migration.mapping.spec import load_pair, parse_pair, thaw
from crm_migration.reports.plan import (
    AUTOMATION_FILE,
    IN_FORCE_FILE,
    PLAN_FILE,
    PROPOSAL_DIFF,
    PROPOSAL_FILE,
    PROPOSAL_PAGE,
    write_plan_report,
)
from crm_migration.streams.apto_source import AptoSource
from crm_migration.streams.link_app_source import LinkAppSource

apto_sandbox = pytest.importorskip("crm_sandbox.apto.server")
link_sandbox = pytest.importorskip("crm_sandbox.link_app.server")

pytestmark = pytest.mark.integration
#: a world whose Odoo admin has an email: 19's template admin has none, so its matched owners would fall back
ODOO_TARGETS = ("sandbox", "odoo17")

PAIRS = ("apto_to_odoo", "link_app_to_odoo")
PAGE = 25                      # the Link app connection's page size: several pages per resource
READ_METHODS = {"search_read", "search_count", "search", "read", "fields_get", "name_search", "default_get"}


class AptoWorld:
    """The Apto org of the sandbox and what a plan of it must find (computed from the generated org)."""

    pair = "apto_to_odoo"
    source_name = "Apto"

    def __init__(self, server) -> None:
        self.server, self.org = server, server.state
        self.jane = next(i for i, u in self.org.tables["User"].items() if u["Name"] == "Jane Broker")

    def env(self) -> dict[str, str]:
        return {"AIRFLOW_CONN_APTO_DEFAULT": json.dumps(self.org.airflow_conn(self.server.url))}

    def source(self) -> AptoSource:
        return AptoSource(AptoHook())

    def reset_stats(self) -> None:
        self.org.reset_stats()

    def secrets(self) -> list[str]:
        return [self.org.client_secret, "SANDBOXTOKEN", "sandbox-password"]

    def _live(self, obj: str, keep=lambda r: True, deleted: bool = False) -> int:
        return sum(1 for r in self.org.tables[obj].values() if bool(r.get("IsDeleted")) == deleted and keep(r))

    def counts(self) -> dict[str, tuple[int, int | None]]:
        return {o: (self._live(o), self._live(o, deleted=True)) for o in ("Account", "Contact", "Opportunity")}

    def definitions(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        return {(obj, f.name): (f.type, list(f.picklist)) for obj in ("Account", "Contact", "Opportunity")
                for f in self.org.schema[obj].fields if f.name.endswith("__c")}

    def users(self) -> dict[str, dict[str, Any]]:
        return {i: {"name": u["Name"], "email": u["Email"]} for i, u in self.org.tables["User"].items()}

    def odoo_users(self) -> list[str]:
        return [self.org.tables["User"][self.jane]["Email"].lower()]     # in another case: matched case-insensitively

    def unmatched(self) -> set[str]:
        return set(self.org.info()["hard_cases"]["user_unmatched"]) - {self.jane}

    def owned(self, fallback: set[str]) -> tuple[str, int]:
        return "Account", self._live("Account", lambda r: r["OwnerId"] in fallback)

    def pipelines(self) -> dict[str, list[str]]:
        return self.org.info()["pipelines"]

    def won(self) -> set[str]:
        return {"Closed Won", "Lease Signed"}

    def cycle(self) -> tuple[list[str], str]:
        hard = self.org.info()["hard_cases"]
        return list(hard["account_cycle"]), hard["account_self_parent"]

    def outside(self) -> dict[tuple[str, str], str]:
        return {tuple(k.split(".")): rid for k, rid in self.org.info()["hard_cases"]["picklist_outside"].items()}

    def automations(self) -> set[str]:
        return {rid for rows in self.org.data.tooling.values() for rid in rows}

    def check_requests(self, plan) -> None:
        assert plan.source_calls == self.org.get_stats()["total"]      # the plan's own record agrees with the org
        assert plan.source_calls < 120, plan.source_calls              # COUNT()s, describes and samples


class LinkWorld:
    """The Link app tenant of the sandbox and what a plan of it must find (computed from the tenant)."""

    pair = "link_app_to_odoo"
    source_name = "Link app"

    def __init__(self, server) -> None:
        self.server, self.tenant = server, server.state
        self.hard = self.tenant.hard_cases

    def env(self) -> dict[str, str]:
        conn = self.tenant.airflow_conn(self.server.url)
        conn["extra"] = {**conn.get("extra", {}), "page_size": PAGE}
        return {"AIRFLOW_CONN_LINK_APP_DEFAULT": json.dumps(conn)}

    def source(self) -> LinkAppSource:
        return LinkAppSource(LinkAppHook())

    def reset_stats(self) -> None:
        self.tenant.reset_stats()

    def secrets(self) -> list[str]:
        return [self.tenant.token]

    def counts(self) -> dict[str, tuple[int, int | None]]:
        t = self.tenant.tables
        acts = t["activities"].values()
        return {"companies": (len(t["companies"]), len(self.hard["deleted"]["companies"])),
                "contacts": (len(t["contacts"]), len(self.hard["deleted"]["contacts"])),
                "deals": (len(t["deals"]), len(self.hard["deleted"]["deals"])),
                "activities": (sum(a["type"] != "meeting" and a["done"] is not False for a in acts), None),
                "open_activities": (sum(a["type"] in ("task", "call") and a["done"] is False for a in acts), None),
                "meetings": (sum(a["type"] == "meeting" for a in acts), None),
                "stages": (sum(len(p["stages"]) for p in t["pipelines"].values()), None)}

    def definitions(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        types = {"text": "string", "number": "double", "multiselect": "multipicklist"}
        return {(_plural(d["object"]), f"custom_fields.{d['key']}"): (types.get(d["type"], d["type"]),
                                                                      list(d["options"] or []))
                for d in self.tenant.tables["custom_fields"].values()}

    def users(self) -> dict[str, dict[str, Any]]:
        return {i: {"name": u["name"], "email": u["email"]} for i, u in self.tenant.tables["users"].items()}

    def odoo_users(self) -> list[str]:
        return [f"{login}@example.com" for login in self.tenant.data.odoo_logins]

    def unmatched(self) -> set[str]:
        return set(self.hard["users_unmatched"])

    def owned(self, fallback: set[str]) -> tuple[str, int]:
        return "deals", sum(d["owner_id"] in fallback for d in self.tenant.tables["deals"].values())

    def pipelines(self) -> dict[str, list[str]]:
        return {p["id"]: [s["id"] for s in p["stages"]] for p in self.tenant.tables["pipelines"].values()}

    def won(self) -> set[str]:
        return {s["name"] for p in self.tenant.tables["pipelines"].values() for s in p["stages"] if s["is_won"]}

    def cycle(self) -> tuple[list[str], str]:
        return [str(i) for i in self.hard["company_cycle"]], str(self.hard["company_self_parent"])

    def outside(self) -> dict[tuple[str, str], str]:
        out = {}
        for key in ("picklist_outside", "multiselect_outside"):
            for res, rows in self.hard[key].items():
                for rid, values in rows.items():
                    for field in values:
                        out[(res, f"custom_fields.{field}")] = rid
        return out

    def automations(self) -> set[str]:
        return set(self.tenant.tables["automations"])

    def check_requests(self, plan) -> None:
        per_path = plan.requests_per_path()
        assert per_path == self.tenant.get_stats()["requests"]         # the plan's own record agrees with the tenant
        for res, rows in self.tenant.tables.items():                   # one request per page of each resource
            assert per_path[f"/api/v1/{res}"] == max(1, math.ceil(len(rows) / PAGE)), res
        assert per_path["/api/v1/deleted"] == 1
        records = sum(len(rows) for rows in self.tenant.tables.values())
        assert plan.source_calls == sum(per_path.values()) < records / PAGE + len(per_path) + 1


def _plural(obj: str) -> str:
    return obj[:-1] + "ies" if obj.endswith("y") else obj + "s"


@pytest.fixture(scope="module")
def worlds():
    apto = apto_sandbox.serve(port=0, scale=1, seed=7)
    link = link_sandbox.serve(port=0, scale=1, seed=7)
    yield {"apto_to_odoo": AptoWorld(apto), "link_app_to_odoo": LinkWorld(link)}
    apto.stop()
    link.stop()


@pytest.fixture(scope="module")
def plans(worlds, odoo_target, tmp_path_factory):
    """Both plans on one Odoo database: the source owners that must match have Odoo users; one owner that would
    fall back matches an archived Odoo user instead (the Apto module covers records already keyed)."""
    archived: dict[str, str] = {}
    new_users: list[dict[str, Any]] = []
    for pair, w in worlds.items():
        new_users += [{"name": login.split("@")[0], "login": login} for login in w.odoo_users()]
        users = w.users()
        victim = min(i for i in w.unmatched() if users[i]["email"])       # an owner with an email no user has
        archived[pair] = victim
        new_users.append({"name": f"{users[victim]['name']} (archived)", "login": users[victim]["email"].lower(),
                          "active": False})
    odoo_target.rpc()("res.users", "create", new_users)                 # one call: a real server is slow per user
    out: dict[str, dict[str, Any]] = {}
    root = tmp_path_factory.mktemp("plans")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="jsonrpc"))
        for w in worlds.values():
            for k, v in w.env().items():
                mp.setenv(k, v)
        for pair, w in worlds.items():
            w.reset_stats()
            odoo = OdooHook()
            plan = build_plan(w.source(), odoo, load_pair(pair))
            html = write_plan_report(plan, pair=pair, run_id=f"manual__plan_{pair}", root=root)
            out[pair] = {"plan": plan, "world": w, "html": html, "odoo_calls": dict(odoo.calls),
                         "archived": archived[pair]}
    return out


@pytest.fixture(params=PAIRS)
def run(request, plans):
    return plans[request.param]


def test_counts_equal_the_source(run):
    rows = {r["object"]: r for r in run["plan"].objects}
    expected = run["world"].counts()
    assert {o: (rows[o]["live"], rows[o]["deleted"]) for o in expected} == expected
    assert any(d for _live, d in expected.values())           # deletions are counted, not only zeros


def test_custom_field_definitions_with_types_options_and_x_fields(run):
    plan, world = run["plan"], run["world"]
    rows = {(c["object"], c["source field"]): c for c in plan.custom_fields}
    expected = world.definitions()
    assert {k: (rows[k]["source type"], (rows[k]["options"] or "").split("; ") if rows[k]["options"] else [])
            for k in expected} == {k: (t, opts if t in ("picklist", "multipicklist") else [])
                                   for k, (t, opts) in expected.items()}
    type_map = load_pair(world.pair).custom_fields.type_map
    planned = [r for r in rows.values() if r["status"] == "x_ field planned"]
    assert len(planned) >= len(expected) * 2 // 3
    for r in planned:
        assert r["x_ field"].startswith("x_") and r["odoo model"] in ("res.partner", "crm.lead")
        if r["source type"] in ("picklist", "multipicklist", "date", "boolean", "double"):
            assert r["x_ type"] == type_map[r["source type"]], r
    fields = {(f["odoo model"], f["field"]) for f in plan.fields_to_create}
    assert {(r["odoo model"], r["x_ field"]) for r in planned} <= fields


def test_owners_matched_fallback_and_archived(run):
    plan, world = run["plan"], run["world"]
    owners = {str(o["source user"]): o for o in plan.owners}
    assert set(owners) == set(world.users())                          # every user, active or not
    archived = run["archived"]
    fallback = world.unmatched() - {archived}
    assert {i for i, o in owners.items() if not o["matched"]} == fallback
    assert all(owners[i]["odoo login"] == "admin" and "fallback user admin" in owners[i]["reason"] for i in fallback)
    assert owners[archived]["matched"] and owners[archived]["odoo user active"] is False
    assert "archived" in owners[archived]["reason"]
    assert any("archived Odoo user" in p["message"] and owners[archived]["name"] in p["message"]
               for p in plan.problems if p["severity"] == "warning")
    obj, n = world.owned(fallback)
    going = next(r for r in plan.fallback_records if r["object"] == obj)
    assert going["records going to the fallback user"] == n > 0
    assert plan.fallback_user_id is not None and not any(p["severity"] == "blocking" for p in plan.problems)


def test_stages_per_pipeline(run):
    plan, world = run["plan"], run["world"]
    by_pipeline: dict[str, list[str]] = {}
    for s in plan.stages:
        by_pipeline.setdefault(str(s["pipeline id"]), []).append(str(s["stage"]))
    assert by_pipeline == world.pipelines()
    assert {s["label"] for s in plan.stages if s["won"]} == world.won()
    assert len({s["key"] for s in plan.stages}) == len(plan.stages)
    source = load_pair(world.pair).source
    teams = {str(t["pipeline id"]): (t["key"], t["action"]) for t in plan.teams}
    assert set(teams) == set(world.pipelines()) and {a for _k, a in teams.values()} == {"create"}
    assert all(k.startswith(f"{source}:") and k.endswith(f":{p}") for p, (k, _a) in teams.items())
    assert all(s["key"].startswith(f"{source}:") and s["key"].endswith(f":{s['pipeline id']}/{s['stage']}")
               for s in plan.stages)


def test_cycles_and_values_outside_their_picklist(run):
    plan, world = run["plan"], run["world"]
    cycle, selfp = world.cycle()
    found = {c["record cut"]: c for c in plan.cycles}
    assert set(found) == {min(cycle), selfp}
    assert found[min(cycle)]["kind"] == "cycle of 3" and set(found[min(cycle)]["cycle ids"].split(" → ")) == set(cycle)
    assert found[selfp]["kind"] == "self-parent"
    outside = {(b["object"], b["field"]): b["example id"] for b in plan.bad_data
               if b["check"] == "value outside the picklist"}
    assert {k: outside.get(k) for k in world.outside()} == world.outside()


def test_automations_exported(run):
    ref = json.loads((run["html"].parent / AUTOMATION_FILE).read_text(encoding="utf-8"))
    assert {e["id"] for e in ref["automations"]} == run["world"].automations()
    assert all(e["rebuild_as"] and e["type"] and e["name"] for e in ref["automations"])
    assert "nothing here is migrated" in ref["note"]
    rows = {r["object"]: r for r in run["plan"].objects}
    assert sum(r["live"] or 0 for r in rows.values() if "export automation_reference" in r["odoo model"]) \
        == len(ref["automations"])


def test_requests_are_bounded_and_odoo_only_read(run):
    run["world"].check_requests(run["plan"])
    assert {m for (_model, m) in run["odoo_calls"]} <= READ_METHODS
    assert sum(run["odoo_calls"].values()) <= 40


def test_report_names_what_the_plan_found_and_no_secret(run):
    plan, world, html = run["plan"], run["world"], run["html"]
    text = html.read_text(encoding="utf-8")
    assert f"{world.source_name} records: " in text and "1 cycle will be cut" in text
    for team in plan.teams:
        assert f"Pipeline {team['name']} (" in text
    fallback = [o for o in plan.owners if not o["matched"]]
    # the fallback login "admin" is also the Odoo connection's password on some targets: Airflow's secrets masker
    # hides that word in reports as it does in task logs
    assert re.search(rf"{len(fallback)} of {len(plan.owners)} owners fall back to (admin|\*\*\*) ", text)
    assert f"{len(plan.automations)} automation(s) exported" in text
    assert f"This plan cost {plan.source_calls} {world.source_name} API request(s)" in text
    folder = html.parent
    assert (folder / PLAN_FILE).exists()
    custom_csv = next(folder.glob("plan_*_custom_fields.csv")).read_text(encoding="utf-8")
    assert all(c["source field"] in custom_csv for c in plan.custom_fields)
    for path in folder.iterdir():
        body = path.read_text(encoding="utf-8")
        assert not any(s in body for s in world.secrets()), path.name
        assert "Bearer" not in body


def test_the_proposed_mapping_reproduces_the_pair_file(run):
    """The plan's proposed mapping from this target's own fields_get: valid, every field of the record objects with a
    target or a reason, and the standard fields as the hand-written pair file maps them (precision and recall of
    field -> Odoo field printed, held to a floor); every custom field's type holds every value the source holds."""
    plan, world = run["plan"], run["world"]
    prop = plan.proposal
    assert prop["error"] is None
    assert all(r["target"] or (r["kind"] == "not migrated" and r["reasons"]) for r in prop["rows"])
    result = score(plan, world.pair)
    floor_p, floor_r = FLOORS[world.pair]
    assert result["precision"] >= floor_p and result["recall"] >= floor_r, result
    check_custom_types(plan, world.server.state, apto=world.pair == "apto_to_odoo")


def test_the_proposal_is_written_next_to_the_mapping_in_force(run):
    folder, plan = run["html"].parent, run["plan"]
    spec = load_pair(Path((folder / PROPOSAL_FILE).path))          # a pair file the loader accepts
    assert set(spec.objects) == set(load_pair(run["world"].pair).objects)
    assert (folder / IN_FORCE_FILE).read_text(encoding="utf-8").startswith("pair: ")
    assert (folder / PROPOSAL_DIFF).exists()
    page = (folder / PROPOSAL_PAGE).read_text(encoding="utf-8")
    assert "Every source field and its target" in page and "Values outside their declared options" in page
    plan_page = run["html"].read_text(encoding="utf-8")
    assert f'href="{PROPOSAL_FILE}"' in plan_page and f'href="{PROPOSAL_PAGE}"' in plan_page
    assert "Proposed mapping (" in plan_page
    outside = [r for r in plan.proposal["rows"] if r["outside options"]]
    assert outside and all(f">{r['source field']}<" in page for r in outside)


def test_link_app_field_no_record_holds_is_a_warning(plans, worlds, odoo_target):
    """A mapped path no record of the tenant holds maps to nothing: a warning naming the object and the field."""
    raw = thaw(load_pair("link_app_to_odoo").raw)
    raw["objects"]["deals"]["fields"]["x_link_app_priority"] = {"from": "priority_label", "fn": "text"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", odoo_target.conn_json(transport="jsonrpc"))
        for k, v in worlds["link_app_to_odoo"].env().items():
            mp.setenv(k, v)
        plan = build_plan(LinkAppSource(LinkAppHook()), OdooHook(), parse_pair(raw, origin="test"), sample_limit=50)
    assert [(u["object"], u["field"], u["severity"]) for u in plan.unknown_fields] == [
        ("deals", "priority_label", "warning")]
    (problem,) = [p for p in plan.problems if p["topic"] == "inventory"]
    assert problem["severity"] == "warning" and "deals reads priority_label" in problem["message"]
    assert Counter(r["object"] for r in plan.profile)["deals"] > 5       # the rest of the deals still profiled
