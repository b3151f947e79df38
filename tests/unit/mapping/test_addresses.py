"""Addresses as the mapping sends them: what Odoo's partner sync would overwrite is sent so that it cannot
(loader trap 4; the both-targets facts are in tests/integration/odoo_sandbox/test_partner_address_sync.py)."""

from __future__ import annotations

import json

import pytest

from crm_migration.mapping import transforms as T
from crm_migration.mapping.mapper import CountryIndex, StateIndex, StaticRefs, map_record
from crm_migration.mapping.spec import SpecError, load_pair, parse_pair, thaw

ACC, CON, USR = "0015g00000Acc01AAA", "0035g00000Con01AAA", "0055g00000Usr01AAA"
ADDRESS = ("street", "street2", "city", "zip", "state_id", "country_id")
EMPTY = {"BillingStreet": None, "BillingCity": None, "BillingState": None, "BillingPostalCode": None,
         "BillingCountry": None}


@pytest.fixture(scope="module")
def pair():
    return load_pair("apto_to_odoo").with_namespace("McLabs2")


@pytest.fixture(scope="module")
def refs(shared_dir):
    records = json.loads((shared_dir / "odoo17" / "records.json").read_text())
    countries = CountryIndex(records["res.country"])
    return StaticRefs(ids={"Account": {ACC: 11}},
                      lookups={"country": countries, "owner": {USR: 2},
                               "state": StateIndex(records["res.country.state (US, CA, DE)"], countries)})


def _contact(**account):
    return {"Id": CON, "LastName": "Okafor", "AccountId": ACC, "OwnerId": USR, "MailingStreet": "9 Elm Ave",
            "MailingCity": "Denver", "MailingState": "CO", "MailingPostalCode": "80202",
            "MailingCountry": "United States", "Account": {**EMPTY, **account}}


def test_a_contact_of_a_company_without_address_gets_its_own_after_the_create(pair, refs):
    row = map_record(pair.objects["Contact"], _contact(), refs)
    assert "error" not in row
    # created under its company without an address (else Odoo copies it onto the company) ...
    assert row["values"]["parent_id"] == 11 and row["values"]["type"] == "other"
    assert not set(ADDRESS) & set(row["values"])
    # ... which the follow-up write then gives it
    assert row["deferred"] == {"street": "9 Elm Ave", "street2": None, "city": "Denver", "zip": "80202",
                               "state_id": 14, "country_id": 233}           # Colorado, United States


def test_a_contact_of_a_company_with_an_address_sends_its_own_in_the_create(pair, refs):
    row = map_record(pair.objects["Contact"], _contact(BillingCity="Boston", BillingCountry="US"), refs)
    assert row["values"]["type"] == "other" and row["values"]["city"] == "Denver"
    assert not set(ADDRESS) & set(row.get("deferred") or {})


def test_a_contact_without_a_company_sends_its_address_in_the_create(pair, refs):
    row = map_record(pair.objects["Contact"], {**_contact(), "AccountId": None, "Account": None}, refs)
    assert row["values"]["city"] == "Denver" and not row.get("deferred")


@pytest.mark.parametrize(("values", "expected"), [
    (["001x", None, None, None, None, None], True),
    (["001x", " ", "", None, None, None], True),
    (["001x", None, None, None, None, "US"], False),
    ([None, None, None, None, None, None], False),
])
def test_parent_without_address(values, expected):
    assert T.apply("parent_without_address", values) is expected


def test_deferred_names_a_condition_of_the_object():
    raw = thaw(load_pair("apto_to_odoo").raw)
    raw["objects"]["Contact"]["fields"]["city"]["deferred"] = "no_such_condition"
    with pytest.raises(SpecError, match="deferred: unknown condition 'no_such_condition'"):
        parse_pair(raw)
    raw["objects"]["Contact"]["fields"]["city"]["deferred"] = 3
    with pytest.raises(SpecError, match="deferred: true, false or a condition name"):
        parse_pair(raw)
