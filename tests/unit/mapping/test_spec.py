"""The pair file model: the real Apto file loads and is complete; bad files fail with clear errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from crm_migration.mapping.spec import (
    MISSING,
    CustomFieldRules,
    PairSpec,
    SpecError,
    load_pair,
    parse_pair,
)

ROOT = Path(__file__).resolve().parents[3]
PAIR_FILE = ROOT / "include" / "pairs" / "apto_to_odoo.yaml"


@pytest.fixture(scope="module")
def pair() -> PairSpec:
    return load_pair("apto_to_odoo")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(PAIR_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def odoo_fields(shared_dir) -> dict:
    return json.loads((shared_dir / "odoo17" / "fields.json").read_text())


def test_loads_by_name_and_by_path(pair):
    assert pair.pair == "apto_to_odoo" and pair.source == "apto"
    assert load_pair(PAIR_FILE).objects.keys() == pair.objects.keys()


def test_every_seed_row_is_mapped(pair):
    targets = {name: (o.model, o.target.action) for name, o in pair.objects.items()}
    assert targets["User"] == ("res.users", "match")
    assert targets["Account"] == ("res.partner", "load")
    assert targets["Contact"] == ("res.partner", "load")
    assert targets["RecordType"] == ("crm.team", "load")
    assert targets["OpportunityStage"] == ("crm.stage", "load")
    assert targets["Opportunity"] == ("crm.lead", "load")
    assert targets["Task"] == ("mail.message", "load")
    assert targets["OpenTask"] == ("mail.activity", "load")
    assert targets["Event"] == ("calendar.event", "load")
    assert targets["Note"] == ("mail.message", "load")
    assert targets["ContentNote"] == ("mail.message", "load")
    assert targets["ContentVersion"] == ("ir.attachment", "load")
    assert targets["Attachment"] == ("ir.attachment", "load")
    assert targets["Automation"] == (None, "none") and pair.objects["Automation"].target.export == "automation_reference"
    assert pair.objects["RecordType"].target.key == "apto:pipeline:{Id}"
    assert {"Account", "Contact", "Opportunity"} <= set(pair.custom_fields.objects)


def test_order_is_topological(pair):
    order = pair.order()
    pos = {n: i for i, n in enumerate(order)}
    for name, obj in pair.objects.items():
        deps = set(obj.depends_on) | {r for f in obj.fields.values() for r in f.ref}
        deps |= set(obj.attach.objects) if obj.attach else set()
        for dep in deps - {name}:
            assert pos[dep] < pos[name], f"{dep} must come before {name}"
    assert order.index("Account") < order.index("Contact") < order.index("Opportunity") < order.index("Task")


def test_fields_exist_in_odoo_17(pair, odoo_fields):
    """Every Odoo field the file writes exists on its model (or is a declared x_ field), stored or with an
    inverse (``ir.attachment.datas``)."""
    for obj in pair.loadable():
        known = odoo_fields[obj.model]
        declared = set(pair.x_fields.get(obj.model, {}))
        names = set(obj.fields) | ({obj.attach.model_field, obj.attach.id_field} if obj.attach else set())
        for name in names:
            if name in declared:
                continue
            assert name in known, f"{obj.name}: {obj.model}.{name} does not exist"
            meta = known[name]
            assert meta.get("store", True) or not meta.get("readonly"), f"{obj.name}: {obj.model}.{name} not writable"


def test_selection_constants_are_valid_odoo_values(pair, odoo_fields):
    for obj in pair.loadable():
        for f in obj.fields.values():
            meta = odoo_fields[obj.model].get(f.name) or {}
            if meta.get("type") != "selection" or f.lookup:
                continue
            allowed = {v for v, _ in meta["selection"]}
            if f.const is not MISSING:
                assert f.const in allowed, (obj.name, f.name, f.const)
            for step in f.fn:
                if step.name == "selection":
                    outs = set(step.args.get("mapping", {}).values()) | {step.args.get("default")}
                    assert outs - {None} <= allowed, (obj.name, f.name, outs - allowed)


def test_namespace_is_resolved_everywhere(pair):
    ns = pair.with_namespace("McLabs2")
    opp = ns.objects["Opportunity"]
    assert "McLabs2__Priority__c" in opp.stream["fields"]
    assert opp.fields["priority"].sources == ("McLabs2__Priority__c",)
    assert "<ns>" not in json.dumps(ns.raw, default=str)
    unmanaged = pair.with_namespace(None)
    assert unmanaged.objects["Opportunity"].fields["priority"].sources == ("Priority__c",)
    with pytest.raises(ValueError, match="already resolved"):
        ns.with_namespace("X")


def test_keys_and_composite_source_ids(pair):
    stage = pair.objects["OpportunityStage"]
    rec = {"RecordTypeId": "0125g000000AAAAAAA", "ApiName": "Closed Won"}
    assert stage.source_id(rec) == "0125g000000AAAAAAA/Closed Won"
    assert stage.key(rec) == "apto:stage:0125g000000AAAAAAA/Closed Won"
    assert stage.source_id_from(["0125g000000AAAAAAA", "Closed Won"]) == stage.source_id(rec)
    contact = pair.objects["Contact"]
    assert contact.key({"Id": "0035g00000abcDE"}) == "apto:Contact:0035g00000abcDE"
    assert contact.key_object == "Contact"
    with pytest.raises(KeyError):
        contact.source_id({"Id": None})


def test_open_and_closed_tasks_share_one_key_and_crosswalk_entry(pair):
    rec = {"Id": "00T5g00000Tsk01AAA"}
    assert pair.objects["Task"].key(rec) == pair.objects["OpenTask"].key(rec) == "apto:Task:00T5g00000Tsk01AAA"
    assert pair.target_kwargs("OpenTask")["source_object"] == pair.target_kwargs("Task")["source_object"] == "Task"
    assert (pair.objects["Task"].model, pair.objects["OpenTask"].model) == ("mail.message", "mail.activity")


def test_the_chatter_timeline_is_every_message_object(pair, raw):
    assert [o.name for o in pair.timeline()] == ["OpportunityHistory", "Task", "Note", "ContentNote"]
    assert pair.TIMELINE == "chatter"
    off = parse_pair(_edit(raw, "settings/activities_oldest_first", False))
    assert off.timeline() == []


def test_settings(pair):
    s = pair.settings
    assert s.fallback_user == "admin" and s.conflict_policy == "keep_odoo"
    assert s.contact_extra_companies == "child_contacts" and s.contact_own_address_type == "other"


def test_conflict_policy_per_object_over_the_pairs_default(raw):
    """``on_conflict`` per object (source_wins | keep_odoo) over ``settings.conflict_policy`` (default
    source_wins); the loader gets ``source_wins`` or ``report`` (keep Odoo's), ``report`` still read as keep_odoo."""
    spec = parse_pair(_edit(_edit(raw, "objects/Contact/on_conflict", "source_wins"), "settings/conflict_policy",
                            "keep_odoo"))
    assert spec.target_kwargs("Contact")["conflict_policy"] == "source_wins"
    assert spec.target_kwargs("Account")["conflict_policy"] == "report"
    default = parse_pair(_edit(raw, "settings/conflict_policy", _DELETE))
    assert default.settings.conflict_policy == "source_wins"
    assert {default.conflict_policy(o.name) for o in default.loadable()} == {"source_wins"}
    kept = parse_pair(_edit(_edit(raw, "objects/Account/on_conflict", "keep_odoo"), "settings/conflict_policy",
                            "report"))
    assert kept.conflict_policy("Account") == kept.conflict_policy("Contact") == "report"


def test_deferred_fields_for_the_traps(pair):
    opp = pair.objects["Opportunity"].fields
    assert opp["date_last_stage_update"].deferred and opp["date_closed"].deferred
    assert not opp["x_stage_entered_at"].deferred
    assert "email_from" not in opp and "phone" not in opp          # lead email never written back (trap 3)
    ev = pair.objects["Event"]
    assert ev.fields["opportunity_id"].deferred                     # trap 5
    assert "res_model_id" not in ev.fields and ev.target.context["no_mail_to_attendees"] is True
    assert pair.objects["ContentVersion"].target.context["image_no_postprocess"] is True   # trap 1


def test_custom_field_names():
    rules = CustomFieldRules()
    assert rules.field_name("McLabs2__Cap_Rate__c") == "x_cap_rate"
    assert rules.field_name("Region__c") == "x_region"
    assert rules.field_name("Data_Room_URL__c") == "x_data_room_url"
    long = rules.field_name("McLabs2__" + "Very_Long_Field_Name_" * 5 + "__c")
    assert len(long) <= 63 and long.startswith("x_very_long_field_name")
    assert long != rules.field_name("McLabs2__" + "Very_Long_Field_Name_" * 5 + "X__c")   # hash keeps them apart


def test_custom_field_plan(pair):
    ns = pair.with_namespace("McLabs2")
    describes = {
        "Account": [
            {"name": "Name", "type": "string", "custom": False},
            {"name": "McLabs2__Cap_Rate__c", "type": "percent", "custom": True, "label": "Cap Rate"},
            {"name": "McLabs2__Investor_Type__c", "type": "multipicklist", "custom": True},
            {"name": "McLabs2__Notes__c", "type": "textarea", "custom": True},
            {"name": "Acquired_On__c", "type": "datetime", "custom": True},
        ],
        "Opportunity": [
            {"name": "McLabs2__Priority__c", "type": "picklist", "custom": True},
            {"name": "Referral_Contact__c", "type": "reference", "custom": True, "referenceTo": ["Contact"]},
            {"name": "McLabs2__Property__c", "type": "reference", "custom": True,
             "referenceTo": ["McLabs2__Property__c"]},
        ],
    }
    plans = ns.plan_custom_fields(describes)
    acc = {c.name: c for c in plans["Account"]}
    assert acc["x_cap_rate"].ttype == "float" and acc["x_cap_rate"].label == "Cap Rate"
    assert acc["x_investor_type"].ttype == "char" and acc["x_investor_type"].field.fn[0].name == "multipicklist"
    assert "x_apto_notes" in acc and "x_notes" not in acc                 # override
    assert acc["x_acquired_on"].field.fn[0].name == "sf_datetime_to_odoo"
    opp = {c.name: c for c in plans["Opportunity"]}
    assert "x_priority" not in opp                                        # skipped: mapped explicitly
    assert opp["x_referral_contact"].ttype == "many2one" and opp["x_referral_contact"].relation == "res.partner"
    assert opp["x_referral_contact"].field.ref == ("Contact",)
    assert opp["x_property"].ttype == "char"                              # not migrated: the raw id
    extended = ns.with_custom_fields(plans)
    assert "x_cap_rate" in extended.objects["Account"].fields
    assert "McLabs2__Cap_Rate__c" in extended.objects["Account"].stream["fields"]


def test_custom_field_collision_on_a_model_is_an_error(pair):
    ns = pair.with_namespace("McLabs2")
    describes = {"Account": [{"name": "Rating__c", "type": "double", "custom": True}],
                 "Contact": [{"name": "McLabs2__Rating__c", "type": "string", "custom": True}]}
    with pytest.raises(SpecError, match="x_rating already on res.partner as float"):
        ns.plan_custom_fields(describes)


# ---- bad files ---------------------------------------------------------------------------------------


def _edit(raw: dict, path: str, value) -> dict:
    out = copy.deepcopy(raw)
    node = out
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    ("objects/Contact/fields/email/fn", "normalise_email", r"object Contact, field email: unknown transform 'normalise_email'"),
    ("objects/Contact/fields/parent_id/ref", "Acount", r"object Contact, field parent_id: unknown ref object 'Acount'"),
    ("objects/Contact/fields/user_id/lookup", "owners", r"object Contact, field user_id: unknown lookup 'owners'"),
    ("objects/Contact/target/model", _DELETE, r"object Contact, field target.model: missing target model"),
    ("objects/Contact/target/key", "apto:Contact:Id", r"object Contact, field key: bad key template.*no \{Field\}"),
    ("objects/Contact/target/key", "link_app:Contact:{Id}", r"field key: bad key template.*must start with 'apto:'"),
    ("objects/Contact/target/key", "apto:Contact", r"field key: bad key template"),
    ("objects/Contact/target/key", "apto:Contact:{Id", r"field key: bad key template.*unbalanced"),
    ("objects/Contact/target/key", "apto:Account:{Id}", r"object Contact, field key: key object 'Account' already used"),
    # open and closed tasks share Task's key only because `where` splits them into two models
    ("objects/OpenTask/target/where", {}, r"object OpenTask, field key: key object 'Task' already used"),
    ("objects/Contact/fields/email/from", "Emial", r"object Contact, field email: source field 'Emial' is not read"),
    ("objects/Contact/fields/email/on_missing", "maybe", r"field email: on_missing must be one of"),
    ("objects/Contact/fields/email/colour", "red", r"field email: unknown key\(s\) \['colour'\]"),
    ("objects/Contact/fields/phone/args", {"country": "US"}, r"field phone: transform arguments do not fit"),
    ("objects/Contact/fields/street/when", "own_adress", r"field street: when: unknown condition 'own_adress'"),
    ("objects/Contact/fields/name/fn", _DELETE, r"field name: several from fields need a fn"),
    ("objects/Contact/fields/x_apto_secret", {"from": "Title"}, r"x_apto_secret is not declared in x_fields.res.partner"),
    ("objects/Contact/fields/x_migration_key", {"const": "x"}, r"x_migration_key is set by Odoo or the loader"),
    ("objects/Contact/depends_on", ["Account", "Nope"], r"object Contact: depends_on: unknown object 'Nope'"),
    ("objects/Account/depends_on", ["User", "Contact"], r"dependency cycle between objects: (Account -> Contact -> Account|Contact -> Account -> Contact)"),
    ("objects/Contact/stream/kind", _DELETE, r"object Contact, field stream: missing stream"),
    ("objects/Contact/stream/fieldz", ["Id"], r"field stream: stream: unknown key\(s\) \['fieldz'\]"),
    ("objects/Opportunity/fields/team_id/ref", "User", r"ref 'User' is not loaded into Odoo"),
    ("objects/Event/fields/partner_ids/fn", "first", r"field partner_ids: a list of refs .* no fn but as_list"),
    ("objects/Event/fields/partner_ids/from", ["WhoId"], r"field partner_ids: a list of refs takes one from path per"),
    ("objects/Task/attach_to/objects", ["Opportunity", "Nope"], r"object Task, field attach_to: unknown attach_to object 'Nope'"),
    ("objects/Automation/target/export", _DELETE, r"object Automation, field target: target none needs export"),
    ("settings/conflict_policy", "merge", r"settings.conflict_policy must be one of \('source_wins', 'keep_odoo'\)"),
    ("objects/Contact/on_conflict", "odoo_wins",
     r"object Contact, field on_conflict: on_conflict must be one of source_wins, keep_odoo .* not 'odoo_wins'"),
    ("settings/fallback_usr", "admin", r"unknown setting\(s\) \['fallback_usr'\]"),
    ("settings/contact_extra_companies", "tags", r"settings.contact_extra_companies must be one of"),
    ("x_fields/crm.lead/x_apto_priority", {"ttype": "varchar"}, r"x_fields.crm.lead.x_apto_priority: ttype 'varchar'"),
    ("custom_fields/type_map/string", "varchar", r"custom_fields.type_map.string: 'varchar' is not an Odoo ttype"),
    ("wat", 1, r"unknown top-level key\(s\) \['wat'\]"),
])
def test_bad_specs_fail_clearly(raw, path, value, message):
    with pytest.raises(SpecError, match=message):
        parse_pair(_edit(raw, path, value), origin="test.yaml")


