"""The Link app pair file and the transforms it names: pure, no server."""

from __future__ import annotations

import pytest

from crm_migration.mapping import transforms as T
from crm_migration.mapping.mapper import StaticRefs, map_record
from crm_migration.mapping.spec import load_pair

LINKS = [
    {"id": "1", "company_id": "7", "is_primary": False, "updated_at": "2024-01-02T00:00:00Z"},
    {"id": "2", "company_id": "9", "is_primary": True, "updated_at": "2023-01-02T00:00:00Z"},
    {"id": "3", "company_id": "4", "is_primary": False, "updated_at": "2025-01-02T00:00:00Z"},
]


def test_the_primary_link_gives_the_parent_and_the_others_the_many2many():
    assert T.primary_link(LINKS) == "9"
    assert T.other_links(LINKS) == ["4", "7"]
    assert T.primary_link([]) is None and T.other_links(None) == []


def test_no_primary_link_takes_the_most_recently_modified_one_flagged():
    links = [dict(row, is_primary=False) for row in LINKS]
    got = T.primary_link(links)
    assert isinstance(got, T.Flagged) and got.value == "4" and "none of 3 link(s) is primary" in got.reason
    assert T.other_links(links) == ["7", "9"]


def test_a_person_without_a_name_is_named_after_its_email_flagged():
    assert T.person_name("Ada", " Lovelace ", "a@x.org") == "Ada Lovelace"
    got = T.person_name(None, "", "a@x.org")
    assert isinstance(got, T.Flagged) and got.value == "a@x.org"
    assert T.person_name(None, None, None).value == "(no name)"


@pytest.mark.parametrize(("kind", "body", "want"), [
    ("email", "<p>Hi <b>Ana</b></p>", "<p>Hi <b>Ana</b></p>"),
    ("note", "Prefers calls after 3pm.", "<p><b>Note</b></p><p>Prefers calls after 3pm.</p>"),
    ("call", "Left a voicemail.", "<p><b>Call</b> (2 min)</p><p>Left a voicemail.</p>"),
])
def test_an_activity_body_by_type(kind, body, want):
    assert T.activity_body(kind, kind.capitalize(), body, 120) == want


def _refs(stage_probability=None):
    ids = {"pipelines": {"1": 11}, "stages": {"1/101": 21}, "contacts": {"5": 31}, "companies": {"9": 41, "4": 42}}
    lookups = {"owner": {"2": 2}, "lost_reason": {"price": 51}, "country": lambda v: {"DE": 61}.get(v),
               "state": lambda v: None,
               # a stage outside its pipeline: that pipeline's first stage (Odoo id 22), flagged
               "pipeline_stage": lambda key: T.Flagged(22, f"stage {key[1]!r} is not a stage of pipeline {key[0]}: "
                                                           "placed in its first stage 'Qualification'")}
    return StaticRefs(ids, lookups, {("crm.stage", "x_link_app_probability"): {21: 25.0, 22: 10.0} if stage_probability is None else stage_probability})


def test_a_lost_deal_is_archived_with_probability_zero_its_reason_and_raw_priority():
    obj = load_pair("link_app_to_odoo").object("deals")
    row = map_record(obj, {"id": "3", "name": "Big", "pipeline_id": "1", "stage_id": "101", "status": "lost",
                           "priority": "urgent", "lost_reason": "Price", "currency": "EUR", "amount": 10,
                           "owner_id": "2", "contact_id": "5", "company_id": "9",
                           "stage_entered_at": "2024-03-05T14:02:11Z"}, _refs())
    v = row["values"]
    assert "error" not in row, row
    assert (v["team_id"], v["stage_id"], v["partner_id"]) == (11, 21, 31)
    assert (v["active"], v["probability"], v["priority"], v["x_link_app_priority"]) == (False, 0.0, "3", "urgent")
    assert (v["lost_reason_id"], v["x_link_app_currency"], v["x_stage_entered_at"]) == (51, "EUR", "2024-03-05 14:02:11")
    assert row["deferred"] == {"date_last_stage_update": "2024-03-05 14:02:11"}


