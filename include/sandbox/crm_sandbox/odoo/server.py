"""Odoo 17 sandbox server: XML-RPC, JSON-RPC, JSON-2 (``--version 19``) and the test admin endpoints.

    from crm_sandbox.odoo.server import OdooSandbox, serve
    server = serve(port=0)                     # started SandboxServer; server.state is the OdooSandbox
    server.state.inject_fault("http", status=503, count=2, model="res.partner", method="create")
    server.state.execute("res.partner", "create", {"name": "Set-up"})   # as admin, no HTTP

CLI: ``crm-sandbox odoo --port 8069 [--database crmtest] [--version 17|19] [--user login:password[:apikey]]
[--api-key KEY]``; it prints the URL it listens on.

Admin HTTP endpoints (JSON): ``GET /sandbox/stats``, ``POST /sandbox/stats/reset``, ``GET /sandbox/mail``,
``GET /sandbox/snapshot?models=res.partner,crm.lead[&ignore=write_date,write_uid]``, ``POST /sandbox/reset``,
``GET|POST|DELETE /sandbox/faults`` (POST body: one rule or a list, e.g. ``{"kind": "http", "status": 429,
"retry_after": 3, "count": 2, "model": "res.partner", "method": "create"}``), ``POST /sandbox/users``.

Known differences from a real Odoo 17 (the captures in ``data/`` are the reference):
- no image resizing (stdlib only): bytes that are no image land as given, as in Odoo; PNG/JPEG over 1920 px get a
  comment chunk added instead (new bytes and checksum, as after Odoo's resize, but the same pixel size);
- ``automated_probability`` is 100 in a won stage and 0 otherwise (no naive-Bayes frequencies); as in Odoo, a lead
  created with a probability keeps it and its ``automated_probability`` stays empty (NULL, read 0) until a later write
  recomputes it, and one given alone is computed over (the probability left empty); ``day_open``/``day_close`` are
  not computed (0);
- only the models a migration touches exist; other relations are accepted without a target check;
- tracebacks are synthesised: their first and last lines (and captured lengths) match, the frames do not;
- raw html with an inline element at the top is not wrapped in ``<span>``, a ``javascript:`` src is dropped
  rather than emptied (the tool's own html never comes in that form; test_behaviours.py has it as a strict xfail).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import threading
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crm_sandbox.httpserver import SandboxHandler, SandboxServer

from . import errors as E
from . import xmlrpc_fast
from .hooks import Hooks
from .schema import load_data

VERSIONS = {
    17: {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""], "server_serie": "17.0",
         "protocol_version": 1},
    19: {"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""], "server_serie": "19.0",
         "protocol_version": 1},
}
FAULT_KINDS = frozenset({"odoo", "http", "delay", "drop", "serialization"})
#: method -> {19.0 parameter name: the sandbox's (17.0) name}: JSON-2 passes parameters by name
JSON2_RENAMED_PARAMS = {"default_get": {"fields": "fields_list"}, "name_search": {"domain": "args"}}


#: Odoo's ``http.DEFAULT_MAX_CONTENT_LENGTH`` (17 and 19): what an XML-RPC request may carry
MAX_CONTENT_LENGTH = 128 * 1024 * 1024


class OdooSandbox(Hooks):
    """The emulated Odoo database and its RPC services (thread-safe: one lock, one call = one transaction).

    :param database: the one database name served.
    :param users: extra users or password overrides, each ``"login:password[:apikey]"`` or a dict with
        ``login``, ``password``, optional ``api_key`` and ``name``. ``admin``/``admin`` (uid 2) always exists.
    :param version: 17 (default) or 19: the 19.0 schema and default records captured from a real 19.0
        (``data/fields19.json``, ``records19.json``), 19.0's behaviour where a field changed, the JSON-2
        endpoint, and it reports 19.0.
    :param api_key: an API key for ``admin`` (usable as XML-RPC password and as JSON-2 bearer token).
    """

    def __init__(self, database: str = "crmtest", users: list[Any] | None = None, version: int = 17,
                 api_key: str | None = None) -> None:
        if int(version) not in VERSIONS:
            raise ValueError(f"unsupported version {version!r} (17 or 19)")
        self.lock = threading.RLock()
        self.database = database
        self.version = int(version)
        self._user_specs = [self._parse_user(u) for u in users or []]
        if api_key:
            self._user_specs.append({"login": "admin", "api_key": api_key})
        self.faults: list[dict[str, Any]] = []
        self._fault_seq = 0
        self.calls: Counter[tuple[str, str]] = Counter()
        self.uid = 2
        self.ctx: dict[str, Any] = {}
        self.reset()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _parse_user(spec: Any) -> dict[str, Any]:
        if isinstance(spec, dict):
            return dict(spec)
        login, _, rest = str(spec).partition(":")
        password, _, api_key = rest.partition(":")
        return {"login": login, "password": password or None, "api_key": api_key or None}

    def reset(self) -> None:
        """Back to the fresh database (default records only); users from the constructor kept; faults cleared."""
        with self.lock:
            self._build()
            self._api_keys: dict[str, int] = {}
            U = self.models["res.users"]
            U.rows[2]["_password"] = "admin"
            for spec in self._user_specs:
                self._add_user(spec)
            self.faults.clear()
            self.calls.clear()

    def _add_user(self, spec: dict[str, Any]) -> int:
        U = self.models["res.users"]
        login = spec["login"]
        uid = next((u for u, r in U.rows.items() if r.get("login") == login), None)
        if uid is None:
            self.uid = 2
            self._txn = None
            uid = self._create(U, [{"login": login, "name": spec.get("name") or login,
                                    "email": spec.get("email") or f"{login}@example.com"}],
                               {"tracking_disable": True})[0]
        if spec.get("password"):
            U.rows[uid]["_password"] = spec["password"]
        if spec.get("api_key"):
            self._api_keys[spec["api_key"]] = uid
        return uid

    def add_user(self, login: str, password: str | None = None, api_key: str | None = None,
                 name: str | None = None) -> int:
        """Add (or update) a user; kept across :meth:`reset`. Returns the uid."""
        spec = {"login": login, "password": password, "api_key": api_key, "name": name}
        with self.lock:
            self._user_specs.append(spec)
            return self._add_user(spec)

    # ------------------------------------------------------------------ auth
    def _check_db(self, db: Any, tb: int) -> None:
        if db != self.database:
            raise E.unknown_database(str(db), tb)

    def _login(self, login: Any, password: Any) -> int | bool:
        U = self.models["res.users"]
        for uid, row in U.rows.items():
            if row.get("login") == login and row.get("active", True):
                if password and (password == row.get("_password") or self._api_keys.get(password) == uid):
                    return uid
                return False
        return False

    def _check_uid(self, db: Any, uid: Any, password: Any) -> None:
        self._check_db(db, 65)
        U = self.models["res.users"]
        if not isinstance(uid, int) or isinstance(uid, bool) or uid not in U.rows:
            raise E.missing_error("res.users", [uid], uid)
        row = U.rows[uid]
        ok = password and (password == row.get("_password") or self._api_keys.get(password) == uid)
        if not ok or not row.get("active", True):
            raise E.AccessDenied(json_tb_lines=39)

    # ------------------------------------------------------------------ services
    def dispatch(self, service: str, method: str, params: list[Any]) -> Any:
        """Run one RPC call of ``service`` (common / object / db) as the transports receive it."""
        if service == "common":
            if method == "version":
                return dict(VERSIONS[self.version])
            if method in ("authenticate", "login"):
                db, login, password = (list(params) + [None, None, None])[:3]
                with self.lock:
                    self.calls[("common", method)] += 1
                    self._check_db(db, 66)
                    return self._login(login, password)
            if method == "about":
                return "See http://openerp.com"
            raise E.key_error(f"exp_{method}", 20)
        if service == "object":
            if method == "execute_kw":
                p = list(params) + [None] * (7 - len(params))
                return self.execute_kw(p[0], p[1], p[2], p[3], p[4], p[5] or [], p[6] or {})
            if method == "execute":
                return self.execute_kw(params[0], params[1], params[2], params[3], params[4], list(params[5:]), {})
            raise E.PyError("NameError", f"Method not available {method}", tb_lines=20)
        if service == "db":
            if method == "list":
                return [self.database]
            if method == "server_version":
                return VERSIONS[self.version]["server_version"]
            if method == "db_exist":
                return bool(params) and params[0] == self.database
            raise E.key_error(f"exp_{method}", 20)
        raise E.key_error(service, 20)

    def execute_kw(self, db: Any, uid: Any, password: Any, model: Any, method: Any, args: list[Any] | None = None,
                   kwargs: dict[str, Any] | None = None) -> Any:
        """One ``execute_kw`` call: authenticate, then run it as one transaction."""
        with self.lock:
            self.calls[(str(model), str(method))] += 1
            self._check_uid(db, uid, password)
            return self._run(uid, model, method, list(args or []), dict(kwargs or {}))

    def _run(self, uid: int, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        self.uid = uid
        self._begin()
        ok = False
        try:
            result = self.call(model, method, args, kwargs)
            self._flush_tracking()
            ok = True
            return result
        finally:
            self._end(ok)

    def execute_json2(self, api_key: str, model: str, method: str, body: dict[str, Any]) -> Any:
        """One JSON-2 call (``POST /json/2/<model>/<method>``): ``ids``, ``context`` and named params."""
        with self.lock:
            self.calls[(model, method)] += 1
            uid = self._api_keys.get(api_key)
            if uid is None or not self.models["res.users"].rows.get(uid, {}).get("active", True):
                raise E.Unauthorized("Invalid apikey", arguments=["Invalid apikey", 401])
            # the real 19.0's answers (captured): 404 NotFound, 403 AccessError for a private method
            if model not in self.models:
                raise _NotFound(f"the model {model!r} does not exist", arguments=[
                    f"the model {model!r} does not exist", 404])
            if method.startswith("_"):
                raise E.AccessError(f"Private methods (such as '{model}.{method}') cannot be called remotely.")
            if self._method(self.models[model], method) is None:
                raise _NotFound(f"The method '{model}.{method}' does not exist", arguments=[
                    f"The method '{model}.{method}' does not exist", 404])
            body = dict(body)
            for new, old in JSON2_RENAMED_PARAMS.get(method, {}).items():   # 19.0's names for 17.0's parameters
                if new in body and old not in body:
                    body[old] = body.pop(new)
            ids = body.pop("ids", [])
            args: list[Any] = [ids] if self.is_record_method(model, method) else []
            return self._run(uid, model, method, args, body)

    # ------------------------------------------------------------------ test hooks
    def inject_fault(self, kind: str = "odoo", *, count: int = 1, model: str | None = None,
                     method: str | None = None, **params: Any) -> dict[str, Any]:
        """Make the next ``count`` matching calls fail.

        ``kind``: ``odoo`` (``case=`` a faults.json case name, or ``code=``/``message=``/``name=``),
        ``http`` (``status=`` 502/503/504/429, ``retry_after=`` seconds), ``delay`` (``seconds=``, then the
        call runs normally), ``drop`` (connection closed without an answer), ``serialization``
        (PostgreSQL's concurrent-update failure as Odoo reports it). ``model``/``method`` restrict the
        match (``method`` alone also matches ``common`` calls such as ``authenticate``).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if kind == "odoo":
            self.fault_error({"kind": kind, **params})  # validate now
        with self.lock:
            self._fault_seq += 1
            rule = {"id": self._fault_seq, "kind": kind, "count": int(count), "model": model, "method": method,
                    **params}
            self.faults.append(rule)
            return dict(rule)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, model: str | None, method: str | None) -> dict[str, Any] | None:
        """Consume and return the first fault rule matching this call (``None`` when there is none)."""
        with self.lock:
            for rule in self.faults:
                if rule["model"] and rule["model"] != model:
                    continue
                if rule["method"] and rule["method"] != method:
                    continue
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self.faults.remove(rule)
                return dict(rule)
        return None

    @staticmethod
    def fault_error(rule: dict[str, Any]) -> E.OdooError:
        """The Odoo exception an ``odoo`` / ``serialization`` fault rule raises."""
        if rule["kind"] == "serialization":
            return E.serialization_failure()
        if rule.get("case"):
            case = next((c for c in load_data("faults.json") if c["case"] == rule["case"]
                         and c.get("faultCode") is not None), None)
            if case is None:
                raise ValueError(f"no XML-RPC fault case named {rule['case']!r} in faults.json")
            if case["faultCode"] == 1:
                line = case.get("exception_line") or case["message"]
                type_name, _, message = line.partition(": ")
                if case.get("exception_line"):
                    message += "\n" + case["message"]
                module, _, name = type_name.rpartition(".")
                return E.PyError(name, message, module=module or "builtins", tb_lines=case.get("traceback_lines"))
            return _coded_error(case["faultCode"], case["faultString"])
        code = int(rule.get("code", 2))
        message = rule.get("message") or "Injected fault"
        if str(rule.get("name") or "").endswith("LockError"):
            return E.LockError(message)
        if code == 1:
            module, _, name = (rule.get("name") or "builtins.Exception").rpartition(".")
            return E.PyError(name, message, module=module or "builtins")
        return _coded_error(code, message)

    def stats(self) -> dict[str, Any]:
        """Calls so far per model and method (``common`` for authenticate/login)."""
        with self.lock:
            out: dict[str, dict[str, int]] = {}
            for (model, method), n in sorted(self.calls.items()):
                out.setdefault(model, {})[method] = n
            return {"calls": out, "total": sum(self.calls.values())}

    def reset_stats(self) -> None:
        with self.lock:
            self.calls.clear()

    def snapshot(self, models: list[str] | str | None = None,
                 ignore: list[str] | str | tuple[str, ...] = ()) -> dict[str, dict[int, dict[str, Any]]]:
        """Every stored row of ``models`` (default: all), as comparable plain data.

        ``ignore`` drops fields from every row (e.g. ``write_date,write_uid`` to compare data before a
        migration with data after its rollback).
        """
        if isinstance(models, str):
            models = [m for m in models.split(",") if m]
        if isinstance(ignore, str):
            ignore = [f for f in ignore.split(",") if f]
        skip = set(ignore)
        with self.lock:
            names = models or list(self.models)
            out = {}
            for name in names:
                M = self._m(name)
                out[name] = {rid: {k: copy.copy(v) for k, v in row.items() if not k.startswith("_")
                                   and k not in skip}
                             for rid, row in sorted(M.rows.items())}
            return out

    def execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``execute_kw`` as admin (uid 2) without HTTP, for test set-up: ``execute("res.partner", "create", {...})``."""
        with self.lock:
            self.calls[(model, method)] += 1
            return self._run(2, model, method, list(args), kwargs)

    def mail_queue(self) -> dict[str, Any]:
        """Queued ``mail.mail`` rows and chatter counts (messages and followers per model and record)."""
        with self.lock:
            mails = [dict(r) for _i, r in sorted(self.models["mail.mail"].rows.items())]
            messages: dict[str, int] = Counter()
            chatter: dict[str, dict[str, int]] = {}
            for r in self.models["mail.message"].rows.values():
                model = r.get("model") or ""
                messages[model] += 1
                per = chatter.setdefault(model, {})
                per[str(r.get("res_id"))] = per.get(str(r.get("res_id")), 0) + 1
            followers: dict[str, int] = Counter(r.get("res_model") for r in self.models["mail.followers"].rows.values())
            return {"mail": mails, "mail_count": len(mails), "messages": dict(messages), "chatter": chatter,
                    "followers": dict(followers)}


class _NotFound(E.OdooError):
    module = "werkzeug.exceptions"
    type_name = "NotFound"


def _as_odoo_error(exc: BaseException) -> E.OdooError:
    """Any exception as the RPC layer reports it (non-Odoo exceptions are fault 1 with their traceback)."""
    if isinstance(exc, E.OdooError):
        return exc
    module = type(exc).__module__
    return E.PyError(type(exc).__name__, str(exc), module=module if module != "builtins" else "builtins",
                     arguments=[str(a) if not isinstance(a, (str, int, float, bool)) else a for a in exc.args])


def _coded_error(code: int, message: str) -> E.OdooError:
    if code == 3:
        return E.AccessDenied(message)
    if code == 4:
        return E.AccessError(message)
    if message.startswith("Record does not exist"):
        return E.MissingError(message)
    if message.startswith("The operation cannot be completed") or "recursive" in message:
        return E.ValidationError(message)
    return E.UserError(message)


def _normalize_in(value: Any) -> Any:
    """XML-RPC input: ``datetime`` / ``bytes`` values as Odoo's handlers would see them (strings)."""
    if isinstance(value, list):
        return [_normalize_in(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalize_in(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while one request is parsed, run and marshalled.

    Parsing a 1,000-record XML-RPC batch allocates ~30k objects; with a big store every generation-2
    collection walks all rows, which doubled the cost of a batch. Collection resumes right after.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _bad_value_depth(value: Any, depth: int = 0) -> int:
    """Nesting depth of the first value XML-RPC cannot marshal (None, an int beyond 32 bits)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31 - 1):
        return depth
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = _bad_value_depth(item, depth + 1)
        if found >= 0:
            return found
    return -1 if depth else 0


def _needs_normalize(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (datetime, date, bytes, bytearray)):
            return True
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


class OdooHandler(SandboxHandler):
    """HTTP front of :class:`OdooSandbox`."""

    server_version = "Werkzeug/3.0.1"

    # ------------------------------------------------------------------ routing
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        if url.path.startswith("/sandbox/"):
            return self._admin("GET", url.path, parse_qs(url.query), None)
        if url.path in ("/web/webclient/version_info", "/web/version"):
            return self.send_json(200, VERSIONS[self.state.version])
        self._not_found()

    def do_DELETE(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        self.read_body()
        if url.path.startswith("/sandbox/"):
            return self._admin("DELETE", url.path, parse_qs(url.query), None)
        self._not_found()

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/xmlrpc/") and int(self.headers.get("Content-Length") or 0) > MAX_CONTENT_LENGTH:
            return self._too_large()
        body = self.read_body()
        if path.startswith("/xmlrpc/"):
            parts = path.strip("/").split("/")
            if len(parts) == 3 and parts[1] == "2":
                return self._xmlrpc(parts[2], body, legacy=False)
            if len(parts) == 2:
                return self._xmlrpc(parts[1], body, legacy=True)
        if path == "/jsonrpc":
            return self._jsonrpc(body)
        if path == "/web/webclient/version_info":
            return self._send_jsonrpc({"jsonrpc": "2.0", "id": None, "result": VERSIONS[self.state.version]})
        if path.startswith("/json/2/") and self.state.version >= 19:
            parts = path.split("/")
            if len(parts) == 5:
                return self._json2(parts[3], parts[4], body)
        if path.startswith("/sandbox/"):
            try:
                payload = json.loads(body or b"{}")
            except ValueError as exc:
                return self.send_json(400, {"error": f"invalid JSON: {exc}"})
            return self._admin("POST", path, parse_qs(url.query), payload)
        self._not_found()

    def _too_large(self) -> None:
        """Odoo's answer to an XML-RPC request over 128 MiB (werkzeug reads that route's body as form data, which
        ``max_content_length`` bounds; ``/jsonrpc`` and JSON-2 read it raw and take it): nothing done."""
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:                 # drained, so the client hears the answer
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        page = (b"<!doctype html>\n<html lang=en>\n<title>413 Request Entity Too Large</title>\n<h1>Request Entity "
                b"Too Large</h1>\n<p>The data value transmitted exceeds the capacity limit.</p>\n")
        self.send_bytes(413, page, "text/html; charset=utf-8")

    def _not_found(self) -> None:
        page = (b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
                b"<p>The requested URL was not found on the server. If you entered the URL manually please "
                b"check your spelling and try again.</p>\n")
        self.send_bytes(404, page, "text/html; charset=utf-8")

    # ------------------------------------------------------------------ fault injection
    def _apply_fault(self, model: str | None, method: str | None) -> tuple[bool, E.OdooError | None]:
        """Returns (answered, error-to-raise). ``answered`` means the response was already sent."""
        rule = self.state.take_fault(model, method)
        if rule is None:
            return False, None
        kind = rule["kind"]
        if kind == "delay":
            time.sleep(float(rule.get("seconds", 1.0)))
            return False, None
        if kind == "drop":
            self.drop_connection()
            return True, None
        if kind == "http":
            status = int(rule.get("status", 503))
            headers = {}
            if rule.get("retry_after") is not None:
                headers["Retry-After"] = str(rule["retry_after"])
            phrase = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable",
                      504: "Gateway Timeout"}.get(status, "Error")
            page = f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
            self.send_bytes(status, page.encode(), "text/html", headers)
            return True, None
        return False, self.state.fault_error(rule)

    # ------------------------------------------------------------------ XML-RPC
    def _xmlrpc(self, service: str, body: bytes, *, legacy: bool) -> None:
        with _gc_paused():
            self._xmlrpc_call(service, body, legacy=legacy)

    def _xmlrpc_call(self, service: str, body: bytes, *, legacy: bool) -> None:
        state: OdooSandbox = self.state
        try:
            params, method = xmlrpc_fast.loads(body)
        except Exception as exc:  # noqa: BLE001 - any parse error is a fault, as in Odoo
            return self._xml_fault(E.PyError(type(exc).__name__, str(exc), module=type(exc).__module__
                                             if type(exc).__module__ != "builtins" else "builtins",
                                             tb_lines=12), legacy)
        params = list(params)
        if (b"<dateTime.iso8601>" in body or b"<base64>" in body) and _needs_normalize(params):
            params = _normalize_in(params)
        model = method_name = None
        if service == "object" and method in ("execute_kw", "execute") and len(params) >= 5:
            model, method_name = params[3], params[4]
        elif service == "common":
            method_name = method
        answered, err = self._apply_fault(model, method_name)
        if answered:
            return None
        try:
            if err is not None:
                raise err
            result = state.dispatch(service, method or "", params)
        except E.OdooError as exc:
            return self._xml_fault(exc, legacy)
        except Exception as exc:  # noqa: BLE001 - anything else is Odoo's fault 1 too
            return self._xml_fault(_as_odoo_error(exc), legacy)
        try:
            data = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
        except (TypeError, OverflowError) as exc:
            # the marshaller recurses once per struct/array (2 frames, 4 lines) above the bad value
            depth = _bad_value_depth(result)
            return self._xml_fault(E.PyError(type(exc).__name__, str(exc), tb_lines=17 + 4 * depth), legacy)
        self.send_bytes(200, data.encode(), "text/xml; charset=utf-8")

    def _xml_fault(self, exc: E.OdooError, legacy: bool) -> None:
        code, string = exc.legacy_fault() if legacy else exc.xmlrpc_fault()
        data = xmlrpc.client.dumps(xmlrpc.client.Fault(code, string), methodresponse=True, allow_none=False)
        self.send_bytes(200, data.encode(), "text/xml; charset=utf-8")

    # ------------------------------------------------------------------ JSON-RPC
    def _send_jsonrpc(self, payload: dict[str, Any]) -> None:
        self.send_bytes(200, json.dumps(payload, default=str).encode(), "application/json")

    def _jsonrpc(self, body: bytes) -> None:
        with _gc_paused():
            self._jsonrpc_call(body)

    def _jsonrpc_call(self, body: bytes) -> None:
        state: OdooSandbox = self.state
        try:
            request = json.loads(body or b"null")
            if not isinstance(request, dict):
                raise ValueError("Invalid JSON-RPC request")
        except ValueError as exc:
            err = E.PyError("BadRequest", f"Invalid JSON data: {exc}", module="werkzeug.exceptions")
            return self._send_jsonrpc({"jsonrpc": "2.0", "id": None, "error": {
                "code": 400, "message": "Bad Request",
                "data": err.json_data()}})
        rid = request.get("id")
        params = request.get("params") or {}
        service, method, args = params.get("service"), params.get("method"), list(params.get("args") or [])
        model = method_name = None
        if service == "object" and method in ("execute_kw", "execute") and len(args) >= 5:
            model, method_name = args[3], args[4]
        elif service == "common":
            method_name = method
        answered, err = self._apply_fault(model, method_name)
        if answered:
            return None
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
        try:
            if err is not None:
                raise err
            result = state.dispatch(str(service), str(method), args)
        except Exception as exc:  # noqa: BLE001 - OdooError, or any other exception as Odoo reports it
            response["error"] = _as_odoo_error(exc).json_error()
            return self._send_jsonrpc(response)
        if result is not None:
            response["result"] = result
        self._send_jsonrpc(response)

    # ------------------------------------------------------------------ JSON-2 (Odoo 19)
    def _json2(self, model: str, method: str, body: bytes) -> None:
        state: OdooSandbox = self.state
        auth = self.headers.get("Authorization") or ""
        scheme, _, key = auth.partition(" ")
        db = self.headers.get("X-Odoo-Database")
        answered, err = self._apply_fault(model, method)
        if answered:
            return None
        try:
            if err is not None:
                raise err
            if db != state.database:  # no or another database: the real 19.0 answers a 404 HTML page
                return self._not_found()
            if scheme.lower() != "bearer" or not key:
                why = "User not authenticated, use an API Key with a Bearer Authorization header."
                raise E.Unauthorized(why, arguments=[why, 401])
            try:
                payload = json.loads(body or b"{}")
            except ValueError as exc:
                raise E.PyError("BadRequest", f"Invalid JSON data: {exc}", module="werkzeug.exceptions") from None
            if not isinstance(payload, dict):
                raise E.PyError("BadRequest", "Invalid JSON data: expected an object",
                                module="werkzeug.exceptions")
            try:
                result = state.execute_json2(key.strip(), model, method, payload)
            except E.OdooError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _as_odoo_error(exc) from exc
        except E.OdooError as exc:
            # the real 19.0's statuses (captured): an exception's http_status, else 500 (ValueError,
            # TypeError, psycopg2 errors)
            status = 500
            if isinstance(exc, (E.AccessDenied, E.Unauthorized)):
                status = 401
            elif isinstance(exc, E.AccessError):
                status = 403
            elif isinstance(exc, (E.MissingError, _NotFound)):
                status = 404
            elif isinstance(exc, E.LockError):
                status = 409
            elif isinstance(exc, E.UserError):
                status = 422
            elif exc.type_name == "BadRequest":
                status = 400
            return self.send_json(status, exc.json_data())
        self.send_json(200, result)

    # ------------------------------------------------------------------ admin
    def _admin(self, verb: str, path: str, query: dict[str, list[str]], payload: Any) -> None:
        state: OdooSandbox = self.state
        try:
            if path == "/sandbox/stats" and verb == "GET":
                return self.send_json(200, state.stats())
            if path == "/sandbox/stats/reset" and verb == "POST":
                state.reset_stats()
                return self.send_json(200, {"ok": True})
            if path == "/sandbox/mail" and verb == "GET":
                return self.send_json(200, state.mail_queue())
            if path == "/sandbox/snapshot" and verb == "GET":
                models = ",".join(query.get("models", [])) or None
                return self.send_json(200, state.snapshot(models, ",".join(query.get("ignore", []))))
            if path == "/sandbox/reset" and verb == "POST":
                state.reset()
                return self.send_json(200, {"ok": True})
            if path == "/sandbox/faults":
                if verb == "GET":
                    return self.send_json(200, {"faults": list(state.faults)})
                if verb == "DELETE":
                    state.clear_faults()
                    return self.send_json(200, {"ok": True})
                rules = payload if isinstance(payload, list) else [payload or {}]
                added = []
                for rule in rules:
                    rule = dict(rule)
                    kind = rule.pop("kind", "odoo")
                    added.append(state.inject_fault(kind, **rule))
                return self.send_json(200, {"faults": added})
            if path == "/sandbox/users" and verb == "POST":
                uid = state.add_user(payload["login"], payload.get("password"), payload.get("api_key"),
                                     payload.get("name"))
                return self.send_json(200, {"uid": uid})
        except (ValueError, TypeError, KeyError, E.OdooError) as exc:
            return self.send_json(400, {"error": str(exc)})
        self.send_json(404, {"error": f"no admin endpoint {verb} {path}"})


def serve(port: int = 0, *, host: str = "127.0.0.1", verbose: bool = False, **opts: Any) -> SandboxServer:
    """Start an Odoo sandbox in a daemon thread; ``.state`` is the :class:`OdooSandbox`, ``.url`` its base URL.

    ``opts`` go to :class:`OdooSandbox` (``database``, ``users``, ``version``, ``api_key``).
    """
    state = OdooSandbox(**opts)
    return SandboxServer(OdooHandler, state=state, host=host, port=port, verbose=verbose).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-sandbox odoo", description="Odoo 17 RPC sandbox")
    parser.add_argument("--port", type=int, default=8069)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--database", default="crmtest")
    parser.add_argument("--version", type=int, choices=sorted(VERSIONS), default=17)
    parser.add_argument("--user", action="append", default=[], metavar="LOGIN:PASSWORD[:APIKEY]",
                        help="add a user (or set admin's password / API key); repeatable")
    parser.add_argument("--api-key", default=None, help="an API key for admin")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    state = OdooSandbox(database=args.database, users=args.user, version=args.version, api_key=args.api_key)
    server = SandboxServer(OdooHandler, state=state, host=args.host, port=args.port, verbose=args.verbose)
    print(f"Odoo {args.version} sandbox (database {args.database!r}) listening on {server.url}", flush=True)
    return server.run_until_interrupted()


if __name__ == "__main__":
    sys.exit(main())
