"""Read Apto: the Salesforce REST API of the org that hosts the Apto managed package.

One ``httpx.Client`` per hook (transport injectable for tests), OAuth 2.0 (client credentials,
username-password or JWT bearer) at ``{host}/services/oauth2/token``, API calls at the
``instance_url`` the token answer names. Every answer's ``Sforce-Limit-Info`` is read and the hook
stops with :class:`AptoApiLimitError` before the org's daily API allowance is spent.

Two ways to read a query: :meth:`AptoHook.query` (REST ``query``/``queryAll``, 2,000 records a
page) and :meth:`AptoHook.bulk_query` (a Bulk API 2.0 query job, CSV result pages of up to
``maxRecords``), both yielding records of the same shape (:class:`BulkCsvDecoder` types the CSV from
the describe). :class:`~crm_migration.streams.soql.SoqlStream` picks one per read.

SOQL helpers (:func:`soql_quote`, :func:`soql_datetime`, :func:`soql_in`, :func:`to_18`) live here
too, so a caller never builds a literal by hand.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from airflow.sdk import BaseHook

from crm_migration.errors import ConfigurationError, CrmMigrationError
from crm_migration.hooks._http import base_url, download_workers, retrying

DEFAULT_API_VERSION = "60.0"
DEFAULT_MAX_API_SHARE = 0.8
AUTH_FLOWS = frozenset({"client_credentials", "password", "jwt"})
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
RETRYABLE = frozenset({429, 500, 502, 503, 504})
ID_CHUNK = 200  # ids per IN (...) list: keeps the GET URL well under Salesforce's 16,384 characters
DEFAULT_BULK_THRESHOLD = 50_000  # records: a full read at least this big goes through Bulk API 2.0
DEFAULT_BULK_TIMEOUT = 3600.0  # seconds a Bulk API query job may take to complete before it is aborted
BULK_FIRST_POLL = 0.25  # seconds before the first status poll of a job; doubled after each poll ...
BULK_MAX_POLL = 30.0  # ... up to this
BULK_DONE_STATES = frozenset({"JobComplete", "Failed", "Aborted"})

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class AptoError(CrmMigrationError):
    """Base of every error the Apto hook raises."""


class AptoConfigurationError(AptoError, ConfigurationError):
    """The ``apto`` connection is missing a setting, or a setting is invalid."""

    def __init__(self, conn_id: str, reason: str) -> None:
        self.conn_id, self.reason = conn_id, reason
        super().__init__(f"connection {conn_id!r}: {reason}")


class AptoAuthError(AptoError):
    """The org refused to authenticate, or refused the session after one re-authentication."""

    def __init__(self, conn_id: str, reason: str) -> None:
        self.conn_id, self.reason = conn_id, reason
        super().__init__(f"connection {conn_id!r}: authentication failed: {reason}")


class AptoApiError(AptoError):
    """Salesforce answered with an error list ``[{"message", "errorCode"}]`` (or an HTTP error)."""

    def __init__(self, status: int, error_code: str, message: str, *, method: str = "GET",
                 path: str = "", errors: Sequence[dict[str, Any]] = ()) -> None:
        self.status, self.error_code, self.message = status, error_code, message
        self.method, self.path, self.errors = method, path, list(errors)
        http = f"HTTP {status} " if status else ""
        super().__init__(f"{method} {path}: {http}{error_code}: {message}")


class AptoApiLimitError(AptoApiError):
    """Stop and report: the org's API usage reached the configured share, or Salesforce said
    ``REQUEST_LIMIT_EXCEEDED``. Not retried; rerun the task once the allowance has recovered.

    ``used``/``limit`` are the last ``Sforce-Limit-Info`` figures, when known.
    """

    def __init__(self, status: int, error_code: str, message: str, *, method: str = "GET", path: str = "",
                 errors: Sequence[dict[str, Any]] = (), used: int | None = None,
                 limit: int | None = None) -> None:
        self.used, self.limit = used, limit
        super().__init__(status, error_code, message + " (stop and report: rerun once the org's API"
                         " allowance has recovered)", method=method, path=path, errors=errors)


class AptoUnavailableError(AptoError):
    """Transient faults (5xx, timeouts, dropped connections) outlasted the bounded retries."""

    def __init__(self, method: str, path: str, attempts: int, reason: str) -> None:
        self.method, self.path, self.attempts, self.reason = method, path, attempts, reason
        super().__init__(f"{method} {path}: gave up after {attempts} attempts: {reason}")


class AptoPaginationError(AptoError):
    """A query's ``nextRecordsUrl`` repeated (loop) or went missing while ``done`` was false."""

    def __init__(self, sobject: str, locator: str | None, reason: str) -> None:
        self.sobject, self.locator, self.reason = sobject, locator, reason
        super().__init__(f"{sobject}: {reason} (locator {locator!r})")


class AptoBulkJobError(AptoError):
    """A Bulk API 2.0 query job failed, was aborted, ran past the timeout, or its pages did not add up.

    ``reason`` carries Salesforce's ``errorMessage`` when the job failed.
    """

    def __init__(self, sobject: str, job_id: str, state: str, reason: str) -> None:
        self.sobject, self.job_id, self.state, self.reason = sobject, job_id, state, reason
        super().__init__(f"{sobject}: Bulk API query job {job_id} {state}: {reason}")


class AptoUnknownFieldError(AptoError):
    """Fields declared for an object do not exist in the org's describe."""

    def __init__(self, sobject: str, fields: Sequence[str]) -> None:
        self.sobject, self.fields = sobject, tuple(fields)
        super().__init__(f"{sobject}: unknown field(s) {', '.join(self.fields)} (not in describe)")


# --------------------------------------------------------------------------------------------------
# SOQL literals and ids
# --------------------------------------------------------------------------------------------------

