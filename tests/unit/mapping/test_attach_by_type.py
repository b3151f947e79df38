"""attach_to by a type field (Link app's ``related: {type, id}``) instead of Salesforce key prefixes."""

from __future__ import annotations

import pytest

from crm_migration.mapping.mapper import StaticRefs, map_record, refs_needed, timeline_position
from crm_migration.mapping.spec import SpecError, parse_pair


def _pair(**attach_over):
    attach = {"from": ["related.id"], "type_from": "related.type",
              "types": {"contact": "contacts", "company": "companies", "deal": "deals"},
              "objects": ["contacts", "companies", "deals"], "model_field": "model", "id_field": "res_id",
              **attach_over}
    rest = {"kind": "rest", "replication_key": "updated_at"}
    return parse_pair({
        "pair": "link_app_to_odoo", "source": "link_app",
        "objects": {
            "companies": {"stream": {**rest, "resource": "companies"},
                          "target": {"model": "res.partner", "key": "link_app:companies:{id}"},
                          "fields": {"name": {"from": "name", "fn": "text"}}},
            "contacts": {"stream": {**rest, "resource": "contacts"},
                         "target": {"model": "res.partner", "key": "link_app:contacts:{id}"},
                         "fields": {"name": {"from": "last_name", "fn": "text"}}},
            "deals": {"stream": {**rest, "resource": "deals"},
                      "target": {"model": "crm.lead", "key": "link_app:deals:{id}"},
                      "fields": {"name": {"from": "name", "fn": "text"}}},
            "notes": {"source_object": "activities", "stream": {**rest, "resource": "activities"},
                      "target": {"model": "mail.message", "key": "link_app:activities:{id}", "where": {"type": "note"}},
                      "attach_to": attach,
                      "fields": {"body": {"from": "body", "fn": "html_text"},
                                 "date": {"from": "occurred_at", "fn": "sf_datetime_to_odoo"}}},
        }}, origin="test.yaml")


def test_the_type_field_names_the_object_even_when_ids_collide_across_resources():
    notes = _pair().objects["notes"]
    refs = StaticRefs({"deals": {"7": 70}, "contacts": {"7": 17}, "companies": {"7": 27}}, {})
    for typ, model, oid in (("deal", "crm.lead", 70), ("contact", "res.partner", 17), ("company", "res.partner", 27)):
        rec = {"id": "n1", "type": "note", "body": "hi", "occurred_at": "2024-03-05T14:02:11Z",
               "related": {"type": typ, "id": "7"}}
        assert refs_needed(notes, [rec]) == {{"deal": "deals", "contact": "contacts", "company": "companies"}[typ]: {"7"}}
        row = map_record(notes, rec, refs)
        assert "error" not in row, row.get("error")
        assert (row["values"]["model"], row["values"]["res_id"]) == (model, oid)
    assert timeline_position(notes, {"occurred_at": "2024-03-05T14:02:11Z", "related": {"type": "deal", "id": "7"}}) \
        == ("2024-03-05 14:02:11", "7")


def test_an_unknown_type_or_a_parent_not_migrated_is_a_dead_letter_naming_the_field():
    notes = _pair().objects["notes"]
    refs = StaticRefs({"deals": {}}, {})
    row = map_record(notes, {"id": "n2", "type": "note", "related": {"type": "ticket", "id": "1"},
                             "occurred_at": "2024-03-05T14:02:11Z"}, refs)
    assert row["error"][0] == "res_id"
    row = map_record(notes, {"id": "n3", "type": "note", "related": {"type": "deal", "id": "404"},
                             "occurred_at": "2024-03-05T14:02:11Z"}, refs)
    assert row["error"][0] == "res_id" and "404" in row["error"][1]


def test_types_must_name_only_the_attach_objects():
    with pytest.raises(SpecError, match="type_from needs types"):
        _pair(types={"contact": "people"})
    with pytest.raises(SpecError, match="unknown key"):
        _pair(typ_from="related.type")


def test_owners_and_custom_field_names_with_link_app_field_names():
    from crm_migration.mapping.mapper import resolve_owners
    from crm_migration.mapping.spec import CustomFieldRules

    odoo_users = [{"id": 2, "login": "admin", "email": "admin@example.com", "active": True, "partner_id": [3, "A"]}]
    owners = resolve_owners([{"id": "1", "email": "Admin@Example.com", "name": "Ada"}, {"id": "2", "email": None}],
                            odoo_users, fallback_login="admin", id_field="id", email_field="email", name_field="name")
    assert (owners["1"]["matched"], owners["1"]["name"], owners["2"]["matched"]) == (True, "Ada", False)
    rules = CustomFieldRules()
    assert rules.field_name("custom_fields.lease_type") == "x_lease_type"
    assert rules.field_name("McLabs2__Cap_Rate__c") == "x_cap_rate"
