"""A company's parent goes with its create: the Apto org's companies on each Odoo target (the sandbox, the real
Odoo 17 and 19), one world per target.

First a run whose batches are staged by hand in an order no extract gives (a parent in an earlier batch, in the
same batch two levels up, in a later batch; a 2-cycle and a 3-cycle whose members land in different batches, so
that a record is created with the parent the cycle cut later takes from it; a self-parent); then a full run of
every company (batches numbered parents first), a rerun with nothing changed, and a delta with new companies under
existing ones. After each, Odoo's parents are the source's minus the links cut (the smallest id's in each cycle).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration

PAIR = "apto_to_odoo"
HAND, FULL, RERUN, DELTA = "parents-hand", "parents-full", "parents-rerun", "parents-delta"
ADDRESS = {"BillingStreet": "1 Harbor Plaza", "BillingCity": "Boston", "BillingState": "MA",
           "BillingPostalCode": "02108", "BillingCountry": "USA"}
NO_ADDRESS = dict.fromkeys(ADDRESS)
CUT = "hierarchy cycle broken: "


@pytest.fixture(scope="module", params=("sandbox", "odoo17", "odoo19"))
def odoo_target(request, make_odoo_target):
    """One Odoo per target for the module."""
    target, close = make_odoo_target(request.param, "t_company_parents")
    yield target
    close()


def expected(table):
    """``({id: parent id or None}, cut ids)`` of the live accounts: the source's parents, a parent that is not a live
    account dropped, and in each cycle the link from its smallest id cut (written independently of the engine)."""
    parent = {sid: r.get("ParentId") or None for sid, r in table.items() if not r.get("IsDeleted")}
    parent = {sid: p if p in parent else None for sid, p in parent.items()}
    cut = set()
    for start in parent:
        path, node = [], start
        while node is not None and node not in path:
            path.append(node)
            node = parent[node]
        if node is not None:
            cut.add(min(path[path.index(node):]))
    return {sid: None if sid in cut else p for sid, p in parent.items()}, cut


def odoo_parents(pipe, sids):
    """``{id: parent id or None}`` as Odoo holds them (a parent that is not a migrated account: ``"?"``)."""
    ids = pipe.state.odoo_ids(PAIR, "Account", list(sids))
    back = {oid: sid for sid, oid in ids.items()}
    recs = pipe.odoo.read("res.partner", list(ids.values()), ["parent_id"])
    return {back[r["id"]]: back.get(r["parent_id"][0], "?") if r["parent_id"] else None for r in recs}


def cut_audit(pipe, run_id):
    return Counter(sid for (sid,) in pipe.state.get_records(
        "SELECT source_id FROM crm_migration.audit_log WHERE run_id = %s AND starts_with(message, %s)",
        parameters=(run_id, CUT)))


def staged(pipe, run_id):
    return dict(pipe.state.get_records(
        "SELECT source_id, batch_no FROM crm_migration.staging WHERE run_id = %s AND pair = %s AND source_object = %s",
        parameters=(run_id, PAIR, "Account")))


def run(pipe, run_id, *, start=None, batch_size=4):
    """Extract, load and link the companies as the migrate DAG does; returns the refs, the link results and the
    Odoo calls of the loads and the link."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    refs = pipe.extract("Account", run_id=run_id, start=start, end=end, batch_size=batch_size,
                        with_deleted=start is not None)
    before = Counter(pipe.odoo.calls)
    for b in refs:
        pipe.load("Account", run_id=run_id, batch_no=b["batch_no"])
    links = pipe.link("Account", run_id=run_id)
    return refs, links, Counter(pipe.odoo.calls) - before


