"""The Odoo hook: the one client this project uses to talk to Odoo, over HTTP.

One ``httpx.Client`` carries three wire protocols behind :meth:`OdooHook.call`:

* ``xmlrpc``  - ``/xmlrpc/2/common`` + ``/xmlrpc/2/object`` ``execute_kw`` (payloads built with
  ``xmlrpc.client.dumps(allow_none=False)``; ``None`` and integers beyond 32 bits cannot cross);
* ``jsonrpc`` - ``POST /jsonrpc`` with the ``execute_kw`` envelope;
* ``json2``   - ``POST /json/2/<model>/<method>``, ``Authorization: bearer <key>`` (Odoo 19+).

``auto`` (the default) asks ``common.version()``: Odoo 19+ with a reachable JSON-2 endpoint uses
JSON-2; anything else uses JSON-RPC, not XML-RPC. JSON-RPC is the faster of the two for what a
migration does (the Odoo 17 timings captured for this project: a 10,000-row ``search_read`` takes 0.34 s against
0.45 s; client side, ``xmlrpc.client`` needs ~300 ms to decode that answer where ``json`` needs ~9 ms,
and a 1,000-partner ``create`` payload is 3.4x larger in XML), the per-call floor differs by <1 ms,
and it carries ``null`` and big integers, so two of the loader traps cannot happen on it.

Every Odoo error becomes an :class:`OdooError` subclass (see :func:`classify`); only
:class:`OdooTransientError` is retried, by the named predicate :func:`is_retryable`.
"""

from __future__ import annotations

import json
import re
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property, partial
from typing import Any

import httpx

from crm_migration.errors import ConfigurationError, CrmMigrationError
from crm_migration.hooks import _http

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - older SDK layout
    from airflow.sdk.bases.hook import BaseHook

__all__ = [
    "FieldDef",
    "MIGRATION_CONTEXT",
    "MIGRATION_KEY",
    "OdooAccessDenied",
    "OdooBatchMismatch",
    "OdooError",
    "OdooHook",
    "OdooMissingRecord",
    "OdooRecordError",
    "OdooSchemaError",
    "OdooTransientError",
    "classify",
    "is_retryable",
    "replay_safe",
]

#: Context of every batch call: no chatter, no followers, no tracking values.
MIGRATION_CONTEXT: dict[str, Any] = {
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    # an activity assigned to another user would post "assigned to you" and queue a mail to them
    # whatever the keys above say (loader trap 8); this one suppresses both
    "mail_activity_quick_update": True,
}
#: The custom field carrying ``<source>:<SourceObject>:<source id>`` on every record we write.
MIGRATION_KEY = "x_migration_key"
XMLRPC_MAX_INT = 2**31 - 1
#: ids sharing one set of values at least this many go in a ``write`` of their own, not in a ``load()``
#: (a call costs about ten records' worth of ``load()`` rows on a real Odoo 17)
WRITE_GROUP_MIN = 10
#: Fields of a model whose ``load()`` runs without prefetching (context ``prefetch_fields: False``): their ``write``
#: reads nothing of a record but the fields of its record rules (a deal's company), which ``load()`` checks one row at
#: a time; with prefetching, Odoo reads every prefetched column of the row for that (a whole ``crm.lead``: about a third
#: of a stage date's ``load()`` on the real Odoo 17). Not for any model: a ``write`` that reads several fields then
#: makes one query per field (a meeting's deal: 3.1 to 3.8 ms a row with prefetching, 4.0 to 5.9 without).
LOAD_WITHOUT_PREFETCH: dict[str, frozenset[str]] = {"crm.lead": frozenset({"date_last_stage_update", "date_closed"})}
#: field types whose value ``load()`` takes as text (many2one/many2many through ``field/.id``)
LOAD_TYPES = frozenset({"char", "text", "html", "selection", "boolean", "integer", "float", "monetary", "date",
                        "datetime", "many2one", "many2many"})
#: Fields of a model that Odoo overwrites on some ``write`` but keeps when given to ``create``, by the first major
#: version seen to keep them (each checked on the real server: tests/integration/engine/test_load_batch.py). A deal's
#: ``date_closed`` is kept on create from 17 on (a date given: 19 sets an empty one to now in a won stage, where 17
#: leaves it empty; no pair sends one: Apto's CloseDate is never empty, Link app's deals map none; see
#: tests/integration/odoo_sandbox/test_lead_create_and_empty_numbers.py); its ``date_last_stage_update`` from 19 on
#: (17 recomputes it to now after the create; 19 computes it only when empty). A version not listed takes the one
#: below (18: 17's).
KEPT_ON_CREATE: dict[int, dict[str, frozenset[str]]] = {
    17: {"crm.lead": frozenset({"date_closed"})},
    19: {"crm.lead": frozenset({"date_closed", "date_last_stage_update"})},
}
#: Fields whose values, taken together, one ``create`` call of a model may hold only once on a server below the
#: version given. Odoo 17's ``mail.activity.create`` subscribes each activity's user to its record once per activity
#: (``mail_activity.py``: ``per_user[user].append(res_id)``; ``mail_followers.py`` ``_add_followers`` then inserts one
#: follower per listed id): two activities of one user on one record the user does not follow yet fail the whole
#: call ("a partner cannot follow twice the same object"). 19 collects the ids in a set.
CREATE_APART: dict[str, tuple[int, tuple[str, ...]]] = {
    "mail.activity": (19, ("res_model_id", "res_id", "user_id")),
}
#: The first major version seen to keep a record's activities when it is archived: Odoo 17's
#: ``mail.activity.mixin.write`` unlinks them on any write of ``active=False`` (even to a record already archived;
#: an activity created on an archived record stays until then), 19 keeps them. A version below it deletes them.
KEEPS_ACTIVITIES_ON_ARCHIVE = 19


@dataclass(frozen=True)
class FieldDef:
    """A custom field to make sure of (:meth:`OdooHook.ensure_fields`)."""

    model: str
    name: str
    ttype: str
    string: str
    selection: tuple[tuple[str, str], ...] = ()
    relation: str | None = None
    index: bool = False
    size: int | None = None
    copy: bool | None = None
TRANSPORTS = ("auto", "xmlrpc", "jsonrpc", "json2")
DEFAULT_FIELD_ATTRIBUTES = ("type", "string", "required", "readonly", "store", "relation", "selection")

#: Methods a retry may replay even when the first attempt may have reached Odoo (reads; ``write``
#: too unless it creates x2many lines, see :func:`replay_safe`). Anything else (``create`` first) is
#: retried only when the failure proves the request was not processed.
REPLAY_SAFE_METHODS = frozenset({
    "read", "search", "search_read", "search_count", "fields_get", "name_search", "default_get",
    "check_object_reference", "context_get", "version", "authenticate", "login",
})
#: Methods known to return ``None``: over XML-RPC they commit, then fault. Use a write instead.
NONE_RETURNING_METHODS = frozenset({"action_archive", "action_unarchive", "action_set_lost"})

#: JSON-2 has named arguments only: the parameter names of the positional ``args`` we send.
JSON2_PARAMS: dict[str, tuple[str, ...]] = {
    "create": ("vals_list",),
    "write": ("ids", "vals"),
    "read": ("ids", "fields"),
    "unlink": ("ids",),
    "search": ("domain",),
    "search_read": ("domain", "fields"),
    "search_count": ("domain",),
    "fields_get": ("allfields", "attributes"),
    "check_object_reference": ("module", "xml_id"),
    "default_get": ("fields_list",),
    "load": ("fields", "data"),
    "name_search": ("name",),
}


