"""Files that are gone from the source, and meetings on their records: the Apto sandbox over HTTP, a
private PostgreSQL, and each Odoo target (the sandbox, then the real Odoo 17).

One world per target: the schema, companies, contacts, deals, meetings and files of the generated org
are loaded as the migrate DAG loads them. The org has a file and an attachment whose download answers
404 (``file_missing``, ``attachment_missing``); one enhanced note is made to answer 404 too. The files'
downloads (several at once) meet two 429s and an expired session. Tests run in file order: a later one brings the files back, the last ones run deltas of files and notes.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration

RUN, LATER_RUN = "files-run", "files-later-run"
LOADED = ("RecordType", "OpportunityStage", "Account", "Contact", "Opportunity", "Event", "ContentNote",
          "ContentVersion", "Attachment")


@pytest.fixture(scope="module", params=("sandbox", "odoo17", "odoo19"))
def odoo_target(request, make_odoo_target):
    """One Odoo per target for the module (the engine suite's default is one per test)."""
    target, close = make_odoo_target(request.param, "t_files_meetings")
    yield target
    close()


@pytest.fixture(scope="module")
def world(apto_pipeline, odoo_target):
    from crm_sandbox.apto.server import serve as apto_serve

    apto = apto_serve(port=0, scale=1, seed=7)
    org = apto.state
    # an enhanced note whose html is gone as well (the generator's missing ones are a file and an attachment)
    note_doc = org.data.hard_cases["content_note"][0]
    note_version = org.tables["ContentDocument"][note_doc]["LatestPublishedVersionId"]
    org.data.missing_blobs.add(note_version)
    try:
        with apto_pipeline(apto, odoo_target, RUN) as pipe:
            rpc = odoo_target.rpc()
            marks = {m: _last_id(rpc, m) for m in ("mail.message", "mail.activity")}
            results: dict[str, list] = {}
            for name in LOADED:
                if name == "Event":
                    marks = {m: _last_id(rpc, m) for m in ("mail.message", "mail.activity")}
                if name == "ContentVersion":     # its downloads go several at once: two 429s, an expired session
                    # (one: two in a row could both meet one download, whose new session refused at once is an
                    # error, rightly)
                    org.reset_stats()
                    org.inject_fault("status", 2, status=429, match="/VersionData")
                    org.inject_fault("invalid_session", 1, match="/VersionData")
                results[name] = load(pipe, name, RUN)
                if name == "Event":
                    marks = {m: (marks[m], _last_id(rpc, m)) for m in marks}
                if name == "ContentVersion":
                    files_stats = org.get_stats()
            yield {"pipe": pipe, "org": org, "odoo": pipe.odoo, "rpc": rpc, "state": pipe.state, "results": results,
                   "event_marks": marks, "files_stats": files_stats, "note_doc": note_doc, "note_version": note_version, "target": odoo_target}
    finally:
        apto.stop()


def load(pipe, name, run_id, start=None, end=None):
    """Extract and load one object as the DAG does (batches of 50, then its links); a delta from ``start``."""
    end = end or datetime.now(UTC) + timedelta(minutes=1)
    out = [pipe.load(name, run_id=run_id, batch_no=b["batch_no"])
           for b in pipe.extract(name, run_id=run_id, start=start, end=end, batch_size=50,
                                 with_deleted=start is not None)]
    pipe.link(name, run_id=run_id)
    return out


def _last_id(rpc, model) -> int:
    ids = rpc(model, "search", [], order="id desc", limit=1, context={"active_test": False})
    return ids[0] if ids else 0


def _ids(world, name, sids):
    return world["state"].odoo_ids("apto_to_odoo", world["pipe"].target(name).source_object, list(sids))


def _live(org, obj):
    return {i: r for i, r in org.tables[obj].items() if not r.get("IsDeleted")}


# ---- meetings ------------------------------------------------------------------------------------------------


def test_each_meeting_hangs_on_its_deal_company_and_contact(world):
    org, rpc = world["org"], world["rpc"]
    events = _live(org, "Event")
    eids = _ids(world, "Event", events)
    assert len(eids) == len(events)                                  # every meeting landed
    deals = _ids(world, "Opportunity", {e["WhatId"] for e in events.values() if e["WhatId"]})
    companies = _ids(world, "Account", {e["WhatId"] for e in events.values() if e["WhatId"]})
    contacts = _ids(world, "Contact", {e["WhoId"] for e in events.values() if e["WhoId"]})
    got = {r["id"]: r for r in rpc("calendar.event", "read", list(eids.values()),
                                   fields=["opportunity_id", "partner_ids", "res_model", "res_id"])}
    on_deal = on_company = 0
    for sid, e in events.items():
        ev = got[eids[sid]]
        want_deal = deals.get(e["WhatId"])
        assert (ev["opportunity_id"] or [False])[0] == (want_deal or False), (sid, e["WhatId"])
        want_partners = {p for p in (contacts.get(e["WhoId"]), companies.get(e["WhatId"])) if p}
        assert set(ev["partner_ids"]) == want_partners, (sid, e["WhoId"], e["WhatId"])
        on_deal += bool(want_deal)
        on_company += e["WhatId"] in companies
    assert on_deal > 10 and on_company > 5
    # the deal's Meetings list holds its meetings, the company's Meetings its own and its contacts'
    leads = {r["id"]: set(r["calendar_event_ids"]) for r in rpc("crm.lead", "read", list(set(deals.values())),
                                                                 fields=["calendar_event_ids"])}
    for sid, e in events.items():
        if e["WhatId"] in deals:
            assert eids[sid] in leads[deals[e["WhatId"]]]
    assert sum(map(len, leads.values())) == on_deal
    partners = {r["id"]: r for r in rpc("res.partner", "read", list(set(companies.values())),
                                        fields=["meeting_ids", "meeting_count"])}
    for sid, e in events.items():
        if e["WhatId"] in companies:
            p = partners[companies[e["WhatId"]]]
            assert eids[sid] in p["meeting_ids"] and p["meeting_count"] >= len(p["meeting_ids"])


def test_loading_meetings_mails_nobody_and_creates_nothing_unkeyed(world):
    rpc = world["rpc"]
    assert rpc("mail.mail", "search_count", []) == 0
    for model, (before, after) in world["event_marks"].items():
        made = rpc(model, "search_read", [["id", ">", before], ["id", "<=", after]], fields=["x_migration_key"])
        assert [m for m in made if not m["x_migration_key"]] == [], model   # no "Meeting scheduled", no activity
    assert rpc("mail.message", "search_count", [["body", "ilike", "Meeting scheduled"]]) == 0


# ---- files missing in the source ----------------------------------------------------------------------------


def _dead(world, name):
    scope = world["pipe"].target(name).source_object
    return {d["source_id"]: d for d in world["state"].dead_letters(pair="apto_to_odoo") if d["source_object"] == scope}


def _audit(world, name, run_id, action):
    scope = world["pipe"].target(name).source_object
    return {r[0]: r[1] for r in world["state"].get_records(
        "SELECT source_id, message FROM crm_migration.audit_log WHERE run_id = %s AND source_object = %s "
        "AND action = %s", parameters=(run_id, scope, action))}


def test_a_missing_file_is_dead_lettered_and_the_rest_of_its_batch_lands(world):
    org, rpc = world["org"], world["rpc"]
    att = org.data.hard_cases["attachment_missing"]
    (batch,) = world["results"]["Attachment"]                # one batch: the load did not fail
    assert att in batch["dead_letter_ids"]
    row = org.tables["Attachment"][att]
    dead = _dead(world, "Attachment")[att]
    assert (dead["field"], dead["reason"]) == ("datas", (
        f"file missing in the source (HTTP 404): {row['Name']!r} (/services/data/v60.0/sobjects/Attachment/{att}/Body)"
        f" on {_object_of(row['ParentId'])} {row['ParentId']}"))
    assert _audit(world, "Attachment", RUN, "error")[att] == f"datas: {dead['reason']}"
    assert rpc("ir.attachment", "search_count", [["x_migration_key", "=", f"apto:Attachment:{att}"]]) == 0
    # the rest of the batch landed, bytes checked; the empty attachment is an empty file, not a missing one
    landed = _ids(world, "Attachment", _live(org, "Attachment"))
    assert att not in landed and batch["created"] == len(landed) >= 8
    empty = org.data.hard_cases["attachment_empty"]
    (e,) = rpc("ir.attachment", "read", [landed[empty]], fields=["file_size", "name"])
    assert (e["file_size"], e["name"]) == (0, "leer.txt")
    # the file linked to a deal: dead-lettered once per record it hangs on, its parent record untouched
    doc = org.data.hard_cases["file_missing"]
    dead_cv = {s: d for s, d in _dead(world, "ContentVersion").items() if s.startswith(doc)}
    links = [lk["LinkedEntityId"] for lk in org.tables["ContentDocumentLink"].values()
             if lk["ContentDocumentId"] == doc and lk["LinkedEntityId"][:3] in ("001", "003", "006")]
    assert sorted(dead_cv) == sorted(f"{doc}/{p}" for p in links)
    title = org.tables["ContentDocument"][doc]["Title"]
    for d in dead_cv.values():
        assert d["field"] == "datas" and d["reason"].startswith(f"file missing in the source (HTTP 404): '{title}.")
    parents = _ids(world, "Contact", links) | _ids(world, "Account", links) | _ids(world, "Opportunity", links)
    assert len(parents) == len(links)                               # what the file hangs on is in Odoo
    # the enhanced note whose html is gone: no empty note posted, dead-lettered on "body"
    notes = {s: d for s, d in _dead(world, "ContentNote").items() if s.startswith(world["note_doc"])}
    note_title = org.tables["ContentDocument"][world["note_doc"]]["Title"]
    assert notes and all(d["field"] == "body" and d["reason"].startswith(
        f"file missing in the source (HTTP 404): {note_title!r} (/services/data/v60.0/sobjects/ContentVersion/"
        f"{world['note_version']}/VersionData) on ") for d in notes.values())
    assert all(d["record"]["_blob"] == "<missing: HTTP 404>" for d in notes.values())
    assert rpc("mail.message", "search_count", [["x_migration_key", "=like", f"apto:ContentNote:{world['note_doc']}/%"]]) == 0


def test_files_downloaded_at_once_land_on_their_records_through_429s_and_an_expired_session(world):
    import hashlib

    org, rpc, stats = world["org"], world["rpc"], world["files_stats"]
    assert stats["events"].get("fault:status") == 2 and stats["events"].get("fault:invalid_session") == 1
    assert 1 <= stats["calls"].get("token", 0) <= 2          # a new session; not one per thread that waited for it
    (batch,) = world["results"]["ContentVersion"]            # one batch: nothing failed
    landed = world["state"].odoo_ids("apto_to_odoo", world["pipe"].target("ContentVersion").source_object,
                                     batch_ids(world, "ContentVersion"))
    assert len(landed) == batch["created"] >= 5
    got = {r["id"]: r for r in rpc("ir.attachment", "read", list(landed.values()),
                                   fields=["checksum", "file_size", "res_model", "res_id"])}
    for sid, oid in landed.items():                         # each file's bytes on its own record
        doc, parent = sid.split("/")
        data = org.data.blobs[org.tables["ContentDocument"][doc]["LatestPublishedVersionId"]]
        assert (got[oid]["file_size"], got[oid]["checksum"] or "") == (
            len(data), hashlib.sha1(data).hexdigest() if data else ""), sid   # noqa: S324 - Odoo's checksum
        parents = _ids(world, {"001": "Account", "003": "Contact", "006": "Opportunity"}[parent[:3]], [parent])
        assert got[oid]["res_id"] == parents[parent], sid


def batch_ids(world, name):
    """Source ids the run staged for ``name``."""
    return [r[0] for r in world["state"].get_records(
        "SELECT source_id FROM crm_migration.staging WHERE run_id = %s AND source_object = %s",
        parameters=(RUN, name))]


def _object_of(sid):
    return {"001": "Account", "003": "Contact", "006": "Opportunity"}[sid[:3]]


def test_the_reconciliation_counts_a_missing_file_as_a_dead_letter(world):
    from crm_migration.engine.verify import reconcile

    rows = {r["object"]: r for r in reconcile(world["pipe"], run_id=RUN, objects=["Attachment", "ContentVersion"])}
    org = world["org"]
    for name in ("Attachment", "ContentVersion"):
        r = rows[name]
        assert r["status"] == "ok" and r["unaccounted"] == 0, r["problems"]
        assert r["landed"] + r["dead_letters"] == r["staged"] and r["odoo"] == r["crosswalk"]
    assert org.data.hard_cases["attachment_missing"] in _dead(world, "Attachment")


def test_a_later_run_where_the_file_is_back_creates_it(world):
    org, rpc = world["org"], world["rpc"]
    att, doc = org.data.hard_cases["attachment_missing"], org.data.hard_cases["file_missing"]
    org.data.missing_blobs.clear()                                  # the files are back in the org
    (batch,) = load(world["pipe"], "Attachment", LATER_RUN)
    assert batch["dead_lettered"] == 0 and batch["created"] == 1   # the one that was missing; the rest unchanged
    (a,) = rpc("ir.attachment", "search_read", [["x_migration_key", "=", f"apto:Attachment:{att}"]],
               fields=["file_size", "checksum"])
    assert a["file_size"] == len(org.data.blobs[att]) > 0
    assert att not in _dead(world, "Attachment")                    # its dead letter is resolved
    load(world["pipe"], "ContentVersion", LATER_RUN)
    load(world["pipe"], "ContentNote", LATER_RUN)
    assert not [s for s in _dead(world, "ContentVersion") if s.startswith(doc)]
    assert not [s for s in _dead(world, "ContentNote") if s.startswith(world["note_doc"])]
    assert rpc("ir.attachment", "search_count", [["x_migration_key", "=like", f"apto:ContentVersion:{doc}/%"]]) >= 1
    assert rpc("mail.mail", "search_count", []) == 0


# ---- a delta of files and notes: what changed in the window, not a list per record -----------------------------

FILES = ("ContentVersion", "ContentNote")


def _queries(org) -> int:
    return sum(n for k, n in org.get_stats()["calls"].items() if k.startswith("query"))


def _staged(world, name, run_id):
    return {r[0]: r[1] for r in world["state"].get_records(
        "SELECT source_id, deleted FROM crm_migration.staging WHERE run_id = %s AND source_object = %s",
        parameters=(run_id, name))}


def _parents_of(org, doc):
    return sorted(lk["LinkedEntityId"] for lk in org.tables["ContentDocumentLink"].values()
                  if lk["ContentDocumentId"] == doc and lk["LinkedEntityId"][:3] in ("001", "003", "006")
                  and not lk.get("IsDeleted"))


def test_an_empty_delta_of_files_asks_one_query_per_stream_and_nothing_of_odoo(world):
    org, pipe = world["org"], world["pipe"]
    newest = max(r["SystemModstamp"] for t in ("ContentDocument", "ContentVersion", "ContentDocumentLink")
                 for r in org.tables[t].values())
    start = datetime.strptime(newest[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC) + timedelta(seconds=1)
    parents = sum(len(_ids(world, n, org.tables[n])) for n in ("Account", "Contact", "Opportunity"))
    assert parents > 200        # a list per 200 records would ask more than one query per stream
    org.reset_stats()
    calls = sum(pipe.odoo.calls.values())
    for name in FILES:
        assert pipe.extract(name, run_id="files-empty-delta", start=start, end=datetime.now(UTC), batch_size=50,
                            with_deleted=True) == []
    assert _queries(org) == len(FILES)          # the documents changed in the window: none, so no link query
    assert sum(pipe.odoo.calls.values()) == calls


def test_a_delta_of_files_lands_the_new_version_the_new_note_and_reads_the_deletion(world):
    import hashlib

    org, rpc, pipe = world["org"], world["rpc"], world["pipe"]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    # a file linked to several records gets a new version
    doc = org.data.hard_cases["file_multi_link"][0]
    d = org.tables["ContentDocument"][doc]
    data = b"the numbers, revised in the delta window"
    (version,) = org.create("ContentVersion", [{"ContentDocumentId": doc, "Title": d["Title"],
                                                "PathOnClient": f"{d['Title']}.{d['FileExtension']}",
                                                "FileExtension": d["FileExtension"], "FileType": d["FileType"]}],
                            at=at, blobs=[data])
    linked = _parents_of(org, doc)
    assert len(linked) >= 2 and len(_ids(world, "ContentVersion", [f"{doc}/{p}" for p in linked])) == len(linked)
    # a new enhanced note on a migrated company
    account = sorted(_ids(world, "Account", org.tables["Account"]))[0]
    (note,) = org.create("ContentDocument", [{"Title": "Delta note", "FileType": "SNOTE", "FileExtension": "snote"}],
                         at=at)
    org.create("ContentVersion", [{"ContentDocumentId": note, "Title": "Delta note", "FileType": "SNOTE",
                                   "FileExtension": "snote", "PathOnClient": "Delta note"}],
               at=at, blobs=[b"<p>Written in the <b>delta</b> window</p>"])
    org.create("ContentDocumentLink", [{"LinkedEntityId": account, "ContentDocumentId": note, "ShareType": "V",
                                        "Visibility": "AllUsers"}], at=at)
    # a file deleted in the source: its links go with it, and the delta reads them as deletions
    named = {doc, org.data.hard_cases["file_missing"], *org.data.hard_cases["file_multi_link"]}
    gone = next(k for k, r in org.tables["ContentDocument"].items() if k not in named and r["FileType"] != "SNOTE"
                and not r.get("IsDeleted") and _parents_of(org, k))
    gone_links = _parents_of(org, gone)
    org.delete("ContentDocument", [gone], at=at)
    org.reset_stats()
    files = load(pipe, "ContentVersion", "files-delta", start=at, end=datetime.now(UTC))
    notes = load(pipe, "ContentNote", "files-delta", start=at, end=datetime.now(UTC))
    assert _queries(org) == 2 * len(FILES)       # per stream: the documents changed, then their links
    assert _staged(world, "ContentVersion", "files-delta") == {
        **{f"{doc}/{p}": False for p in linked}, **{f"{gone}/{p}": True for p in gone_links}}
    assert _staged(world, "ContentNote", "files-delta") == {f"{note}/{account}": False}
    assert [(b["created"], b["updated"]) for b in files] == [(0, len(linked))]
    assert [(b["created"], b["updated"]) for b in notes] == [(1, 0)]
    got = rpc("ir.attachment", "search_read", [["x_migration_key", "=like", f"apto:ContentVersion:{doc}/%"]],
              fields=["checksum", "res_id"])
    assert len(got) == len(linked) and {a["checksum"] for a in got} == {hashlib.sha1(data).hexdigest()}  # noqa: S324
    (msg,) = rpc("mail.message", "search_read", [["x_migration_key", "=", f"apto:ContentNote:{note}/{account}"]],
                 fields=["body", "model", "res_id"])
    assert "<b>delta</b>" in msg["body"] and msg["model"] == "res.partner"
    assert version == org.tables["ContentDocument"][doc]["LatestPublishedVersionId"]
    assert rpc("mail.mail", "search_count", []) == 0


# ---- a full rerun: ids and stamps first, in full only what changed ----------------------------------------------


def test_a_full_rerun_lists_ids_and_stamps_and_reads_in_full_only_what_changed(world, caplog):
    org, rpc, pipe = world["org"], world["rpc"], world["pipe"]
    landed = _ids(world, "Account", org.tables["Account"])
    changed, other = sorted(landed)[:2]
    org.update("Account", [{"Id": changed, "Name": "Renamed before the rerun"}])
    caplog.set_level(logging.INFO, logger="crm_migration")
    out = load(pipe, "Account", "files-rerun")
    (listing,) = re.findall(r"Account: (\d+) records listed by id and SystemModstamp; (\d+) unchanged since the run "
                            r"that last wrote them, staged again from the state DB, (\d+) read in full", caplog.text)
    listed, again, full = map(int, listing)
    assert listed == again + full and 1 <= full <= listed // 10 and listed >= len(landed)
    assert sum(b["rows"] for b in out) == listed                  # every record staged: the run is whole
    assert (sum(b["created"] for b in out), sum(b["updated"] for b in out)) == (0, 1)
    assert rpc("res.partner", "read", [landed[changed]], fields=["name"])[0]["name"] == "Renamed before the rerun"
    staged = world["state"].read_batch(run_id="files-rerun", pair="apto_to_odoo", source_object="Account",
                                       batch_no=0)
    assert {s["source_id"] for s in staged} >= {other} and all(s["record"] for s in staged)


def test_a_full_rerun_reads_again_a_record_whose_parent_changed(world):
    """A contact carries its company's address (``Account.BillingCity``): the company's change does not move the
    contact's stamp, and the rerun's listing sees it."""
    org, pipe, state = world["org"], world["pipe"], world["state"]
    contacts = {c: r for c, r in _live(org, "Contact").items() if r.get("AccountId")}
    landed = _ids(world, "Contact", contacts)
    account = next(r["AccountId"] for c, r in sorted(contacts.items()) if c in landed)
    theirs = sorted(c for c in landed if contacts[c]["AccountId"] == account)
    org.update("Account", [{"Id": account, "BillingCity": "Neustadt an der Rerun"}])
    load(pipe, "Contact", "files-rerun-parent")
    staged = {s["source_id"]: s["record"] for b in state.staged_batches(run_id="files-rerun-parent",
                                                                       pair="apto_to_odoo", source_object="Contact")
              for s in state.read_batch(run_id="files-rerun-parent", pair="apto_to_odoo", source_object="Contact",
                                        batch_no=b["batch_no"])}
    assert len(staged) >= len(landed) and theirs
    assert {staged[c]["Account"]["BillingCity"] for c in theirs} == {"Neustadt an der Rerun"}
    other = next(c for c in sorted(landed) if contacts[c]["AccountId"] != account)
    assert staged[other]["Account"]["BillingCity"] == org.tables["Account"][contacts[other]["AccountId"]]["BillingCity"]
