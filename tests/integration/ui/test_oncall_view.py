"""The on-call view in a real browser: headless Chromium loads the plugin's pages from a running
``airflow api-server`` (Airflow's own auth, the plugin loaded as Airflow loads it) against a state DB with
runs in it, and the test reads what a person sees: the runs per pair with their state and counts, a run's
counts per object and dead letters with reasons and record ids, its reports, and the rollback button, which
triggers the pair's rollback DAG (a queued run waiting for approval), nothing else.

One api-server for the module. Without Debian's ``chromium`` the module is skipped (a failure under
``CI=true``); ``make install`` installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from chromium import Browser

from crm_sandbox.pg import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
USERS = {"oncall": ("admin", "oncall-pw-1"), "viewer": ("viewer", "viewer-pw-1")}
XSS = '<script>alert("dead")</script>'            # the seeded dead letter's reason holds it (tests/conftest.py)
#: a run recorded in a state DB of its own (connection ``my_state``), by a DAG written from the operators
MY_RUN = "manual__2026-12-03T09:00:00+00:00"
USER_DAGS = """
from airflow.sdk import DAG
from crm_migration.operators.migration import RollbackOperator, StartRunOperator

with DAG("my_companies_to_odoo", schedule=None):
    StartRunOperator(task_id="start_run", pair="link_app_to_odoo", kind="migrate", mode="full",
                     state_conn_id="my_state")
with DAG("their_companies_to_odoo", schedule=None):
    StartRunOperator(task_id="start_run", pair="link_app_to_odoo", kind="migrate", state_conn_id="their_state")
    RollbackOperator(task_id="rollback", pair="link_app_to_odoo", target_run_id="x", state_conn_id="their_state")