LINK_FILE = ROOT / "include" / "pairs" / "link_app_to_odoo.yaml"
PROBABILITY = "objects/deals/fields/probability"


@pytest.mark.parametrize(("path", "value", "message"), [
    # a =field.odoo_field path reads the Odoo record a field mapped before it refers to
    (f"{PROBABILITY}/from", ["=stage_idd.x_link_app_probability", "$closed", "$won"],
     r"field probability: =stage_idd.x_link_app_probability: stage_idd is not a field of deals mapped before"),
    ("objects/deals/fields/team_id", {"from": "=stage_id.team_id"}, r"field team_id: =stage_id.team_id: stage_id is "
                                                                     r"not a field of deals mapped before team_id"),
    (f"{PROBABILITY}/from", ["=x_link_app_currency.name", "$closed", "$won"],
     r"field probability: =x_link_app_currency.name: x_link_app_currency must refer to one record"),
    (f"{PROBABILITY}/from", ["=date_last_stage_update.name", "$closed", "$won"], r"date_last_stage_update is not a field"),
    ("objects/deals/fields/x_stage_entered_at", {"from": "=date_last_stage_update.name"}, r"is not a field of deals"),
    (f"{PROBABILITY}/from", ["=stage_id.X", "$closed", "$won"], r"field probability: bad source path '=stage_id.X'"),
    ("objects/deals/conditions/won", {"from": "=stage_id.is_won", "fn": "bool"},
     r"object deals, field \$won: a condition reads the source record"),
])
def test_bad_read_through_paths_fail_clearly(path, value, message):
    raw = yaml.safe_load(LINK_FILE.read_text(encoding="utf-8"))
    with pytest.raises(SpecError, match=message):
        parse_pair(_edit(raw, path, value), origin="test.yaml")


