"""The real DAGs under dag.test() against the sandboxes over HTTP and a private PostgreSQL.

One module-scoped world (Airflow metadata DB, Apto org, Odoo, state DB); the tests run in order:
sample -> full -> rerun -> delta -> rollback, each asserting what lands in Odoo; the last ones roll back every
run, newest first, down to the Odoo the world began with.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import ObjectStoragePath
from dag_flow import MIGRATION_MODELS, audit, flow_world, keyed, last_ids, mail_counts, report_table, run

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# the windows of tests 4 to 7 lie in the past (before the full run: their changes are backdated); the watermark
# tests (6b-6d) change the org after the full run and run windows after that
W1 = NOW.replace(minute=NOW.minute - NOW.minute % 15) - timedelta(minutes=30)
W0 = W1 - timedelta(minutes=15)


#: the sandbox, a real Odoo 17 database, a real Odoo 19 database (JSON-2 through ``transport: auto`` with an API key;
#: the pair's ``targets: "19"`` overrides in force): tests/conftest.py's ``odoo_target``, a database per target
ODOO_TARGETS = ("sandbox", "odoo17", "odoo19")


@pytest.fixture(scope="module")
def world(private_pg, tmp_path_factory, odoo_target):
    from crm_sandbox.apto.server import serve as serve_apto

    apto = serve_apto(port=0, scale=1, seed=7, as_of=W0 - timedelta(days=1))
    org = apto.state
    # bad data Odoo can hold (repair and flag): a malformed email, a stage of another pipeline, a stage of its
    # own pipeline written in another case; each record must land, flagged, with what hangs on it
    pipelines = org.info()["pipelines"]
    brokerage = next(rt for rt, stages in pipelines.items() if "Marketing" in stages)
    leasing_stage = next(st for rt, stages in pipelines.items() if rt != brokerage for st in stages)
    live_deals = sorted(i for i, r in org.tables["Opportunity"].items() if not r.get("IsDeleted")
                        and r["RecordTypeId"] == brokerage and not r["IsClosed"] and r.get("ContactId"))
    d_other, d_case = live_deals[:2]
    bad_contact = org.tables["Opportunity"][d_other]["ContactId"]
    org.update("Opportunity", [{"Id": d_other, "StageName": leasing_stage}, {"Id": d_case, "StageName": " marketing"}],
               at=W0 - timedelta(days=1))
    org.update("Contact", [{"Id": bad_contact, "Email": "Broken@@Example"}], at=W0 - timedelta(days=1))
    try:
        with flow_world(private_pg, odoo_target, tmp_path_factory.mktemp("reports"), pair="apto_to_odoo",
                        source_conn={"AIRFLOW_CONN_APTO_DEFAULT": json.dumps(
                            org.airflow_conn(apto.url, "client_credentials"))},
                        cutover=(W0 - timedelta(hours=1), W1 + timedelta(days=1))) as world:
            rpc = world["rpc"]
            # two Apto brokers have an Odoo user: their records and open tasks are assigned to someone other than
            # the migration user (Odoo would mail them an "assigned to you" for each activity)
            for name, email in (("Marco Rossi", "marco.rossi@aptodemo.com"),
                                ("Priya Patel", "priya.patel@aptodemo.com")):
                rpc("res.users", "create", {"name": name, "login": email, "email": email})
            yield {**world, "apto": apto, "baseline": last_ids(rpc), "mail": mail_counts(rpc),
                   "bad": {"contact": bad_contact, "deal_other_pipeline": d_other, "deal_case": d_case,
                           "pipeline": brokerage}}
    finally:
        apto.stop()


#: three custom fields a customer added to Account in Setup (one of each kind), and the x_ fields they become
CUSTOM = {"Cust_Note__c": ("string", "x_cust_note", "char"), "Cust_Score__c": ("double", "x_cust_score", "float"),
          "Cust_Since__c": ("date", "x_cust_since", "date")}


def test_0_the_plan_is_confirmed_headlessly_with_the_customers_three_new_custom_fields(world):
    """(The refusals of an unconfirmed mapping and of a full run without an approved sample diff happen in
    ``start_run``, before the pair's source or Odoo is touched: test_link_app_dag_runs.py checks them.)"""
    from crm_migration.mapping.spec import read_pair_file

    org = world["apto"].state
    for name, (kind, _, _) in CUSTOM.items():
        org.add_custom_field("Account", name, kind, label=name[:-3].replace("_", " "))
    accounts = sorted(i for i, r in org.tables["Account"].items() if not r.get("IsDeleted"))[:3]
    values = [{"Cust_Note__c": f"Prefers calls, Zoë {n}", "Cust_Score__c": 70.5 + n, "Cust_Since__c": f"201{n}-04-01"}
              for n in range(3)]
    org.update("Account", [{"Id": i, **v} for i, v in zip(accounts, values, strict=True)], at=W0 - timedelta(days=1))
    world["custom"] = dict(zip(accounts, values, strict=True))
    plan = run(world, "apto_to_odoo_plan", run_conf={"approved_by": "ci"})
    conf = world["state"].mapping_confirmation("apto_to_odoo", read_pair_file("apto_to_odoo").sha256)
    assert (conf["confirmed_by"], conf["how"], conf["run_id"]) == ("ci", "approved_by", plan)


def test_1_sample_migrates_a_consistent_slice_and_writes_a_diff(world):
    rid = run(world, "apto_to_odoo_migrate", run_conf={"mode": "sample", "sample_size": 10, "approved_by": "ci"})
    stats = world["state"].get_run(rid)["stats"]
    assert stats["fields_compared"] > 100 and stats["fields_differ"] == 0
    assert stats["report"].startswith("file:///") and ObjectStoragePath(stats["report"]).is_file()
    assert 0 < keyed(world, "res.partner", "apto:Contact:") <= 10
    assert world["state"].get_run(rid)["approved_by"].startswith("ci")
    world["runs"]["sample"] = rid


def test_2_full_run_upserts_over_the_sample_and_reconciles(world):
    org = world["apto"].state
    rid = run(world, "apto_to_odoo_migrate", run_conf={"mode": "full", "approved_by": "ci"})
    assert world["state"].get_run(rid)["stats"]["sample_run"] == world["runs"]["sample"]    # its approved diff
    live = [r for r in org.tables["Account"].values() if not r.get("IsDeleted")]
    assert keyed(world, "res.partner", "apto:Account:") == len(live)      # no second copy of sampled ones
    stats = world["state"].get_run(rid)["stats"]
    assert stats["mismatches"] == 0, stats
    # companies: the cycle was cut, the rest of the hierarchy is there
    parents = list(world["hook"].search_read("res.partner", [("x_migration_key", "=like", "apto:Account:%"),
                                                        ("parent_id", "!=", False)], ["id"]))
    assert len(parents) > 5
    # won deals sit in a won stage at 100 %, lost ones are archived at 0 %
    won = list(world["hook"].search_read("crm.lead", [("x_migration_key", "!=", False), ("stage_id.is_won", "=", True)],
                                    ["probability"]))
    assert won and all(d["probability"] == 100 for d in won)
    lost = list(world["hook"].search_read("crm.lead", [("x_migration_key", "!=", False), ("active", "=", False)],
                                     ["probability"], context={"active_test": False}))
    assert lost and all(d["probability"] == 0 for d in lost)
    # a migration sends no mail: no invitation, no notification queued (run() checks it after every run);
    # open tasks of the brokers who have an Odoo user are theirs
    reps = world["rpc"]("res.users", "search", [("login", "in", ["marco.rossi@aptodemo.com",
                                                                  "priya.patel@aptodemo.com"])])
    assert world["hook"].call("mail.activity", "search_count", [[("user_id", "in", reps),
                                                                 ("x_migration_key", "!=", False)]]) > 0
    # a lost deal keeps its reason: free text outside the picklist became a keyed crm.lost.reason of that name
    deals = {r["Id"]: r for r in org.tables["Opportunity"].values() if not r.get("IsDeleted")}
    ns = world["apto"].state.namespace
    lost = {world["state"].odoo_ids("apto_to_odoo", "Opportunity", [i]).get(i): r[f"{ns}__Loss_Reason__c"]
            for i, r in deals.items() if r["IsClosed"] and not r["IsWon"] and r.get(f"{ns}__Loss_Reason__c")}
    lost.pop(None, None)
    assert lost
    got = {d["id"]: d["lost_reason_id"] for d in world["hook"].read("crm.lead", list(lost), ["lost_reason_id"],
                                                                    context={"active_test": False})}
    assert {i: got[i][1].casefold() if got[i] else None for i in lost} == {
        i: t.strip().casefold() for i, t in lost.items()}
    free = [r for r in world["hook"].search_read("crm.lost.reason", [("x_migration_key", "!=", False)],
                                                 ["name", "x_migration_key"])]
    assert free and all(r["x_migration_key"] == f"apto:lost_reason:{r['name']}" for r in free)
    # chatter oldest first: on every record, message ids follow the dates (Odoo shows chatter by id),
    # across stage history, done tasks and notes
    msgs = list(world["hook"].search_read("mail.message", [("x_migration_key", "!=", False)],
                                          ["model", "res_id", "date", "x_migration_key"]))
    by_record: dict = {}
    for m in msgs:
        by_record.setdefault((m["model"], m["res_id"]), []).append(m)
    mixed = 0
    for ms in by_record.values():
        ms.sort(key=lambda m: m["id"])
        assert [m["date"] for m in ms] == sorted(m["date"] for m in ms), [(m["x_migration_key"], m["date"]) for m in ms]
        mixed += len({m["x_migration_key"].split(":")[1] for m in ms}) > 1
    assert mixed > 3                               # records whose chatter mixes several objects
    # open tasks are activities under the task's own key
    assert keyed(world, "mail.activity", "apto:Task:") == sum(
        1 for r in org.tables["Task"].values() if not r.get("IsDeleted") and r["IsClosed"] is False
        and world["state"].odoo_ids("apto_to_odoo", "Task", [r["Id"]]))
    world["runs"]["full"] = rid


def test_2b_bad_data_odoo_can_hold_lands_flagged_with_what_hangs_on_it(world):
    bad, state, hook = world["bad"], world["state"], world["hook"]
    rid = world["runs"]["full"]
    contact = state.odoo_ids("apto_to_odoo", "Contact", [bad["contact"]])[bad["contact"]]
    (c,) = hook.read("res.partner", [contact], ["email"])
    assert c["email"] == "Broken@@Example"                                   # as written
    deals = state.odoo_ids("apto_to_odoo", "Opportunity", [bad["deal_other_pipeline"], bad["deal_case"]])
    team = state.odoo_ids("apto_to_odoo", "pipeline", [bad["pipeline"]])[bad["pipeline"]]
    got = {d["id"]: d for d in hook.read("crm.lead", list(deals.values()), ["stage_id", "team_id", "partner_id"])}
    other, case = got[deals[bad["deal_other_pipeline"]]], got[deals[bad["deal_case"]]]
    team_field = "team_id" if "team_id" in hook.fields_get("crm.stage") else "team_ids"   # 19: many2many
    stages = sorted(hook.search_read("crm.stage", [(team_field, "=", team)], ["name", "sequence"]),
                    key=lambda st: (st["sequence"], st["id"]))
    assert other["team_id"][0] == team and other["stage_id"][0] == stages[0]["id"]      # its pipeline's first stage
    assert case["stage_id"][1] == "Marketing" and case["team_id"][0] == team             # matched by name
    assert other["partner_id"][0] == contact                                 # the flagged contact is its customer
    # the run's audit and report name the record and the field
    flags = {(f["source_object"], f["source_id"], f["field"]) for f in state.flags(rid)}
    sample_flags = {(f["source_object"], f["source_id"], f["field"]) for f in state.flags(world["runs"]["sample"])}
    assert {("Opportunity", bad["deal_other_pipeline"], "stage_id"), ("Opportunity", bad["deal_case"], "stage_id"),
            ("Contact", bad["contact"], "email")} <= flags | sample_flags
    report = ObjectStoragePath(state.get_run(rid)["stats"]["report"]).read_text(encoding="utf-8")
    assert "Flagged values" in report and bad["deal_other_pipeline"] in report
    # nothing of the org is lost to a value Odoo can hold: what is dead-lettered hangs on a record the source
    # deleted or on none at all, or is a file the source no longer has
    dead = [d for d in state.dead_letters(pair="apto_to_odoo") if "no parent record among" not in d["reason"]]
    assert not [d for d in dead if d["field"] in ("email", "stage_id", "country_id")], dead
    other = sorted({f"{d['source_object']}.{d['field']}: {d['reason']}" for d in dead
                    if "not migrated" not in d["reason"] and "missing in the source" not in d["reason"]})
    assert not other


def test_2c_a_file_missing_in_the_source_is_dead_lettered_and_the_run_goes_on(world):
    """The full run succeeded (test_2) though a file and an attachment of the org answer 404: each is a dead
    letter with its reason and an audit error of that run, nothing empty was created, the rest landed."""
    org, state, hook, rid = world["apto"].state, world["state"], world["hook"], world["runs"]["full"]
    hard = org.data.hard_cases
    dead = {(d["source_object"], d["source_id"]): d for d in state.dead_letters(pair="apto_to_odoo")}
    att = dead[("Attachment", hard["attachment_missing"])]
    assert att["field"] == "datas" and att["reason"].startswith(
        f"file missing in the source (HTTP 404): {org.tables['Attachment'][hard['attachment_missing']]['Name']!r}")
    files = [s for (o, s) in dead if o == "ContentVersion" and s.startswith(f"{hard['file_missing']}/")]
    assert files and all(dead[("ContentVersion", s)]["reason"].startswith("file missing in the source (HTTP 404)")
                         for s in files)
    errors = {r[0] for r in state.get_records(
        "SELECT source_id FROM crm_migration.audit_log WHERE run_id = %s AND action = 'error' AND message LIKE %s",
        parameters=(rid, "datas: file missing in the source (HTTP 404)%"))}
    assert errors == {hard["attachment_missing"], *files}
    keys = [f"apto:Attachment:{hard['attachment_missing']}", *(f"apto:ContentVersion:{s}" for s in files)]
    assert hook.call("ir.attachment", "search_count", [[("x_migration_key", "in", keys)]]) == 0
    landed = hook.call("ir.attachment", "search_count", [[("x_migration_key", "=like", "apto:Attachment:%")]])
    assert landed == len(state.odoo_ids("apto_to_odoo", "Attachment", list(org.tables["Attachment"]))) >= 8


def test_2c_the_customers_three_custom_fields_are_created_and_filled(world):
    rpc = world["rpc"]
    made = {f["name"]: f["ttype"] for f in rpc("ir.model.fields", "search_read", [
        ("model", "=", "res.partner"), ("name", "in", [x for _, x, _ in CUSTOM.values()])], fields=["name", "ttype"])}
    assert made == {x: t for _, x, t in CUSTOM.values()}
    ids = world["state"].odoo_ids("apto_to_odoo", "Account", list(world["custom"]))
    for sid, want in world["custom"].items():
        (rec,) = world["hook"].read("res.partner", [ids[sid]], list(made))
        assert (rec["x_cust_note"], rec["x_cust_score"], rec["x_cust_since"]) == (
            want["Cust_Note__c"], want["Cust_Score__c"], want["Cust_Since__c"]), sid


def test_3_a_rerun_changes_nothing(world):
    rid = run(world, "apto_to_odoo_migrate", run_conf={"mode": "full", "approved_by": "ci"})
    actions = audit(world, rid)
    assert set(actions) <= {"skip", "error"}, actions


def test_4_delta_picks_up_exactly_the_changed_records(world):
    org = world["apto"].state
    contacts = sorted(i for i, r in org.tables["Contact"].items() if not r.get("IsDeleted"))
    migrated = world["state"].odoo_ids("apto_to_odoo", "Contact", contacts)
    # c1 is the customer of deals: its new phone and email must not make Odoo log on them (loader trap 3;
    # run() checks no unkeyed message appears)
    customers = {r.get("ContactId") for r in org.tables["Opportunity"].values() if not r.get("IsDeleted")}
    c1 = next(c for c in contacts if c in migrated and c in customers and c != world["bad"]["contact"])
    c2 = next(c for c in contacts if c in migrated and c != c1)
    ts = (W0 + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    # an open task (a scheduled activity in Odoo) is completed in Apto during the window
    open_tasks = world["state"].lookup("apto_to_odoo", "Task", sorted(
        i for i, r in org.tables["Task"].items() if not r.get("IsDeleted") and r["IsClosed"] is False))
    task = next(i for i, b in sorted(open_tasks.items()) if b.odoo_model == "mail.activity")
    activity_id = open_tasks[task].odoo_id
    org.mutate({"timestamp": ts, "updates": {"Contact": [{"Id": c1, "Title": "Delta Title", "Phone": "+1 415 555 0199",
                                                          "Email": "delta.changed@example.com"}],
                                             "Task": [{"Id": task, "IsClosed": True, "Status": "Completed",
                                                       "CompletedDateTime": ts}]},
                "creates": {"Contact": [{"FirstName": "New", "LastName": "In Delta"}]},
                "deletes": {"Contact": [c2]}})
    rid = run(world, "apto_to_odoo_delta", logical_date=W1)
    actions = audit(world, rid)
    assert (actions.get("update"), actions.get("create"), actions.get("archive"), actions.get("unlink")) == (
        1, 2, 1, 1), actions
    # the completed task: its activity is gone (marked done), its message is in the chatter, dated
    assert world["hook"].call("mail.activity", "search_count", [[("id", "=", activity_id)]]) == 0
    (msg,) = world["hook"].search_read("mail.message", [("x_migration_key", "=", f"apto:Task:{task}")], ["date"])
    assert msg["date"] == (W0 + timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S")
    world["closed_task"] = task
    # the full run's reconciliation still adds up: the task is accounted for as moved on, not missing
    from crm_migration.engine import verify
    from crm_migration.operators.tasks import pipeline

    (recon,) = verify.reconcile(pipeline("apto_to_odoo"), run_id=world["runs"]["full"], objects=["OpenTask"])
    assert (recon["moved"], recon["unaccounted"], recon["status"]) == (1, 0, "ok"), recon["problems"]
    (p,) = world["hook"].read("res.partner", [migrated[c1]], ["function"])
    assert p["function"] == "Delta Title"
    (gone,) = world["hook"].read("res.partner", [migrated[c2]], ["active"], context={"active_test": False})
    assert gone["active"] is False
    world["runs"]["delta"] = rid
    world["delta_ids"] = (migrated[c1], migrated[c2])


def test_5_rollback_of_the_delta_restores_the_pre_delta_state(world):
    c1, c2 = world["delta_ids"]
    run(world, "apto_to_odoo_rollback", run_conf={"run_id": world["runs"]["delta"], "approved_by": "ci"})
    (p,) = world["hook"].read("res.partner", [c1], ["function"])
    assert p["function"] != "Delta Title"
    (back,) = world["hook"].read("res.partner", [c2], ["active"], context={"active_test": False})
    assert back["active"] is True
    assert world["hook"].call("res.partner", "search_count", [[("name", "=", "New In Delta")]]) == 0
    # the completed task is open again in Odoo: its message removed, its activity back, bound in the crosswalk
    key = f"apto:Task:{world['closed_task']}"
    assert world["hook"].call("mail.message", "search_count", [[("x_migration_key", "=", key)]]) == 0
    (act,) = world["hook"].search_read("mail.activity", [("x_migration_key", "=", key)], ["id"])
    bound = world["state"].lookup("apto_to_odoo", "Task", [world["closed_task"]])[world["closed_task"]]
    assert (bound.odoo_model, bound.odoo_id) == ("mail.activity", act["id"])


def test_6_an_empty_window_costs_one_query_per_stream(world):
    org = world["apto"].state
    org.reset_stats()
    rid = run(world, "apto_to_odoo_delta", logical_date=W1 + timedelta(minutes=15))
    calls = org.get_stats()["calls"]
    queries = sum(v for k, v in calls.items() if "query" in k.lower())
    spec_streams = len([n for n in world["bag"].dags["apto_to_odoo_delta"].task_ids if n.startswith("extract_")])
    # nothing written (the pipeline stages have no replication key: re-read whole, all unchanged)
    assert set(audit(world, rid)) <= {"skip"}
    # one window query per stream; once per run: PackageLicense (start_run); the pipeline stages read their
    # record types; file links go in chunks of 200 parent ids (2 at scale 1); RecordType has no IsDeleted
    assert queries <= spec_streams + 6, calls
    assert calls.get("describe", 0) <= 3 and calls.get("describe_global", 0) <= 1, calls   # start_run only


# ---- watermarks: every change between the full run and go-live lands once, whatever the windows did ----------

def _marks(world):
    return {o: r["value"] for o, r in world["state"].watermarks("apto_to_odoo").items()}


def _windows(world, run_id):
    return {r["source_object"]: r for r in world["state"].read_windows(run_id, "apto_to_odoo")}


def _sf(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _after(ts, minutes):
    """The logical date of the window starting ``minutes`` (a multiple of 15) after the 15-minute boundary of ``ts``."""
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0) + timedelta(minutes=minutes + 15)


def _spare_contacts(world, n):
    """``n`` live, migrated contacts no other test of the module uses (from the end of the org)."""
    org, state = world["apto"].state, world["state"]
    live = sorted((i for i, r in org.tables["Contact"].items() if not r.get("IsDeleted")), reverse=True)
    bound = state.odoo_ids("apto_to_odoo", "Contact", live)
    used = {world["bad"]["contact"], *world.get("watermark_contacts", ())}
    picked = [c for c in live if c in bound and c not in used][:n]
    world.setdefault("watermark_contacts", []).extend(picked)
    return [(c, bound[c]) for c in picked]


def _partner(world, odoo_id):
    (p,) = world["hook"].read("res.partner", [odoo_id], ["function", "active"], context={"active_test": False})
    return p


def _head(uri):
    page = ObjectStoragePath(uri).read_text(encoding="utf-8")
    return page[page.index("<h1"):page.index("<h2")]


def test_6b_a_sync_now_reads_from_the_watermarks_to_now_replays_the_fixed_dead_letters_and_says_what_is_left(world):
    """Triggered by hand without a logical date (no data interval): every object from its watermark to now. At
    go-live it also carries what a delta alone cannot mend (one DAG run for all of it):

    - an attachment the full run dead-lettered (its file was lost in the org): the full run's reconciliation says
      the object needs action; the file is back in the org, and Param replay_dead_letters re-reads it by id, lands
      it and closes its dead letter;
    - a contact deleted in the org before the watermark (out of the recycle bin's reach): still active in Odoo,
      named extra; an attachment unlinked in Odoo by hand: named missing;
    - a contact edited in Odoo by hand, then changed in the org: the load keeps the person's edit (keep_odoo), the
      reconciliation names it different and the conflicts report shows both values.

    The run's reconciliation says in one line that the cutover is not complete, and why."""
    org, state, hook, rpc = world["apto"].state, world["state"], world["hook"], world["rpc"]
    lost = org.data.hard_cases["attachment_missing"]
    full = state.get_run(world["runs"]["full"])["stats"]
    head = _head(full["report"])
    assert "need action: open dead letters in" in head and "Attachment" in head
    assert any(line.startswith("Attachment: ") and "file missing in the source (HTTP 404)" in line
               for line in full["dead_letters_need_action"])
    assert full["cutover"].startswith("Cutover NOT complete") and "Attachment" in full["cutover"]
    assert lost in state.open_dead_letter_ids("apto_to_odoo", "Attachment")

    (c, pid), (gone, gone_id), (edited, edited_id) = _spare_contacts(world, 3)
    atts = sorted(i for i, r in org.tables["Attachment"].items() if not r.get("IsDeleted") and i != lost)
    att, att_id = sorted(state.odoo_ids("apto_to_odoo", "Attachment", atts).items())[-1]
    (wrote,) = [p["function"] for p in hook.read("res.partner", [edited_id], ["function"])]
    before = _marks(world)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert at > before["Contact"]                                          # a change after the full run
    org.data.missing_blobs.discard(lost)                                  # fixed in the org: its file is back
    org.mutate({"timestamp": _sf(before["Contact"] - timedelta(days=1)), "deletes": {"Contact": [gone]}})
    rpc("res.partner", "write", [edited_id], {"function": "Edited in Odoo"})
    rpc("ir.attachment", "unlink", [att_id])
    org.mutate({"timestamp": _sf(at), "updates": {"Contact": [{"Id": c, "Title": "Synced now"},
                                                              {"Id": edited, "Title": "Changed in the org"}]}})
    rid = run(world, "apto_to_odoo_delta", logical_date=None, run_conf={"replay_dead_letters": "Attachment"})
    stats = state.get_run(rid)["stats"]

    # from the watermarks to now
    assert _partner(world, pid)["function"] == "Synced now"
    win = _windows(world, rid)["Contact"]
    assert (win["kind"], win["start_at"]) == ("sync_now", before["Contact"]) and win["end_at"] > at
    assert _marks(world)["Contact"] == win["end_at"]
    report = ObjectStoragePath(stats["report"]).read_text(encoding="utf-8")      # the run's report: its windows
    assert "Windows read" in report and "sync now" in report

    # the replayed dead letter landed and is closed (on every run that had it)
    (landed,) = hook.search_read("ir.attachment", [("x_migration_key", "=", f"apto:Attachment:{lost}")],
                                 ["checksum", "res_id"])
    assert landed["checksum"] and landed["res_id"]
    dls = {(d["run_id"], d["resolution"], d["resolved_run_id"], d["replayed_by"])
           for d in state.dead_letters(pair="apto_to_odoo", unresolved_only=False)
           if (d["source_object"], d["source_id"]) == ("Attachment", lost)}
    assert {d[1:] for d in dls} == {("landed", rid, rid)} and world["runs"]["full"] in {d[0] for d in dls}
    assert lost not in state.open_dead_letter_ids("apto_to_odoo", "Attachment")
    assert stats["dead_letters"]["Attachment"]["resolved"] >= 1
    assert "Dead letters of the pair (records, all runs): " in ObjectStoragePath(
        stats["reconciliation_report"]).read_text(encoding="utf-8")

    # what a delta cannot see or must not undo: named
    assert _partner(world, gone_id)["active"] is True                      # a deletion the delta could not see
    assert _partner(world, edited_id)["function"] == "Edited in Odoo"       # keep_odoo: the person's edit stays
    line = stats["cutover"]
    assert line.startswith("Cutover NOT complete") and "extra (" in line and "missing (" in line, line
    assert "Attachment" in line.split("missing (")[1].split(")")[0] and stats["cutover_complete"] is False
    assert line in _head(stats["reconciliation_report"])
    named = {(r["object"], r["source id"], r["is"]): r["why"]
             for r in report_table(stats["reconciliation_report"], "Missing, extra and different records")}
    assert named[("Contact", gone, "extra")].startswith("not alive in the source")
    assert named[("Attachment", att, "missing")] == "in the crosswalk, gone from Odoo (deleted there)"
    assert named[("Contact", edited, "different")] == f"function: the tool wrote {wrote}, Odoo now Edited in Odoo"
    assert ("Attachment", lost, "missing") not in named
    met = report_table(stats["conflicts_report"], "Conflicts met by the load")
    assert [(r["field"], r["the tool wrote"], r["Odoo had"], r["the source sent"]) for r in met
            if r["source id"] == edited] == [("function", str(wrote), "Edited in Odoo", "Changed in the org")]
    now = report_table(stats["conflicts_report"], "Edited in Odoo since the tool wrote them")
    assert [(r["field"], r["the tool wrote"], r["Odoo now"], r["policy (on_conflict)"]) for r in now
            if r["source id"] == edited] == [("function", str(wrote), "Edited in Odoo", "keep_odoo")]
    # put the person's edit back as the tool wrote it: the rollbacks below judge fields by the tool's last write
    rpc("res.partner", "write", [edited_id], {"function": wrote})


def test_6c_a_change_and_a_deletion_outside_the_next_windows_interval_land(world):
    """Changed and deleted in the source after the last landed read, in no window's interval: the next window
    reads from the watermark, never from its own data_interval_start only."""
    org = world["apto"].state
    (changed, changed_id), (deleted, deleted_id) = _spare_contacts(world, 2)
    mark = _marks(world)["Contact"]
    at = mark + timedelta(minutes=1)
    org.mutate({"timestamp": _sf(at), "updates": {"Contact": [{"Id": changed, "Title": "Between windows"}]},
                "deletes": {"Contact": [deleted]}})
    logical = _after(at, 15)
    rid = run(world, "apto_to_odoo_delta", logical_date=logical)
    start, end = logical - timedelta(minutes=15), logical
    assert at < start                                                      # the window's interval misses the change
    assert _partner(world, changed_id)["function"] == "Between windows"
    assert _partner(world, deleted_id)["active"] is False                 # archived in Odoo
    win = _windows(world, rid)["Contact"]
    assert (win["start_at"], win["end_at"], win["watermark"]) == (mark, end, mark)
    assert _marks(world)["Contact"] == end
    acts = audit(world, rid)
    assert (acts.get("update"), acts.get("archive"), acts.get("create")) == (1, 1, None), acts


def test_6d_a_window_failed_half_way_is_caught_up_by_the_next_and_its_rerun_puts_nothing_back(world):
    """A window fails half way (a load task failed: the contacts landed, the file did not) and nothing moves; the
    file changes again; the next window, whose interval misses the first change, lands the file as it is now.
    Then the failed run's load task is cleared and rerun: its staged copy is older than what Odoo holds, so it is
    not written back; nothing is duplicated and no watermark moves (once, never back)."""
    from crm_migration.engine import windows
    from crm_migration.operators.migration import LoadBatchOperator, SetWatermarksOperator

    org, state, hook = world["apto"].state, world["state"], world["hook"]
    (contact, contact_id), = _spare_contacts(world, 1)
    hard = org.data.hard_cases
    atts = sorted(i for i, r in org.tables["Attachment"].items() if not r.get("IsDeleted")
                  and i not in (hard["attachment_missing"], hard["attachment_empty"]))
    att, att_id = next((a, o) for a, o in sorted(state.odoo_ids("apto_to_odoo", "Attachment", atts).items()))
    (old_name,) = [a["name"] for a in hook.read("ir.attachment", [att_id], ["name"])]
    mark = _marks(world)
    at = mark["Contact"] + timedelta(minutes=1)
    org.mutate({"timestamp": _sf(at), "updates": {"Contact": [{"Id": contact, "Title": "Half way"}],
                                                  "Attachment": [{"Id": att, "Name": "Renamed half way.pdf"}]}})
    # the attachment's download refuses (REQUEST_LIMIT_EXCEEDED: not retried by the hook) on every try
    org.inject_fault("limit_exceeded", count=1000, match=f"/sobjects/Attachment/{att}/Body")
    failed_date = _after(at, 0)                                            # its interval covers the change
    assert failed_date - timedelta(minutes=15) <= at < failed_date
    dag = world["bag"].dags["apto_to_odoo_delta"]
    load_files = dag.get_task("load_attachment")
    retries, load_files.retries = load_files.retries, 0          # it fails for good at once (no retry waits)
    try:
        dr = dag.test(logical_date=failed_date)
    finally:
        load_files.retries = retries
        org.clear_faults()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert str(getattr(dr.state, "value", dr.state)) == "failed"
    assert states["load_attachment"] == "failed" and states["set_watermarks"] == "upstream_failed", states
    assert _partner(world, contact_id)["function"] == "Half way"            # landed before the failure
    assert hook.read("ir.attachment", [att_id], ["name"])[0]["name"] == old_name
    assert _marks(world) == mark                                           # nothing moved

    # renamed again; the next window (its interval misses the first change) reads from the watermark
    org.mutate({"timestamp": _sf(at + timedelta(minutes=1)),
                "updates": {"Attachment": [{"Id": att, "Name": "Renamed again.pdf"}]}})
    nxt = failed_date + timedelta(minutes=15)
    assert at < nxt - timedelta(minutes=15)
    rid = run(world, "apto_to_odoo_delta", logical_date=nxt)
    assert hook.read("ir.attachment", [att_id], ["name"])[0]["name"] == "Renamed again.pdf"
    assert _windows(world, rid)["Attachment"]["start_at"] == mark["Attachment"]
    after_next = _marks(world)
    assert after_next["Contact"] == after_next["Attachment"] == nxt
    moved_at = {o: r["updated_at"] for o, r in state.watermarks("apto_to_odoo").items()}

    # the failed run's load_attachment cleared and rerun with what follows it (set_watermarks): same run, same
    # staged batch, holding the older name
    context = {"run_id": dr.run_id}
    for b in state.staged_batches(run_id=dr.run_id, pair="apto_to_odoo", source_object="Attachment"):
        result = LoadBatchOperator(task_id="load_attachment", pair="apto_to_odoo", source_object="Attachment",
                                   batch={**b, "of": 1}).execute(context)
        assert (result["created"], result["updated"]) == (0, 0), result
    SetWatermarksOperator(task_id="set_watermarks", pair="apto_to_odoo", kind="delta").execute(context)
    assert hook.read("ir.attachment", [att_id], ["name"])[0]["name"] == "Renamed again.pdf"
    for model, key in (("res.partner", f"apto:Contact:{contact}"), ("ir.attachment", f"apto:Attachment:{att}")):
        assert keyed(world, model, key) == 1, key
    assert _partner(world, contact_id)["function"] == "Half way"
    assert _marks(world) == after_next
    assert {o: r["updated_at"] for o, r in state.watermarks("apto_to_odoo").items()} == moved_at
    assert all(w["landed_at"] for w in _windows(world, dr.run_id).values())
    assert state.get_run(dr.run_id)["status"] == "success"
    # landing either run again moves nothing (a rerun of set_watermarks)
    for r in (dr.run_id, rid):
        assert not [x for x in windows.land(state, pair="apto_to_odoo", run_id=r, names=list(after_next))
                    if x["moved"]]


# ---- rollback of every run, newest first (keep these last: they undo every run of the world) ------------------

#: what Odoo stamps on every write, whoever writes; and what it computes for itself that a rollback does not put
#: back (seen on the real Odoo 17 and the sandbox alike): a deal's predictive-scoring probability
ODOO_OWN = {"*": frozenset({"write_date", "write_uid", "__last_update"}),
            "crm.lead": frozenset({"automated_probability"})}


def _table_state(world, model, ids=None, fields=None):
    """``({id: record}, fields)``: the records of ``model`` (archived included; ``ids`` only, when given) with every
    stored field (``fields``, when given) but Odoo's own."""
    hook = world["hook"]
    if fields is None:
        own = ODOO_OWN["*"] | ODOO_OWN.get(model, frozenset())
        fields = sorted(f for f, meta in hook.fields_get(model, ["type", "store"]).items()
                        if meta.get("store") and meta.get("type") != "binary" and f not in own)
    if ids is None:
        ids = [r["id"] for r in hook.search_read(model, [], ["id"], context={"active_test": False})]
    # read, not search_read: Odoo's search_read drops active_test for what it reads (a partner's inactive users)
    return {r["id"]: r for r in hook.read(model, list(ids), fields, context={"active_test": False})}, fields


def _odoo_state(world):
    return {m: _table_state(world, m)[0] for m in MIGRATION_MODELS}


def _differences(before, after):
    """``{(model, id): [fields]}`` that differ (a record added or gone: ``["<record>"]``)."""
    out = {}
    for model, b in before.items():
        a = after[model]
        for rid in b.keys() | a.keys():
            if rid not in b or rid not in a:
                out[(model, rid)] = ["<record>"]
            elif diff := sorted(f for f in b[rid] if b[rid][f] != a[rid].get(f)):
                out[(model, rid)] = diff
    return out


@pytest.fixture(scope="module", autouse=True)
def pre_existing(world):
    """What Odoo held before any run: the records of every migration model, every stored field."""
    world["pre_existing"] = {m: _table_state(world, m) for m in MIGRATION_MODELS}


def _assert_pre_existing_as_they_were(world):
    for model, (recs, fields) in world["pre_existing"].items():
        now, _ = _table_state(world, model, ids=recs, fields=fields)
        assert _differences({model: recs}, {model: now}) == {}, model


def _no_keyed_records(world):
    """``{model: count}`` of the records of every migration model carrying a key of the pair (archived too)."""
    out = {}
    for model in MIGRATION_MODELS:
        if "x_migration_key" in world["hook"].fields_get(model):
            out[model] = keyed(world, model, "apto:")
    return {m: n for m, n in out.items() if n}


def run_refused(world, **conf):
    """Trigger the rollback DAG expecting a refusal: the rollback task fails once (no retry), the run fails.
    Return the rows of the report's table of changed records."""
    import csv

    dr = world["bag"].dags["apto_to_odoo_rollback"].test(run_conf={"approved_by": "ci", **conf})
    assert str(getattr(dr.state, "value", dr.state)) == "failed"
    (ti,) = [ti for ti in dr.get_task_instances() if ti.task_id == "rollback"]
    assert (str(getattr(ti.state, "value", ti.state)), ti.try_number) == ("failed", 1)
    run_row = world["state"].get_run(dr.run_id)
    assert run_row["status"] == "refused"
    report = ObjectStoragePath(run_row["stats"]["report"])
    with next(report.parent.glob("rollback_02_*.csv")).open(encoding="utf-8") as fh:
        return report.read_text(encoding="utf-8"), list(csv.DictReader(fh))


def _runs_newest_first(world):
    return [r[0] for r in world["state"].get_records(
        "SELECT run_id FROM crm_migration.runs WHERE pair = 'apto_to_odoo' AND kind IN ('migrate', 'delta') "
        "ORDER BY started_at DESC")]


def test_7_every_run_rolls_back_newest_first_without_force(world):
    org, state, hook = world["apto"].state, world["state"], world["hook"]
    # a last delta with what Odoo recomputes around: a deal moved to another stage (its stage date and close
    # date), a deal deleted (archived: its close date), a contact's new phone and email (sanitised, normalised)
    deals = sorted(i for i, r in org.tables["Opportunity"].items() if not r.get("IsDeleted") and not r["IsClosed"]
                   and i not in (world["bad"]["deal_other_pipeline"], world["bad"]["deal_case"]))
    bound = state.odoo_ids("apto_to_odoo", "Opportunity", deals)
    moved, deleted = [d for d in deals if d in bound][:2]
    rec = org.tables["Opportunity"][moved]
    open_stages = {r["ApiName"]: r["DefaultProbability"] for r in org.tables["OpportunityStage"].values()
                   if r["IsActive"] and not r["IsClosed"]}
    new_stage = next(s for s in org.info()["pipelines"][rec["RecordTypeId"]]
                     if s in open_stages and s != rec["StageName"])
    with_deals = {r.get("ContactId") for r in org.tables["Opportunity"].values()}
    contacts = state.odoo_ids("apto_to_odoo", "Contact", sorted(org.tables["Contact"]))
    contact = next(i for i in sorted(contacts) if i not in with_deals and not org.tables["Contact"][i].get("IsDeleted"))
    at = W1 + timedelta(minutes=18)
    ts = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    before_delta = _odoo_state(world)
    org.mutate({"timestamp": ts, "updates": {
        "Opportunity": [{"Id": moved, "StageName": new_stage, "Probability": open_stages[new_stage],
                         "LastStageChangeDate": ts}],
        "Contact": [{"Id": contact, "Phone": "+44 20 7946 0958", "Email": "Delta.Mail@Example.COM"}]},
        "deletes": {"Opportunity": [deleted]}})
    delta = run(world, "apto_to_odoo_delta", logical_date=W1 + timedelta(minutes=30))
    actions = audit(world, delta)
    assert actions.get("update", 0) >= 2 and actions.get("archive") == 1, actions
    (lead,) = hook.read("crm.lead", [bound[moved]], ["stage_id", "date_last_stage_update"])
    assert lead["stage_id"][1] == new_stage and lead["date_last_stage_update"] == at.strftime("%Y-%m-%d %H:%M:%S")
    after_delta = _odoo_state(world)

    # the full run cannot be rolled back while that delta is in force: refused, naming it, nothing touched
    page, rows = run_refused(world, run_id=world["runs"]["full"])
    assert f"roll back {delta} first" in page
    runs = _runs_newest_first(world)
    later = {f"the tool's later run {r} (not rolled back)" for r in runs[:runs.index(world["runs"]["full"])]}
    by = {r["changed by"] for r in rows}
    assert rows and f"the tool's later run {delta} (not rolled back)" in by and by <= later, by
    assert {(r["model"], r["odoo id"]) for r in rows} >= {("crm.lead", str(bound[moved])),
                                                         ("crm.lead", str(bound[deleted]))}
    assert _differences(after_delta, _odoo_state(world)) == {}

    # newest first, without force, down to the sample (test 8 takes it): each succeeds; the delta's rollback gives
    # back the state before it exactly. The delta and the full run through the rollback DAG, the runs between them
    # through the engine's rollback_run, the rollback task's own code (a DAG run each would add minutes, no check)
    from crm_migration.engine.rollback import rollback_run

    assert runs[0] == delta and set(world["runs"].values()) <= set(runs)
    for rid in runs[:runs.index(world["runs"]["sample"])]:
        if rid in (delta, world["runs"]["full"]):
            run(world, "apto_to_odoo_rollback", run_conf={"run_id": rid, "approved_by": "ci"})
        else:
            result = rollback_run(hook, state, rid)
            assert result["status"] in ("rolled_back", "nothing_to_do"), (rid, result["status"], result["refused"])
        if rid == delta:
            assert _differences(before_delta, _odoo_state(world)) == {}
    # what is left is what the sample created (its contacts among them: test 8 edits one)
    assert _no_keyed_records(world).get("res.partner", 0) > 0


def test_8_a_persons_edit_refuses_the_rollback_naming_record_and_field_and_force_overrides_it(world):
    """The last run that wrote (the sample, after test 7): a person edits a record it created; its rollback is refused,
    naming the record and the field, nothing touched; with force it goes, and Odoo is as it was before any run."""
    from crm_migration.engine.rollback import rollback_run

    state, rpc = world["state"], world["rpc"]
    rid = world["runs"]["sample"]
    org = world["apto"].state
    contact = sorted(state.odoo_ids("apto_to_odoo", "Contact", sorted(org.tables["Contact"])).items())[0]
    rpc("res.partner", "write", [contact[1]], {"function": "Edited by a person"})
    landed = {m: keyed(world, m, "apto:") for m in ("res.partner", "crm.lead", "mail.message")}

    page, rows = run_refused(world, run_id=rid)
    assert [(r["model"], r["odoo id"], r["source id"], r["field"], r["changed by"], r["Odoo now"]) for r in rows] == [
        ("res.partner", str(contact[1]), contact[0], "function", "a person (edited in Odoo)", "Edited by a person")]
    assert "1 records were edited in Odoo" in page and "field &#39;function&#39;" in page      # escaped, as text
    assert {m: keyed(world, m, "apto:") for m in landed} == landed                 # nothing was touched

    run(world, "apto_to_odoo_rollback", run_conf={"run_id": rid, "approved_by": "ci", "force": True})
    runs = _runs_newest_first(world)
    for older in runs[runs.index(rid) + 1:]:          # runs before the sample (none wrote anything)
        assert rollback_run(world["hook"], state, older)["status"] == "nothing_to_do", older
    assert _no_keyed_records(world) == {}
    _assert_pre_existing_as_they_were(world)
