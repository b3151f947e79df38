"""Common setup for benchmarks: Airflow env before any airflow import, and machine facts to print."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

_home = tempfile.mkdtemp(prefix="crm-bench-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home}/airflow.db")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def start_sandbox(*args: str, timeout: float = 120) -> tuple[object, str]:
    """Start ``crm-sandbox <args>`` in its own process on a free port; return (process, base URL)."""
    import re
    import subprocess
    import sys
    import time

    from crm_sandbox.pg import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "crm_sandbox.cli", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(rf"http://127\.0\.0\.1:{port}", line or ""):
            return proc, f"http://127.0.0.1:{port}"
        if proc.poll() is not None:
            raise RuntimeError(f"crm-sandbox {' '.join(args)} did not start")
    raise RuntimeError(f"crm-sandbox {' '.join(args)} did not announce its URL")



class Quiet:
    """A pipeline log that says nothing (the benches print their own figures)."""

    def info(self, *a: object, **k: object) -> None: ...
    def warning(self, *a: object, **k: object) -> None: ...


WRITE_METHODS = ("create", "write", "unlink", "load")


class RunFigures:
    """What :func:`migrate_all` measured: records mapped, written, seconds (``schema_s``: the schema step's,
    ``picklists_s``: the picklist options added before the loads),
    Odoo calls; per load phase too
    (``objects``: an object's extract, batches and link; the timeline under its objects' names joined by
    ``+``), each ``{"rows", "landed", "extract_s", "load_s", "calls"}`` (``calls``: Odoo calls of its loads)."""

    def __init__(self) -> None:
        self.rows = self.landed = self.chatter_rows = 0
        self.wall = self.chatter_wall = self.schema_s = self.picklists_s = 0.0
        self.odoo_calls = self.odoo_writes = 0
        self.objects: dict[str, dict[str, Any]] = {}

    def phase(self, name: str) -> dict[str, Any]:
        return self.objects.setdefault(name, {"rows": 0, "landed": 0, "extract_s": 0.0, "load_s": 0.0, "calls": 0})


def migrate_all(pipe: Any, run_id: str, *, batch_size: int = 500, start: Any = None, schema: bool = False,
                after: Callable[[str, dict[str, Any]], None] | None = None,
                before: Callable[[str], None] | None = None) -> RunFigures:
    """Run every object of ``pipe``'s pair as the migrate DAG does (a delta DAG when ``start`` is given): the
    objects extracted first (``PairSpec.extracted_first``), their picklist options added in one call, then per
    object (extract), load its batches, link; the chatter as one timeline at the end. The one run loop of the
    benchmarks. ``after(phase, figures)`` is called when a load phase is done (a bench measuring something
    against it, e.g. the raw create of the same records, does it there); ``before(phase)`` right before its
    first load call (its extract done)."""
    from datetime import UTC, datetime

    out = RunFigures()
    calls = pipe.odoo.calls
    calls0 = sum(calls.values())
    writes0 = sum(n for (_m, meth), n in calls.items() if meth in WRITE_METHODS)
    t0 = time.perf_counter()
    if schema:
        pipe.prepare_schema(run_id=run_id)
        out.schema_s = time.perf_counter() - t0
    end = datetime.now(UTC)
    chatter = [o.name for o in pipe.spec.timeline()]
    timeline = "+".join(chatter)
    first = pipe.spec.extracted_first()
    extracted: dict[str, Any] = {}

    def extract(name: str) -> Any:
        t = time.perf_counter()
        refs = pipe.extract(name, run_id=run_id, start=start, end=end, batch_size=batch_size,
                            with_deleted=start is not None)
        out.phase(timeline if name in chatter else name)["extract_s"] += time.perf_counter() - t
        return refs

    for name in first:                  # the DAG's order: these extracted, then one picklist change, then loads
        extracted[name] = extract(name)
    t = time.perf_counter()
    pipe.extend_picklists(first, run_id=run_id)
    out.picklists_s = time.perf_counter() - t
    for name in pipe.loadable():
        refs = extracted[name] if name in extracted else extract(name)
        figures = out.phase(timeline if name in chatter else name)
        if name in chatter:
            continue                              # loaded below, as one timeline
        if before:
            before(name)
        t, calls_before = time.perf_counter(), sum(calls.values())
        for b in refs:
            r = pipe.load(name, run_id=run_id, batch_no=b["batch_no"])
            out.rows += r["rows"]
            out.landed += r["created"] + r["updated"]
            figures["rows"] += r["rows"]
            figures["landed"] += r["created"] + r["updated"]
        pipe.link(name, run_id=run_id)
        figures["load_s"] += time.perf_counter() - t
        figures["calls"] += sum(calls.values()) - calls_before
        if after:
            after(name, figures)
    if chatter and before:
        before(timeline)
    tc, calls_before = time.perf_counter(), sum(calls.values())
    for b in pipe.order_timeline(run_id=run_id, batch_size=batch_size):
        r = pipe.load_timeline(run_id=run_id, batch_no=b["batch_no"])
        out.rows += r["rows"]
        out.chatter_rows += r["rows"]
        out.landed += r["created"] + r["updated"]
    out.chatter_wall = time.perf_counter() - tc
    if chatter:
        figures = out.phase(timeline)
        figures.update(rows=figures["rows"] + out.chatter_rows, load_s=figures["load_s"] + out.chatter_wall,
                       calls=figures["calls"] + sum(calls.values()) - calls_before)
        figures["landed"] = out.landed - sum(f["landed"] for n, f in out.objects.items() if n != timeline)
        if after:
            after(timeline, figures)
    out.wall = time.perf_counter() - t0
    out.odoo_calls = sum(calls.values()) - calls0
    out.odoo_writes = sum(n for (_m, meth), n in calls.items() if meth in WRITE_METHODS) - writes0
    return out
