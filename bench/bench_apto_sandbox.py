"""Figures for the Apto sandbox: org generation time and memory, query paging throughput over HTTP.

    .venv/bin/python bench/bench_apto_sandbox.py [--scales 1,10,100] [--object Task]

Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc

import httpx

from crm_sandbox.apto.generator import generate_org
from crm_sandbox.apto.server import AptoOrg, serve


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,10,100")
    ap.add_argument("--object", default="Task")
    args = ap.parse_args()
    for scale in (int(s) for s in args.scales.split(",")):
        bench_generate(scale)
        bench_paging(scale, args.object)
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
