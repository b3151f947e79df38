"""A full Apto -> Odoo run through the pipeline engine at two scales: records/s and peak RSS.

The Apto and Odoo sandboxes run in their own processes, so this process is the loader alone (what an
Airflow worker runs: extract, map, load, link). Prints figures; asserts nothing about time.
Run: make bench  (or .venv/bin/python bench/bench_full_run.py [scale ...])
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine, start_sandbox  # noqa: E402

from crm_sandbox.pg import private_postgres  # noqa: E402


def run(scale: int, batch_size: int = 500) -> None:
    apto, apto_url = start_sandbox("apto", "--scale", str(scale), "--seed", "7")
    odoo, odoo_url = start_sandbox("odoo")
    try:
        with private_postgres() as pg:
            os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
            os.environ["AIRFLOW_CONN_APTO_DEFAULT"] = json.dumps({
                "conn_type": "apto", "host": apto_url, "login": "apto-sandbox-client-id",
                "password": "apto-sandbox-client-secret", "extra": {"auth": "client_credentials"}})
            os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
                "conn_type": "odoo", "host": odoo_url, "schema": "crmtest", "login": "admin", "password": "admin"})
            from crm_migration.engine.pipeline import Pipeline
            from crm_migration.hooks.apto import AptoHook
            from crm_migration.hooks.odoo import OdooHook
            from crm_migration.hooks.state import MigrationStateHook
            from crm_migration.streams.apto_source import AptoSource

            state = MigrationStateHook()
            state.migrate()
            pipe = Pipeline("apto_to_odoo", AptoSource(AptoHook()), OdooHook(), state, log=_Quiet())
            t0 = time.perf_counter()
            pipe.prepare_schema(run_id="bench")
            end = datetime.now(UTC)
            total = landed = 0
            chatter = {o.name for o in pipe.spec.timeline()}
            for name in pipe.loadable():           # as the migrate DAG does it
                refs = pipe.extract(name, run_id="bench", start=None, end=end, batch_size=batch_size)
                if name in chatter:
                    continue                       # loaded below, as one timeline
                for b in refs:
                    r = pipe.load(name, run_id="bench", batch_no=b["batch_no"])
                    total += r["rows"]
                    landed += r["created"] + r["updated"]
                pipe.link(name, run_id="bench")
            t_chatter = time.perf_counter()
            messages = 0
            for b in pipe.order_timeline(run_id="bench", batch_size=batch_size):
                r = pipe.load_timeline(run_id="bench", batch_no=b["batch_no"])
                total += r["rows"]
                messages += r["rows"]
                landed += r["created"] + r["updated"]
            t_chatter = time.perf_counter() - t_chatter
            wall = time.perf_counter() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"scale {scale}: {total:,} source records ({landed:,} landed) in {wall:.1f} s = "
                  f"{total / wall:,.0f} records/s; peak RSS of the loader process {rss:.0f} MB; "
                  f"chatter timeline: {messages:,} messages in {t_chatter:.1f} s", flush=True)
            state.close()
    finally:
        for p in (apto, odoo):
            p.terminate()
            p.wait(timeout=10)


class _Quiet:
    def info(self, *a: object, **k: object) -> None: ...
    def warning(self, *a: object, **k: object) -> None: ...


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1, 10]:
        run(s)
    print(f"machine: {machine()}; sandboxes in their own processes on loopback; private PostgreSQL (fsync off)")
