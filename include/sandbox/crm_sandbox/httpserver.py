"""The one HTTP server base every sandbox uses: threaded, loopback, startable in-process or as a CLI.

A sandbox subclasses ``SandboxHandler`` (``do_GET`` / ``do_POST`` …) and calls
``SandboxServer(handler_cls, port=0, state=...)``; ``server.state`` is shared by all requests.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class SandboxHandler(BaseHTTPRequestHandler):
    """Request handler with small helpers; ``self.server.state`` is the sandbox's store."""

    protocol_version = "HTTP/1.1"
    server_version = "crm-sandbox/0.1"

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every keep-alive call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    @property
    def state(self) -> Any:
        return self.server.state  # type: ignore[attr-defined]

    # every method goes to handle_request(method); a sandbox that answers none of them keeps stdlib's 501
    def handle_request(self, method: str) -> None:
        self.send_error(501, f"Unsupported method ({method!r})")

    def do_GET(self) -> None:  # noqa: N802 - stdlib signature
        self.handle_request("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.handle_request("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self.handle_request("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.handle_request("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self.handle_request("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self.handle_request("DELETE")

    def request_target(self, method: str) -> tuple[str, dict[str, str]]:
        """``(path, query params)`` of the request; the body is read into ``self.body`` up front (none for
        GET/HEAD), so an error answer never leaves bytes behind on a kept-alive connection."""
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.body = self.read_body() if method not in {"GET", "HEAD"} else b""
        return split.path, params

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, body: bytes, content_type: str = "application/octet-stream",
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload, default=str).encode(), "application/json", headers)

    def drop_connection(self) -> None:
        """Close the socket without an answer (a dropped connection, for fault injection)."""
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1; ``port=0`` picks a free port."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, handler_cls: type[SandboxHandler], *, state: Any, host: str = "127.0.0.1",
                 port: int = 0, verbose: bool = False) -> None:
        super().__init__((host, port), handler_cls)
        self.state, self.verbose = state, verbose
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        self._thread = threading.Thread(target=self.serve_forever, name=f"sandbox-{self.url}", daemon=True)
        self._thread.start()
        return self

    def run_until_interrupted(self) -> int:
        """For a CLI: serve (in the foreground, or on in the thread :meth:`start` began) until Ctrl-C, then
        close; return the exit code 0."""
        try:
            if self._thread is None:
                self.serve_forever()
            else:
                while self._thread.is_alive():
                    self._thread.join(timeout=3600)
        except KeyboardInterrupt:
            pass
        finally:
            if self._thread is None:
                self.server_close()
            else:
                self.stop()
        return 0

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
