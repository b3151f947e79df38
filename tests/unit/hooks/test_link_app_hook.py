"""LinkAppHook without network: httpx.MockTransport, connection from AIRFLOW_CONN_*."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import pytest

from crm_migration.errors import ConfigurationError
from crm_migration.hooks.link_app import (
    LinkAppAuthError,
    LinkAppError,
    LinkAppHook,
    LinkAppUnavailableError,
    PaginationLoopError,
)

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
    assert hook.download("http://link.test/files/1") == b"%PDF-1.4 bytes"
    assert [r.url.path for r in sent] == ["/files/1", "/cdn/1"]


def test_bad_page_size_is_a_clear_configuration_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT",
                       '{"conn_type": "link_app", "host": "http://x", "password": "t", "extra": {"page_size": 900}}')
    with pytest.raises(Exception, match="page_size must be 1..500"):
        _ = LinkAppHook().page_size


@pytest.mark.parametrize(("extra", "want"), [({}, 8), ({"download_workers": 3}, 3), ({"download_workers": "16"}, 16),
                                             ({"download_workers": 0}, None), ({"download_workers": "4.5"}, None)])
def test_download_workers_default_to_8_and_a_bad_value_is_a_clear_configuration_error(monkeypatch, extra, want):
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps(
        {"conn_type": "link_app", "host": "http://x", "password": "t", "extra": extra}))
    if want is None:
        with pytest.raises(ConfigurationError, match=r"'link_app_default': extra.download_workers must be a whole "
                                                     r"number 1..32, got"):
            _ = LinkAppHook().download_workers
    else:
        assert LinkAppHook().download_workers == want


class _CutStream(httpx.SyncByteStream):
    """A body that stops after its first chunk, as a dropped connection does."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self):
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_a_download_cut_half_way_is_downloaded_again_whole():
    body = b"0123456789" * 1000
    answers = iter([_CutStream(body[:10]), _CutStream(body[:5000])])

    def handler(r: httpx.Request) -> httpx.Response:
        stream = next(answers, None)
        if stream is not None:
            return httpx.Response(200, stream=stream, headers={"Content-Length": str(len(body))})
        return httpx.Response(200, content=body)

    hook, sent = hook_with(handler)
    assert hook.download("http://cdn.test/f/1") == body
    assert len(sent) == 3

    hook, _ = hook_with(lambda r: httpx.Response(200, stream=_CutStream(b"x"), headers={"Content-Length": "9"}))
    with pytest.raises(LinkAppUnavailableError, match=r"cut after \d+ bytes \(RemoteProtocolError\) 5 times"):
        hook.download("http://cdn.test/f/2")


def test_download_errors_carry_the_api_code_and_401_is_an_auth_error():
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/f/gone":
            return httpx.Response(404, json={"error": {"code": "file_missing", "message": "no such file"}})
        return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "token expired"}})

    hook, sent = hook_with(handler)
    with pytest.raises(LinkAppError) as info:
        hook.download("http://cdn.test/f/gone")
    assert (info.value.status, info.value.code, info.value.message) == (404, "file_missing", "no such file")
    with pytest.raises(LinkAppAuthError):
        hook.download("http://cdn.test/f/1")
    assert len(sent) == 2                               # neither retried
    assert TOKEN not in str(info.value)


def test_transient_faults_outlasting_the_retries_are_a_link_app_error():
    hook, sent = hook_with(lambda r: httpx.Response(503))
    with pytest.raises(LinkAppUnavailableError, match="still HTTP 503 after 5 attempts"):
        hook.get("contacts", "1")
    assert len(sent) == 5

    def drop(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    hook, _ = hook_with(drop)
    with pytest.raises(LinkAppUnavailableError, match="ConnectError after 5 attempts"):
        list(hook.iter_records("users"))


def test_ids_are_escaped_in_paths_and_windows_need_a_timezone():
    hook, sent = hook_with(lambda r: httpx.Response(404, json={"error": {"code": "not_found", "message": "-"}}))
    assert hook.get("contacts", "1/../2") is None
    assert sent[0].url.raw_path == b"/api/v1/contacts/1%2F..%2F2"
    with pytest.raises(ValueError, match="timezone-aware"):
        list(hook.iter_records("users", since=datetime(2024, 3, 1)))
