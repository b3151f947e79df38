"""The Link app pair's full migration under a real Airflow scheduler (LocalExecutor), serial against parallel,
into a real Odoo 17 running two prefork workers: the same end state, and how much faster.

It starts everything of its own, so it disturbs nobody: a real Odoo 17 with ``ODOO17_WORKERS=2`` in its own home
(``odoo-server start --dir``, destroyed at the end; the shared server is never touched), a private PostgreSQL
(the state DB and the Airflow metadata DB: LocalExecutor cannot run on SQLite), the Link app sandbox, and an
Airflow home whose dags folder holds the pair's DAG file, with ``include/pools.json`` imported (``odoo_api``: 2
slots, one per Odoo worker). Then ``link_app_to_odoo_migrate`` (mode full, approved_by) runs twice, each into a
fresh Odoo database and state DB, through ``airflow api-server`` (execution API), ``airflow dag-processor`` and
``airflow scheduler``, triggered by ``airflow dags trigger`` and polled in the metadata DB:
``[core] parallelism`` 1 (serial), then ``--parallelism`` (default 4).

Prints, per run: wall time (the DAG run's start to end, as the scheduler recorded it), keyed records per object
in Odoo, dead letters, task retries, transient Odoo errors retried (the hook's retry lines in the task logs) and
serialization failures Odoo retried itself (its own log), and the most mapped load tasks that ran at once (task
instance start/end overlap from the metadata DB); then the speedup and whether the two end states are identical
(every keyed record of every model the pair writes, ``x_migration_key`` -> its stored field values, references
as the referenced record's key, database ids and the moments Odoo stamps itself aside). Asserts nothing about
time; exits 1 when the end states differ, a run fails or a batch is dead-lettered for a transient error.

Run: make bench  (or .venv/bin/python bench/bench_parallel.py [--scale 4] [--batch-size 100] [--parallelism 4])
About 10 to 15 minutes on a 2-core machine (a cold Odoo home costs a minute of it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine, start_sandbox  # noqa: E402

from crm_sandbox.pg import PrivatePostgres, free_port  # noqa: E402
from crm_sandbox.targets import RealOdoo, RealOdooUnavailable  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAIR = "link_app_to_odoo"
DAG_ID = f"{PAIR}_migrate"
TOKEN = "link-sandbox-token"
#: what a transient failure leaves in a task log: the hook's retry line, a serialization failure, a deadlock
TRANSIENT = re.compile(r"could not serialize|SerializationFailure|deadlock detected|DeadlockDetected|"
                       r"concurrent update|failed \(.*\); retry \d+/\d+", re.I)
#: what Odoo 17 logs when a request met a concurrency error (odoo.service.model.retrying): it rolls back and
#: runs it again, up to 5 times, then answers the error
ODOO_RETRY = re.compile(r"(SERIALIZATION_FAILURE|DEADLOCK_DETECTED|LOCK_NOT_AVAILABLE), "
                        r"(\d+ tries left|maximum number of tries reached)")
#: Odoo 17's daily "Predictive Lead Scoring" cron: rebuilds the won/lost frequencies from all deals, recomputes
#: every open deal's automated probability (and its probability only where it follows it)
PLS_CRON = "crm.website_crm_score_cron"
#: what Odoo computes itself of a deal: its predictive lead scoring (from the won and lost deals in the database when
#: it is computed, so it depends on the order deals land), and whether the probability equals it. The probability
#: is the source's (an open deal's is its stage's, won 100, lost 0) and the prorated revenues follow it: compared
PLS = {"automated_probability", "is_automated_probability"}
#: stored fields Odoo sets itself to the moment of the write (or from it), which no two runs share
STAMPS = {"id", "create_date", "write_date", "create_uid", "write_uid", "__last_update", "date_open",
          "day_open", "day_close", "date_conversion", "message_id",
          "calendar_last_notif_ack"}


class Airflow:
    """An Airflow home with a PostgreSQL metadata DB and the pair's DAG file; its processes in their own groups."""

    def __init__(self, home: Path, pg: PrivatePostgres) -> None:
        self.home, self.pg, self.procs = home, pg, {}
        pg.new_database("airflow_meta")
        (home / "dags").mkdir(parents=True)
        shutil.copy(ROOT / "dags" / f"{PAIR}.py", home / "dags")
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg.user}@127.0.0.1:{pg.port}/airflow_meta",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__CRM_MIGRATION__REPORTS_BASE": str(home / "reports"),
        }
        for key in ("AIRFLOW__CORE__UNIT_TEST_MODE", "AIRFLOW_CONN_CRM_MIGRATION_STATE", "AIRFLOW_CONN_ODOO_DEFAULT"):
            self.env.pop(key, None)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run([sys.executable, "-m", "airflow", *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        return proc.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "airflow", *args], env={**self.env, **(env or {})},
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, name: str) -> None:
        """Stop the process ``name`` and what it started (its own process group, by its id)."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def alive(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"airflow {name} exited ({self.procs[name].returncode}):\n{tail}")

    def query(self, sql: str, *args: Any) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(self.pg.dsn(dbname="airflow_meta"))
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()


def run_dag(af: Airflow, label: str, parallelism: int, conns: dict[str, str], batch_size: int,
            timeout: float) -> dict[str, Any]:
    """One full run under a scheduler of ``parallelism``: trigger, poll until done; what the metadata DB says."""
    af.start("scheduler", "scheduler", env={**conns, "AIRFLOW__CORE__PARALLELISM": str(parallelism)})
    try:
        deadline = time.monotonic() + 300
        while not af.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID):
            af.alive("dag-processor")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{DAG_ID} was not parsed in 300 s: see {af.home}/dag-processor.log")
            time.sleep(2)
        if not af.query("SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_paused", DAG_ID):
            af.cli("dags", "unpause", DAG_ID)       # the pair's other DAGs stay paused (the delta is scheduled)
        run_id = f"bench_{label}"
        af.cli("dags", "trigger", DAG_ID, "--run-id", run_id,
               "--conf", json.dumps({"mode": "full", "approved_by": "bench", "batch_size": batch_size}))
        deadline = time.monotonic() + timeout
        while True:
            af.alive("scheduler")
            ((state,),) = af.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", DAG_ID, run_id)
            if state in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{run_id} still {state} after {timeout:.0f} s")
            time.sleep(2)
    finally:
        af.stop("scheduler")
    ((start, end),) = af.query("SELECT start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
                               DAG_ID, run_id)
    tis = af.query("SELECT task_id, map_index, state, try_number, start_date, end_date FROM task_instance "
                   "WHERE dag_id = %s AND run_id = %s", DAG_ID, run_id)
    logs = [p for p in (af.home / "logs").rglob("*.log") if f"run_id={run_id}" in str(p)]
    transient = Counter()
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            if TRANSIENT.search(line):
                transient[_kind(line)] += 1
    return {"label": label, "parallelism": parallelism, "run_id": run_id, "state": state,
            "wall": (end - start).total_seconds(), "tis": tis, "transient": transient,
            "failed": sorted(f"{t[0]}[{t[1]}]" for t in tis if t[2] not in ("success", "skipped"))}


def _kind(line: str) -> str:
    low = line.lower()
    if "serializ" in low or "concurrent update" in low:
        return "serialization"
    return "deadlock" if "deadlock" in low else "other transient"


def most_at_once(tis: list[tuple], prefix: str = "load_") -> tuple[int, int]:
    """(the most mapped ``load_*`` task instances running at one moment, how many pairs of them overlapped)."""
    spans = sorted((t[4], t[5]) for t in tis if t[0].startswith(prefix) and t[1] >= 0 and t[4] and t[5])
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    pairs = sum(1 for i, (s1, e1) in enumerate(spans) for s2, _ in spans[i + 1:] if s2 < e1)
    return peak, pairs


def end_state(odoo: Any, models: list[str]) -> tuple[dict[str, dict[str, dict[str, Any]]], Counter]:
    """``{model: {key: {field: value}}}`` of every keyed record (references as the referenced record's key, else
    its name) and the records per object (``link_app:<object>``)."""
    from crm_migration.hooks.odoo import MIGRATION_KEY

    ctx = {"active_test": False}
    defs = {m: odoo.fields_get(m, attributes=["type", "store", "relation"]) for m in models}
    raw = {m: list(odoo.search_read(m, [(MIGRATION_KEY, "!=", False)],
                                    [f for f, d in defs[m].items() if d.get("store") and f not in STAMPS
                                     and d["type"] not in ("one2many", "binary")], context=ctx)) for m in models}
    keys = {(m, r["id"]): r[MIGRATION_KEY] for m in models for r in raw[m]}
    per_object: Counter = Counter()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in models:
        out[m] = {}
        for r in raw[m]:
            key = r.pop(MIGRATION_KEY)
            per_object[key.rsplit(":", 1)[0]] += 1
            rec = {}
            for f, v in r.items():
                d = defs[m].get(f, {})
                if f == "id":
                    continue
                if d.get("type") == "many2one" and v:
                    v = keys.get((d["relation"], v[0]), v[1])
                elif d.get("type") == "many2many":
                    v = sorted(str(keys.get((d["relation"], i), f"{d['relation']}({i})")) for i in v)
                elif d.get("type") == "many2one_reference" and v:
                    v = keys.get((r.get("res_model") or r.get("model"), v), v)
                rec[f] = v
            out[m][key] = rec
    return out, per_object


def differences(a: dict[str, dict[str, dict[str, Any]]], b: dict[str, dict[str, dict[str, Any]]], *,
                only: set[str] | None = None, skip: set[str] = frozenset()) -> list[str]:
    """What differs between two end states, per model and field (``only`` those fields, ``skip`` those)."""
    lines = []
    for m in sorted(set(a) | set(b)):
        ka, kb = set(a.get(m, {})), set(b.get(m, {}))
        if only is None and (ka - kb or kb - ka):
            lines.append(f"{m}: {len(ka - kb)} keys only in the serial run (e.g. {sorted(ka - kb)[:2]}), "
                         f"{len(kb - ka)} only in the parallel one (e.g. {sorted(kb - ka)[:2]})")
        fields: Counter = Counter()
        example: dict[str, str] = {}
        for k in ka & kb:
            for f in set(a[m][k]) | set(b[m][k]):
                if f in skip or (only is not None and f not in only):
                    continue
                if a[m][k].get(f) != b[m][k].get(f):
                    fields[f] += 1
                    example.setdefault(f, f"{k}: {a[m][k].get(f)!r} vs {b[m][k].get(f)!r}")
        lines += [f"{m}.{f}: differs on {n} records (e.g. {example[f]})" for f, n in fields.most_common()]
    return lines


def collect(odoo_db: str, real: RealOdoo, state_conn: str, odoo_log_from: int) -> dict[str, Any]:
    """What the run left in Odoo and in its state DB; Odoo's own retries since ``odoo_log_from`` (its log)."""
    from crm_migration.hooks.odoo import OdooHook
    from crm_migration.hooks.state import MigrationStateHook
    from crm_migration.mapping.spec import load_pair

    os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({"conn_type": "odoo", "host": real.url, "schema": odoo_db,
                                                          "login": "admin", "password": "admin"})
    os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = state_conn
    odoo, state = OdooHook(), MigrationStateHook()
    try:
        models = load_pair(PAIR).keyed_models()
        snapshot, per_object = end_state(odoo, models)
        # Odoo's predictive lead scoring: a deal's automated probability is computed from the won and lost deals in
        # the database when the deal is written, so it depends on the order the deals land; Odoo's daily cron
        # recomputes it from all of them (and the probability where it follows it, none of the migrated deals'):
        # run it now
        odoo.call("ir.cron", "method_direct_trigger", [[odoo.resolve_xmlid(PLS_CRON)[1]]])
        after_pls, _ = end_state(odoo, models)
        dead = state.dead_letters(pair=PAIR)
        mails = odoo.call("mail.mail", "search_count", [[]], context={"active_test": False})
    finally:
        odoo.close()
        state.close()
    with open(real.home / "odoo.log", "rb") as fh:
        fh.seek(odoo_log_from)
        odoo_retries = Counter(" ".join(m.groups()) if "maximum" in m[2] else m[1] for ln in
                               fh.read().decode(errors="replace").splitlines() if (m := ODOO_RETRY.search(ln)))
    moved = {f: sum(1 for k, rec in snapshot.get("crm.lead", {}).items()
                    if rec.get(f) != after_pls["crm.lead"][k].get(f)) for f in ("automated_probability", "probability")}
    return {"snapshot": snapshot, "after_pls": after_pls, "pls_moved": moved, "per_object": per_object, "dead": dead,
            "mails": mails,
            "odoo_retries": odoo_retries}


