"""The sandbox's own API: fault injection (Python and HTTP), snapshot, stats, mail queue, reset,
JSON-2 (version 19), users / database options, the CLI, transactions and concurrency."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client

import pytest

from crm_sandbox.odoo.server import serve
from crm_sandbox.odoo.testing import DB, PWD, UID, Rpc, post_json

pytestmark = pytest.mark.integration
SERIALIZATION = "psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update"


def test_http_503_for_the_next_n_matching_calls_only(rpc: Rpc, odoo) -> None:
    odoo.inject_fault("http", status=503, count=2, model="res.partner", method="create")
    assert rpc("crm.tag", "create", {"name": "unaffected"})
    for _ in range(2):
        with pytest.raises(xmlrpc.client.ProtocolError) as info:
            rpc("res.partner", "create", {"name": "x"})
        assert info.value.errcode == 503
    assert isinstance(rpc("res.partner", "create", {"name": "x"}), int)
    assert odoo.faults == []


def test_http_429_carries_retry_after(rpc: Rpc) -> None:
    rpc.admin("POST", "/sandbox/faults", {"kind": "http", "status": 429, "retry_after": 7})
    status, _body, headers = post_json(f"{rpc.url}/jsonrpc", {
        "jsonrpc": "2.0", "method": "call", "id": 1,
        "params": {"service": "object", "method": "execute_kw", "args": [DB, UID, PWD, "res.partner", "search", [[]]]}})
    assert status == 429 and headers["Retry-After"] == "7"


def test_dropped_connection_then_recovery(rpc: Rpc, odoo) -> None:
    odoo.inject_fault("drop", method="search")
    host, port = rpc.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = xmlrpc.client.dumps((DB, UID, PWD, "res.partner", "search", [[]]), "execute_kw")
    conn.request("POST", "/xmlrpc/2/object", body, {"Content-Type": "text/xml"})
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.getresponse()
    conn.close()
    assert 3 in rpc("res.partner", "search", [])
    # xmlrpc.client retries a dropped keep-alive request once by itself: two drops reach the caller
    odoo.inject_fault("drop", count=2, method="search")
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        rpc("res.partner", "search", [])


def test_delay_then_normal_answer(rpc: Rpc, odoo) -> None:
    odoo.inject_fault("delay", seconds=0.3, model="res.partner")
    t0 = time.monotonic()
    assert rpc("res.partner", "search_count", []) >= 1
    assert time.monotonic() - t0 >= 0.3


def test_serialization_failure_as_odoo_reports_it(rpc: Rpc, odoo) -> None:
    before = odoo.snapshot(["res.partner"])
    odoo.inject_fault("serialization", model="res.partner", method="write")
    fault = rpc.fault("res.partner", "write", [3], {"name": "changed"})
    assert fault.faultCode == 1 and fault.faultString.rstrip("\n").splitlines()[-1] == SERIALIZATION
    assert odoo.snapshot(["res.partner"]) == before
    odoo.inject_fault("serialization", model="res.partner", method="write")
    body = rpc.jsonrpc_kw("res.partner", "write", [3], {"name": "changed"})
    assert body["error"]["data"]["name"] == "psycopg2.errors.SerializationFailure"
    assert body["error"]["data"]["message"] == "could not serialize access due to concurrent update\n"  # psycopg2's


def test_injected_captured_odoo_fault_by_case(rpc: Rpc) -> None:
    added = rpc.admin("POST", "/sandbox/faults", {"kind": "odoo", "case": "write of a missing id",
                                                  "model": "res.partner"})
    assert added["faults"][0]["count"] == 1
    assert rpc.admin("GET", "/sandbox/faults")["faults"][0]["case"] == "write of a missing id"
    fault = rpc.fault("res.partner", "write", [3], {"name": "fine"})
    assert (fault.faultCode, fault.faultString) == (
        2, "Record does not exist or has been deleted.\n(Record: res.partner(999999,), User: 2)")
    assert rpc("res.partner", "read", [3], fields=["name"])[0]["name"] == "Administrator"
    rpc.admin("POST", "/sandbox/faults", {"kind": "odoo", "case": "unknown field on create", "count": 3})
    assert rpc.admin("DELETE", "/sandbox/faults") == {"ok": True}
    assert rpc.admin("GET", "/sandbox/faults") == {"faults": []}


def test_injected_fault_with_explicit_code(rpc: Rpc, odoo) -> None:
    odoo.inject_fault("odoo", code=2, message="Boom from a test", method="search_read")
    assert rpc.fault("crm.stage", "search_read", []).faultString == "Boom from a test"


def test_batched_create_is_one_transaction(rpc: Rpc, odoo) -> None:
    snap = rpc.admin("GET", "/sandbox/snapshot?models=res.partner,mail.message,mail.followers")
    fault = rpc.fault("res.partner", "create", [{"name": "ok 1"}, {"name": "ok 2", "parent_id": 999999}])
    assert fault.faultCode == 2
    body = rpc.jsonrpc_kw("res.partner", "create", [{"name": "ok 3"}, {"name": "ok 4", "bad_field": 1}])
    assert body["error"]["data"]["name"] == "builtins.ValueError"
    assert rpc.admin("GET", "/sandbox/snapshot?models=res.partner,mail.message,mail.followers") == snap
    assert sorted(snap) == ["mail.followers", "mail.message", "res.partner"]


def test_failed_nested_write_rolls_back_everything(rpc: Rpc, odoo) -> None:
    co = rpc("res.partner", "create", {"name": "Co", "is_company": True, "city": "A"})
    kid = rpc("res.partner", "create", {"name": "Kid", "parent_id": co})
    before = odoo.snapshot()
    # the city write reaches the child, then the recursive parent fails the whole call
    assert rpc.fault("res.partner", "write", [co], {"city": "B", "parent_id": kid}).faultCode == 2
    assert odoo.snapshot() == before


def test_stats_count_calls_per_model_and_method(rpc: Rpc) -> None:
    rpc.admin("POST", "/sandbox/stats/reset")
    rpc("res.partner", "create", [{"name": "a"}, {"name": "b"}])
    rpc("res.partner", "search", [])
    rpc("res.partner", "search", [])
    rpc.common.authenticate(DB, "admin", "admin", {})
    stats = rpc.admin("GET", "/sandbox/stats")
    assert stats["calls"]["res.partner"] == {"create": 1, "search": 2}
    assert stats["calls"]["common"] == {"authenticate": 1} and stats["total"] == 4


def test_mail_queue_and_chatter_counts(rpc: Rpc) -> None:
    pid = rpc("res.partner", "create", {"name": "Guest", "email": "guest@example.com"})
    rpc("calendar.event", "create", {"name": "Future", "start": "2099-01-01 10:00:00", "stop": "2099-01-01 11:00:00",
                                     "partner_ids": [[6, 0, [pid]]]})
    got = rpc.admin("GET", "/sandbox/mail")
    assert got["mail_count"] == 1 and got["mail"][0]["subject"] == "Invitation to Future"
    assert got["messages"] == {"res.partner": 1} and got["chatter"]["res.partner"] == {str(pid): 1}
    assert got["followers"]["res.partner"] == 1


def test_comment_to_followers_is_queued(rpc: Rpc) -> None:
    pid = rpc("res.partner", "create", {"name": "Fan", "email": "fan@example.com"})
    lid = rpc("crm.lead", "create", {"name": "Followed"})
    rpc("crm.lead", "message_subscribe", [lid], partner_ids=[pid])
    rpc("crm.lead", "message_post", [lid], body="hi", message_type="comment", subtype_xmlid="mail.mt_comment")
    mails = rpc("mail.mail", "search_read", [], fields=["recipient_ids", "model", "res_id"])
    assert [(m["recipient_ids"], m["model"], m["res_id"]) for m in mails] == [([pid], "crm.lead", lid)]


def test_reset_over_http(rpc: Rpc) -> None:
    pid = rpc("res.partner", "create", {"name": "temp"})
    assert rpc.admin("POST", "/sandbox/reset") == {"ok": True}
    assert rpc("res.partner", "read", [pid], fields=["name"]) == []
    assert rpc("res.partner", "search_count", [], context={"active_test": False}) == 6


def test_snapshot_is_comparable_plain_data(odoo) -> None:
    snap = odoo.snapshot(["crm.stage"])
    assert snap["crm.stage"][4]["name"] == "Won" and snap["crm.stage"][4]["is_won"] is True
    assert odoo.snapshot("crm.stage") == snap


def test_version_19_json2_endpoint() -> None:
    server = serve(version=19, api_key="k-admin", users=["bob:bobpw:k-bob"])
    try:
        url = server.url
        assert xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common").version()["server_version"] == "19.0"
        auth = {"Authorization": "bearer k-admin", "X-Odoo-Database": DB}
        status, body, _ = post_json(f"{url}/json/2/res.partner/search_read",
                                    {"domain": [["id", "=", 3]], "fields": ["name"]}, auth)
        assert (status, body) == (200, [{"id": 3, "name": "Administrator"}])
        status, body, _ = post_json(f"{url}/json/2/res.partner/read", {"ids": [3], "fields": ["email"]}, auth)
        assert body == [{"id": 3, "email": False}]     # a fresh 19.0 database's admin has none (records19.json)
        status, body, _ = post_json(f"{url}/json/2/res.partner/create", {"vals_list": [{"name": "J2"}],
                                                                        "context": {"tracking_disable": True}},
                                    {"Authorization": "bearer k-bob", "X-Odoo-Database": DB})
        assert status == 200 and isinstance(body, list)
        status, body, _ = post_json(f"{url}/json/2/res.partner/write", {"ids": [999999], "vals": {"name": "x"}},
                                    auth)
        assert status == 404 and body["name"] == "odoo.exceptions.MissingError"
        status, body, _ = post_json(f"{url}/json/2/crm.lead/create", {"vals_list": [{"type": "lead"}]}, auth)
        assert status == 422 and body["name"] == "odoo.exceptions.ValidationError"
        # the real 19.0's answers (captured over JSON-2): statuses, names and messages
        assert body["message"].startswith("The operation cannot be completed: Missing required value for the field "
                                          "'Opportunity' (name).\nModel: 'Lead/Opportunity' (crm.lead)")
        status, body, _ = post_json(f"{url}/json/2/res.partner/search", {}, {**auth, "Authorization": "bearer nope"})
        assert (status, body["name"], body["message"]) == (401, "werkzeug.exceptions.Unauthorized", "Invalid apikey")
        status, body, _ = post_json(f"{url}/json/2/res.partner/search", {}, {"X-Odoo-Database": DB})
        assert (status, body["name"]) == (401, "werkzeug.exceptions.Unauthorized")
        assert "use an API Key with a Bearer Authorization header" in body["message"]
        status, body, _ = post_json(f"{url}/json/2/no.model/search", {}, auth)
        assert (status, body["name"], body["message"]) == (404, "werkzeug.exceptions.NotFound",
                                                           "the model 'no.model' does not exist")
        status, body, _ = post_json(f"{url}/json/2/res.partner/no_method", {}, auth)
        assert (status, body["message"]) == (404, "The method 'res.partner.no_method' does not exist")
        status, body, _ = post_json(f"{url}/json/2/res.partner/_private", {}, auth)
        assert (status, body["name"]) == (403, "odoo.exceptions.AccessError")
        assert body["message"] == "Private methods (such as 'res.partner._private') cannot be called remotely."
        status, body, _ = post_json(f"{url}/json/2/res.partner/search", {"badparameter": 1}, auth)
        assert status == 500 and body["name"] == "builtins.TypeError" and "badparameter" in body["message"]
        status, body, _ = post_json(f"{url}/json/2/res.partner/create", {"vals_list": [{"name": "a", "x_nope": "1"}]},
                                    auth)
        assert (status, body["name"], body["message"]) == (500, "builtins.ValueError",
                                                           "Invalid field 'x_nope' in 'res.partner'")
        status, body, _ = post_json(f"{url}/json/2/res.partner/write", {"ids": [3], "vals": {"x_nope": "1"}}, auth)
        assert (status, body["name"], body["message"]) == (500, "builtins.KeyError", "x_nope")
        status, body, _ = post_json(f"{url}/json/2/res.partner/read", {"ids": [3], "fields": ["x_nope"]}, auth)
        assert (status, body["message"]) == (500, "Invalid field 'x_nope' on 'res.partner'")
        server.state.inject_fault("odoo", name="odoo.exceptions.LockError", message="Cannot grab a lock on records")
        status, body, _ = post_json(f"{url}/json/2/res.partner/write", {"ids": [3], "vals": {"name": "x"}}, auth)
        assert (status, body["name"]) == (409, "odoo.exceptions.LockError")
        for headers in ({"Authorization": "bearer k-admin"}, {**auth, "X-Odoo-Database": "other"}):
            status, body, _ = post_json(f"{url}/json/2/res.partner/search", {}, headers)
            assert status == 404 and "Not Found" in body  # no database: an HTML page, as the real one
        # API keys also work as the password of XML-RPC
        obj = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object")
        assert obj.execute_kw(DB, 2, "k-admin", "res.partner", "search_count", [[["id", "=", 3]]]) == 1
    finally:
        server.stop()


def test_database_and_users_options() -> None:
    server = serve(database="other", users=["bob:secret"])
    try:
        common = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common")
        bob = common.authenticate("other", "bob", "secret", {})
        assert isinstance(bob, int) and bob > 2
        assert common.authenticate("other", "bob", "wrong", {}) is False
        with pytest.raises(xmlrpc.client.Fault) as info:
            common.authenticate("crmtest", "admin", "admin", {})
        assert 'database "crmtest" does not exist' in info.value.faultString.rstrip("\n").splitlines()[-1]
        obj = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object")
        lid = obj.execute_kw("other", bob, "secret", "crm.lead", "create", [{"name": "bob's"}])
        row = obj.execute_kw("other", bob, "secret", "crm.lead", "read", [[lid]], {"fields": ["user_id", "team_id"]})
        assert row[0]["user_id"] == [bob, "bob"] and row[0]["team_id"] is False
        server.state.reset()
        assert common.authenticate("other", "bob", "secret", {}) == bob
    finally:
        server.stop()


def test_cli_prints_its_url_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "crm_sandbox.cli", "odoo", "--port", "0", "--database", "cli"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        assert xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common").authenticate("cli", "admin", "admin", {}) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_concurrent_batches_get_distinct_ids(rpc: Rpc) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            client = Rpc(rpc.url)
            results.append(client("res.partner", "create", [{"name": f"T{n}-{i}"} for i in range(200)],
                                  context={"tracking_disable": True}))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 800


def test_unknown_path_is_404(rpc: Rpc) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{rpc.url}/nope")
    assert info.value.code == 404


def test_snapshot_ignore_and_execute(rpc: Rpc, odoo) -> None:
    before = rpc.admin("GET", "/sandbox/snapshot?models=res.partner&ignore=write_date,write_uid")
    pid = odoo.execute("res.partner", "create", {"name": "tmp"}, context={"tracking_disable": True})
    odoo.execute("res.partner", "write", [3], {"name": "Renamed"})
    odoo.execute("res.partner", "write", [3], {"name": "Administrator"})
    odoo.execute("res.partner", "unlink", [pid])
    assert rpc.admin("GET", "/sandbox/snapshot?models=res.partner&ignore=write_date,write_uid") == before
    assert "write_date" not in before["res.partner"]["3"]
    assert odoo.snapshot("res.partner") != odoo.snapshot("res.partner", ignore="write_date")


def test_note_mentions_notify_only_the_mentioned(rpc: Rpc) -> None:
    fan = rpc("res.partner", "create", {"name": "Fan", "email": "fan@example.com"})
    named = rpc("res.partner", "create", {"name": "Named", "email": "named@example.com"})
    lid = rpc("crm.lead", "create", {"name": "Quiet"})
    rpc("crm.lead", "message_subscribe", [lid], partner_ids=[fan])
    rpc("crm.lead", "message_post", [lid], body="internal", subtype_xmlid="mail.mt_note")
    assert rpc("mail.mail", "search_count", []) == 0
    rpc("crm.lead", "message_post", [lid], body="to you", subtype_xmlid="mail.mt_note", partner_ids=[named])
    mails = rpc("mail.mail", "search_read", [], fields=["recipient_ids"])
    assert [m["recipient_ids"] for m in mails] == [[named]]


def test_legacy_execute_and_db_service(rpc: Rpc) -> None:
    assert rpc.object.execute(DB, UID, PWD, "res.partner", "search", [["id", "=", 3]]) == [3]
    assert xmlrpc.client.ServerProxy(f"{rpc.url}/xmlrpc/2/db").list() == [DB]
    legacy = xmlrpc.client.ServerProxy(f"{rpc.url}/xmlrpc/common")
    assert legacy.authenticate(DB, "admin", "admin", {}) == 2
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.ServerProxy(f"{rpc.url}/xmlrpc/object").execute_kw(DB, UID, "bad", "res.partner", "search", [[]])
    assert (info.value.faultCode, info.value.faultString) == ("AccessDenied", "Access Denied")


def test_context_get_names_the_caller() -> None:
    server = serve(version=19, api_key="k-admin")
    try:
        status, body, _ = post_json(f"{server.url}/json/2/res.users/context_get", {},
                                    {"Authorization": "bearer k-admin", "X-Odoo-Database": DB})
        assert (status, body) == (200, {"lang": "en_US", "tz": False, "uid": 2})
    finally:
        server.stop()


@pytest.mark.parametrize("call", [
    ("res.partner", "create", [[1, 2]]),
    ("res.partner", "create", ["x"]),
    ("res.partner", "write", [["a"], {"name": "x"}]),
    ("res.partner", "write", [[3], {"child_ids": "junk"}]),
    ("res.partner", "write", [[3], {"category_id": [[9, 9]]}]),
    ("res.partner", "search", ["not a domain"]),
    ("res.partner", "search", [[["name", "=", "x", "extra"]]]),
    ("res.partner", "search", [["&", ["name", "=", "x"]]]),
    ("res.partner", "search", [[]], {"order": "no_field desc"}),
    ("res.partner", "read", [[3]], {"fields": "name"}),
    ("res.partner", "read_group", [[], ["color"], ["no_field"]]),
    ("crm.lead", "load", [["no_col"], [["x"]]]),
    ("crm.lead", "message_post", [[]]),
    ("res.partner", "create", [{"name": "x", "color": "abc"}]),
    ("res.partner", "create", [{"name": "x", "partner_latitude": "abc"}]),
    ("res.partner", "create", [{"name": "x", "date": 12}]),
])
def test_bad_calls_answer_faults_not_dropped_connections(call: tuple, rpc: Rpc) -> None:
    model, method, args, *kw = call
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.object.execute_kw(DB, UID, PWD, model, method, args, *(kw or [{}]))
    assert info.value.faultCode in (1, 2)
    assert info.value.faultString.strip()
    body = rpc.jsonrpc("object", "execute_kw", [DB, UID, PWD, model, method, args, *(kw or [{}])])
    assert body["error"]["code"] == 200 and body["error"]["data"]["name"]
