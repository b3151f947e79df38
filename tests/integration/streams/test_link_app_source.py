"""LinkAppSource over real HTTP against the Link app sandbox (``specs/link-app-api.md``)."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta

import pytest

from crm_migration.hooks.link_app import LinkAppAuthError, LinkAppHook
from crm_migration.mapping.spec import PairSpec, parse_pair
from crm_migration.streams.link_app_source import LinkAppSource

sandbox = pytest.importorskip("crm_sandbox.link_app.server", reason="Link app sandbox not available")

pytestmark = pytest.mark.integration

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
PAGE = 25
LATER = AS_OF + timedelta(days=1)       # every generated record was updated before AS_OF


def rest(resource: str, model: str, **extra) -> dict:
    return {"stream": {"kind": "rest", "resource": resource, "replication_key": "updated_at"},
            "target": {"model": model, "key": f"link_app:{resource}:{{id}}"}, **extra}


PAIR = {
    "pair": "link_app_to_odoo", "source": "link_app",
    "custom_fields": {"objects": {"companies": "res.partner", "contacts": "res.partner", "deals": "crm.lead"}},
    "objects": {
        "users": {"stream": {"kind": "rest", "resource": "users"},
                  "target": {"model": "res.users", "action": "match", "key": "link_app:users:{id}"}},
        "companies": rest("companies", "res.partner", fields={"name": "name"}, custom_fields=True),
        "contacts": rest("contacts", "res.partner", fields={"name": {"from": ["first_name", "last_name"],
                                                                      "fn": "join_name"}}, custom_fields=True),
        "contact_companies": rest("contact_companies", "res.partner"),
        "stages": {"stream": {"kind": "nested", "resource": "pipelines", "items": "stages",
                              "parent_key": "pipeline_id"},
                   "target": {"model": "crm.stage", "key": "link_app:stages:{pipeline_id}/{id}"},
                   "fields": {"name": "name"}},
        "deals": rest("deals", "crm.lead", fields={"name": "name"}, custom_fields=True),
        "activities": rest("activities", "mail.message"),
        "attachments": rest("attachments", "ir.attachment", fields={"name": "file_name"},
                            enrich={"_blob": {"url_field": "url"}}),
        "automations": {"stream": {"kind": "export", "resource": "automations"},
                        "target": {"export": "automation_reference"}},
    },
}


@pytest.fixture(scope="module")
def server():
    srv = sandbox.serve(port=0, scale=1, seed=7, as_of=AS_OF)
    yield srv
    srv.stop()


@pytest.fixture
def tenant(server, monkeypatch):
    """The sandbox, regenerated, wired as ``link_app_default`` (page size 25), its clock 2 h after AS_OF
    (``/deleted`` keeps 30 days counted from the tenant's now)."""
    server.state.reset()
    server.state.clock = AS_OF + timedelta(hours=2)
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps({
        "conn_type": "link_app", "host": server.url, "password": server.state.token,
        "extra": {"page_size": PAGE, "timeout": 5}}))
    return server.state


@pytest.fixture(scope="module")
def pair() -> PairSpec:
    return parse_pair(PAIR)


@pytest.fixture
def source(tenant) -> LinkAppSource:
    return LinkAppSource(LinkAppHook(sleep=lambda _s: None))


def requests_to(tenant, path: str) -> int:
    return tenant.get_stats()["requests"].get(path, 0)


@pytest.mark.parametrize("name", ["users", "companies", "contacts", "contact_companies", "deals", "activities"])
def test_a_full_read_is_the_tenants_live_records_page_by_page(tenant, source, pair, name) -> None:
    rows = list(source.records(pair.object(name), start=None, end=LATER, with_deleted=True))
    live = tenant.tables[name]
    assert sorted(r["id"] for r in rows) == sorted(live) and len(rows) == len(live)
    assert all(r == live[r["id"]] for r in rows)                 # every field, as the tenant holds it
    assert not any(r.get("IsDeleted") for r in rows)             # a full read asks for no deletions
    assert requests_to(tenant, "/api/v1/deleted") == 0
    assert requests_to(tenant, f"/api/v1/{name}") == max(1, math.ceil(len(rows) / PAGE))


