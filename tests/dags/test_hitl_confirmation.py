"""A person confirms the mapping through Airflow's own REST API, the way the UI's *Required actions* page does.

The Link app pair's plan DAG runs under ``dag.test()`` in a thread, with no ``approved_by``: it parks at
``confirm_mapping`` (Airflow 3.3: the task is ``awaiting_input``, no trigger; ``dag.test()`` keeps the run alive
until an answer recorded from outside flips it back to scheduled). The test is that outside: Airflow's API app
in process (``airflow.api_fastapi.app.create_app``), the SimpleAuthManager with real users and a password file,
a JWT from ``POST /auth/token``, then ``GET /api/v2/dags/{dag}/dagRuns/~/hitlDetails`` (the pending step, its body)
and ``PATCH .../taskInstances/confirm_mapping/-1/hitlDetails`` (the answer), over the same metadata DB.

One world per Odoo target, the tests in file order: a rejection fails the plan and ``_migrate`` stays refused,
naming the step; then the YAML is edited and approved: the state DB holds the person, when, and the sha256 of the
edited file, a sample run's diff is approved the same way, and ``_migrate`` (full, no ``approved_by``) starts.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from datetime import UTC, datetime

import pytest
from airflow_ui import CHROMIUM, api_server, page_text
from dag_flow import ROOT, airflow_world, refused, state_of

pytestmark = pytest.mark.integration
PAIR = "link_app_to_odoo"
PLAN, MIGRATE = f"{PAIR}_plan", f"{PAIR}_migrate"
#: the sandbox only: the plan reads Odoo and writes nothing, the sample run is the DAG suites' (on odoo17 this module took 2.5 min more)
ODOO_TARGETS = ("sandbox",)
#: the person (role ``user``: may answer a DAG's steps) and a viewer (may read them, not answer)
GRACE, VICTOR = ("grace", secrets.token_urlsafe(12)), ("victor", secrets.token_urlsafe(12))


@pytest.fixture(scope="module")
def world(private_pg, tmp_path_factory, odoo_target):
    from crm_sandbox.link_app.server import serve as link_serve

    link = link_serve(port=0, scale=1, seed=7)
    home = tmp_path_factory.mktemp("hitl")
    pairs = home / "pairs"                       # [crm_migration] pairs_folder: the mapping the person edits
    pairs.mkdir()
    mapping = pairs / f"{PAIR}.yaml"
    mapping.write_bytes((ROOT / "include" / "pairs" / f"{PAIR}.yaml").read_bytes())
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(dict([GRACE, VICTOR])), encoding="utf-8")
    env = {
        "AIRFLOW_CONN_CRM_MIGRATION_STATE": private_pg.new_database(f"hitl{odoo_target.kind}"),
        "AIRFLOW_CONN_LINK_APP_DEFAULT": json.dumps(link.state.airflow_conn(link.url)),
        "AIRFLOW_CONN_ODOO_DEFAULT": odoo_target.conn_json(),
        "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(home / "reports"),
        "AIRFLOW__CRM_MIGRATION__PAIRS_FOLDER": str(pairs),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{GRACE[0]}:user,{VICTOR[0]}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }
    try:
        with airflow_world(env) as bag:
            from airflow.api_fastapi.app import create_app, purge_cached_app
            from fastapi.testclient import TestClient

            from crm_migration.hooks.state import MigrationStateHook

            purge_cached_app()                   # the auth manager of this environment, not a previous module's
            with TestClient(create_app("core")) as api:
                yield {"bag": bag, "api": api, "mapping": mapping, "state": MigrationStateHook(), "home": home,
                       "token": {u: token(api, u, p) for u, p in (GRACE, VICTOR)}}
            purge_cached_app()
    finally:
        link.stop()


def token(api, user, password):
    """A JWT of ``user`` (SimpleAuthManager's ``POST /auth/token``, as ``curl`` would get it)."""
    got = api.post("/auth/token", json={"username": user, "password": password})
    assert got.status_code == 201, got.text
    return got.json()["access_token"]


class Person(threading.Thread):
    """Someone at the API while a run waits. ``dag.test()`` must run in the main thread (the task runner sets
    signal handlers), so the person is a thread: polls ``GET /api/v2/dags/{dag}/dagRuns/~/hitlDetails`` (what the
    UI's *Required actions* lists) as ``user`` until step ``task_id`` is pending and its task ``awaiting_input``,
    then ``act(self)`` (its answers kept in ``answers``), then watches the run end. Never a hang: a step asked
    again after the answer is an error (and rejected), a run still running at the deadline is set failed through
    the API, and whatever goes wrong rejects the step."""

    def __init__(self, world, dag_id, task_id, act, user=GRACE[0], timeout=240):
        super().__init__(daemon=True)
        self.world, self.dag_id, self.task_id, self.act, self.user = world, dag_id, task_id, act, user
        self.deadline, self.detail, self.answers, self.error = time.monotonic() + timeout, None, [], None
        self.start()

    def pending(self, run_id="~"):
        got = self.world["api"].get(f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/hitlDetails",
                                    params={"response_received": "false", "task_id": self.task_id},
                                    headers=auth(self.world, self.user))
        assert got.status_code == 200, got.text
        # the request is written when the step starts, and the task parks a moment later
        return [d for d in got.json()["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]

    def run(self):
        try:
            while not (waiting := self.pending()):
                assert time.monotonic() < self.deadline, f"{self.dag_id} never waited at {self.task_id}"
                time.sleep(0.5)
            (self.detail,) = waiting
            self.act(self)
            self.watch(reject=False)
        except BaseException as exc:     # noqa: BLE001 - raised again in the test's thread by done()
            self.error = exc
            if self.detail is not None:
                with contextlib.suppress(Exception):
                    self.watch(reject=True)

    def watch(self, *, reject):
        """Until the run ends: a try of the step asking again is an error (or, ``reject``, rejected); at the
        deadline the run is set failed (``PATCH /api/v2/dags/{dag}/dagRuns/{run}``)."""
        api, run_id = self.world["api"], self.detail["task_instance"]["dag_run_id"]
        run_url = f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}"
        while api.get(run_url, headers=auth(self.world, self.user)).json()["state"] == "running":
            if again := self.pending(run_id):
                self.detail = again[0]
                if not reject:
                    raise AssertionError(f"{self.task_id} asked again after the answer (try "
                                         f"{again[0]['task_instance']['try_number']})")
                self.answer("Reject")
            if time.monotonic() > self.deadline:
                api.patch(run_url, json={"state": "failed"}, headers=auth(self.world, self.user))
                raise AssertionError(f"{self.dag_id} still running at the deadline: set failed")
            time.sleep(0.5)

    def answer(self, option, user=None):
        """``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``."""
        ti = self.detail["task_instance"]
        got = self.world["api"].patch(
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
            f"{ti['map_index']}/hitlDetails", json={"chosen_options": [option], "params_input": {}},
            headers=auth(self.world, user or self.user))
        self.answers.append(got)
        return got

    def done(self):
        self.join(30)
        if self.error:
            raise self.error
        return self


def auth(world, user):
    return {"Authorization": f"Bearer {world['token'][user]}"}


def test_a_rejected_mapping_fails_the_plan_and_migrate_stays_refused_naming_the_step(world):
    from crm_migration.mapping.spec import read_pair_file

    def reject(person):
        if CHROMIUM:                                     # what the UI shows now: the next test's to judge
            run_id = person.detail["task_instance"]["dag_run_id"]
            try:
                with api_server() as base:
                    world["ui"] = {"run_id": run_id, **{
                        name: page_text(base, path, world["token"][GRACE[0]], until=until) for name, path, until in (
                            # the row, and the UI's own words (its translations load apart: "requiredAction")
                            ("list", "/required_actions", ("confirm the mapping in force", "Required Action")),
                            ("step", f"/dags/{PLAN}/runs/{run_id}/tasks/confirm_mapping/required_actions",
                             ("What to check", "Awaiting Input")))}}
            except Exception as exc:                     # noqa: BLE001 - the UI test raises it
                world["ui"] = exc
        person.answer("Reject", user=VICTOR[0])          # a viewer may read the step, not answer it
        person.answer("Reject")

    person = Person(world, PLAN, "confirm_mapping", reject)
    dr = world["bag"].dags[PLAN].test()                  # waits at confirm_mapping until the person answers
    person.done()
    detail = person.detail
    assert detail["task_instance"]["state"] == "awaiting_input" and detail["task_instance"]["dag_run_id"] == dr.run_id
    assert detail["options"] == ["Approve", "Reject"] and detail["subject"] == f"{PLAN}: confirm the mapping in force"
    body = detail["body"]
    mf = read_pair_file(PAIR)
    assert "**Report to check:** `file://" in body and "/plan.html`" in body and "**What to check:**" in body
    assert f"`{mf.origin}` (sha256 `{mf.sha256[:12]}`)" in body
    assert [a.status_code for a in person.answers] == [403, 200], [a.text for a in person.answers]

    states = {ti.task_id: state_of(ti) for ti in dr.get_task_instances()}
    assert (state_of(dr), states) == ("failed", {"plan": "success", "confirm_mapping": "failed"})
    (decision,) = world["state"].approvals(dr.run_id)
    assert (decision["what"], decision["decision"], decision["decided_by"], decision["decided_by_id"],
            decision["how"]) == ("mapping", "rejected", "grace", "grace", "person")
    assert world["state"].mapping_confirmation(PAIR, mf.sha256) is None
    why = refused(world, MIGRATE, run_conf={"mode": "sample"})
    assert "approve its confirm_mapping step" in why and f"trigger {PLAN}" in why and mf.sha256[:12] in why


@pytest.mark.skipif(not CHROMIUM, reason="no chromium: the UI check needs a headless browser (Debian: chromium)")
def test_the_waiting_step_is_in_the_uis_required_actions_with_what_to_check(world):
    """What the person saw in Airflow's UI (headless Chromium, logged in as grace) while the plan of the test above
    waited: the step in *Required actions*, and its page with the report link, what to check and the buttons."""
    ui = world["ui"]
    if isinstance(ui, Exception):
        raise ui
    text, _ = ui["list"]
    assert "1 Required Action" in text and f"{PLAN}: confirm the mapping in force" in text
    assert ui["run_id"] in text and "confirm_mapping" in text
    text, links = ui["step"]
    assert "Awaiting Input" in text and f"{PLAN}: confirm the mapping in force" in text
    report = f"{world['home'].as_uri()}/reports/{PAIR}/"
    assert f"Report to check: {report}" in text and "/plan.html (open in the on-call view)" in text
    assert any(h.startswith("/crm-migration/reports/") and h.endswith("/plan.html") for h in links), links
    lines = text.split("What to check:", 1)[1]
    assert "Blocking problems first" in lines and "/proposal.yaml (copy what you accept" in lines
    assert f"The mapping file {world['mapping']} (sha256 " in lines
    assert text.rstrip().endswith("Approve\nReject")


def test_a_person_edits_the_mapping_approves_it_and_migrate_starts_without_approved_by(world):
    from crm_migration.mapping.spec import read_pair_file

    before = read_pair_file(PAIR)
    line = "      mobile:     {from: mobile, fn: phone}\n"

    def edit_then_approve(person):
        # the person edits the YAML (contacts' mobile numbers are not migrated), then approves
        text = world["mapping"].read_text(encoding="utf-8")
        assert text.count(line) == 1
        world["mapping"].write_text(text.replace(line, ""), encoding="utf-8")
        person.asked = datetime.now(UTC)
        person.answer("Approve")

    person = Person(world, PLAN, "confirm_mapping", edit_then_approve)
    dr = world["bag"].dags[PLAN].test()
    person.done()
    (got,) = person.answers
    assert got.status_code == 200, got.text
    assert (got.json()["responded_by"], got.json()["chosen_options"]) == ({"id": "grace", "name": "grace"}, ["Approve"])
    assert state_of(dr) == "success"
    edited = read_pair_file(PAIR)
    assert edited.sha256 != before.sha256

    conf = world["state"].mapping_confirmation(PAIR, edited.sha256)
    assert (conf["confirmed_by"], conf["confirmed_by_id"], conf["how"], conf["run_id"]) == (
        "grace", "grace", "person", dr.run_id)
    assert conf["mapping_text"] == edited.text and line not in conf["mapping_text"]
    assert person.asked <= conf["confirmed_at"] <= datetime.now(UTC)
    assert world["state"].mapping_confirmation(PAIR, before.sha256) is None
    (decision,) = world["state"].approvals(dr.run_id)
    assert (decision["decision"], decision["decided_by"], decision["mapping_sha256"]) == (
        "approved", "grace", edited.sha256)
    # a full run still needs an approved sample diff of this mapping: that step is named, not the mapping's
    why = refused(world, MIGRATE, run_conf={"mode": "full"})
    assert "approve_diff" in why and "confirm_mapping" not in why

    # a sample run of the edited mapping (no approved_by), its diff approved by the same person
    person = Person(world, MIGRATE, "approve_diff", lambda p: p.answer("Approve"))
    sample = world["bag"].dags[MIGRATE].test(run_conf={"mode": "sample", "sample_size": 5, "objects": ["companies"]})
    person.done()
    assert "/diff.html`" in person.detail["body"] and [a.status_code for a in person.answers] == [200]
    assert state_of(sample) == "success", {ti.task_id: state_of(ti) for ti in sample.get_task_instances()}
    run = world["state"].get_run(sample.run_id)
    assert run["mapping_sha256"] == edited.sha256
    assert run["stats"]["mapping_confirmed_by"].startswith("grace (person, ")

    # and a full run without approved_by starts: not refused (its own approval step is the next to wait)
    full = world["bag"].dags[MIGRATE].partial_subset(task_ids=["start_run"], include_downstream=False,
                                                     include_upstream=False).test(run_conf={"mode": "full"})
    assert state_of(full) == "success"
    run = world["state"].get_run(full.run_id)
    assert run["status"] != "refused" and run["mapping_sha256"] == edited.sha256
    assert run["stats"]["mapping_confirmed_by"].startswith("grace (person, ")
    assert run["stats"]["sample_run"] == sample.run_id and run["stats"]["sample_approved_by"] == "grace (person)"
