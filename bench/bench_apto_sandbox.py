"""Figures for the Apto sandbox: org generation time and memory, query paging throughput over HTTP,
and AptoHook's REST query against its Bulk API 2.0 query job for one large object.

    .venv/bin/python bench/bench_apto_sandbox.py [--scales 1,10,100] [--object Task]
        [--bulk-scales 10,100] [--bulk-object Task] [--max-records N]

``--scales ""`` skips generation and paging; ``--bulk-scales ""`` skips REST vs Bulk. Prints figures
only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _env import machine, start_sandbox  # noqa: E402

from crm_sandbox.apto.generator import generate_org  # noqa: E402
from crm_sandbox.apto.server import AptoOrg, serve  # noqa: E402


def bench_generate(scale: int) -> None:
    gc.collect()
    t0 = time.perf_counter()
    org = generate_org(scale=scale, seed=7)
    elapsed = time.perf_counter() - t0
    del org
    gc.collect()
    tracemalloc.start()       # a second run, traced (tracing slows it down several times)
    org = generate_org(scale=scale, seed=7)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    counts = org.counts()
    total = sum(counts.values())
    blob_mb = sum(len(b) for b in org.blobs.values()) / 1e6
    print(f"generate scale={scale:<4} {total:>8} records in {elapsed:6.2f} s ({total / elapsed:,.0f} rec/s), "
          f"peak {peak / 1e6:,.0f} MB traced, blobs {blob_mb:,.1f} MB; accounts {counts['Account']}, "
          f"contacts {counts['Contact']}, deals {counts['Opportunity']}, tasks {counts['Task']}, events {counts['Event']}")


def bench_paging(scale: int, sobject: str) -> None:
    server = serve(port=0, org=AptoOrg(scale=scale, seed=7))
    org = server.state
    try:
        tok = httpx.post(f"{server.url}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": org.client_id, "client_secret": org.client_secret}).json()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tok['access_token']}"},
                          timeout=120) as api:
            v = "/services/data/v60.0"
            soql = f"SELECT Id, OwnerId, CreatedDate, SystemModstamp FROM {sobject} ORDER BY SystemModstamp, Id"
            t0 = time.perf_counter()
            page = api.get(f"{v}/query", params={"q": soql}).json()
            first = time.perf_counter() - t0
            n, pages, worst = len(page["records"]), 1, first
            while not page["done"]:
                t1 = time.perf_counter()
                page = api.get(page["nextRecordsUrl"]).json()
                worst = max(worst, time.perf_counter() - t1)
                n += len(page["records"])
                pages += 1
            elapsed = time.perf_counter() - t0
            t1 = time.perf_counter()
            count = api.get(f"{v}/query", params={"q": f"SELECT COUNT() FROM {sobject}"}).json()["totalSize"]
            count_s = time.perf_counter() - t1
            mid = "2024-01-01T00:00:00Z"
            t1 = time.perf_counter()
            api.get(f"{v}/query", params={"q": f"SELECT Id FROM {sobject} WHERE SystemModstamp >= {mid} "
                                               "AND SystemModstamp < 2024-02-01T00:00:00Z"})
            window_s = time.perf_counter() - t1
        print(f"paging scale={scale:<4} {sobject}: {n} records ({count} counted) in {pages} pages, {elapsed:6.2f} s "
              f"({n / elapsed:,.0f} rec/s); first page {first * 1000:,.0f} ms, slowest page {worst * 1000:,.0f} ms; "
              f"COUNT() {count_s * 1000:,.0f} ms; one-month window {window_s * 1000:,.0f} ms")
    finally:
        server.stop()


def bench_rest_vs_bulk(scale: int, sobject: str, max_records: int | None) -> None:
    """The same SOQL through ``AptoHook.query`` (REST pages) and ``AptoHook.bulk_query`` (one job).

    The sandbox runs in its own process, so this one is the client alone: HTTP, JSON or CSV parsing,
    typing. Both reads hash their records (time left out of the figures) to show they are identical.
    The describe (the Bulk path types the CSV from it) is asked once beforehand, as a run does.
    """
    proc, url = start_sandbox("apto", "--scale", str(scale), "--seed", "7")
    try:
        os.environ["AIRFLOW_CONN_APTO_DEFAULT"] = json.dumps({
            "conn_type": "apto", "host": url, "login": "apto-sandbox-client-id",
            "password": "apto-sandbox-client-secret", "extra": {"auth": "client_credentials", "namespace": "McLabs2"}})
        from crm_migration.hooks.apto import AptoHook

        hook = AptoHook()
        waits: list[float] = []
        hook.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))   # the job's poll backoff
        fields = [f["name"] for f in hook.describe(sobject)["fields"] if f["type"] not in {"base64", "address"}]
        soql = f"SELECT {', '.join([*fields, 'Owner.Email'])} FROM {sobject} ORDER BY SystemModstamp, Id"
        figures = {}
        for path in ("REST", "Bulk"):
            httpx.post(f"{url}/sandbox/stats/reset").raise_for_status()
            digest, n, hashing = hashlib.sha256(), 0, 0.0
            t0 = time.perf_counter()
            rows = hook.query(soql) if path == "REST" else hook.bulk_query(soql, max_records=max_records)
            for record in rows:
                t1 = time.perf_counter()
                digest.update(json.dumps(record).encode())
                hashing += time.perf_counter() - t1
                n += 1
            elapsed = time.perf_counter() - t0 - hashing
            calls = {k: v for k, v in httpx.get(f"{url}/sandbox/stats").json()["calls"].items() if k != "token"}
            figures[path] = digest.hexdigest()
            waited = sum(waits) if path == "Bulk" else 0.0
            net = f"; {n / (elapsed - waited):,.0f} rec/s without its {waited:.2f} s of poll waits" if waited else ""
            print(f"{path:<4} scale={scale:<4} {sobject}: {n} records ({len(fields) + 1} columns) in {elapsed:6.2f} s "
                  f"({n / elapsed:,.0f} rec/s{net}); {sum(calls.values())} API calls {calls}")
        print(f"REST and Bulk records identical: {figures['REST'] == figures['Bulk']}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,10,100")
    ap.add_argument("--object", default="Task")
    ap.add_argument("--bulk-scales", default="10,100")
    ap.add_argument("--bulk-object", default="Task")
    ap.add_argument("--max-records", type=int, default=None, help="Bulk result page size (default: the server's)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for scale in (int(s) for s in args.scales.split(",") if s):
        bench_generate(scale)
        bench_paging(scale, args.object)
    for scale in (int(s) for s in args.bulk_scales.split(",") if s):
        bench_rest_vs_bulk(scale, args.bulk_object, args.max_records)
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
