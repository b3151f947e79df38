"""The Link app sandbox over real HTTP, against ``specs/link-app-api.md``: paging, windows, stability while
records change, 404s, auth, limits, deleted, downloads, faults, rate limit, admin mutations, determinism."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import httpx
import pytest

from crm_sandbox.link_app.generator import FIELDS, RESOURCES, generate_tenant
from crm_sandbox.link_app.server import LinkAppTenant, serve

pytestmark = pytest.mark.integration

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EPOCH = "2000-01-01T00:00:00Z"
COMMON = {"id", "created_at", "updated_at"}


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def _server() -> Iterator[Any]:
    server = serve(port=0, scale=1, seed=7)
    yield server
    server.stop()


@pytest.fixture
def srv(_server):
    """The module's server, its tenant regenerated for each test (cheap; a new server is not)."""
    _server.state.reset()
    return _server


@pytest.fixture
def tenant(srv) -> LinkAppTenant:
    return srv.state


@pytest.fixture
def api(srv) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{srv.url}/api/v1", headers={"Authorization": f"Bearer {srv.state.token}"},
                      timeout=10) as client:
        yield client


def admin(srv, method: str, what: str, body: dict | None = None) -> Any:
    resp = httpx.request(method, f"{srv.url}/sandbox/{what}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def list_all(api: httpx.Client, resource: str, **params: Any) -> list[dict]:
    """Follow ``next_cursor`` to the end, as a client does; check every page's shape on the way."""
    params = {"limit": 100, **params}
    out: list[dict] = []
    cursors: set[str] = set()
    while True:
        r = api.get(f"/{resource}", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"data", "next_cursor"}
        assert len(page["data"]) <= int(params["limit"])
        out += page["data"]
        if page["next_cursor"] is None:
            return out
        assert page["data"], "a page that promises more holds records"
        assert page["next_cursor"] not in cursors
        cursors.add(page["next_cursor"])
        params["cursor"] = page["next_cursor"]


def keys(rows: list[dict]) -> list[tuple[datetime, str]]:
    return [(ts(r["updated_at"]), r["id"]) for r in rows]


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and body["error"]["message"]


# ------------------------------------------------------------------------------------------- listing

@pytest.mark.parametrize("resource", RESOURCES)
def test_every_resource_pages_to_the_end_in_order_each_record_once(api, tenant, resource) -> None:
    rows = list_all(api, resource, limit=7)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(tenant.tables[resource]) > 0
    assert keys(rows) == sorted(keys(rows))
    expected = COMMON | set(FIELDS[resource]) | ({"url"} if resource == "attachments" else set())
    for r in rows:
        assert set(r) == expected, r
        assert isinstance(r["id"], str)
        assert STAMP.match(r["created_at"]) and STAMP.match(r["updated_at"]), r
        assert r["created_at"] <= r["updated_at"]


def test_default_scale_counts_and_scale_multiplies() -> None:
    one, two = generate_tenant(1, 7).counts(), generate_tenant(2, 7).counts()
    assert (one["companies"], one["contacts"], one["deals"], one["activities"], one["attachments"]) == (40, 120, 80, 400, 30)
    for resource in ("companies", "contacts", "deals", "activities", "attachments"):
        assert two[resource] == 2 * one[resource]


def test_limit_default_bounds_and_errors(api) -> None:
    page = api.get("/activities").json()
    assert len(page["data"]) == 100 and page["next_cursor"]
    assert len(api.get("/activities", params={"limit": 500}).json()["data"]) == 400
    assert len(api.get("/activities", params={"limit": 1}).json()["data"]) == 1
    for bad in (0, 501, -1, "ten"):
        assert_error(api.get("/contacts", params={"limit": bad}), 400, "invalid_param")
    assert_error(api.get("/deleted", params={"since": EPOCH, "limit": 501}), 400, "invalid_param")


def test_a_page_ending_exactly_at_the_end_says_so(api) -> None:
    first = api.get("/contacts", params={"limit": 60}).json()
    second = api.get("/contacts", params={"limit": 60, "cursor": first["next_cursor"]}).json()
    assert len(second["data"]) == 60 and second["next_cursor"] is None
    whole = api.get("/contacts", params={"limit": 120}).json()
    assert len(whole["data"]) == 120 and whole["next_cursor"] is None


def test_ties_on_updated_at_are_ordered_by_id_across_pages(api, tenant) -> None:
    tie = tenant.hard_cases["same_updated_at"]
    rows = list_all(api, "contacts", limit=4, updated_since=tie["updated_at"])
    same = [r["id"] for r in rows if r["updated_at"] == tie["updated_at"]]
    assert same == sorted(tie["ids"]) and len(same) == 6


def test_window_is_half_open(api, tenant) -> None:
    tie = tenant.hard_cases["same_updated_at"]
    t = ts(tie["updated_at"])
    window = {r["id"] for r in list_all(api, "contacts", updated_since=iso(t), updated_before=iso(t + timedelta(seconds=1)))}
    assert window == set(tie["ids"])
    assert not set(tie["ids"]) & {r["id"] for r in list_all(api, "contacts", updated_since=EPOCH, updated_before=iso(t))}
    assert list_all(api, "contacts", updated_since=iso(t), updated_before=iso(t)) == []
    # sub-second bounds and other offsets mean the same instants
    half = (t + timedelta(milliseconds=500)).isoformat()
    assert not set(tie["ids"]) & {r["id"] for r in list_all(api, "contacts", updated_since=half)}
    assert set(tie["ids"]) <= {r["id"] for r in list_all(api, "contacts", updated_before=half)}
    plus2 = t.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert {r["id"] for r in list_all(api, "contacts", updated_since=plus2,
                                      updated_before=iso(t + timedelta(seconds=1)))} == set(tie["ids"])


def test_windows_partition_the_listing(api) -> None:
    everything = list_all(api, "activities")
    stamps = sorted({r["updated_at"] for r in everything})
    cuts = [EPOCH, stamps[37], stamps[38], stamps[200], stamps[-1], "2999-01-01T00:00:00Z"]
    windows = list(pairwise(cuts))
    parts = [list_all(api, "activities", limit=33, updated_since=a, updated_before=b) for a, b in windows]
    assert [r for p in parts for r in p] == everything
    for (a, b), part in zip(windows, parts, strict=True):
        assert all(ts(a) <= ts(r["updated_at"]) < ts(b) for r in part)


def test_bad_window_and_cursor_are_caller_errors(api) -> None:
    assert_error(api.get("/contacts", params={"updated_since": "2024-01-01T00:00:00"}), 400, "invalid_param")
    assert_error(api.get("/contacts", params={"updated_before": "yesterday"}), 400, "invalid_param")
    assert_error(api.get("/contacts", params={"updated_since": "2024-02-01T00:00:00Z",
                                              "updated_before": "2024-01-01T00:00:00Z"}), 400, "invalid_param")
    assert_error(api.get("/contacts", params={"cursor": "not-a-cursor"}), 400, "invalid_cursor")
    deals_cursor = api.get("/deals", params={"limit": 1}).json()["next_cursor"]
    assert_error(api.get("/contacts", params={"cursor": deals_cursor}), 400, "invalid_cursor")


# ------------------------------------------------------------------------------ stability while paging

def test_records_changed_while_paging_show_up_in_a_later_window_never_skipped(api, srv, tenant) -> None:
    hi = iso(tenant.as_of)
    order = [r["id"] for r in list_all(api, "contacts", updated_since=EPOCH, updated_before=hi)]
    params: dict[str, Any] = {"limit": 10, "updated_since": EPOCH, "updated_before": hi}
    first = api.get("/contacts", params=params).json()
    seen = [r["id"] for r in first["data"]]
    seen_changed, unseen_changed = order[3], order[50]
    seen_deleted, unseen_deleted = order[2], order[60]
    later = tenant.as_of + timedelta(hours=1)
    admin(srv, "POST", "mutate", {"timestamp": iso(later),
                                  "updates": {"contacts": [{"id": seen_changed, "title": "Changed"},
                                                           {"id": unseen_changed, "title": "Changed"}]},
                                  "deletes": {"contacts": [seen_deleted, unseen_deleted]}})
    params["cursor"] = first["next_cursor"]
    while params["cursor"]:
        page = api.get("/contacts", params=params).json()
        seen += [r["id"] for r in page["data"]]
        params["cursor"] = page["next_cursor"]
    untouched = [i for i in order if i not in {seen_changed, unseen_changed, seen_deleted, unseen_deleted}]
    assert [i for i in seen if i in untouched] == untouched          # none skipped, none twice
    assert unseen_changed not in seen and unseen_deleted not in seen
    next_window = list_all(api, "contacts", updated_since=hi)
    assert [(r["id"], r["title"]) for r in next_window] == sorted(
        [(seen_changed, "Changed"), (unseen_changed, "Changed")])
    gone = {d["id"] for d in api.get("/deleted", params={"since": iso(later)}).json()["data"]
            if d["resource"] == "contacts"}
    assert gone == {seen_deleted, unseen_deleted}


def test_open_listing_shows_a_record_changed_behind_the_cursor_again_at_the_end(api, srv, tenant) -> None:
    order = [r["id"] for r in list_all(api, "companies")]
    first = api.get("/companies", params={"limit": 5}).json()
    rows = list(first["data"])
    moved = rows[0]["id"]
    tenant.update("companies", [{"id": moved, "name": "Moved Along"}])
    created = tenant.create("companies", [{"name": "Brand New Ltd"}])[0]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/companies", params={"limit": 5, "cursor": cursor}).json()
        rows += page["data"]
        cursor = page["next_cursor"]
    ids = [r["id"] for r in rows]
    assert ids[:len(order)] == order
    assert sorted(ids[len(order):]) == sorted([moved, created])
    assert next(r for r in rows[len(order):] if r["id"] == moved)["name"] == "Moved Along"


# --------------------------------------------------------------------------------------- one record

def test_get_one_record_or_404(api, tenant) -> None:
    listed = api.get("/deals", params={"limit": 3}).json()["data"][2]
    assert api.get(f"/deals/{listed['id']}").json() == listed
    att = api.get("/attachments", params={"limit": 1}).json()["data"][0]
    assert api.get(f"/attachments/{att['id']}").json() == att
    assert_error(api.get("/deals/no-such-deal"), 404, "not_found")
    assert_error(api.get("/widgets"), 404, "not_found")
    assert_error(api.get("/widgets/1"), 404, "not_found")
    assert_error(api.get("/deleted/1"), 404, "not_found")
    gone = tenant.hard_cases["deleted"]["contacts"][0]
    assert_error(api.get(f"/contacts/{gone}"), 404, "not_found")
    assert gone not in {r["id"] for r in list_all(api, "contacts")}


def test_ids_are_unique_per_resource_only(api) -> None:
    assert api.get("/contacts/1").json()["id"] == api.get("/companies/1").json()["id"] == "1"


def test_only_get_is_allowed(api) -> None:
    r = api.post("/contacts", json={"first_name": "X"})
    assert_error(r, 405, "method_not_allowed")
    assert api.get("/contacts", params={"limit": 1}).status_code == 200      # the connection stays usable


# ------------------------------------------------------------------------------------------- auth

def test_bearer_auth(srv, api) -> None:
    url = f"{srv.url}/api/v1/contacts"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {srv.state.token}"},
                    {"Authorization": "Bearer"}):
        r = httpx.get(url, headers=headers)
        assert_error(r, 401, "unauthorized")
        assert "X-RateLimit-Remaining" in r.headers
    file_url = api.get("/attachments/2").json()["url"]
    assert_error(httpx.get(file_url), 401, "unauthorized")
    admin(srv, "POST", "token", {"token": "rotated"})
    assert_error(api.get("/contacts"), 401, "unauthorized")
    assert httpx.get(url, headers={"Authorization": "Bearer rotated"}).status_code == 200