def test_records_by_id_one_request_each_and_none_for_an_id_the_tenant_lacks(tenant, source, pair) -> None:
    """A replay of dead letters re-reads them by id; a record the tenant no longer has is simply not there."""
    wanted = sorted(tenant.tables["deals"])[:2]
    rows = list(source.records_by_id(pair.object("deals"), [*wanted, "999999", wanted[0]]))
    assert [r["id"] for r in rows] == wanted and rows[0] == tenant.tables["deals"][wanted[0]]
    assert sum(requests_to(tenant, f"/api/v1/deals/{i}") for i in (*wanted, "999999")) == 3
    assert source.records_by_id(pair.object("stages"), ["1/2"]) is None        # composite key: not by id


def test_a_delta_window_yields_the_changed_records_and_flags_the_deleted(tenant, source, pair, caplog) -> None:
    at = AS_OF + timedelta(minutes=30)
    contact_gone, company_gone = "11", tenant.hard_cases["company_self_parent"]
    tenant.mutate({"timestamp": at.isoformat(),
                   "creates": {"deals": [{"name": "Fresh deal", "status": "open", "priority": "high"}]},
                   "updates": {"contacts": [{"id": "7", "title": "CTO"}, {"id": "9", "mobile": None}]},
                   "deletes": {"contacts": [contact_gone], "companies": [company_gone]}})
    tenant.delete("contacts", ["12"], at=at + timedelta(minutes=20))   # after the window: the next one's
    window = {"start": at, "end": at + timedelta(minutes=15)}
    contacts = pair.object("contacts")
    caplog.set_level(logging.INFO, logger="crm_migration.streams.link_app_source")

    rows = list(source.records(contacts, **window, with_deleted=True))
    assert [(r["id"], r.get("title")) for r in rows[:2]] == [("7", "CTO"), ("9", tenant.tables["contacts"]["9"]["title"])]
    assert rows[1]["mobile"] is None and rows[0]["updated_at"] == "2024-06-01T00:30:00Z"
    assert rows[2:] == [{"id": contact_gone, "IsDeleted": True, "deleted_at": "2024-06-01T00:30:00Z"}]
    assert [contacts.key(r) for r in rows] == ["link_app:contacts:7", "link_app:contacts:9",
                                               f"link_app:contacts:{contact_gone}"]
    assert "contacts (contacts): 2 records and 1 deletions" in caplog.text

    assert [r["id"] for r in source.records(contacts, **window)] == ["7", "9"]          # no deletions asked
    deals = list(source.records(pair.object("deals"), **window, with_deleted=True))
    assert [(r["name"], r.get("IsDeleted")) for r in deals] == [("Fresh deal", None)]
    assert list(source.records(pair.object("companies"), **window, with_deleted=True)) == [
        {"id": company_gone, "IsDeleted": True, "deleted_at": "2024-06-01T00:30:00Z"}]
    # the generated deletions (days before AS_OF) and the later one stay out of this window, in their own
    assert list(source.records(contacts, start=AS_OF, end=at, with_deleted=True)) == []
    later = list(source.records(contacts, start=window["end"], end=at + timedelta(hours=1), with_deleted=True))
    assert later == [{"id": "12", "IsDeleted": True, "deleted_at": "2024-06-01T00:50:00Z"}]
    earlier = list(source.records(contacts, start=AS_OF - timedelta(days=25), end=AS_OF, with_deleted=True))
    assert sorted(r["id"] for r in earlier if r.get("IsDeleted")) == sorted(tenant.hard_cases["deleted"]["contacts"])