def test_a_read_through_a_deferred_field_fails_clearly():
    raw = yaml.safe_load(LINK_FILE.read_text(encoding="utf-8"))
    raw["objects"]["deals"]["fields"]["stage_id"]["deferred"] = True
    with pytest.raises(SpecError, match=r"field probability: =stage_id.x_link_app_probability: stage_id is written "
                                        r"after the record \(deferred\)"):
        parse_pair(raw, origin="test.yaml")


def test_unknown_pair_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="no such pair"):
        load_pair("nope_to_odoo")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objects: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_pair(bad)


def test_yaml_null_means_null(raw):
    spec = parse_pair(_edit(raw, "objects/Contact/fields/parent_id/on_missing", None))
    assert spec.objects["Contact"].fields["parent_id"].on_missing == "null"


def test_streams_are_valid_soql_streams_on_the_apto_schema(pair):
    """Each SOQL stream builds with the stream factory and reads only fields the Apto org describes
    (relationship paths resolved hop by hop), custom fields included."""
    schema_mod = pytest.importorskip("crm_sandbox.apto.schema")
    from crm_migration.streams.soql import stream_from_spec

    ns_pair = pair.with_namespace("McLabs2")
    schema = schema_mod.build_schema("McLabs2")
    for obj in ns_pair.objects.values():
        if obj.stream.get("kind") != "soql":
            continue
        stream = stream_from_spec(dict(obj.stream), source_object=obj.source_object)
        assert stream.soql(None, None, "McLabs2", parent_ids=["001000000000001"] if stream.parent_filter else None)
        for path in stream.fields:
            odef = schema[obj.source_object]
            *hops, last = path.split(".")
            for hop in hops:
                ref = odef.relationship(hop)
                assert ref is not None, f"{obj.name}: no relationship {hop!r} in {path}"
                odef = schema[ref.reference_to[0]]
            assert odef.has(last), f"{obj.name}: {odef.name} has no field {last!r} ({path})"
        for child, spec in obj.enrich.items():
            if "object" in spec:
                cdef = schema[spec["object"]]
                assert all(cdef.has(f) for f in (*spec["fields"], spec["match"])), (obj.name, child)


