"""Completeness: is every record alive in the source in Odoo, and nothing more?

Counts and checksums say that what the tool wrote is in Odoo; they cannot see a record the tool never read (a
change in no window, a deletion the source no longer lists). So the reconciliation also compares, per object,
three sets of ids:

- the source ids alive now: one id-only read of the object (Apto: a SOQL query of the key, ``where`` and
  replication-key fields through the object's own stream; Link app: its list endpoint, one read per resource
  even when several objects share it), filtered by the object's ``where`` like an extraction;
- the keys in Odoo: one paged ``search_read`` of ``x_migration_key`` (and ``active``) per object, archived
  records included;
- the crosswalk's ids and the open dead letters (state DB).

From them: **missing** (alive in the source, no keyed record in Odoo; a record with an open dead letter and one
changed since the object's watermark, which the next delta lands, are counted apart), **extra** (active in Odoo,
not alive in the source: deleted there; on a model Odoo cannot archive they are counted apart, as the delta
leaves them), **changed in the source** since the last landed read (the source's version differs from the
landed one: the next delta brings it) and **duplicates** (a key on two Odoo records). Memory holds ids only
(sets of strings), never records; the lists named in a report are cut at :data:`NAMED` per object and kind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from crm_migration.hooks.odoo import MIGRATION_KEY
from crm_migration.mapping.mapper import matches
from crm_migration.mapping.spec import ObjectSpec

if TYPE_CHECKING:
    from crm_migration.engine.pipeline import Pipeline

log_ = logging.getLogger(__name__)

NAMED = 5000        # ids named per object and kind (the counts are exact)


class Completeness(TypedDict):
    """The id-set comparison of one object (see the module docstring)."""

    checked: bool
    note: str                       # why it was not checked, or what to know
    source_alive: int               # ids alive in the source (after the object's where)
    odoo: int                       # keyed Odoo records (archived included)
    odoo_active: int
    missing: list[list[str]]        # [source id, why]: alive in the source, not in Odoo
    missing_count: int
    dead_lettered: int              # alive, not in Odoo, with an open dead letter
    pending: int                    # alive, not in Odoo, changed since the watermark (the next delta lands it)
    extra: list[list[str]]          # [source id, why]: active in Odoo, not alive in the source
    extra_count: int
    extra_kept: int                 # of those on a model Odoo cannot archive (left as the delta leaves them)
    changed_in_source: list[str]    # in Odoo, changed in the source since the watermark (the next delta)
    changed_count: int
    duplicates: int                 # keys carried by more than one Odoo record
    archived_away: int              # alive, not in Odoo: an activity Odoo deleted when its record was archived


def _group(obj: ObjectSpec) -> tuple[str, str]:
    """Objects reading the same source stream (fields aside) share one id read."""
    stream = {k: v for k, v in dict(obj.stream).items() if k != "fields"}
    return obj.source_object, json.dumps(stream, sort_keys=True, default=str)


def id_fields(obj: ObjectSpec) -> list[str]:
    """The source fields an id-only read needs: the key's, the ``where``'s and the primary key."""
    pk = obj.stream.get("primary_key")
    return list(dict.fromkeys([*obj.target.id_fields, *map(str, obj.target.where), *([str(pk)] if pk else [])]))


def source_ids(pipe: Pipeline, names: Iterable[str], *, at: datetime,
               marks: Mapping[str, datetime | None]) -> dict[str, tuple[set[str], set[str]] | str]:
    """``{object: (ids alive in the source, ids changed at or after its watermark)}``, or a reason (text) the
    object's ids cannot be read alone. One read per source stream, ids only."""
    out: dict[str, tuple[set[str], set[str]] | str] = {}
    groups: dict[tuple[str, str], list[ObjectSpec]] = {}
    for name in names:
        obj = pipe.spec.object(name)
        if pipe.source.needs_parents(obj):
            out[name] = (f"not checked: {pipe.source.name} lists {obj.source_object} only by the records it hangs "
                         "on (the counts and checksums still are)")
            continue
        groups.setdefault(_group(obj), []).append(obj)
    reader = getattr(pipe.source, "id_records", None)
    for objs in groups.values():
        sets: dict[str, tuple[set[str], set[str]]] = {o.name: (set(), set()) for o in objs}
        fields = list(dict.fromkeys(f for o in objs for f in id_fields(o)))
        rows = reader(objs[0], fields=fields, end=at) if reader else pipe.source.records(objs[0], start=None, end=at)
        read = 0
        for r in rows:
            read += 1
            if r.get("IsDeleted"):
                continue
            for o in objs:
                if not matches(o, r):
                    continue
                try:
                    sid = o.source_id(r)
                except KeyError:            # no key: the extraction dead-letters it
                    continue
                alive, changed = sets[o.name]
                alive.add(sid)
                mark = marks.get(o.name)
                if mark is not None and (when := pipe.source.changed_at(o, r)) is not None and when >= mark:
                    changed.add(sid)
        pipe.log.info("completeness: %s read once, ids only: %d records (%s)", objs[0].source_object, read,
                      ", ".join(f"{n} {len(s[0])}" for n, s in sets.items()))
        out.update(sets)
    return out


