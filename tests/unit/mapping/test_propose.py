"""The mapping proposer on synthetic schemas: every source field gets a target or a reason, the types of the custom
fields hold their sampled values, names of two namespaces do not collide, the proposal is a valid pair file, and the
same input gives the same proposal."""

from __future__ import annotations

import yaml

from crm_migration.mapping.propose import (
    dump_pair,
    field_profile,
    infer_fields,
    precision_recall,
    propose,
    unified_diff,
)
from crm_migration.mapping.spec import load_pair, parse_pair, thaw

BASE = load_pair("apto_to_odoo")
PAIR = BASE.with_namespace("McLabs2")


def f(name, ftype="string", *, label="", custom=None, options=(), ref=(), length=None):
    return {"name": name, "label": label or name, "type": ftype, "custom": name.endswith("__c") if custom is None
            else custom, "picklistValues": [{"value": o, "label": o, "active": True} for o in options],
            "referenceTo": list(ref), "length": length}


def t(ttype, string, relation=None, selection=None, **kw):
    return {"type": ttype, "string": string, "relation": relation, "selection": selection or [], "store": True,
            "readonly": False, **kw}


PARTNER = {
    "name": t("char", "Name"), "phone": t("char", "Phone"), "mobile": t("char", "Mobile"), "email": t("char", "Email"),
    "zip": t("char", "Zip"), "city": t("char", "City"), "street": t("char", "Street"), "street2": t("char", "Street2"),
    "user_id": t("many2one", "Salesperson", "res.users"), "parent_id": t("many2one", "Related Company", "res.partner"),
    "country_id": t("many2one", "Country", "res.country"), "state_id": t("many2one", "State", "res.country.state"),
    "comment": t("html", "Notes"), "is_company": t("boolean", "Is a Company"), "date": t("date", "Date"),
    "type": t("selection", "Address Type", selection=[["contact", "Contact"], ["invoice", "Invoice Address"],
                                                      ["delivery", "Delivery Address"], ["other", "Other Address"]]),
    "website": t("char", "Website Link"), "function": t("char", "Job Position"),
    "industry_id": t("many2one", "Industry", "res.partner.industry"),
    "x_vat_number": t("char", "VAT number"),                  # a Studio field already in Odoo
    "display_name": t("char", "Display Name", readonly=True, store=False),
}
LEAD = {
    "name": t("char", "Opportunity"), "partner_id": t("many2one", "Customer", "res.partner"),
    "user_id": t("many2one", "Salesperson", "res.users"), "team_id": t("many2one", "Sales Team", "crm.team"),
    "stage_id": t("many2one", "Stage", "crm.stage"), "expected_revenue": t("monetary", "Expected Revenue"),
    "date_deadline": t("date", "Expected Closing"), "description": t("html", "Notes"),
    "priority": t("selection", "Priority", selection=[["0", "Low"], ["1", "Medium"], ["2", "High"], ["3", "Very High"]]),
    "type": t("selection", "Type", selection=[["lead", "Lead"], ["opportunity", "Opportunity"]]),
    "lost_reason_id": t("many2one", "Lost Reason", "crm.lost.reason"), "probability": t("float", "Probability"),
    "active": t("boolean", "Active"), "date_closed": t("datetime", "Closed Date", readonly=True),
    "date_last_stage_update": t("datetime", "Last Stage Update", readonly=True),
}
TARGETS = {"res.partner": PARTNER, "crm.lead": LEAD}

