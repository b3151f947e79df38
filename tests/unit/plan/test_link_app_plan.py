"""The Link app plan reader without a network: one read per resource whatever the objects on it, counts split by
each object's filters, owners counted, custom values without a definition, a mapped path no record holds, and
automations shaped as a rebuild reference."""

from __future__ import annotations

from collections import Counter

from crm_migration.engine.plan import Plan
from crm_migration.mapping.spec import parse_pair
from crm_migration.streams.link_app_plan import LinkAppPlanReader, automation_entry
from crm_migration.streams.link_app_source import LinkAppSource

TABLES = {
    "users": [{"id": "1", "name": "Ann", "email": "ann@example.com", "active": True}],
    "activities": [{"id": str(i), "type": t, "done": d, "author_id": a, "subject": "s"}
                   for i, (t, d, a) in enumerate([("note", None, "1"), ("call", True, "2"), ("task", False, "1"),
                                                  ("meeting", None, "2"), ("meeting", None, None)], start=1)],
    "deals": [{"id": "1", "name": "D", "owner_id": "1", "lost_reason": "Price", "custom_fields": {"tier": "A"}},
              {"id": "2", "name": "E", "owner_id": "9", "lost_reason": None,
               "custom_fields": {"tier": "Z", "legacy": 3}}],
    "custom_fields": [{"id": "1", "object": "deal", "key": "tier", "label": "Tier", "type": "picklist",
                       "options": ["A", "B"]}],
    "automations": [{"id": "1", "name": "Stale deals", "trigger": {"schedule": "0 6 * * *"},
                     "conditions": [{"field": "status", "op": "eq", "value": "open"}],
                     "actions": [{"type": "set_field", "field": "priority", "value": "low"}], "active": False}],
}


class FakeHook:
    """Pages of the tables above; remembers which resources were listed."""

    def __init__(self) -> None:
        self.listed: Counter[str] = Counter()

    def iter_records(self, resource, **_kw):
        self.listed[resource] += 1
        yield from TABLES[resource]

    def iter_deleted(self, since):
        self.listed["deleted"] += 1
        yield {"resource": "deals", "id": "3", "deleted_at": "2024-01-01T00:00:00Z"}


def act(where: dict, model: str) -> dict:
    return {"stream": {"kind": "rest", "resource": "activities"}, "source_object": "activities",
            "target": {"model": model, "key": "link_app:activities:{id}", "where": where},
            "fields": {"user_id": {"from": "author_id", "lookup": "owner"}}}


PAIR = parse_pair({
    "pair": "link_app_to_odoo", "source": "link_app",
    "lookups": {"owner": {"model": "res.users", "match": "email"},
                "lost_reason": {"model": "crm.lost.reason", "match": "name", "create_missing": True}},
    "custom_fields": {"objects": {"deals": "crm.lead"}},
    "objects": {
        "users": {"stream": {"kind": "rest", "resource": "users"},
                  "target": {"model": "res.users", "action": "match", "key": "link_app:users:{id}"},
                  "fields": {"email": {"from": "email"}}},
        "deals": {"stream": {"kind": "rest", "resource": "deals"}, "custom_fields": True,
                  "target": {"model": "crm.lead", "key": "link_app:deals:{id}"},
                  "fields": {"name": {"from": "name"}, "user_id": {"from": "owner_id", "lookup": "owner"},
                             "lost_reason_id": {"from": "lost_reason", "lookup": "lost_reason"},
                             "description": {"from": "summary"}}},
        "notes": act({"type": ["note", "call"], "done": {"not": False}}, "mail.message"),
        "todo": act({"done": False}, "mail.activity"),
        "meetings": act({"type": "meeting"}, "calendar.event"),
        "automations": {"stream": {"kind": "export", "resource": "automations"},
                        "target": {"model": "none", "export": "automation_reference"}},
    },
}, origin="test")


def _reader() -> tuple[LinkAppPlanReader, FakeHook, Plan]:
    hook = FakeHook()
    reader = LinkAppSource(hook).plan_reader()
    plan = Plan(pair="link_app_to_odoo", source="link_app", namespace="", namespace_how="", fallback_user="admin",
                fallback_user_from="pair", fallback_user_id=2, started_at="2026-01-01T00:00:00+00:00")
    reader.begin(PAIR, plan, sample_limit=10)
    return reader, hook, plan


def test_each_resource_is_read_once_and_counted_per_object():
    reader, hook, _plan = _reader()
    rows = {}
    for obj in PAIR.objects.values():
        row = {}
        rows[obj.name] = (row, reader.inventory(obj, row))
    assert {n: r["live"] for n, (r, _u) in rows.items()} == {
        "users": 1, "deals": 2, "notes": 2, "todo": 1, "meetings": 2, "automations": 1}
    assert rows["deals"][0]["deleted"] == 1 and rows["notes"][0].get("deleted") is None   # shared resource: not split
    assert hook.listed == {"users": 1, "deals": 1, "activities": 1, "automations": 1, "deleted": 1}
    # deals.description reads `summary`, which no record holds: a warning, not a failure
    assert rows["deals"][1] == [{"object": "deals", "source object": "deals", "field": "summary",
                                 "why": "no record of the 2 read has it", "severity": "warning"}]
    counts, fallback = reader.owner_counts(PAIR.objects["meetings"], "author_id", ["2"])
    assert counts == {"2": 1, "None": 1} and fallback == 1
    assert reader.seen_values("deals", "lost_reason") == {"Price": 1}
    assert hook.listed["deals"] == 1                                # still one read


def test_sample_checks_custom_values():
    reader, hook, _plan = _reader()
    sample = reader.sample(PAIR.objects["deals"])
    assert [r["id"] for r in sample.records] == ["1", "2"]
    assert [f["name"] for f in sample.picklists] == ["custom_fields.tier"]
    (finding,) = sample.findings
    assert (finding["check"], finding["field"], finding["example id"]) == (
        "custom value without a definition", "custom_fields.legacy", "2")
    assert "custom_fields.tier" in sample.columns and hook.listed["custom_fields"] == 1
    assert reader.sample(PAIR.objects["users"]) is None             # users are matched, not profiled


def test_automation_entry_is_a_rebuild_reference():
    e = automation_entry({"id": "4", "name": "Won deal webhook",
                          "trigger": {"event": "deal.stage_changed", "pipeline_id": "1"},
                          "conditions": [{"field": "stage_id", "op": "eq", "value": "105"}],
                          "actions": [{"type": "webhook", "url": "https://hooks.example.org/won"}], "active": True},
                         {"deal": "crm.lead"})
    assert (e["type"], e["object"], e["odoo_model"], e["active"]) == ("event automation", "deal", "crm.lead", True)
    assert e["trigger"] == "deal.stage_changed in pipeline 1" and e["condition"] == "stage_id eq 105"
    assert "base.automation on stage change of crm.lead" in e["rebuild_as"] and "webhook" in e["rebuild_as"]
    assert e["source"]["actions"][0]["url"] == "https://hooks.example.org/won"
    s = automation_entry(TABLES["automations"][0])
    assert s["type"] == "scheduled automation" and "ir.cron" in s["rebuild_as"] and s["active"] is False
