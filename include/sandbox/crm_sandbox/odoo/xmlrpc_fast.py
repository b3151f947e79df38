"""A faster XML-RPC request parser (ElementTree's C parser, then one walk), same result as
``xmlrpc.client.loads(data, use_builtin_types=True)``; anything unusual falls back to the stdlib."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
import xmlrpc.client
from datetime import datetime
from typing import Any


class _Unsupported(Exception):
    pass


def _bool(text: str | None) -> bool:
    text = (text or "").strip()
    if text not in ("0", "1"):
        raise _Unsupported
    return text == "1"


_SCALAR = {
    "string": lambda t: t or "",
    "int": lambda t: int(t),
    "i4": lambda t: int(t),
    "i8": lambda t: int(t),
    "boolean": _bool,
    "double": lambda t: float(t),
    "nil": lambda t: None,
    "dateTime.iso8601": lambda t: datetime.strptime((t or "").strip(), "%Y%m%dT%H:%M:%S"),
    "base64": lambda t: base64.decodebytes((t or "").encode("ascii")),
}


def _value(node: ET.Element) -> Any:
    # the common tags are tested inline, in order of frequency (this walk is the parser's hot loop)
    if not len(node):
        return node.text or ""
    child = node[0]
    tag = child.tag
    if tag == "string":
        return child.text or ""
    if tag == "struct":
        return {m[0].text or "": _value(m[1]) for m in child}
    if tag == "int" or tag == "i4":
        return int(child.text)  # type: ignore[arg-type]
    if tag == "boolean":
        return _bool(child.text)
    if tag == "array":
        return [_value(v) for v in child[0]] if len(child) else []
    conv = _SCALAR.get(tag)
    if conv is None:
        raise _Unsupported
    return conv(child.text)


def loads(data: bytes) -> tuple[tuple[Any, ...], str | None]:
    try:
        root = ET.fromstring(data)
        if root.tag != "methodCall":
            raise _Unsupported
        name = root.find("methodName")
        params = root.find("params")
        values = tuple(_value(p[0]) for p in params) if params is not None else ()
        return values, (name.text if name is not None else None)
    except Exception:  # noqa: BLE001 - exact stdlib behaviour (and errors) for anything unusual
        return xmlrpc.client.loads(data, use_builtin_types=True)