# -------------------------------------------------------------------------------------- rate limit

def test_rate_limit_header_on_every_answer_and_429_past_the_limit(srv, api) -> None:
    answers = [api.get("/contacts", params={"limit": 2}), api.get("/contacts/nope"),
               api.get("/contacts", params={"limit": 0}), httpx.get(f"{srv.url}/api/v1/contacts"),
               api.get(api.get("/attachments/2").json()["url"]), api.get(api.get("/attachments/3").json()["url"]),
               api.get(api.get(f"/attachments/{srv.state.hard_cases['attachment_redirect'][0]}").json()["url"])]
    assert [a.status_code for a in answers] == [200, 404, 400, 401, 200, 404, 302]
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
    admin(srv, "POST", "rate-limit", {"limit": 3, "window": 60})
    got = [api.get("/users") for _ in range(4)]
    assert [g.status_code for g in got] == [200, 200, 200, 429]
    assert [g.headers["X-RateLimit-Remaining"] for g in got] == ["2", "1", "0", "0"]
    assert_error(got[-1], 429, "rate_limited")
    assert 1 <= int(got[-1].headers["Retry-After"]) <= 60


def test_rate_limit_window_resets(srv, api) -> None:
    srv.state.set_rate_limit(2, 0.3)
    assert [api.get("/users").status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.35)
    assert api.get("/users").status_code == 200


