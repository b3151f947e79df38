"""The Link app pair's DAGs under dag.test() against the Link app sandbox over HTTP and a private PostgreSQL.

One module-scoped world per Odoo target (Airflow metadata DB, Link app tenant, Odoo, state DB); the tests run in
file order: sample (with its field-level diff) -> full (its lost file dead-lettered, named as needing action) -> a
rerun that writes nothing -> a delta carrying exactly the tenant's changes and replaying the file once it is back ->
the delta's rollback giving back what Odoo held before it (the file's dead letter open again). Every run through ``run``
also checks that no mail was queued and every record created is keyed.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import ObjectStoragePath
from dag_flow import audit, flow_world, keyed, last_ids, mail_counts, refused, run

pytestmark = pytest.mark.integration
PAIR = "link_app_to_odoo"
CONTACT_FIELDS = ["name", "function", "phone", "email", "parent_id", "active"]
DEAL_FIELDS = ["name", "stage_id", "probability", "active", "lost_reason_id", "date_closed"]


#: the sandbox, a real Odoo 17 database, a real Odoo 19 database (tests/conftest.py's ``odoo_target``)
ODOO_TARGETS = ("sandbox", "odoo17", "odoo19")


@pytest.fixture(scope="module")
def world(private_pg, tmp_path_factory, odoo_target):
    from crm_sandbox.link_app.server import serve as link_serve

    link = link_serve(port=0, scale=1, seed=7)
    tenant = link.state
    now = datetime.now(UTC)
    try:
        with flow_world(private_pg, odoo_target, tmp_path_factory.mktemp("reports"), pair=PAIR,
                        source_conn={"AIRFLOW_CONN_LINK_APP_DEFAULT": json.dumps(tenant.airflow_conn(link.url))},
                        cutover=(now - timedelta(hours=1), now + timedelta(days=1))) as world:
            rpc = world["rpc"]
            # the tenant's owners with an Odoo user (one archived): their records and open activities are
            # theirs, not the migration user's (Odoo would mail them an "assigned to you" for each activity)
            users = {u["login"]: rpc("res.users", "create", {"name": u["name"], "login": u["login"],
                                                             "email": f"{u['login']}@example.com"},
                                     context={"no_reset_password": True}) for u in tenant.odoo_users()}
            rpc("res.users", "write", [users["jonas.weber"]], {"active": False})
            yield {**world, "tenant": tenant, "hard": tenant.hard_cases, "baseline": last_ids(rpc),
                   "mail": mail_counts(rpc), "users": users}
    finally:
        link.stop()


def odoo_id(world, scope, sid):
    return world["state"].odoo_ids(PAIR, scope, [sid])[sid]


def deal_activities(world, lead):
    """``{key: (summary, due date, type, user)}`` of the keyed activities of a deal."""
    return {a["x_migration_key"]: (a["summary"], a["date_deadline"], a["activity_type_id"], a["user_id"])
            for a in world["hook"].search_read("mail.activity", [("res_model", "=", "crm.lead"), ("res_id", "=", lead),
                                                                 ("x_migration_key", "!=", False)],
                                               ["x_migration_key", "summary", "date_deadline", "activity_type_id",
                                                "user_id"])}


def read(world, model, oid, fields):
    (rec,) = world["hook"].read(model, [oid], fields, context={"active_test": False})
    return rec


#: three custom fields a user added to companies in the tenant (one of each kind), and the x_ fields they become
CUSTOM = {"cust_note": ("text", "x_link_app_cust_note", "char"), "cust_score": ("number", "x_link_app_cust_score", "float"),
          "cust_tier": ("picklist", "x_link_app_cust_tier", "selection")}


def test_0_records_move_only_on_a_confirmed_mapping_and_a_full_run_on_an_approved_sample_diff(world):
    from crm_migration.mapping.spec import read_pair_file

    if world["odoo"].kind != "sandbox":
        pytest.skip("refused before Odoo is touched: checked once, on the sandbox")
    why = refused(world, f"{PAIR}_migrate", run_conf={"mode": "full", "approved_by": ""})
    assert "has no recorded confirmation" in why and f"{PAIR}_plan" in why and "confirm_mapping" in why, why
    assert "x_migration_key" not in world["rpc"]("res.partner", "fields_get", [], attributes=["type"])  # nothing ran
    mf = read_pair_file(PAIR)
    world["state"].confirm_mapping(pair=PAIR, mapping_sha256=mf.sha256, mapping_file=mf.origin, mapping_text=mf.text,
                                   confirmed_by="Ada", how="person")
    why = refused(world, f"{PAIR}_migrate", run_conf={"mode": "full"})
    assert "needs an approved sample diff" in why and "mode=sample" in why and "approve_diff" in why, why


def test_0b_the_plan_is_confirmed_headlessly_with_three_new_custom_fields(world):
    from crm_migration.mapping.spec import read_pair_file

    tenant = world["tenant"]
    tenant.create("custom_fields", [{"object": "company", "key": key, "label": key.replace("_", " ").title(),
                                     "type": kind, "options": ["Gold", "Silver"] if kind == "picklist" else None}
                                    for key, (kind, _, _) in CUSTOM.items()])
    companies = sorted(tenant.tables["companies"], key=int)[:3]
    values = [{"cust_note": f"Prefers calls, Zoë {n}", "cust_score": 70.5 + n, "cust_tier": ("Gold", "Silver")[n % 2]}
              for n in range(3)]
    tenant.update("companies", [{"id": c, "custom_fields": {**(tenant.tables["companies"][c]["custom_fields"] or {}),
                                                            **v}} for c, v in zip(companies, values, strict=True)])
    plan = run(world, f"{PAIR}_plan", run_conf={"approved_by": "ci"})
    conf = world["state"].mapping_confirmation(PAIR, read_pair_file(PAIR).sha256)
    assert (conf["confirmed_by"], conf["how"], conf["run_id"]) == ("ci", "approved_by", plan)
    world["custom"] = dict(zip(companies, values, strict=True))


def test_1_sample_migrates_a_consistent_slice_and_writes_a_diff(world):
    rid = run(world, f"{PAIR}_migrate", run_conf={"mode": "sample", "sample_size": 10, "approved_by": "ci"})
    row = world["state"].get_run(rid)
    stats = row["stats"]
    assert stats["fields_compared"] > 50 and stats["fields_differ"] == 0, stats["summary"]
    assert stats["report"].startswith("file:///") and ObjectStoragePath(stats["report"]).is_file()
    assert row["approved_by"].startswith("ci")
    assert 0 < keyed(world, "res.partner", "link_app:contacts:") <= 10
    assert 0 < keyed(world, "crm.lead", "link_app:deals:") <= 10
    world["runs"]["sample"] = rid


def test_2_full_run_upserts_over_the_sample_and_reconciles(world):
    tenant, hard = world["tenant"], world["hard"]
    rid = run(world, f"{PAIR}_migrate", run_conf={"mode": "full", "approved_by": "ci"})
    stats = world["state"].get_run(rid)["stats"]
    assert stats["mismatches"] == 0 and not stats["dead_letters_over_limit"], stats
    assert stats["sample_run"] == world["runs"]["sample"]               # the sample whose diff was approved
    assert ObjectStoragePath(stats["report"]).is_file()
    # every record once: no second copy of the sampled ones
    for scope, model in (("contacts", "res.partner"), ("companies", "res.partner"), ("deals", "crm.lead")):
        assert keyed(world, model, f"link_app:{scope}:") == len(tenant.tables[scope]), scope
    # the only dead letter is the file the tenant lost
    dead = world["state"].dead_letters(run_id=rid, pair=PAIR)
    assert [(d["source_object"], d["source_id"]) for d in dead] == [("attachments", hard["attachment_missing"])]
    # what a user sees in Odoo: won deals in a won stage at 100 %, lost ones archived at 0 % with their reason
    for sid in hard["deal_won"]:
        d = read(world, "crm.lead", odoo_id(world, "deals", sid), ["probability", "active"])
        assert (d["probability"], d["active"]) == (100.0, True), sid
    for sid in hard["deal_lost"]:
        d = read(world, "crm.lead", odoo_id(world, "deals", sid), ["probability", "active", "lost_reason_id"])
        assert (d["probability"], d["active"], d["lost_reason_id"][1]) == (
            0.0, False, tenant.tables["deals"][sid]["lost_reason"]), sid
    # a contact hangs on the company of its primary link; open activities of owners with a user are theirs
    multi = hard["contact_multi_company"]
    primary = next(lk["company_id"] for lk in tenant.tables["contact_companies"].values()
                   if lk["contact_id"] == multi and lk["is_primary"])
    assert read(world, "res.partner", odoo_id(world, "contacts", multi), ["parent_id"])["parent_id"][0] == odoo_id(
        world, "companies", primary)
    assert world["hook"].call("mail.activity", "search_count", [[("user_id", "in", list(world["users"].values())),
                                                                 ("x_migration_key", "!=", False)]]) > 0
    world["runs"]["full"] = rid


def test_2b_the_three_custom_fields_are_created_and_filled(world):
    rpc = world["rpc"]
    made = {f["name"]: f["ttype"] for f in rpc("ir.model.fields", "search_read", [
        ("model", "=", "res.partner"), ("name", "in", [x for _, x, _ in CUSTOM.values()])], fields=["name", "ttype"])}
    assert made == {x: t for _, x, t in CUSTOM.values()}
    for sid, want in world["custom"].items():
        rec = read(world, "res.partner", odoo_id(world, "companies", sid), list(made))
        assert [rec[x] for _, x, _ in CUSTOM.values()] == [want[k] for k in CUSTOM], sid


def _not_on_19(world) -> None:
    """On Odoo 19 the flow stops after the three custom fields (plan, confirmation, sample, full run): the rerun, delta
    and rollback pass there too (measured: 107 s more) but 19's rerun/delta/rollback path is the Apto flow's, which
    keeps make test's time."""
    if world["odoo"].kind == "odoo19":
        pytest.skip("on Odoo 19 the Link app flow ends at the three custom fields; tests/dags/test_dag_runs.py runs "
                    "19's rerun, delta and rollback")


