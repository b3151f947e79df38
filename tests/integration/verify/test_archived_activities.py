"""Activities Odoo 17 deletes when their record is archived: the reconciliation and the rollback account for them.

On Odoo 17 a write of ``active=False`` to a partner or a deal unlinks its activities (19 keeps them; the sandbox does
as each). One world per module and target: the Apto sandbox's companies, contacts, deals and open tasks loaded by a
full run (one deal lost before it: its open tasks land on it, flagged on 17, where Odoo keeps an activity created on
an archived record); then a delta archives a deal deleted in the source. On 17 the deal's migrated open tasks are gone: the
delta's manifest keeps them, the reconciliation names each as deleted by Odoo with its archived record (the record,
its key and Odoo id, the run that archived it), counted apart and not failing; the rollback of the delta creates them
again with their keys, without mail, and lists them. A deal lost in a later delta (archived by the load's write) goes
the same way. On 19 they stay, and nothing is counted apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration

FULL, DELTA, LOST, REOPEN = "acts-full", "acts-delta", "acts-lost", "acts-reopen"
#: what the world loads: the open tasks and what they hang on (the chatter and files are not needed here)
OBJECTS = ("User", "RecordType", "OpportunityStage", "Account", "Contact", "Opportunity", "OpenTask")


def _load(pipe, names, run_id, start, end):
    for name in names:
        for b in pipe.extract(name, run_id=run_id, start=start, end=end, batch_size=200,
                              with_deleted=start is not None):
            pipe.load(name, run_id=run_id, batch_no=b["batch_no"])


@pytest.fixture(scope="module")
def world(apto_pipeline, odoo_target):
    from crm_sandbox.apto.server import serve as apto_serve

    apto = apto_serve(port=0, scale=1, seed=7)
    org = apto.state
    # a deal lost before the migration with open tasks on it: created archived, its open tasks on it
    open_tasks: dict[str, list[str]] = {}
    for t in org.tables["Task"].values():
        if not t.get("IsClosed") and not t.get("IsDeleted") and str(t.get("WhatId") or "").startswith("006"):
            open_tasks.setdefault(t["WhatId"], []).append(t["Id"])
    lost_deal = min(d for d in open_tasks if not org.tables["Opportunity"][d].get("IsClosed"))
    lost_stage = next(s["ApiName"] for s in org.tables["OpportunityStage"].values() if s["IsClosed"] and not s["IsWon"])
    org.update("Opportunity", [{"Id": lost_deal, "StageName": lost_stage}])
    try:
        with apto_pipeline(apto, odoo_target, FULL) as pipe:
            _load(pipe, [n for n in pipe.loadable() if n in OBJECTS], FULL, None,
                  datetime.now(UTC) + timedelta(minutes=1))
            state, odoo = pipe.state, pipe.odoo
            # an open deal with open tasks on it, all migrated as activities
            (lead_model,) = odoo.search_read("ir.model", [("model", "=", "crm.lead")], ["id"])
            tasks = state.get_records(
                "SELECT c.source_id, c.odoo_id, c.written->>'res_id' FROM crm_migration.crosswalk c "
                "WHERE c.pair = %s AND c.source_object = 'Task' AND c.odoo_model = 'mail.activity' "
                "AND c.written->>'res_model_id' = %s", parameters=("apto_to_odoo", str(lead_model["id"])))
            deals = {o: s for s, o in state.odoo_ids("apto_to_odoo", "Opportunity", sorted(
                apto.state.tables["Opportunity"])).items()}
            active = {r["id"] for r in odoo.read("crm.lead", sorted(deals), ["active"]) if r["active"]}
            on = {}
            for sid, aid, res_id in tasks:
                if res_id and int(res_id) in active:
                    on.setdefault(int(res_id), []).append((sid, int(aid)))
            lead = max(on, key=lambda i: (len(on[i]), -i))
            later = max((i for i in on if i != lead), key=lambda i: (len(on[i]), -i))     # lost in a later delta
            yield {"pipe": pipe, "apto": apto, "state": state, "odoo": odoo, "lead": lead, "deal": deals[lead],
                   "lost": (lost_deal, sorted(open_tasks[lost_deal])), "lost_stage": lost_stage,
                   "later": (later, deals[later], sorted(on[later])),
                   "tasks": sorted(on[lead]), "mails": odoo.call("mail.mail", "search_count", [[]])}
    finally:
        apto.stop()


def _activities(odoo, lead):
    return {a["x_migration_key"]: a for a in odoo.search_read(
        "mail.activity", [("res_model", "=", "crm.lead"), ("res_id", "=", lead)],
        ["x_migration_key", "summary", "date_deadline", "user_id", "activity_type_id"])}


def test_0_an_open_task_on_a_deal_lost_before_the_migration(world):
    """Odoo 17 keeps an activity created on a record already archived (it deletes them on the next archive): the lost
    deal's open tasks land as activities on it, as the source has them, flagged with the reason on 17; not on 19."""
    pipe, odoo, state = world["pipe"], world["odoo"], world["state"]
    deal, tasks = world["lost"]
    lead = state.odoo_ids("apto_to_odoo", "Opportunity", [deal])[deal]
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is False
    bound = state.lookup("apto_to_odoo", "Task", tasks)
    assert sorted(bound) == tasks and {b.odoo_model for b in bound.values()} == {"mail.activity"}
    assert sorted(_activities(odoo, lead)) == [f"apto:Task:{t}" for t in tasks]
    flags = state.get_records("SELECT source_id, message FROM crm_migration.audit_log WHERE run_id = %s "
                              "AND action = 'flag' AND source_object = 'Task' ORDER BY source_id", parameters=(FULL,))
    mine = [m for s, m in flags if s in tasks and f"open activity on an archived record (crm.lead {lead})" in m]
    if not pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead")):
        assert mine == [] and not [m for _, m in flags if "open activity on an archived record" in m]
        return
    assert len(mine) == len(tasks), flags
    assert all("this Odoo version (17) deletes the activities of a record when it is archived" in m for m in mine)