ACCOUNT = [
    f("Id", "id"), f("Name", label="Account Name"), f("OwnerId", "reference", ref=["User"]),
    f("ParentId", "reference", ref=["Account"]), f("BillingStreet", "textarea"), f("BillingCity"),
    f("BillingPostalCode"), f("BillingState"), f("BillingCountry"), f("MainPhone", "phone", label="Main Phone"),
    f("Website", "url"), f("Fax", "phone"), f("SystemModstamp", "datetime"), f("VAT_Number", label="VAT number"),
    f("Type", "picklist", options=["Prospect", "Customer"]),
    f("McLabs2__Market__c", "string", label="Market", length=10),
    f("OtherPkg__Market__c", "string", label="Market (other package)", length=80),
    f("Region__c", "picklist", label="Region", options=["North", "South"]),
    f("McLabs2__Cap_Rate__c", "percent", label="Cap Rate"), f("Industry", "picklist", options=["Retail", "Banking"]),
    f("Never_Filled__c", "string", label="Never filled"),
]
ACCOUNTS = [
    {"Id": f"001{i:015d}", "Name": f"Acme {i}", "OwnerId": f"005{i:015d}", "ParentId": None,
     "BillingStreet": f"{i} Main St\nSuite 2", "BillingCity": "Boston", "BillingPostalCode": "02110",
     "BillingState": "MA", "BillingCountry": "US", "MainPhone": f"+1 617 555 {1000 + i}",
     "Website": f"https://acme{i}.example", "Fax": None, "SystemModstamp": "2024-01-01T00:00:00.000+0000",
     "VAT_Number": f"US{i:08d}", "Type": "Prospect", "McLabs2__Market__c": "Greater Boston Area" if i == 3 else "Boston",
     "OtherPkg__Market__c": "East", "Region__c": "Antarctica" if i in (1, 2) else "North",
     "McLabs2__Cap_Rate__c": 5.5, "Never_Filled__c": None, "Industry": "Retail"}
    for i in range(1, 9)]
OPPORTUNITY = [
    f("Id", "id"), f("Name"), f("AccountId", "reference", ref=["Account"]), f("ContactId", "reference", ref=["Contact"]),
    f("RecordTypeId", "reference", ref=["RecordType"]), f("StageName", "picklist", label="Stage", options=["New", "Won"]),
    f("Amount", "currency"), f("CloseDate", "date"), f("OwnerId", "reference", ref=["User"]),
    f("Type", "picklist", label="Opportunity Type", options=["Sale", "Lease"]),
    f("McLabs2__Priority__c", "picklist", label="Priority", options=["Low", "Medium", "High", "Critical"]),
    f("IsClosed", "boolean", label="Closed"), f("IsWon", "boolean", label="Won"), f("Probability", "percent"),
    f("McLabs2__Loss_Reason__c", "picklist", label="Loss Reason", options=["Price"]),
    f("LastStageChangeDate", "datetime", label="Last Stage Change Date"),
]
OPPS = [{"Id": f"006{i:015d}", "Name": f"Deal {i}", "AccountId": f"001{i:015d}", "ContactId": None,
         "RecordTypeId": "012000000000001AAA", "StageName": "New", "Amount": 1000.0 * i, "CloseDate": "2025-01-31",
         "OwnerId": f"005{i:015d}", "Type": "Sale", "McLabs2__Priority__c": ["Low", "High", "Urgent!!"][i % 3],
         "IsClosed": i > 3, "IsWon": i == 4, "Probability": 10.0, "McLabs2__Loss_Reason__c": "Price" if i > 4 else None,
         "LastStageChangeDate": "2025-01-02T03:04:05.000+0000"}
        for i in range(1, 7)]


def run(**kw):
    return propose(PAIR, {"Account": ACCOUNT, "Opportunity": OPPORTUNITY}, {"Account": ACCOUNTS, "Opportunity": OPPS},
                   TARGETS, base=BASE, **kw)


def rows_of(prop, obj):
    return {r["source field"]: r for r in prop.rows if r["object"] == obj}


def test_every_source_field_gets_a_target_or_a_reason():
    prop = run()
    for obj, schema in (("Account", ACCOUNT), ("Opportunity", OPPORTUNITY)):
        rows = rows_of(prop, obj)
        assert sorted(rows) == sorted(x["name"] for x in schema)             # one row per field, none dropped
        for r in rows.values():
            assert r["target"] or (r["kind"] == "not migrated" and r["reasons"]), r
            assert 0.0 <= r["confidence"] <= 1.0
    acc = rows_of(prop, "Account")
    assert acc["Id"]["kind"] == acc["SystemModstamp"]["kind"] == "not migrated"
    assert "system field" in acc["Id"]["reasons"][0]
    assert acc["Fax"]["kind"] == "not migrated" and "empty in every sampled record" in acc["Fax"]["reasons"][0]