def test_nested_stages_of_both_pipelines_read_whole(tenant, source, pair) -> None:
    stages = pair.object("stages")
    # a window after every change: the pipelines are read whole anyway (stages have no updated_at)
    rows = list(source.records(stages, start=LATER, end=LATER + timedelta(hours=1)))
    pipelines = tenant.tables["pipelines"]
    assert len(pipelines) == 2
    assert [(r["pipeline_id"], r["id"]) for r in rows] == [
        (p["id"], s["id"]) for p in sorted(pipelines.values(), key=lambda p: (p["updated_at"], p["id"]))
        for s in p["stages"]]
    for r in rows:
        pipeline = pipelines[r["pipeline_id"]]
        assert r["pipeline_name"] == pipeline["name"] == tenant.hard_cases["pipelines"][r["pipeline_id"]]
        assert {k: r[k] for k in ("name", "order", "probability", "is_won", "is_closed")} == next(
            {k: s[k] for k in ("name", "order", "probability", "is_won", "is_closed")}
            for s in pipeline["stages"] if s["id"] == r["id"])
    for pid in pipelines:
        mine = [r for r in rows if r["pipeline_id"] == pid]
        assert any(r["is_won"] for r in mine) and any(r["is_closed"] and not r["is_won"] for r in mine)
    assert len({stages.key(r) for r in rows}) == len(rows)


def test_export_reads_every_automation(tenant, source, pair) -> None:
    rows = list(source.records(pair.object("automations"), start=LATER, end=LATER + timedelta(hours=1)))
    assert sorted(r["id"] for r in rows) == sorted(tenant.tables["automations"]) and len(rows) == 5
    assert all(r == tenant.tables["automations"][r["id"]] for r in rows)


def test_describes_type_every_custom_field_for_the_plan(tenant, source, pair, caplog) -> None:
    tenant.create("custom_fields", [{"object": "deal", "key": "score_formula", "label": "Score", "type": "formula"}])
    described = source.describes(["contacts", "companies", "deals", "activities", "contacts"])
    assert set(described) == {"contacts", "companies", "deals", "activities"} and described["activities"] == []
    assert "unknown type 'formula'" in caplog.text
    for name, singular in (("contacts", "contact"), ("companies", "company"), ("deals", "deal")):
        defs = {d["key"]: d for d in tenant.tables["custom_fields"].values() if d["object"] == singular}
        got = {f["name"]: f for f in described[name]}
        assert set(got) == {f"custom_fields.{k}" for k in defs}
        assert all(f["custom"] is True and f["label"] == defs[f["name"].split(".", 1)[1]]["label"]
                   for f in got.values())
        types = {defs[n.split(".", 1)[1]]["type"]: f["type"] for n, f in got.items()}
        assert {k: v for k, v in types.items() if k != "formula"} == {
            "text": "string", "number": "double", "date": "date", "picklist": "picklist",
            "multiselect": "multipicklist", "url": "url", "boolean": "boolean"}
        for n, f in got.items():
            d = defs[n.split(".", 1)[1]]
            options = d["options"] if d["type"] in ("picklist", "multiselect") else []
            assert f["picklistValues"] == [{"value": o, "label": o, "active": True} for o in options]
    assert described["deals"][-1]["type"] == "string"                 # the unknown type, as text

    plan = pair.plan_custom_fields(described)
    ttypes = {(name, cf.source_field): cf.ttype for name, cfs in plan.items() for cf in cfs}
    assert ttypes[("companies", "custom_fields.employees")] == "float"
    assert ttypes[("companies", "custom_fields.founded")] == "date"
    assert ttypes[("contacts", "custom_fields.newsletter")] == "boolean"
    assert ttypes[("deals", "custom_fields.deal_type")] == "char"
    assert ttypes[("deals", "custom_fields.score_formula")] == "char"
    assert len(ttypes) == 22


