"""Pieces every httpx-based hook shares: the base URL rule, Retry-After, and one tenacity policy.

Kept free of any one API's knowledge: a hook decides *what* is transient (its named predicate) and
what a server-side "wait" looks like (an exception with a ``retry_after`` attribute, or an
``httpx.HTTPStatusError`` carrying a ``Retry-After`` header); this module decides *how* to wait.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import tenacity

from crm_migration.errors import ConfigurationError

if TYPE_CHECKING:
    from airflow.sdk.definitions.connection import Connection

#: HTTP statuses worth another try: rate limited, or a proxy/upstream that is briefly unavailable.
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
#: Upper bound of any single wait, Retry-After included: longer pauses belong to Airflow's retries.
MAX_WAIT_SECONDS = 60.0
#: Exponential backoff when the server names no wait: 0.5 s, 1 s, 2 s ... capped at this.
MAX_BACKOFF_SECONDS = 30.0
#: Files a load downloads at a time (connection extra ``download_workers``): each costs a round trip to a CDN or
#: to Salesforce, so a batch's files go concurrently; bounded, as the source's rate limit is shared.
DEFAULT_DOWNLOAD_WORKERS = 8
MAX_DOWNLOAD_WORKERS = 32


def base_url(conn: Connection, *, scheme: str | None = None) -> str:
    """Return the connection's base URL without a trailing slash (HttpHook's rule).

    A host containing ``://`` is taken as is; otherwise ``<scheme>://<host>[:<port>]``, where the
    scheme is ``scheme`` when given, else ``conn.schema``, else ``http``. Connection types whose
    ``schema`` means something else (Odoo: the database) pass ``scheme`` explicitly.
    """
    host = (conn.host or "").strip()
    if not host:
        raise ConfigurationError(f"connection {conn.conn_id!r} has no host (the server URL)")
    if "://" not in host:
        host = f"{scheme or conn.schema or 'http'}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    return host.rstrip("/")


def download_workers(conn_id: str, raw: Any) -> int:
    """A connection's ``extra.download_workers`` (files downloaded at a time, ``raw`` as given), 1..32; default 8."""
    if raw in (None, ""):
        return DEFAULT_DOWNLOAD_WORKERS
    try:
        workers = int(raw)
    except (TypeError, ValueError):
        workers = 0
    if not 1 <= workers <= MAX_DOWNLOAD_WORKERS or str(raw).strip() != str(workers):
        raise ConfigurationError(f"connection {conn_id!r}: extra.download_workers must be a whole number "
                                 f"1..{MAX_DOWNLOAD_WORKERS}, got {raw!r}")
    return workers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped; None if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def retry_after_of(exc: BaseException | None) -> float | None:
    """The wait the server asked for, if ``exc`` carries one."""
    after = getattr(exc, "retry_after", None)
    if after is None and isinstance(exc, httpx.HTTPStatusError):
        after = parse_retry_after(exc.response.headers.get("Retry-After"))
    return None if after is None else min(float(after), MAX_WAIT_SECONDS)


def wait_seconds(exc: BaseException | None, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): Retry-After, else backoff."""
    if (after := retry_after_of(exc)) is not None:
        return after
    return min(0.5 * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)


def wait_retry_after(state: tenacity.RetryCallState) -> float:
    """tenacity ``wait=``: what the server asked for (Retry-After), else exponential backoff."""
    return wait_seconds(state.outcome.exception() if state.outcome else None, state.attempt_number)


def retrying(predicate: Callable[[BaseException], bool], *, attempts: int,
             sleep: Callable[[float], Any] = time.sleep, log: Any = None,
             what: str = "request") -> tenacity.Retrying:
    """A tenacity policy: retry while ``predicate(exc)``, at most ``attempts`` tries, re-raise the last.

    :param sleep: injectable for tests.
    :param log: logger; one warning line per retry (what failed, the wait, the attempt number).
    """
    logger = log or logging.getLogger(__name__)

    def _before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning("%s failed (%s); retry %d/%d in %.1fs", what, exc, state.attempt_number,
                       attempts - 1, wait)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(predicate),
        wait=wait_retry_after,
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        sleep=sleep,
        before_sleep=_before_sleep,
        reraise=True,
    )
