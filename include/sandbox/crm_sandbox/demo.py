"""``make demo``: the Apto -> Odoo and Link app -> Odoo migrations, end to end, on the bundled sandboxes.

It starts a private PostgreSQL (the state DB), the Apto sandbox (a generated Salesforce org with the
hard cases), the Link app sandbox (a generated tenant) and the Odoo 17 sandbox on loopback, then runs
the real DAGs of each pair (``PAIR=apto`` or ``PAIR=link_app``: one of them) with ``dag.test()``:

    plan -> sample migration (pre-approved) -> full migration -> a change in the org -> one delta window

and prints the reconciliation and where the reports are. Everything lives under ``var/demo/``; a new
run starts clean (the sandboxes keep their data in memory, so there is nothing to resume) and says so.

Environment: ``DEMO_SCALE`` (default 1: ~50 companies, 150 contacts, 100 deals, 300 activities),
``DEMO_DIR`` (default ``var/demo``), ``TARGET`` (``sandbox``, the default; ``sandbox19``, the sandbox's Odoo 19
mode over JSON-2; ``odoo17`` or ``odoo19``: the real
Odoo server of ``../shared/odoo17-server`` or ``../shared/odoo19-server``, started if needed, in a fresh database
the demo leaves in place; on 19 the connection carries an API key made for that database, so JSON-2 is used).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def say(text: str = "") -> None:
    print(text, flush=True)


def _env(base: Path) -> None:
    home = base / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "WARNING"),
        "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(base / "reports"),
        "CRM_MIGRATION_RETRY_DELAY_SECONDS": "1",
    })


#: PAIR -> (pair, the source's label); ``make demo`` with no PAIR runs both, Apto first
PAIRS = {"apto": ("apto_to_odoo", "Apto org"), "link_app": ("link_app_to_odoo", "Link app tenant")}


def _wanted_pairs(value: str) -> list[str] | None:
    """``PAIR``: empty or ``all`` -> both pairs; ``apto`` / ``link_app`` (or the pair names) -> one."""
    value = (value or "all").strip().lower()
    if value in ("all", "both"):
        return list(PAIRS)
    for key, (pair, _label) in PAIRS.items():
        if value in (key, pair):
            return [key]
    return None


def _start_sources(wanted: list[str], scale: int, as_of: datetime) -> dict[str, object]:
    servers: dict[str, object] = {}
    if "apto" in wanted:
        from crm_sandbox.apto.server import serve as serve_apto

        servers["apto"] = serve_apto(port=0, scale=scale, seed=7, as_of=as_of)
    if "link_app" in wanted:
        from crm_sandbox.link_app.server import serve as serve_link

        servers["link_app"] = serve_link(port=0, scale=scale, seed=7, as_of=as_of)
    return servers


def _source_conn(key: str, server: object) -> tuple[str, str]:
    state, url = server.state, server.url  # type: ignore[attr-defined]
    if key == "apto":
        return "AIRFLOW_CONN_APTO_DEFAULT", json.dumps(state.airflow_conn(url, "client_credentials"))
    return "AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps(state.airflow_conn(url))


def _odoo_users(servers: dict[str, object], url: str, db: str, password: str) -> int:
    """The Odoo users the Link app tenant's owners match by email (login@example.com), made over XML-RPC
    (no invitation mail) where missing; returns how many were made."""
    if "link_app" not in servers:
        return 0
    from crm_sandbox.odoo.testing import Rpc

    rpc = Rpc(url, db=db, password=password)
    made = 0
    for u in servers["link_app"].state.odoo_users():  # type: ignore[attr-defined]
        if not rpc("res.users", "search", [("login", "=", u["login"])], context={"active_test": False}):
            rpc("res.users", "create", {"name": u["name"], "login": u["login"], "email": f"{u['login']}@example.com"},
                context={"no_reset_password": True})
            made += 1
    return made


def main() -> int:
    base = Path(os.environ.get("DEMO_DIR", ROOT / "var" / "demo")).resolve()
    scale = int(os.environ.get("DEMO_SCALE", "1"))
    wanted = _wanted_pairs(os.environ.get("PAIR", ""))
    if wanted is None:
        say(f"PAIR must be empty (both pairs), apto or link_app, not {os.environ.get('PAIR')!r}")
        return 2
    if base.exists():
        say(f"A previous demo left {base}: starting clean (the sandboxes keep their data in memory, "
            "so there is nothing to resume).")
        shutil.rmtree(base)
    else:
        say(f"Starting a new demo in {base}.")
    _env(base)
    started = time.monotonic()

    from crm_sandbox.pg import PrivatePostgres

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    w1 = now.replace(minute=now.minute - now.minute % 15)          # the last complete 15-minute window
    w0 = w1 - timedelta(minutes=15)
    target = os.environ.get("TARGET", "sandbox") or "sandbox"
    pg = PrivatePostgres(datadir=base / "pg" / "data", fast=False).start()
    servers = _start_sources(wanted, scale, w0 - timedelta(days=1))

    def stop_sources() -> None:
        for srv in servers.values():
            srv.stop()  # type: ignore[attr-defined]

    from crm_sandbox.targets import SANDBOXES, SERVERS, RealOdoo, RealOdooUnavailable, sandbox_target

    if target in SANDBOXES:
        odoo, stop_odoo = sandbox_target(target)
        odoo_url, odoo_db, odoo_label = odoo.url, odoo.db, f"Odoo {odoo.version} sandbox"
        odoo_secret, secret_label = odoo.password, "admin/admin"
        if odoo.api_key:                # the 19 mode: JSON-2 (transport auto) with admin's API key
            secret_label = "admin with an API key (JSON-2)"
    else:
        if target not in SERVERS:
            say(f"TARGET must be one of {', '.join([*SANDBOXES, *SERVERS])}, not {target!r}")
            stop_sources()
            pg.stop()
            return 2
        say(f"Starting the real {target} server (about a minute the first time) ...")
        try:
            real = RealOdoo(target).start()
        except RealOdooUnavailable as exc:
            say(str(exc))
            stop_sources()
            pg.stop()
            return 1
        odoo_url, odoo_db = real.url, real.new_db("demo")
        odoo_label, stop_odoo = f"real {target}", real.stop
        odoo_secret, secret_label = "admin", "admin/admin"
        if real.version >= 19:          # JSON-2 (transport auto) needs an API key: admin's, made for this database
            odoo_secret, secret_label = real.api_key(odoo_db), "admin with an API key (JSON-2)"
    try:
        os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
        for key, srv in servers.items():
            env, conn = _source_conn(key, srv)
            os.environ[env] = conn
            pair = PAIRS[key][0]
            os.environ[f"AIRFLOW_VAR_{pair.upper()}_CUTOVER_START"] = (w0 - timedelta(hours=1)).isoformat()
            os.environ[f"AIRFLOW_VAR_{pair.upper()}_CUTOVER_END"] = (w1 + timedelta(hours=1)).isoformat()
        os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
            "conn_type": "odoo", "host": odoo_url, "schema": odoo_db, "login": "admin",
            "password": odoo_secret, "extra": {"transport": "auto", "fallback_user": "admin"}})
        say(f"State DB   {pg.uri}")
        for key, srv in servers.items():
            say(f"{PAIRS[key][1]:<16}{srv.url}  (scale {scale}, seed 7)")  # type: ignore[attr-defined]
        say(f"Odoo       {odoo_url}  ({odoo_label}, database {odoo_db}, {secret_label})")
        if made := _odoo_users(servers, odoo_url, odoo_db, odoo_secret):
            say(f"           {made} Odoo users made for the Link app owners (login@example.com, no invitation)")
        say("Preparing Airflow's metadata DB (SQLite) ...")
        from airflow.utils import db

        db.resetdb()
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            say(f"DAG import errors: {bag.import_errors}")
            return 1
        runs = Runs(bag)
        for key, srv in servers.items():
            _demo_pair(runs, key, srv.state, base, w0, w1)  # type: ignore[attr-defined]
        say(f"\nReports: {base / 'reports'}")
        say(f"Done in {time.monotonic() - started:.0f} s.")
        return 0 if all(r == "success" for r in runs.states) else 1
    finally:
        stop_sources()
        stop_odoo()
        pg.stop()


def _demo_pair(runs: Runs, key: str, source: object, base: Path, w0: datetime, w1: datetime) -> None:
    """plan -> sample (pre-approved) -> full -> a change in the source -> one delta window, for one pair."""
    pair, label = PAIRS[key]
    say(f"\n==== {pair}: {label} -> Odoo ====")
    say("\n1/5 Plan: inventory, owners, schema plan, cycles, automation export; the mapping confirmed by 'demo'")
    runs.test(f"{pair}_plan", conf={"approved_by": "demo"})
    say(f"    report: {_latest(base / 'reports' / pair, 'plan.html')}")

    say("\n2/5 Sample migration, with a field-level diff (its approval: 'demo')")
    sample = runs.test(f"{pair}_migrate", conf={"mode": "sample", "sample_size": 20, "approved_by": "demo"})
    stats = runs.stats(sample)
    say(f"    {stats.get('fields_compared', 0)} fields compared, {stats.get('fields_differ', 0)} differ, "
        f"{stats.get('records_not_landed', 0)} records did not land (dead letters, with the reason)")
    say(f"    report: {stats.get('report')}")

    say("\n3/5 Full migration of the approved sample's mapping (upserts over the sample: no second copy)")
    full = runs.test(f"{pair}_migrate", conf={"mode": "full", "approved_by": "demo"})
    say(f"    reconciliation report: {runs.stats(full).get('report')}")

    say(f"\n4/5 A change in the {label} during the cutover window [{w0:%H:%M}, {w1:%H:%M}) UTC")
    changed = (_mutate if key == "apto" else _mutate_link_app)(source, w0 + timedelta(minutes=5))
    for line in changed:
        say(f"    {line}")

    say("\n5/5 One delta window")
    delta = runs.test(f"{pair}_delta", logical_date=w1)
    say(f"    {runs.audit_summary(delta)}")

    say("\nReconciliation now (Odoo after the full run and the delta; source counts of the full run):")
    for line in runs.reconciliation_lines(pair, full):
        say(f"    {line}")
    say("\nWhat Odoo holds, read back from it:")
    for line in runs.odoo_lines(pair):
        say(f"    {line}")


class Runs:
    """Runs DAGs with dag.test() and reads what they recorded."""

    def __init__(self, bag: object) -> None:
        self.bag = bag
        self.states: list[str] = []

    def test(self, dag_id: str, *, conf: dict | None = None, logical_date: datetime | None = None) -> str:
        dag = self.bag.dags[dag_id]  # type: ignore[attr-defined]
        t0 = time.monotonic()
        kw = {"run_conf": conf or {}}
        if logical_date is not None:
            kw["logical_date"] = logical_date
        dr = dag.test(**kw)
        state = str(getattr(dr.state, "value", dr.state))
        self.states.append(state)
        failed = [ti.task_id for ti in dr.get_task_instances() if str(getattr(ti.state, "value", ti.state))
                  not in ("success", "skipped")]
        say(f"    {dag_id}: {state} in {time.monotonic() - t0:.0f} s (run {dr.run_id})"
            + (f"; not successful: {', '.join(failed)}" if failed else ""))
        return dr.run_id

    def _state(self):
        from crm_migration.hooks.state import MigrationStateHook

        return MigrationStateHook()

    def stats(self, run_id: str) -> dict:
        st = self._state()
        run = st.get_run(run_id) or {}
        st.close()
        return dict(run.get("stats") or {})

    def audit_summary(self, run_id: str) -> str:
        st = self._state()
        rows = st.get_records("SELECT action, count(*) FROM crm_migration.audit_log WHERE run_id = %s "
                              "GROUP BY action ORDER BY action", parameters=(run_id,))
        st.close()
        return "audit: " + (", ".join(f"{a} {n}" for a, n in rows) or "no writes")

    def reconciliation_lines(self, pair: str, run_id: str) -> list[str]:
        from crm_migration.engine import verify
        from crm_migration.operators.tasks import pipeline
        from crm_migration.reports.reconcile import summary_lines

        pipe = pipeline(pair)
        return summary_lines(verify.reconcile(pipe, run_id=run_id))


    def odoo_lines(self, pair: str) -> list[str]:
        """Per model, the records carrying a key against the crosswalk; mail queued; records without a key."""
        from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook
        from crm_migration.mapping.spec import load_pair

        odoo, st = OdooHook(), self._state()
        spec = load_pair(pair)
        bound = dict(st.get_records("SELECT odoo_model, count(*) FROM crm_migration.crosswalk WHERE pair = %s "
                                    "AND odoo_id IS NOT NULL GROUP BY odoo_model", parameters=(spec.pair,)))
        lines = []
        for model in spec.keyed_models():
            if MIGRATION_KEY not in odoo.fields_get(model):
                continue
            n = odoo.call(model, "search_count", [[(MIGRATION_KEY, "=like", f"{spec.source}:%")]],
                          context={"active_test": False})
            lines.append(f"{model}: {n:,} keyed records in Odoo, {int(bound.get(model, 0)):,} in the crosswalk"
                         + ("" if n == int(bound.get(model, 0)) else "  <- differ"))
        mails = odoo.call("mail.mail", "search_count", [[]], context={"active_test": False})
        notes = odoo.call("mail.message", "search_count", [[("message_type", "=", "user_notification")]])
        lines.append(f"mail queued (mail.mail): {mails}; user notifications: {notes}")
        st.close()
        odoo.close()
        return lines


def _mutate(org: object, at: datetime) -> list[str]:
    """Change a few records the way users do during a cutover; return what was changed."""
    tables = org.tables  # type: ignore[attr-defined]
    contacts = sorted(i for i, r in tables["Contact"].items() if not r.get("IsDeleted"))
    deals = sorted(i for i, r in tables["Opportunity"].items() if not r.get("IsDeleted") and not r.get("IsClosed"))
    ts = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    # an open task (a scheduled activity in Odoo) whose deal was migrated: completed during the window
    open_tasks = sorted(i for i, r in tables["Task"].items() if not r.get("IsDeleted") and r.get("IsClosed") is False
                        and str(r.get("WhatId") or "").startswith("006") and r["WhatId"] in deals)
    c1, c2, c3 = contacts[3], contacts[4], contacts[5]
    task = open_tasks[0] if open_tasks else None
    org.mutate({  # type: ignore[attr-defined]
        "timestamp": ts,
        "updates": {"Contact": [{"Id": c1, "Title": "Head of Acquisitions"}, {"Id": c2, "Phone": "+1 415 555 0142"}],
                    "Opportunity": [{"Id": deals[0], "Amount": 1234567.0}],
                    **({"Task": [{"Id": task, "IsClosed": True, "Status": "Completed", "CompletedDateTime": ts}]}
                       if task else {})},
        "creates": {"Contact": [{"FirstName": "Dana", "LastName": "Cutover", "Email": "dana.cutover@example.com"}]},
        "deletes": {"Contact": [c3]},
    })
    return [f"updated Contact {c1} (Title), Contact {c2} (Phone), Opportunity {deals[0]} (Amount)",
            "created Contact Dana Cutover", f"deleted Contact {c3} (archived in Odoo by the delta)",
            *([f"completed Task {task} (its Odoo activity becomes a message in the deal's chatter)"] if task else [])]


def _mutate_link_app(tenant: object, at: datetime) -> list[str]:
    """Change a few Link app records the way users do during a cutover; return what was changed."""
    tables = tenant.tables  # type: ignore[attr-defined]
    contacts = sorted(tables["contacts"], key=int)
    deals = sorted((i for i, r in tables["deals"].items() if r["status"] == "open"), key=int)
    open_tasks = sorted((i for i, r in tables["activities"].items() if r["type"] == "task" and r["done"] is False
                         and r["related"]["type"] == "deal"), key=int)
    c1, c2, c3 = contacts[6], contacts[7], contacts[8]
    task = open_tasks[0] if open_tasks else None
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    tenant.mutate({  # type: ignore[attr-defined]
        "timestamp": stamp,
        "updates": {"contacts": [{"id": c1, "title": "Head of Acquisitions"}, {"id": c2, "phone": "+1 415 555 0142"}],
                    "deals": [{"id": deals[0], "amount": 1234567.0}],
                    **({"activities": [{"id": task, "done": True, "occurred_at": stamp}]} if task else {})},
        "creates": {"contacts": [{"first_name": "Dana", "last_name": "Cutover", "email": "dana.cutover@example.com"}]},
        "deletes": {"contacts": [c3]},
    })
    return [f"updated contacts {c1} (title), {c2} (phone), deals {deals[0]} (amount)",
            "created contact Dana Cutover", f"deleted contact {c3} (archived in Odoo by the delta)",
            *([f"completed task {task} (its Odoo activity becomes a message in the deal's chatter)"] if task else [])]


def _latest(folder: Path, name: str) -> str:
    found = sorted(folder.rglob(name), key=lambda p: p.stat().st_mtime)
    return str(found[-1]) if found else "(none)"


if __name__ == "__main__":
    sys.exit(main())