def test_standard_fields_go_to_their_odoo_fields_with_transforms():
    acc = rows_of(run(), "Account")
    expect = {"Name": ("name", "text"), "BillingCity": ("city", "text"), "BillingPostalCode": ("zip", "text"),
              "MainPhone": ("phone", "phone"), "Website": ("website", "website"),
              "BillingStreet": ("street", "street_line"), "OwnerId": ("user_id", "lookup owner"),
              "ParentId": ("parent_id", "ref Account"), "BillingCountry": ("country_id", "lookup country"),
              "BillingState": ("state_id", "lookup state"), "VAT_Number": ("x_vat_number", "text")}
    assert {k: (acc[k]["target"], acc[k]["transform"]) for k in expect} == expect
    assert any("vocabulary" in why for why in acc["BillingPostalCode"]["reasons"])


def test_references_lookups_and_selections_on_a_deal():
    prop = run()
    opp = rows_of(prop, "Opportunity")
    entries = prop.entries["Opportunity"]
    assert entries["stage_id"]["from"] == ["RecordTypeId", "StageName"]          # the stage key's two parts
    assert entries["stage_id"]["ref"] == "OpportunityStage" and entries["stage_id"]["fallback"] == "pipeline_stage"
    assert entries["team_id"] == {"from": "RecordTypeId", "ref": "RecordType"}
    assert entries["partner_id"]["from"][0] in ("AccountId", "ContactId") and len(entries["partner_id"]["from"]) == 2
    assert entries["priority"]["fn"] == "selection"
    assert entries["priority"]["args"]["mapping"] == {"Low": "0", "Medium": "1", "High": "2", "Critical": "3"}
    # a deal's status from its closed and won flags; its lost reason only when lost; its closing date when closed
    assert entries["active"] == {"from": ["IsClosed", "IsWon"], "fn": "deal_active"}
    assert entries["probability"] == {"from": ["Probability", "IsClosed", "IsWon"], "fn": "deal_probability"}
    assert entries["lost_reason_id"] == {"from": ["McLabs2__Loss_Reason__c", "IsClosed", "IsWon"], "fn": "if_lost",
                                         "lookup": "lost_reason"}
    assert entries["date_closed"]["from"] == ["CloseDate", "IsClosed"] and entries["date_closed"]["deferred"]
    # the deal's Type (Sale, Lease) fits none of crm.lead.type's options (lead, opportunity): not mapped there
    assert opp["Type"]["target"] != "type" and opp["Type"]["kind"] == "not migrated"
    # a custom field mapped to a standard field keeps its value as written in the x_ field the pair declares for it
    assert opp["McLabs2__Priority__c"]["target"] == "priority" and opp["McLabs2__Priority__c"]["also"] == [
        "x_apto_priority"]
    assert entries["x_apto_priority"] == {"from": "McLabs2__Priority__c", "fn": "text"}
    assert opp["McLabs2__Priority__c"]["outside options"] == {"Urgent!!": 2}


def test_custom_fields_typed_by_the_rules_widened_and_never_colliding():
    prop = run()
    acc = rows_of(prop, "Account")
    assert acc["McLabs2__Cap_Rate__c"]["kind"] == "custom rule" and acc["McLabs2__Cap_Rate__c"]["ttype"] == "float"
    # a value longer than the field's length: text, not a char(10) that would cut it
    market = acc["McLabs2__Market__c"]
    assert market["target"] == "x_market" and market["ttype"] == "text" and "widened" in market["reasons"][-1]
    # another namespace's field of the same name does not land on x_market too
    other = acc["OtherPkg__Market__c"]
    assert other["kind"] == "custom rule" and other["target"] not in ("x_market", None)
    overrides = prop.raw["custom_fields"]["overrides"]
    assert overrides["Account.<ns>__Market__c"] == {"ttype": "text"}
    assert overrides["Account.OtherPkg__Market__c"]["name"] == other["target"]
    assert acc["Region__c"]["outside options"] == {"Antarctica": 2}
    # the proposal, loaded and given the org's custom fields, maps both Market fields to two x_ fields
    spec = parse_pair(yaml.safe_load(prop.yaml), origin="proposal").with_namespace("McLabs2")
    plans = spec.plan_custom_fields({"Account": ACCOUNT})
    names = {cf.source_field: (cf.name, cf.ttype) for cf in plans["Account"]}
    assert names["McLabs2__Market__c"] == ("x_market", "text")
    assert names["OtherPkg__Market__c"] == (other["target"], "char")