def test_blob_downloads_every_file_and_a_missing_one_is_missing(tenant, source, pair, caplog) -> None:
    from crm_migration.streams import MissingFile

    attachments = pair.object("attachments")
    rows = list(source.records(attachments, start=None, end=LATER))
    hard = tenant.hard_cases
    got = {r["id"]: source.blob(attachments, r) for r in rows}
    assert len(got) == 30
    missing = hard["attachment_missing"]
    gone = got.pop(missing)
    assert isinstance(gone, MissingFile) and gone.status == 404 and gone.path.endswith("scan-2019.pdf")
    assert f"attachments {missing}: its file 'scan-2019.pdf' is missing in Link app (HTTP 404)" in caplog.text
    for rid, data in got.items():
        assert data == tenant.data.files[rid] and len(data) == tenant.tables["attachments"][rid]["size_bytes"]
    assert got[hard["attachment_empty"]] == b""
    assert len(got[hard["attachment_non_ascii"]]) == 1536
    assert all(got[rid] for rid in hard["attachment_redirect"])      # followed the 302 to the signed URL
    assert requests_to(tenant, f"/cdn/files/{hard['attachment_redirect'][0]}/floorplan%20redirect.png") == 1
    assert source.blob(attachments, {**rows[0], "url": None}) is None


def test_a_file_error_other_than_404_raises(tenant, source, pair) -> None:
    attachments = pair.object("attachments")
    row = next(r for r in source.records(attachments, start=None, end=LATER) if r["size_bytes"])
    tenant.inject_fault("unauthorized", 1, match="/cdn/")
    with pytest.raises(LinkAppAuthError):
        source.blob(attachments, row)


def test_a_bad_stream_is_refused_before_any_request(tenant, source) -> None:
    bad = parse_pair({**PAIR, "custom_fields": {}, "objects": {
        "deals": rest("deals", "crm.lead") | {"stream": {"kind": "graphql", "resource": "deals"}},
        "notes": rest("activities", "mail.message") | {
            "stream": {"kind": "rest", "resource": "activities", "replication_key": "created_at"}},
        "stages": {"stream": {"kind": "nested", "resource": "pipelines"},
                   "target": {"model": "crm.stage", "key": "link_app:stages:{id}"}}}})
    with pytest.raises(ValueError, match=r"deals: unknown Link app stream kind 'graphql'"):
        source.records(bad.object("deals"), start=None, end=LATER)
    with pytest.raises(ValueError, match=r"notes: Link app windows only on 'updated_at'"):
        source.records(bad.object("notes"), start=None, end=LATER)
    with pytest.raises(ValueError, match=r"stages: a nested stream needs items"):
        source.records(bad.object("stages"), start=None, end=LATER)
    assert sum(tenant.get_stats()["requests"].values()) == 0


def test_the_rest_of_the_interface(source, pair) -> None:
    deals = pair.object("deals")
    assert source.name == "link_app" and source.namespace == ""
    source.use_namespace("McLabs2")
    assert source.namespace == ""
    assert source.needs_parents(deals) is False
    batch = [{"id": "1"}, {"id": "2"}]
    assert source.enrich_children(deals, batch) == [{"id": "1"}, {"id": "2"}]


def test_a_delta_window_starting_over_30_days_back_warns_once_that_older_deletions_are_not_seen(source, pair,
                                                                                                 caplog) -> None:
    """The source reads quietly; the read window (engine.windows, written in the windows report) warns, once."""
    from crm_migration.engine.windows import deletion_warning

    caplog.set_level(logging.WARNING)
    now = datetime.now(UTC).replace(microsecond=0)
    assert deletion_warning(source, "deals", now - timedelta(days=29), now) is None
    start = now - timedelta(days=45)
    list(source.records(pair.object("deals"), start=start, end=now, with_deleted=True))
    assert "30 days" not in caplog.text                         # not a second time from the source itself
    warning = deletion_warning(source, "deals", start, now)
    assert "the Link app tenant keeps deletions 30 days only" in warning and "stays active in Odoo" in warning