# ---- per-version overrides (`targets:`) ------------------------------------------------------------------

def test_version_overrides_apply_from_their_version_on(pair):
    on17, on18, on19, on20 = (pair.for_target(v) for v in (17, 18, 19, 20))
    unknown = pair.for_target(None)
    for spec in (on17, on18, unknown):
        assert "mobile" in spec.object("Contact").fields and "team_id" in spec.object("OpportunityStage").fields
        assert "x_mobile" not in spec.x_fields["res.partner"]
    for spec in (on19, on20):                                      # 19 and every later version
        contact, stage = spec.object("Contact"), spec.object("OpportunityStage")
        assert "mobile" not in contact.fields and contact.fields["x_mobile"].sources == ("MobilePhone",)
        assert "mobile" not in spec.object("AccountContactRelation").fields
        assert "team_id" not in stage.fields
        team_ids = stage.fields["team_ids"]
        assert team_ids.ref == ("RecordType",) and [s.name for s in team_ids.fn] == ["as_list"]
        assert spec.x_fields["res.partner"]["x_mobile"]["ttype"] == "char"
        assert "notes" in spec.object("Event").fields and "description" not in spec.object("Event").fields
        assert spec.object("Contact").fields["phone"] == on17.object("Contact").fields["phone"]   # the rest as is
    assert (on17.target_version, on19.target_version, unknown.target_version) == (17, 19, 0)
    assert on19.for_target(19) is on19
    with pytest.raises(ValueError, match="already resolved"):
        on19.for_target(17)


