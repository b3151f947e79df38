"""A full Apto -> Odoo run through the pipeline engine at two scales: records/s and peak RSS; then the same
run again with nothing changed in the org (a rerun) and a delta over an empty window, as shares of the full run.

The Apto and Odoo sandboxes run in their own processes, so this process is the loader alone (what an
Airflow worker runs: extract, map, load, link). Prints figures; asserts nothing about time.
Run: make bench  (or .venv/bin/python bench/bench_full_run.py [scale ...] [--target odoo17] [--profile FILE])
``--target odoo17``: a fresh database of the real server of ``../shared`` instead of the sandbox.
``--profile FILE`` writes a cProfile of the rerun to FILE (read it with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import Quiet, machine, migrate_all, start_sandbox  # noqa: E402

from crm_sandbox.pg import private_postgres  # noqa: E402


def run(scale: int, batch_size: int = 500, profile: str | None = None, target: str = "sandbox") -> None:
    import httpx

    apto, apto_url = start_sandbox("apto", "--scale", str(scale), "--seed", "7")
    real = db = None
    if target == "sandbox":
        odoo, odoo_url = start_sandbox("odoo")
        db = "crmtest"
    else:                       # a fresh database of the real server (started if needed, then stopped)
        from crm_sandbox.targets import RealOdoo

        odoo, real = None, RealOdoo(target).start()
        odoo_url, db = real.url, real.new_db("bench")
    try:
        with private_postgres() as pg:
            os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
            os.environ["AIRFLOW_CONN_APTO_DEFAULT"] = json.dumps({
                "conn_type": "apto", "host": apto_url, "login": "apto-sandbox-client-id",
                "password": "apto-sandbox-client-secret", "extra": {"auth": "client_credentials"}})
            os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
                "conn_type": "odoo", "host": odoo_url, "schema": db, "login": "admin", "password": "admin"})
            from crm_migration.engine.pipeline import Pipeline
            from crm_migration.hooks.apto import AptoHook
            from crm_migration.hooks.odoo import OdooHook
            from crm_migration.hooks.state import MigrationStateHook
            from crm_migration.streams.apto_source import AptoSource

            state = MigrationStateHook()
            state.migrate()

            peaks: dict[str, float] = {}

            def pipe() -> Pipeline:     # one per run, as each task builds its own
                return _tracked(Pipeline("apto_to_odoo", AptoSource(AptoHook()), OdooHook(), state, log=Quiet()),
                                peaks)

            full_pipe = pipe()
            full = migrate_all(full_pipe, "bench-full", batch_size=batch_size, schema=True)
            from crm_migration.engine.verify import reconcile

            _measured(peaks, "verify", lambda: reconcile(full_pipe, run_id="bench-full", objects=full_pipe.loadable()))
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"scale {scale}, Odoo {target}: {full.rows:,} source records ({full.landed:,} landed) in {full.wall:.1f} s = "
                  f"{full.rows / full.wall:,.0f} records/s; peak RSS of the loader process {rss:.0f} MB; "
                  f"chatter timeline: {full.chatter_rows:,} messages in {full.chatter_wall:.1f} s", flush=True)
            print("    peak RSS per task type (MB; each task in this one process, after all before it: an upper "
                  "bound): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()), flush=True)
            stats = f"{apto_url}/sandbox/stats"
            httpx.post(f"{stats}/reset")
            prof = None
            if profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            rerun = migrate_all(pipe(), "bench-rerun", batch_size=batch_size)
            if prof is not None:
                prof.disable()
                prof.dump_stats(profile)
            rerun_api = httpx.get(stats).json()
            since = datetime.now(UTC)
            time.sleep(1.1)
            httpx.post(f"{stats}/reset")
            delta = migrate_all(pipe(), "bench-delta", batch_size=batch_size, start=since)
            delta_api = httpx.get(stats).json()
            for label, r, api in (("rerun, nothing changed", rerun, rerun_api), ("empty delta window", delta, delta_api)):
                print(f"    {label}: {r.wall:.2f} s = {100 * r.wall / full.wall:.1f} % of the full run; "
                      f"{r.landed} written, {r.odoo_calls} Odoo calls ({r.odoo_writes} writes); "
                      f"Apto requests {_requests(api)}", flush=True)
            state.close()
    finally:
        for p in (apto, odoo):
            if p is not None:
                p.terminate()
                p.wait(timeout=10)
        if real is not None:
            real.drop_db(db)
            real.stop()


def _requests(stats: dict) -> str:
    calls = stats["calls"]
    return (f"{sum(calls.values())} ({calls.get('blob', 0)} file downloads; "
            + ", ".join(f"{k} {v}" for k, v in calls.items() if k != "blob") + ")")


#: the pipeline methods that are the DAG's tasks, by task type
TASKS = {"prepare_schema": "prepare_schema", "extract": "extract", "load": "load", "link": "link",
         "order_timeline": "order_chatter", "load_timeline": "load_chatter"}


def _hwm_mb() -> float:
    """This process's peak resident set since the last :func:`_reset_hwm` (Linux VmHWM), in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:    # "5": the peak goes back to the current RSS
        f.write("5")


def _measured(peaks: dict[str, float], kind: str, fn):
    _reset_hwm()
    try:
        return fn()
    finally:
        peaks[kind] = max(peaks.get(kind, 0.0), _hwm_mb())


def _tracked(pipe, peaks: dict[str, float]):
    """``pipe`` with each task method measuring its peak RSS into ``peaks`` (by task type)."""
    for meth, kind in TASKS.items():
        orig = getattr(pipe, meth)
        setattr(pipe, meth, lambda *a, _o=orig, _k=kind, **kw: _measured(peaks, _k, lambda: _o(*a, **kw)))
    return pipe


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("scales", nargs="*", type=int, default=[1, 10])
    ap.add_argument("--profile", help="write a cProfile of the rerun to this file")
    ap.add_argument("--target", default="sandbox", choices=("sandbox", "odoo17"),
                    help="the Odoo: the sandbox, or a fresh database of the real server of ../shared")
    args = ap.parse_args()
    for s in args.scales:
        run(s, profile=args.profile, target=args.target)
    print(f"machine: {machine()}; Apto sandbox in its own process on loopback; Odoo {args.target}; private "
          "PostgreSQL (fsync off)")
