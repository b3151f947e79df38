"""A full Link app -> Odoo run through the pipeline engine: records/s, peak RSS, and the Link app requests
it costs per 1,000 records (a listing page holds ``page_size`` records, so close to 1000 / page_size, plus
one download per file).

The Link app and Odoo sandboxes run in their own processes, so this process is the loader alone (what an
Airflow worker runs: extract, map, load, link). Prints figures; asserts nothing about time.
Run: make bench  (or .venv/bin/python bench/bench_link_app_run.py [scale ...] [--page-size N])
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _env import Quiet, machine, migrate_all, start_sandbox  # noqa: E402

from crm_sandbox.pg import private_postgres  # noqa: E402

TOKEN = "link-sandbox-token"


def run(scale: int, page_size: int, batch_size: int = 500) -> None:
    link, link_url = start_sandbox("link-app", "--scale", str(scale), "--seed", "7")
    odoo, odoo_url = start_sandbox("odoo")
    try:
        with private_postgres() as pg:
            os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
            os.environ["AIRFLOW_CONN_LINK_APP_DEFAULT"] = json.dumps({
                "conn_type": "link_app", "host": link_url, "password": TOKEN, "extra": {"page_size": page_size}})
            os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
                "conn_type": "odoo", "host": odoo_url, "schema": "crmtest", "login": "admin", "password": "admin"})
            from crm_migration.engine.pipeline import Pipeline
            from crm_migration.hooks.link_app import LinkAppHook
            from crm_migration.hooks.odoo import OdooHook
            from crm_migration.hooks.state import MigrationStateHook
            from crm_migration.streams.link_app_source import LinkAppSource

            httpx.post(f"{link_url}/sandbox/stats/reset")
            state = MigrationStateHook()
            state.migrate()
            pipe = Pipeline("link_app_to_odoo", LinkAppSource(LinkAppHook()), OdooHook(), state, log=Quiet())
            run_ = migrate_all(pipe, "bench", batch_size=batch_size, schema=True)
            total, landed, wall = run_.rows, run_.landed, run_.wall
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            staged = state.get_records("SELECT count(*) FROM crm_migration.staging WHERE run_id = 'bench' "
                                       "AND source_object <> 'chatter' AND source_object NOT LIKE '%:read%'")[0][0]
            stats = httpx.get(f"{link_url}/sandbox/stats").json()["requests"]
            api = sum(n for p, n in stats.items() if p.startswith("/api/v1/"))
            files = sum(n for p, n in stats.items() if p.startswith("/cdn/"))
            print(f"scale {scale}, page_size {page_size}: {total:,} records mapped ({landed:,} landed) in {wall:.1f} s "
                  f"= {total / wall:,.0f} records/s; peak RSS of the loader process {rss:.0f} MB", flush=True)
            print(f"    Link app requests: {api:,} API requests for {staged:,} records read (links and stages "
                  f"included) = {1000 * api / staged:.1f} per 1,000 records (1000 / page_size = "
                  f"{1000 / page_size:.1f}); {files:,} file downloads (302s followed counted)", flush=True)
            state.close()
    finally:
        for p in (link, odoo):
            p.terminate()
            p.wait(timeout=10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("scales", nargs="*", type=int, default=[1, 10])
    ap.add_argument("--page-size", type=int, default=100)
    args = ap.parse_args()
    for s in args.scales:
        run(s, args.page_size)
    print(f"machine: {machine()}; sandboxes in their own processes on loopback; private PostgreSQL (fsync off)")
