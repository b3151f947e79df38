"""Odoo values in one canonical form: what we write and what Odoo reads back compare equal.

``read`` answers a many2one as ``[id, "name"]``, an x2many as a list of ids, an empty value as
``False``; ``write`` takes an id, commands or ids, and ``None``/``""``/``False`` for empty. Everything
that compares values (changed-field detection, conflicts, rollback checks, the field-level diff)
goes through :func:`canonical`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any


def _is_empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str | list | tuple) and len(value) == 0)


def canonical(value: Any, ftype: str | None = None) -> Any:
    """Return ``value`` (read or write form) in the canonical form for a field of type ``ftype``."""
    if ftype == "boolean":
        return bool(value)
    if _is_empty(value):
        return [] if ftype in ("one2many", "many2many") else False
    if ftype == "many2one":
        if isinstance(value, list | tuple):
            return int(value[0]) if value else False
        return int(value)
    if ftype in ("one2many", "many2many"):
        return sorted(_x2many_ids(value))
    if ftype == "binary":
        return _digest(value)
    if ftype in ("float", "monetary"):
        return round(float(value), 6)
    if ftype == "integer":
        return int(value)
    if ftype in ("char", "text", "html", "selection", "date", "datetime"):
        return str(value)
    return value


def _digest(value: Any) -> str:
    """A file as ``sha1:<hex>`` of its bytes (base64 in, as Odoo reads and writes it): what the state
    DB keeps and compares instead of the file itself. Odoo's own ``checksum`` is the same sha1."""
    text = value.decode() if isinstance(value, bytes | bytearray) else str(value)
    if text.startswith("sha1:"):
        return text
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = text.encode()
    return "sha1:" + hashlib.sha1(raw).hexdigest()  # noqa: S324 - a content fingerprint, as Odoo's checksum


def _x2many_ids(value: Any) -> set[int]:
    """Ids a list of ids or of x2many commands ends with (6 = set, 4 = link, 3 = unlink, 5 = clear)."""
    ids: set[int] = set()
    for item in value:
        if isinstance(item, int):
            ids.add(item)
        elif isinstance(item, list | tuple) and item:
            cmd = item[0]
            if cmd == 6:
                ids = set(item[2])
            elif cmd == 4:
                ids.add(item[1])
            elif cmd == 3:
                ids.discard(item[1])
            elif cmd == 5:
                ids = set()
    return ids


def canonical_vals(vals: Mapping[str, Any], fields: Mapping[str, Mapping[str, Any]], *,
                   digests: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Canonical form of a dict of values, typed by ``fields`` (a ``fields_get`` answer).

    :param digests: ``{binary field: "sha1:<hex>"}`` already known (the download hashed the file's bytes): the
        canonical value of those fields, taken instead of decoding their base64 again.
    """
    out = {}
    for k, v in vals.items():
        ftype = (fields.get(k) or {}).get("type")
        out[k] = digests[k] if digests and k in digests and ftype == "binary" else canonical(v, ftype)
    return out


def to_write(value: Any, ftype: str | None) -> Any:
    """A canonical value in the form ``write`` accepts (x2many ids become a set command)."""
    if ftype in ("one2many", "many2many"):
        return [(6, 0, list(value or []))]
    return value


def changed_fields(new: Mapping[str, Any], old: Mapping[str, Any],
                   fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Fields of ``new`` whose canonical value differs from ``old`` (a missing old value differs)."""
    out = {}
    for name, value in new.items():
        ftype = (fields.get(name) or {}).get("type")
        if name not in old or canonical(value, ftype) != canonical(old[name], ftype):
            out[name] = value
    return out


def content_hash(vals: Mapping[str, Any]) -> str:
    """A stable hash of a dict of values (key order and tuple/list differences do not matter)."""
    blob = json.dumps(vals, sort_keys=True, default=str, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()
