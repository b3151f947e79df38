"""Odoo sandbox speed: batched creates, search_read, per-call floor (prints figures; no asserts).

    .venv/bin/python bench/bench_odoo_sandbox.py [--runs 5]

"server process" runs the sandbox as ``crm-sandbox odoo`` in its own process (client and server do not
share a GIL, as with a real Odoo); "in-process" is the thread server the tests use. "server-side" times
``OdooSandbox.dispatch`` alone (parsed request in, result out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import machine  # noqa: E402

from crm_sandbox.odoo import xmlrpc_fast  # noqa: E402
from crm_sandbox.odoo.server import OdooSandbox, _gc_paused, serve  # noqa: E402

MIGRATION_CTX = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True,
                 "mail_notrack": True}
DB, UID, PWD = "crmtest", 2, "admin"


def partners(n: int, tag: str) -> list[dict]:
    return [{"name": f"Bench {tag} {i}", "email": f"bench{i}@example.com", "phone": "+1 555 0100",
             "city": "Boston", "is_company": bool(i % 2), "x_migration_key": f"bench:{tag}:{i}"}
            for i in range(n)]


def add_key_field(obj: xmlrpc.client.ServerProxy, model: str, model_id: int) -> None:
    obj.execute_kw(DB, UID, PWD, "ir.model.fields", "create", [{
        "model_id": model_id, "name": "x_migration_key", "field_description": "Migration key",
        "ttype": "char", "state": "manual", "index": True}])


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def bench_url(url: str, label: str, runs: int) -> None:
    obj = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)
    common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
    add_key_field(obj, "res.partner", 85)
    add_key_field(obj, "crm.lead", 393)
    counter = iter(range(10**6))

    def create_partners(ctx: dict) -> None:
        obj.execute_kw(DB, UID, PWD, "res.partner", "create", [partners(1000, str(next(counter)))],
                       {"context": ctx})

    for ctx_label, ctx in (("migration context", MIGRATION_CTX), ("default context (chatter on)", {})):
        med, best = timed(lambda ctx=ctx: create_partners(ctx), runs)
        print(f"  [{label}] XML-RPC res.partner create x1000, {ctx_label}: median {med * 1000:.1f} ms "
              f"({1000 / med:,.0f} rec/s), best {1000 / best:,.0f} rec/s")

    pids = obj.execute_kw(DB, UID, PWD, "res.partner", "search", [[["name", "like", "Bench 0 "]]], {"limit": 1000})

    def create_leads() -> None:
        tag = next(counter)
        obj.execute_kw(DB, UID, PWD, "crm.lead", "create", [[
            {"name": f"Lead {tag} {i}", "partner_id": pids[i % len(pids)], "stage_id": 1 + i % 4,
             "expected_revenue": 1000.0 + i, "x_migration_key": f"bench:lead:{tag}:{i}"}
            for i in range(1000)]], {"context": MIGRATION_CTX})
    med, _best = timed(create_leads, runs)
    print(f"  [{label}] XML-RPC crm.lead create x1000 (partner set), migration context: median "
          f"{med * 1000:.1f} ms ({1000 / med:,.0f} rec/s)")

    def jsonrpc_create() -> None:
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [DB, UID, PWD, "res.partner", "create", [partners(1000, f"j{next(counter)}")],
                     {"context": MIGRATION_CTX}]}}
        req = urllib.request.Request(f"{url}/jsonrpc", json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            assert len(json.loads(resp.read())["result"]) == 1000
    med, _best = timed(jsonrpc_create, runs)
    print(f"  [{label}] JSON-RPC res.partner create x1000, migration context: median {med * 1000:.1f} ms "
          f"({1000 / med:,.0f} rec/s)")

    total = obj.execute_kw(DB, UID, PWD, "res.partner", "search_count", [[]])
    med, _best = timed(lambda: obj.execute_kw(DB, UID, PWD, "res.partner", "search_read", [[]],
                                              {"fields": ["name", "email", "parent_id"], "limit": 10000}),
                       max(2, runs // 2))
    print(f"  [{label}] search_read 10,000 of {total:,} partners (3 fields): median {med * 1000:.1f} ms")

    med, _best = timed(lambda: [common.version() for _ in range(100)], 3)
    print(f"  [{label}] per-call floor, version() x100: {med * 10:.2f} ms/call")
    med, _best = timed(lambda: [obj.execute_kw(DB, UID, PWD, "res.partner", "search_count",
                                               [[["id", "=", 3]]]) for _ in range(100)], 3)
    print(f"  [{label}] per-call floor, search_count(id=3) x100: {med * 10:.2f} ms/call")


def bench_server_side(runs: int) -> None:
    state = OdooSandbox()
    state.execute_kw(DB, UID, PWD, "ir.model.fields", "create", [{
        "model_id": 85, "name": "x_migration_key", "field_description": "Migration key", "ttype": "char"}])
    bodies = [xmlrpc.client.dumps((DB, UID, PWD, "res.partner", "create", [partners(1000, f"s{i}")],
                                   {"context": MIGRATION_CTX}), "execute_kw").encode() for i in range(runs)]
    parse_t, dispatch_t = [], []
    for body in bodies:
        with _gc_paused():  # as the HTTP handler does for each request
            t0 = time.perf_counter()
            params, _method = xmlrpc_fast.loads(body)
            t1 = time.perf_counter()
            state.dispatch("object", "execute_kw", list(params))
            t2 = time.perf_counter()
        parse_t.append(t1 - t0)
        dispatch_t.append(t2 - t1)
    p, d = statistics.median(parse_t), statistics.median(dispatch_t)
    print(f"  [server-side] res.partner create x1000: XML parse {p * 1000:.1f} ms + ORM {d * 1000:.1f} ms = "
          f"{1000 / (p + d):,.0f} rec/s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["server-side", "server-process", "in-process"])
    args = parser.parse_args()
    if args.only is None:
        # each scenario in a fresh interpreter: one scenario's heap must not slow the next one's GC
        print(f"Odoo sandbox bench on {machine()}", flush=True)
        for only in ("server-side", "server-process", "in-process"):
            subprocess.run([sys.executable, __file__, "--runs", str(args.runs), "--only", only], check=True)
        return 0
    if args.only == "server-side":
        bench_server_side(args.runs)
    elif args.only == "in-process":
        server = serve()
        try:
            bench_url(server.url, "in-process", args.runs)
        finally:
            server.stop()
    else:
        proc = subprocess.Popen([sys.executable, "-m", "crm_sandbox.cli", "odoo", "--port", "0"],
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            url = line.strip().rsplit(" ", 1)[-1]
            bench_url(url, "server process", args.runs)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
