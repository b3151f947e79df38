"""Airflow's UI in a real browser: the API app served by uvicorn on loopback (what ``airflow api-server`` runs) and
the suite's headless Chromium (``tests/chromium.py``: a cookie ``_token`` as after a login, then the page's text)."""

from __future__ import annotations

import contextlib
import threading
import time

from chromium import CHROMIUM, Browser

from crm_sandbox.pg import free_port

__all__ = ["CHROMIUM", "api_server", "page_text"]


@contextlib.contextmanager
def api_server():
    """Airflow's API app (UI included) served on ``127.0.0.1`` in this process; yields its base URL."""
    import uvicorn
    from airflow.api_fastapi.app import create_app

    port = free_port()
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


def page_text(base: str, path: str, token: str, *, until: str | tuple[str, ...],
              timeout: float = 60) -> tuple[str, list[str]]:
    """The visible text (``document.body.innerText``) and the links of ``base + path`` in headless Chromium logged
    in with ``token``, once the text contains ``until`` (each of them, if several; else what it shows at the
    timeout)."""
    with Browser() as browser:
        browser.login(base, token)
        browser.call("Page.navigate", url=base + path)
        return browser.wait_for_text(until, timeout), browser.links()
