"""``LinkAppTenant``: the sandbox's state (records, files, delete log, faults, rate limit, stats) and the
Link app API behaviour over it (``specs/link-app-api.md``), independent of HTTP; the server maps
requests onto its methods.

API methods return the JSON payload or raise :class:`ApiError`, whose ``payload`` is the spec's
``{"error": {"code", "message"}}``.

Listing is keyset-paged: records are ordered by ``(updated_at, id)`` and the opaque cursor is the last
``(updated_at, id)`` a page returned; the next page starts strictly after it. A record changed while a
client pages gets a later ``updated_at``, so it moves behind the cursor (it shows up again, later in
this listing or in a later window) and no other record moves: nothing is skipped, a deletion included.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import hmac
import json
import math
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .generator import FIELDS, RESOURCES, TenantData, generate_tenant, iso, parse_ts

DEFAULT_TOKEN = "link-sandbox-token"
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
DELETED_KEPT = timedelta(days=30)
SIGNED_URL_SECONDS = 300
FAULT_KINDS = frozenset({"status", "drop", "unauthorized", "delay"})
#: Mutation-only keys of an attachment row: the file's bytes, and whether its download redirects.
FILE_KEYS = frozenset({"_content_base64", "_redirect"})


class ApiError(Exception):
    """An answer in the spec's error shape ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    @property
    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def bad_param(message: str) -> ApiError:
    return ApiError(400, "invalid_param", message)


@dataclass
class Fault:
    """An injected fault for the next ``count`` requests whose path contains ``match``.

    ``kind``: ``status`` (answer ``status``: 429 with ``Retry-After``, 502/503/504 ...), ``drop`` (close
    the connection without an answer), ``unauthorized`` (401, the spec's body), ``delay`` (sleep
    ``delay`` seconds, then answer normally). ``match`` None: any ``/api/v1`` or ``/cdn`` request.
    """

    kind: str
    count: int = 1
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    match: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "status": self.status, "retry_after": self.retry_after,
                "delay": self.delay, "match": self.match}


@dataclass(frozen=True)
class FileAnswer:
    """What the CDN answers for an attachment: the bytes, or a redirect (``location``)."""

    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    file_name: str = ""
    location: str | None = None


def _encode_cursor(kind: str, key: Sequence[str]) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(kind: str, cursor: str, size: int) -> tuple[str, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == size + 1 and value[0] == kind
            and all(isinstance(v, str) for v in value[1:])):
        raise ApiError(400, "invalid_cursor", f"cursor {cursor!r} is not a cursor of {kind}")
    return tuple(value[1:])


def _bound(raw: str | None, name: str) -> str | None:
    """A window bound as the canonical stamp a stored ``updated_at`` compares against (rounded up to whole
    seconds: stored stamps are whole seconds, so ``u >= ceil(T)`` is ``u >= T`` and ``u < ceil(U)`` is ``u < U``)."""
    if raw is None or raw == "":
        return None
    try:
        ts = parse_ts(raw.replace(" ", "+"))      # a raw "+00:00" in a query string arrives as " 00:00"
    except ValueError:
        raise bad_param(f"{name} must be an ISO 8601 timestamp with an offset, got {raw!r}") from None
    if ts.microsecond:
        ts = ts.replace(microsecond=0) + timedelta(seconds=1)
    return iso(ts)


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        n = int(raw)
    except ValueError:
        raise bad_param(f"limit must be an integer 1..{MAX_LIMIT}, got {raw!r}") from None
    if not 1 <= n <= MAX_LIMIT:
        raise bad_param(f"limit must be 1..{MAX_LIMIT}, got {n}")
    return n