def test_the_proposal_is_a_valid_pair_file_and_deterministic():
    a, b = run(), run()
    assert a.error is None and a.yaml == b.yaml
    spec = parse_pair(yaml.safe_load(a.yaml), origin="proposal")
    assert set(spec.objects) == set(BASE.objects)                              # the other objects kept as in force
    assert spec.objects["Account"].fields["phone"].sources == ("MainPhone",)    # the renamed field, read by the stream
    assert "MainPhone" in spec.objects["Account"].stream_fields()
    assert "Phone" not in spec.objects["Account"].stream_fields()               # the field the org lacks is not read
    assert "# not migrated: Fax: empty in every sampled record" in a.yaml


def test_the_suggester_is_optional_and_only_adds_candidates():
    class Suggest:
        def suggest(self, obj, source, profile, candidates):
            return [("comment", 0.99, "a note is a note")] if source["name"] == "Fax" else []

    plain, helped = rows_of(run(), "Account"), rows_of(run(suggester=Suggest()), "Account")
    assert plain["Fax"]["kind"] == "not migrated"
    # the suggestion is scored with the proposer's own rules too: phone text into an html note is kept
    assert helped["Fax"]["target"] in (None, "comment")
    assert {k: r["target"] for k, r in plain.items() if k != "Fax"} == {k: r["target"] for k, r in helped.items()
                                                                        if k != "Fax"}


def test_precision_and_recall_against_a_pair_file():
    prop = run()
    score = precision_recall(prop.rows, prop.entries, PAIR)
    assert 0 < score["precision"] <= 1 and 0 < score["recall"] <= 1
    assert ("Account", "billingcity", "city") not in score["missed"]
    assert ("Account", "phone", "phone") not in score["missed"]                  # the org has no Phone: not counted
    wrong = {"Account": {**prop.entries["Account"], "fax_line": {"from": "BillingCity"}}}
    worse = precision_recall(prop.rows, {**prop.entries, **wrong}, PAIR)
    assert worse["precision"] < score["precision"] or score["precision"] == 0


def test_profiles_and_inferred_fields():
    prof = field_profile(["a@x.org", "b@y.com", None, "", "not an email"], options=["a@x.org"])
    assert prof["empty share"] == 0.4 and prof["filled"] == 3 and prof["looks"]["email"] == round(2 / 3, 3)
    assert prof["outside"] == {"b@y.com": 1, "not an email": 1} and prof["max length"] == 12
    multi = field_profile(["A;B", "B;Z", ["Z", "Y"]], options=["A", "B"], multi=True)
    assert multi["outside"] == {"Y": 1, "Z": 2}
    records = [{"id": "1", "name": "Acme", "owner_id": "7", "parent_company_id": None, "score": 3, "rate": 2.5,
                "founded": "2001-02-03", "seen_at": "2024-01-01T10:00:00Z", "web": "https://a.example",
                "address": {"city": "Oslo"}, "tags": ["a"], "custom_fields": {"x": 1}},
               {"id": "2", "name": "Beta", "owner_id": "8", "parent_company_id": "1", "score": 4, "rate": 1,
                "founded": "1999-12-31", "seen_at": "2024-01-02T10:00:00Z", "web": "https://b.example",
                "address": {"city": "Bergen"}, "tags": [], "custom_fields": {}}]
    types = {x["name"]: (x["type"], x["referenceTo"]) for x in infer_fields(records, resources=["companies", "users"])}
    assert types == {"id": ("string", []), "name": ("string", []), "owner_id": ("reference", ["users"]),
                     "parent_company_id": ("reference", ["companies"]), "score": ("int", []),
                     "rate": ("double", []), "founded": ("date", []), "seen_at": ("datetime", []),
                     "web": ("url", []), "address.city": ("string", []), "tags": ("multipicklist", [])}


