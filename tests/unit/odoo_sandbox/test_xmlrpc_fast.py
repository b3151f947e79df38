"""The fast XML-RPC request parser answers exactly as ``xmlrpc.client.loads(..., use_builtin_types=True)``."""

from __future__ import annotations

import xmlrpc.client
from datetime import datetime
from xml.parsers.expat import ExpatError

import pytest

from crm_sandbox.odoo import xmlrpc_fast


@pytest.mark.parametrize("params", [
    ("crmtest", 2, "admin", "res.partner", "create", [{"name": "x", "is_company": True, "color": 3}]),
    ("a", 1, -5, 2.5, True, False, None, [], {}, "", "<&>", "é", 2**31 - 1),
    ([1, [2, {"x": [3, {"y": None}]}]], {"k": {"n": None, "l": []}}),
    (b"\x00\xffbytes", datetime(2020, 1, 2, 3, 4, 5)),
    (),
])
def test_same_as_stdlib(params: tuple) -> None:
    body = xmlrpc.client.dumps(params, "execute_kw", allow_none=True).encode()
    assert xmlrpc_fast.loads(body) == xmlrpc.client.loads(body, use_builtin_types=True)


def test_unusual_documents_fall_back_to_the_stdlib() -> None:
    i8 = b"<methodCall><methodName>m</methodName><params><param><value><i8>2147483648</i8></value></param>" \
         b"</params></methodCall>"
    assert xmlrpc_fast.loads(i8) == ((2147483648,), "m")
    bare = b"<methodCall><methodName>m</methodName><params><param><value>text</value></param></params></methodCall>"
    assert xmlrpc_fast.loads(bare) == (("text",), "m")
    with pytest.raises(TypeError):
        xmlrpc_fast.loads(b"<methodCall><params><param><value><boolean>2</boolean></value></param></params>"
                          b"</methodCall>")
    with pytest.raises(ExpatError):
        xmlrpc_fast.loads(b"not xml")