@contextlib.contextmanager
def world(scale: int, work: Path, odoo_home: Path | None) -> Iterator[tuple[RealOdoo, PrivatePostgres, str]]:
    """A real Odoo 17 with two workers in ``work/odoo`` (or ``odoo_home``: kept, stopped if started here), a
    private PostgreSQL, the Link app sandbox; all removed after."""
    real = RealOdoo("odoo17", home=odoo_home or work / "odoo", workers=2)
    link = pg = None
    try:
        t = time.perf_counter()
        real.start()
        print(f"own Odoo 17 with 2 workers at {real.url} ({real.home}): up in {time.perf_counter() - t:.0f} s",
              flush=True)
        pg = PrivatePostgres(datadir=work / "pg" / "data").start()
        link, link_url = start_sandbox("link-app", "--scale", str(scale), "--seed", "7")
        yield real, pg, link_url
    finally:
        if link is not None:
            link.terminate()
            link.wait(timeout=10)
        if pg is not None:
            pg.stop(remove=True)
        if odoo_home:
            real.stop()
        else:
            real.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=4, help="Link app sandbox scale (4: 2,694 records)")
    ap.add_argument("--batch-size", type=int, default=100, help="records per mapped load task")
    ap.add_argument("--parallelism", type=int, default=4, help="[core] parallelism of the parallel run")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds a DAG run may take")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (Airflow home, task logs)")
    ap.add_argument("--odoo-home", type=Path, help="the Odoo server's home (default: a new one in the work folder, "
                    "destroyed at the end); kept, to spare a cold start the next time")
    args = ap.parse_args()
    print(f"== {DAG_ID} (mode full) under LocalExecutor: serial (parallelism 1) vs parallel (parallelism "
          f"{args.parallelism}); Link app scale {args.scale}, batch size {args.batch_size}; load average "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="crm-bench-parallel-"))
    try:
        with world(args.scale, work, args.odoo_home) as (real, pg, link_url):
            af = Airflow(work / "airflow", pg)
            try:
                t = time.perf_counter()
                af.cli("db", "migrate")
                af.cli("pools", "import", str(ROOT / "include" / "pools.json"))
                af.start("api-server", "api-server", "--apps", "execution", "--host", "127.0.0.1",
                         "--port", str(af.api_port), "--workers", "1")
                af.start("dag-processor", "dag-processor")
                print(f"Airflow home {af.home} (metadata DB on PostgreSQL, pools imported) in "
                      f"{time.perf_counter() - t:.0f} s", flush=True)
                runs = []
                link_conn = json.dumps({"conn_type": "link_app", "host": link_url, "password": TOKEN,
                                        "extra": {"page_size": 100}})
                for label, parallelism in (("serial", 1), ("parallel", args.parallelism)):
                    db = real.new_db(f"bench_{label}")
                    state_conn = pg.new_database(f"state_{label}")
                    conns = {"AIRFLOW_CONN_ODOO_DEFAULT": json.dumps({
                        "conn_type": "odoo", "host": real.url, "schema": db, "login": "admin", "password": "admin"}),
                        "AIRFLOW_CONN_CRM_MIGRATION_STATE": state_conn, "AIRFLOW_CONN_LINK_APP_DEFAULT": link_conn}
                    log_from = (real.home / "odoo.log").stat().st_size
                    r = run_dag(af, label, parallelism, conns, args.batch_size, args.timeout)
                    r.update(collect(db, real, state_conn, log_from))
                    print_run(r)
                    runs.append(r)
                    if r["state"] != "success":
                        break
            finally:
                af.stop_all()
            return verdict(runs)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_run(r: dict[str, Any]) -> None:
    peak, pairs = most_at_once(r["tis"])
    loads = sum(1 for t in r["tis"] if t[0].startswith("load_") and t[1] >= 0)
    retried = sorted(f"{t[0]}[{t[1]}] x{t[3]}" for t in r["tis"] if (t[3] or 0) > 1)
    transient = ", ".join(f"{k} {n}" for k, n in r["transient"].items()) or "none"
    reasons = Counter((d["source_object"], str(d.get("reason") or "")[:80]) for d in r["dead"])
    print(f"\n{r['label']} (parallelism {r['parallelism']}): {r['state']} in {r['wall']:.1f} s; "
          f"{len(r['tis'])} task instances, {loads} mapped loads, at most {peak} running at once "
          f"({pairs} overlapping pairs)", flush=True)
    if r["failed"]:
        print(f"    not successful: {', '.join(r['failed'])}")
    spent: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for t in r["tis"]:
        if t[4] and t[5]:
            spent[t[0]] += (t[5] - t[4]).total_seconds()
            count[t[0]] += 1
    print(f"    task seconds (start to end, summed per task): {sum(spent.values()):.1f} s; the longest: "
          + ", ".join(f"{k} {v:.1f} s" + (f" ({count[k]} mapped)" if count[k] > 1 else "")
                      for k, v in spent.most_common(12)))
    print(f"    task retries: {', '.join(retried) or 'none'}; transient Odoo errors in the task logs: {transient}; "
          f"concurrency errors Odoo retried itself (its log): "
          f"{', '.join(f'{k} {n}' for k, n in r['odoo_retries'].items()) or 'none'}; mail queued: {r['mails']}")
    print(f"    dead letters: {len(r['dead'])}" + "".join(f"\n        {o}: {n} x {why}" for (o, why), n in
                                                         sorted(reasons.items())))
    print("    records per object in Odoo: " + ", ".join(f"{k.split(':', 1)[1]} {n:,}"
                                                         for k, n in sorted(r["per_object"].items())))


