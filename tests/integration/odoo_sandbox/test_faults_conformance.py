"""Replay every case of the captured faults.json against the sandbox over real HTTP.

Each case's ``call`` is parsed (Python-literal ``execute_kw(...)`` / ``common.x(...)``, optionally after
``POST /path``); ids that meant throw-away records (``lead_id``, ``A`` …) are records created first.
XML-RPC faults are compared on code and message (full faultString for codes 2-4, first and last lines
and line count of the traceback for code 1); JSON-RPC on the whole error object except the traceback
text, whose last line and length are compared with the summary the capture kept.
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

from crm_sandbox.odoo.testing import DB, PWD, UID, post_json

pytestmark = pytest.mark.integration
SHARED = Path(os.environ.get("CRM_SHARED_DIR", Path(__file__).resolve().parents[3].parent / "shared"))
CASES = json.loads((SHARED / "odoo17" / "faults.json").read_text())

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


def make_namespace(odoo) -> dict[str, Any]:
    """Throw-away records the captured calls refer to, created through the sandbox's own API."""
    def ex(model: str, method: str, *args: Any, **kw: Any) -> Any:
        return odoo.execute_kw(DB, UID, PWD, model, method, list(args), kw)

    lead_id = ex("crm.lead", "create", {"name": "FaultTest lead"})
    lost_id = ex("crm.lead", "create", {"name": "FaultTest lost"})
    ex("crm.lead", "action_set_lost", [lost_id], lost_reason_id=1)
    a = ex("res.partner", "create", {"name": "FaultTest A", "is_company": True})
    b = ex("res.partner", "create", {"name": "FaultTest B", "parent_id": a})
    noemail = ex("res.partner", "create", {"name": "FaultTest no email"})
    return {"db": DB, "uid": UID, "pwd": PWD, "lead_id": lead_id, "lost_id": lost_id, "A": a, "B": b,
            "partner_noemail": noemail, "crm_lead_model_id": 393, "__builtins__": {}}


def count_named(odoo, model: str, prefix: str) -> int:
    return odoo.execute_kw(DB, UID, PWD, model, "search_count", [[["name", "=like", f"{prefix}%"]]],
                           {"context": {"active_test": False}})


@pytest.mark.parametrize("case", _cases())
def test_fault_case(case: dict[str, Any], odoo, odoo_server) -> None:
    url = odoo_server.url
    ns = make_namespace(odoo)
    path, kind, func, args_src = parse_call(case["call"])
    args = eval(args_src, ns)  # noqa: S307 - captured literal call, placeholders bound above
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
            assert got["data"]["debug"].splitlines()[-1] == summary.group(2)
            assert len(got["data"]["debug"].splitlines()) == int(summary.group(1))
        else:
            assert body.get("result") == case["json_result"]
        _check_committed(case, odoo, ns)
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
            lines = fault.faultString.splitlines()
            assert lines[0] == case["faultString_first_line"]
            # ids of throw-away records in the capture (lead 42, lost lead 38) are ours here
            want_last = case["message"].replace("crm.lead(42, 38)", f"crm.lead({ns['lead_id']}, {ns['lost_id']})")
            assert lines[-1] == want_last
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
    if case.get("rows_landed") is not None:
        model = args[3]
        prefix = "FaultBatch" if "FaultBatch" in case["call"] else "FaultLoad"
        assert count_named(odoo, model, prefix) == case["rows_landed"]
    _check_committed(case, odoo, ns)


def _check_committed(case: dict[str, Any], odoo, ns: dict[str, Any]) -> None:
    """For calls that fault after committing (a None result over XML-RPC), the change is there."""
    if not case.get("committed"):
        return
    want = case["committed"][0]
    fields = [f for f in want if f not in ("id",)]
    got = odoo.execute_kw(DB, UID, PWD, "crm.lead", "read", [[ns["lead_id"]]], {"fields": fields})[0]
    for f in fields:
        if f == "date_closed":
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", got[f])
        else:
            assert got[f] == want[f], f


def test_every_case_is_replayed() -> None:
    assert len(CASES) == 67