def test_version_overrides_survive_the_namespace(pair):
    spec = pair.with_namespace("McLabs2").for_target(19)
    assert spec.namespace == "McLabs2" and "x_mobile" in spec.object("Contact").fields


@pytest.mark.parametrize(("targets", "message"), [
    ("nineteen", "targets must be a mapping"),
    ({"latest": {}}, "a target is an Odoo major version"),
    ({"19": {"settings": {}}}, "unknown key(s) ['settings']"),
    ({"19": {"objects": {"Nope": {"fields": {}}}}}, "targets.19.objects.Nope: no such object"),
    ({"19": {"objects": {"Contact": {"target": {"model": "x"}}}}}, "an override changes fields only"),
    ({"19": {"objects": {"Contact": {"fields": {"x_pager": {"from": "MobilePhone", "fn": "no_such_fn"}}}}}},
     "no_such_fn"),
    ({"19": {"x_fields": {"res.partner": {"mobile2": {"ttype": "char"}}}}}, "x_[a-z0-9_]"),
])
def test_bad_version_overrides_fail_clearly(raw, targets, message):
    bad = copy.deepcopy(raw)
    bad["targets"] = targets
    with pytest.raises(SpecError) as exc:
        parse_pair(bad, origin="t.yaml")
    assert message in str(exc.value)
