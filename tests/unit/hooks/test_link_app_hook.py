"""LinkAppHook without network: httpx.MockTransport, connection from AIRFLOW_CONN_*."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest

from crm_migration.hooks.link_app import LinkAppAuthError, LinkAppError, LinkAppHook, PaginationLoopError

T0 = datetime(2024, 3, 1, tzinfo=UTC)
T1 = datetime(2024, 3, 2, tzinfo=UTC)
TOKEN = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT",
                       f'{{"conn_type": "link_app", "host": "http://link.test", "password": "{TOKEN}", '
                       '"extra": {"page_size": 2}}')


def hook_with(handler) -> tuple[LinkAppHook, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    return LinkAppHook(transport=httpx.MockTransport(record), sleep=lambda s: None), sent


def test_pages_are_followed_with_the_window_and_token():
    pages = iter([
        {"data": [{"id": "c1"}, {"id": "c2"}], "next_cursor": "k1"},
        {"data": [{"id": "c3"}], "next_cursor": None},
    ])
    hook, sent = hook_with(lambda r: httpx.Response(200, json=next(pages)))
    assert [r["id"] for r in hook.iter_records("contacts", since=T0, before=T1)] == ["c1", "c2", "c3"]
    assert sent[0].url.path == "/api/v1/contacts"
    assert sent[0].url.params["updated_since"] == "2024-03-01T00:00:00Z"
    assert sent[0].url.params["updated_before"] == "2024-03-02T00:00:00Z"
    assert sent[0].url.params["limit"] == "2"
    assert "cursor" not in sent[0].url.params
    assert sent[1].url.params["cursor"] == "k1"
    assert sent[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_transient_faults_are_retried_and_retry_after_honoured():
    replies = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "7"}),
                    httpx.Response(200, json={"data": [{"id": "d1"}], "next_cursor": None})])
    waits: list[float] = []
    sent: list[httpx.Request] = []
    hook = LinkAppHook(transport=httpx.MockTransport(lambda r: sent.append(r) or next(replies)),
                       sleep=waits.append)
    assert [r["id"] for r in hook.iter_records("deals")] == ["d1"]
    assert len(sent) == 3
    assert waits[1] == 7.0


def test_unauthorized_is_not_retried_and_never_shows_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    hook, sent = hook_with(lambda r: httpx.Response(
        401, json={"error": {"code": "unauthorized", "message": "token expired"}}))
    with pytest.raises(LinkAppAuthError) as info:
        list(hook.iter_records("contacts"))
    assert len(sent) == 1
    assert "token expired" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in repr(hook) and TOKEN not in caplog.text


def test_other_4xx_is_a_caller_error_with_code():
    hook, _ = hook_with(lambda r: httpx.Response(
        422, json={"error": {"code": "invalid_param", "message": "limit must be <= 500"}}))
    with pytest.raises(LinkAppError, match="invalid_param: limit must be <= 500"):
        list(hook.iter_records("contacts", limit=900))


def test_get_returns_none_on_404():
    hook, _ = hook_with(lambda r: httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}}))
    assert hook.get("deals", "42") is None


def test_a_repeated_cursor_stops_paging():
    hook, _ = hook_with(lambda r: httpx.Response(200, json={"data": [{"id": "x"}], "next_cursor": "same"}))
    with pytest.raises(PaginationLoopError):
        list(hook.iter_records("contacts"))


def test_download_follows_redirects_and_streams_bytes():
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/files/1":
            return httpx.Response(302, headers={"Location": "http://link.test/cdn/1"})
        return httpx.Response(200, content=b"%PDF-1.4 bytes")

    hook, sent = hook_with(handler)
    assert b"".join(hook.download("http://link.test/files/1")) == b"%PDF-1.4 bytes"
    assert [r.url.path for r in sent] == ["/files/1", "/cdn/1"]


def test_bad_page_size_is_a_clear_configuration_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT",
                       '{"conn_type": "link_app", "host": "http://x", "password": "t", "extra": {"page_size": 900}}')
    with pytest.raises(Exception, match="page_size must be 1..500"):
        _ = LinkAppHook().page_size
