"""Addresses arrive whole: every company keeps its own address block and country, on the sandbox and on
the real Odoo 17 (one body each).

The Apto org's hard cases, sharpened: a self-parent (its ParentId is its own Id), a parent cycle and a
three-level chain whose members all share one address (Odoo copies a parent's address onto a
``contact``-type child when the link step writes ``parent_id``, and only one level deep), a contact
with an address of its own under the self-parent (Odoo gives an address-less company the address of
its first contact), and countries written as people write them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration
RUN = "address-run"

# how the test org writes each country, and the country it means (independent of the code under test)
COUNTRY = {None: None, "United States": "US", "USA": "US", "US": "US", "Canada": "CA", "Germany": "DE", "Japan": "JP",
           "United Kingdom": "GB", "Österreich": "AT", "Deutschland": "DE", "U.S.A.": "US", "DEU": "DE",
           "España": "ES", "Schweiz": "CH", "Atlantis": None}
SHARED = {"BillingStreet": "1 Harbor Plaza\nFloor 12", "BillingCity": "Boston", "BillingState": "MA",
          "BillingPostalCode": "02108", "BillingCountry": "USA"}


@pytest.fixture(scope="module")
def world(apto_pipeline, odoo_target):
    from crm_sandbox.apto.server import serve as apto_serve

    apto = apto_serve(port=0, scale=1, seed=7)
    org = apto.state
    hard = org.data.hard_cases
    acc = sorted(a for a, r in org.tables["Account"].items() if not r.get("IsDeleted"))
    cycle, chain, self_parent = list(hard["account_cycle"]), list(hard["account_hierarchy"]), hard["account_self_parent"]
    others = [a for a in acc if a not in {*cycle, *chain, self_parent}]
    org.update("Account", [{"Id": a, **SHARED} for a in cycle + chain])
    org.update("Account", [{"Id": self_parent, "BillingStreet": "Kärntner Ring 5", "BillingCity": "Wien",
                            "BillingState": None, "BillingPostalCode": "1010", "BillingCountry": "Österreich"}])
    spelled = dict(zip(others, ["Deutschland", "U.S.A.", "DEU", "España", "Schweiz", "Atlantis"], strict=False))
    org.update("Account", [{"Id": a, "BillingState": None, "BillingCountry": c} for a, c in spelled.items()])
    # a company without any address in Apto, and (so far) without people
    staffed = {r.get("AccountId") for r in org.tables["Contact"].values()}
    bare = next(a for a in others[len(spelled):] if a not in staffed)
    org.update("Account", [{"Id": bare, **{k: None for k in SHARED}}])
    # the self-parent's and the bare company's people have addresses of their own
    contact, bare_contact = sorted(c for c, r in org.tables["Contact"].items() if not r.get("IsDeleted"))[:2]
    org.update("Contact", [{"Id": contact, "AccountId": self_parent, "MailingStreet": "9 Elm Ave",
                            "MailingCity": "Denver", "MailingState": "CO", "MailingPostalCode": "80202",
                            "MailingCountry": "United States"},
                           {"Id": bare_contact, "AccountId": bare, "MailingStreet": "5th Avenue 700",
                            "MailingCity": "New York", "MailingState": "NY", "MailingPostalCode": "10001",
                            "MailingCountry": "US"}])
    with apto_pipeline(apto, odoo_target, RUN) as pipe:
        odoo, state = pipe.odoo, pipe.state
        end = datetime.now(UTC) + timedelta(minutes=1)
        for name in ("Account", "Contact"):
            for b in pipe.extract(name, run_id=RUN, start=None, end=end, batch_size=20):
                pipe.load(name, run_id=RUN, batch_no=b["batch_no"])
            pipe.link(name, run_id=RUN)
        yield {"pipe": pipe, "org": org, "odoo": odoo, "state": state, "cycle": cycle, "chain": chain,
               "self_parent": self_parent, "contact": contact, "spelled": spelled,
               "bare": bare, "bare_contact": bare_contact}
    apto.stop()


def _companies(world, sids):
    ids = world["state"].odoo_ids("apto_to_odoo", "Account", list(sids))
    recs = world["odoo"].read("res.partner", list(ids.values()),
                              ["street", "street2", "city", "zip", "country_id", "parent_id"])
    by_id = {r["id"]: r for r in recs}
    return {sid: by_id[oid] for sid, oid in ids.items()}


def _block(rec):
    """The address block as Odoo shows it (country as its ISO code)."""
    return (rec["street"] or None, rec["street2"] or None, rec["city"] or None, rec["zip"] or None,
            rec["country_id"][1] if rec["country_id"] else None)


def _expected(names, src):
    lines = [ln.strip() for ln in (src.get("BillingStreet") or "").split("\n") if ln.strip()]
    return (lines[0] if lines else None, ", ".join(lines[1:]) or None, src.get("BillingCity") or None,
            src.get("BillingPostalCode") or None, names.get(COUNTRY[src["BillingCountry"]]))


def test_every_company_keeps_its_own_address_block(world):
    org = world["org"]
    live = {sid: r for sid, r in org.tables["Account"].items() if not r.get("IsDeleted")}
    got = _companies(world, live)
    assert len(got) == len(live)
    names = {c["code"]: c["name"] for c in world["odoo"].search_read("res.country", [], ["code", "name"])}
    wrong = {sid: (_block(got[sid]), _expected(names, live[sid])) for sid in got
             if _block(got[sid]) != _expected(names, live[sid])}
    assert not wrong, wrong


def test_the_self_parent_keeps_its_address_and_country_and_not_its_contacts(world):
    rec = _companies(world, [world["self_parent"]])[world["self_parent"]]
    assert _block(rec) == ("Kärntner Ring 5", None, "Wien", "1010", "Austria")
    assert rec["parent_id"] is False                                   # the self-link is cut
    pid = world["state"].odoo_ids("apto_to_odoo", "Contact", [world["contact"]])[world["contact"]]
    (person,) = world["odoo"].read("res.partner", [pid], ["city", "parent_id", "type"])
    assert (person["city"], person["parent_id"][0], person["type"]) == ("Denver", rec["id"], "other")


def test_a_company_without_address_does_not_take_its_first_contacts(world):
    rec = _companies(world, [world["bare"]])[world["bare"]]
    assert _block(rec) == (None, None, None, None, None)
    pid = world["state"].odoo_ids("apto_to_odoo", "Contact", [world["bare_contact"]])[world["bare_contact"]]
    (person,) = world["odoo"].read("res.partner", [pid], ["street", "city", "parent_id", "type"])
    assert (person["street"], person["city"], person["parent_id"][0]) == ("5th Avenue 700", "New York", rec["id"])


def test_cycle_and_chain_members_sharing_one_address_all_have_it(world):
    got = _companies(world, world["cycle"] + world["chain"])
    assert {_block(r) for r in got.values()} == {("1 Harbor Plaza", "Floor 12", "Boston", "02108", "United States")}
    linked = [sid for sid, r in got.items() if r["parent_id"]]
    assert len(linked) == 4                           # the cycle lost one link, the chain's root has none


def test_countries_as_people_write_them_resolve_and_the_rest_is_flagged(world):
    spelled = world["spelled"]
    got = _companies(world, spelled)
    assert {spelled[sid]: _block(r)[4] for sid, r in got.items()} == {
        "Deutschland": "Germany", "U.S.A.": "United States", "DEU": "Germany", "España": "Spain",
        "Schweiz": "Switzerland", "Atlantis": None}
    atlantis = next(sid for sid, c in spelled.items() if c == "Atlantis")
    flags = [m for (m,) in world["state"].get_records(
        "SELECT message FROM crm_migration.audit_log WHERE run_id = %s AND action = 'flag' AND source_id = %s",
        parameters=(RUN, atlantis))]
    assert "country_id: country 'Atlantis' not found in Odoo" in flags
    assert _block(got[atlantis])[2]                   # the company landed, with its city


def test_what_the_tool_wrote_is_what_odoo_holds(world):
    from crm_migration.engine.verify import field_diff

    rows = field_diff(world["pipe"], "Account", run_id=RUN)
    assert [r for r in rows if r["kind"] == "field"]
    bad = [(r["source_id"], r["field"], r["sent"], r["odoo"]) for r in rows
           if r["kind"] == "field" and not r["match"]]
    assert not bad, bad[:5]