OPEN = {"id": "4", "name": "Open", "pipeline_id": "1", "stage_id": "101", "status": "open", "priority": "low",
        "owner_id": "2", "lost_reason": "Price"}


def test_an_open_deal_takes_its_stage_probability_and_stays_active():
    obj = load_pair("link_app_to_odoo").object("deals")
    row = map_record(obj, OPEN, _refs())
    assert (row["values"]["stage_id"], row["values"]["probability"], row["values"]["active"]) == (21, 25.0, True)
    assert row["values"]["lost_reason_id"] is None
    assert "warnings" not in row
    won = map_record(obj, {**OPEN, "status": "won"}, _refs())
    assert won["values"]["probability"] == 100.0           # won 100 whatever its stage's


def test_a_deal_in_a_stage_outside_its_pipeline_takes_the_fallback_stage_probability_flagged():
    obj = load_pair("link_app_to_odoo").object("deals")
    row = map_record(obj, {**OPEN, "stage_id": "999"}, _refs())
    assert (row["values"]["stage_id"], row["values"]["probability"]) == (22, 10.0)
    flags = dict(row["warnings"])
    assert "placed in its first stage" in flags["stage_id"]
    assert flags["probability"].startswith("from stage_id.x_link_app_probability (10.0); stage_id: stage '999'")


def test_a_stage_found_by_a_lookup_that_repairs_is_its_id_flagged_and_read_through():
    """The ``pipeline_stage`` lookup as the field's own lookup (not a ref's fallback): its id lands, not the flag."""
    from dataclasses import replace

    obj = load_pair("link_app_to_odoo").object("deals")
    stage = replace(obj.fields["stage_id"], ref=(), fallback=None, lookup="pipeline_stage")
    obj = replace(obj, fields={**obj.fields, "stage_id": stage})
    row = map_record(obj, OPEN, _refs())
    assert (row["values"]["stage_id"], row["values"]["probability"]) == (22, 10.0)
    assert "placed in its first stage" in dict(row["warnings"])["stage_id"]


def test_an_open_deal_whose_stage_odoo_cannot_read_sends_no_probability_flagged():
    obj = load_pair("link_app_to_odoo").object("deals")
    row = map_record(obj, OPEN, _refs({}))                 # the stage is gone from Odoo
    assert "probability" not in row["values"] and "error" not in row
    assert dict(row["warnings"])["probability"] == ("not sent: stage_id has no crm.stage record to take "
                                                    "x_link_app_probability from")
    lost = map_record(obj, {**OPEN, "status": "lost"}, _refs({}))
    assert lost["values"]["probability"] == 0.0 and "probability" in dict(lost["warnings"])


def test_a_contact_takes_its_primary_company_and_keeps_the_others():
    obj = load_pair("link_app_to_odoo").object("contacts")
    row = map_record(obj, {"id": "5", "first_name": None, "last_name": None, "email": "X@Y.org", "owner_id": "2",
                           "links": LINKS, "address": {"street": "1 Main St", "country": "DE"}}, _refs())
    v = row["values"]
    assert (v["name"], v["parent_id"], v["type"], v["country_id"]) == ("X@Y.org", 41, "other", 61)
    assert v["x_link_app_company_ids"] == [(6, 0, [42])]           # company 7 was not migrated: left out, flagged
    assert {f for f, _ in row["warnings"]} >= {"name", "x_link_app_company_ids"}


def test_on_odoo_19_stages_name_their_team_in_team_ids_and_mobile_goes_to_x_mobile():
    spec = load_pair("link_app_to_odoo").for_target(19)
    assert "team_ids" in spec.object("stages").fields and "team_id" not in spec.object("stages").fields
    assert "x_mobile" in spec.object("contacts").fields and "mobile" not in spec.object("contacts").fields
    assert "notes" in spec.object("meetings").fields and "description" not in spec.object("meetings").fields