def _head(uri):
    page = ObjectStoragePath(uri).read_text(encoding="utf-8")
    return page[page.index("<h1"):page.index("<h2")]


def test_2c_the_full_runs_dead_letter_is_named_as_needing_action(world):
    """The file the tenant lost: the full run's headline and reconciliation say the attachments need action (the
    delta of test 4 replays it once the file is back, and the rollback of that delta opens it again)."""
    state, lost = world["state"], world["hard"]["attachment_missing"]
    full = state.get_run(world["runs"]["full"])["stats"]
    head = _head(full["report"])
    assert "need action: open dead letters in" in head and "attachments" in head
    assert [line for line in full["dead_letters_need_action"] if line.startswith("attachments: ")], full[
        "dead_letters_need_action"]
    assert full["cutover"].startswith("Cutover NOT complete") and "attachments" in full["cutover"], full["cutover"]
    assert lost in state.open_dead_letter_ids(PAIR, "attachments")
    assert not list(world["hook"].search_read("ir.attachment", [("x_migration_key", "=", _key(lost))], ["id"]))


def _key(attachment):
    return f"link_app:attachments:{attachment}"


def test_3_a_rerun_changes_nothing(world):
    _not_on_19(world)
    rid = run(world, f"{PAIR}_migrate", run_conf={"mode": "full", "approved_by": "ci"})
    actions = audit(world, rid)
    assert set(actions) <= {"skip", "error"}, actions
    assert world["state"].get_run(rid)["stats"]["mismatches"] == 0


