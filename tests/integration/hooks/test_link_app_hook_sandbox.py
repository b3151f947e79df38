"""LinkAppHook over real HTTP against the Link app sandbox (``specs/link-app-api.md``)."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from crm_migration.hooks.link_app import LinkAppAuthError, LinkAppError, LinkAppHook, LinkAppUnavailableError

sandbox = pytest.importorskip("crm_sandbox.link_app.server", reason="Link app sandbox not available")

pytestmark = pytest.mark.integration

RESOURCES = ("users", "companies", "contacts", "contact_companies", "pipelines", "deals", "activities",
             "attachments", "custom_fields", "automations")
PAGE = 50
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def server():
    srv = sandbox.serve(port=0, scale=2, seed=11)   # scale 2: 800 activities, 16 pages of 50
    yield srv
    srv.stop()


@pytest.fixture
def tenant(server, monkeypatch):
    """The sandbox, regenerated, wired as ``link_app_default`` (page size 50)."""
    server.state.reset()
    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps({
        "conn_type": "link_app", "host": server.url, "password": server.state.token,
        "extra": {"page_size": PAGE, "timeout": 5}}))
    return server.state


def hook_and_waits(**kw) -> tuple[LinkAppHook, list[float]]:
    """A hook whose back-off waits are recorded (and skipped: the sandbox needs no real wait)."""
    waits: list[float] = []
    return LinkAppHook(sleep=waits.append, **kw), waits


def requests_to(tenant, path: str) -> int:
    return tenant.get_stats()["requests"].get(path, 0)


@pytest.mark.parametrize("resource", RESOURCES)
def test_lists_every_resource_fully_page_by_page(tenant, resource) -> None:
    hook, _ = hook_and_waits()
    rows = list(hook.iter_records(resource))
    assert sorted(r["id"] for r in rows) == sorted(tenant.tables[resource])
    assert len({r["id"] for r in rows}) == len(rows)
    assert requests_to(tenant, f"/api/v1/{resource}") == max(1, math.ceil(len(rows) / PAGE))


def test_windows_are_half_open_and_partition_the_data(tenant) -> None:
    hook, _ = hook_and_waits()
    everything = list(hook.iter_records("activities"))
    stamps = sorted({r["updated_at"] for r in everything})
    cut = datetime.fromisoformat(stamps[300])
    early = list(hook.iter_records("activities", since=EPOCH, before=cut))
    late = list(hook.iter_records("activities", since=cut, before=tenant.as_of))
    assert early + late == everything
    assert all(r["updated_at"] < stamps[300] for r in early) and late[0]["updated_at"] == stamps[300]
    tie = tenant.hard_cases["same_updated_at"]
    t = datetime.fromisoformat(tie["updated_at"])
    got = [r["id"] for r in hook.iter_records("contacts", since=t, before=t + timedelta(seconds=1))]
    assert got == sorted(tie["ids"])


def test_a_delta_window_yields_exactly_the_changed_records(tenant) -> None:
    at = tenant.as_of + timedelta(minutes=30)
    out = tenant.mutate({"timestamp": at.isoformat(),
                         "creates": {"deals": [{"name": "Fresh deal", "status": "open", "priority": "high"}]},
                         "updates": {"contacts": [{"id": "7", "title": "CTO"}, {"id": "9", "mobile": None}]},
                         "deletes": {"companies": [tenant.hard_cases["company_self_parent"]]}})
    hook, _ = hook_and_waits()
    window = {"since": at, "before": at + timedelta(minutes=15)}
    assert [r["id"] for r in hook.iter_records("contacts", **window)] == ["7", "9"]
    assert [r["name"] for r in hook.iter_records("deals", **window)] == ["Fresh deal"]
    assert list(hook.iter_records("companies", **window)) == []
    assert list(hook.iter_records("contacts", since=tenant.as_of, before=at)) == []
    deleted = list(hook.iter_deleted(at))
    assert {(d["resource"], d["id"]) for d in deleted} >= {("companies", tenant.hard_cases["company_self_parent"])}
    assert {d["resource"] for d in deleted} <= {"companies", "contact_companies"}
    assert out["created"]["deals"]


def test_get_one_record_or_none(tenant) -> None:
    hook, _ = hook_and_waits()
    deal = hook.get("deals", tenant.hard_cases["deal_lost"][0])
    assert deal is not None and deal["status"] == "lost" and deal["lost_reason"]
    assert hook.get("deals", "no-such-deal") is None
    assert hook.get("contacts", tenant.hard_cases["deleted"]["contacts"][0]) is None


def test_deleted_since(tenant) -> None:
    hook, _ = hook_and_waits()
    got = {(d["resource"], d["id"]) for d in hook.iter_deleted(EPOCH)}
    assert got == {(res, i) for res, ids in tenant.hard_cases["deleted"].items() for i in ids}


def test_transient_faults_are_retried_and_retry_after_honoured(tenant) -> None:
    tenant.inject_fault("status", 2, status=503, match="/api/v1/deals")
    tenant.inject_fault("status", 1, status=429, retry_after=3, match="/api/v1/deals")
    tenant.inject_fault("drop", 1, match="/api/v1/deals")
    tenant.inject_fault("status", 1, status=502, match="/api/v1/deals")
    tenant.inject_fault("status", 1, status=504, match="/api/v1/deals")
    hook, waits = hook_and_waits(max_attempts=10)
    rows = list(hook.iter_records("deals"))
    assert sorted(r["id"] for r in rows) == sorted(tenant.tables["deals"])
    assert 3.0 in waits and len(waits) == 6
    stats = tenant.get_stats()
    assert stats["requests"]["/api/v1/deals"] == 6 + math.ceil(len(rows) / PAGE)
    assert stats["faults"] == []


def test_the_rate_limit_is_waited_out(tenant) -> None:
    tenant.set_rate_limit(3, 1.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    hook = LinkAppHook(sleep=sleep)
    rows = list(hook.iter_records("deals", limit=40))            # 160 deals: 4 pages, one more than the limit
    assert len(rows) == len(tenant.tables["deals"])
    assert waits and all(0 < w <= 1 for w in waits)
    assert tenant.get_stats()["statuses"]["429"] == len(waits)


def test_too_many_transient_faults_give_up(tenant) -> None:
    tenant.inject_fault("status", 5, status=503, match="/api/v1/users")
    hook, waits = hook_and_waits(max_attempts=3)
    with pytest.raises(LinkAppUnavailableError, match="still HTTP 503 after 3 attempts"):
        list(hook.iter_records("users"))
    assert len(waits) == 2 and requests_to(tenant, "/api/v1/users") == 3


def test_unauthorized_raises_at_once_without_retrying(tenant, monkeypatch) -> None:
    tenant.inject_fault("unauthorized", 1, match="/api/v1/contacts")
    hook, waits = hook_and_waits()
    with pytest.raises(LinkAppAuthError, match="unauthorized"):
        list(hook.iter_records("contacts"))
    assert waits == [] and requests_to(tenant, "/api/v1/contacts") == 1

    monkeypatch.setenv("AIRFLOW_CONN_LINK_APP_DEFAULT", json.dumps({
        "conn_type": "link_app", "host": tenant.base_url, "password": "wrong-token"}))
    hook, waits = hook_and_waits()
    with pytest.raises(LinkAppAuthError) as info:
        list(hook.iter_records("users"))
    assert info.value.status == 401 and waits == [] and "wrong-token" not in str(info.value)
    assert requests_to(tenant, "/api/v1/users") == 1


def test_other_4xx_is_a_caller_error_with_the_api_code(tenant) -> None:
    hook, waits = hook_and_waits()
    with pytest.raises(LinkAppError) as info:
        list(hook.iter_records("contacts", limit=501))
    assert (info.value.status, info.value.code, waits) == (400, "invalid_param", [])
    with pytest.raises(LinkAppError) as info:
        list(hook.iter_records("widgets"))
    assert (info.value.status, info.value.code) == (404, "not_found")


def test_downloads(tenant) -> None:
    hook, _ = hook_and_waits()
    hard = tenant.hard_cases
    atts = {a["id"]: a for a in hook.iter_records("attachments")}
    non_ascii = atts[hard["attachment_non_ascii"]]
    data = hook.download(non_ascii["url"])
    assert len(data) == non_ascii["size_bytes"] and data.startswith(b"%PDF")
    assert hook.download(atts[hard["attachment_empty"]]["url"]) == b""
    moved = atts[hard["attachment_redirect"][0]]
    assert len(hook.download(moved["url"])) == moved["size_bytes"]
    with pytest.raises(LinkAppError) as info:
        hook.download(atts[hard["attachment_missing"]]["url"])
    assert info.value.status == 404
    for att in atts.values():                              # every file but the missing one, all sizes right
        if att["id"] != hard["attachment_missing"]:
            assert len(hook.download(att["url"])) == att["size_bytes"]


def test_downloads_retry_transient_faults_as_the_spec_asks(tenant) -> None:
    tenant.inject_fault("status", 1, status=503, match="/cdn/")
    tenant.inject_fault("status", 1, status=429, match="/cdn/")
    hook, _ = hook_and_waits()
    att = hook.get("attachments", tenant.hard_cases["attachment_non_ascii"])
    assert att is not None
    assert len(hook.download(att["url"])) == att["size_bytes"]


def test_a_401_on_download_is_an_auth_error(tenant) -> None:
    tenant.inject_fault("unauthorized", 1, match="/cdn/")
    hook, _ = hook_and_waits()
    att = hook.get("attachments", tenant.hard_cases["attachment_non_ascii"])
    assert att is not None
    with pytest.raises(LinkAppAuthError):
        hook.download(att["url"])