def test_1_a_delta_archiving_a_deal_deleted_in_the_source(world):
    pipe, odoo, lead = world["pipe"], world["odoo"], world["lead"]
    world["before"] = _activities(odoo, lead)
    assert sorted(world["before"]) == sorted(f"apto:Task:{s}" for s, _ in world["tasks"])
    start = datetime.now(UTC) - timedelta(seconds=1)
    world["apto"].state.delete("Opportunity", [world["deal"]])
    _load(pipe, ["Opportunity"], DELTA, start, datetime.now(UTC) + timedelta(minutes=1))
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is False
    gone = pipe.state.get_records(
        "SELECT source_id, odoo_id, action, message FROM crm_migration.audit_log WHERE run_id = %s "
        "AND odoo_model = 'mail.activity' ORDER BY source_id", parameters=(DELTA,))
    if pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead")):
        assert _activities(odoo, lead) == {}                           # Odoo 17 deleted them with the archive
        assert [(s, o, a) for s, o, a, _ in gone] == [(s, o, "unlink") for s, o in world["tasks"]]
        assert all(f"deleted by Odoo when the run archived crm.lead {lead}" in m for *_, m in gone)
    else:
        assert _activities(odoo, lead) == world["before"] and gone == []    # Odoo 19 keeps them


def test_2_the_reconciliation_names_them_apart_and_does_not_fail(world, tmp_path):
    from crm_migration.engine.verify import reconcile
    from crm_migration.reports.reconcile import write_reconciliation_report

    pipe, lead = world["pipe"], world["lead"]
    (row,) = reconcile(pipe, run_id=FULL, objects=["OpenTask"], completeness=True)
    assert row["status"] == "ok", row["problems"]
    assert row["missing_in_odoo"] == 0 and row["completeness"]["missing_count"] == 0
    if not pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead")):
        assert row["deleted_on_archive"] == 0 and row["archived_away"] == []
        return
    n = len(world["tasks"])
    assert row["deleted_on_archive"] == n and row["completeness"]["archived_away"] == n
    assert row["odoo"] == row["crosswalk"] - n
    assert [(a["source_id"], a["odoo_id"], a["key"], a["record_model"], a["record_id"], a["record_key"])
            for a in sorted(row["archived_away"], key=lambda a: a["source_id"])] == [
        (s, o, f"apto:Task:{s}", "crm.lead", lead, f"apto:Opportunity:{world['deal']}") for s, o in world["tasks"]]
    assert all(a["archived"].startswith(f"by run {DELTA} at ") for a in row["archived_away"])
    page = write_reconciliation_report([row], pair="apto_to_odoo", run_id=FULL, root=f"file://{tmp_path}").read_text()
    assert "Activities Odoo deleted with their archived record" in page and f"apto:Task:{world['tasks'][0][0]}" in page
    assert f"{n} migrated open activit" in page and "missing (OpenTask)" not in page


def test_3_the_rollback_of_the_delta_creates_them_again(world, tmp_path):
    from crm_migration.engine.rollback import rollback_run
    from crm_migration.engine.verify import reconcile
    from crm_migration.reports.rollback import write_rollback_report

    pipe, odoo, lead = world["pipe"], world["odoo"], world["lead"]
    result = rollback_run(odoo, pipe.state, DELTA)
    assert result["status"] == "rolled_back", result
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is True
    now = _activities(odoo, lead)
    strip = lambda acts: {k: {f: v for f, v in a.items() if f != "id"} for k, a in acts.items()}  # noqa: E731
    assert strip(now) == strip(world["before"])                       # as it was, with the keys
    bound = pipe.state.odoo_ids("apto_to_odoo", "Task", [s for s, _ in world["tasks"]])
    assert sorted(bound.values()) == sorted(a["id"] for a in now.values())
    assert odoo.call("mail.mail", "search_count", [[]]) == world["mails"]      # no mail
    if pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead")):
        assert result["recreated"]["mail.activity"] == len(world["tasks"])
        assert sorted((r["source_id"], r["old_id"], r["key"]) for r in result["recreated_records"]) == [
            (s, o, f"apto:Task:{s}") for s, o in world["tasks"]]
        assert all(r["why"] == f"Odoo deleted it when the run archived its record crm.lead {lead}"
                   for r in result["recreated_records"])
        page = write_rollback_report(result, pair="apto_to_odoo", rollback_run_id="rb",
                                     root=f"file://{tmp_path}").read_text()
        assert "Records created again" in page and f"apto:Task:{world['tasks'][0][0]}" in page
    else:
        assert not result["recreated"].get("mail.activity") and result["recreated_records"] == []
    (row,) = reconcile(pipe, run_id=FULL, objects=["OpenTask"])
    assert (row["status"], row["deleted_on_archive"], row["missing_in_odoo"]) == ("ok", 0, 0), row["problems"]