@pytest.fixture(scope="module")
def world(apto_pipeline, odoo_target):
    from crm_sandbox.apto.server import serve as apto_serve

    apto = apto_serve(port=0, scale=1, seed=7)
    org = apto.state
    table = org.tables["Account"]
    live = sorted(a for a, r in table.items() if not r.get("IsDeleted"))
    referenced = {r.get("ParentId") for r in table.values()}
    free = [a for a in live if not table[a].get("ParentId") and a not in referenced]
    assert len(free) >= 15, len(free)
    h, (bare, child, root) = free[:12], free[12:15]
    # every parent has an address, but one (below)
    org.update("Account", [{"Id": a, **ADDRESS} for a in sorted(referenced & set(live) | {root})
                           if not any(table[a].get(k) for k in ADDRESS)])
    # by hand: batch -> ids. A 2-cycle (h0 <-> h1: h0's link is cut; h0 is created with h1 first), a 3-cycle
    # (h2 -> h3 -> h4 -> h2: h2's link cut; h2 created with h3, h4 with h2), three levels in one batch
    # (h7 -> h5 -> h6), a parent in an earlier batch (h8 -> h6), in a later one (h9 -> h10), a self-parent (h11)
    parents = {h[0]: h[1], h[1]: h[0], h[2]: h[3], h[3]: h[4], h[4]: h[2], h[5]: h[6], h[7]: h[5], h[8]: h[6],
               h[9]: h[10], h[11]: h[11]}
    batches = {0: [h[1], h[3], h[5], h[6], h[7], h[9]], 1: [h[0], h[2], h[8], h[11]], 2: [h[4], h[10]]}
    org.update("Account", [{"Id": a, "ParentId": p, **ADDRESS} for a, p in parents.items()]
               + [{"Id": a, **ADDRESS} for a in (h[6], h[10])])
    # a company without any address whose only child has one: Odoo 17 would give it the child's on the child's create
    org.update("Account", [{"Id": bare, **NO_ADDRESS}, {"Id": child, "ParentId": bare, **ADDRESS,
                                                         "BillingCity": "Chicago", "BillingState": "IL"}])
    out = {"h": h, "bare": bare, "child": child, "org": org}
    end = datetime.now(UTC) + timedelta(minutes=1)
    with apto_pipeline(apto, odoo_target, HAND) as pipe:
        out["pipe"] = pipe
        # the hand run: the extract's rows of h, staged again in the batches above
        records = {}
        for b in pipe.extract("Account", run_id=HAND, start=None, end=end, batch_size=100):
            records.update({s["source_id"]: s["record"] for s in pipe.state.read_batch(
                run_id=HAND, pair=PAIR, source_object="Account", batch_no=b["batch_no"])})
        pipe.state.clear_staging(run_id=HAND, pair=PAIR, source_object="Account")
        for n, sids in batches.items():
            pipe.state.stage(run_id=HAND, pair=PAIR, source_object="Account", batch_no=n,
                             rows=[{"source_id": s, "record": records[s]} for s in sids])
        for n in batches:
            pipe.load("Account", run_id=HAND, batch_no=n)
        out["hand_links"] = pipe.link("Account", run_id=HAND)
        out["hand_parents"] = odoo_parents(pipe, h)
        out["hand_relink"] = pipe.link("Account", run_id=HAND)       # a rerun of the link step
        # every company, batches parents first
        out["full_refs"], out["full_links"], out["full_calls"] = run(pipe, FULL)
        out["full_staged"] = staged(pipe, FULL)
        out["full_expected"] = expected(table)
        out["full_parents"] = odoo_parents(pipe, live)
        out["full_refs_again"] = pipe.extract("Account", run_id=FULL, start=None, end=end, batch_size=4)
        out["full_staged_again"] = staged(pipe, FULL)
        out["addresses"] = {r["id"]: r for r in pipe.odoo.read(
            "res.partner", list(pipe.state.odoo_ids(PAIR, "Account", [bare, child]).values()),
            ["street", "city", "zip", "country_id", "parent_id"])}
        # nothing changed
        out["rerun_refs"], out["rerun_links"], out["rerun_calls"] = run(pipe, RERUN)
        # a delta: two new companies under an existing one, and a company moved under another
        t0 = datetime.now(UTC) - timedelta(seconds=1)
        new1, = org.create("Account", [{"Name": "Delta Holdings", "ParentId": root, **ADDRESS}])
        new2, = org.create("Account", [{"Name": "Delta Subsidiary", "ParentId": new1, **ADDRESS}])
        org.update("Account", [{"Id": h[8], "ParentId": h[10]}])
        out["delta_refs"], out["delta_links"], out["delta_calls"] = run(pipe, DELTA, start=t0)
        out["delta_expected"] = expected(table)
        out["delta_parents"] = odoo_parents(pipe, [a for a, r in table.items() if not r.get("IsDeleted")])
        out["new"] = (new1, new2)
        yield out
    apto.stop()


