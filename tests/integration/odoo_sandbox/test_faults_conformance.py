"""Replay every case of the captured faults.json over real HTTP, on the sandbox and on the real Odoo 17
(one database per module; the throw-away records the calls name are made once).

Each case's ``call`` is parsed (Python-literal ``execute_kw(...)`` / ``common.x(...)``, optionally after
``POST /path``); ids that meant throw-away records (``lead_id``, ``A`` …) are records created first.
XML-RPC faults are compared on code and message (full faultString for codes 2-4, first and last lines
and line count of the traceback for code 1); JSON-RPC on the whole error object except the traceback
text, whose last line is compared with the summary the capture kept (and its length, on the sandbox: a real
server's stack depth depends on its state). A message quoting the
PostgreSQL port (an unknown database) is compared with the port masked: the capture's server listened on 5432.
"""

from __future__ import annotations

import ast
import json
import os
import re
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from crm_sandbox.odoo.testing import Rpc, post_json

pytestmark = pytest.mark.integration
#: the captured faults of a real Odoo 17; Odoo 19's own: tests/integration/odoo_sandbox/test_odoo19_behaviours.py
ODOO_TARGETS = ("sandbox", "odoo17")
SHARED = Path(os.environ.get("CRM_SHARED_DIR", Path(__file__).resolve().parents[3].parent / "shared"))
CASES = json.loads((SHARED / "odoo17" / "faults.json").read_text())

NODB_FRAMES_LINES = 6
PLACEHOLDERS = {
    "<ir.model id of crm.lead>": "crm_lead_model_id",
    "<crm.lead>": "crm_lead_model_id",
    "<partner without email>": "partner_noemail",
}


def _cases() -> list[Any]:
    return [pytest.param(c, id=f"{i:02d}-{c['transport']}-{c['case']}") for i, c in enumerate(CASES)]


def parse_call(call: str) -> tuple[str | None, str, str, str]:
    """``(path, kind, function source, args source)`` of a captured call string."""
    path = None
    m = re.match(r"POST (\S+) (.*)$", call, re.S)
    if m:
        path, call = m.group(1), m.group(2)
    for needle, name in PLACEHOLDERS.items():
        call = call.replace(needle, name)
    tree = ast.parse(call.strip(), mode="eval")  # comments are dropped by the tokenizer
    node = tree.body
    assert isinstance(node, ast.Call)
    func = ast.unparse(node.func)
    args = "[" + ", ".join(ast.unparse(a) for a in node.args) + "]"
    kind = "common" if func.startswith("common.") else "object"
    return path, kind, func.split(".")[-1], args


@pytest.fixture(scope="module")
def rpc(odoo_target) -> Rpc:
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def records(rpc: Rpc) -> dict[str, Any]:
    """The records the captured calls refer to, made once per module (a case that changes ``lead_id``
    gets a lead of its own)."""
    return make_namespace(rpc)


def make_namespace(rpc: Rpc) -> dict[str, Any]:
    """Throw-away records the captured calls refer to, created over XML-RPC (four calls)."""
    lead_id, lost_id = rpc("crm.lead", "create", [{"name": "FaultTest lead"}, {"name": "FaultTest lost"}])
    rpc.jsonrpc_kw("crm.lead", "action_set_lost", [lost_id], lost_reason_id=1)   # None: not over XML-RPC
    a = rpc("res.partner", "create", {"name": "FaultTest A", "is_company": True})
    b, noemail = rpc("res.partner", "create", [{"name": "FaultTest B", "parent_id": a},
                                                {"name": "FaultTest no email"}])
    return {"db": rpc.db, "uid": rpc.uid, "pwd": rpc.password, "lead_id": lead_id, "lost_id": lost_id, "A": a,
            "B": b, "partner_noemail": noemail, "crm_lead_model_id": 393, "__builtins__": {}}


def count_named(rpc: Rpc, model: str, prefix: str) -> int:
    return rpc(model, "search_count", [["name", "=like", f"{prefix}%"]], context={"active_test": False})


def mask_port(text: str) -> str:
    """``... at "127.0.0.1", port 5432 failed ...`` with the port masked (the capture's server used 5432)."""
    return re.sub(r'(", port )\d+( failed)', r"\1<port>\2", text)