# --------------------------------------------------------------------------------------- errors


class OdooError(CrmMigrationError):
    """Odoo refused or failed a call.

    :param message: a short, human message (one line for tracebacks; never a secret).
    :param model: the model called, e.g. ``res.partner``.
    :param method: the method called, e.g. ``create``.
    :param code: XML-RPC faultCode, JSON-RPC error code or HTTP status.
    """

    def __init__(self, message: str, *, model: str | None = None, method: str | None = None,
                 code: int | str | None = None) -> None:
        message = " ".join(message.split())  # one line: Odoo's messages span several
        self.message, self.model, self.method, self.code = message, model, method, code
        where = f"{model}.{method}: " if model and method else ""
        super().__init__(f"{where}{message}")


class OdooAccessDenied(OdooError):
    """Authentication failed or the user may not do this (fault 3 / 4). Never retried."""


class OdooRecordError(OdooError):
    """A record's values were refused (validation, required field, missing FK target, bad value).

    Not retried: the loader isolates the record and dead-letters it with :attr:`message`.
    :attr:`field` names the field when Odoo's message does.
    """

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)


class OdooMissingRecord(OdooRecordError):
    """The record does not exist (any more): MissingError on write / unlink, or an unknown xmlid."""

    def __init__(self, message: str, *, ids: Sequence[int] = (), **kwargs: Any) -> None:
        self.ids = tuple(ids)
        super().__init__(message, **kwargs)


class OdooTransientError(OdooError):
    """Worth another try: network failure, timeout, 429/502/503/504, serialization failure, deadlock.

    :param retry_after: seconds the server asked us to wait (Retry-After), if any.
    :param maybe_committed: the request may have reached Odoo and run (read timeout, dropped
        answer, gateway timeout): only replay-safe calls are retried blindly.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 maybe_committed: bool = False, **kwargs: Any) -> None:
        self.retry_after, self.maybe_committed = retry_after, maybe_committed
        super().__init__(message, **kwargs)


class OdooBatchMismatch(OdooError):
    """A batched call answered for a different number of records than it was given."""

    def __init__(self, model: str, *, expected: int, got: int, method: str = "create") -> None:
        self.expected, self.got = expected, got
        super().__init__(f"sent {expected} records, Odoo answered {got} ids", model=model, method=method)


class OdooSchemaError(OdooError):
    """The target schema disagrees with what the migration needs (e.g. a field of another type)."""


def replay_safe(method: str, args: Sequence[Any]) -> bool:
    """Whether sending this call twice lands the same state as sending it once.

    Reads are; a ``write`` is unless a value holds an x2many create command ``(0, 0, vals)``.
    """
    if method in REPLAY_SAFE_METHODS:
        return True
    if method == "load":            # updates by database id (every row names one): sending it twice lands the same
        return len(args) >= 1 and isinstance(args[0], Sequence) and ".id" in args[0]
    if method == "write" and len(args) >= 2 and isinstance(args[1], Mapping):
        return not any(isinstance(v, (list, tuple)) and any(
            isinstance(c, (list, tuple)) and c and c[0] == 0 for c in v) for v in args[1].values())
    return False


def is_retryable(exc: BaseException, *, replay_safe: bool = True) -> bool:
    """Retry transient failures only; a call that is not replay-safe only when it surely did not run."""
    return isinstance(exc, OdooTransientError) and (replay_safe or not exc.maybe_committed)


# ------------------------------------------------------------------------------- classification

# An exception line of a traceback: "ValueError: ...", "psycopg2.errors.X: ...", "KeyError: 'x'".
_EXC_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*): ?(?P<msg>.*)$")
_EXC_SUFFIXES = ("Error", "Exception", "Warning", "Denied", "Failure", "Violation", "Interrupt", "Exit")
_MISSING = re.compile(r"Record does not exist or has been deleted\.\s*\(Record: (?P<model>[\w.]+)"
                      r"\((?P<ids>[\d, ]*)\), User: (?P<uid>\d+)\)")
_TRANSIENT_NAMES = frozenset({"SerializationFailure", "DeadlockDetected", "TransactionRollbackError",
                              "LockNotAvailable", "QueryCanceled", "LockError"})  # LockError: 19's HTTP 409
_TRANSIENT_TEXT = ("could not serialize access", "deadlock detected", "could not obtain lock",
                   "server closed the connection unexpectedly", "the database system is starting up",
                   "too many connections", "canceling statement due to lock timeout")
_RECORD_NAMES = frozenset({
    "UserError", "ValidationError", "ValueError", "TypeError", "UnicodeDecodeError", "IntegrityError",
    "DataError", "InvalidTextRepresentation", "NotNullViolation", "ForeignKeyViolation",
    "UniqueViolation", "CheckViolation", "NumericValueOutOfRange", "StringDataRightTruncation",
    "InvalidDatetimeFormat", "DatetimeFieldOverflow", "RedirectWarning",
})
# Messages that blame the call, not the record: a wrong model, method or argument shape.
_CALL_BUGS = re.compile(r"^Object [\w.]+ doesn't exist|does not exist on the model|Expected singleton")
_FIELD_PATTERNS = (
    re.compile(r"^Field: .*\((?P<f>\w+)\)\s*$", re.M),                # mandatory field (fault 2)
    re.compile(r"Missing required value for the field '[^']*' \((?P<f>\w+)\)"),  # the same on 19
    re.compile(r"Invalid field '(?P<f>\w+)'"),                        # unknown field in vals/fields
    re.compile(r"Invalid field [\w.]+\.(?P<f>\w+) in leaf"),          # unknown field in a domain
    re.compile(r"Wrong value for [\w.]+\.(?P<f>\w+):"),               # selection value
    re.compile(r'null value in column "(?P<f>\w+)"'),                 # psycopg2 NotNullViolation
    re.compile(r"Key \((?P<f>\w+)\)="),                               # psycopg2 Unique/FK detail
    re.compile(r"in field '(?P<f>\w+)'"),
)
_FKEY = re.compile(r"Constraint: (?P<c>\w+)_fkey")


def exception_line(text: str) -> str:
    """The line a person reads from a traceback: its last exception line (``Name: message``).

    Normally the last line; for psycopg2 errors the traceback ends with the SQL and a caret, so the
    last line that names an exception is taken. Falls back to the last non-blank line.
    """
    lines = [ln.rstrip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        m = _EXC_LINE.match(line)
        if m and ("." in m["name"] or m["name"].endswith(_EXC_SUFFIXES)):
            return line
    return lines[-1].strip() if lines else ""


def field_of(message: str, model: str | None = None) -> str | None:
    """The field an Odoo error message names, if it names one."""
    for pattern in _FIELD_PATTERNS:
        if m := pattern.search(message):
            return m["f"]
    if (m := _FKEY.search(message)) and model:
        table = model.replace(".", "_") + "_"
        if m["c"].startswith(table):
            return m["c"][len(table):]
    return None


def classify(*, name: str | None, message: str, code: int | str | None = None,
             model: str | None = None, method: str | None = None) -> OdooError:
    """Turn one Odoo error (exception type name + message) into the matching :class:`OdooError`.

    :param name: the exception's (qualified) type name, e.g. ``odoo.exceptions.MissingError``,
        ``builtins.ValueError``, ``psycopg2.errors.SerializationFailure``; None when unknown.
    :param message: Odoo's message (already shortened to one line for tracebacks).
    :param code: XML-RPC faultCode (1 other, 2 user/validation/missing, 3 access denied,
        4 access error), JSON-RPC error code, or HTTP status.
    """
    short = (name or "").rsplit(".", 1)[-1]
    kw: dict[str, Any] = {"model": model, "method": method, "code": code}
    text = f"{name.removeprefix('builtins.')}: {message}" if name else message
    if code in (3, 4) or short in ("AccessDenied", "AccessError", "Unauthorized", "SessionExpiredException"):
        return OdooAccessDenied(message or "Access Denied", **kw)
    if m := _MISSING.search(message):
        ids = [int(i) for i in m["ids"].replace(" ", "").split(",") if i]
        if m["model"] == "res.users" and ids == [int(m["uid"])]:
            return OdooAccessDenied(f"user id {m['uid']} does not exist on this database", **kw)
        return OdooMissingRecord(message.strip(), ids=ids, **kw)
    if short == "MissingError":
        return OdooMissingRecord(message.strip(), **kw)
    if short == "NotFound" and message:  # JSON-2 (19): an unknown model or method is HTTP 404 NotFound
        return OdooError(f"{message.strip()} on this database: a module not installed, or a wrong model or "
                         "method name in the mapping", **kw)
    if "External ID not found" in message:
        return OdooMissingRecord(text.strip(), **kw)
    if short in _TRANSIENT_NAMES or any(t in text for t in _TRANSIENT_TEXT):
        return OdooTransientError(text, **kw)
    if "cannot marshal None" in message:
        return OdooError(f"{text} (XML-RPC cannot carry a None result; the call RAN and its "
                         "changes are committed: use a write instead of this method)", **kw)
    if short in ("OperationalError", "KeyError", "AttributeError", "NotImplementedError") or _CALL_BUGS.search(
            message):
        return OdooError(text, **kw)
    if short in _RECORD_NAMES or (short == "Error" and "binascii" in (name or "")) or code == 2:
        return OdooRecordError(text if short not in ("UserError", "ValidationError", "") else message,
                               field=field_of(message, model), **kw)
    return OdooError(text, **kw)


def classify_xmlrpc_fault(fault: xmlrpc.client.Fault, *, model: str | None = None,
                          method: str | None = None) -> tuple[OdooError, str]:
    """Classify an XML-RPC fault; return the error and the full fault string (for a debug log)."""
    code, text = fault.faultCode, fault.faultString or ""
    if isinstance(code, str):  # legacy /xmlrpc/object: "warning -- MissingError\n\n<message>"
        head, _, rest = code.partition("\n\n")
        name = head.split("--")[-1].strip() or None
        return classify(name=name, message=rest.strip() or text, code=2, model=model, method=method), code
    if code == 1:
        line = exception_line(text)
        m = _EXC_LINE.match(line)
        name, msg = (m["name"], m["msg"]) if m else (None, line)
        return classify(name=name, message=msg, code=1, model=model, method=method), text
    return classify(name=None, message=text.strip(), code=code, model=model, method=method), text


def classify_json_error(error: Mapping[str, Any], *, model: str | None = None, method: str | None = None,
                        status: int | None = None) -> tuple[OdooError, str]:
    """Classify a JSON-RPC ``error`` object or a JSON-2 error body; return it and the debug text."""
    data = error.get("data") if isinstance(error.get("data"), Mapping) else error
    name = data.get("name")
    message = str(data.get("message") or error.get("message") or "")
    if name is None and status in (401, 403):
        name = "AccessDenied"
    code = status if status is not None else error.get("code")
    return classify(name=name, message=message, code=code, model=model, method=method), str(
        data.get("debug") or "")


# ------------------------------------------------------------------------------------ transports


@dataclass(frozen=True)
class _Settings:
    """What the hook needs from the connection; the secret stays out of repr."""

    conn_id: str
    url: str
    db: str
    login: str
    secret: str = field(repr=False)
    transport: str
    timeout: float
    max_attempts: int
    fallback_user: str = ""


class _Transport:
    """One wire protocol over the hook's shared ``httpx.Client``."""

    name = "?"
    #: the largest request body Odoo takes on this protocol's route (``None``: no limit of Odoo's own)
    request_limit: int | None = None

    def __init__(self, hook: OdooHook) -> None:
        self.hook = hook

    @property
    def settings(self) -> _Settings:
        return self.hook.settings

    def version(self) -> dict[str, Any]:
        raise NotImplementedError

    def authenticate(self) -> int:
        raise NotImplementedError

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError


