"""Small RPC client helpers for tests that drive an Odoo sandbox (or a real Odoo) over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import xmlrpc.client
from typing import Any

DB, UID, PWD = "crmtest", 2, "admin"


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """POST JSON; return ``(status, parsed body, headers)`` (HTTP errors are returned, not raised)."""
    req = urllib.request.Request(url, json.dumps(payload).encode(),
                                 {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode(errors="replace")
        return err.code, parsed, dict(err.headers)


class Rpc:
    """XML-RPC (``/xmlrpc/2``), JSON-RPC (``/jsonrpc``) and admin calls against one sandbox URL."""

    def __init__(self, url: str, db: str = DB, uid: int = UID, password: str = PWD) -> None:
        self.url, self.db, self.uid, self.password = url, db, uid, password
        self.common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        self.object = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object")
        self.object_nil = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.object.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)

    def fault(self, model: str, method: str, *args: Any, **kwargs: Any) -> xmlrpc.client.Fault:
        """The XML-RPC fault the call raises (AssertionError when it does not)."""
        try:
            self(model, method, *args, **kwargs)
        except xmlrpc.client.Fault as fault:
            return fault
        raise AssertionError(f"{model}.{method} did not fault")

    def jsonrpc(self, service: str, method: str, args: list[Any]) -> dict[str, Any]:
        payload = {"jsonrpc": "2.0", "method": "call", "id": 7,
                   "params": {"service": service, "method": method, "args": args}}
        return post_json(f"{self.url}/jsonrpc", payload)[1]

    def jsonrpc_kw(self, model: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.jsonrpc("object", "execute_kw", [self.db, self.uid, self.password, model, method,
                                                      list(args), kwargs])

    def admin(self, verb: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=verb,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
