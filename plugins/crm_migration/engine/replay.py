"""Replay dead letters after a fix: re-read the records from the source by id, map and load them.

A dead letter is a record Odoo refused (or a file the source had lost) with its reason. Once the cause is fixed
(the source record corrected, the mapping changed, the file back), the delta DAG's Param
``replay_dead_letters`` (``all``, an object name, or the run id that dead-lettered them) makes each of the run's
extractions also stage the open dead letters it selects, re-read from the source by id whenever they changed
(:func:`replayed`); the load tasks then load them like any record, and recording a landed record closes its
dead letters (``resolved_at``, ``resolved_run_id``, ``resolution = 'landed'``: ``MigrationStateHook.record_batch``).
One the source no longer has is closed as ``gone from the source``; one Odoo refuses again stays open with the
new reason. Open and resolved dead letters are counted in the reconciliation and the on-call view.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.errors import ConfigurationError

if TYPE_CHECKING:
    from crm_migration.engine.pipeline import Pipeline
    from crm_migration.mapping.spec import ObjectSpec

log_ = logging.getLogger(__name__)

__all__ = ["choice", "replayed", "to_replay"]


def choice(value: Any) -> str | None:
    """The Param's value: ``None`` for nothing to replay (empty, ``none``), else the text given."""
    text = str(value).strip() if value is not None else ""
    return None if text.lower() in ("", "none", "false") else text


def to_replay(pipe: Pipeline, name: str, wanted: str | None) -> list[str]:
    """The source ids of object ``name``'s open dead letters that ``wanted`` selects: ``all``; an object name
    (of the mapping, its source object or its key object: every object sharing that key replays them); or the
    run id that dead-lettered them. Anything else is a :class:`ConfigurationError` naming the Param."""
    if wanted is None:
        return []
    obj = pipe.spec.object(name)
    names = {o.name for o in pipe.spec.objects.values()} | {o.source_object for o in pipe.spec.objects.values()} \
        | {o.key_object for o in pipe.spec.loadable()}
    if wanted == "all" or wanted in (obj.name, obj.source_object, obj.key_object):
        return pipe.state.open_dead_letter_ids(pipe.pair, obj.key_object)
    if wanted in names:
        return []                       # another object's
    if pipe.state.get_run(wanted) is None:
        raise ConfigurationError(
            f"replay_dead_letters={wanted!r} is neither 'all', an object of {pipe.pair} ({', '.join(sorted(names))}) "
            "nor the run id of a run of the state DB")
    return pipe.state.open_dead_letter_ids(pipe.pair, obj.key_object, run_id=wanted)


def replayed(pipe: Pipeline, obj: ObjectSpec, records: Iterable[dict[str, Any]], ids: Sequence[str], *,
             run_id: str) -> Iterator[dict[str, Any]]:
    """``records`` (the window's), then the records of ``ids`` the window did not read, re-read from the source
    by id. Ids the source no longer has are closed (``gone from the source``) when the object's stream reads
    its source object unfiltered (else another object of the same key may read them)."""
    seen: set[str] = set()
    yield from _noting_ids(obj, records, seen)
    rest = [i for i in dict.fromkeys(ids) if i not in seen]
    pipe.state.note_replayed(pipe.pair, obj.key_object, list(ids), run_id=run_id)
    rows = pipe.source.records_by_id(obj, rest) if rest else iter(())
    if rows is None:
        pipe.log.warning("replay: %s cannot be re-read by id (%s): its %d dead letter(s) land with the next full run "
                         "that reads them", obj.name, obj.target.key, len(rest))
        return
    found: set[str] = set()
    yield from _noting_ids(obj, rows, found)
    gone = [i for i in rest if i not in found]
    closed = 0
    if gone and not obj.stream.get("filters"):
        closed = pipe.state.resolve_dead_letters(pipe.pair, obj.key_object, gone, run_id=run_id,
                                                 resolution="gone from the source")
    pipe.log.info("replay: %s: %d open dead letter(s) to replay, %d in this window already, %d re-read by id, "
                  "%d not in the source%s", obj.name, len(ids), len(ids) - len(rest), len(found), len(gone),
                  f" (closed: gone from the source: {', '.join(gone[:10])})" if closed else "")


def _noting_ids(obj: ObjectSpec, rows: Iterable[dict[str, Any]], into: set[str]) -> Iterator[dict[str, Any]]:
    """``rows`` as they come, adding each one's source id to ``into`` (a row without one passes unnoted)."""
    for r in rows:
        try:
            into.add(obj.source_id(r))
        except KeyError:
            pass
        yield r