def test_4_a_deal_lost_in_a_delta_the_same(world):
    """A deal lost since the full run: the delta's write archives it (active False with its lost stage); on 17 Odoo
    deletes its activities, kept by the run, named apart by the reconciliation, created again by its rollback."""
    from crm_migration.engine.rollback import rollback_run
    from crm_migration.engine.verify import reconcile

    pipe, odoo = world["pipe"], world["odoo"]
    lead, deal, tasks = world["later"]
    before = _activities(odoo, lead)
    assert sorted(before) == [f"apto:Task:{s}" for s, _ in tasks]
    start = datetime.now(UTC) - timedelta(seconds=1)
    world["apto"].state.update("Opportunity", [{"Id": deal, "StageName": world["lost_stage"]}])
    _load(pipe, ["Opportunity"], LOST, start, datetime.now(UTC) + timedelta(minutes=1))
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is False
    deletes = pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead"))
    assert _activities(odoo, lead) == ({} if deletes else before)
    (row,) = reconcile(pipe, run_id=FULL, objects=["OpenTask"])
    assert row["status"] == "ok" and row["missing_in_odoo"] == 0, row["problems"]
    # (the deal deleted in the source, back after test 3's rollback, is archived again by this delta: its own too)
    assert sorted((a["source_id"], a["record_id"], a["archived"][:len(f"by run {LOST} at ")])
                  for a in row["archived_away"] if a["record_id"] == lead) == (
        [(s, lead, f"by run {LOST} at ") for s, _ in tasks] if deletes else [])
    result = rollback_run(odoo, pipe.state, LOST)
    assert result["status"] == "rolled_back", result
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is True
    strip = lambda acts: {k: {f: v for f, v in a.items() if f != "id"} for k, a in acts.items()}  # noqa: E731
    assert strip(_activities(odoo, lead)) == strip(before)
    assert [r["why"] for r in result["recreated_records"] if r["key"] in before] == (
        [f"Odoo deleted it when the run archived its record crm.lead {lead}"] * len(tasks) if deletes else [])
    (row,) = reconcile(pipe, run_id=FULL, objects=["OpenTask"])
    assert (row["status"], row["deleted_on_archive"]) == ("ok", 0), row["problems"]


def test_5_the_rollback_of_a_delta_that_reopened_a_lost_deal(world):
    """The deal lost before the migration (its open tasks on it, test 0) is reopened by a delta; the rollback archives
    it again, which on 17 deletes its activities: the rollback creates them again, as they were, keys and crosswalk."""
    from crm_migration.engine.rollback import rollback_run

    pipe, odoo, state = world["pipe"], world["odoo"], world["state"]
    deal, tasks = world["lost"]
    lead = state.odoo_ids("apto_to_odoo", "Opportunity", [deal])[deal]
    before = _activities(odoo, lead)
    assert sorted(before) == [f"apto:Task:{t}" for t in tasks]
    org = world["apto"].state
    stage = next(s["ApiName"] for s in org.tables["OpportunityStage"].values() if not s["IsClosed"])
    start = datetime.now(UTC) - timedelta(seconds=1)
    org.update("Opportunity", [{"Id": deal, "StageName": stage}])
    _load(pipe, ["Opportunity"], REOPEN, start, datetime.now(UTC) + timedelta(minutes=1))
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is True
    result = rollback_run(odoo, state, REOPEN)
    assert result["status"] == "rolled_back", result
    assert odoo.read("crm.lead", [lead], ["active"], context={"active_test": False})[0]["active"] is False
    strip = lambda acts: {k: {f: v for f, v in a.items() if f != "id"} for k, a in acts.items()}  # noqa: E731
    now = _activities(odoo, lead)
    assert strip(now) == strip(before)
    assert sorted(state.odoo_ids("apto_to_odoo", "Task", tasks).values()) == sorted(a["id"] for a in now.values())
    deletes = pipe.odoo.archive_deletes_activities(pipe.odoo.fields_get("crm.lead"))
    assert [(r["key"], r["why"]) for r in result["recreated_records"] if r["key"] in before] == (
        [(f"apto:Task:{t}", "Odoo deleted it when the rollback archived its record crm.lead again") for t in tasks]
        if deletes else [])
    assert rollback_run(odoo, state, REOPEN)["status"] == "nothing_to_do"
    assert odoo.call("mail.mail", "search_count", [[]]) == world["mails"]      # no mail