class _XmlRpc(_Transport):
    name = "xmlrpc"
    #: Odoo 17 and 19 answer HTTP 413 to an XML-RPC request over 128 MiB (``http.py`` ``DEFAULT_MAX_CONTENT_LENGTH``,
    #: which werkzeug applies when the route reads its body as form data); ``/jsonrpc`` and JSON-2 read it raw and
    #: take more (checked on both: a 133 MiB ``create`` of a 100 MB file lands)
    request_limit = 128 * 1024 * 1024

    def _rpc(self, path: str, method: str, params: tuple[Any, ...], *, model: str | None = None,
             call: str | None = None) -> Any:
        body = xmlrpc.client.dumps(params, methodname=method, allow_none=False, encoding="utf-8")
        resp = self.hook._post(path, content=body.encode(), headers={"Content-Type": "text/xml"},
                               model=model, method=call or method)
        if resp.status_code != 200:
            raise self.hook._http_error(resp, model=model, method=call or method)
        try:
            (result,), _ = xmlrpc.client.loads(resp.content, use_builtin_types=True)
        except xmlrpc.client.Fault as fault:
            raise self.hook._fault(*classify_xmlrpc_fault(fault, model=model, method=call or method)) from None
        except Exception as exc:  # an HTML error page, a truncated body
            raise OdooError(f"unreadable XML-RPC answer ({exc.__class__.__name__}, "
                            f"{len(resp.content)} bytes)", model=model, method=call or method) from None
        return result

    def version(self) -> dict[str, Any]:
        return self._rpc("/xmlrpc/2/common", "version", ())

    def authenticate(self) -> int:
        s = self.settings
        return self._rpc("/xmlrpc/2/common", "authenticate", (s.db, s.login, s.secret, {}))

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if method in NONE_RETURNING_METHODS:
            raise OdooError(f"{method} returns None, which XML-RPC cannot carry (Odoo would commit, then "
                            "fault): write the values instead", model=model, method=method)
        s = self.settings
        params = xmlrpc_safe((s.db, self.hook.uid, s.secret, model, method, args, kwargs),
                             model=model, method=method)
        return self._rpc("/xmlrpc/2/object", "execute_kw", params, model=model, call=method)


class _JsonRpc(_Transport):
    name = "jsonrpc"

    def _rpc(self, service: str, method: str, args: list[Any], *, model: str | None = None,
             call: str | None = None) -> Any:
        self.hook._request_id += 1
        envelope = {"jsonrpc": "2.0", "method": "call", "id": self.hook._request_id,
                    "params": {"service": service, "method": method, "args": args}}
        resp = self.hook._post("/jsonrpc", content=_dumps(envelope),
                               headers={"Content-Type": "application/json"}, model=model, method=call or method)
        if resp.status_code != 200:
            raise self.hook._http_error(resp, model=model, method=call or method)
        try:
            answer = resp.json()
        except ValueError:
            raise OdooError(f"unreadable JSON-RPC answer ({len(resp.content)} bytes)", model=model,
                            method=call or method) from None
        if answer.get("error"):
            raise self.hook._fault(*classify_json_error(answer["error"], model=model, method=call or method))
        return answer.get("result")  # a method returning None answers with no "result" at all

    def version(self) -> dict[str, Any]:
        return self._rpc("common", "version", [])

    def authenticate(self) -> int:
        s = self.settings
        return self._rpc("common", "authenticate", [s.db, s.login, s.secret, {}])

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        s = self.settings
        return self._rpc("object", "execute_kw", [s.db, self.hook.uid, s.secret, model, method, args, kwargs],
                         model=model, call=method)


