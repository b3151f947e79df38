"""The downloads of an attachments load behind a CDN's round trip: one file at a time against several at once.

The Link app sandbox runs in its own process with ``--download-latency`` (every ``/cdn/`` answer waits that long
first, as a CDN or Salesforce's ``VersionData`` costs a round trip); the pipeline downloads the attachments of
one batch (:meth:`Pipeline.download`; a load downloads a batch in parts, each while Odoo creates the one before) with ``download_workers``
1, 4 and 8 (the connection's ``extra.download_workers``; 8 by default). No Odoo and no state DB: the download
step alone. Prints figures; asserts nothing about time.
Run: make bench  (or .venv/bin/python bench/bench_downloads.py [--scale 5] [--latency 0.05])
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _env import Quiet, machine, start_sandbox  # noqa: E402

TOKEN = "link-sandbox-token"


def run(scale: int, latency: float, workers: tuple[int, ...] = (1, 4, 8)) -> None:
    link, link_url = start_sandbox("link-app", "--scale", str(scale), "--seed", "7", "--download-latency",
                                   str(latency))
    try:
        from crm_migration.engine.pipeline import Pipeline
        from crm_migration.hooks.link_app import LinkAppHook
        from crm_migration.mapping.spec import load_pair
        from crm_migration.streams.link_app_source import LinkAppSource

        base = None
        for n in workers:
            os.environ["AIRFLOW_CONN_LINK_APP_DEFAULT"] = json.dumps({
                "conn_type": "link_app", "host": link_url, "password": TOKEN, "extra": {"download_workers": n}})
            source = LinkAppSource(LinkAppHook())
            pipe = Pipeline("link_app_to_odoo", source, None, None, log=Quiet())  # type: ignore[arg-type]
            obj = load_pair("link_app_to_odoo").object("attachments")
            records = list(source.records(obj, start=None, end=datetime.now(UTC)))
            started = time.perf_counter()
            files = pipe.download(obj, records)
            seconds = time.perf_counter() - started
            size = sum(len(d) for d, _sha1 in files if isinstance(d, bytes))
            base = base or seconds
            print(f"  {len(records)} files ({size / 1024:,.0f} KiB), {latency * 1000:.0f} ms per download: "
                  f"download_workers {n}: {seconds:5.2f} s ({base / seconds:.1f}x)", flush=True)
    finally:
        link.terminate()
        link.wait(timeout=10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per download (the CDN's round trip)")
    args = ap.parse_args()
    logging.getLogger("crm_migration").setLevel(logging.ERROR)       # the file the tenant lost (404) says so
    print(f"the downloads of one batch of Link app attachments, scale {args.scale}:")
    run(args.scale, args.latency)
    print(f"machine: {machine()}; the Link app sandbox in its own process on loopback, --download-latency "
          f"{args.latency}")
