"""Odoo 17's partner address sync, on the sandbox and on the real Odoo 17 (one body each).

What the company address mapping relies on (loader trap 4 and its neighbours, read in
``odoo/addons/base/models/res_partner.py``: ``onchange_parent_id``, ``_children_sync``,
``update_address``, ``_handle_first_contact_creation``). Where the two disagree the real server is right.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration
#: Odoo 17's address sync; Odoo 19's own: tests/integration/odoo_sandbox/test_odoo19_behaviours.py
ODOO_TARGETS = ("sandbox", "odoo17")
CTX = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True, "mail_notrack": True}
ADDR = ["street", "street2", "city", "zip", "state_id", "country_id"]


@pytest.fixture(scope="module")
def rpc(odoo_target):
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def countries(rpc):
    return {c["code"]: c["id"] for c in rpc("res.country", "search_read", [("code", "in", ["US", "DE", "AT"])],
                                             fields=["code"])}


def _partner(rpc, **vals):
    return rpc("res.partner", "create", {"is_company": True, "type": "contact", **vals}, context=CTX)


def _addr(rpc, pid):
    (rec,) = rpc("res.partner", "read", [pid], ["street", "city", "zip", "country_id"])
    return rec["street"], rec["city"], rec["zip"], rec["country_id"] and rec["country_id"][0]


def test_a_company_without_address_takes_its_first_contacts_address(rpc, countries):
    bare = _partner(rpc, name="Bare Co")
    _partner(rpc, name="First", is_company=False, type="other", parent_id=bare, street="9 Elm Ave",
             city="Denver", country_id=countries["US"])
    assert _addr(rpc, bare) == ("9 Elm Ave", "Denver", False, countries["US"])    # Odoo's guess
    _partner(rpc, name="Second", is_company=False, type="other", parent_id=bare, street="1 Other St",
             city="Austin")
    assert _addr(rpc, bare)[:2] == ("9 Elm Ave", "Denver")                         # only the first
    # a company with any address field of its own keeps it
    own = _partner(rpc, name="Own Co", country_id=countries["AT"])
    _partner(rpc, name="Third", is_company=False, type="other", parent_id=own, street="9 Elm Ave", city="Denver")
    assert _addr(rpc, own) == (False, False, False, countries["AT"])


def test_linking_a_contact_type_partner_copies_the_parents_block_one_level_deep(rpc, countries):
    top = _partner(rpc, name="Top", street="1 Harbor Plaza", city="Boston", zip="02108", country_id=countries["US"])
    mid = _partner(rpc, name="Mid")
    low = _partner(rpc, name="Low")
    rpc("res.partner", "write", [low], {"parent_id": mid}, context=CTX)     # the child first: mid has nothing yet
    assert _addr(rpc, low) == (False, False, False, False)
    rpc("res.partner", "write", [mid], {"parent_id": top}, context=CTX)
    assert _addr(rpc, mid) == ("1 Harbor Plaza", "Boston", "02108", countries["US"])
    assert _addr(rpc, low) == (False, False, False, False)                  # the copy goes no further down
    # a contact-type partner with an address of its own loses it to the parent's; type 'other' keeps it
    mine = _partner(rpc, name="Mine", street="Kärntner Ring 5", city="Wien", country_id=countries["AT"])
    other = _partner(rpc, name="Other", type="other", street="Kärntner Ring 5", city="Wien",
                     country_id=countries["AT"])
    rpc("res.partner", "write", [mine, other], {"parent_id": top}, context=CTX)
    assert _addr(rpc, mine) == ("1 Harbor Plaza", "Boston", "02108", countries["US"])
    assert _addr(rpc, other) == ("Kärntner Ring 5", "Wien", False, countries["AT"])


def test_an_address_written_on_a_parent_reaches_only_its_contact_type_children_and_only_what_was_written(
        rpc, countries):
    top = _partner(rpc, name="Top2", street="1 Harbor Plaza", city="Boston", zip="02108", country_id=countries["US"])
    kid = _partner(rpc, name="Kid", parent_id=top)
    grandkid = _partner(rpc, name="Grandkid", parent_id=kid)
    other = _partner(rpc, name="Other kid", type="other", parent_id=top, street="Elsewhere 1", city="Berlin",
                     country_id=countries["DE"])
    assert _addr(rpc, grandkid) == ("1 Harbor Plaza", "Boston", "02108", countries["US"])
    rpc("res.partner", "write", [kid], {"zip": "02109"}, context=CTX)       # the kid's own change ...
    rpc("res.partner", "write", [top], {"city": "Cambridge"}, context=CTX)  # ... survives the parent's
    assert _addr(rpc, kid) == ("1 Harbor Plaza", "Cambridge", "02109", countries["US"])
    assert _addr(rpc, grandkid) == ("1 Harbor Plaza", "Boston", "02109", countries["US"])   # one level only
    assert _addr(rpc, other) == ("Elsewhere 1", "Berlin", False, countries["DE"])


def test_a_partner_cannot_be_its_own_parent(rpc):
    me = _partner(rpc, name="Selfparent")
    with pytest.raises(Exception, match="recursive Partner hierarchies"):
        rpc("res.partner", "write", [me], {"parent_id": me}, context=CTX)