class _Json2(_Transport):
    name = "json2"

    def _headers(self) -> dict[str, str]:
        s = self.settings
        headers = {"Authorization": f"bearer {s.secret}", "Content-Type": "application/json; charset=utf-8"}
        if s.db:
            headers["X-Odoo-Database"] = s.db
        return headers

    def version(self) -> dict[str, Any]:
        resp = self.hook._request("GET", "/web/version", model=None, method="version")
        if resp.status_code != 200:
            raise self.hook._http_error(resp, model=None, method="version")
        info = resp.json()
        return {"server_version": info.get("version"), "server_version_info": info.get("version_info"),
                **info}

    def authenticate(self) -> int:
        """The API key's user id (``res.users/context_get``, as Odoo's documentation suggests)."""
        context = self.execute("res.users", "context_get", [], {})
        return int(context.get("uid") or 0) if isinstance(context, Mapping) else 0

    def probe(self) -> None:
        """Prove the endpoint answers and accepts the key: the cheapest read there is."""
        self.execute("res.users", "search_count", [[("id", "=", 0)]], {})

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        body = json2_body(method, args, kwargs)
        resp = self.hook._post(f"/json/2/{model}/{method}", content=_dumps(body), headers=self._headers(),
                               model=model, method=method)
        if resp.status_code == 200:
            return resp.json()
        raise self.hook._http_error(resp, model=model, method=method)


