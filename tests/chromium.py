"""Headless Chromium for the UI tests, driven over the DevTools protocol: one page, what a person reads on it.

The one browser driver of the suite (the on-call view's tests and the Airflow UI check of the approval step).
Without Debian's ``chromium`` a UI test is skipped, or fails under ``CI=true`` (``make install`` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

#: the browser's path, None where none is installed
CHROMIUM = next((p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None)


def chromium() -> str:
    """The browser's path; skip the test where there is none (fail it under ``CI=true``)."""
    if CHROMIUM:
        return CHROMIUM
    reason = "headless Chromium is not installed (Debian: apt-get install chromium; make install does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class Browser:
    """Headless Chromium with one page. Its own process group, so the browser and every child it started end
    together in :meth:`close`, before the profile directory goes. A context manager."""

    def __init__(self, profile: Path | None = None) -> None:
        from websockets.sync.client import connect

        self._tmp = None if profile else tempfile.TemporaryDirectory(prefix="crm-chromium-",
                                                                     ignore_cleanup_errors=True)
        profile = profile or Path(self._tmp.name)
        self.proc = subprocess.Popen([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                                      "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text().strip():
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.1)
            port = port_file.read_text().split()[0]
            (page,) = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        except BaseException:
            self._kill()
            raise
        self.next_id, self.events, self.dialogs = 0, [], []
        self.call("Page.enable")
        self.call("Network.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> dict:
        msg = json.loads(self.ws.recv(timeout=30))
        if msg.get("method") == "Page.javascriptDialogOpening":
            self.dialogs.append(msg["params"]["message"])
            self.ws.send(json.dumps({"id": -1, "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": True}}))
        return msg

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = self._read()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def login(self, base: str, token: str) -> None:
        """Logged in to Airflow as after its login page: the ``_token`` cookie."""
        self.call("Network.setCookie", name="_token", value=token, url=base + "/", path="/")

    def wait_for_load(self) -> None:
        while True:
            if any(e["method"] == "Page.loadEventFired" for e in self.events):
                self.events.clear()
                return
            msg = self._read()
            if "method" in msg:
                self.events.append(msg)

    def open(self, url: str) -> str:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for_load()
        return self.text()

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def text(self) -> str:
        """What a person reads on the page."""
        return self.js("document.body ? document.body.innerText : ''")

    def links(self) -> list[str]:
        return self.js("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")

    def wait_for_text(self, until: str | tuple[str, ...], timeout: float = 60) -> str:
        """The page's text once it contains ``until`` (each of them, if several: a page its scripts fill in, its
        translations loaded apart), else what it shows then."""
        wanted = (until,) if isinstance(until, str) else until
        deadline = time.monotonic() + timeout
        while not all(w in (text := self.text()) for w in wanted) and time.monotonic() < deadline:
            time.sleep(0.5)
        return text

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        self._kill()