_SOQL_ESCAPES = {
    "\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}


def _escape(value: str, table: dict[str, str]) -> str:
    out = []
    for ch in value:
        if ch in table:
            out.append(table[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # other control characters: \uXXXX
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)  # any other character, unicode included, goes as is (UTF-8)
    return "".join(out)


def soql_quote(value: str) -> str:
    """Return ``value`` as a quoted SOQL string literal, escaped per Salesforce's rules.

    Backslash, single and double quotes, newline, carriage return, tab, backspace and form feed get
    their backslash escapes; other control characters become ``\\uXXXX``.
    """
    if not isinstance(value, str):
        raise TypeError(f"soql_quote takes a str, not {type(value).__name__}; use soql_literal")
    return f"'{_escape(value, _SOQL_ESCAPES)}'"


def soql_like(value: str) -> str:
    """Return ``value`` quoted for a ``LIKE`` pattern that matches it literally (``%`` and ``_`` escaped)."""
    return f"'{_escape(value, {**_SOQL_ESCAPES, **_LIKE_ESCAPES})}'"


def soql_datetime(value: datetime) -> str:
    """Return an aware datetime as a SOQL dateTime literal in UTC, ``YYYY-MM-DDTHH:MM:SSZ``.

    Sub-seconds are truncated: adjacent windows ``[a, b)`` ``[b, c)`` stay contiguous because both
    sides of a boundary truncate alike.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"soql_datetime takes a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass an aware (UTC) datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_literal(value: Any) -> str:
    """Return any scalar as a SOQL literal: str, bool, int/float, datetime, date or None."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return soql_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return soql_quote(value)
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


def soql_in(values: Iterable[Any]) -> str:
    """Return ``(v1, v2, ...)`` for an ``IN`` clause; keep lists short with :func:`chunked`."""
    items = [soql_literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return f"({', '.join(items)})"


def chunked(values: Iterable[Any], size: int = ID_CHUNK) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` values (for ``IN`` lists and URL length)."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    batch: list[Any] = []
    for v in values:
        batch.append(v)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def soql_in_chunks(values: Iterable[Any], size: int = ID_CHUNK) -> Iterator[str]:
    """Yield ``IN`` lists of at most ``size`` values each."""
    for batch in chunked(values, size):
        yield soql_in(batch)


_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def is_sf_id(value: Any) -> bool:
    """Tell whether ``value`` looks like a Salesforce id (15 characters, or 18 with a valid suffix)."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return False
    return len(value) == 15 or to_18(value[:15]) == value


def to_18(value: str) -> str:
    """Return the 18-character, case-insensitive-safe form of a 15- or 18-character id."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
        raise ValueError(f"not a Salesforce id: {value!r}")
    base = value[:15]
    suffix = ""
    for i in range(0, 15, 5):
        bits = sum(1 << j for j, ch in enumerate(base[i:i + 5]) if "A" <= ch <= "Z")
        suffix += _ID_SUFFIX[bits]
    if len(value) == 18 and value[15:] != suffix:
        raise ValueError(f"not a Salesforce id (bad checksum): {value!r}")
    return base + suffix


def parse_sf_datetime(value: str) -> datetime:
    """Parse a Salesforce dateTime (``2024-01-02T03:04:05.000+0000`` or ``...Z``) to an aware datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"invalid {kind} name: {name!r}")
    return name


# --------------------------------------------------------------------------------------------------
# SOQL text helpers (top-level clause scan: quotes and sub-queries skipped)
# --------------------------------------------------------------------------------------------------

_CLAUSE_RE = re.compile(r"(FROM|WHERE|ORDER\s+BY|LIMIT|OFFSET|GROUP\s+BY|FOR\s+\w+)\b", re.IGNORECASE)


def _top_level_clauses(soql: str) -> dict[str, int]:
    """Return the offset of each top-level clause keyword (upper-cased, single-spaced)."""
    found: dict[str, int] = {}
    depth, in_str, i = 0, False, 0
    while i < len(soql):
        ch = soql[i]
        if in_str:
            if ch == "\\":
                i += 2
                continue
            if ch == "'":
                in_str = False
        elif ch == "'":
            in_str = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (i == 0 or not (soql[i - 1].isalnum() or soql[i - 1] == "_")):
            if m := _CLAUSE_RE.match(soql, i):
                found.setdefault(" ".join(m.group(1).upper().split()), i)
                i = m.end()
                continue
        i += 1
    return found


def soql_object(soql: str) -> str:
    """Return the object a SOQL query reads (the top-level ``FROM``), or ``"?"``."""
    at = _top_level_clauses(soql).get("FROM")
    if at is None:
        return "?"
    m = re.match(r"FROM\s+([A-Za-z0-9_]+)", soql[at:], re.IGNORECASE)
    return m.group(1) if m else "?"


def count_soql(soql: str) -> str:
    """Rewrite ``SELECT ... FROM x WHERE ... ORDER BY ...`` as ``SELECT COUNT() FROM x WHERE ...``."""
    clauses = _top_level_clauses(soql)
    if "FROM" not in clauses:
        raise ValueError("not a SOQL query: no top-level FROM")
    body = soql[clauses["FROM"]:]
    if "ORDER BY" in clauses:
        order_at = clauses["ORDER BY"] - clauses["FROM"]
        tail = [clauses[k] - clauses["FROM"] for k in ("LIMIT", "OFFSET") if clauses.get(k, -1) > clauses["ORDER BY"]]
        body = body[:order_at].rstrip() + (" " + body[min(tail):] if tail else "")
    return f"SELECT COUNT() {body.strip()}"


# --------------------------------------------------------------------------------------------------
# HTTP helpers: retry predicate (the wait and the tenacity policy are hooks/_http.py's)
# --------------------------------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    """Retry timeouts, dropped connections and 429/5xx answers; nothing else."""
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in RETRYABLE


_LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """Parse ``Sforce-Limit-Info: api-usage=N/M`` into ``(N, M)``."""
    if header and (m := _LIMIT_RE.search(header)):
        return int(m.group(1)), int(m.group(2))
    return None


def _strip_attributes(value: Any) -> Any:
    """Drop Salesforce's ``attributes`` from a record, its parent lookups and sub-query rows."""
    if isinstance(value, dict):
        return {k: _strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [_strip_attributes(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Bulk API 2.0: CSV result rows -> records shaped as the REST query gives them
# --------------------------------------------------------------------------------------------------

_SELECT_RE = re.compile(r"\s*SELECT\s+", re.IGNORECASE)
_PATH_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")
_BULK_DATETIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(?:Z|[+-]00:?00)$")
_BULK_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_FLOAT_TYPES = frozenset({"double", "currency", "percent"})


def select_paths(soql: str) -> list[str] | None:
    """Return the top-level SELECT list of ``soql`` when it holds plain field paths only, else None."""
    clauses = _top_level_clauses(soql)
    m = _SELECT_RE.match(soql)
    if not m or "FROM" not in clauses:
        return None
    items = [item.strip() for item in soql[m.end():clauses["FROM"]].split(",")]
    return items if all(_PATH_RE.match(item) for item in items) else None


def with_parent_ids(soql: str) -> tuple[str, tuple[str, ...]]:
    """Add ``<relationship>.Id`` for every parent relationship the SELECT list reads through.

    A CSV cell cannot tell a missing parent (REST: ``"Account": null``) from a parent whose selected
    fields are blank (REST: ``"Account": {"Phone": null}``); the parent's Id can. Return the SOQL to
    send and the columns added (for :class:`BulkCsvDecoder` to drop). A SELECT list holding anything
    but plain field paths (functions, sub-queries) is left as written.
    """
    items = select_paths(soql)
    if items is None:
        return soql, ()
    sobject = soql_object(soql).casefold()
    have = {item.casefold() for item in items}
    added: list[str] = []
    for item in items:
        parts = item.split(".")
        if len(parts) > 1 and parts[0].casefold() == sobject:
            parts = parts[1:]  # Account.Name on Account: the object's own field
        for n in range(1, len(parts)):
            column = ".".join([*parts[:n], "Id"])
            if column.casefold() not in have:
                have.add(column.casefold())
                added.append(column)
    if not added:
        return soql, ()
    return f"SELECT {', '.join([*items, *added])} {soql[_top_level_clauses(soql)['FROM']:]}", tuple(added)


def _to_bool(raw: str) -> bool | None:
    return raw.lower() == "true" if raw else None


def _to_int(raw: str) -> int | float | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        number = float(raw)
        return int(number) if number.is_integer() else number


def _to_float(raw: str) -> float | None:
    return float(raw) if raw else None


def _to_datetime(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) == 24 and raw[-1] == "Z":  # 2024-04-16T19:00:00.000Z, the usual form
        return raw[:23] + "+0000"
    m = _BULK_DATETIME_RE.match(raw)
    return f"{m.group(1)}{m.group(2) or '.000'}+0000" if m else raw


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "boolean": _to_bool, "int": _to_int, "long": _to_int, "double": _to_float, "currency": _to_float,
    "percent": _to_float, "datetime": _to_datetime}


def bulk_value(raw: str, kind: str) -> Any:
    """Return one Bulk API CSV cell as the REST API's JSON has it, for a describe field ``type``.

    Blank is None; ``boolean`` a bool; ``int``/``long`` an int; ``double``/``currency``/``percent`` a
    float (the CSV says ``100.0``); a ``datetime`` ``...000Z`` becomes REST's ``...000+0000``;
    anything else (ids, strings, dates, picklists) stays the text it is.
    """
    convert = _CONVERTERS.get(kind)
    return convert(raw) if convert else (raw or None)


class _FieldIndex:
    """Names, types and relationships of objects, from their describes (asked once each, on demand)."""

    def __init__(self, describe: Callable[[str], Mapping[str, Any]]) -> None:
        self._describe = describe
        self._objects: dict[str, tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]] = {}

    def _of(self, sobject: str) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
        if sobject not in self._objects:
            try:
                fields = list(self._describe(sobject).get("fields") or [])
            except AptoApiError:  # a parent type this user cannot describe: its cells stay text
                fields = []
            self._objects[sobject] = ({str(f["name"]).casefold(): f for f in fields},
                                      {str(f["relationshipName"]).casefold(): f for f in fields
                                       if f.get("relationshipName")})
        return self._objects[sobject]

    def resolve(self, sobject: str, column: str) -> tuple[tuple[str, ...], str]:
        """Return a column's record path (canonical names) and its describe type (``string`` if unknown)."""
        parts = column.split(".")
        if len(parts) > 1 and parts[0].casefold() == sobject.casefold() and \
                parts[0].casefold() not in self._of(sobject)[1]:
            parts = parts[1:]
        objects: Sequence[str] = (sobject,)
        path: list[str] = []
        for part in parts[:-1]:
            rel = next((r for o in objects if (r := self._of(o)[1].get(part.casefold()))), None)
            path.append(str(rel["relationshipName"]) if rel else part)
            objects = list(rel.get("referenceTo") or []) if rel else []
        last = parts[-1]
        found = next((f for o in objects if (f := self._of(o)[0].get(last.casefold()))), None)
        if found is None:
            return (*path, last), "string"
        return (*path, str(found["name"])), str(found.get("type") or "string")


def _walk(record: dict[str, Any], path: Sequence[str]) -> dict[str, Any] | None:
    node: Any = record
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


class BulkCsvDecoder:
    """Turn the rows of a Bulk API 2.0 query's CSV into records shaped as :meth:`AptoHook.query` yields them.

    Cells are typed from the describe (:func:`bulk_value`); ``Parent.Field`` columns nest as
    ``{"Parent": {"Field": ...}}`` under the relationship's canonical name (``Owner.Email`` through
    ``Parent.Owner``, any depth); a missing parent is None, told by its ``Parent.Id`` column when the
    query has one (:func:`with_parent_ids`), else by all its cells being blank.

    :param sobject: the queried object.
    :param header: the CSV's first row.
    :param describe: ``describe(object) -> {"fields": [{"name", "type", "relationshipName",
        "referenceTo"}]}`` (the hook's cached describe).
    :param implicit: columns :func:`with_parent_ids` added: read, then left out of the records.
    """

    def __init__(self, sobject: str, header: Sequence[str], describe: Callable[[str], Mapping[str, Any]], *,
                 implicit: Collection[str] = ()) -> None:
        index = _FieldIndex(describe)
        self.header = list(header)
        self.cells = [index.resolve(sobject, column) for column in self.header]
        dropped = {c.casefold() for c in implicit}
        self._drop = [path for column, (path, _) in zip(self.header, self.cells, strict=True)
                      if column.casefold() in dropped]
        members: dict[tuple[str, ...], list[int]] = {}
        for i, (path, _) in enumerate(self.cells):
            for n in range(1, len(path)):
                members.setdefault(path[:n], []).append(i)
        ids = {path[:-1]: i for i, (path, _) in enumerate(self.cells) if len(path) > 1 and path[-1] == "Id"}
        # parents, deepest first: (relationship path, its Id cell or None, its cells)
        self._parents = sorted(((p, ids.get(p), tuple(cells)) for p, cells in members.items()),
                               key=lambda parent: -len(parent[0]))
        self._paths = [path for path, _ in self.cells]
        self._keys = [path[-1] for path in self._paths]
        self._converters = [_CONVERTERS.get(kind) for _, kind in self.cells]

    def record(self, row: Sequence[str]) -> dict[str, Any]:
        """Return the record of one CSV row (as many cells as the header)."""
        if len(row) != len(self._converters):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(self._converters)}")
        values = [convert(raw) if convert else (raw or None)
                  for convert, raw in zip(self._converters, row, strict=True)]
        if not self._parents:
            return dict(zip(self._keys, values, strict=True))
        rec: dict[str, Any] = {}
        for path, value in zip(self._paths, values, strict=True):
            if len(path) == 1:
                rec[path[0]] = value
                continue
            node = rec
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        for path, id_cell, cells in self._parents:
            present = row[id_cell] != "" if id_cell is not None else any(row[i] != "" for i in cells)
            if not present and (parent := _walk(rec, path[:-1])) is not None:
                parent[path[-1]] = None
        for path in self._drop:
            if (node := _walk(rec, path[:-1])) is not None:
                node.pop(path[-1], None)
        return rec


class _ChunkReader(io.RawIOBase):
    """A read-only binary file over an iterator of byte chunks (an HTTP body as it arrives)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _csv_rows(chunks: Iterator[bytes], delimiter: str) -> Iterator[list[str]]:
    """Parse CSV from byte chunks as they arrive (quoted line breaks kept, a UTF-8 BOM dropped)."""
    text = io.TextIOWrapper(io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 16), encoding="utf-8-sig",
                            newline="")
    return csv.reader(text, delimiter=delimiter)


@dataclass(frozen=True)
class DownloadResult:
    """Bytes written by :meth:`AptoHook.download_to`: size and SHA-256 hex digest."""

    size: int
    sha256: str


@dataclass(frozen=True)
class _Settings:
    auth: str
    login_url: str
    client_id: str
    client_secret: str | None
    username: str | None
    password: str | None
    private_key: str | None
    audience: str
    api_version: str
    namespace: str | None
    max_api_share: float
    batch_size: int | None
    timeout: float
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    bulk_timeout: float = DEFAULT_BULK_TIMEOUT
    secrets: tuple[str, ...] = ()  # every secret as configured, for redaction

    def __repr__(self) -> str:  # never show the secrets
        return f"_Settings(auth={self.auth!r}, login_url={self.login_url!r}, api_version={self.api_version!r})"


# --------------------------------------------------------------------------------------------------
# The hook
# --------------------------------------------------------------------------------------------------


class AptoHook(BaseHook):
    """Talk to the Salesforce org that hosts Apto: OAuth, SOQL, describe, blobs, deltas.

    :param apto_conn_id: connection of type ``apto``: ``host`` = the org's base URL (login and
        instance), ``login`` = OAuth client id (or the username, for the password flow), ``password`` =
        client secret (or the user's password, for the password flow), ``extra`` = ``{"auth":
        "client_credentials" | "password" | "jwt", "username", "security_token", "private_key",
        "api_version": "60.0", "namespace", "max_api_share": 0.8, "batch_size", "timeout": 60,
        "bulk_threshold": 50000, "bulk_timeout": 3600, "audience", "client_id", "client_secret"}``.
        ``bulk_threshold``: records from which a full read of a stream goes through Bulk API 2.0
        (:meth:`bulk_query`) rather than REST; ``bulk_timeout``: seconds a Bulk API job may take.
    :param transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
    :param max_attempts: attempts per request for transient faults (5xx, timeouts, drops), >= 1.

    Password flow: with ``extra.username`` set, ``login``/``password`` are the client id/secret and
    the user's password is ``extra.password``; otherwise ``login``/``password`` are the user's and
    the client id/secret come from ``extra.client_id``/``extra.client_secret``. The security token
    (``extra.security_token``) is appended to the password.
    """

    conn_name_attr = "apto_conn_id"
    default_conn_name = "apto_default"
    conn_type = "apto"
    hook_name = "Apto (Salesforce)"

    def __init__(self, apto_conn_id: str = default_conn_name, *,
                 transport: httpx.BaseTransport | None = None, max_attempts: int = 5) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.apto_conn_id, self._transport, self.max_attempts = apto_conn_id, transport, max_attempts
        self.sleep: Callable[[float], Any] = time.sleep  # the retry pause; tests swap in a no-op
        self._access_token: str | None = None
        self._instance_url: str | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._global: dict[str, Any] | None = None
        self.api_usage: tuple[int, int] | None = None  # (used, limit) from the last Sforce-Limit-Info
        # threads share the hook (a load downloads a batch's files concurrently): one of them authenticates
        self._auth_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(apto_conn_id={self.apto_conn_id!r})"

    # ---- configuration -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> _Settings:
        """Read and check the connection once; secrets are checked here, never logged."""
        conn = self.get_connection(self.apto_conn_id)
        extra = conn.extra_dejson or {}
        cid = self.apto_conn_id
        if not conn.host:
            raise AptoConfigurationError(cid, "no host (the org's base URL)")
        auth = extra.get("auth", "client_credentials")
        if auth not in AUTH_FLOWS:
            raise AptoConfigurationError(cid, f"extra.auth must be one of {sorted(AUTH_FLOWS)}, not {auth!r}")
        login_url = base_url(conn, scheme=conn.schema or "https")
        client_id, client_secret = conn.login, conn.password
        username, password, private_key = extra.get("username"), None, None
        if auth == "password":
            if username:
                password = extra.get("password")
            else:
                username, password = conn.login, conn.password
                client_id, client_secret = extra.get("client_id"), extra.get("client_secret")
            if not username or not password:
                raise AptoConfigurationError(cid, "password flow needs a username and a password")
            password += extra.get("security_token") or ""
        elif auth == "jwt":
            private_key = extra.get("private_key")
            if not private_key and extra.get("private_key_file"):
                try:
                    with open(extra["private_key_file"], encoding="utf-8") as fh:
                        private_key = fh.read()
                except OSError as exc:
                    raise AptoConfigurationError(cid, f"extra.private_key_file unreadable ({exc.strerror})") from None
            if not private_key:
                raise AptoConfigurationError(cid, "jwt flow needs extra.private_key (PEM)")
            private_key = private_key.replace("\\n", "\n")
            if not username:
                raise AptoConfigurationError(cid, "jwt flow needs extra.username (the token's subject)")
        elif not client_secret:
            raise AptoConfigurationError(cid, "client_credentials flow needs the client secret (password)")
        if not client_id:
            raise AptoConfigurationError(cid, f"{auth} flow needs the OAuth client id")
        try:
            share = float(extra.get("max_api_share", DEFAULT_MAX_API_SHARE))
            batch = int(extra["batch_size"]) if extra.get("batch_size") else None
            timeout = float(extra.get("timeout", 60))
            threshold = extra.get("bulk_threshold")
            bulk_threshold = DEFAULT_BULK_THRESHOLD if threshold in (None, "") else int(threshold)
            bulk_timeout = float(extra.get("bulk_timeout") or DEFAULT_BULK_TIMEOUT)
        except (TypeError, ValueError) as exc:
            raise AptoConfigurationError(cid, f"bad number in extra: {exc}") from None
        if bulk_threshold < 0 or bulk_timeout <= 0:
            raise AptoConfigurationError(cid, "extra.bulk_threshold must be >= 0 and extra.bulk_timeout > 0")
        if not 0 < share <= 1:
            raise AptoConfigurationError(cid, f"extra.max_api_share must be in (0, 1], not {share}")
        if batch is not None and not 200 <= batch <= 2000:
            raise AptoConfigurationError(cid, f"extra.batch_size must be in [200, 2000], not {batch}")
        version = str(extra.get("api_version", DEFAULT_API_VERSION)).lstrip("vV")
        if not re.fullmatch(r"\d+\.\d", version):
            raise AptoConfigurationError(cid, f"extra.api_version must look like '60.0', not {version!r}")
        return _Settings(auth=auth, login_url=login_url, client_id=client_id, client_secret=client_secret,
                         username=username, password=password, private_key=private_key,
                         audience=extra.get("audience") or login_url, api_version=version,
                         namespace=extra.get("namespace"), max_api_share=share, batch_size=batch,
                         timeout=timeout, bulk_threshold=bulk_threshold, bulk_timeout=bulk_timeout,
                         secrets=tuple(str(v) for v in (
                             conn.password, extra.get("password"), extra.get("client_secret"),
                             extra.get("security_token"), private_key, password) if v))

    @cached_property
    def download_workers(self) -> int:
        """Files downloaded at a time (``extra.download_workers``; 8)."""
        extra = self.get_connection(self.apto_conn_id).extra_dejson or {}
        return download_workers(self.apto_conn_id, extra.get("download_workers"))

    @cached_property
    def client(self) -> httpx.Client:
        """The one HTTP client of this hook (absolute URLs: login host for auth, instance for the API)."""
        return httpx.Client(timeout=self.settings.timeout, transport=self._transport,
                            headers={"Accept": "application/json"}, follow_redirects=False)

    def get_conn(self) -> httpx.Client:
        """Return the authenticated client."""
        self._ensure_token()
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate (the UI's "Test" button); say which instance answered, never a secret."""
        try:
            self.authenticate()
        except AptoError as exc:
            return False, str(exc)
        return True, f"authenticated ({self.settings.auth} flow); instance {self._instance_url}"

    def close(self) -> None:
        """Close the HTTP client (the hook re-opens one on next use)."""
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
            self._access_token = None

    def _secrets(self) -> list[str]:
        values = [*self.settings.secrets, self._access_token]
        return sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    # ---- authentication ------------------------------------------------------------------------------

    @property
    def instance_url(self) -> str:
        """The instance the token answer named (authenticates on first use)."""
        self._ensure_token()
        assert self._instance_url is not None
        return self._instance_url

    @property
    def api_root(self) -> str:
        """``{instance_url}/services/data/vXX.X``."""
        return f"{self.instance_url}/services/data/v{self.settings.api_version}"

    def _ensure_token(self) -> None:
        """Authenticate on first use; threads arriving meanwhile wait for that one token (the client and the
        settings are made under the same lock, once)."""
        if self._access_token is None:
            with self._auth_lock:
                if self._access_token is None:
                    self.authenticate()

    def _reauthenticate(self, refused: str | None) -> None:
        """A new session after ``refused`` answered 401: once for every thread it was refused to (the first
        authenticates, the others find its new token)."""
        with self._auth_lock:
            if self._access_token == refused:
                self._access_token = None
                self.authenticate()

    def _jwt_assertion(self) -> str:
        import jwt  # pyjwt, an Airflow dependency

        s = self.settings
        now = int(time.time())
        claims = {"iss": s.client_id, "sub": s.username, "aud": s.audience, "iat": now, "exp": now + 180}
        try:
            return jwt.encode(claims, s.private_key, algorithm="RS256")
        except Exception as exc:  # a bad PEM: name the problem, never the key
            raise AptoConfigurationError(self.apto_conn_id,
                                         f"extra.private_key is not a usable RSA key ({type(exc).__name__})") from None

    def _token_form(self) -> dict[str, str]:
        s = self.settings
        if s.auth == "client_credentials":
            return {"grant_type": "client_credentials", "client_id": s.client_id,
                    "client_secret": s.client_secret or ""}
        if s.auth == "password":
            form = {"grant_type": "password", "client_id": s.client_id, "username": s.username or "",
                    "password": s.password or ""}
            if s.client_secret:
                form["client_secret"] = s.client_secret
            return form
        return {"grant_type": JWT_GRANT, "assertion": self._jwt_assertion()}

    def authenticate(self) -> None:
        """Get an access token at ``{host}/services/oauth2/token``; keep it and the ``instance_url``."""
        with self._auth_lock:
            self._authenticate()

    def _authenticate(self) -> None:
        s = self.settings
        url = f"{s.login_url}/services/oauth2/token"
        resp = self._send_with_retry("POST", url, data=self._token_form(), label="/services/oauth2/token")
        if resp.status_code != 200:
            try:
                body = resp.json()
                reason = f"{body.get('error', 'error')}: {body.get('error_description', '')}".strip(": ")
            except (ValueError, AttributeError):
                reason = resp.text[:200]
            raise AptoAuthError(self.apto_conn_id, f"HTTP {resp.status_code} {self._redact(reason)}")
        try:
            body = resp.json()
            token, instance = body["access_token"], body.get("instance_url") or s.login_url
        except (ValueError, KeyError, TypeError):
            raise AptoAuthError(self.apto_conn_id, "token answer has no access_token") from None
        self._mask(token)
        self._access_token, self._instance_url = token, instance.rstrip("/")
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.log.info("Apto: authenticated (%s flow), instance %s", s.auth, self._instance_url)

    @staticmethod
    def _mask(secret: str) -> None:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(secret)
        except Exception:  # masking is best effort outside a task
            pass

    # ---- transport -------------------------------------------------------------------------------------

    def _send_with_retry(self, method: str, url: str, *, label: str, stream: bool = False,
                         **kwargs: Any) -> httpx.Response:
        """Send one request, retrying transient faults; return the last answer (any status)."""

        def attempt() -> httpx.Response:
            request = self.client.build_request(method, url, **kwargs)
            resp = self.client.send(request, stream=stream)
            if resp.status_code in RETRYABLE:
                if stream:
                    resp.read()
                    resp.close()
                raise httpx.HTTPStatusError(f"HTTP {resp.status_code}", request=request, response=resp)
            return resp

        policy = retrying(is_retryable, attempts=self.max_attempts, sleep=self.sleep, log=self.log,
                          what=f"Apto: {method} {label}")
        try:
            return policy(attempt)
        except httpx.HTTPStatusError as exc:
            return exc.response  # retryable status, retries spent: the caller turns it into an error
        except httpx.TransportError as exc:
            raise AptoUnavailableError(method, label, self.max_attempts, type(exc).__name__) from None

    def _check_share(self, method: str, label: str) -> None:
        if self.api_usage is None:
            return
        used, limit = self.api_usage
        share = self.settings.max_api_share
        if limit and used / limit >= share:
            raise AptoApiLimitError(
                0, "API_SHARE_REACHED",
                f"org API usage {used}/{limit} reached the configured share {share:.0%} (extra.max_api_share);"
                " not sent, to leave the rest of the daily allowance to the org",
                method=method, path=label, used=used, limit=limit,
            )

    def _note_limits(self, resp: httpx.Response) -> None:
        if usage := parse_limit_info(resp.headers.get("Sforce-Limit-Info")):
            self.api_usage = usage

    def _url(self, path: str) -> str:
        """Absolute URL for an API path; an absolute URL must point at the instance (the token's host)."""
        if path.startswith(("http://", "https://")):
            if urlsplit(path)[:2] != urlsplit(self.instance_url)[:2]:
                raise ValueError("refusing to send the session to another host than the instance")
            return path
        if path.startswith("/services/"):
            return f"{self.instance_url}{path}"
        return f"{self.api_root}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, stream: bool = False, json: Any = None) -> httpx.Response:
        """Send an authenticated API request; raise :class:`AptoError` on any error answer.

        Re-authenticates once on ``401 INVALID_SESSION_ID``; checks the API share before sending.
        With ``stream=True`` the caller must close the answer. ``json``: a request body (POST, PATCH).
        """
        self._ensure_token()
        url = self._url(path)
        label = urlsplit(url).path
        for attempt in (1, 2):
            self._check_share(method, label)
            token = self._access_token
            resp = self._send_with_retry(method, url, label=label, stream=stream, params=params, headers=headers,
                                         json=json)
            self._note_limits(resp)
            if resp.is_success:
                return resp
            if stream:
                resp.read()
                resp.close()
            error = self._api_error(resp, method, label)
            if resp.status_code == 401 and error.error_code in ("INVALID_SESSION_ID", "HTTP_401"):
                if attempt == 1:
                    self.log.warning("Apto: %s %s: session invalid, re-authenticating once", method, label)
                    self._reauthenticate(token)
                    continue
                raise AptoAuthError(self.apto_conn_id,
                                    f"session refused again after re-authenticating ({error.error_code})")
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _api_error(self, resp: httpx.Response, method: str, path: str) -> AptoApiError:
        code, message, errors = f"HTTP_{resp.status_code}", resp.reason_phrase or "error", []
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, list) and body and isinstance(body[0], dict):
            errors = [e for e in body if isinstance(e, dict)]
            code = str(errors[0].get("errorCode") or code)
            message = "; ".join(str(e.get("message", "")) for e in errors)
        elif isinstance(body, dict) and ("errorCode" in body or "error" in body):
            errors = [body]
            code = str(body.get("errorCode") or body.get("error") or code)
            message = str(body.get("message") or body.get("error_description") or message)
        elif resp.text:
            message = resp.text[:300]
        message = self._redact(message)
        if code == "REQUEST_LIMIT_EXCEEDED":
            used, limit = self.api_usage or (None, None)
            return AptoApiLimitError(resp.status_code, code, message, method=method, path=path, errors=errors,
                                     used=used, limit=limit)
        return AptoApiError(resp.status_code, code, message, method=method, path=path, errors=errors)

    def get_json(self, path: str, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        """GET an API path (relative to ``/services/data/vXX.X``) and return its JSON."""
        return self.request("GET", path, params=params, headers=headers).json()

    # ---- queries ---------------------------------------------------------------------------------------

    def _paged(self, first_path: str, soql: str, *, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        sobject = soql_object(soql)
        size = batch_size or self.settings.batch_size
        headers = {"Sforce-Query-Options": f"batchSize={size}"} if size else None
        page = self.get_json(first_path, {"q": soql}, headers)
        seen: set[str] = set()
        count, number = 0, 0
        while True:
            number += 1
            records = page.get("records") or []
            count += len(records)
            self.log.info("Apto: %s page %d: %d records so far of %s", sobject, number, count,
                          page.get("totalSize", "?"))
            for record in records:
                yield _strip_attributes(record)
            del records
            if page.get("done", True):
                return
            locator = page.get("nextRecordsUrl")
            if not locator:
                raise AptoPaginationError(sobject, None, "answer not done but has no nextRecordsUrl")
            if locator in seen:
                raise AptoPaginationError(sobject, locator, "nextRecordsUrl repeated: pagination loop")
            seen.add(locator)
            page = self.get_json(locator, None, headers)

    def query(self, soql: str, *, include_deleted: bool = False,
              batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records of ``soql`` page by page (``attributes`` stripped), memory flat.

        :param include_deleted: use ``queryAll`` (deleted rows still in the recycle bin, ``IsDeleted``).
        :param batch_size: page size hint, 200..2000 (``Sforce-Query-Options``); default extra.batch_size.
        """
        return self._paged("queryAll" if include_deleted else "query", soql, batch_size=batch_size)

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        """Return how many rows ``soql`` matches (rewritten to ``SELECT COUNT()``; one call)."""
        page = self.get_json("queryAll" if include_deleted else "query", {"q": count_soql(soql)})
        return int(page["totalSize"])

    def tooling_query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Yield the records of a Tooling API query (WorkflowRule, ValidationRule, ApexTrigger, ...)."""
        return self._paged("tooling/query", soql)

    # ---- Bulk API 2.0 queries ------------------------------------------------------------------------

    @property
    def bulk_threshold(self) -> int:
        """Records from which a full read goes through Bulk API 2.0 (extra ``bulk_threshold``, default 50,000)."""
        return self.settings.bulk_threshold

    def bulk_query(self, soql: str, *, include_deleted: bool = False, max_records: int | None = None,
                   timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records of ``soql`` through a Bulk API 2.0 query job, as :meth:`query` yields them.

        Creates the job (``query``, or ``queryAll``; CSV, COMMA, LF), polls its state (after 0.25 s,
        then doubling to 30 s), then reads the result pages, following ``Sforce-Locator`` until
        ``null``, each page's CSV parsed as it arrives (memory flat). Every request goes through
        :meth:`request` (retries, re-authentication, the API share, ``Sforce-Limit-Info``): a job
        costs one create, its polls and one call per page.

        The records equal :meth:`query`'s for the same SOQL: typed from the describe
        (:class:`BulkCsvDecoder`), ``Parent.Field`` nested, a missing parent None, no ``attributes``.
        To tell a missing parent from blank parent fields, ``Parent.Id`` is read along (added to the
        SELECT list, left out of the records). Bulk API 2.0 refuses aggregates, OFFSET, TYPEOF,
        sub-queries, compound and blob fields; ORDER BY is kept (it slows big jobs on the org's side).

        :param include_deleted: ``queryAll`` (rows in the recycle bin, ``IsDeleted``).
        :param max_records: ``maxRecords`` per result page (default: Salesforce's choice).
        :param timeout: seconds the job may take to complete (default extra ``bulk_timeout``, 3,600);
            past it the job is aborted.
        :raises AptoBulkJobError: the job ended ``Failed`` or ``Aborted`` (with Salesforce's
            ``errorMessage``), ran past ``timeout``, or a page held another number of rows than announced.
        """
        if max_records is not None and max_records < 1:
            raise ValueError("max_records must be >= 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        return self._bulk_records(soql, include_deleted=include_deleted, max_records=max_records,
                                  timeout=timeout or self.settings.bulk_timeout)

    def _bulk_records(self, soql: str, *, include_deleted: bool, max_records: int | None,
                      timeout: float) -> Iterator[dict[str, Any]]:
        sobject = soql_object(soql)
        job_soql, implicit = with_parent_ids(soql)
        operation = "queryAll" if include_deleted else "query"
        job = self.request("POST", "jobs/query", json={
            "operation": operation, "query": job_soql, "contentType": "CSV", "columnDelimiter": "COMMA",
            "lineEnding": "LF"}).json()
        job_id = str(job["id"])
        self.log.info("Apto: %s: Bulk API 2.0 %s job %s created", sobject, operation, job_id)
        info, polls = self._bulk_wait(sobject, job_id, timeout)
        delimiter = _BULK_DELIMITERS.get(str(info.get("columnDelimiter") or "COMMA"), ",")
        expected = info.get("numberRecordsProcessed")
        decoder: BulkCsvDecoder | None = None
        locator: str | None = None
        seen: set[str] = set()
        total = pages = 0
        while True:
            params: dict[str, Any] = {}
            if max_records:
                params["maxRecords"] = max_records
            if locator:
                params["locator"] = locator
            resp = self.request("GET", f"jobs/query/{job_id}/results", params=params or None,
                                headers={"Accept": "text/csv"}, stream=True)
            pages += 1
            count = 0
            try:
                announced, locator = resp.headers.get("Sforce-NumberOfRecords"), resp.headers.get("Sforce-Locator")
                rows = _csv_rows(resp.iter_bytes(), delimiter)
                header = next(rows, None)
                if header is not None:
                    if decoder is None:
                        decoder = BulkCsvDecoder(sobject, header, self.describe, implicit=implicit)
                    elif header != decoder.header:
                        raise AptoBulkJobError(sobject, job_id, "JobComplete",
                                               f"result page {pages} has other columns than page 1")
                    for row in rows:
                        if not row:
                            continue
                        try:
                            record = decoder.record(row)
                        except ValueError as exc:
                            raise AptoBulkJobError(sobject, job_id, "JobComplete",
                                                   f"result page {pages}, row {count + 1}: {exc}") from None
                        count += 1
                        yield record
            finally:
                resp.close()
            total += count
            self.log.info("Apto: %s bulk job %s page %d: %d records so far of %s", sobject, job_id, pages, total,
                          expected if expected is not None else "?")
            if announced and announced.isdigit() and int(announced) != count:
                raise AptoBulkJobError(sobject, job_id, "JobComplete", f"result page {pages} held {count} records,"
                                       f" Sforce-NumberOfRecords said {announced}")
            if not locator or locator == "null":
                break
            if locator in seen:
                raise AptoPaginationError(sobject, locator, "Sforce-Locator repeated: pagination loop")
            seen.add(locator)
        if isinstance(expected, int) and expected != total:
            raise AptoBulkJobError(sobject, job_id, "JobComplete",
                                   f"read {total} records, the job says numberRecordsProcessed {expected}")
        self.log.info("Apto: %s: bulk job %s read: %d records in %d page(s), %d API calls (1 create, %d polls,"
                      " %d pages)", sobject, job_id, total, pages, 1 + polls + pages, polls, pages)

    def _bulk_wait(self, sobject: str, job_id: str, timeout: float) -> tuple[dict[str, Any], int]:
        """Poll the job until ``JobComplete``; return its info and the number of polls."""
        started, waited, wait, polls = time.monotonic(), 0.0, BULK_FIRST_POLL, 0
        while True:
            self.sleep(wait)
            waited += wait
            info = self.get_json(f"jobs/query/{job_id}")
            polls += 1
            state = str(info.get("state"))
            if state == "JobComplete":
                return info, polls
            if state in BULK_DONE_STATES:
                reason = self._redact(str(info.get("errorMessage") or "Salesforce gave no errorMessage"))
                raise AptoBulkJobError(sobject, job_id, state, reason)
            if state not in ("UploadComplete", "InProgress"):
                raise AptoBulkJobError(sobject, job_id, state, "unknown job state")
            elapsed = max(time.monotonic() - started, waited)  # waited: the sleeps asked for (a test's no-op)
            if elapsed >= timeout:
                self._bulk_abort(sobject, job_id)
                raise AptoBulkJobError(sobject, job_id, state, f"not complete after {elapsed:.0f} s (timeout"
                                       f" {timeout:.0f} s, extra.bulk_timeout); the job was aborted")
            self.log.info("Apto: %s: bulk job %s %s (poll %d)", sobject, job_id, state, polls)
            wait = min(wait * 2, BULK_MAX_POLL, timeout - elapsed)

    def _bulk_abort(self, sobject: str, job_id: str) -> None:
        try:
            self.request("PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"})
        except AptoError as exc:
            self.log.warning("Apto: %s: could not abort bulk job %s (%s)", sobject, job_id, exc)

    # ---- metadata --------------------------------------------------------------------------------------

    def describe_global(self, *, refresh: bool = False) -> dict[str, Any]:
        """Return ``GET /sobjects`` (cached): ``{"sobjects": [{"name", "custom", ...}], ...}``."""
        if self._global is None or refresh:
            self._global = self.get_json("sobjects")
        return self._global

    def describe(self, sobject: str, *, refresh: bool = False) -> dict[str, Any]:
        """Return ``GET /sobjects/{sobject}/describe`` (cached per hook)."""
        _check_name("object", sobject)
        if sobject not in self._describes or refresh:
            self._describes[sobject] = self.get_json(f"sobjects/{sobject}/describe")
        return self._describes[sobject]

    def field_names(self, sobject: str) -> set[str]:
        """Names of the fields ``describe`` lists for ``sobject``."""
        return {f["name"] for f in self.describe(sobject).get("fields", [])}

    def custom_fields(self, sobject: str) -> list[dict[str, Any]]:
        """Return the custom fields of ``sobject``: name, type, label, length, precision, scale,
        picklistValues, referenceTo."""
        keys = ("name", "type", "label", "length", "precision", "scale", "picklistValues", "referenceTo")
        return [{k: f.get(k) for k in keys} for f in self.describe(sobject).get("fields", []) if f.get("custom")]

    def stage_picklist(self, record_type_id: str) -> list[dict[str, Any]]:
        """Return the StageName values a record type allows (``[{"label", "value", ...}]``, UI API)."""
        if not is_sf_id(record_type_id):
            raise ValueError(f"not a record type id: {record_type_id!r}")
        body = self.get_json(f"ui-api/object-info/Opportunity/picklist-values/{record_type_id}/StageName")
        return [_strip_attributes(v) for v in body.get("values", [])]

    # ---- namespace ---------------------------------------------------------------------------------------

    @cached_property
    def namespace(self) -> str:
        """The Apto package's namespace prefix: extra ``namespace``, else ``PackageLicense``, else the
        ``sobjects`` list. ``""`` when the org has no namespaced objects (fields then lose ``<ns>__``)."""
        if self.settings.namespace is not None:
            return self.settings.namespace
        try:
            licensed = sorted({r["NamespacePrefix"] for r in self.query("SELECT NamespacePrefix FROM PackageLicense")
                               if r.get("NamespacePrefix")})
        except AptoApiError as exc:  # PackageLicense not readable for this user: fall back to sobjects
            self.log.warning("Apto: PackageLicense not readable (%s); inferring the namespace", exc.error_code)
            licensed = []
        counts = self._namespace_counts()
        if len(licensed) == 1:
            ns = licensed[0]
        elif licensed:
            ns = max(licensed, key=lambda n: (counts.get(n, 0), n))
            if not counts.get(ns):
                raise AptoConfigurationError(
                    self.apto_conn_id,
                    f"several packages {licensed} and none has objects in the org; set extra.namespace")
        elif counts:
            ns = counts.most_common(1)[0][0]
        else:
            self.log.warning("Apto: no namespace found; fields are read without a prefix")
            ns = ""
        self.log.info("Apto: namespace %r (licensed packages %s)", ns, licensed or "unknown")
        return ns

    def _namespace_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for sobject in self.describe_global().get("sobjects", []):
            if m := re.match(r"^([A-Za-z][A-Za-z0-9]*)__\w+__(?:c|mdt|e|x|b)$", sobject.get("name", "")):
                counts[m.group(1)] += 1
        return counts

    def namespaced(self, name: str) -> str:
        """Replace the ``<ns>`` placeholder in a field, object or clause (``<ns>__`` drops without a namespace)."""
        return expand_namespace(name, self.namespace)

    # ---- deltas ----------------------------------------------------------------------------------------

    @staticmethod
    def _window_params(start: datetime, end: datetime) -> dict[str, str]:
        if soql_datetime(start) >= soql_datetime(end):
            raise ValueError("start must be before end")
        fmt = "%Y-%m-%dT%H:%M:%S+00:00"
        return {"start": start.astimezone(UTC).strftime(fmt), "end": end.astimezone(UTC).strftime(fmt)}

    def get_updated(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Return ``GET /sobjects/{sobject}/updated/``: ``{"ids": [...], "latestDateCovered"}`` (30 days back)."""
        _check_name("object", sobject)
        return self.get_json(f"sobjects/{sobject}/updated/", self._window_params(start, end))

    def get_deleted(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Return ``GET /sobjects/{sobject}/deleted/``: ``{"deletedRecords": [{"id", "deletedDate"}],
        "earliestDateAvailable", "latestDateCovered"}`` (15 days back at most)."""
        _check_name("object", sobject)
        if start < datetime.now(UTC) - timedelta(days=15):
            self.log.warning("Apto: %s deleted/ start %s is over 15 days back; use queryAll instead", sobject,
                             soql_datetime(start))
        return self.get_json(f"sobjects/{sobject}/deleted/", self._window_params(start, end))

    # ---- blobs -----------------------------------------------------------------------------------------

    def _blob_path(self, path: str) -> str:
        if path.startswith(("http://", "https://", "/services/")):
            return path
        rel = path.lstrip("/")
        return rel if rel.startswith("sobjects/") else f"sobjects/{rel}"

    def stream_download(self, path: str, *, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Yield the bytes of a blob in chunks, memory flat.

        :param path: ``ContentVersion/{id}/VersionData``, ``Attachment/{id}/Body``, or an API path.
        """
        resp = self.request("GET", self._blob_path(path), stream=True, headers={"Accept": "*/*"})
        try:
            yield from resp.iter_bytes(chunk_size)
        finally:
            resp.close()

    def download(self, path: str) -> bytes:
        """Return the bytes of a blob (small files; large ones go through :meth:`download_to`).

        A connection cut in the middle of the body is retried from the start (Salesforce documents
        no ``Range`` support for blobs), up to ``max_attempts`` times.
        """
        buf = io.BytesIO()
        self.download_to(path, buf)
        return buf.getvalue()

    def download_to(self, path: str, fileobj: IO[bytes], *, chunk_size: int = 1 << 16) -> DownloadResult:
        """Write a blob to ``fileobj`` chunk by chunk; return its size and SHA-256.

        A body cut short (a dropped connection, fewer bytes than ``Content-Length``) is downloaded
        again from the start: ``fileobj`` (seekable) is rewound to where it was and truncated.
        """
        start = fileobj.tell()
        for attempt in range(1, self.max_attempts + 1):
            digest, size = hashlib.sha256(), 0
            try:
                for chunk in self.stream_download(path, chunk_size=chunk_size):
                    fileobj.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                return DownloadResult(size=size, sha256=digest.hexdigest())
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt >= self.max_attempts:
                    raise AptoUnavailableError("GET", self._blob_path(path), attempt,
                                               f"download cut after {size} bytes: {type(exc).__name__}") from None
                self.log.warning("Apto: download of %s cut after %d bytes (%s); downloading it again (%d/%d)",
                                 self._blob_path(path), size, type(exc).__name__, attempt + 1, self.max_attempts)
                fileobj.seek(start)
                fileobj.truncate()
                self.sleep(min(2.0 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")  # pragma: no cover


def expand_namespace(text: str, ns: str) -> str:
    """Replace ``<ns>`` with ``ns``; with no namespace, ``<ns>__`` disappears (an unmanaged org)."""
    if ns:
        return text.replace("<ns>", ns)
    return text.replace("<ns>__", "").replace("<ns>", "")
