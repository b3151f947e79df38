"""The Link app sandbox: the REST API of ``specs/link-app-api.md`` over a generated tenant, on loopback.

    from crm_sandbox.link_app.server import serve
    with serve(port=0, scale=1, seed=7) as srv:      # a started server, stopped on exit
        srv.url, srv.state                          # base URL, the LinkAppTenant (srv.state.token)

    crm-sandbox link-app --port 8082 --scale 1 --seed 7

API (bearer token): ``GET /api/v1/{resource}`` (limit, cursor, updated_since, updated_before),
``GET /api/v1/{resource}/{id}``, ``GET /api/v1/deleted?since=``. Files (the "CDN", same token):
``GET /cdn/files/{id}/{name}`` (bytes, or 302 to ``/cdn/signed/{id}/{name}?expires&sig``, which needs
no token). Admin (no auth, not Link app) under ``/sandbox/``: ``GET info``, ``GET stats``,
``POST stats/reset``, ``POST mutate``, ``GET|POST|DELETE faults``, ``POST rate-limit``, ``POST token``,
``POST clock``, ``POST reset``. Every answer carries ``X-RateLimit-Remaining``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from ..httpserver import SandboxHandler, SandboxServer
from .generator import parse_ts
from .tenant import DEFAULT_TOKEN, ApiError, Fault, FileAnswer, LinkAppTenant, not_found

__all__ = ["LinkAppHandler", "LinkAppServer", "LinkAppTenant", "main", "serve"]

_GATEWAY_PAGE = "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"


class LinkAppHandler(SandboxHandler):
    """Route requests onto the :class:`LinkAppTenant` in ``server.state``."""

    server_version = "link-app-sandbox/0.1"

    @property
    def tenant(self) -> LinkAppTenant:
        return self.state

    # ------------------------------------------------------------------------------ dispatch
    def handle_request(self, method: str) -> None:
        path, params = self.request_target(method)
        self.counted = False
        try:
            if path == "/sandbox" or path.startswith("/sandbox/"):
                self._admin(method, path[len("/sandbox"):].strip("/"))
                return
            if not (path == "/api/v1" or path.startswith(("/api/v1/", "/cdn/"))):
                raise not_found(f"path {path!r}")
            self.counted = True
            self.tenant.count_request(path)
            fault = self.tenant.take_fault(path)
            if fault is not None and self._apply_fault(fault):
                return
            if not path.startswith("/cdn/signed/"):          # a signed URL is its own credential
                self.tenant.check_auth(self.headers.get("Authorization"))
            self.tenant.take_rate()
            if method not in {"GET", "HEAD"}:
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed here", {"Allow": "GET, HEAD"})
            if path.startswith("/cdn/"):
                self._download(path, params)
            else:
                self._api(path, params)
        except ApiError as e:
            self._json(e.status, e.payload, e.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a sandbox bug: say what happened, in the API's error shape
            self._json(500, {"error": {"code": "internal_error", "message": f"sandbox error: {type(e).__name__}: {e}"}})

    @property
    def base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.url  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        if self.counted:
            self.tenant.count_status(status)
        hdrs = {"X-RateLimit-Limit": str(self.tenant.rate_limit),
                "X-RateLimit-Remaining": str(self.tenant.rate_remaining()), **(headers or {})}
        self.send_bytes(status, body, content_type, hdrs)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _apply_fault(self, fault: Fault) -> bool:
        """Apply an injected fault; True when the answer has been given (or the connection dropped)."""
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            self.drop_connection()
            return True
        if fault.kind == "unauthorized":
            raise ApiError(401, "unauthorized", "token expired", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        headers = {"Retry-After": str(math.ceil(fault.retry_after))} if fault.retry_after is not None else {}
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status in {502, 504}:      # the gateway answers, not the app: HTML, not the API's JSON
            reason = self.responses.get(fault.status, ("Error",))[0]
            page = _GATEWAY_PAGE.format(status=fault.status, reason=reason).encode()
            self._send(fault.status, page, "text/html; charset=utf-8", headers)
            return True
        code = {429: "rate_limited", 500: "internal_error", 503: "service_unavailable"}.get(fault.status, "injected_fault")
        raise ApiError(fault.status, code, f"injected fault: HTTP {fault.status}", headers)

    def _api(self, path: str, params: dict[str, str]) -> None:
        parts = [unquote(p) for p in path[len("/api/v1"):].split("/") if p]
        if parts == ["deleted"]:
            self._json(200, self.tenant.deleted(params))
        elif len(parts) == 1:
            self._json(200, self.tenant.list_page(parts[0], params, self.base))
        elif len(parts) == 2 and parts[0] != "deleted":
            self._json(200, self.tenant.get(parts[0], parts[1], self.base))
        else:
            raise not_found(f"path {path!r}")

    def _download(self, path: str, params: dict[str, str]) -> None:
        with self.tenant.downloading():
            if self.tenant.download_latency > 0:                # a CDN's round trip (--download-latency)
                time.sleep(self.tenant.download_latency)
            parts = [unquote(p) for p in path.split("/") if p]  # cdn, files|signed, id, name
            if len(parts) < 3 or parts[1] not in {"files", "signed"}:
                raise not_found(f"path {path!r}")
            if parts[1] == "files":
                answer = self.tenant.download(parts[2], self.base)
            else:
                answer = self.tenant.signed_download(parts[2], params.get("expires"), params.get("sig"))
            self._file(answer)

    def _file(self, answer: FileAnswer) -> None:
        if answer.location:
            self._send(answer.status, b"", "text/plain", {"Location": answer.location})
            return
        fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in answer.file_name)
        self._send(answer.status, answer.body, answer.content_type, {
            "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(answer.file_name)}",
            "ETag": '"' + hashlib.md5(answer.body).hexdigest() + '"',  # noqa: S324 - a content tag, not security
            "Cache-Control": "private, max-age=300"})

    # --------------------------------------------------------------------------------- admin
    def _admin(self, method: str, what: str) -> None:
        tenant = self.tenant
        body: dict[str, Any] = {}
        if self.body:
            try:
                body = json.loads(self.body)
            except ValueError:
                raise ApiError(400, "invalid_body", "the request body is not JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "invalid_body", "the request body must be a JSON object")
        route = (method, what)
        if route == ("GET", "info"):
            self._json(200, tenant.info(self.base))
        elif route == ("GET", "stats"):
            self._json(200, tenant.get_stats())
        elif route == ("POST", "stats/reset"):
            tenant.reset_stats()
            self._json(200, tenant.get_stats())
        elif route == ("POST", "mutate"):
            self._json(200, tenant.mutate(body))
        elif route == ("POST", "faults"):
            items = body["faults"] if isinstance(body.get("faults"), list) else [body]
            try:
                made = [tenant.inject_fault(f.get("kind", "status"), int(f.get("count", 1)),
                                            status=int(f.get("status", 503)), retry_after=f.get("retry_after"),
                                            delay=float(f.get("delay", 0)), match=f.get("match")) for f in items]
            except (TypeError, ValueError) as e:
                raise ApiError(400, "invalid_fault", str(e)) from None
            self._json(200, {"faults": [f.to_dict() for f in made]})
        elif route == ("GET", "faults"):
            self._json(200, {"faults": [f.to_dict() for f in tenant.faults]})
        elif route == ("DELETE", "faults"):
            tenant.clear_faults()
            self._json(200, {"faults": []})
        elif route == ("POST", "rate-limit"):
            self._json(200, tenant.set_rate_limit(body.get("limit"), body.get("window")))
        elif route == ("POST", "token"):
            if not body.get("token"):
                raise ApiError(400, "invalid_body", "token is required")
            with tenant.lock:
                tenant.token = str(body["token"])
            self._json(200, {"token": tenant.token})
        elif route == ("POST", "clock"):
            try:
                tenant.clock = parse_ts(body["now"]) if body.get("now") else None
            except ValueError as e:
                raise ApiError(400, "invalid_body", str(e)) from None
            self._json(200, {"now": tenant.now().isoformat()})
        elif route == ("POST", "reset"):
            tenant.reset()
            self._json(200, {"reset": True})
        else:
            raise ApiError(404, "not_found", f"no admin endpoint {method} /sandbox/{what}")


class LinkAppServer(SandboxServer):
    """The sandbox server; ``start()`` is idempotent, so ``with serve(...) as srv:`` works too."""

    def start(self) -> LinkAppServer:
        if self._thread is not None and self._thread.is_alive():
            return self
        super().start()
        return self


def serve(port: int = 0, scale: int = 1, seed: int = 7, as_of: datetime | None = None, token: str = DEFAULT_TOKEN,
          *, host: str = "127.0.0.1", verbose: bool = False, tenant: LinkAppTenant | None = None,
          **opts: Any) -> LinkAppServer:
    """Start the Link app sandbox in a daemon thread; return the started server (``.url``, ``.stop()``,
    ``.state`` = the :class:`LinkAppTenant`). ``opts`` go to the tenant (``rate_limit``, ``rate_window``,
    ``download_latency``)."""
    state = tenant or LinkAppTenant(scale, seed, as_of=as_of, token=token, **opts)
    server = LinkAppServer(LinkAppHandler, state=state, host=host, port=port, verbose=verbose)
    if not state.base_url:
        state.base_url = server.url
    return server.start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="crm-sandbox link-app", description="Link app REST API sandbox server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8082)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--as-of", default=None, help="reference time of the generated data (ISO 8601; default today)")
    ap.add_argument("--token", default=DEFAULT_TOKEN)
    ap.add_argument("--rate-limit", type=int, default=10_000, help="requests per minute before 429")
    ap.add_argument("--profile", default="default", choices=("default", "variant"),
                    help="variant: a renamed field, more custom field definitions, a custom value without one")
    ap.add_argument("--download-latency", type=float, default=0.0,
                    help="seconds every file download waits before answering (a CDN's round trip)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    as_of = parse_ts(args.as_of) if args.as_of else None
    server = serve(args.port, args.scale, args.seed, as_of, args.token, host=args.host, verbose=args.verbose,
                   rate_limit=args.rate_limit, profile=args.profile, download_latency=args.download_latency)
    tenant: LinkAppTenant = server.state
    print(f"Link app sandbox listening on {server.url}", flush=True)
    print(f"token: {tenant.token}", flush=True)
    print(json.dumps({"url": server.url, "token": tenant.token, "counts": tenant.data.counts(),
                      "odoo_users": [u["login"] for u in tenant.odoo_users()]}, indent=2), flush=True)
    print(f"AIRFLOW_CONN_LINK_APP_DEFAULT='{json.dumps(tenant.airflow_conn(server.url))}'", flush=True)
    return server.run_until_interrupted()


if __name__ == "__main__":
    sys.exit(main())
