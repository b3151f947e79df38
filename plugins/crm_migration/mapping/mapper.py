"""Map source records to Odoo values: pure, batch-shaped, no I/O.

The engine, per batch of one object:

1. ``needed = refs_needed(spec, records)`` → ``{source_object: {source ids}}``: one crosswalk query per
   referenced object (and :func:`lookups_needed` for named lookups, usually small cached tables);
2. builds a :class:`Refs` (``StaticRefs`` from those answers);
3. ``rows = map_batch(spec, records, refs)`` → loader rows (``engine.load.Row``).

``map_record`` never raises for bad data: a transform error, a required value missing or a
reference to a record not migrated becomes ``row["error"] = (odoo_field, reason)`` and the loader
dead-letters the row. Fields written after the create/update (``deferred: true``) go to
``row["deferred"]``; warnings (a lookup that found nothing, a field left empty by ``on_error: null``)
to ``row["warnings"]``.

Structure helpers: :func:`break_cycles` and :func:`hierarchy_levels` for the company hierarchy,
:func:`resolve_owners` (source users → Odoo users by email, fallback), :class:`CountryIndex` and
:class:`StateIndex` (countries by ISO code, name or alias; states within a country).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

from crm_migration.errors import MappingError
from crm_migration.mapping import transforms as T
from crm_migration.mapping.spec import MISSING, FieldSpec, FnStep, ObjectSpec, fill_id_template, get_path

__all__ = [
    "CountryIndex", "CycleReport", "OwnerMatch", "Refs", "Row", "StateIndex", "StaticRefs", "attached_to",
    "break_cycles",
    "get_path", "hierarchy_levels", "lookups_needed", "map_batch", "map_record", "matches", "refs_needed",
    "resolve_owners", "sf_prefix", "territory_index",
]

log_ = logging.getLogger(__name__)


class Row(TypedDict, total=False):
    """One mapped record (the loader's ``engine.load.Row``, plus ``deferred`` and ``warnings``)."""

    source_id: str
    values: dict[str, Any]
    record: Mapping[str, Any]
    error: tuple[str | None, str]
    deferred: dict[str, Any]
    warnings: list[tuple[str, str]]


@runtime_checkable
class Refs(Protocol):
    """What mapping may know about Odoo: pre-fetched per batch, answered from memory."""

    def odoo_id(self, source_object: str, source_id: str) -> int | None:
        """The Odoo id of a migrated record (crosswalk), ``None`` when not (yet) migrated."""
        ...

    def lookup(self, name: str, key: Any) -> Any:
        """A named lookup: ``owner`` (source user id → res.users id, fallback included), ``owner_partner``
        (→ that user's res.partner id), ``country`` (ISO code or name → res.country id), ``state``
        ((state, country) → res.country.state id), ``lost_reason`` (name → id), ``subtype`` /
        ``activity_type`` (xmlid → id), ``model`` (model name → ir.model id). ``None`` when unknown."""
        ...

    def odoo_value(self, model: str, odoo_id: int, field: str) -> Any:
        """Field ``field`` of Odoo record ``model`` ``odoo_id`` as Odoo reads it (a ``=field.odoo_field`` source
        path), ``None`` when there is no such record."""
        ...


@dataclass
class StaticRefs:
    """A :class:`Refs` over dicts: ``ids[source_object][source_id]``, ``lookups[name]`` (a dict or a
    callable) and ``values[(model, field)][odoo id]`` (or a callable ``(model, odoo id, field) -> value``).
    Dict keys that are strings match case-insensitively; tuples are matched as given."""

    ids: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    lookups: Mapping[str, Mapping[Any, Any] | Callable[[Any], Any]] = field(default_factory=dict)
    values: Mapping[tuple[str, str], Mapping[int, Any]] | Callable[[str, int, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._folded: dict[str, dict[Any, Any]] = {}

    def odoo_id(self, source_object: str, source_id: str) -> int | None:
        return (self.ids.get(source_object) or {}).get(source_id)

    def odoo_value(self, model: str, odoo_id: int, field: str) -> Any:
        if callable(self.values):
            return self.values(model, odoo_id, field)
        return (self.values.get((model, field)) or {}).get(odoo_id)

    def lookup(self, name: str, key: Any) -> Any:
        table = self.lookups.get(name)
        if table is None:
            return None
        if callable(table):
            return table(key)
        if key in table:
            return table[key]
        if name not in self._folded:
            self._folded[name] = {_fold(k): v for k, v in table.items()}
        return self._folded[name].get(_fold(key))


def _fold(key: Any) -> Any:
    if isinstance(key, str):
        return key.strip().casefold()
    if isinstance(key, tuple):
        return tuple(_fold(k) for k in key)
    return key


# ---- paths and filters ---------------------------------------------------------------------------------


def sf_prefix(source_id: Any) -> str | None:
    """The 3-character key prefix of a Salesforce id (``003`` for a Contact)."""
    return str(source_id)[:3] if isinstance(source_id, str) and len(source_id) >= 15 else None


def matches(spec: ObjectSpec, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` belongs to ``spec`` (its ``target.where``): equality, a list (any of),
    ``{not: value | [values]}``, ``{prefix: [..]}`` (Salesforce key prefix), ``{empty: true|false}``."""
    for path, cond in spec.target.where.items():
        value = get_path(record, str(path))
        if isinstance(cond, Mapping):
            if "not" in cond:
                bad = cond["not"]
                if value in (bad if isinstance(bad, list | tuple) else (bad,)):
                    return False
            if "prefix" in cond:
                prefixes = cond["prefix"]
                prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
                if sf_prefix(value) not in prefixes:
                    return False
            if "empty" in cond and T._empty(value) != bool(cond["empty"]):
                return False
        elif isinstance(cond, list | tuple):
            if value not in cond:
                return False
        elif value != cond:
            return False
    return True


# ---- what a batch needs ----------------------------------------------------------------------------------


def _ref_ids(spec: ObjectSpec, fspec: FieldSpec, record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(object, source id)`` pairs a field may ask the crosswalk for (before transforms: refs take raw ids)."""
    if not fspec.ref or fspec.const is not MISSING:
        return []
    values = [get_path(record, p) for p in fspec.sources]
    if len(fspec.ref) > 1:
        return [(obj, str(v)) for i, (obj, v) in enumerate(zip(fspec.ref, values, strict=True))
                if not T._empty(v) and _prefix_ok(fspec, v, i)]
    obj = fspec.ref[0]
    if fspec.many and len(values) > 1 and not fspec.fn:
        if any(T._empty(v) for v in values):
            return []
        return [(obj, _composite(fspec, values))]
    if fspec.fn:
        try:
            out = _run_steps(fspec.fn, values)
        except T.TransformError:
            return []
    else:
        out = values[0]
    return [(obj, str(v)) for v in _as_list(out) if not T._empty(v) and _prefix_ok(fspec, v)]


def _prefix_ok(fspec: FieldSpec, source_id: Any, i: int = 0) -> bool:
    """False for a polymorphic id of another object than the field's ``i``-th ref (a WhoId that is a
    Lead when the ref is Contact, a WhatId that is a deal when the ref is Account)."""
    prefix = fspec.ref_prefixes[i] if len(fspec.ref_prefixes) > i else None
    return not prefix or sf_prefix(source_id) in (None, prefix)


def _composite(fspec: FieldSpec, values: Sequence[Any]) -> str:
    return fill_id_template(fspec.ref_templates[0], values) if fspec.ref_templates else "/".join(map(str, values))


def _attach_candidates(spec: ObjectSpec, record: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(path, object, model, source id)`` per ``attach_to`` source whose key prefix (or, with
    ``type_from``, whose type field) names an allowed object."""
    if spec.attach is None:
        return []
    if spec.attach.type_from:
        name = spec.attach.types.get(str(get_path(record, spec.attach.type_from)))
        model = next((m for n, _p, m in spec.attach.targets if n == name), None)
        for path in spec.attach.sources if model else ():
            sid = get_path(record, path)
            if not T._empty(sid):
                return [(path, str(name), model, str(sid))]
        return []
    out = []
    for path in spec.attach.sources:
        sid = get_path(record, path)
        if T._empty(sid):
            continue
        prefix = sf_prefix(sid)
        for name, obj_prefix, model in spec.attach.targets:
            if obj_prefix == prefix:
                out.append((path, name, model, str(sid)))
                break
    return out


def attached_to(spec: ObjectSpec, record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(object, source id)`` of each record ``record`` may hang on (its ``attach_to`` candidates, in order)."""
    return [(obj, sid) for _path, obj, _model, sid in _attach_candidates(spec, record)]


def timeline_position(spec: ObjectSpec, record: Mapping[str, Any]) -> tuple[str, str]:
    """``(date, parent)`` of a chatter record: its date as ``YYYY-MM-DD HH:MM:SS`` UTC (from the sources
    of its ``date`` field, first non-empty), and the source id of the record it is posted on (its
    ``attach_to`` target, else its first reference), ``""`` when unknown."""
    date = ""
    fspec = spec.fields.get("date")
    for path in fspec.sources if fspec else ():
        value = get_path(record, path)
        if not T._empty(value):
            date = _utc_text(value)
            break
    parent = next((sid for _p, _o, _m, sid in _attach_candidates(spec, record)), "")
    if not parent:
        for f in spec.fields.values():
            if f.ref and f.sources and not T._empty(v := get_path(record, f.sources[0])):
                parent = str(v)
                break
    return date, parent


def _utc_text(value: Any) -> str:
    from datetime import UTC, datetime

    text = str(value).strip()
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def refs_needed(spec: ObjectSpec, records: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """The crosswalk ids a batch needs, per source object: one query per object for the whole batch."""
    out: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if not matches(spec, record):
            continue
        for fspec in spec.fields.values():
            for obj, sid in _ref_ids(spec, fspec, record):
                out[obj].add(sid)
        for _path, obj, _model, sid in _attach_candidates(spec, record):
            out[obj].add(sid)
    return dict(out)


def lookups_needed(spec: ObjectSpec, records: Iterable[Mapping[str, Any]]) -> dict[str, set[Any]]:
    """The named-lookup keys a batch uses (after transforms), per lookup."""
    out: dict[str, set[Any]] = defaultdict(set)
    for record in records:
        if not matches(spec, record):
            continue
        try:
            conditions = _conditions(spec, record) if spec.conditions else {}
        except _Fail:
            conditions = {}
        for fspec in spec.fields.values():
            if not fspec.lookup or (fspec.when and not conditions.get(fspec.when)):
                continue
            try:
                key = _field_value(fspec, record, conditions)
            except T.TransformError:
                continue
            for k in _as_list(key):
                if not T._empty(k):
                    out[fspec.lookup].add(k)
        if spec.attach is not None and spec.attach.model_as == "ir_model":
            for _p, _obj, model, _sid in _attach_candidates(spec, record):
                out["model"].add(model)
    return dict(out)


# ---- mapping ---------------------------------------------------------------------------------------------


class _Fail(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _through(fspec: FieldSpec, refs: Refs, values: Mapping[str, Any], warnings: list[tuple[str, str]],
             unknown: list[str]) -> Callable[[str], Any]:
    """What a ``=field.odoo_field`` path of ``fspec`` reads: the Odoo field of the record the row maps ``field`` to.
    A repair flagged on ``field`` is flagged on ``fspec`` too; no record to read gives None, the reason in
    ``unknown``."""

    def read(path: str) -> Any:
        through, model, odoo_field = fspec.via[path]
        oid = values.get(through)
        oid = oid[0] if isinstance(oid, list | tuple) and oid and isinstance(oid[0], int) else oid
        value = refs.odoo_value(model, oid, odoo_field) if isinstance(oid, int) and not isinstance(oid, bool) else None
        if value is None:
            unknown.append(f"{through} has no {model} record to take {odoo_field} from")
            return None
        warnings.extend((fspec.name, f"from {through}.{odoo_field} ({value!r}); {through}: {reason}")
                        for f, reason in list(warnings) if f == through)
        return value

    return read


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _run_steps(steps: Sequence[FnStep], values: Sequence[Any], flags: list[str] | None = None) -> Any:
    """Apply the transforms in turn; a :class:`~transforms.Flagged` value is unwrapped, its reason kept
    in ``flags``."""
    out: Any = None
    for i, step in enumerate(steps):
        args = dict(step.args)
        out = T.apply(step.name, values if i == 0 else [out], args)
        if isinstance(out, T.Flagged):
            if flags is not None:
                flags.append(out.reason)
            out = out.value
    return out


def _field_value(fspec: FieldSpec, record: Mapping[str, Any], conditions: Mapping[str, bool],
                 flags: list[str] | None = None, mapped: Callable[[str], Any] | None = None) -> Any:
    """The field's value before ref/lookup resolution: const, or source values through the transforms
    (the reasons of values repaired and flagged on the way go to ``flags``). ``mapped`` answers the
    ``=field.odoo_field`` paths (None without it: what a batch needs is asked before mapping)."""
    if fspec.const is not MISSING:
        return fspec.const
    values = [conditions.get(p[1:], False) if p.startswith("$")
              else (mapped(p) if mapped else None) if p.startswith("=") else get_path(record, p) for p in fspec.sources]
    if fspec.fn:
        return _run_steps(fspec.fn, values, flags)
    if len(values) == 1:
        value = values[0]
        return value.strip() or None if isinstance(value, str) else value
    return tuple(values)


def _conditions(spec: ObjectSpec, record: Mapping[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name, cond in spec.conditions.items():
        values = [get_path(record, p) for p in cond.sources]
        try:
            out[name] = bool(_run_steps(cond.fn, values)) if cond.fn else any(not T._empty(v) for v in values)
        except T.TransformError as exc:
            raise _Fail(f"${name}", str(exc)) from None
    return out


def _missing(spec: ObjectSpec, fspec: FieldSpec, what: str, warnings: list[tuple[str, str]]) -> None:
    mode = fspec.on_missing or (spec.on_missing if fspec.ref else "null")
    if mode == "error":
        raise _Fail(fspec.name, what)
    warnings.append((fspec.name, what))


def _resolve(spec: ObjectSpec, fspec: FieldSpec, record: Mapping[str, Any], value: Any, refs: Refs,
             warnings: list[tuple[str, str]]) -> Any:
    if fspec.ref:
        if len(fspec.ref) > 1:   # the first migrated of several references; all of them with fn as_list
            every = bool(fspec.fn)
            tried, found = [], []
            for i, (obj, path) in enumerate(zip(fspec.ref, fspec.sources, strict=True)):
                sid = get_path(record, path)
                if T._empty(sid) or not _prefix_ok(fspec, sid, i):
                    continue
                if (oid := refs.odoo_id(obj, str(sid))) is None:
                    tried.append(f"{obj} {sid}")
                elif not every:
                    return oid
                else:
                    found.append(oid)
            if tried:
                _missing(spec, fspec, f"not migrated (yet): {', '.join(tried)}", warnings)
            return [(6, 0, sorted(set(found)))] if every else None
        obj = fspec.ref[0]
        raw = tuple(value) if isinstance(value, list | tuple) else value
        if fspec.many and len(fspec.sources) > 1 and not fspec.fn:
            if any(T._empty(v) for v in value):
                return None
            value = _composite(fspec, value)
        if isinstance(value, list | tuple):            # many2many: all of them, as one replace command
            ids = []
            for sid in value:
                if T._empty(sid) or not _prefix_ok(fspec, sid):
                    continue
                oid = refs.odoo_id(obj, str(sid))
                if oid is None:
                    _missing(spec, fspec, f"{obj} {sid} not migrated (yet)", warnings)
                else:
                    ids.append(oid)
            return [(6, 0, sorted(set(ids)))]
        if T._empty(value):
            return None
        if not _prefix_ok(fspec, value):
            return None                                # a polymorphic id of another object (WhatId → Account)
        oid = refs.odoo_id(obj, str(value))
        if oid is None and fspec.fallback:
            found = refs.lookup(fspec.fallback, raw)
            if isinstance(found, T.Flagged):
                warnings.append((fspec.name, found.reason))
                found = found.value
            if found is not None:
                return found
        if oid is None:
            _missing(spec, fspec, f"{obj} {value} not migrated (yet)", warnings)
        return oid
    if fspec.lookup:
        if T._empty(value) or (isinstance(value, tuple) and T._empty(value[0])):
            return None                     # a composite key (state, country) is empty when its first part is
        found = refs.lookup(fspec.lookup, value)
        if isinstance(found, T.Flagged):    # a lookup that placed it elsewhere (pipeline_stage): flagged, as a fallback
            warnings.append((fspec.name, found.reason))
            found = found.value
        if found is None:
            _missing(spec, fspec, f"{fspec.lookup} {value!r} not found in Odoo", warnings)
        return found
    return value


def _attach(spec: ObjectSpec, record: Mapping[str, Any], refs: Refs, values: dict[str, Any]) -> None:
    att = spec.attach
    if att is None:
        return
    tried = []
    for path, obj, model, sid in _attach_candidates(spec, record):
        oid = refs.odoo_id(obj, sid)
        if oid is None:
            tried.append(f"{path} → {obj} {sid}")
            continue
        if att.model_as == "ir_model":
            model_id = refs.lookup("model", model)
            if model_id is None:
                raise _Fail(att.model_field, f"no ir.model id for {model}")
            values[att.model_field] = model_id
        else:
            values[att.model_field] = model
        values[att.id_field] = oid
        return
    if att.required:
        if tried:
            raise _Fail(att.id_field, f"parent record not migrated (yet): {'; '.join(tried)}")
        given = {p: get_path(record, p) for p in att.sources}
        raise _Fail(att.id_field, f"no parent record among {list(att.objects)} in {given}")


def map_record(spec: ObjectSpec, record: Mapping[str, Any], refs: Refs) -> Row:
    """Map one source record to a loader row; bad data becomes ``row["error"]``, never an exception."""
    try:
        source_id = spec.source_id(record)
    except KeyError as exc:
        return {"source_id": str(record.get("Id") or record.get("id") or "?"), "values": {}, "record": record,
                "error": ("key", f"no value for key field {exc.args[0]!r}")}
    values: dict[str, Any] = {}
    deferred: dict[str, Any] = {}
    warnings: list[tuple[str, str]] = []
    current: str | None = None
    try:
        conditions = _conditions(spec, record)
        _attach(spec, record, refs, values)
        for fspec in spec.fields.values():
            current = fspec.name
            if fspec.when and not conditions.get(fspec.when):
                continue
            flags: list[str] = []
            unknown: list[str] = []
            mapped = _through(fspec, refs, values, warnings, unknown) if fspec.via else None
            try:
                value = _field_value(fspec, record, conditions, flags, mapped)
                warnings.extend((fspec.name, reason) for reason in flags)
            except T.TransformError as exc:
                if fspec.on_error == "null":
                    warnings.append((fspec.name, str(exc)))
                    value = None
                else:
                    raise _Fail(fspec.name, str(exc)) from None
            if unknown:         # read through a field with no record: flagged; an empty value is not sent at all
                if T._empty(value) and not fspec.required:
                    warnings.append((fspec.name, f"not sent: {'; '.join(unknown)}"))
                    continue
                warnings.append((fspec.name, "; ".join(unknown)))
            value = _resolve(spec, fspec, record, value, refs, warnings)
            if T._empty(value) and fspec.default is not MISSING and value is not False:
                value = fspec.default
            if fspec.required and T._empty(value) and value is not False:
                why = [w for f, w in warnings if f == fspec.name]       # a reference not migrated says which
                raise _Fail(fspec.name, why[-1] if why else "required value missing"
                            + (f" (from {', '.join(fspec.sources)})" if fspec.sources else ""))
            if isinstance(value, tuple) and not fspec.ref:
                value = list(value)
            later = fspec.deferred is True or (isinstance(fspec.deferred, str) and conditions.get(fspec.deferred))
            (deferred if later else values)[fspec.name] = value
    except _Fail as exc:
        err = MappingError(spec.name, source_id, exc.field or "?", exc.reason)
        return {"source_id": source_id, "values": {}, "record": record, "error": (exc.field, err.reason)}
    except (T.TransformError, TypeError, ValueError) as exc:   # a transform bug on odd data: still a dead letter
        return {"source_id": source_id, "values": {}, "record": record,
                "error": (current, f"{type(exc).__name__}: {exc}")}
    row: Row = {"source_id": source_id, "values": values, "record": record}
    if deferred:
        row["deferred"] = deferred
    if warnings:
        row["warnings"] = warnings
    return row


def map_batch(spec: ObjectSpec, records: Iterable[Mapping[str, Any]], refs: Refs) -> list[Row]:
    """Map the records of a batch that belong to ``spec`` (``target.where``), in order."""
    return [map_record(spec, r, refs) for r in records if matches(spec, r)]


# ---- company hierarchy ------------------------------------------------------------------------------------


class CycleReport(TypedDict):
    source_id: str
    parent_id: str
    reason: str
    cycle: list[str]


def break_cycles(records: Sequence[Mapping[str, Any]], id_field: str = "Id",
                 parent_field: str = "ParentId") -> tuple[list[dict[str, Any]], list[CycleReport]]:
    """Null the parent links that close a cycle; return ``(records, report rows)``.

    Deterministic: a self-parent loses its parent; in a longer cycle the record with the smallest id
    loses its parent (the cycle's edge from it is cut), so the rest hangs below it. Records are copied
    only where changed; the input is not modified. Parents outside ``records`` are left alone.
    """
    parent: dict[str, str | None] = {}
    for r in records:
        pid = r.get(parent_field)
        parent[str(r[id_field])] = str(pid) if pid not in (None, "") else None
    cut: dict[str, CycleReport] = {}
    state: dict[str, int] = {}          # 1 = on the current path, 2 = done
    for start in sorted(parent):
        if state.get(start):
            continue
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent and not state.get(node):
            state[node] = 1
            path.append(node)
            node = parent[node]
            if node is not None and node in cut:
                node = None
        if node is not None and state.get(node) == 1:       # closed a cycle on this path
            cycle = path[path.index(node):]
            victim = min(cycle)
            if len(cycle) == 1:
                reason = "self-parent: the record is its own parent; parent removed"
            else:
                loop = cycle[cycle.index(victim):] + cycle[:cycle.index(victim)] + [victim]
                reason = f"parent cycle {' -> '.join(loop)}; the link from {victim} (smallest id) is cut"
            cut[victim] = {"source_id": victim, "parent_id": str(parent[victim]), "reason": reason,
                           "cycle": sorted(cycle)}
            parent[victim] = None
        for n in path:
            state[n] = 2
    out: list[dict[str, Any]] = []
    for r in records:
        sid = str(r[id_field])
        out.append({**r, parent_field: None} if sid in cut else dict(r))
    return out, [cut[k] for k in sorted(cut)]


def hierarchy_levels(records: Sequence[Mapping[str, Any]], id_field: str = "Id",
                     parent_field: str = "ParentId") -> list[list[Mapping[str, Any]]]:
    """Group records by depth: level 0 has no parent (or one outside ``records``), level n's parents are
    in level n-1. Load level by level so a parent always exists before its children. Order within a
    level is the input order. A cycle is an error (run :func:`break_cycles` first)."""
    by_id = {str(r[id_field]): r for r in records}
    depth: dict[str, int] = {}
    for sid in by_id:
        chain: list[str] = []
        node: str | None = sid
        while node is not None and node in by_id and node not in depth:
            if node in chain:
                raise ValueError(f"parent cycle through {node}: run break_cycles first")
            chain.append(node)
            pid = by_id[node].get(parent_field)
            node = str(pid) if pid not in (None, "") else None
        base = depth[node] + 1 if node is not None and node in depth else 0
        for i, n in enumerate(reversed(chain)):
            depth[n] = base + i
    levels: list[list[Mapping[str, Any]]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for r in records:
        levels[depth[str(r[id_field])]].append(r)
    return levels


# ---- owners ------------------------------------------------------------------------------------------------


class OwnerMatch(TypedDict):
    source_id: str
    name: str | None
    email: str | None
    user_id: int
    partner_id: int | None
    matched: bool
    reason: str


def resolve_owners(source_users: Iterable[Mapping[str, Any]], odoo_users: Iterable[Mapping[str, Any]], *,
                   fallback_login: str, id_field: str = "Id", email_field: str = "Email",
                   name_field: str = "Name") -> dict[str, OwnerMatch]:
    """Source users → Odoo users by email, case-insensitive (an Odoo user's ``email`` or ``login``).

    ``id_field`` / ``email_field`` / ``name_field``: the source user's fields (Salesforce's by default;
    Link app's are ``id``, ``email``, ``name``).

    Active Odoo users are preferred, then the lowest id. No match (or no email) → the fallback user,
    with the reason (the owner report lists every row with ``matched: False``). Raises ``ValueError``
    if ``fallback_login`` is not an Odoo user: no record may land without one.
    """
    users = sorted(odoo_users, key=lambda u: (not u.get("active", True), u["id"]))
    by_email: dict[str, Mapping[str, Any]] = {}
    fallback = None
    for u in users:
        for key in (u.get("email"), u.get("login")):
            if isinstance(key, str) and "@" in key:
                by_email.setdefault(key.strip().casefold(), u)
        if u.get("login") == fallback_login:
            fallback = u
    if fallback is None:
        raise ValueError(f"fallback user {fallback_login!r} is not an Odoo user")

    def partner(u: Mapping[str, Any]) -> int | None:
        p = u.get("partner_id")
        return int(p[0]) if isinstance(p, list | tuple) and p else (int(p) if p else None)

    out: dict[str, OwnerMatch] = {}
    for su in source_users:
        sid, email, name = str(su[id_field]), su.get(email_field), su.get(name_field)
        key = email.strip().casefold() if isinstance(email, str) and email.strip() else None
        hit = by_email.get(key) if key else None
        if hit is not None:
            reason = "matched by email" + ("" if hit.get("active", True) else " (the Odoo user is archived)")
            out[sid] = {"source_id": sid, "name": name, "email": email, "user_id": int(hit["id"]),
                        "partner_id": partner(hit), "matched": True, "reason": reason}
        else:
            reason = "no email" if key is None else "no Odoo user with this email"
            out[sid] = {"source_id": sid, "name": name, "email": email, "user_id": int(fallback["id"]),
                        "partner_id": partner(fallback), "matched": False,
                        "reason": f"{reason}: fallback user {fallback_login}"}
    return out


# ---- countries and states ------------------------------------------------------------------------------------


def _country_keys(text: Any) -> list[str]:
    """How a country spelling is compared: NFKC, case-folded, letters, digits and combining marks only
    (``U.S.A.`` → ``usa``, ``Côte d'Ivoire`` → ``côtedivoire``), then the same without accents when
    that leaves plain ASCII (``österreich`` → ``osterreich``). A leading English article is dropped
    (``The Netherlands``)."""
    s = re.sub(r"^\s*the\s+", "", unicodedata.normalize("NFKC", str(text)), flags=re.IGNORECASE).casefold()
    key = "".join(c for c in s if c.isalnum() or unicodedata.category(c).startswith("M"))
    folded = "".join(c for c in unicodedata.normalize("NFKD", key) if not unicodedata.combining(c))
    return [key, folded] if folded != key and folded.isascii() else [key]


#: bump when :func:`_build_territory_index` changes what it returns (the files cached under the old one are ignored)
TERRITORY_INDEX_FORMAT = 1


def territory_index_file() -> Path:
    """Where :func:`territory_index` keeps the index between processes: ``$CRM_MIGRATION_CACHE`` or
    ``$XDG_CACHE_HOME/crm_migration`` (``~/.cache/crm_migration``), one file per Babel version and format."""
    import babel

    base = os.environ.get("CRM_MIGRATION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "crm_migration")
    return Path(base) / f"territories-babel{babel.__version__}-v{TERRITORY_INDEX_FORMAT}.json"


@functools.cache
def territory_index() -> Mapping[str, str]:
    """Country spellings → ISO 3166 alpha-2, from Babel (CLDR): every territory name in every locale
    (``Deutschland``, ``España``, ``Österreich``, ``Schweiz``, ``日本``, ``USA``) and CLDR's code aliases
    (alpha-3 ``DEU``, ``UK``).

    Once per process, read from :func:`territory_index_file` (about 0.1 s); built from Babel when that file is
    missing or unreadable (0.5 to 2 s: every locale's data is read; not kept, all of it would be some 200 MB)
    and written there for the next process (each load task is one: it would pay the build per batch). A
    directory that cannot be written only costs the build again.
    """
    path = territory_index_file()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached and all(isinstance(v, str) for v in cached.values()):
            return {k: sys.intern(v) for k, v in cached.items()}
    except (OSError, ValueError):
        pass
    names = _build_territory_index()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(names, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)                   # atomic: a process reading it meanwhile sees all or nothing
    except OSError as exc:
        log_.info("country names: not cached in %s (%s)", path, exc)
    return names


def _build_territory_index() -> dict[str, str]:
    """:func:`territory_index` built from Babel. A spelling two countries share in some language (``Kongo``) is
    left out unless it is the English name; a code alias wins over a name."""
    from babel import localedata
    from babel.core import get_global

    started = time.perf_counter()
    names: dict[str, str] = {}
    shared: set[str] = set()
    english: set[str] = set()
    cache = getattr(localedata, "_cache", {})
    locales = ["en", *(lid for lid in localedata.locale_identifiers() if lid != "en")]
    for lid in locales:
        kept = lid in cache
        territories = localedata.load(lid, merge_inherited=False).get("territories") or {}
        if not kept:
            cache.pop(lid, None)
        for code, name in territories.items():
            if len(code) != 2 or not code.isalpha() or not isinstance(name, str):
                continue
            code = sys.intern(code)
            for key in _country_keys(name):
                if lid == "en":
                    english.add(key)
                if names.setdefault(key, code) != code and key not in english:
                    shared.add(key)
    for key in shared:
        del names[key]
    for alias, targets in get_global("territory_aliases").items():
        if alias.isalpha() and len(targets) == 1 and len(targets[0]) == 2:
            names[alias.casefold()] = sys.intern(targets[0])
    log_.info("country names: %d spellings from %d Babel locales in %.2f s (%d shared by two countries, left out)",
              len(names), len(locales), time.perf_counter() - started, len(shared))
    return names


class CountryIndex:
    """res.country by ISO code (alpha-2 or alpha-3), by name in any language Babel knows, or by the
    mapping's ``aliases`` (``{"Great Britain": "GB"}``: what Babel does not know); a callable lookup
    for :class:`StaticRefs`. ``None`` when nothing matches (the mapper flags it)."""

    def __init__(self, countries: Iterable[Mapping[str, Any]], aliases: Mapping[str, str] | None = None) -> None:
        self.by_code: dict[str, int] = {}
        self.code_by_id: dict[int, str] = {}
        self.by_name: dict[str, str] = {}
        for c in countries:
            code = str(c["code"]).upper()
            self.by_code[code] = self.by_code.get(code) or int(c["id"])
            self.code_by_id[int(c["id"])] = code
            for key in _country_keys(c["name"]):
                self.by_name[key] = code
        self.aliases = {key: str(v).upper() for k, v in (aliases or {}).items() for key in _country_keys(k)}

    def code_of(self, value: Any) -> str | None:
        """The ISO alpha-2 code of a country spelling that Odoo has, else ``None``."""
        if T._empty(value):
            return None
        keys = _country_keys(value)
        if len(keys[0]) == 2 and keys[0].upper() in self.by_code:          # US, gb, U.S.
            return keys[0].upper()
        return self._find(keys, self.aliases) or self._find(keys, self.by_name) or self._find(keys, territory_index())

    def _find(self, keys: Sequence[str], table: Mapping[str, str]) -> str | None:
        return next((code for key in keys if (code := table.get(key)) is not None and code in self.by_code), None)

    def __call__(self, value: Any) -> int | None:
        code = self.code_of(value)
        return self.by_code.get(code) if code else None


def _norm(text: Any) -> str:
    s = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    return re.sub(r"\s+", " ", s)


class StateIndex:
    """res.country.state by code or name within a country: key ``(state, country)``, the country as
    :class:`CountryIndex` understands it. ``aliases``: ``{"DE": {"Bavaria": "BY"}}``."""

    def __init__(self, states: Iterable[Mapping[str, Any]], countries: CountryIndex,
                 aliases: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.countries = countries
        self.index: dict[tuple[str, str], int] = {}
        for s in states:
            cc = str(s.get("country_code") or "").upper()
            if not cc and isinstance(s.get("country_id"), list | tuple):
                cid = int(s["country_id"][0])
                cc = countries.code_by_id.get(cid, "")
            code = _norm(s["code"])
            self.index[(cc, code)] = int(s["id"])
            if code.startswith(cc.casefold() + "-"):        # DE-BY is also BY
                self.index[(cc, code[len(cc) + 1:])] = int(s["id"])
            self.index[(cc, _norm(s["name"]))] = int(s["id"])
        self.aliases = {cc.upper(): {_norm(k): _norm(v) for k, v in m.items()} for cc, m in (aliases or {}).items()}

    def __call__(self, key: Any) -> int | None:
        if not isinstance(key, tuple | list) or len(key) != 2 or T._empty(key[0]):
            return None
        state, country = key
        cc = self.countries.code_of(country)
        if cc is None:
            return None
        s = _norm(state)
        s = self.aliases.get(cc, {}).get(s, s)
        return self.index.get((cc, s))
