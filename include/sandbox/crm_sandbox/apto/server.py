"""The Apto sandbox: a Salesforce-REST-shaped HTTP server over a generated Apto org, on loopback.

    from crm_sandbox.apto.server import serve
    with serve(port=0, scale=1, seed=7) as srv:       # a started SandboxServer, stopped on exit
        srv.url, srv.state                           # base URL, the AptoOrg

    crm-sandbox apto --port 8081 --scale 1 --seed 7 [--profile variant]

Salesforce endpoints (``vNN.N`` = any API version): ``POST /services/oauth2/token``,
``GET /services/data/``, ``/services/data/vNN.N/`` ``sobjects``, ``sobjects/{obj}[/describe]``,
``sobjects/{obj}/{id}``, ``sobjects/{obj}/{id}/{blob field}``, ``sobjects/{obj}/updated/``,
``sobjects/{obj}/deleted/``, ``query``, ``queryAll``, ``query/{locator}``, ``tooling/query``,
``tooling/sobjects[/{obj}/describe]``, ``ui-api/object-info/{obj}/picklist-values/{recordTypeId}[/{field}]``,
``limits``, Bulk API 2.0 query jobs ``jobs/query[/{id}[/results]]``. Admin endpoints (not Salesforce) live under ``/sandbox/``: ``GET info``, ``GET stats``,
``POST stats/reset``, ``POST mutate``, ``GET|POST|DELETE faults``, ``POST api-usage``, ``POST reset``,
``POST expire-tokens``, ``POST clock``, ``POST bulk-fail`` (the next Bulk API query job ends ``Failed``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..httpserver import SandboxHandler, SandboxServer
from .generator import generate_org
from .org import ApiError, AptoOrg, not_found

__all__ = ["AptoHandler", "AptoOrg", "AptoServer", "generate_org", "main", "serve"]

_API = re.compile(r"^/services/data/v(\d+\.\d+)(/.*)?$")
_FAULT_BODIES = {
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: "
                               "1431981043-12345 (-1234567890)"),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
    504: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long, and has been stopped."),
}


class AptoHandler(SandboxHandler):
    """Route requests onto the :class:`AptoOrg` in ``server.state``."""

    server_version = "sfdc"

    @property
    def org(self) -> AptoOrg:
        return self.state

    # ------------------------------------------------------------------------------ dispatch
    def handle_request(self, method: str) -> None:
        path, params = self.request_target(method)
        try:
            if path.startswith("/sandbox/"):
                self._admin(method, path[len("/sandbox/"):].strip("/"), params)
                return
            if path.rstrip("/") in {"/services/data", ""} and method == "GET":
                if self._apply_fault(path):
                    return
                self._json(200, self.org.versions())
                return
            if path.rstrip("/") == "/services/oauth2/token":
                self._token(method)
                return
            m = _API.match(path)
            if not m:
                raise not_found()
            if self._apply_fault(path):
                return
            self.user = self.org.check_token(self.headers.get("Authorization"))
            version, rest = m.group(1), (m.group(2) or "/")
            endpoint, call = self._route(method, version, rest, params)
            self.org.count_call(endpoint)
            call()
        except ApiError as e:
            self._json(e.status, e.payload, e.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a sandbox bug: answer like Salesforce's 500, but say what happened
            self._json(500, [{"message": f"An unexpected error occurred: {type(e).__name__}: {e}",
                              "errorCode": "UNKNOWN_EXCEPTION"}])

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        hdrs = {**self.org.limit_header(), **(headers or {})}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_bytes(status, body, "application/json;charset=UTF-8", hdrs)

    def _apply_fault(self, path: str) -> bool:
        """Apply an injected fault; True when the answer has been given (or the connection dropped)."""
        fault = self.org.take_fault(path)
        if fault is None:
            return False
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            self.drop_connection()
            return True
        if fault.kind == "cut":                 # answer, but stop the body half way (blobs)
            self.cut_body = True
            return False
        if fault.kind == "invalid_session":
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if fault.kind == "limit_exceeded":
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        code, msg = _FAULT_BODIES.get(fault.status, ("UNKNOWN_EXCEPTION", f"HTTP {fault.status}"))
        if fault.delay:
            time.sleep(fault.delay)
        raise ApiError(fault.status, code, msg, {"Retry-After": "1"} if fault.status == 503 else None)

    def _token(self, method: str) -> None:
        if method != "POST":
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
        if self._apply_fault("/services/oauth2/token"):
            return
        body = self.body.decode("utf-8", "replace")
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            try:
                form = {k: str(v) for k, v in json.loads(body or "{}").items()}
            except ValueError:
                form = {}
        else:
            form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        split = urlsplit(self.path)
        for k, v in parse_qs(split.query).items():
            form.setdefault(k, v[-1])
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        status, payload = self.org.issue_token(form, f"http://{host}")
        with self.org.lock:
            self.org.stats["token"] += 1
        self.send_bytes(status, json.dumps(payload).encode(), "application/json;charset=UTF-8")

    def _route(self, method: str, v: str, rest: str, params: dict[str, str]) -> tuple[str, Any]:
        org = self.org
        parts = [unquote(p) for p in rest.strip("/").split("/") if p]

        def get_only() -> None:
            if method != "GET":
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD")

        if not parts:
            get_only()
            return "resources", lambda: self._json(200, {
                k: f"/services/data/v{v}/{k}" for k in ("sobjects", "query", "queryAll", "tooling", "limits", "ui-api")})
        head = parts[0]
        if head in {"query", "queryAll"}:
            get_only()
            if len(parts) == 2:
                return "query_more", lambda: self._json(200, org.query_more(parts[1], v))
            if len(parts) > 2:
                raise not_found()
            if "q" not in params:
                raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
            return head, lambda: self._json(200, org.query(params["q"], v, include_deleted=head == "queryAll",
                                                           batch_size=self._batch_size()))
        if head == "tooling":
            get_only()
            sub = parts[1:]
            if sub[:1] == ["query"]:
                if len(sub) == 2:
                    return "tooling_query_more", lambda: self._json(200, org.query_more(sub[1], v, tooling=True))
                if "q" not in params:
                    raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
                return "tooling_query", lambda: self._json(200, org.query(params["q"], v, tooling=True,
                                                                          batch_size=self._batch_size()))
            if sub == ["sobjects"]:
                return "tooling_sobjects", lambda: self._json(200, org.describe_global(v, tooling=True))
            if len(sub) == 3 and sub[0] == "sobjects" and sub[2] == "describe":
                return "tooling_describe", lambda: self._json(200, org.describe(sub[1], v, tooling=True))
            raise not_found()
        if head == "jobs" and parts[1:2] == ["query"]:
            return self._bulk_route(method, v, parts[2:], params)
        if head == "limits":
            get_only()
            return "limits", lambda: self._json(200, org.limits())
        if head == "ui-api":
            get_only()
            # ui-api/object-info/{obj}/picklist-values/{rtid}[/{field}]
            if len(parts) in {5, 6} and parts[1] == "object-info" and parts[3] == "picklist-values":
                fld = parts[5] if len(parts) == 6 else None
                return "picklist_values", lambda: self._json(200, org.picklist_values(parts[2], parts[4], fld, v))
            raise not_found()
        if head == "sobjects":
            get_only()
            if len(parts) == 1:
                return "describe_global", lambda: self._json(200, org.describe_global(v))
            obj = parts[1]
            if len(parts) == 2:
                odef = org.object_def(obj)
                from .schema import describe_global_entry
                return "sobject", lambda: self._json(200, {"objectDescribe": describe_global_entry(odef, v),
                                                           "recentItems": []})
            if len(parts) == 3 and parts[2] == "describe":
                return "describe", lambda: self._json(200, org.describe(obj, v))
            if len(parts) == 3 and parts[2] == "updated":
                return "get_updated", lambda: self._json(200, org.get_updated(obj, params.get("start"), params.get("end")))
            if len(parts) == 3 and parts[2] == "deleted":
                return "get_deleted", lambda: self._json(200, org.get_deleted(obj, params.get("start"), params.get("end")))
            if len(parts) == 3:
                fields = [f.strip() for f in params["fields"].split(",") if f.strip()] if params.get("fields") else None
                return "retrieve", lambda: self._json(200, org.get_record(obj, parts[2], fields, v))
            if len(parts) == 4:
                def send_blob() -> None:
                    data, ctype = org.blob(obj, parts[2], parts[3])
                    if getattr(self, "cut_body", False) and len(data) > 1:
                        self.cut_body = False
                        self.send_response(200)
                        self.send_header("Content-Type", ctype)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.drop_connection()
                        return
                    self.send_bytes(200, data, ctype, org.limit_header())
                return "blob", send_blob
        raise not_found()

    def _bulk_route(self, method: str, v: str, rest: list[str], params: dict[str, str]) -> tuple[str, Any]:
        """Bulk API 2.0 query jobs: ``jobs/query[/{id}[/results]]``."""
        bulk = self.org.bulk
        body: dict[str, Any] = {}
        if method in {"POST", "PATCH"}:
            try:
                body = json.loads(self.body or b"{}")
            except ValueError:
                raise ApiError(400, "INVALIDJOB", "InvalidJob : the request body is not JSON") from None
        if not rest and method == "POST":
            return "bulk_create", lambda: self._json(200, bulk.create(body, v, self.user))
        if not rest and method == "GET":
            return "bulk_list", lambda: self._json(200, bulk.list())
        if len(rest) == 1 and method == "GET":
            return "bulk_job", lambda: self._json(200, bulk.get(rest[0]))
        if len(rest) == 1 and method == "PATCH":
            return "bulk_abort", lambda: self._json(200, bulk.abort(rest[0], body))
        if len(rest) == 1 and method == "DELETE":
            def delete() -> None:
                bulk.delete(rest[0])
                self.send_bytes(204, b"", "application/json", self.org.limit_header())
            return "bulk_delete", delete
        if len(rest) == 2 and rest[1] == "results" and method == "GET":
            def results() -> None:
                data, headers = bulk.results(rest[0], v, params.get("locator"), params.get("maxRecords"))
                self.send_bytes(200, data, "text/csv", {**self.org.limit_header(), **headers})
            return "bulk_results", results
        raise not_found()

    def _batch_size(self) -> int | None:
        opts = self.headers.get("Sforce-Query-Options") or ""
        m = re.search(r"batchSize\s*=\s*(\d+)", opts)
        return int(m.group(1)) if m else None

    # --------------------------------------------------------------------------------- admin
    def _admin(self, method: str, what: str, params: dict[str, str]) -> None:
        org = self.org
        body: dict[str, Any] = {}
        if method in {"POST", "PATCH", "DELETE"}:
            raw = self.body
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send_json(400, {"error": "body is not JSON"})
                    return
        base = self.server.url  # type: ignore[attr-defined]
        if what == "info" and method == "GET":
            self.send_json(200, org.info(base))
        elif what == "stats" and method == "GET":
            self.send_json(200, org.get_stats())
        elif what == "mutate" and method == "POST":
            self.send_json(200, org.mutate(body))
        elif what == "faults" and method == "POST":
            items = body.get("faults") if isinstance(body.get("faults"), list) else [body]
            try:
                made = [org.inject_fault(f.get("kind", "status"), int(f.get("count", 1)), status=int(f.get("status", 503)),
                                         delay=float(f.get("delay", 0)), match=f.get("match")) for f in items]
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return
            self.send_json(200, {"faults": [f.to_dict() for f in made]})
        elif what == "faults" and method == "GET":
            self.send_json(200, {"faults": [f.to_dict() for f in org.faults]})
        elif what == "stats/reset" and method == "POST":
            org.reset_stats()
            self.send_json(200, org.get_stats())
        elif what == "faults" and method == "DELETE":
            org.clear_faults()
            self.send_json(200, {"faults": []})
        elif what in {"api-usage", "api_usage"} and method == "POST":
            self.send_json(200, org.set_api_usage(body.get("used"), body.get("limit")))
        elif what == "reset" and method == "POST":
            org.reset()
            self.send_json(200, {"reset": True})
        elif what in {"bulk-fail", "bulk_fail"} and method == "POST":
            self.send_json(200, {"failing": org.bulk.fail_next(int(body.get("count", 1)), body.get("message"))})
        elif what in {"expire-tokens", "expire_tokens"} and method == "POST":
            self.send_json(200, {"expired": org.expire_tokens()})
        elif what == "fields" and method == "POST":
            try:
                made = org.add_custom_field(str(body.get("object") or ""), str(body.get("name") or ""),
                                            str(body.get("type") or "string"), str(body.get("label") or ""),
                                            body.get("picklist") or ())
            except ApiError as e:
                self.send_json(e.status, e.payload)
                return
            self.send_json(200, made)
        elif what == "clock" and method == "POST":
            at = body.get("now")
            org.clock = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None
            self.send_json(200, {"now": org.now().isoformat()})
        else:
            self.send_json(404, [{"message": f"no admin endpoint {method} /sandbox/{what}", "errorCode": "NOT_FOUND"}])


class AptoServer(SandboxServer):
    """The sandbox server; ``start()`` is idempotent, so ``with serve(...) as srv:`` works too."""

    def start(self) -> AptoServer:
        if self._thread is not None and self._thread.is_alive():
            return self
        super().start()
        return self


def serve(port: int = 0, scale: int = 1, seed: int = 7, *, host: str = "127.0.0.1", verbose: bool = False,
          org: AptoOrg | None = None, **opts: Any) -> AptoServer:
    """Start the Apto sandbox in a daemon thread; return the started server (``.url``, ``.state``).

    ``opts`` go to :class:`AptoOrg` (``namespace``, ``client_id``, ``client_secret``, ``users``,
    ``api_limit``, ``as_of``).
    """
    state = org or AptoOrg(scale, seed, **opts)
    server = AptoServer(AptoHandler, state=state, host=host, port=port, verbose=verbose)
    if not state.instance_url:
        state.instance_url = server.url
    return server.start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="crm-sandbox apto", description="Apto (Salesforce REST) sandbox server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--namespace", default="McLabs2")
    ap.add_argument("--profile", default="default", choices=("default", "variant"),
                    help="variant: a renamed standard field, customer custom fields, another package namespace")
    ap.add_argument("--api-limit", type=int, default=100_000)
    ap.add_argument("--client-id", default=None)
    ap.add_argument("--client-secret", default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    opts: dict[str, Any] = {"namespace": args.namespace, "api_limit": args.api_limit, "profile": args.profile}
    if args.client_id:
        opts["client_id"] = args.client_id
    if args.client_secret:
        opts["client_secret"] = args.client_secret
    server = serve(args.port, args.scale, args.seed, host=args.host, verbose=args.verbose, **opts)
    org: AptoOrg = server.state
    print(f"Apto sandbox listening on {server.url}", flush=True)
    print(json.dumps({"url": server.url, **org.credentials(server.url),
                      "counts": org.data.counts()}, indent=2), flush=True)
    print(f"AIRFLOW_CONN_APTO_DEFAULT='{json.dumps(org.airflow_conn(server.url))}'", flush=True)
    return server.run_until_interrupted()


if __name__ == "__main__":
    sys.exit(main())
