"""What changed between two versions of a mapping file, field by field (pure; no Airflow, no I/O).

``field_changes(old_text, new_text)`` compares two pair files' YAML: per object, the Odoo fields added, removed
or changed (their spec: ``from``, ``fn``, ``ref``...), the object's other keys (stream, target, conditions...),
and the file's pair-wide sections (settings, lookups, x_fields, custom_fields, targets). A run's report lists them
against the confirmed snapshot of the previous run's mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

#: libyaml's safe loader where PyYAML has it (two pair files in milliseconds; the plan compares its proposal)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: pair-wide sections compared key by key
_SECTIONS = ("settings", "lookups", "x_fields", "custom_fields", "targets", "approvals")


def _show(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _load(text: str) -> Mapping[str, Any]:
    raw = yaml.load(text, Loader=_LOADER) if text else {}      # noqa: S506 - a safe loader (libyaml's when there)
    return raw if isinstance(raw, Mapping) else {}


def _row(obj: str, field: str, change: str, before: Any = None, after: Any = None) -> dict[str, str]:
    return {"object": obj, "field": field, "change": change, "before": _show(before), "after": _show(after)}


def _compare(obj: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for key in sorted(set(old) | set(new), key=str):
        name = str(key)
        if key not in old:
            out.append(_row(obj, name, "added", after=new[key]))
        elif key not in new:
            out.append(_row(obj, name, "removed", before=old[key]))
        elif old[key] != new[key]:
            out.append(_row(obj, name, "changed", old[key], new[key]))
    return out


def field_changes(old_text: str, new_text: str) -> list[dict[str, str]]:
    """Rows ``{object, field, change (added | removed | changed), before, after}`` from ``old_text`` to
    ``new_text`` (two pair files); an object's non-field keys are named ``(stream)``, ``(target)``...; the
    pair-wide sections are rows of object ``(settings)``, ``(x_fields)``...; empty when nothing changed."""
    old, new = _load(old_text), _load(new_text)
    rows: list[dict[str, str]] = []
    old_objs, new_objs = old.get("objects") or {}, new.get("objects") or {}
    for name in [*old_objs, *(n for n in new_objs if n not in old_objs)]:
        o, n = old_objs.get(name), new_objs.get(name)
        if o is None:
            rows.append(_row(str(name), "", "object added", after=sorted((n or {}).get("fields") or {})))
            continue
        if n is None:
            rows.append(_row(str(name), "", "object removed", before=sorted((o or {}).get("fields") or {})))
            continue
        o, n = o or {}, n or {}
        rows += _compare(str(name), o.get("fields") or {}, n.get("fields") or {})
        other = [{**r, "field": f"({r['field']})"} for r in _compare(
            str(name), {k: v for k, v in o.items() if k not in ("fields", "doc")},
            {k: v for k, v in n.items() if k not in ("fields", "doc")})]
        rows += other
    for section in _SECTIONS:
        o, n = old.get(section) or {}, new.get(section) or {}
        if o != n:
            if isinstance(o, Mapping) and isinstance(n, Mapping):
                rows += _compare(f"({section})", o, n)
            else:
                rows.append(_row(f"({section})", "", "changed", o, n))
    return rows


def summary(rows: list[dict[str, str]], limit: int = 12) -> str:
    """One line: ``3 mapping change(s): Contact.x_score added, Deal.amount changed, ...``."""
    if not rows:
        return "no mapping change"
    names = [f"{r['object']}.{r['field']} {r['change']}" if r["field"] else f"{r['object']} {r['change']}"
             for r in rows]
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(rows)} mapping change(s): " + ", ".join(names[:limit]) + more