"""


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"api-server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"api-server did not answer {url} in {seconds:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def my_state(private_pg) -> Iterator[str]:
    """A second state DB (its own database) with one run of the Link app pair in it: 2 companies staged, 1 landed,
    1 dead letter. Yields its Airflow connection (JSON)."""
    import uuid

    from crm_migration.hooks.state import MigrationStateHook

    dbname = f"t_{uuid.uuid4().hex[:12]}"
    conn_json = private_pg.new_database(dbname)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_MY_STATE", conn_json)
        state = MigrationStateHook(postgres_conn_id="my_state")
        state.migrate()
        pair = "link_app_to_odoo"
        state.start_run(MY_RUN, pair=pair, dag_id="my_companies_to_odoo", kind="migrate", mode="full")
        state.stage(run_id=MY_RUN, pair=pair, source_object="companies", batch_no=0,
                    rows=[{"source_id": f"co-{i}", "record": {"id": f"co-{i}"}} for i in range(2)])
        state.record_batch(run_id=MY_RUN, pair=pair, source_object="companies", odoo_model="res.partner",
                           links=[{"source_id": "co-0", "odoo_id": 61}],
                           audit=[{"source_id": "co-0", "odoo_id": 61, "action": "create"}],
                           dead_letters=[{"source_id": "co-1", "field": "name", "reason": "name: missing in my_state",
                                          "record": {"id": "co-1"}}])
        state.finish_run(MY_RUN, status="success", stats={})
        state.close()
    yield conn_json
    private_pg.drop_database(dbname)


@pytest.fixture(scope="module")
def api_server(state_with_runs, my_state, tmp_path_factory) -> Iterator[dict]:
    """``airflow api-server`` on a fresh metadata DB holding the pairs' DAGs and two DAGs written from the operators
    (one on ``my_state``, one on ``their_state``, a database that does not exist), with the plugin and two users."""
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    for f in (ROOT / "dags").glob("*.py"):
        shutil.copy(f, dags / f.name)
    (dags / "my_companies_to_odoo.py").write_text(USER_DAGS, encoding="utf-8")
    plugins = home / "plugins"
    plugins.mkdir()
    from importlib.metadata import entry_points

    if not [ep for ep in entry_points(group="airflow.plugins") if ep.value.startswith("crm_migration")]:
        # an editable install made before the entry point existed: load the plugin as a plugins-folder file
        (plugins / "crm_migration_plugin.py").write_text("from crm_migration.ui.plugin import CrmMigrationPlugin\n")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({u: pw for u, (_, pw) in USERS.items()}))
    port = free_port()
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, (role, _) in USERS.items()),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": "oncall-view-test-secret",
           "AIRFLOW__API__WORKERS": "1",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
           "AIRFLOW_CONN_CRM_MIGRATION_STATE": state_with_runs["conn_json"],
           "AIRFLOW_CONN_MY_STATE": my_state,
           "AIRFLOW_CONN_THEIR_STATE": my_state.replace('"schema": "t_', '"schema": "no_such_'),
           "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": state_with_runs["reports"].as_uri(),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include" / "sandbox"),
                                          os.environ.get("PYTHONPATH", "")])}
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    log = home / "api-server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # the pairs' DAGs into the metadata DB while the server starts (the rollback trigger needs them)
        subprocess.run([*airflow, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300)
        _wait(f"{base}/api/v2/monitor/health", proc, log)
        tokens = {u: httpx.post(f"{base}/auth/token", json={"username": u, "password": pw}).json()["access_token"]
                  for u, (_, pw) in USERS.items()}
        yield {"base": base, "tokens": tokens, "log": log, "runs": state_with_runs["runs"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser(api_server, tmp_path_factory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    # logged in as the on-call engineer: the UI's session cookie
    b.call("Network.setCookie", name="_token", value=api_server["tokens"]["oncall"], url=api_server["base"] + "/")
    yield b
    b.close()


def test_the_runs_of_each_pair_with_their_state_and_counts(api_server, browser):
    text = browser.open(api_server["base"] + "/crm-migration/")
    assert text.index("apto_to_odoo") < text.index("link_app_to_odoo")
    rows = {r[0]: r for r in browser.js(
        "[...document.querySelectorAll('tr[data-run]')].map(tr => [...tr.cells].map(td => td.innerText.trim()))")}
    sample, full, delta, link = (r[0] for r in api_server["runs"])
    # run, kind, mode, state, approved by, started, source, landed, dead letters, conflicts, flags, reports, state DB
    assert rows[full][1:5] == ["migrate", "full", "success", "Jane Doe"]
    assert rows[full][6:11] == ["5", "3", "1", "1", "1"]
    assert rows[delta][1:4] == ["delta", "", "failed"] and rows[link][3] == "running"
    assert rows[sample][11:] == ["report", "crm_migration_state"] and rows[link][11] == ""
    assert browser.dialogs == []                                     # nothing ran that should not


def test_a_pair_on_a_state_db_of_its_own_is_listed_and_one_that_fails_is_named(api_server, browser):
    text = browser.open(api_server["base"] + "/crm-migration/")
    rows = {r[0]: r for r in browser.js(
        "[...document.querySelectorAll('#pair-link_app_to_odoo tr[data-run]')].map(tr => [...tr.cells].map(td => "
        "td.innerText.trim()))")}
    # the Link app pair's runs: the one on my_state beside the one on the default connection
    assert set(rows) == {MY_RUN, api_server["runs"][3][0]}
    assert rows[MY_RUN][1:4] == ["migrate", "full", "success"] and rows[MY_RUN][6:9] == ["2", "1", "1"]
    assert rows[MY_RUN][12] == "my_state"
    # their_state leads to no database: named with its DAG and the reason, the rest of the page shown
    (named,) = [line for line in text.splitlines() if "their_state" in line]
    assert named.startswith("State DB connection their_state (used by their_companies_to_odoo) could not be read: "
                            "OperationalError: ") and 'database "no_such_' in named and "does not exist" in named
    # the run's page reads my_state: its dead letter, and no rollback DAG of the pair on that connection
    browser.js(f"document.querySelector('a[href$=\"{quote(MY_RUN, safe='')}?conn=my_state\"]').click()")
    browser.wait_for_load()
    text = browser.text()
    assert f"link_app_to_odoo: migrate run {MY_RUN}" in text and "state DB my_state" in text
    (dead,) = browser.js("[...document.querySelectorAll('#dead-letters tbody tr')].map(tr => tr.innerText)")
    assert dead.split("\t")[:4] == ["companies", "co-1", "name", "name: missing in my_state"]
    assert "No rollback DAG of link_app_to_odoo reads the state DB connection my_state" in text
    assert browser.js("document.getElementById('rollback')") is None       # link_app_to_odoo_rollback reads another
    oncall = {"Authorization": f"Bearer {api_server['tokens']['oncall']}"}
    url = f"{api_server['base']}/crm-migration/runs/{quote(MY_RUN, safe='')}"
    refused = httpx.post(f"{url}/rollback?conn=my_state", headers=oncall)
    assert refused.status_code == 303 and "error=no%20rollback%20DAG%20of%20link_app_to_odoo" in refused.headers[
        "location"]
    assert httpx.get(f"{url}?conn=crm_migration_state", headers=oncall).status_code == 404     # not on that one
    assert httpx.get(f"{url}?conn=odoo_default", headers=oncall).status_code == 404   # only the DAGs' state DBs


def test_a_run_shows_counts_per_object_dead_letters_and_reports(api_server, browser):
    full = api_server["runs"][1][0]
    browser.open(api_server["base"] + "/crm-migration/")
    browser.js(f"document.querySelector('a[href$=\"{quote(full, safe='')}\"]').click()")
    browser.wait_for_load()
    text = browser.text()
    assert text.startswith("CRM migration") and f"apto_to_odoo: migrate run {full}" in text
    assert "5 source records read, 3 landed, 1 dead letter(s) (1 open), 1 conflict(s), 1 flagged value(s)." in text
    objects = browser.js("[...document.querySelectorAll('#objects tbody tr')].map(tr => tr.innerText)")
    assert [o.split("\t")[:7] for o in objects] == [["Account", "2", "1", "0", "1", "0", "0"],
                                                    ["Contact", "3", "2", "2", "0", "0", "1"]]
    (dead,) = browser.js("[...document.querySelectorAll('#dead-letters tbody tr')].map(tr => tr.innerText)")
    assert dead.split("\t")[:4] == ["Contact", "003C2", "name", f"name: Odoo refused the value {XSS}"]
    assert browser.js("document.scripts.length") == 0 and browser.dialogs == []   # shown as text, never run
    # the report opens from the page, read through the reports base
    href = browser.js("[...document.querySelectorAll('a')].find(a => a.innerText === 'report').href")
    assert href.startswith(api_server["base"] + "/crm-migration/reports/apto_to_odoo/")
    report = browser.open(href)
    assert f"Report of {full}" in report and "All is well." in report


def test_the_rollback_button_triggers_the_rollback_dag_which_waits_for_approval(api_server, browser):
    delta = api_server["runs"][2][0]
    browser.open(f"{api_server['base']}/crm-migration/runs/{quote(delta, safe='')}")
    assert "Roll back this run" in browser.text()
    browser.js("document.getElementById('rollback').click()")
    browser.wait_for_load()
    assert browser.dialogs == [f"Trigger apto_to_odoo_rollback for {delta}? It will wait for approval."]
    text = browser.text()
    found = re.search(r"Rollback triggered: run (\S+) of apto_to_odoo_rollback\.", text)
    assert found, text
    triggered = found.group(1)
    assert "waits for approval" in text
    assert "The DAG apto_to_odoo_rollback is paused: unpause it" in text        # new DAGs start paused here
    # Airflow has the run, for that run id, triggered by the on-call user, and nothing else was triggered
    auth = {"Authorization": f"Bearer {api_server['tokens']['oncall']}"}
    runs = httpx.get(f"{api_server['base']}/api/v2/dags/~/dagRuns", headers=auth).json()["dag_runs"]
    assert [(r["dag_id"], r["dag_run_id"], r["conf"], r["triggering_user_name"]) for r in runs] == [
        ("apto_to_odoo_rollback", triggered, {"run_id": delta}, "oncall")]


def test_behind_airflows_auth_read_only_for_a_viewer(api_server):
    base, full = api_server["base"], api_server["runs"][1][0]
    assert httpx.get(f"{base}/crm-migration/").status_code == 401                       # not logged in
    assert httpx.get(f"{base}/crm-migration/reports/apto_to_odoo/x/diff.html").status_code == 401
    viewer = {"Authorization": f"Bearer {api_server['tokens']['viewer']}"}
    assert "apto_to_odoo" in httpx.get(f"{base}/crm-migration/", headers=viewer).text
    refused = httpx.post(f"{base}/crm-migration/runs/{quote(full, safe='')}/rollback", headers=viewer)
    assert refused.status_code == 403 and "may not trigger apto_to_odoo_rollback" in refused.text
    # nothing outside the reports base is served
    oncall = {"Authorization": f"Bearer {api_server['tokens']['oncall']}"}
    assert httpx.get(f"{base}/crm-migration/reports/..%2F..%2Fetc%2Fpasswd", headers=oncall).status_code == 404
    # the UI lists the view in its navigation
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=oncall).json()["plugins"]
    (mine,) = [p for p in plugins if p["name"] == "crm_migration"]
    assert mine["external_views"][0]["href"] == "/crm-migration/" and mine["fastapi_apps"][0]["url_prefix"] == \
        "/crm-migration"