def odoo_keys(pipe: Pipeline, model: str, prefix: str) -> tuple[dict[str, bool], int]:
    """``({source id: active}, duplicates)`` of the Odoo records of ``model`` keyed ``<prefix>...`` (archived
    included; a model without ``active``: all active), keys only, paged."""
    fields = pipe.odoo.fields_get(model)
    names = [MIGRATION_KEY, *(["active"] if "active" in fields else [])]
    out: dict[str, bool] = {}
    dup = 0
    for rec in pipe.odoo.search_read(model, [(MIGRATION_KEY, "=like", f"{prefix}%")], names,
                                     context={"active_test": False}):
        key = rec.get(MIGRATION_KEY) or ""
        if not key.startswith(prefix):          # '_' in a LIKE pattern matches any character
            continue
        sid = key[len(prefix):]
        dup += sid in out
        out[sid] = out.get(sid, False) or bool(rec.get("active", True))
    return out, dup


def check(pipe: Pipeline, name: str, ids: tuple[set[str], set[str]] | str, *,
          dead: set[str], away: set[str] | frozenset[str] = frozenset()) -> Completeness:
    """Compare object ``name``'s source ids (:func:`source_ids`) with its keys in Odoo and the crosswalk.

    :param dead: the object's source ids with an open dead letter.
    :param away: the object's activities Odoo deleted when their record was archived (Odoo 17,
        :func:`~crm_migration.engine.verify.deleted_on_archive`): counted apart, not missing.
    """
    target = pipe.target(name)
    model, scope = target.model, target.source_object
    empty: Completeness = {"checked": False, "note": "", "source_alive": 0, "odoo": 0, "odoo_active": 0,
                           "missing": [], "missing_count": 0, "dead_lettered": 0, "pending": 0, "extra": [],
                           "extra_count": 0, "extra_kept": 0, "changed_in_source": [], "changed_count": 0,
                           "duplicates": 0, "archived_away": 0}
    if isinstance(ids, str):
        return {**empty, "note": ids}
    alive, changed = ids
    odoo, dup = odoo_keys(pipe, model, f"{target.source}:{scope}:")
    bound = pipe.state.crosswalk_ids(pipe.pair, scope, model)
    absent = alive - odoo.keys()
    dead_here = absent & dead
    away_here = (absent - dead_here) & set(away)
    pending = (absent - dead_here - away_here) & changed
    missing = sorted(absent - dead_here - away_here - pending)
    can_archive = "active" in pipe.odoo.fields_get(model)
    extra = sorted(s for s, active in odoo.items() if active and s not in alive)
    newer = sorted(changed & odoo.keys())
    why_missing = [[s, "in the crosswalk, gone from Odoo (deleted there)" if s in bound else
                    "never loaded (not in the crosswalk)"] for s in missing[:NAMED]]
    why_extra = [[s, "not alive in the source (deleted there, or no longer selected by the object's where)"
                  + ("" if can_archive else f"; {model} cannot be archived: left as the delta leaves it")]
                 for s in extra[:NAMED]]
    notes = []
    if pending:
        notes.append(f"{len(pending)} created or changed in the source since the last landed read: the next delta "
                     "lands them")
    if away_here:
        notes.append(f"{len(away_here)} deleted by Odoo when their record was archived (Odoo 17 deletes the "
                     "activities of a record it archives): not missing")
    if not can_archive and extra:
        notes.append(f"{len(extra)} deleted in the source stay in Odoo ({model} has no archive)")
    return {"checked": True, "note": "; ".join(notes), "source_alive": len(alive), "odoo": len(odoo),
            "odoo_active": sum(odoo.values()), "missing": why_missing, "missing_count": len(missing),
            "dead_lettered": len(dead_here), "pending": len(pending), "extra": why_extra,
            "extra_count": len(extra), "extra_kept": 0 if can_archive else len(extra),
            "changed_in_source": newer[:NAMED], "changed_count": len(newer), "duplicates": dup,
            "archived_away": len(away_here)}


def complete(c: Completeness, *, differing: int = 0, dead_letters: int = 0) -> bool:
    """Whether an object is complete: checked, nothing missing, pending, extra (but what Odoo cannot archive),
    changed in the source since its last read, duplicated or different, and no open dead letter."""
    return (c["checked"] and not (c["missing_count"] or c["pending"] or c["dead_lettered"] or c["changed_count"]
                                  or c["duplicates"] or c["extra_count"] - c["extra_kept"])
            and not differing and not dead_letters)


def summary(c: Completeness) -> dict[str, Any]:
    """The counts of a :class:`Completeness` (no id lists), for a run's stats and the log."""
    return {k: v for k, v in c.items() if not isinstance(v, list)}