def json2_body(method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Name the positional ``args`` of an ``execute_kw``-style call for JSON-2."""
    args = list(args)
    names = JSON2_PARAMS.get(method)
    if names is None:
        if args and isinstance(args[0], list) and all(isinstance(i, int) for i in args[0]):
            names = ("ids",)
        else:
            names = ()
    if len(args) > len(names):
        raise ConfigurationError(f"JSON-2 takes named arguments only: pass the arguments of {method!r} "
                                 "as kwargs")
    return {**dict(zip(names, args, strict=False)), **kwargs}


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def odoo_value(value: Any) -> Any:
    """One value as Odoo takes it: ``None`` -> ``False`` (Odoo's "empty"); datetimes as naive UTC
    ``YYYY-MM-DD HH:MM:SS`` (an ISO ``T``, an offset or microseconds are faults); dates as
    ``YYYY-MM-DD``; ``Decimal`` as float."""
    if value is None:
        return False
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def clean_vals(vals: Mapping[str, Any]) -> dict[str, Any]:
    """Values of one record for ``create`` / ``write``, each through :func:`odoo_value`."""
    return {k: odoo_value(v) for k, v in vals.items()}


def load_cell(fdef: Mapping[str, Any] | None, value: Any) -> str | None:
    """One value (after :func:`odoo_value`) as a cell of Odoo's ``load()``; None when ``load()`` cannot carry it.

    Empty (``False``) is the empty cell, which ``load()`` writes as empty; a boolean is ``1``/``0``; a many2one
    is its id and a many2many (ids or one ``(6, 0, ids)`` set) the ids joined by commas, for ``field/.id``.
    """
    ftype = (fdef or {}).get("type")
    if ftype not in LOAD_TYPES:
        return None
    if ftype == "boolean":
        return "1" if value else "0"
    if value is False or value is None:
        return ""
    if ftype == "many2one":
        if isinstance(value, (list, tuple)) and value:     # (id, name) as read
            value = value[0]
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if ftype == "many2many":
        if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)) \
                and len(value[0]) == 3 and value[0][0] == 6:
            value = value[0][2]
        if isinstance(value, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            return ",".join(str(i) for i in value)
        return None
    if ftype in ("integer", "float", "monetary"):
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def xmlrpc_safe(value: Any, *, model: str | None = None, method: str | None = None,
                _field: str | None = None) -> Any:
    """Make ``value`` marshallable by XML-RPC: ``None`` -> ``False``; refuse ints beyond 32 bits."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -XMLRPC_MAX_INT - 1 <= value <= XMLRPC_MAX_INT:
            where = f"field {_field!r}" if _field else "an argument"
            raise OdooRecordError(f"integer {value} in {where} exceeds XML-RPC's 32-bit limit "
                                  f"({XMLRPC_MAX_INT}): send it as a string or float, or use the jsonrpc "
                                  "transport", field=_field, model=model, method=method)
        return value
    if isinstance(value, Mapping):
        return {k: xmlrpc_safe(v, model=model, method=method, _field=k if isinstance(k, str) else _field)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(xmlrpc_safe(v, model=model, method=method, _field=_field) for v in value)
    return value


# ------------------------------------------------------------------------------------------ hook


class OdooHook(BaseHook):
    """Talk to Odoo over XML-RPC, JSON-RPC or JSON-2 through one retrying ``httpx.Client``.

    :param odoo_conn_id: connection of type ``odoo``: host = URL, schema = database, login,
        password = password or API key, extra = ``{"transport": "auto"|"xmlrpc"|"jsonrpc"|"json2",
        "fallback_user": login, "scheme": "http", "timeout": 60, "max_attempts": 5}``.
    :param transport: an ``httpx.BaseTransport`` to use instead of the network (tests).
    """

    conn_name_attr = "odoo_conn_id"
    default_conn_name = "odoo_default"
    conn_type = "odoo"
    hook_name = "Odoo"

    def __init__(self, odoo_conn_id: str = default_conn_name, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__()
        self.odoo_conn_id, self._transport = odoo_conn_id, transport
        #: Calls made, per ``(model, method)``: what a benchmark reports.
        self.calls: Counter[tuple[str, str]] = Counter()
        self._sleep = time.sleep  # injectable: the retry waits
        self._request_id = 0
        self._fields: dict[tuple[str, tuple[str, ...]], dict[str, dict[str, Any]]] = {}
        self._xmlids: dict[str, tuple[str, int]] = {}
        self._field_ids: dict[tuple[str, str], int] = {}      # (model, custom field) -> ir.model.fields id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(odoo_conn_id={self.odoo_conn_id!r})"

    # -- connection -------------------------------------------------------------------------

    @cached_property
    def settings(self) -> _Settings:
        """The connection, checked once: URL, database, login and secret must be there."""
        conn = self.get_connection(self.odoo_conn_id)
        extra = conn.extra_dejson
        transport = str(extra.get("transport") or "auto").lower()
        missing = [n for n, v in (("host", conn.host), ("schema (database)", conn.schema),
                                  ("login", conn.login), ("password", conn.password)) if not v]
        if transport == "json2":
            missing = [m for m in missing if m != "login"]
        if missing:
            raise ConfigurationError(f"connection {self.odoo_conn_id!r} lacks {', '.join(missing)}")
        if transport not in TRANSPORTS:
            raise ConfigurationError(f"connection {self.odoo_conn_id!r}: transport {transport!r} is not one "
                                     f"of {', '.join(TRANSPORTS)}")
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password)
        except Exception:  # noqa: BLE001 - masking is best effort outside a task
            pass
        return _Settings(conn_id=self.odoo_conn_id, url=_http.base_url(conn, scheme=extra.get("scheme", "http")),
                         db=conn.schema or "", login=conn.login or "", secret=conn.password,
                         transport=transport, timeout=float(extra.get("timeout", 60)),
                         max_attempts=int(extra.get("max_attempts", 5)),
                         fallback_user=str(extra.get("fallback_user") or conn.login or ""))

    @property
    def fallback_user(self) -> str:
        """Login of the user that receives records whose owner matches nobody (extra, else login)."""
        return self.settings.fallback_user

    @cached_property
    def client(self) -> httpx.Client:
        """The one HTTP client of this hook (connection pool, timeouts, injected transport)."""
        s = self.settings
        return httpx.Client(base_url=s.url, timeout=httpx.Timeout(s.timeout, connect=min(s.timeout, 10.0)),
                            transport=self._transport, headers={"User-Agent": "crm-migration-odoo-hook"})

    def get_conn(self) -> httpx.Client:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    # -- transport selection and authentication ----------------------------------------------

    @cached_property
    def wire(self) -> _Transport:
        """The transport in use; ``auto`` decides once, from ``common.version()``."""
        wanted = self.settings.transport
        if wanted != "auto":
            return {"xmlrpc": _XmlRpc, "jsonrpc": _JsonRpc, "json2": _Json2}[wanted](self)
        info = self.version()
        major = _major(info)
        if major is not None and major >= 19:
            probe = _Json2(self)
            try:
                self._retrying(True, "JSON-2 probe")(probe.probe)
            except OdooError as exc:
                self.log.info("Odoo %s: JSON-2 not usable (%s); using JSON-RPC", major, exc.message)
            else:
                self.log.info("Odoo %s: using JSON-2", major)
                return probe
        self.log.info("Odoo %s: using JSON-RPC", info.get("server_version"))
        return _JsonRpc(self)

    @cached_property
    def _version(self) -> dict[str, Any]:
        if self.settings.transport in ("xmlrpc", "jsonrpc", "json2"):
            return self._retrying(True, "version")(self.wire.version)
        try:  # auto: any Odoo up to 21 speaks JSON-RPC; 22+ only JSON-2's /web/version
            return self._retrying(True, "version")(_JsonRpc(self).version)
        except OdooError as exc:
            if exc.code not in (404, 405):
                raise
        return self._retrying(True, "version")(_Json2(self).version)

    def version(self) -> dict[str, Any]:
        """``common.version()``: ``server_version``, ``server_version_info`` ... (cached)."""
        return self._version

    def request_limit(self) -> int | None:
        """The largest request Odoo takes over this connection's transport (``None``: none of its own): 128 MiB over
        XML-RPC, no limit over JSON-RPC and JSON-2."""
        return self.wire.request_limit

    def kept_on_create(self, model: str) -> frozenset[str]:
        """The fields of ``model`` this server keeps when given to ``create`` although a later ``write`` may
        overwrite them (:data:`KEPT_ON_CREATE`, from the cached version: no call per record or batch); an
        unknown version keeps none (the loader then writes them after the create, which holds everywhere)."""
        major = _major(self.version())
        known = [v for v in KEPT_ON_CREATE if major is not None and v <= major]
        return KEPT_ON_CREATE[max(known)].get(model, frozenset()) if known else frozenset()

    def create_apart(self, model: str) -> tuple[str, ...]:
        """The fields whose values, taken together, one ``create`` call of ``model`` may hold only once on this server
        (:data:`CREATE_APART`, from the cached version; an unknown version: as the oldest). Empty: any rows go together."""
        rule = CREATE_APART.get(model)
        major = _major(self.version()) if rule else None
        return rule[1] if rule and (major is None or major < rule[0]) else ()

    def archive_deletes_activities(self, fields: Mapping[str, Any] | None = None) -> bool:
        """Whether archiving a record of a model with these ``fields`` (``fields_get``; None: any model with
        activities) deletes its activities on this server: the model has activities (``mail.activity.mixin``:
        ``activity_ids``) and the version is below :data:`KEEPS_ACTIVITIES_ON_ARCHIVE` (from the cached version; an
        unknown version: assumed to delete them)."""
        if fields is not None and ("activity_ids" not in fields or "active" not in fields):
            return False
        major = _major(self.version())
        return major is None or major < KEEPS_ACTIVITIES_ON_ARCHIVE

    @cached_property
    def uid(self) -> int:
        """The user id, authenticated once; a refusal is :class:`OdooAccessDenied` (no secret in it)."""
        s = self.settings
        uid = self._retrying(True, "authenticate")(self.wire.authenticate)
        if not uid:
            raise OdooAccessDenied(f"authentication failed for login {s.login!r} on database {s.db!r} "
                                   f"at {s.url}", method="authenticate")
        self.log.info("Authenticated to Odoo %s (database %s) as %s (uid %s) over %s", s.url, s.db, s.login,
                      uid, self.wire.name)
        return int(uid)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: authenticate and report the version."""
        try:
            wire = self.wire
            if isinstance(wire, _Json2):
                self._retrying(True, "JSON-2 probe")(wire.probe)
                who = "API key accepted"
            else:
                who = f"uid {self.uid}"
            return True, f"Odoo {self.version().get('server_version')}, {who}, transport {wire.name}"
        except CrmMigrationError as exc:
            return False, str(exc)

    # -- the one call -------------------------------------------------------------------------

    def call(self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None, *,
             context: Mapping[str, Any] | None = None) -> Any:
        """Call ``model.method(*args, **kwargs)`` in Odoo; retry transient failures.

        :param context: merged over ``kwargs["context"]``.
        :raises OdooError: classified; see :func:`classify`.
        """
        kw = dict(kwargs or {})
        if context is not None:
            kw["context"] = {**kw.get("context", {}), **context}
        wire = self.wire
        if wire.name != "json2":
            _ = self.uid  # authenticate once, before the first call
        try:
            result = self._retrying(replay_safe(method, args), f"Odoo {model}.{method}")(
                wire.execute, model, method, list(args), kw)
        except OdooError as exc:
            if (name := _unknown_written_field(exc, method, args)) is None:
                raise
            # Odoo 19 answers a write of a field the model lacks with a bare KeyError('<field>')
            raise OdooRecordError(f"Invalid field {name!r} in {model!r} (Odoo: KeyError {name!r})", field=name,
                                  model=model, method=method, code=exc.code) from None
        self.calls[(model, method)] += 1
        return result

    def _retrying(self, replay_safe: bool, what: str) -> Any:
        return _http.retrying(partial(is_retryable, replay_safe=replay_safe),
                              attempts=self.settings.max_attempts, sleep=self._sleep, log=self.log, what=what)

    def _request(self, verb: str, path: str, *, model: str | None, method: str | None,
                 content: bytes | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send one request; network failures and 429/502/503/504 become :class:`OdooTransientError`."""
        try:
            resp = self.client.request(verb, path, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise OdooTransientError(f"cannot reach Odoo at {self.settings.url}: {exc.__class__.__name__}",
                                     model=model, method=method) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise OdooTransientError(f"no answer from Odoo ({exc.__class__.__name__}); the call may have run",
                                     model=model, method=method, maybe_committed=True) from exc
        self.log.debug("Odoo %s %s: sent %d bytes, got %d bytes, HTTP %d", verb, path, len(content or b""),
                       len(resp.content), resp.status_code)
        if resp.status_code in _http.RETRYABLE_STATUS:
            raise OdooTransientError(
                f"HTTP {resp.status_code} from Odoo", model=model, method=method, code=resp.status_code,
                retry_after=_http.parse_retry_after(resp.headers.get("Retry-After")),
                maybe_committed=resp.status_code in (502, 504))
        return resp

    def _post(self, path: str, *, content: bytes, headers: Mapping[str, str], model: str | None,
              method: str | None) -> httpx.Response:
        return self._request("POST", path, content=content, headers=headers, model=model, method=method)

    def _http_error(self, resp: httpx.Response, *, model: str | None, method: str | None) -> OdooError:
        """An error status that is not transient: a JSON-2 error body, or a plain HTTP failure."""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and ("name" in body or "message" in body or "data" in body):
            return self._fault(*classify_json_error(body, model=model, method=method, status=resp.status_code))
        if resp.status_code in (401, 403):
            return OdooAccessDenied(f"HTTP {resp.status_code} from Odoo", model=model, method=method,
                                    code=resp.status_code)
        hint = ""
        if resp.status_code == 404:
            hint = (f" (does database {self.settings.db!r} exist on this server?)" if "/json/2/" in resp.request.url.path
                    else " (is this an Odoo URL, and does it serve this protocol?)")
        return OdooError(f"HTTP {resp.status_code} from Odoo at {resp.request.url.path}{hint}", model=model,
                         method=method, code=resp.status_code)

    def _fault(self, error: OdooError, debug_text: str) -> OdooError:
        """Redact the secret from a classified error; log the full server text at debug."""
        secret = self.settings.secret
        if secret and secret in str(error):
            error.message = error.message.replace(secret, "***")
            error.args = tuple(str(a).replace(secret, "***") for a in error.args)
        if debug_text:  # the server's traceback stays out of logs: its exception line and size only
            line = exception_line(debug_text)
            self.log.debug("Odoo %s.%s fault %s: %s (server traceback of %d characters not logged)",
                           error.model, error.method, error.code,
                           line.replace(secret, "***") if secret else line, len(debug_text))
        return error

    # -- batch API ------------------------------------------------------------------------------

    def create_batch(self, model: str, vals_list: Sequence[Mapping[str, Any]], *,
                     keys: Sequence[str] | None = None, context: Mapping[str, Any] | None = None) -> list[int]:
        """Create ``vals_list`` in one ``create`` call; return the new ids in row order.

        :param keys: ``x_migration_key`` per row, written in the same call. With keys, a call that
            failed without an answer is checked against Odoo before being sent again, so a retry
            never duplicates the batch.
        :raises OdooBatchMismatch: Odoo answered for a different number of records.
        """
        if keys is not None and len(keys) != len(vals_list):
            raise ValueError(f"{len(vals_list)} rows but {len(keys)} keys")
        rows = [clean_vals(v) for v in vals_list]
        if keys is not None:
            rows = [{**row, MIGRATION_KEY: key} for row, key in zip(rows, keys, strict=True)]
        if not rows:
            return []
        ctx = {**MIGRATION_CONTEXT, **(context or {})}
        started = time.perf_counter()
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                ids = self.call(model, "create", [rows], context=ctx)
                break
            except OdooTransientError as exc:
                if not exc.maybe_committed or keys is None or attempt == self.settings.max_attempts:
                    raise
                # The request may have run: give the server time to finish, then ask Odoo by key.
                self._sleep(_http.wait_seconds(exc, attempt))
                found = self.find_by_keys(model, keys)
                if len(found) == len(set(keys)):
                    self.log.warning("Odoo %s.create: the answer was lost but the batch landed; %d records "
                                     "found by key", model, len(found))
                    ids = [found[k] for k in keys]
                    break
                if found:  # create is all-or-nothing: these keys were in Odoo before this call
                    raise OdooError(f"{len(found)} of {len(keys)} keys of this batch already exist in Odoo "
                                    f"(e.g. {next(iter(found))!r}); not sending it again", model=model,
                                    method="create") from exc
                self.log.warning("Odoo %s.create: no answer and nothing landed; sending again (%d/%d)", model,
                                 attempt, self.settings.max_attempts - 1)
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if len(ids) != len(rows):
            raise OdooBatchMismatch(model, expected=len(rows), got=len(ids))
        self._log_batch(model, "create", len(rows), started)
        return ids

    def write_batch(self, model: str, updates: Mapping[int, Mapping[str, Any]], *,
                    context: Mapping[str, Any] | None = None, chunk_size: int = 2000) -> int:
        """Write ``{id: vals}`` in as few calls as the values allow, never one call per record.

        Ids sharing the same ``vals`` go in one ``write``. Records whose values differ (a historical
        date per deal, a parent per contact) go in one ``load()`` per set of fields and chunk: Odoo's
        import with a ``.id`` column updates distinct values per record in one call (loader trap 9). A
        group of at least :data:`WRITE_GROUP_MIN` ids sharing its values is still one ``write``; a field
        ``load()`` cannot carry (binary, one2many, x2many commands other than a set) is written by value.

        :return: the number of calls made.
        :raises OdooRecordError: Odoo refused a value; nothing of that call was written (a ``load()``
            answers its errors as messages, turned into the same exception).
        """
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for rid, vals in updates.items():
            if not vals:
                continue
            clean = clean_vals(vals)
            key = json.dumps(clean, sort_keys=True, default=str)
            groups.setdefault(key, (clean, []))[1].append(int(rid))
        ctx = {**MIGRATION_CONTEXT, **(context or {})}
        calls = 0
        started = time.perf_counter()
        by_value: list[tuple[dict[str, Any], list[int]]] = []
        pools: dict[tuple[str, ...], list[tuple[dict[str, Any], list[int]]]] = {}
        for vals, ids in groups.values():
            if len(ids) >= WRITE_GROUP_MIN:
                by_value.append((vals, ids))
            else:
                pools.setdefault(tuple(sorted(vals)), []).append((vals, ids))
        for names, pool in pools.items():
            fields = self.fields_get(model) if len(pool) > 1 else {}
            if len(pool) == 1 or not all(load_cell(fields.get(f), v) is not None for vals, _ in pool
                                         for f, v in vals.items()):
                by_value.extend(pool)              # one value set, or a field load() cannot carry
                continue
            rows = [(i, vals) for vals, ids in pool for i in ids]
            for chunk in _chunks(rows, chunk_size):
                self.load_rows(model, names, chunk, context=ctx)
                calls += 1
        for vals, ids in by_value:
            for chunk in _chunks(ids, chunk_size):
                self.call(model, "write", [chunk, vals], context=ctx)
                calls += 1
        if calls:
            self.log.info("Odoo %s.write: %d records in %d calls, %.0f ms", model, len(updates), calls,
                          (time.perf_counter() - started) * 1000)
        return calls

    def load_rows(self, model: str, names: Sequence[str], rows: Sequence[tuple[int, Mapping[str, Any]]], *,
                  context: Mapping[str, Any] | None = None) -> None:
        """Update existing records with distinct values in ONE ``load()`` call (``.id`` column).

        :param names: the fields written, the same for every row.
        :param rows: ``(id, {field: value})`` for fields of a type ``load()`` carries (see :func:`load_cell`).
        :raises OdooRecordError: the first error Odoo answered (``load()`` then imported nothing);
            :class:`OdooMissingRecord` when an id is not (or no longer) in Odoo.
        """
        fields = self.fields_get(model)
        columns = [".id"] + [f"{n}/.id" if fields[n]["type"] in ("many2one", "many2many") else n for n in names]
        data = [[str(int(rid)), *(load_cell(fields[n], vals.get(n)) for n in names)] for rid, vals in rows]
        # datetimes are UTC (Odoo's import reads them in the context's, else the user's, time zone); archived
        # records are updated too (the .id check is a search)
        ctx = {**MIGRATION_CONTEXT, **(context or {}), "tz": "UTC", "active_test": False}
        if names and set(names) <= LOAD_WITHOUT_PREFETCH.get(model, frozenset()):
            ctx["prefetch_fields"] = False
        started = time.perf_counter()
        answer = self.call(model, "load", [columns, data], context=ctx)
        messages = (answer or {}).get("messages") or []
        errors = [m for m in messages if m.get("type") == "error"]
        for m in messages:
            if m.get("type") != "error":
                self.log.warning("Odoo %s.load: %s", model, m.get("message"))
        if errors or not isinstance((answer or {}).get("ids"), list):
            first = errors[0] if errors else {"message": "load() answered no ids and no error"}
            row = first.get("record")
            rid = rows[row][0] if isinstance(row, int) and 0 <= row < len(rows) else None
            where = f" (record {rid})" if rid is not None else ""
            message = f"{str(first.get('message') or '').strip()}{where}"
            if first.get("field") == ".id":
                missing = [rows[e["record"]][0] for e in errors if e.get("field") == ".id"
                           and isinstance(e.get("record"), int) and 0 <= e["record"] < len(rows)]
                raise OdooMissingRecord(message, ids=missing, model=model, method="load")
            field = first.get("field") if first.get("field") in fields else field_of(message, model)
            raise OdooRecordError(message, field=field, model=model, method="load")
        if len(answer["ids"]) != len(rows):
            raise OdooBatchMismatch(model, expected=len(rows), got=len(answer["ids"]), method="load")
        self._log_batch(model, "load", len(rows), started)

    def search_read(self, model: str, domain: Sequence[Any], fields: Sequence[str], *, page_size: int = 2000,
                    order: str = "id", context: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield records matching ``domain``, ``page_size`` per call, paged by ``id`` keyset.

        Each page asks ``id > last id seen`` (``id < last`` for ``order="id desc"``), not an offset,
        so records inserted meanwhile neither shift nor repeat a page.
        """
        direction = order.strip().lower()
        if direction not in ("id", "id asc", "id desc"):
            raise ValueError(f"search_read pages by id: order must be 'id' or 'id desc', not {order!r}")
        op = "<" if direction == "id desc" else ">"
        ctx = {**MIGRATION_CONTEXT, **(context or {})}
        last: int | None = None
        while True:
            page_domain = list(domain) if last is None else [*domain, ("id", op, last)]
            started = time.perf_counter()
            page = self.call(model, "search_read", [page_domain, list(fields)],
                             {"limit": page_size, "order": direction}, context=ctx)
            self._log_batch(model, "search_read", len(page), started)
            if not page:
                return
            yield from page
            if len(page) < page_size:
                return
            new_last = page[-1]["id"]
            if new_last == last:  # a server ignoring the id bound would loop forever
                raise OdooError(f"paging did not advance past id {last}", model=model, method="search_read")
            last = new_last

    def search_ids(self, model: str, domain: Sequence[Any], *, limit: int | None = None, order: str = "id",
                   context: Mapping[str, Any] | None = None) -> list[int]:
        """Ids of records matching ``domain``."""
        kw: dict[str, Any] = {"order": order}
        if limit is not None:
            kw["limit"] = limit
        return list(self.call(model, "search", [list(domain)], kw, context={**MIGRATION_CONTEXT,
                                                                            **(context or {})}))

    def read(self, model: str, ids: Sequence[int], fields: Sequence[str], *, chunk_size: int = 2000,
             context: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Read ``ids`` (missing ids are silently absent, as in Odoo).

        Reading no field but ``id`` asks which of ``ids`` exist: Odoo's ``read`` would fetch no column and
        answer every id asked, deleted ones too, so that is a search on the ids (archived ones included).
        """
        out: list[dict[str, Any]] = []
        if not set(fields) - {"id"}:
            for chunk in _chunks(list(ids), chunk_size):
                found = self.call(model, "search", [[("id", "in", chunk)]],
                                  context={**MIGRATION_CONTEXT, "active_test": False, **(context or {})})
                out.extend({"id": i} for i in found)
            return out
        for chunk in _chunks(list(ids), chunk_size):
            out.extend(self.call(model, "read", [chunk, list(fields)],
                                 context={**MIGRATION_CONTEXT, **(context or {})}))
        return out

    def unlink(self, model: str, ids: Sequence[int], *, chunk_size: int = 2000,
               context: Mapping[str, Any] | None = None) -> int:
        """Delete ``ids``; return how many were asked. A missing id is :class:`OdooMissingRecord`."""
        ids = list(ids)
        for chunk in _chunks(ids, chunk_size):
            started = time.perf_counter()
            self.call(model, "unlink", [chunk], context={**MIGRATION_CONTEXT, **(context or {})})
            self._log_batch(model, "unlink", len(chunk), started)
        return len(ids)

    def fields_get(self, model: str, attributes: Sequence[str] = DEFAULT_FIELD_ATTRIBUTES) -> dict[str, dict]:
        """``fields_get`` of ``model`` with ``attributes`` (cached per model until :meth:`ensure_field`)."""
        key = (model, tuple(attributes))
        if key not in self._fields:
            self._fields[key] = self.call(model, "fields_get", [], {"attributes": list(attributes)})
        return self._fields[key]

    def ensure_field(self, model: str, name: str, ttype: str, *, string: str,
                     selection: Sequence[tuple[str, str]] | None = None, relation: str | None = None,
                     index: bool = False, size: int | None = None, copy: bool | None = None) -> int:
        """Make sure the custom field ``model.name`` exists with type ``ttype``; return its ir.model.fields id.

        Idempotent: an existing field of the same type is left alone; of another type it is
        :class:`OdooSchemaError`. Several fields: :meth:`ensure_fields` (one call for all).
        """
        field = FieldDef(model, name, ttype, string, selection=tuple(selection or ()), relation=relation,
                         index=index, size=size, copy=copy)
        created = self.ensure_fields([field])
        if created:
            return created[0]
        found = self.search_ids("ir.model.fields", [("model", "=", model), ("name", "=", name)], limit=1)
        return found[0] if found else 0

    def ensure_fields(self, fields: Sequence[FieldDef]) -> list[int]:
        """Make sure every custom field exists (same rules as :meth:`ensure_field`); the missing ones are
        created in ONE call, since Odoo reloads its registry once per call (on a real Odoo 17: 20 fields in
        1.6 s, against 1.3 s per field one by one). Returns the ids of the fields created, in order."""
        vals_list: list[dict[str, Any]] = []
        names: list[str] = []
        model_ids: dict[str, int] = {}
        wanted: set[tuple[str, str]] = set()
        for f in fields:
            if not f.name.startswith("x_"):
                raise ConfigurationError(f"custom field {f.model}.{f.name}: Odoo requires names starting with 'x_'")
            existing = self.fields_get(f.model).get(f.name)
            if existing is not None:
                if existing.get("type") != f.ttype or (f.relation and existing.get("relation") != f.relation):
                    raise OdooSchemaError(f"field {f.name} exists as {existing.get('type')}"
                                          f"{'(' + existing['relation'] + ')' if existing.get('relation') else ''},"
                                          f" not {f.ttype}{'(' + f.relation + ')' if f.relation else ''}: rename or "
                                          "migrate it by hand", model=f.model, method="ensure_field")
                continue
            if (f.model, f.name) in wanted:
                continue
            wanted.add((f.model, f.name))
            if f.model not in model_ids:
                found = self.search_ids("ir.model", [("model", "=", f.model)], limit=1)
                if not found:
                    raise OdooSchemaError(f"model {f.model} is not installed", model=f.model, method="ensure_field")
                model_ids[f.model] = found[0]
            vals: dict[str, Any] = {"model_id": model_ids[f.model], "name": f.name, "field_description": f.string,
                                    "ttype": f.ttype, "state": "manual", "index": f.index, "store": True}
            if f.relation:
                vals["relation"] = f.relation
            if f.size:
                vals["size"] = f.size
            if f.copy is not None:
                vals["copied"] = f.copy
            if f.selection:
                vals["selection_ids"] = [(0, 0, {"value": v, "name": label, "sequence": i})
                                         for i, (v, label) in enumerate(f.selection)]
            vals_list.append(vals)
            names.append(f"{f.model}.{f.name} ({f.ttype})")
        if not vals_list:
            return []
        ids = self.create_batch("ir.model.fields", vals_list)
        touched = {m for m, _ in wanted}
        self._fields = {k: v for k, v in self._fields.items() if k[0] not in touched}
        self.log.info("Odoo: created %d custom field(s) in one call: %s", len(ids), ", ".join(names))
        return list(ids)

    def add_options(self, options: Mapping[str, Mapping[str, Sequence[str]]]) -> int:
        """Add options to custom selection fields (``{model: {field: [value, ...]}}``; the label is the value),
        after the existing ones, in one call whatever the models: each such call changes Odoo's registry (every
        model is set up again, the next request meets cold caches), so a run makes one. Values a field already has
        are skipped. Returns how many were added.

        The options the fields have are read from Odoo, not from the cached ``fields_get``: mapped loads run at
        once, each task with its own hook, and another may have added the same option since this hook read the
        fields (Odoo refuses a second copy of an option). One that lands in between is read again, once."""
        wanted = {(m, n): vs for m, fields in options.items() for n, vs in fields.items()}
        if not wanted:
            return 0
        ids = {k: i for k, i in self._field_ids.items() if k in wanted}
        for model in sorted({m for m, n in wanted if (m, n) not in ids}):
            names = sorted(n for m, n in wanted if m == model)
            for r in self.search_read("ir.model.fields", [("model", "=", model), ("name", "in", names)], ["name"]):
                ids[(model, r["name"])] = self._field_ids[(model, r["name"])] = r["id"]
        for model, name in wanted:
            if (model, name) not in ids:
                raise OdooSchemaError(f"no custom field {name}", model=model, method="add_options")
        rows: list[dict[str, Any]] = []
        have: dict[int, list[str]] = {}
        for attempt in (1, 2):
            have = {i: [] for i in ids.values()}
            for r in self.search_read("ir.model.fields.selection", [("field_id", "in", sorted(have))],
                                      ["field_id", "value", "sequence"]):
                have[r["field_id"][0] if isinstance(r["field_id"], list) else r["field_id"]].append(str(r["value"]))
            rows = []
            for key, vs in sorted(wanted.items()):
                new = [v for v in dict.fromkeys(map(str, vs)) if v not in have[ids[key]]]
                rows += [{"field_id": ids[key], "value": v, "name": v, "sequence": len(have[ids[key]]) + i}
                         for i, v in enumerate(new)]
            if not rows:
                break
            try:
                self.create_batch("ir.model.fields.selection", rows)
                break
            except OdooRecordError as exc:
                if attempt == 2 or "unique" not in exc.message.lower():
                    raise
                self.log.warning("Odoo %s: another task added some of these options meanwhile (%s); reading them "
                                 "again", ", ".join(sorted(options)), exc.message)
        # the cached fields_get learns the options (fetching it again costs a call as heavy as the create)
        for (m, attrs), cached in self._fields.items():
            if m not in options or "selection" not in attrs:
                continue
            for name in options[m]:
                if name in cached:
                    fid = ids[(m, name)]
                    known = [str(k) for k, _label in cached[name].get("selection") or ()]
                    cached[name]["selection"] = [*(cached[name].get("selection") or ()),
                                                 *([v, v] for v in [*have[fid], *(r["value"] for r in rows
                                                   if r["field_id"] == fid)] if v not in known)]
        if rows:
            self.log.info("Odoo: %d option(s) added to the selection fields %s", len(rows),
                          ", ".join(f"{m}.{n}" for m, n in sorted(wanted)))
        return len(rows)

    def resolve_xmlid(self, xmlid: str) -> tuple[str, int]:
        """``module.name`` -> ``(model, id)`` via ``ir.model.data`` (archived records included; cached)."""
        if xmlid in self._xmlids:
            return self._xmlids[xmlid]
        module, _, name = xmlid.partition(".")
        if not name:
            raise ValueError(f"xmlid {xmlid!r} is not 'module.name'")
        rows = self.call("ir.model.data", "search_read",
                         [[("module", "=", module), ("name", "=", name)], ["model", "res_id"]], {"limit": 1})
        if not rows:
            raise OdooMissingRecord(f"external id {xmlid} not found", model="ir.model.data",
                                    method="resolve_xmlid")
        self._xmlids[xmlid] = (rows[0]["model"], int(rows[0]["res_id"]))
        return self._xmlids[xmlid]

    def find_by_keys(self, model: str, keys: Iterable[str], *, chunk_size: int = 1000,
                     exclude: Collection[int] = ()) -> dict[str, int]:
        """``{x_migration_key: id}`` of the records of ``model`` carrying ``keys`` (archived included).

        :param exclude: ids to ignore (records being replaced by a new one with the same key).
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, int] = {}
        duplicates = 0
        for chunk in _chunks(wanted, chunk_size):
            # a page larger than the chunk: one call per chunk unless keys are duplicated in Odoo
            for row in self.search_read(model, [(MIGRATION_KEY, "in", chunk)], [MIGRATION_KEY],
                                        page_size=2 * len(chunk) + 1, context={"active_test": False}):
                key = row[MIGRATION_KEY]
                if row["id"] in exclude:
                    continue
                if key in found:
                    duplicates += 1
                    found[key] = min(found[key], row["id"])
                else:
                    found[key] = row["id"]
        if duplicates:
            self.log.warning("Odoo %s: %d migration keys are carried by more than one record; the lowest id "
                             "is used", model, duplicates)
        return found

    def _log_batch(self, model: str, method: str, count: int, started: float) -> None:
        self.log.info("Odoo %s.%s: %d records, %.0f ms", model, method, count,
                      (time.perf_counter() - started) * 1000)


def _major(info: Mapping[str, Any]) -> int | None:
    vinfo = info.get("server_version_info") or info.get("version_info")
    if isinstance(vinfo, (list, tuple)) and vinfo and isinstance(vinfo[0], int):
        return vinfo[0]
    m = re.match(r"\D*(\d+)", str(info.get("server_version") or ""))
    return int(m.group(1)) if m else None


def _unknown_written_field(exc: OdooError, method: str, args: Sequence[Any]) -> str | None:
    """The field of a ``write`` Odoo refused with a bare ``KeyError: '<field>'`` (19.0), if that is it."""
    if type(exc) is not OdooError or method != "write" or len(args) < 2 or not isinstance(args[1], Mapping):
        return None
    m = re.fullmatch(r"KeyError: '?(?P<f>\w+)'?", exc.message)
    return m["f"] if m and m["f"] in args[1] else None


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), max(size, 1)):
        yield list(items[i:i + size])
