"""Crosswalk recording: 100k rows through record_batch vs 100k single-row statements.

Prints figures; asserts nothing about time. Run: make bench  (or .venv/bin/python bench/bench_state_crosswalk.py)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine  # noqa: E402

from crm_migration.hooks.state import SCHEMA, MigrationStateHook  # noqa: E402
from crm_sandbox.pg import private_postgres  # noqa: E402

N = 100_000
BATCH = 1_000


def main() -> None:
    import os

    with private_postgres() as pg:
        os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
        hook = MigrationStateHook()
        hook.migrate()
        ids = [f"003{i:012d}" for i in range(N)]

        t0 = time.perf_counter()
        trips0 = hook.round_trips
        for b in range(0, N, BATCH):
            chunk = ids[b:b + BATCH]
            hook.record_batch(run_id="bench", pair="bench", source_object="Contact", odoo_model="res.partner",
                              links=[{"source_id": s, "odoo_id": b + i, "content_hash": "h"} for i, s in enumerate(chunk)],
                              audit=[{"source_id": s, "odoo_id": b + i, "action": "create"} for i, s in enumerate(chunk)],
                              manifest=[{"source_id": s, "odoo_id": b + i, "action": "created"}
                                        for i, s in enumerate(chunk)])
        batched = time.perf_counter() - t0
        trips = (hook.round_trips - trips0) / (N / BATCH)

        conn = hook.state_conn
        cur = conn.cursor()
        sample = 10_000
        t0 = time.perf_counter()
        for i, s in enumerate(ids[:sample]):
            cur.execute(f"INSERT INTO {SCHEMA}.crosswalk (pair, source_object, source_id, odoo_model, odoo_id) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (pair, source_object, source_id) "
                        "DO UPDATE SET odoo_id = EXCLUDED.odoo_id", ("single", "Contact", s, "res.partner", i))
        conn.commit()
        single = (time.perf_counter() - t0) * (N / sample)
        hook.close()

    print(f"machine: {machine()}, private PostgreSQL on loopback (fsync off)")
    print(f"record_batch, {N:,} crosswalk + {N:,} audit + {N:,} manifest rows in batches of {BATCH:,}: "
          f"{batched:.2f} s ({N / batched:,.0f} rows/s), {trips:.1f} round trips per batch")
    print(f"single-row statements (crosswalk only), extrapolated from {sample:,} to {N:,}: {single:.2f} s "
          f"({N / single:,.0f} rows/s)")
    print(f"speed-up: {single / batched:.1f}x while writing three tables instead of one")


if __name__ == "__main__":
    main()