def verdict(runs: list[dict[str, Any]]) -> int:
    bad = [r["label"] for r in runs if r["state"] != "success"]
    lost = [d for r in runs for d in r["dead"] if TRANSIENT.search(str(d.get("reason") or ""))]
    if len(runs) < 2 or bad:
        print(f"\nrun(s) not successful: {', '.join(bad)}")
        return 1
    serial, parallel = runs
    diff = differences(serial["snapshot"], parallel["snapshot"], skip=PLS)
    pls = differences(serial["snapshot"], parallel["snapshot"], only=PLS)
    pls_after = differences(serial["after_pls"], parallel["after_pls"], only=PLS)
    rest_after = differences(serial["after_pls"], parallel["after_pls"], skip=PLS)
    n = sum(len(v) for v in serial["snapshot"].values())
    print(f"\nspeedup: {serial['wall']:.1f} s serial / {parallel['wall']:.1f} s parallel = "
          f"{serial['wall'] / parallel['wall']:.2f}x")
    print(f"records per object equal: {serial['per_object'] == parallel['per_object']}; dead letters "
          f"{len(serial['dead'])} / {len(parallel['dead'])}, of them lost to a transient error: {len(lost)}")
    if diff:
        print(f"end states DIFFER ({n:,} keyed records compared):\n    " + "\n    ".join(diff[:30]))
    else:
        print(f"end states identical: {n:,} keyed records in {len(serial['snapshot'])} models, every stored field "
              f"but ids, Odoo's own stamps ({', '.join(sorted(STAMPS - {'id', '__last_update'}))}) and the "
              f"predictive lead scoring below ({', '.join(sorted(PLS))}); deals' probability included")
    sm, pm = serial["pls_moved"], parallel["pls_moved"]
    print("Odoo's predictive lead scoring of the deals (automated_probability: Odoo computes it when a deal is "
          "written, from the won and lost deals already there, so it depends on the order deals land, serially too; "
          "is_automated_probability compares the probability with it); its daily cron recomputes it from all of them "
          f"and changed it on {sm['automated_probability']} of the serial run's deals and {pm['automated_probability']} "
          f"of the parallel run's, their probability on {sm['probability']} and {pm['probability']} (the source's: "
          "an open deal's is its stage's):\n    as loaded: " + ("; ".join(pls) or "equal")
          + "\n    after that cron ran on both: " + ("; ".join(pls_after) or "equal")
          + "; every other field: " + ("; ".join(rest_after[:10]) or "still identical"))
    print(f"machine: {machine()}; load average now {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if diff or lost or serial["per_object"] != parallel["per_object"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RealOdooUnavailable as exc:
        print(f"skipped, no real odoo17 server: {exc}")
