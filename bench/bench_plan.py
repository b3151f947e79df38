"""Figures for the plan step of both pairs: source requests, Odoo calls and seconds per plan, by org/tenant scale;
the proposed mapping's precision and recall against the pair file and the seconds it took.

    .venv/bin/python bench/bench_plan.py [--scales 1,10] [--page-size 100] [--pairs apto_to_odoo,link_app_to_odoo]

The Apto plan's requests do not grow with the org (COUNT(), describes, samples; User and the Account edges
read whole, 2,000 rows a page); the Link app plan reads each resource once, so its requests are the pages:
sum over resources of ceil(records / page size), plus /deleted. Sandboxes (source and Odoo) run in this
process, so the seconds include serving. Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine  # noqa: E402


def bench(pair: str, scale: int, page_size: int) -> None:
    from crm_migration.engine.plan import build_plan
    from crm_migration.hooks.odoo import OdooHook
    from crm_migration.mapping.spec import load_pair
    from crm_sandbox.odoo.server import serve as serve_odoo

    odoo = serve_odoo(port=0)
    os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
        "conn_type": "odoo", "host": odoo.url, "schema": "crmtest", "login": "admin", "password": "admin",
        "extra": {"transport": "jsonrpc"}})
    if pair == "apto_to_odoo":
        from crm_migration.hooks.apto import AptoHook
        from crm_migration.streams.apto_source import AptoSource
        from crm_sandbox.apto.server import serve

        srv = serve(port=0, scale=scale, seed=7)
        os.environ["AIRFLOW_CONN_APTO_DEFAULT"] = json.dumps(srv.state.airflow_conn(srv.url))
        source = AptoSource(AptoHook())
        records = pages = None
    else:
        from crm_migration.hooks.link_app import LinkAppHook
        from crm_migration.streams.link_app_source import LinkAppSource
        from crm_sandbox.link_app.server import serve

        srv = serve(port=0, scale=scale, seed=7)
        conn = srv.state.airflow_conn(srv.url)
        conn["extra"] = {**conn.get("extra", {}), "page_size": page_size}
        os.environ["AIRFLOW_CONN_LINK_APP_DEFAULT"] = json.dumps(conn)
        source = LinkAppSource(LinkAppHook())
        tables = srv.state.tables
        records = sum(len(rows) for rows in tables.values())
        pages = (sum(max(1, math.ceil(len(rows) / page_size)) for rows in tables.values())
                 + max(1, math.ceil(len(srv.state.data.deleted) / 100)))          # /deleted: its default page
    try:
        t0 = time.perf_counter()
        plan = build_plan(source, OdooHook(), load_pair(pair))
        elapsed = time.perf_counter() - t0
    finally:
        srv.stop()
        odoo.stop()
    live = sum(o["live"] or 0 for o in plan.objects)
    if plan.proposal:
        from crm_migration.mapping.propose import precision_recall

        truth = load_pair(pair).with_namespace(plan.namespace or None)
        score = precision_recall(plan.proposal["rows"], plan.proposal["entries"], truth)
        print(f"{pair:<17} scale={scale:<3} proposed mapping: {len(plan.proposal['rows'])} source fields, "
              f"field -> Odoo field vs include/pairs/{pair}.yaml precision {score['precision']:.2f} recall "
              f"{score['recall']:.2f}, {plan.proposal['seconds']:.2f} s")
    top = sorted(plan.requests_per_path().items(), key=lambda kv: -kv[1])[:3]
    print(f"{pair:<17} scale={scale:<3} {live:>7} source records planned"
          + (f" ({records} in the source)" if records else "") + ", "
          + f"{plan.source_calls:>4} source requests" + (f" (pages: {pages})" if pages is not None else "")
          + f", {plan.odoo_call_count} Odoo calls, {elapsed:5.2f} s; most: "
          + ", ".join(f"{p.rsplit('/', 1)[-1]} {n}" for p, n in top))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--pairs", default="apto_to_odoo,link_app_to_odoo")
    args = ap.parse_args()
    import logging

    logging.disable(logging.INFO)
    print(f"plan bench on {machine()}; Link app page size {args.page_size}")
    for scale in [int(s) for s in args.scales.split(",") if s]:
        for pair in [p for p in args.pairs.split(",") if p]:
            bench(pair, scale, args.page_size)


if __name__ == "__main__":
    main()