class LinkAppTenant:
    """A generated Link app tenant behind the REST API of ``specs/link-app-api.md``.

    :param scale: size multiplier (1: ~40 companies, 120 contacts, 80 deals, 400 activities, 30 attachments).
    :param seed: generator seed.
    :param as_of: the generator's reference time (default: today 00:00 UTC); every generated
        ``updated_at`` is before it.
    :param token: the bearer token the API accepts.
    :param rate_limit: requests per ``rate_window`` seconds before ``429`` (``X-RateLimit-Remaining``).
    :param base_url: the server's URL, for attachment ``url`` fields outside a request.
    :param profile: ``default``, or ``variant``: a renamed field and more custom fields (``generator._variant``).
    :param download_latency: seconds every ``/cdn/`` answer waits first (a CDN's round trip; 0: none).
    """

    def __init__(self, scale: int = 1, seed: int = 7, *, as_of: datetime | None = None,
                 token: str = DEFAULT_TOKEN, rate_limit: int = 10_000, rate_window: float = 60.0,
                 base_url: str = "", profile: str = "default", download_latency: float = 0.0) -> None:
        self.scale, self.seed, self.profile = scale, seed, profile
        self.download_latency = float(download_latency)
        self.token, self.base_url = token, base_url
        self.lock = threading.RLock()
        self.clock: datetime | None = None            # set to freeze "now" (mutation stamps, retention)
        self._secret = hashlib.sha256(f"link-app-sandbox:{seed}".encode()).digest()
        self._initial_rate = (rate_limit, rate_window)
        self._load(generate_tenant(scale, seed, as_of, profile))

    # ------------------------------------------------------------------------------------- state
    def _load(self, data: TenantData) -> None:
        self.data = data
        self.tables = data.tables
        self._order: dict[str, list[tuple[str, str]]] = {}
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self._downloads = 0                             # /cdn/ answers under way
        self.rate_limit, self.rate_window = self._initial_rate
        self._rate_used, self._rate_reset = 0, time.monotonic() + self.rate_window

    def reset(self) -> None:
        """Regenerate the tenant as first generated; clear faults, stats, the rate-limit window and the clock."""
        with self.lock:
            self.clock = None
            self._load(generate_tenant(self.scale, self.seed, self.data.as_of, self.profile))

    @property
    def as_of(self) -> datetime:
        return self.data.as_of

    @property
    def hard_cases(self) -> dict[str, Any]:
        return self.data.hard_cases

    def now(self) -> datetime:
        return self.clock or datetime.now(UTC)

    # -------------------------------------------------------------------------------------- auth
    def check_auth(self, authorization: str | None) -> None:
        """Accept ``Authorization: Bearer <token>``; else raise the spec's 401."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if not authorization:
            raise ApiError(401, "unauthorized", "missing bearer token", {"WWW-Authenticate": "Bearer"})
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            raise ApiError(401, "unauthorized", "invalid or expired token",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    # -------------------------------------------------------------------------------- rate limit
    def _roll_rate(self) -> float:
        now = time.monotonic()
        if now >= self._rate_reset:
            self._rate_used, self._rate_reset = 0, now + self.rate_window
        return now

    def take_rate(self) -> None:
        """Count one request against the window; past the limit raise ``429`` with ``Retry-After``."""
        with self.lock:
            now = self._roll_rate()
            if self._rate_used >= self.rate_limit:
                self.events["rate_limited"] += 1
                wait = max(1, math.ceil(self._rate_reset - now))
                raise ApiError(429, "rate_limited", f"rate limit of {self.rate_limit} requests per "
                               f"{self.rate_window:g}s exceeded", {"Retry-After": str(wait)})
            self._rate_used += 1

    def rate_remaining(self) -> int:
        with self.lock:
            self._roll_rate()
            return max(0, self.rate_limit - self._rate_used)

    def set_rate_limit(self, limit: int | None = None, window: float | None = None) -> dict[str, Any]:
        """Change the limit and/or window length; a new window starts now."""
        with self.lock:
            if limit is not None:
                self.rate_limit = int(limit)
            if window is not None:
                self.rate_window = float(window)
            self._rate_used, self._rate_reset = 0, time.monotonic() + self.rate_window
            return {"limit": self.rate_limit, "window": self.rate_window, "remaining": self.rate_limit}

    # ---------------------------------------------------------------------------- faults, stats
    def inject_fault(self, kind: str = "status", count: int = 1, *, status: int = 503,
                     retry_after: float | None = None, delay: float = 0.0, match: str | None = None) -> Fault:
        """Make the next ``count`` requests (whose path contains ``match``) fail; see :class:`Fault`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (one of {sorted(FAULT_KINDS)})")
        if kind == "status" and not 400 <= int(status) <= 599:
            raise ValueError(f"fault status must be 4xx or 5xx, got {status}")
        if kind == "status" and int(status) == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(kind, int(count), int(status), retry_after, float(delay), match)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if (f.match in path) if f.match else path.startswith(("/api/v1", "/cdn/")):
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    self.events[f"fault:{f.kind}" + (f":{f.status}" if f.kind == "status" else "")] += 1
                    return f
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def count_request(self, path: str) -> None:
        with self.lock:
            self.requests[path] += 1

    @contextlib.contextmanager
    def downloading(self) -> Iterator[None]:
        """Around one ``/cdn/`` answer: the most answered at once is the event ``downloads_at_once``."""
        with self.lock:
            self._downloads += 1
            self.events["downloads_at_once"] = max(self.events["downloads_at_once"], self._downloads)
        try:
            yield
        finally:
            with self.lock:
                self._downloads -= 1

    def count_status(self, status: int) -> None:
        with self.lock:
            self.statuses[str(status)] += 1

    def get_stats(self) -> dict[str, Any]:
        """Requests per path (API and CDN), answers per status, faults fired, the rate-limit window."""
        with self.lock:
            return {"requests": dict(sorted(self.requests.items())), "total": sum(self.requests.values()),
                    "statuses": dict(sorted(self.statuses.items())), "events": dict(sorted(self.events.items())),
                    "faults": [f.to_dict() for f in self.faults],
                    "rate_limit": {"limit": self.rate_limit, "window": self.rate_window,
                                   "remaining": self.rate_remaining()}}

    def reset_stats(self) -> None:
        """Forget request, status and event counts (faults and the rate-limit window stay)."""
        with self.lock:
            self.requests.clear()
            self.statuses.clear()
            self.events.clear()

    # --------------------------------------------------------------------------------------- API
    def _table(self, resource: str) -> dict[str, dict[str, Any]]:
        if resource not in self.tables:
            raise not_found(f"resource {resource!r}")
        return self.tables[resource]

    def _keys(self, resource: str) -> list[tuple[str, str]]:
        keys = self._order.get(resource)
        if keys is None:
            keys = self._order[resource] = sorted((r["updated_at"], r["id"]) for r in self.tables[resource].values())
        return keys

    def _render(self, resource: str, rec: Mapping[str, Any], base: str | None) -> dict[str, Any]:
        out = copy.deepcopy(dict(rec))
        if resource == "attachments":
            out = {k: v for k, v in out.items() if k not in {"created_at", "updated_at"}}
            out["url"] = self.file_url(rec, base)
            out.update(created_at=rec["created_at"], updated_at=rec["updated_at"])
        return out

    def file_url(self, rec: Mapping[str, Any], base: str | None = None) -> str:
        return f"{base if base is not None else self.base_url}/cdn/files/{rec['id']}/{quote(rec['file_name'] or 'file')}"

    def list_page(self, resource: str, params: Mapping[str, str] | None = None, base: str | None = None) -> dict[str, Any]:
        """``GET /api/v1/{resource}``: one page of records with ``updated_at`` in ``[updated_since, updated_before)``."""
        params = params or {}
        limit = _limit(params.get("limit"))
        since = _bound(params.get("updated_since"), "updated_since")
        before = _bound(params.get("updated_before"), "updated_before")
        if since is not None and before is not None and since > before:
            raise bad_param("updated_since must not be after updated_before")
        with self.lock:
            table = self._table(resource)
            keys = self._keys(resource)
            lo = bisect_left(keys, (since,)) if since else 0
            if params.get("cursor"):
                lo = max(lo, bisect_right(keys, _decode_cursor(resource, params["cursor"], 2)))
            hi = bisect_left(keys, (before,)) if before else len(keys)
            page = keys[lo:min(lo + limit, hi)]
            data = [self._render(resource, table[rid], base) for _, rid in page]
            more = lo + limit < hi
        return {"data": data, "next_cursor": _encode_cursor(resource, page[-1]) if more and page else None}

    def get(self, resource: str, record_id: str, base: str | None = None) -> dict[str, Any]:
        """``GET /api/v1/{resource}/{id}``."""
        with self.lock:
            rec = self._table(resource).get(record_id)
            if rec is None:
                raise not_found(f"{resource} {record_id!r}")
            return self._render(resource, rec, base)

    def deleted(self, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``GET /api/v1/deleted?since=T``: ``{resource, id, deleted_at}`` deleted at or after T (kept 30 days)."""
        params = params or {}
        since = _bound(params.get("since"), "since")
        if since is None:
            raise bad_param("since is required (an ISO 8601 timestamp)")
        limit = _limit(params.get("limit"))
        with self.lock:
            start = max(since, iso(self.now() - DELETED_KEPT))
            after = _decode_cursor("deleted", params["cursor"], 3) if params.get("cursor") else None
            rows = [d for d in self.data.deleted if d["deleted_at"] >= start
                    and (after is None or (d["deleted_at"], d["resource"], d["id"]) > after)]
            page = [dict(d) for d in rows[:limit]]
        more = len(rows) > limit
        last = page[-1] if page else None
        cursor = _encode_cursor("deleted", (last["deleted_at"], last["resource"], last["id"])) if more and last else None
        return {"data": page, "next_cursor": cursor}

    # ------------------------------------------------------------------------------------- files
    def _sign(self, att_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{att_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def download(self, att_id: str, base: str | None = None) -> FileAnswer:
        """``GET /cdn/files/{id}/{name}``: the bytes, a 302 to a signed URL, or 404 (no record or no file)."""
        with self.lock:
            rec = self.tables["attachments"].get(att_id)
            if rec is None:
                raise not_found(f"file {att_id!r}")
            if att_id in self.data.redirects:
                expires = int(time.time()) + SIGNED_URL_SECONDS
                loc = (f"{base if base is not None else self.base_url}/cdn/signed/{att_id}/"
                       f"{quote(rec['file_name'] or 'file')}?expires={expires}&sig={self._sign(att_id, expires)}")
                return FileAnswer(302, location=loc)
            return self._file(rec)

    def signed_download(self, att_id: str, expires: str | None, sig: str | None) -> FileAnswer:
        """``GET /cdn/signed/{id}/{name}?expires&sig``: the redirect target; the signature is the credential."""
        try:
            exp = int(expires or "")
        except ValueError:
            exp = 0
        if exp < time.time() or not hmac.compare_digest(self._sign(att_id, exp), sig or ""):
            raise ApiError(403, "forbidden", "signature invalid or expired")
        with self.lock:
            rec = self.tables["attachments"].get(att_id)
            if rec is None:
                raise not_found(f"file {att_id!r}")
            return self._file(rec)

    def _file(self, rec: Mapping[str, Any]) -> FileAnswer:
        data = self.data.files.get(rec["id"])
        if data is None:
            raise not_found(f"file of attachment {rec['id']!r}")
        return FileAnswer(200, data, rec.get("content_type") or "application/octet-stream", rec.get("file_name") or "")

    # ------------------------------------------------------------------------- admin: mutations
    def _stamp(self, at: str | datetime | None) -> str:
        if at is None:
            return iso(self.now())
        try:
            return iso(at if isinstance(at, datetime) else parse_ts(at))
        except (ValueError, TypeError):
            raise bad_param(f"timestamp must be ISO 8601 with an offset, got {at!r}") from None

    def _values(self, resource: str, row: Mapping[str, Any], *, extra: frozenset[str] = frozenset()) -> dict[str, Any]:
        allowed = set(FIELDS[resource]) | (FILE_KEYS if resource == "attachments" else set()) | extra
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise ApiError(400, "invalid_field", f"{resource} has no writable field {unknown}")
        return {k: v for k, v in row.items() if k not in FILE_KEYS and k != "id"}

    def _touch(self, resource: str) -> None:
        self._order.pop(resource, None)

    def _set_file(self, rec: dict[str, Any], row: Mapping[str, Any]) -> None:
        if row.get("_redirect") is not None:
            (self.data.redirects.add if row["_redirect"] else self.data.redirects.discard)(rec["id"])
        if row.get("_content_base64") is not None:
            data = base64.b64decode(row["_content_base64"])
        elif rec["id"] in self.data.files and "size_bytes" not in row:
            return
        else:
            data = b"\0" * int(rec.get("size_bytes") or 0)
        self.data.files[rec["id"]] = data
        rec["size_bytes"] = len(data)

    def create(self, resource: str, rows: Sequence[Mapping[str, Any]], at: str | datetime | None = None) -> list[str]:
        """Create records (an ``id`` is assigned unless given); ``created_at`` = ``updated_at`` = ``at`` or now."""
        stamp = self._stamp(at)
        ids = []
        with self.lock:
            table = self._table(resource)
            for row in rows:
                values = self._values(resource, row, extra=frozenset({"id"}))
                rid = str(row.get("id") or "")
                if rid and rid in table:
                    raise ApiError(409, "conflict", f"{resource} {rid!r} exists")
                if not rid:
                    while str(self.data.next_ids[resource]) in table:
                        self.data.next_ids[resource] += 1
                    rid = str(self.data.next_ids[resource])
                    self.data.next_ids[resource] += 1
                rec: dict[str, Any] = {"id": rid, **dict.fromkeys(FIELDS[resource])}
                if "custom_fields" in rec:
                    rec["custom_fields"] = {}
                rec.update(values)
                rec.update(created_at=stamp, updated_at=stamp)
                table[rid] = rec
                if resource == "attachments":
                    self._set_file(rec, {"size_bytes": rec.get("size_bytes"), **row})
                ids.append(rid)
            self._touch(resource)
        return ids

    def update(self, resource: str, rows: Sequence[Mapping[str, Any]], at: str | datetime | None = None) -> list[str]:
        """Update records given as ``{"id": ..., field: value}``; ``updated_at`` becomes ``at`` or now."""
        stamp = self._stamp(at)
        ids = []
        with self.lock:
            table = self._table(resource)
            for row in rows:
                rid = str(row.get("id", ""))
                rec = table.get(rid)
                if rec is None:
                    raise not_found(f"{resource} {rid!r}")
                rec.update(self._values(resource, row, extra=frozenset({"id"})))
                rec["updated_at"] = stamp
                if resource == "attachments":
                    self._set_file(rec, row)
                ids.append(rid)
            self._touch(resource)
        return ids

    def delete(self, resource: str, record_ids: Sequence[str], at: str | datetime | None = None) -> list[str]:
        """Delete records (gone from listings and ``GET``, logged in ``deleted`` at ``at`` or now); deleting a
        contact or a company deletes its ``contact_companies`` links too (logged as well)."""
        return self._delete(resource, record_ids, self._stamp(at)).get(resource, [])

    def _delete(self, resource: str, record_ids: Sequence[str], stamp: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.lock:
            table = self._table(resource)
            missing = [str(r) for r in record_ids if str(r) not in table]
            if missing:
                raise not_found(f"{resource} {missing}")
            ref = {"contacts": "contact_id", "companies": "company_id"}.get(resource)
            for raw in record_ids:
                rid = str(raw)
                del table[rid]
                self._log_delete(resource, rid, stamp)
                out.setdefault(resource, []).append(rid)
                if ref:
                    links = self.tables["contact_companies"]
                    for lid in [lid for lid, link in links.items() if link[ref] == rid]:
                        del links[lid]
                        self._log_delete("contact_companies", lid, stamp)
                        out.setdefault("contact_companies", []).append(lid)
            self._touch(resource)
            self._touch("contact_companies")
        return out

    def _log_delete(self, resource: str, rid: str, stamp: str) -> None:
        entry = {"resource": resource, "id": rid, "deleted_at": stamp}
        log = self.data.deleted
        keys = [(d["deleted_at"], d["resource"], d["id"]) for d in log]
        log.insert(bisect_right(keys, (stamp, resource, rid)), entry)

    def mutate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{"creates": {resource: [rows]}, "updates": {resource: [rows with id]}, "deletes":
        {resource: [ids]}, "timestamp": optional ISO stamp}`` in that order, stamped with ``timestamp``
        or now; return ``{"created", "updated", "deleted": {resource: [ids]}, "timestamp"}``."""
        with self.lock:
            stamp = self._stamp(payload.get("timestamp"))
            out: dict[str, Any] = {"created": {}, "updated": {}, "deleted": {}, "timestamp": stamp}
            for key in ("creates", "updates", "deletes"):
                for resource in payload.get(key) or {}:
                    if resource not in RESOURCES:
                        raise ApiError(400, "invalid_resource", f"{key}: no resource {resource!r}")
            for resource, rows in (payload.get("creates") or {}).items():
                out["created"][resource] = self.create(resource, rows, stamp)
            for resource, rows in (payload.get("updates") or {}).items():
                out["updated"][resource] = self.update(resource, rows, stamp)
            for resource, ids in (payload.get("deletes") or {}).items():
                for res, gone in self._delete(resource, ids, stamp).items():
                    out["deleted"].setdefault(res, []).extend(gone)
            return out

    # -------------------------------------------------------------------------------------- info
    def odoo_users(self, password: str = "sandbox") -> list[dict[str, str]]:
        """Users for ``crm_sandbox.odoo.server.serve(users=...)`` so that owners with an ``@example.com``
        email find their Odoo user (``admin`` always exists there)."""
        users = self.tables["users"].values()
        names = {(u["email"] or "").lower().split("@")[0]: u["name"] for u in users}
        return [{"login": login, "password": password, "name": names.get(login, login)} for login in self.data.odoo_logins]

    def airflow_conn(self, url: str = "") -> dict[str, Any]:
        """The ``link_app_default`` connection for this sandbox, as ``AIRFLOW_CONN_*`` JSON."""
        return {"conn_type": "link_app", "host": url or self.base_url, "password": self.token,
                "extra": {"page_size": DEFAULT_LIMIT}}

    def info(self, url: str = "") -> dict[str, Any]:
        with self.lock:
            return {"scale": self.scale, "seed": self.seed, "as_of": iso(self.as_of), "url": url or self.base_url,
                    "token": self.token, "counts": self.data.counts(), "deleted": len(self.data.deleted),
                    "hard_cases": copy.deepcopy(self.hard_cases), "odoo_logins": list(self.data.odoo_logins),
                    "rate_limit": {"limit": self.rate_limit, "window": self.rate_window}}
