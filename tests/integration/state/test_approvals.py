"""Approvals on a real state DB: what a migrate run needs before it moves a record (a confirmed mapping; for a full
run an approved sample diff of it, or ``approved_by``), how a decision is recorded (a person's answer in the
Airflow UI, or the ``approved_by`` Param, as such), and what the step shows a person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_migration.engine.approvals import check_migrate_run
from crm_migration.errors import ApprovalRequired
from crm_migration.mapping.spec import MappingFile, read_pair_file

pytestmark = pytest.mark.integration
PAIR = "link_app_to_odoo"


def start(state, run_id, mode, mapping):
    state.start_run(run_id, pair=PAIR, dag_id=f"{PAIR}_migrate", kind="migrate", mode=mode,
                    mapping_sha256=mapping.sha256)


def gate(state, run_id, mode, mapping, approved_by=None):
    start(state, run_id, mode, mapping)
    return check_migrate_run(state, pair=PAIR, mapping=mapping, run_id=run_id, mode=mode, approved_by=approved_by)


def test_a_run_refuses_a_mapping_nobody_confirmed_and_approved_by_confirms_it_as_such(state):
    mf = read_pair_file(PAIR)
    with pytest.raises(ApprovalRequired) as err:
        gate(state, "m1", "sample", mf)
    text = str(err.value)
    assert f"{PAIR}_plan" in text and "confirm_mapping" in text and "approved_by" in text and mf.sha256[:12] in text
    assert state.mapping_confirmation(PAIR, mf.sha256) is None

    out = gate(state, "m2", "sample", mf, approved_by="ci")
    conf = state.mapping_confirmation(PAIR, mf.sha256)
    assert (conf["confirmed_by"], conf["how"], conf["run_id"], conf["mapping_text"]) == ("ci", "approved_by", "m2",
                                                                                          mf.text)
    assert out["mapping_confirmed_by"].startswith("ci (approved_by, ")
    assert [(a["what"], a["decided_by"], a["how"]) for a in state.approvals("m2")] == [("mapping", "ci", "approved_by")]
    assert state.get_run("m2")["approved_by"] == "ci (mapping)"
    # confirmed now: the next run needs no approved_by, and records no second confirmation
    gate(state, "m3", "sample", mf)
    assert state.count("mapping_confirmations", pair=PAIR) == 1


def test_a_full_run_needs_an_approved_sample_diff_of_the_same_mapping(state):
    mf = read_pair_file(PAIR)
    other = MappingFile("pairs/other.yaml", mf.text + "\n# edited\n")
    for m in (mf, other):
        state.confirm_mapping(pair=PAIR, mapping_sha256=m.sha256, mapping_file=m.origin, mapping_text=m.text,
                              confirmed_by="Ada", how="person", run_id="plan_1")
    gate(state, "s1", "sample", mf)                           # a sample whose diff nobody approved yet
    gate(state, "s2", "sample", other)                        # another mapping's sample, approved
    state.finish_run("s2", status="success", stats={"report": "file:///r/s2/diff.html"})
    state.record_approval(run_id="s2", pair=PAIR, what="sample_diff", decision="approved", decided_by="Ada",
                          how="person", task_id="approve_diff")
    with pytest.raises(ApprovalRequired) as err:
        gate(state, "f1", "full", mf)
    assert "approved sample diff" in str(err.value) and "mode=sample" in str(err.value)
    assert "approve_diff" in str(err.value) and "approved_by" in str(err.value)

    state.finish_run("s1", status="success", stats={"report": "file:///r/s1/diff.html"})
    state.record_approval(run_id="s1", pair=PAIR, what="sample_diff", decision="approved", decided_by="Bob",
                          decided_by_id="12", how="person", task_id="approve_diff")
    out = gate(state, "f2", "full", mf)
    assert (out["sample_run"], out["sample_report"], out["sample_approved_by"]) == ("s1", "file:///r/s1/diff.html",
                                                                                  "Bob (person)")
    assert state.approvals("f2") == []                        # nothing waived

    # approved_by runs a full run without an approved sample diff, recorded as such
    third = MappingFile("pairs/third.yaml", mf.text + "\n# third\n")
    out = gate(state, "f3", "full", third, approved_by="ci")
    assert "sample_run" not in out
    assert [(a["what"], a["how"], a["report"]) for a in state.approvals("f3")] == [
        ("mapping", "approved_by", None), ("sample_diff", "approved_by", None)]


def test_the_next_run_names_the_fields_changed_since_the_previous_runs_mapping(state, tmp_path):
    mf = read_pair_file(PAIR)
    gate(state, "r1", "sample", mf, approved_by="ci")
    edited = tmp_path / "link_app_to_odoo.yaml"
    import yaml

    raw = yaml.safe_load(mf.text)
    first = next(iter(raw["objects"]))
    raw["objects"][first]["fields"]["x_loyalty"] = {"from": "custom_fields.loyalty", "fn": "text"}
    edited.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    out = gate(state, "r2", "sample", read_pair_file(edited), approved_by="ci")
    changes = out["mapping_changes"]
    assert changes["since_run"] == "r1"
    assert [(r["object"], r["field"], r["change"]) for r in changes["rows"]] == [(first, "x_loyalty", "added")]
    # the run's audit report says which fields changed, and who approved what, how
    from crm_migration.reports.audit import write_audit_report

    state.update_run_stats("r2", out)
    html = write_audit_report(state, pair=PAIR, run_id="r2", root=tmp_path / "reports").read_text(encoding="utf-8")
    assert f"Mapping changed since run r1: 1 mapping change(s): {first}.x_loyalty added." in html
    assert "Mapping changes since run r1" in html and "custom_fields.loyalty" in html
    assert "Approvals" in html and "approved_by Param" in html
    # the same mapping again: nothing to report
    assert "mapping_changes" not in gate(state, "r3", "sample", read_pair_file(edited))


def test_a_persons_answer_is_recorded_with_their_airflow_user_and_confirms_the_file_as_it_is_then(state):
    from airflow.sdk.exceptions import AirflowFailException

    from crm_migration.operators.approval import MigrationApprovalOperator

    op = MigrationApprovalOperator(task_id="confirm_mapping", pair=PAIR, what="mapping", subject="confirm",
                                   report="file:///reports/plan.html")
    event = {"chosen_options": ["Approve"], "params_input": {}, "responded_at": datetime.now(UTC),
             "responded_by_user": {"id": "7", "name": "Ada Lovelace"}}
    op.execute_complete(context={"run_id": "plan_9", "params": {}}, event=event)
    mf = read_pair_file(PAIR)
    conf = state.mapping_confirmation(PAIR, mf.sha256)
    assert (conf["confirmed_by"], conf["confirmed_by_id"], conf["how"], conf["report"]) == (
        "Ada Lovelace", "7", "person", "file:///reports/plan.html")
    (a,) = state.approvals("plan_9")
    assert (a["decision"], a["decided_by"], a["decided_by_id"], a["how"], a["mapping_sha256"]) == (
        "approved", "Ada Lovelace", "7", "person", mf.sha256)

    diff = MigrationApprovalOperator(task_id="approve_diff", pair=PAIR, what="sample_diff", subject="diff")
    with pytest.raises(AirflowFailException, match="approve_diff: the sample diff was rejected by Bob"):   # not retried
        diff.execute_complete(context={"run_id": "s9", "params": {}},
                              event={**event, "chosen_options": ["Reject"], "responded_by_user": {"id": "8", "name": "Bob"}})
    (r,) = state.approvals("s9")
    assert (r["what"], r["decision"], r["decided_by"]) == ("sample_diff", "rejected", "Bob")


def test_the_step_says_what_to_check_and_where(state, monkeypatch, tmp_path):
    from crm_migration.operators.approval import MigrationApprovalOperator

    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", str(tmp_path))
    uri = (tmp_path / PAIR / "s1" / "diff.html").as_uri()
    op = MigrationApprovalOperator(task_id="approve_diff", pair=PAIR, what="sample_diff", subject="diff",
                                   modes=("sample",), body="Sample run s1 has landed.", report=uri,
                                   checks=["Fields that differ (0 expected).", "", "Records not landed."],
                                   assigned_users={"id": "7", "name": "Ada"})
    assert op.execute({"run_id": "s1", "params": {"mode": "full"}}) is None     # not a sample: nothing to decide
    assert state.approvals("s1") == []
    out = op.execute({"run_id": "s1", "params": {"mode": "sample", "approved_by": "ci"}})
    assert out["chosen_options"] == ["Approve"]
    assert op.body == (f"Sample run s1 has landed.\n\n**Report to check:** `{uri}` ([open in the on-call view]"
                       f"(/crm-migration/reports/{PAIR}/s1/diff.html))\n\n**What to check:**\n"
                       "- Fields that differ (0 expected).\n- Records not landed.")
    assert op.assigned_users == [{"id": "7", "name": "Ada"}]
    (a,) = state.approvals("s1")
    assert (a["what"], a["decided_by"], a["how"], a["report"]) == ("sample_diff", "ci", "approved_by", uri)