@pytest.mark.parametrize("case", _cases())
def test_fault_case(case: dict[str, Any], rpc: Rpc, records: dict[str, Any], odoo_target) -> None:
    url = rpc.url
    ns = dict(records)
    if case.get("committed"):
        ns["lead_id"] = rpc("crm.lead", "create", {"name": "FaultTest lead"})
    path, kind, func, args_src = parse_call(case["call"])
    args = eval(args_src, ns)  # noqa: S307 - captured literal call, placeholders bound above
    landed = None
    if case.get("rows_landed") is not None:
        prefix = "FaultBatch" if "FaultBatch" in case["call"] else "FaultLoad"
        landed = (args[3], prefix, count_named(rpc, args[3], prefix))
    if case["transport"] == "jsonrpc":
        service_args = args if kind == "common" else args
        _status, body, _headers = post_json(f"{url}/jsonrpc", {
            "jsonrpc": "2.0", "method": "call", "id": 3,
            "params": {"service": kind, "method": func, "args": service_args}})
        assert sorted(body) == sorted(case["json_envelope_keys"])
        if "json_error" in case:
            want, got = case["json_error"], body["error"]
            assert got["code"] == want["code"] and got["message"] == want["message"]
            for key in ("name", "message", "arguments", "context"):
                assert got["data"][key] == want["data"][key], key
            summary = re.match(r"<traceback: (\d+) lines, last line: (.*)>$", want["data"]["debug"], re.S)
            assert summary
            # the traceback ends with the message and a newline: a message ending with one leaves a blank
            # line, which the capture's summary left out
            assert got["data"]["debug"].endswith(f"{got['data']['message']}\n")
            assert got["data"]["debug"].rstrip("\n").splitlines()[-1] == summary.group(2)
            assert got["data"]["debug"].startswith("Traceback (most recent call last):")
            if odoo_target.kind == "sandbox":
                # the emulator reproduces the capture's depth. The capture's server held one database, so
                # /jsonrpc ran inside it (Application._serve_db: 3 frames more than _serve_nodb, which a
                # server holding several databases takes). A real server's depth depends on its state
                # (how many databases, a registry being loaded), so only the emulator is held to it.
                lines = len(got["data"]["debug"].rstrip("\n").splitlines())
                assert lines - int(summary.group(1)) in (0, -NODB_FRAMES_LINES)
        else:
            assert body.get("result") == case["json_result"]
        _check_committed(case, rpc, ns)
        return
    endpoint = f"{url}{path}" if path else f"{url}/xmlrpc/2/{kind}"
    proxy = xmlrpc.client.ServerProxy(endpoint)
    call = getattr(proxy, func)
    if case.get("fault"):
        with pytest.raises(xmlrpc.client.Fault) as info:
            call(*args)
        fault = info.value
        assert fault.faultCode == case["faultCode"]
        if "faultString" in case:
            assert fault.faultString == case["faultString"]
        else:
            # a psycopg2 message ends with a newline, so its traceback ends with a blank line (the capture
            # kept the lines before it)
            psycopg = case.get("exception_line", case["message"]).startswith("psycopg2.")
            assert fault.faultString.endswith("\n\n" if psycopg else "\n")
            assert psycopg or not fault.faultString.endswith("\n\n")
            lines = fault.faultString.rstrip("\n").splitlines()
            assert lines[0] == case["faultString_first_line"]
            # ids of throw-away records in the capture (lead 42, lost lead 38) are ours here
            want_last = case["message"].replace("crm.lead(42, 38)", f"crm.lead({ns['lead_id']}, {ns['lost_id']})")
            assert mask_port(lines[-1]) == mask_port(want_last)
            if odoo_target.kind == "sandbox":  # a real server's depth depends on its state
                assert len(lines) == case["traceback_lines"]
            if case.get("exception_line"):
                assert case["exception_line"] in lines
    else:
        result = call(*args)
        want = case["result"]
        if want in ("created: an int id (not a fault)", "int id returned") or (
                isinstance(want, int) and not isinstance(want, bool) and func == "execute_kw"
                and args[4] == "message_post"):
            assert isinstance(result, int) and not isinstance(result, bool)
        else:
            assert result == want
    if landed is not None:
        model, prefix, before = landed
        assert count_named(rpc, model, prefix) - before == case["rows_landed"]
    _check_committed(case, rpc, ns)


def _check_committed(case: dict[str, Any], rpc: Rpc, ns: dict[str, Any]) -> None:
    """For calls that fault after committing (a None result over XML-RPC), the change is there."""
    if not case.get("committed"):
        return
    want = case["committed"][0]
    fields = [f for f in want if f not in ("id",)]
    got = rpc("crm.lead", "read", [ns["lead_id"]], fields=fields, context={"active_test": False})[0]
    for f in fields:
        if f == "date_closed":
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", got[f])
        else:
            assert got[f] == want[f], f


def test_every_case_is_replayed() -> None:
    assert len(CASES) == 67


def test_a_postgresql_error_message_ends_with_a_newline(rpc: Rpc) -> None:
    """psycopg2 words a server error with a final newline: the XML-RPC traceback ends with a blank line, the
    JSON-RPC message and arguments with the newline (the sandbox once stripped it)."""
    fault = rpc.fault("crm.lead", "create", {"name": "FaultTest pg", "stage_id": "New"})
    assert fault.faultCode == 1 and fault.faultString.endswith("^\n\n")
    exc = 'psycopg2.errors.InvalidTextRepresentation: invalid input syntax for type integer: "New"'
    assert exc in fault.faultString.splitlines()
    data = rpc.jsonrpc_kw("crm.lead", "create", {"name": "FaultTest pg", "stage_id": "New"})["error"]["data"]
    assert data["name"] == "psycopg2.errors.InvalidTextRepresentation"
    assert data["message"].startswith('invalid input syntax for type integer: "New"\nLINE 1: ')
    assert data["message"].endswith("^\n") and data["arguments"] == [data["message"]]
    assert data["debug"].endswith(f"{data['name']}: {data['message']}\n")