def test_the_pair_files_written_one_field_a_line_load_as_written():
    for name in ("apto_to_odoo", "link_app_to_odoo"):
        spec = load_pair(name)
        text = dump_pair(thaw(spec.raw))
        again = parse_pair(yaml.safe_load(text), origin="dumped")
        assert again.objects == spec.objects and again.x_fields == spec.x_fields
        assert unified_diff(text, text, pair=name) == ""


def test_a_value_kept_as_written_beside_what_odoo_keeps_of_it():
    prop = run()
    acc, opp = rows_of(prop, "Account"), rows_of(prop, "Opportunity")
    acc_e, opp_e = prop.entries["Account"], prop.entries["Opportunity"]
    # no Odoo field takes them: the x_ fields the pair declares (Account's Type is its "Account type (Apto)")
    assert (acc["Industry"]["target"], acc["Type"]["target"]) == ("x_apto_industry", "x_apto_account_type")
    assert "declares" in acc["Industry"]["reasons"][-1] or "same name" in acc["Industry"]["reasons"][0]
    assert acc_e["x_apto_account_type"] == {"from": "Type", "fn": "text"}
    # Odoo sets the stage date itself: written after the record, from the deal's stage history (the object reads
    # it: enrich OpportunityHistories), else the deal's own date; and kept in the declared x_stage_entered_at too
    stage_date = {"from": ["OpportunityHistories", "StageName", "LastStageChangeDate"], "fn": "stage_entered_at"}
    assert opp_e["date_last_stage_update"] == {**stage_date, "deferred": True}
    assert opp_e["x_stage_entered_at"] == stage_date
    assert opp["LastStageChangeDate"]["also"] == ["x_stage_entered_at"]
    assert any("stage history" in why for why in opp["LastStageChangeDate"]["reasons"])


def test_a_partners_type_follows_its_parent_and_own_address():
    prop = run()
    assert prop.entries["Account"]["type"] == {"from": ["ParentId", "$own_address"], "fn": "contact_partner_type"}
    assert any("address" in why for why in rows_of(prop, "Account")["ParentId"]["reasons"])
    # the object in force has own_address: kept as written; without it the proposal adds one on the address fields
    raw = thaw(BASE.raw)
    del raw["objects"]["Account"]["conditions"]
    del raw["objects"]["Account"]["fields"]["type"]
    bare = parse_pair(raw, origin="test")
    prop = propose(bare.with_namespace("McLabs2"), {"Account": ACCOUNT}, {"Account": ACCOUNTS}, TARGETS, base=bare)
    assert prop.error is None
    cond = prop.raw["objects"]["Account"]["conditions"]["own_address"]
    assert set(cond["any_of"]) == {"BillingStreet", "BillingCity", "BillingPostalCode", "BillingState", "BillingCountry"}


LINK = load_pair("link_app_to_odoo")
DEALS = [{"id": str(i), "name": f"Deal {i}", "status": ["open", "won", "lost"][i % 3], "priority": ["low", "urgent"][i % 2],
          "amount": 10.0 * i, "pipeline_id": "1", "stage_id": "2"} for i in range(1, 10)]
CONTACTS = [{"id": str(i), "first_name": f"Ann {i}", "last_name": "Lee", "email": f"ann{i}@x.org"} for i in range(1, 5)]


def _deals_without_status_fields(stage_probability: bool = True):
    raw = thaw(LINK.raw)
    raw["x_fields"]["crm.lead"].pop("x_link_app_priority")          # no x_ field declared for the raw priority
    del raw["objects"]["deals"]["conditions"]
    for k in ("probability", "active", "lost_reason_id", "x_link_app_priority", "priority"):
        raw["objects"]["deals"]["fields"].pop(k)
    if not stage_probability:
        raw["objects"]["stages"]["fields"].pop("x_link_app_probability")
    pair = parse_pair(raw, origin="test")
    schema = infer_fields(DEALS, resources=["pipelines", "users"])
    prop = propose(pair, {"deals": schema}, {"deals": DEALS}, TARGETS, base=pair)
    assert prop.error is None, prop.error
    return prop