# ----------------------------------------------------------------------------------------- deleted

def test_deleted_since_keeps_30_days(api, tenant) -> None:
    hard = tenant.hard_cases
    rows = api.get("/deleted", params={"since": EPOCH}).json()
    assert rows["next_cursor"] is None
    got = {(d["resource"], d["id"]) for d in rows["data"]}
    want = {(res, i) for res, ids in hard["deleted"].items() for i in ids}
    assert got == want                               # the one deleted 45 days ago is no longer kept
    assert ("contacts", hard["deleted_expired"]["contacts"][0]) not in got
    stamps = [d["deleted_at"] for d in rows["data"]]
    assert stamps == sorted(stamps) and all(STAMP.match(s) for s in stamps)
    mid = stamps[len(stamps) // 2]
    assert [d for d in rows["data"] if d["deleted_at"] >= mid] == api.get("/deleted", params={"since": mid}).json()["data"]
    paged, params = [], {"since": EPOCH, "limit": 3}
    while True:
        page = api.get("/deleted", params=params).json()
        paged += page["data"]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert paged == rows["data"]
    assert_error(api.get("/deleted"), 400, "invalid_param")


def test_deleting_a_contact_logs_it_and_its_links(srv, api, tenant) -> None:
    contact = tenant.hard_cases["contact_multi_company"]
    links = {r["id"] for r in list_all(api, "contact_companies") if r["contact_id"] == contact}
    at = tenant.as_of + timedelta(hours=5)
    out = admin(srv, "POST", "mutate", {"timestamp": iso(at), "deletes": {"contacts": [contact]}})
    assert out["deleted"] == {"contacts": [contact], "contact_companies": sorted(links, key=int)}
    got = api.get("/deleted", params={"since": iso(at)}).json()["data"]
    assert {(d["resource"], d["id"], d["deleted_at"]) for d in got} == (
        {("contacts", contact, iso(at))} | {("contact_companies", link, iso(at)) for link in links})
    assert not links & {r["id"] for r in list_all(api, "contact_companies")}


# --------------------------------------------------------------------------------------- downloads

def test_downloads(api, tenant) -> None:
    hard = tenant.hard_cases
    non_ascii = api.get(f"/attachments/{hard['attachment_non_ascii']}").json()
    assert non_ascii["file_name"] == "Exposé Büro 東京.pdf"
    r = api.get(non_ascii["url"])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == non_ascii["content_type"] == "application/pdf"
    assert int(r.headers["Content-Length"]) == len(r.content) == non_ascii["size_bytes"] > 0
    assert r.content.startswith(b"%PDF")
    assert "filename*=UTF-8''Expos%C3%A9" in r.headers["Content-Disposition"]
    head = api.head(non_ascii["url"])
    assert head.status_code == 200 and head.headers["Content-Length"] == r.headers["Content-Length"] and not head.content

    empty = api.get(f"/attachments/{hard['attachment_empty']}").json()
    r = api.get(empty["url"])
    assert (r.status_code, r.content, r.headers["Content-Length"], empty["size_bytes"]) == (200, b"", "0", 0)

    missing = api.get(f"/attachments/{hard['attachment_missing']}").json()
    assert missing["size_bytes"] > 0
    assert_error(api.get(missing["url"]), 404, "not_found")

    moved = api.get(f"/attachments/{hard['attachment_redirect'][0]}").json()
    r = api.get(moved["url"])
    assert r.status_code == 302
    location = httpx.URL(r.headers["Location"])
    assert location.path != httpx.URL(moved["url"]).path
    followed = httpx.get(location)                     # a signed URL: no token needed
    assert followed.status_code == 200 and len(followed.content) == moved["size_bytes"]
    assert followed.headers["Content-Type"] == moved["content_type"]
    tampered = location.copy_set_param("sig", "0" * 32)
    assert_error(httpx.get(tampered), 403, "forbidden")

    base = non_ascii["url"].split("/cdn/")[0]
    assert_error(api.get(f"{base}/cdn/files/999999/x.pdf"), 404, "not_found")


def test_every_listed_attachment_downloads_as_described(api, tenant) -> None:
    missing = tenant.hard_cases["attachment_missing"]
    with httpx.Client(headers=api.headers, follow_redirects=True, timeout=10) as client:
        for att in list_all(api, "attachments"):
            r = client.get(att["url"])
            if att["id"] == missing:
                assert r.status_code == 404
                continue
            assert r.status_code == 200, (att, r.text)
            assert len(r.content) == att["size_bytes"] and r.headers["Content-Type"] == att["content_type"]


def test_a_created_attachment_serves_its_bytes(srv, api, tenant) -> None:
    data = "Grüße, 2024\n".encode()
    att_id = tenant.create("attachments", [{"file_name": "notes ü.txt", "content_type": "text/plain",
                                            "related": {"type": "deal", "id": "1"}, "uploaded_by": "1",
                                            "_content_base64": base64.b64encode(data).decode()}])[0]
    rec = api.get(f"/attachments/{att_id}").json()
    assert rec["size_bytes"] == len(data)
    assert api.get(rec["url"]).content == data


# ------------------------------------------------------------------------------------------ faults

def test_injected_faults_as_a_client_sees_them(srv, api) -> None:
    admin(srv, "POST", "faults", {"faults": [
        {"kind": "status", "status": 503, "count": 2, "match": "/api/v1/deals"},
        {"kind": "status", "status": 429, "retry_after": 7, "match": "/api/v1/users"},
        {"kind": "status", "status": 502, "match": "/api/v1/pipelines"},
        {"kind": "status", "status": 504, "match": "/api/v1/automations"},
        {"kind": "drop", "match": "/api/v1/custom_fields"},
        {"kind": "unauthorized", "match": "/api/v1/companies"},
        {"kind": "status", "status": 503, "match": "/cdn/"},
    ]})
    assert len(admin(srv, "GET", "faults")["faults"]) == 7
    assert api.get("/contacts", params={"limit": 1}).status_code == 200      # other paths unaffected
    assert_error(api.get("/deals"), 503, "service_unavailable")
    assert api.get("/deals").status_code == 503
    assert api.get("/deals").status_code == 200
    r = api.get("/users")
    assert_error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "7"
    for path, status in (("/pipelines", 502), ("/automations", 504)):
        r = api.get(path)
        assert r.status_code == status and r.headers["Content-Type"].startswith("text/html")
        assert "X-RateLimit-Remaining" in r.headers
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.get("/custom_fields")
    assert api.get("/custom_fields").status_code == 200                       # once only
    assert_error(api.get("/companies"), 401, "unauthorized")
    assert api.get("/companies").status_code == 200
    assert api.get(api.get("/attachments/2").json()["url"]).status_code == 503
    stats = admin(srv, "GET", "stats")
    assert stats["events"]["fault:status:503"] == 3 and stats["events"]["fault:drop"] == 1
    assert stats["faults"] == []
    srv.state.inject_fault("status", 5, status=503)
    assert admin(srv, "DELETE", "faults") == {"faults": []}
    assert api.get("/deals", params={"limit": 1}).status_code == 200


def test_delay_fault_answers_late_but_right(srv, api) -> None:
    srv.state.inject_fault("delay", delay=0.3, match="/api/v1/users")
    started = time.monotonic()
    r = api.get("/users")
    assert r.status_code == 200 and time.monotonic() - started >= 0.3


def test_bad_fault_requests_are_refused(srv) -> None:
    r = httpx.post(f"{srv.url}/sandbox/faults", json={"kind": "explode"})
    assert_error(r, 400, "invalid_fault")


# ------------------------------------------------------------------------------------------- stats

def test_stats_count_requests_per_path(srv, api, tenant) -> None:
    admin(srv, "POST", "stats/reset")
    list_all(api, "contacts", limit=50)
    api.get("/contacts/1")
    api.get("/deals/none")
    stats = admin(srv, "GET", "stats")
    assert stats["requests"] == {"/api/v1/contacts": 3, "/api/v1/contacts/1": 1, "/api/v1/deals/none": 1}
    assert stats["total"] == 5 and stats["statuses"] == {"200": 4, "404": 1}
    assert tenant.get_stats()["requests"] == stats["requests"]
    tenant.reset_stats()
    assert admin(srv, "GET", "stats")["total"] == 0


# ------------------------------------------------------------------------------------------ mutate

def test_mutate_then_the_window_picks_exactly_the_changed_records(srv, api, tenant) -> None:
    at = tenant.as_of + timedelta(hours=2)
    deal = tenant.hard_cases["deal_open"][0]
    won_stage = next(s["id"] for s in api.get("/pipelines/1").json()["stages"] if s["is_won"])
    out = admin(srv, "POST", "mutate", {
        "timestamp": iso(at),
        "creates": {"contacts": [{"first_name": "Nina", "last_name": "Neu", "email": "nina@new.example"},
                                 {"first_name": "Otto", "last_name": "Ost"}],
                    "activities": [{"type": "note", "body": "new", "related": {"type": "deal", "id": deal}}]},
        "updates": {"companies": [{"id": "12", "name": "Renamed Co"}],
                    "deals": [{"id": deal, "status": "won", "stage_id": won_stage}]},
        "deletes": {"deals": [tenant.hard_cases["deal_lost"][0]]}})
    assert out["timestamp"] == iso(at)
    changed = {"contacts": set(out["created"]["contacts"]), "activities": set(out["created"]["activities"]),
               "companies": {"12"}, "deals": {deal}}
    for resource in RESOURCES:
        rows = list_all(api, resource, limit=1, updated_since=iso(at), updated_before=iso(at + timedelta(seconds=1)))
        assert {r["id"] for r in rows} == changed.get(resource, set()), resource
        assert all(r["updated_at"] == iso(at) for r in rows)
        assert list_all(api, resource, updated_since=iso(tenant.as_of), updated_before=iso(at)) == []
    nina = api.get(f"/contacts/{out['created']['contacts'][0]}").json()
    assert (nina["first_name"], nina["created_at"], nina["custom_fields"]) == ("Nina", iso(at), {})
    assert api.get("/deals/" + deal).json()["status"] == "won"
    assert api.get("/companies/12").json()["name"] == "Renamed Co"
    assert [d["id"] for d in api.get("/deleted", params={"since": iso(at)}).json()["data"]] == [
        tenant.hard_cases["deal_lost"][0]]


def test_mutate_refuses_what_the_api_does_not_have(srv, tenant) -> None:
    for body, status, code in (({"updates": {"contacts": [{"id": "1", "shoe_size": 9}]}}, 400, "invalid_field"),
                               ({"creates": {"widgets": [{}]}}, 400, "invalid_resource"),
                               ({"updates": {"contacts": [{"id": "nope", "title": "x"}]}}, 404, "not_found"),
                               ({"deletes": {"deals": ["nope"]}}, 404, "not_found"),
                               ({"timestamp": "soon"}, 400, "invalid_param")):
        assert_error(httpx.post(f"{srv.url}/sandbox/mutate", json=body), status, code)


def test_mutate_stamps_now_by_default_and_the_clock_can_be_set(srv, api, tenant) -> None:
    frozen = "2031-05-06T07:08:09Z"
    admin(srv, "POST", "clock", {"now": frozen})
    cid = tenant.mutate({"creates": {"contacts": [{"first_name": "Clocked"}]}})["created"]["contacts"][0]
    assert api.get(f"/contacts/{cid}").json()["updated_at"] == frozen
    # retention follows the clock: 30 days after the generated deletions, none is kept
    admin(srv, "POST", "clock", {"now": "2099-01-01T00:00:00Z"})
    assert api.get("/deleted", params={"since": EPOCH}).json()["data"] == []


# ------------------------------------------------------------------------------------ determinism

def _snapshot(url: str, token: str) -> dict[str, list[dict]]:
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        out = {}
        for resource in RESOURCES:
            rows = list_all(c, resource, limit=500)
            for r in rows:
                if "url" in r:
                    r["url"] = httpx.URL(r["url"]).path
            out[resource] = rows
        out["deleted"] = c.get("/deleted", params={"since": EPOCH}).json()["data"]
        return out


def test_same_seed_same_tenant_other_seed_other_tenant() -> None:
    as_of = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    servers = [serve(port=0, seed=seed, as_of=as_of) for seed in (7, 7, 8)]
    try:
        a, b, c = (_snapshot(s.url, s.state.token) for s in servers)
    finally:
        for s in servers:
            s.stop()
    assert a == b
    assert a["contacts"] != c["contacts"] and a["deals"] != c["deals"]
    sized = ("users", "companies", "contacts", "deals", "activities", "attachments", "custom_fields", "pipelines")
    assert [len(a[k]) for k in sized] == [len(c[k]) for k in sized]


# ------------------------------------------------------------------------------------- hard cases

def test_hard_cases_as_a_client_sees_them(api, tenant) -> None:
    hard = tenant.hard_cases
    companies = {r["id"]: r for r in list_all(api, "companies")}
    a, b, c = hard["company_cycle"]
    assert (companies[a]["parent_company_id"], companies[b]["parent_company_id"],
            companies[c]["parent_company_id"]) == (b, c, a)
    selfp = hard["company_self_parent"]
    assert companies[selfp]["parent_company_id"] == selfp
    root, child, grandchild = hard["company_hierarchy"]
    assert companies[grandchild]["parent_company_id"] == child and companies[child]["parent_company_id"] == root
    countries = {r["address"]["country"] for r in companies.values() if r["address"]}
    assert {"DE", "United Kingdom"} <= countries and any(len(x) > 2 for x in countries) and any(len(x) == 2 for x in countries)

    links: dict[str, list[dict]] = {}
    for link in list_all(api, "contact_companies"):
        links.setdefault(link["contact_id"], []).append(link)
    assert len(links[hard["contact_multi_company"]]) == 3
    assert [ln["is_primary"] for ln in links[hard["contact_no_primary"]]] == [False, False]
    assert hard["contact_without_company"] not in links

    users = {u["id"]: u for u in list_all(api, "users")}
    odoo_emails = {"admin@example.com"} | {f"{login}@example.com" for login in tenant.data.odoo_logins}
    owners = [r["owner_id"] for res in ("companies", "contacts", "deals") for r in list_all(api, res, limit=500)]
    matched = [o for o in owners if (users[o]["email"] or "").lower() in odoo_emails]
    assert 0.6 < len(matched) / len(owners) < 0.98                 # most owners match, some do not
    assert any(users[o]["email"] is None for o in owners)
    assert any(not users[o]["active"] for o in owners)

    pipelines = list_all(api, "pipelines")
    assert len(pipelines) == 2
    names = [{s["name"] for s in p["stages"]} for p in pipelines]
    assert not names[0] & names[1]
    for p in pipelines:
        assert any(s["is_won"] and s["is_closed"] for s in p["stages"])
        assert any(s["is_closed"] and not s["is_won"] for s in p["stages"])
        assert all(0 <= s["probability"] <= 100 for s in p["stages"])
    stage = {s["id"]: s for p in pipelines for s in p["stages"]}
    deals = list_all(api, "deals")
    assert {d["priority"] for d in deals} == {"low", "medium", "high", "urgent"}
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    for d in deals:
        assert stage[d["stage_id"]]["is_won"] == (d["status"] == "won")
        assert bool(d["lost_reason"]) == (d["status"] == "lost")
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", d["expected_close_date"]) and STAMP.match(d["stage_entered_at"])

    acts = list_all(api, "activities", limit=500)
    by_type: dict[str, list[dict]] = {}
    for act in acts:
        by_type.setdefault(act["type"], []).append(act)
    assert set(by_type) == {"call", "meeting", "note", "task", "email"}
    assert {a["related"]["type"] for a in acts} == {"contact", "company", "deal"}
    assert all(isinstance(a["duration_seconds"], int) and a["occurred_at"] for a in by_type["call"])
    assert all(a["start_at"] < a["end_at"] and a["attendees"] for a in by_type["meeting"])
    assert {a["done"] for a in by_type["task"]} == {True, False} and all(a["due_date"] for a in by_type["task"])
    assert any("<p>" in a["body"] for a in by_type["email"])
    assert max(a["occurred_at"] or a["start_at"] or "" for a in acts) < iso(tenant.as_of)
    assert min(a["occurred_at"] or a["start_at"] or "9" for a in acts) < iso(tenant.as_of - timedelta(days=700))

    defs = list_all(api, "custom_fields")
    for obj in ("contact", "company", "deal"):
        assert {d["type"] for d in defs if d["object"] == obj} == {
            "text", "number", "date", "picklist", "multiselect", "url", "boolean"}
    options = {(d["object"], d["key"]): d["options"] for d in defs}
    for resource, obj in (("contacts", "contact"), ("companies", "company"), ("deals", "deal")):
        outside = [(r["id"], k, v) for r in list_all(api, resource, limit=500) for k, v in r["custom_fields"].items()
                   if options.get((obj, k)) and isinstance(v, str) and v not in options[(obj, k)]]
        assert outside, resource
    assert list_all(api, "automations") and all({"trigger", "conditions", "actions"} <= set(a)
                                                for a in list_all(api, "automations"))


# ------------------------------------------------------------------------------------------- CLI

def test_cli_prints_url_and_token_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "crm_sandbox.cli", "link-app", "--port", "0", "--token", "cli-tok"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:"), first + (proc.stderr.read() if proc.poll() is not None else "")
        assert (proc.stdout.readline() if proc.stdout else "").strip() == "token: cli-tok"
        r = httpx.get(f"{url}/api/v1/users", headers={"Authorization": "Bearer cli-tok"}, timeout=10)
        assert r.status_code == 200 and r.json()["data"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
