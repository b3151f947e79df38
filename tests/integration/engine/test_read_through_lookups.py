"""``=field.odoo_field`` paths through a lookup (not a ref): the Link app pair with its deals' stage found by the
``pipeline_stage`` lookup (by name in the deal's pipeline, else its first stage; flagged either way) and their
probability read from that stage in Odoo (``=stage_id.x_link_app_probability``), and its companies' owner name read
from their Odoo user (``=user_id.name``, the ``owner`` lookup). One world per target (the sandbox, the real Odoo 17):
the pipelines, stages, companies and deals only.

What the looked-up record holds is part of the rerun fingerprint: a value changed there reaches, on the next run,
the records that read it, though they did not change in the source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

pytestmark = pytest.mark.integration

PAIR = "link_app_to_odoo"
FULL, STAGE, OWNER = "lookup-full", "lookup-stage-probability", "lookup-owner-name"
OBJECTS = ("pipelines", "stages", "companies", "deals")


@pytest.fixture(scope="module", params=("sandbox", "odoo17"))
def odoo_target(request, make_odoo_target):
    target, close = make_odoo_target(request.param, "t_read_through_lookups")
    yield target
    close()


def spec():
    """The Link app pair, its deals' stage by the ``pipeline_stage`` lookup (the ref and its fallback dropped), its
    companies' owner's name in ``x_owner_name``."""
    from crm_migration.mapping.spec import parse_pair, read_pair_file

    raw = yaml.safe_load(read_pair_file(PAIR).text)
    raw["objects"]["deals"]["fields"]["stage_id"] = {"from": ["pipeline_id", "stage_id"], "lookup": "pipeline_stage",
                                                     "required": True}
    raw["x_fields"]["res.partner"]["x_owner_name"] = {"ttype": "char", "label": "Owner (read in Odoo)"}
    raw["objects"]["companies"]["fields"]["x_owner_name"] = {"from": "=user_id.name", "fn": "text"}
    return parse_pair(raw, origin="read-through-lookups.yaml")


def run(pipe, run_id, names=OBJECTS):
    end = datetime.now(UTC) + timedelta(minutes=1)
    counts = {}
    for name in names:
        refs = pipe.extract(name, run_id=run_id, start=None, end=end, batch_size=50)
        results = [pipe.load(name, run_id=run_id, batch_no=b["batch_no"]) for b in refs]
        pipe.link(name, run_id=run_id)
        counts[name] = {k: sum(r[k] for r in results) for k in ("created", "updated", "dead_lettered")}
    return counts


@pytest.fixture(scope="module")
def world(pair_pipeline, odoo_target):
    from crm_sandbox.link_app.server import serve as link_serve

    link = link_serve(port=0, scale=1, seed=7)
    tenant, rpc = link.state, odoo_target.rpc()
    users = {u["login"]: rpc("res.users", "create", {"name": u["name"], "login": u["login"],
                                                     "email": f"{u['login']}@example.com"},
                             context={"no_reset_password": True})
             for u in tenant.odoo_users()}
    try:
        with pair_pipeline(PAIR, link, odoo_target, FULL, spec=spec()) as pipe:
            full = run(pipe, FULL)
            yield {"pipe": pipe, "tenant": tenant, "full": full, "rpc": rpc, "users": users}
    finally:
        link.stop()


def test_a_stage_probability_changed_in_the_source_reaches_the_deals_that_read_it_through_a_lookup(world):
    from crm_migration.engine.pipeline import Pipeline

    pipe0, tenant = world["pipe"], world["tenant"]
    deals = tenant.tables["deals"]
    # every deal landed, in the stage the lookup found (a stage id given: its pipeline's first stage, flagged)
    assert world["full"]["deals"] == {"created": len(deals), "updated": 0, "dead_lettered": 0}
    open_ids = pipe0.state.odoo_ids(PAIR, "deals", [sid for sid, d in deals.items() if d["status"] == "open"])
    leads = pipe0.odoo.read("crm.lead", list(open_ids.values()), ["stage_id", "probability"])
    stage_oid = leads[0]["stage_id"][0]
    (stage,) = pipe0.odoo.read("crm.stage", [stage_oid], ["x_migration_key", "x_link_app_probability"])
    pid, sid = stage["x_migration_key"].removeprefix("link_app:stages:").split("/")
    pid = type(next(iter(tenant.tables["pipelines"])))(pid)
    in_stage = sorted(lead["id"] for lead in leads if lead["stage_id"][0] == stage_oid)
    assert {lead["probability"] for lead in leads if lead["id"] in in_stage} == {stage["x_link_app_probability"]}
    new = stage["x_link_app_probability"] + 7
    stages = [dict(s, probability=new) if str(s["id"]) == sid else s for s in tenant.tables["pipelines"][pid]["stages"]]
    tenant.update("pipelines", [{"id": pid, "stages": stages}])

    pipe = Pipeline(pipe0.spec, pipe0.source, pipe0.odoo, pipe0.state)    # the next run's task
    counts = run(pipe, STAGE, ("stages", "deals"))
    assert counts == {"stages": {"created": 0, "updated": 1, "dead_lettered": 0},
                      "deals": {"created": 0, "updated": len(in_stage), "dead_lettered": 0}}
    assert {lead["probability"] for lead in pipe0.odoo.read("crm.lead", in_stage, ["probability"])} == {new}


def test_an_owner_renamed_in_odoo_reaches_the_companies_that_read_the_name_through_the_owner_lookup(world):
    from crm_migration.engine.pipeline import Pipeline

    pipe0, rpc = world["pipe"], world["rpc"]
    companies = world["tenant"].tables["companies"]
    oids = pipe0.state.odoo_ids(PAIR, "companies", list(companies))
    got = pipe0.odoo.read("res.partner", list(oids.values()), ["user_id", "x_owner_name"])
    assert all(r["x_owner_name"] == r["user_id"][1] for r in got if r["user_id"])
    user = next(r["user_id"][0] for r in got if r["user_id"] and r["user_id"][0] in world["users"].values())
    owned = sorted(r["id"] for r in got if r["user_id"] and r["user_id"][0] == user)
    rpc("res.users", "write", [user], {"name": "Renamed In Odoo"})

    pipe = Pipeline(pipe0.spec, pipe0.source, pipe0.odoo, pipe0.state)    # the next run's task
    counts = run(pipe, OWNER, ("companies",))
    assert counts == {"companies": {"created": 0, "updated": len(owned), "dead_lettered": 0}}
    after = pipe0.odoo.read("res.partner", owned, ["x_owner_name"])
    assert {r["x_owner_name"] for r in after} == {"Renamed In Odoo"}