def test_a_status_gives_a_deals_probability_its_stages_when_open_and_a_selection_keeps_the_raw_value():
    prop = _deals_without_status_fields()
    e = prop.entries["deals"]
    # the source deal has no probability: an open one's is its stage's (as the pair file maps it), won 100, lost 0
    assert e["probability"] == {"from": ["=stage_id.x_link_app_probability", "$closed", "$won"],
                                "fn": "deal_probability", "args": {"empty": None}}
    assert prop.raw["objects"]["deals"]["conditions"]["closed"] == {
        "from": "status", "fn": "selection", "args": {"mapping": {"won": True, "lost": True}, "default": False}}
    assert prop.raw["objects"]["deals"]["conditions"]["won"] == {
        "from": "status", "fn": "selection", "args": {"mapping": {"won": True}, "default": False}}
    assert prop.raw["objects"]["deals"]["fields"]["probability"] == e["probability"]
    assert "stage_id.x_link_app_probability" in prop.comments["deals"]["probability"]
    assert "its stage's (stage_id.x_link_app_probability" in rows_of(prop, "deals")["status"]["reasons"][-1]
    parse_pair(prop.raw, origin="proposal")                         # a pair file the loader accepts
    # priority keeps one of Odoo's four options: its value as written goes to a new x_ field, typed and labelled
    assert e["priority"]["fn"] == "selection" and e["x_link_app_priority"] == {"from": "priority", "fn": "text"}
    assert prop.raw["x_fields"]["crm.lead"]["x_link_app_priority"] == {"ttype": "char", "label": "Priority (Link app)"}
    assert "kept in a new x_link_app_priority" in rows_of(prop, "deals")["priority"]["reasons"][-1]


def test_without_a_stage_probability_only_a_closed_deals_probability_is_proposed():
    prop = _deals_without_status_fields(stage_probability=False)
    assert prop.entries["deals"]["probability"] == {"from": "status", "fn": "selection", "args": {
        "mapping": {"won": 100.0, "lost": 0.0}, "default": None}, "when": "closed"}


def test_a_persons_name_falls_back_to_its_email_unless_the_source_requires_a_last_name():
    schema = infer_fields(CONTACTS, resources=["companies", "users"])
    prop = propose(LINK, {"contacts": schema}, {"contacts": CONTACTS}, TARGETS)
    assert prop.entries["contacts"]["name"] == {"from": ["first_name", "last_name", "email"], "fn": "person_name"}
    required = [{**x, "nillable": False} if x["name"] == "last_name" else x for x in schema]
    prop = propose(LINK, {"contacts": required}, {"contacts": CONTACTS}, TARGETS)
    assert prop.entries["contacts"]["name"] == {"from": ["first_name", "last_name"], "fn": "join_name"}


def test_an_address_type_picklist_goes_to_the_partners_type_option_by_option():
    schema = [*infer_fields(CONTACTS, resources=["companies", "users"]),
              {"name": "address_type", "label": "Address Type", "type": "picklist", "custom": False, "referenceTo": [],
               "picklistValues": [{"value": v, "label": v, "active": True} for v in ("Billing", "Shipping", "Other")]}]
    records = [{**c, "address_type": ("Billing", "Shipping", "Other")[i % 3]} for i, c in enumerate(CONTACTS)]
    prop = propose(LINK, {"contacts": schema}, {"contacts": records}, TARGETS)
    assert prop.entries["contacts"]["type"] == {"from": "address_type", "fn": "selection", "args": {
        "mapping": {"Billing": "invoice", "Shipping": "delivery", "Other": "other"}, "default": None}}
    # Odoo's type keeps one of its options: the value as written is kept too (a new x_ field of its name)
    assert prop.entries["contacts"]["x_link_app_address_type"] == {"from": "address_type", "fn": "text"}
