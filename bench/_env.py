"""Common setup for benchmarks: Airflow env before any airflow import, and machine facts to print."""

from __future__ import annotations

import os
import platform
import tempfile

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
