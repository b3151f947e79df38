"""The pair file's ``approvals:`` section (who may answer a step, who is told), the mapping file's hash, and what
changed between two versions of a mapping file."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from crm_migration.mapping.changes import field_changes, summary
from crm_migration.mapping.spec import SpecError, parse_pair, read_pair_file

ROOT = Path(__file__).resolve().parents[3]
PAIR_FILE = ROOT / "include" / "pairs" / "link_app_to_odoo.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(PAIR_FILE.read_text(encoding="utf-8"))


def with_approvals(raw: dict, approvals) -> dict:
    out = copy.deepcopy(raw)
    out["approvals"] = approvals
    return out


def test_the_mapping_file_in_force_is_hashed_over_its_bytes():
    mf = read_pair_file("link_app_to_odoo")
    assert mf.origin == "pairs/link_app_to_odoo.yaml" and mf.text == PAIR_FILE.read_text(encoding="utf-8")
    assert mf.sha256 == hashlib.sha256(PAIR_FILE.read_bytes()).hexdigest()
    assert read_pair_file(PAIR_FILE).sha256 == mf.sha256


def test_approvals_name_assigned_users_and_notifiers_with_per_step_overrides(raw):
    spec = parse_pair(with_approvals(raw, {
        "assigned_users": ["ada", {"id": "7", "name": "Grace Hopper"}],
        "notifiers": [{"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier", "to": "crm@example.com"}],
        "steps": {"rollback": {"assigned_users": ["oncall"]}}}))
    mapping, rollback = spec.approvals.step("mapping"), spec.approvals.step("rollback")
    assert [dict(u) for u in mapping.assigned_users] == [{"id": "ada", "name": "ada"}, {"id": "7", "name": "Grace Hopper"}]
    assert [dict(u) for u in rollback.assigned_users] == [{"id": "oncall", "name": "oncall"}]
    assert rollback.notifiers == mapping.notifiers          # not given for the step: the default's
    assert parse_pair(raw).approvals.step("full_run").assigned_users == ()      # none: anyone allowed on the DAG


@pytest.mark.parametrize(("approvals", "says"), [
    ({"steps": {"migrate": {}}}, "approvals.steps: unknown step(s) ['migrate']"),
    ({"assigned_users": "ada"}, "approvals.assigned_users must be a list"),
    ({"assigned_users": [{"name": "no id"}]}, "approvals.assigned_users[0]"),
    ({"notifiers": [{"to": "x@example.com"}]}, "approvals.notifiers[0]: needs class: <module>.<Class>"),
    ({"notify": []}, "approvals: unknown key(s) ['notify']"),
])
def test_a_bad_approvals_section_is_refused_naming_the_key(raw, approvals, says):
    with pytest.raises(SpecError) as err:
        parse_pair(with_approvals(raw, approvals), origin="my.yaml")
    assert says in str(err.value) and "my.yaml" in str(err.value)


def test_the_operator_arguments_build_the_notifiers(raw):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from crm_migration.operators.approval import approval_kwargs

    spec = parse_pair(with_approvals(raw, {"assigned_users": ["ada"], "notifiers": [
        {"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier", "to": ["crm@example.com"]}]}))
    kw = approval_kwargs(spec, "sample_diff")
    assert kw["assigned_users"] == [{"id": "ada", "name": "ada"}]
    (n,) = kw["notifiers"]
    assert isinstance(n, SmtpNotifier) and list(n.to) == ["crm@example.com"]
    assert approval_kwargs(parse_pair(raw), "mapping") == {"assigned_users": None, "notifiers": None}


def test_field_changes_name_each_field_added_removed_or_changed(raw):
    new = copy.deepcopy(raw)
    obj = next(iter(new["objects"]))
    fields = new["objects"][obj]["fields"]
    dropped = next(iter(fields))
    del fields[dropped]
    fields["x_score"] = {"from": "custom_fields.score", "fn": "float"}
    new["settings"]["conflict_policy"] = "source_wins"
    rows = field_changes(yaml.safe_dump(raw), yaml.safe_dump(new))
    got = {(r["object"], r["field"], r["change"]) for r in rows}
    assert got == {(obj, dropped, "removed"), (obj, "x_score", "added"), ("(settings)", "conflict_policy", "changed")}
    (setting,) = [r for r in rows if r["object"] == "(settings)"]
    assert setting["after"] == '"source_wins"'
    assert summary(rows).startswith("3 mapping change(s): ")
    assert field_changes(yaml.safe_dump(raw), yaml.safe_dump(raw)) == [] and summary([]) == "no mapping change"
