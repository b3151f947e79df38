"""LinkAppHook: the Link app REST API (``../shared/specs/link-app-api.md``), over one httpx client.

Listing is a generator over cursor pages bounded by the half-open window ``[since, before)``;
transient faults (429 with Retry-After, 502/503/504, timeouts, dropped connections) are retried
with short waits; 401 and other 4xx are caller errors and raise at once. The token never appears in
a log line, an exception or a repr; nor does a signed download URL's query.

Safe for concurrent use (a load downloads a batch's files on several threads): one httpx client (thread-safe),
made once under a lock; each call retries on its own, a 429 waiting the ``Retry-After`` it was given.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cached_property
from typing import IO, Any
from urllib.parse import quote

import httpx
from airflow.sdk import BaseHook

from crm_migration.errors import ConfigurationError, CrmMigrationError
from crm_migration.hooks._http import RETRYABLE_STATUS, base_url, download_workers, retrying


class LinkAppError(CrmMigrationError):
    """An error answered by the Link app API."""

    def __init__(self, status: int, code: str, message: str, *, path: str = "") -> None:
        self.status, self.code, self.message, self.path = status, code, message, path
        super().__init__(f"Link app {path}: HTTP {status} {code}: {message}")


class LinkAppAuthError(LinkAppError):
    """The token is missing, bad or expired (401): never retried."""


class LinkAppUnavailableError(LinkAppError):
    """Transient faults (429, 502/503/504, timeouts, dropped connections) outlasted every retry."""


class PaginationLoopError(CrmMigrationError):
    """The API answered the same cursor twice: paging would never end."""

    def __init__(self, resource: str, cursor: str) -> None:
        super().__init__(f"Link app {resource}: cursor {cursor!r} repeated; stopping to avoid a loop")


def is_retryable(exc: BaseException) -> bool:
    """Transient: timeouts, dropped connections, 429 and 502/503/504."""
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in RETRYABLE_STATUS


def _iso(ts: datetime) -> str:
    """``2024-03-05T14:02:11Z``: the API wants an offset, so a naive datetime is refused, never guessed."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"Link app windows need timezone-aware datetimes, got naive {ts.isoformat()}")
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class LinkAppHook(BaseHook):
    """Read records from a Link app tenant.

    :param link_app_conn_id: connection id (type ``link_app``; host = base URL, password = token).
    :param transport: an httpx transport to use instead of the network (tests).
    """

    conn_name_attr = "link_app_conn_id"
    default_conn_name = "link_app_default"
    conn_type = "link_app"
    hook_name = "Link app"

    def __init__(self, link_app_conn_id: str = default_conn_name, *,
                 transport: httpx.BaseTransport | None = None, max_attempts: int = 5,
                 sleep: Any = None) -> None:
        super().__init__()
        self.link_app_conn_id, self._transport = link_app_conn_id, transport
        self.max_attempts = max_attempts
        self._sleep = sleep
        self.calls = 0                      # requests sent (retries included)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"LinkAppHook(conn_id={self.link_app_conn_id!r})"

    @cached_property
    def _conn(self) -> Any:
        return self.get_connection(self.link_app_conn_id)

    @cached_property
    def page_size(self) -> int:
        extra = self._conn.extra_dejson
        size = int(extra.get("page_size") or extra.get("extra__link_app__page_size") or 100)
        if not 1 <= size <= 500:
            raise ConfigurationError(f"connection {self.link_app_conn_id!r}: page_size must be 1..500, got {size}")
        return size

    @cached_property
    def download_workers(self) -> int:
        """Files downloaded at a time (``extra.download_workers``; 8)."""
        extra = self._conn.extra_dejson
        return download_workers(self.link_app_conn_id, extra.get("download_workers"))

    @property
    def client(self) -> httpx.Client:
        """The one HTTP client, made on first use (under a lock: threads share it)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    conn = self._conn
                    if not conn.password:
                        raise LinkAppAuthError(401, "unauthorized",
                                               f"connection {self.link_app_conn_id!r} has no API token")
                    extra = conn.extra_dejson
                    timeout = float(extra.get("timeout") or extra.get("extra__link_app__timeout") or 30)
                    self._client = httpx.Client(
                        base_url=f"{base_url(conn)}/api/v1",
                        headers={"Authorization": f"Bearer {conn.password}", "Accept": "application/json"},
                        timeout=timeout, transport=self._transport, follow_redirects=True)
        return self._client

    def _request(self, method: str, path: str, *, stream: bool = False, **kw: Any) -> httpx.Response:
        """Send one call, retrying transient faults (Retry-After honoured); API errors raise ``LinkAppError``
        with the API's code and message (401: :class:`LinkAppAuthError`, never retried)."""
        label = httpx.URL(path).path if "://" in path else path

        def once() -> httpx.Response:
            with self._lock:
                self.calls += 1
            resp = self.client.send(self.client.build_request(method, path, **kw), stream=stream)
            if resp.status_code >= 400:
                resp.read()
                resp.close()
            if resp.status_code in RETRYABLE_STATUS:       # the message names the path, never a signed URL's query
                raise httpx.HTTPStatusError(f"HTTP {resp.status_code} for {label}", request=resp.request,
                                            response=resp)
            if resp.status_code >= 400:
                try:
                    err = resp.json().get("error", {})
                except ValueError:
                    err = {}
                err = err if isinstance(err, dict) else {}
                cls = LinkAppAuthError if resp.status_code == 401 else LinkAppError
                raise cls(resp.status_code, err.get("code", "http_error"), err.get("message", resp.reason_phrase),
                          path=label)
            return resp

        kwargs = {"sleep": self._sleep} if self._sleep else {}
        policy = retrying(is_retryable, attempts=self.max_attempts, log=self.log, what=f"Link app {method} {label}",
                          **kwargs)
        try:
            return policy(once)
        except httpx.HTTPStatusError as exc:
            raise LinkAppUnavailableError(exc.response.status_code, "unavailable",
                                          f"still HTTP {exc.response.status_code} after {self.max_attempts} attempts",
                                          path=label) from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise LinkAppUnavailableError(0, "unreachable", f"{type(exc).__name__} after {self.max_attempts} "
                                          "attempts", path=label) from None

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, params=params).json()

    def get(self, resource: str, record_id: str) -> dict[str, Any] | None:
        """Return one record, or None when the API answers 404."""
        try:
            return self.get_json(f"/{resource}/{quote(str(record_id), safe='')}")
        except LinkAppError as exc:
            if exc.status == 404:
                return None
            raise

    def iter_records(self, resource: str, *, since: datetime | None = None, before: datetime | None = None,
                     limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield records of ``resource`` with ``updated_at`` in ``[since, before)``, page by page."""
        params: dict[str, Any] = {"limit": limit or self.page_size}
        if since is not None:
            params["updated_since"] = _iso(since)
        if before is not None:
            params["updated_before"] = _iso(before)
        seen = 0
        while True:
            page = self.get_json(f"/{resource}", params)
            data = page.get("data") or []
            seen += len(data)
            yield from data
            cursor = page.get("next_cursor")
            self.log.info("Link app %s: %d records so far%s", resource, seen, "" if cursor else " (done)")
            if not cursor:
                return
            if cursor == params.get("cursor"):
                raise PaginationLoopError(resource, cursor)
            params["cursor"] = cursor

    def iter_deleted(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Yield ``{resource, id, deleted_at}`` for records deleted since ``since``."""
        params: dict[str, Any] = {"since": _iso(since)}
        while True:
            page = self.get_json("/deleted", params)
            yield from page.get("data") or []
            cursor = page.get("next_cursor")
            if not cursor:
                return
            if cursor == params.get("cursor"):
                raise PaginationLoopError("deleted", cursor)
            params["cursor"] = cursor

    def stream_download(self, url: str, *, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream the bytes of an attachment URL (same bearer token; redirects followed). The answer's
        start is retried like any call; 404 raises :class:`LinkAppError` (the file is missing)."""
        resp = self._request("GET", url, stream=True)
        try:
            yield from resp.iter_bytes(chunk_size)
        finally:
            resp.close()

    def download(self, url: str) -> bytes:
        """The bytes of an attachment URL; a body cut half way is downloaded again whole."""
        buf = io.BytesIO()
        self.download_to(url, buf)
        return buf.getvalue()

    def download_to(self, url: str, fileobj: IO[bytes], *, chunk_size: int = 1 << 16) -> int:
        """Write an attachment to ``fileobj`` (seekable); return its size. A body cut short (a dropped
        connection) is downloaded again from the start, ``fileobj`` rewound and truncated, up to
        ``max_attempts`` times."""
        start = fileobj.tell()
        for attempt in range(1, self.max_attempts + 1):
            size = 0
            try:
                for chunk in self.stream_download(url, chunk_size=chunk_size):
                    fileobj.write(chunk)
                    size += len(chunk)
                return size
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                label = httpx.URL(url).path
                if attempt >= self.max_attempts:
                    raise LinkAppUnavailableError(0, "download_cut", f"cut after {size} bytes ({type(exc).__name__}) "
                                                  f"{attempt} times", path=label) from None
                self.log.warning("Link app: download of %s cut after %d bytes (%s); downloading it again (%d/%d)",
                                 label, size, type(exc).__name__, attempt + 1, self.max_attempts)
                fileobj.seek(start)
                fileobj.truncate()
                (self._sleep or time.sleep)(min(2.0 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")  # pragma: no cover
