"""Loader efficiency: Odoo calls and state round trips per batch, client CPU per 1,000 records.

The Odoo sandbox runs in its own process (``crm-sandbox odoo``), so this process's CPU time is the
loader's alone (hook + engine + state hook). Prints figures; asserts nothing about time.
Run: make bench  (or .venv/bin/python bench/bench_loader.py)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine, start_sandbox  # noqa: E402

from crm_migration.engine.load import Target, load_batch  # noqa: E402
from crm_migration.engine.schema import ensure_migration_keys  # noqa: E402
from crm_migration.hooks.odoo import OdooHook  # noqa: E402
from crm_migration.hooks.state import MigrationStateHook  # noqa: E402
from crm_sandbox.pg import private_postgres  # noqa: E402

N = 10_000
BATCH = 500


def main() -> None:
    proc, url = start_sandbox("odoo")
    try:
        with private_postgres() as pg:
            os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
            os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps(
                {"conn_type": "odoo", "host": url, "schema": "crmtest", "login": "admin", "password": "admin",
                 "extra": {"transport": "xmlrpc"}})
            odoo, state = OdooHook(), MigrationStateHook()
            state.migrate()
            ensure_migration_keys(odoo, ["res.partner"])
            target = Target(pair="bench", source="bench", source_object="Contact", model="res.partner")
            rows = [{"source_id": f"c{i}", "values": {"name": f"Person {i}", "email": f"p{i}@example.org",
                                                      "phone": "+1 555 0100", "is_company": False}}
                    for i in range(N)]
            for label, rows_in in (("create", rows), ("rerun (all unchanged)", rows),
                                   ("update (1 field changed on every record)",
                                    [{**r, "values": {**r["values"], "phone": "+1 555 0199"}} for r in rows])):
                odoo.calls.clear()
                trips0 = state.round_trips
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for b in range(0, N, BATCH):
                    load_batch(odoo, state, target, rows_in[b:b + BATCH], run_id=f"bench-{label}",
                               log=_Quiet())
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                calls = sum(odoo.calls.values())
                batches = math.ceil(N / BATCH)
                print(f"{label}: {N:,} records in batches of {BATCH}: {wall:.2f} s wall ({N / wall:,.0f} records/s), "
                      f"client CPU {cpu * 1000 / (N / 1000):.0f} ms per 1,000 records; "
                      f"Odoo calls {calls} ({calls * 1000 / N:.1f} per 1,000 records; "
                      f"bound for creates ceil(1000/{BATCH}) + 2 = {math.ceil(1000 / BATCH) + 2}); "
                      f"state round trips per batch {(state.round_trips - trips0) / batches:.1f}")
            state.close()
            odoo.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"machine: {machine()}; Odoo sandbox in its own process over XML-RPC on loopback; private PostgreSQL")


class _Quiet:
    def info(self, *a, **k) -> None: ...
    def warning(self, *a, **k) -> None: ...


if __name__ == "__main__":
    main()