def test_a_hand_ordered_run_ends_with_the_sources_parents_minus_the_cut_links(world):
    h = world["h"]
    assert world["hand_parents"] == {
        h[0]: None, h[1]: h[0], h[2]: None, h[3]: h[4], h[4]: h[2], h[5]: h[6], h[6]: None, h[7]: h[5],
        h[8]: h[6], h[9]: h[10], h[10]: None, h[11]: None}
    (link,) = world["hand_links"]
    # the cut links of h0 and h2 (created with a parent) are cleared, h1 and h3 get theirs (parents first), and
    # h9's parent, in a later batch; the rest went with their creates
    assert link["written"] == 5
    assert {c["source_id"] for c in link["cycles_cut"]} == {h[0], h[2], h[11]}
    assert cut_audit(world["pipe"], HAND) == Counter({h[0]: 1, h[2]: 1, h[11]: 1})
    assert world["hand_relink"][0]["written"] == 0                    # a rerun writes and reports nothing again


def test_new_records_took_their_parent_in_their_create(world):
    h, pipe = world["h"], world["pipe"]
    ids = pipe.state.odoo_ids(PAIR, "Account", h)
    created = {sid: (changes or {}).get("parent_id") for sid, changes in pipe.state.get_records(
        "SELECT source_id, changes FROM crm_migration.audit_log WHERE run_id = %s AND action = 'create'",
        parameters=(HAND, ))}
    # an earlier batch's parent, and a parent created a level before in the same batch; h0 and h2 took the
    # parents the cut later took from them
    assert {s: created[s] for s in (h[8], h[5], h[7], h[0], h[2], h[4])} == {
        h[8]: ids[h[6]], h[5]: ids[h[6]], h[7]: ids[h[5]], h[0]: ids[h[1]], h[2]: ids[h[3]], h[4]: ids[h[2]]}
    assert {s: created[s] for s in (h[1], h[3], h[9], h[11])} == dict.fromkeys((h[1], h[3], h[9], h[11]))


def test_a_full_run_numbers_batches_parents_first_and_writes_no_parent_afterwards(world):
    parents, cut = world["full_expected"]
    assert world["full_parents"] == parents
    at = world["full_staged"]
    assert all(at[p] <= at[c] for c, p in parents.items() if p), "a parent staged after its child"
    assert [r["batch_no"] for r in world["full_refs"]] == list(range(len(world["full_refs"])))
    assert world["full_refs_again"] == world["full_refs"] and world["full_staged_again"] == at   # a rerun of extract
    calls = world["full_calls"]
    assert calls[("res.partner", "load")] == 0
    (link,) = world["full_links"]
    trap = world["pipe"].spec.target_version < 19          # Odoo 17 gives a bare parent its first child's address
    assert (link["written"], calls[("res.partner", "write")]) == ((1, 1) if trap else (0, 0))
    assert {c["source_id"] for c in link["cycles_cut"]} == cut
    assert set(cut_audit(world["pipe"], FULL)) == cut


def test_a_parent_without_address_keeps_none_under_its_first_child(world):
    got = world["addresses"]
    bare, child = (world["pipe"].state.odoo_ids(PAIR, "Account", [s])[s] for s in (world["bare"], world["child"]))
    assert (got[bare]["street"], got[bare]["city"], got[bare]["zip"], got[bare]["country_id"]) == (False,) * 4
    assert (got[child]["city"], got[child]["parent_id"][0]) == ("Chicago", bare)


def test_a_rerun_with_nothing_changed_writes_nothing(world):
    calls = world["rerun_calls"]
    assert {m: calls[("res.partner", m)] for m in ("create", "write", "load")} == {"create": 0, "write": 0, "load": 0}
    assert world["rerun_links"][0]["written"] == 0
    assert not cut_audit(world["pipe"], RERUN)                 # nothing of the hierarchy changed: nothing reported


def test_a_delta_creates_new_companies_with_their_parents_and_moves_one(world):
    parents, _cut = world["delta_expected"]
    assert world["delta_parents"] == parents
    new1, new2 = world["new"]
    assert (parents[new1], parents[new2], parents[world["h"][8]]) == (world["org"].tables["Account"][new1]["ParentId"],
                                                                       new1, world["h"][10])
    (link,) = world["delta_links"]
    assert link["written"] == 1                  # the company moved (an update); the new ones went with their creates
    assert world["delta_calls"][("res.partner", "create")] == 2       # one per level
