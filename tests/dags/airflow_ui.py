"""Airflow's UI in a real browser: the API app served by uvicorn on loopback (what ``airflow api-server`` runs) and
headless Chromium driven over the DevTools protocol (a cookie ``_token`` as after a login, then the page's text)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def api_server():
    """Airflow's API app (UI included) served on ``127.0.0.1`` in this process; yields its base URL."""
    import uvicorn
    from airflow.api_fastapi.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app("core"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def page_text(base: str, path: str, token: str, *, until: str, timeout: float = 60) -> tuple[str, list[str]]:
    """The visible text (``document.body.innerText``) and the links of ``base + path`` in headless Chromium logged
    in with ``token``, once the text contains ``until`` (else what it shows at the timeout)."""
    from websockets.sync.client import connect

    port = _free_port()
    # its own process group: the browser and every child it started end together, before the profile goes
    with tempfile.TemporaryDirectory(prefix="crm-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                 "--disable-dev-shm-usage", f"--remote-debugging-port={port}",
                                 f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                        pages = [t for t in json.load(r) if t["type"] == "page"]
                    if pages:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.2)
            with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
                ids = iter(range(1, 10_000))

                def call(method, **params):
                    n = next(ids)
                    ws.send(json.dumps({"id": n, "method": method, "params": params}))
                    while True:
                        msg = json.loads(ws.recv())
                        if msg.get("id") == n:
                            assert "error" not in msg, msg
                            return msg["result"]

                call("Network.enable")
                call("Network.setCookie", name="_token", value=token, url=base, path="/")
                call("Page.navigate", url=base + path)
                page = {"text": "", "links": []}
                while time.monotonic() < deadline:
                    page = call("Runtime.evaluate", returnByValue=True, expression=(
                        "({text: document.body ? document.body.innerText : '', "
                        "links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))})"
                    ))["result"].get("value") or page
                    if until in page["text"]:
                        break
                    time.sleep(0.5)
                return page["text"], page["links"]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