def test_4_delta_carries_exactly_the_tenants_changes(world):
    """An update, a create and a deletion in the tenant after the full run; the delta of the window covering them
    updates the contact, creates the company and archives the deal, and writes nothing else. The lost file is back
    in the tenant (behind the API: no record changed, no window reads it again): the same delta, with Param
    replay_dead_letters, re-reads that attachment by id, lands it on its record and closes its dead letters."""
    _not_on_19(world)
    tenant, hard = world["tenant"], world["hard"]
    linked = {lk["contact_id"] for lk in tenant.tables["contact_companies"].values()}
    contact = next(c for c in sorted(tenant.tables["contacts"], reverse=True) if c not in linked
                   and c not in (hard["contact_multi_company"], hard["contact_no_primary"]))
    gone = hard["deal_open"][1]
    ids = {"contact": odoo_id(world, "contacts", contact), "deal": odoo_id(world, "deals", gone)}
    world["before_delta"] = {"contact": read(world, "res.partner", ids["contact"], CONTACT_FIELDS),
                             "deal": read(world, "crm.lead", ids["deal"], DEAL_FIELDS),
                             "activities": deal_activities(world, ids["deal"])}
    # Odoo 17 deletes the activities of a record it archives (the sandbox too; 19 keeps them)
    deletes = world["hook"].archive_deletes_activities(world["hook"].fields_get("crm.lead"))
    assert world["before_delta"]["activities"], "the deleted deal has open activities"
    at = datetime.now(UTC).replace(microsecond=0)
    tenant.mutate({"timestamp": at.isoformat(),
                   "updates": {"contacts": [{"id": contact, "title": "Changed in the delta"}]},
                   "creates": {"companies": [{"name": "Delta Newco LLC", "address": {"city": "Lyon", "country": "FR"}}]},
                   "deletes": {"deals": [gone]}})
    logical = at.replace(minute=at.minute - at.minute % 15, second=0) + timedelta(minutes=15)
    assert logical - timedelta(minutes=15) <= at < logical                  # the window's interval covers them
    lost, fixed = hard["attachment_missing"], b"%PDF-1.4\n% the 2019 scan, found again\n"
    tenant.data.files[lost] = fixed                                        # fixed in the tenant: the file is back
    rid = run(world, f"{PAIR}_delta", logical_date=logical, run_conf={"replay_dead_letters": "attachments"})
    acts = {k: v for k, v in audit(world, rid).items() if k != "skip"}
    n = len(world["before_delta"]["activities"])
    assert acts == {"update": 1, "create": 2, "archive": 1, **({"unlink": n} if deletes else {})}, acts
    # the reconciliation names the deal's activities Odoo deleted with the archive apart: not missing, no mismatch
    stats = world["state"].get_run(rid)["stats"]
    assert stats["mismatches"] == 0, stats
    comp = stats["completeness"]["open_activities"]
    assert comp["missing_count"] == 0 and comp["archived_away"] == (n if deletes else 0), comp
    page = ObjectStoragePath(stats["reconciliation_report"]).read_text(encoding="utf-8")
    assert ("deleted by Odoo when their record was archived" in page) is deletes
    assert read(world, "res.partner", ids["contact"], ["function"])["function"] == "Changed in the delta"
    assert read(world, "crm.lead", ids["deal"], ["active"])["active"] is False          # deleted -> archived
    (company,) = world["hook"].search_read("res.partner", [("name", "=", "Delta Newco LLC")],
                                           ["x_migration_key", "city", "country_id", "is_company"])
    assert company["x_migration_key"].startswith("link_app:companies:") and company["is_company"] is True
    assert (company["city"], world["rpc"]("res.country", "read", [company["country_id"][0]], fields=["code"])[0][
        "code"]) == ("Lyon", "FR")
    # the replayed dead letter: landed on its record, closed on every run that had it (the full run and the rerun)
    state, rec = world["state"], tenant.tables["attachments"][lost]
    (landed,) = world["hook"].search_read("ir.attachment", [("x_migration_key", "=", _key(lost))],
                                          ["name", "datas", "res_model", "res_id"])
    assert (landed["name"], base64.b64decode(landed["datas"])) == (rec["file_name"], fixed)
    scope = {"contact": "contacts", "company": "companies", "deal": "deals"}[rec["related"]["type"]]
    assert (landed["res_model"], landed["res_id"]) == ("crm.lead" if scope == "deals" else "res.partner",
                                                       odoo_id(world, scope, str(rec["related"]["id"])))
    dls = {(d["run_id"], d["resolution"], d["resolved_run_id"], d["replayed_by"])
           for d in state.dead_letters(pair=PAIR, unresolved_only=False)
           if (d["source_object"], d["source_id"]) == ("attachments", lost)}
    assert {d[1:] for d in dls} == {("landed", rid, rid)} and world["runs"]["full"] in {d[0] for d in dls}
    assert lost not in state.open_dead_letter_ids(PAIR, "attachments")
    assert state.dead_letter_tally(PAIR)["attachments"]["open"] == 0
    world["runs"]["delta"], world["delta_ids"] = rid, ids


def test_5_rollback_of_the_delta_restores_the_pre_delta_values(world):
    _not_on_19(world)
    ids, before = world["delta_ids"], world["before_delta"]
    rid = run(world, f"{PAIR}_rollback", run_conf={"run_id": world["runs"]["delta"], "approved_by": "ci"})
    assert world["state"].get_run(rid)["status"] == "rolled_back"
    assert read(world, "res.partner", ids["contact"], CONTACT_FIELDS) == before["contact"]
    assert read(world, "crm.lead", ids["deal"], DEAL_FIELDS) == before["deal"]
    # the activities Odoo 17 deleted with the archive are created again, with their keys, bound in the crosswalk
    assert sorted(deal_activities(world, ids["deal"]).values()) == sorted(before["activities"].values())
    assert world["hook"].call("res.partner", "search_count", [[("name", "=", "Delta Newco LLC")]],
                              {"context": {"active_test": False}}) == 0
    # the file the delta replayed is removed again, so its dead letters are open again: the cutover needs it
    lost = world["hard"]["attachment_missing"]
    assert not list(world["hook"].search_read("ir.attachment", [("x_migration_key", "=", _key(lost))], ["id"]))
    assert lost in world["state"].open_dead_letter_ids(PAIR, "attachments")
