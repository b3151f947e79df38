"""Declarative SOQL streams: one frozen dataclass instance per Apto (Salesforce) object.

A stream knows its object, its fields (``<ns>`` stands for the package namespace found at run
time), its replication key and its extra filters; it turns a half-open window ``[start, end)`` into
SOQL and reads it through :class:`~crm_migration.hooks.apto.AptoHook`, page by page: the REST
``query`` endpoint, or a Bulk API 2.0 query job for a big full read (``bulk``: ``auto`` asks
``SELECT COUNT()`` first and compares it with the connection's ``bulk_threshold``). Both give the
same records. The window's ``end`` is the signpost: no record at or past it is ever yielded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crm_migration.errors import ConfigurationError
from crm_migration.hooks.apto import (
    ID_CHUNK,
    AptoUnknownFieldError,
    chunked,
    expand_namespace,
    is_sf_id,
    parse_sf_datetime,
    soql_datetime,
    soql_in,
)

if TYPE_CHECKING:
    from crm_migration.hooks.apto import AptoHook

__all__ = ["BULK_MODES", "SoqlStream", "StreamSpecError", "stream_from_spec"]

BULK_MODES = ("auto", "always", "never")

# A field: Name, <ns>__Priority__c, Account.Name, Owner.<ns>__Code__c
_FIELD_RE = re.compile(r"^(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*(?:\.(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*)*$")
_OBJECT_RE = re.compile(r"^(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*$")


class StreamSpecError(ConfigurationError):
    """A stream declaration (mapping file ``stream:``) is invalid; names the object and the key."""

    def __init__(self, source_object: str, reason: str) -> None:
        self.source_object, self.reason = source_object, reason
        super().__init__(f"stream {source_object}: {reason}")


@dataclass(frozen=True, kw_only=True)
class SoqlStream:
    """One Salesforce object read by SOQL over a window ``[start, end)`` (UTC).

    :param source_object: the object's API name (``Contact``, ``<ns>__Property__c``).
    :param fields: the fields to read; ``<ns>`` is replaced by the namespace found at run time.
        The primary and replication keys are added when missing.
    :param primary_key: the record key (``Id``), the window's tie breaker in ``ORDER BY``.
    :param replication_key: the delta field (``SystemModstamp``); ``None`` reads the whole object.
    :param filters: extra ``WHERE`` conditions, ANDed (may use ``<ns>``); write literals with
        ``soql_quote``.
    :param include_deleted: read through ``queryAll`` (rows in the recycle bin, ``IsDeleted``).
    :param parent_filter: a field that must be filtered on ids given at run time
        (``ContentDocumentLink``: ``LinkedEntityId``); the ids go in chunks of ``parent_chunk_size``.
    :param delta_by: for a ``parent_filter`` stream, how a delta window finds its records without asking about every
        parent: the records of this other stream changed (or, with ``include_deleted``, deleted) in the window,
        then this stream's records whose ``delta_match`` field is in their primary keys (``IN`` chunks, no window
        and no ``filters`` of its own: Salesforce takes no ``ContentDocument`` field filter on a
        ``ContentDocumentId`` filter; ``delta_by``'s filters choose). ContentDocumentLink: the documents changed
        in the window, then their links. A full read still goes by parent ids.
    :param delta_match: the field of this stream matched against ``delta_by``'s primary keys.
    :param bulk: how a read goes: ``auto`` (default) reads a full window (``start`` None) through a
        Bulk API 2.0 query job when ``SELECT COUNT()`` finds at least the connection's
        ``bulk_threshold`` records, else through REST; a delta window always goes through REST (one
        query, nothing more). ``always``: Bulk API; ``never``: REST. Parent id chunks (``IN``
        lists) always go through REST.
    """

    source_object: str
    fields: tuple[str, ...]
    primary_key: str = "Id"
    replication_key: str | None = "SystemModstamp"
    filters: tuple[str, ...] = ()
    include_deleted: bool = False
    parent_filter: str | None = None
    parent_chunk_size: int = ID_CHUNK
    delta_by: SoqlStream | None = None
    delta_match: str | None = None
    batch_size: int | None = field(default=None, compare=False)
    bulk: str = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        obj = self.source_object
        if not isinstance(obj, str) or not _OBJECT_RE.match(obj):
            raise StreamSpecError(str(obj), "source_object must be an object API name")
        if isinstance(self.fields, str) or not self.fields:
            raise StreamSpecError(obj, "fields must be a non-empty list of field names")
        keys = [self.primary_key] + ([self.replication_key] if self.replication_key else [])
        names: list[str] = []
        for name in (*self.fields, *keys):
            if not isinstance(name, str) or not _FIELD_RE.match(name):
                raise StreamSpecError(obj, f"invalid field name {name!r}")
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        object.__setattr__(self, "fields", tuple(names))
        if isinstance(self.filters, str):
            object.__setattr__(self, "filters", (self.filters,))
        else:
            object.__setattr__(self, "filters", tuple(self.filters))
        for clause in self.filters:
            if not isinstance(clause, str) or not clause.strip():
                raise StreamSpecError(obj, f"invalid filter {clause!r}")
        if self.parent_filter is not None and not _FIELD_RE.match(self.parent_filter):
            raise StreamSpecError(obj, f"invalid parent_filter {self.parent_filter!r}")
        if (self.delta_by is None) != (self.delta_match is None):
            raise StreamSpecError(obj, "delta_by and delta_match go together")
        if self.delta_match is not None and not _FIELD_RE.match(self.delta_match):
            raise StreamSpecError(obj, f"invalid delta_match {self.delta_match!r}")
        if not 1 <= self.parent_chunk_size <= 1000:
            raise StreamSpecError(obj, "parent_chunk_size must be in [1, 1000]")
        if self.batch_size is not None and not 200 <= self.batch_size <= 2000:
            raise StreamSpecError(obj, "batch_size must be in [200, 2000]")
        if self.bulk not in BULK_MODES:
            raise StreamSpecError(obj, f"bulk must be one of {', '.join(BULK_MODES)}, not {self.bulk!r}")

    # ---- SOQL ----------------------------------------------------------------------------------------

    def object_name(self, ns: str) -> str:
        """The object's API name with the namespace filled in."""
        return expand_namespace(self.source_object, ns)

    def field_names(self, ns: str) -> tuple[str, ...]:
        """The fields with the namespace filled in."""
        return tuple(expand_namespace(f, ns) for f in self.fields)

    def _where(self, start: datetime | None, end: datetime | None, ns: str,
               parent_ids: Sequence[str] | None, ids: Sequence[str] | None = None,
               key: str | None = None, parent_object: str | None = None) -> list[str]:
        where: list[str] = []
        if ids is not None:                     # records by id (or by ``key``): no window, no parent filter
            bad = [i for i in ids if not is_sf_id(i)]
            if bad:
                raise ValueError(f"{self.source_object}: not Salesforce ids: {bad[:5]}")
            filters = () if key else self.filters
            return [*(f"({expand_namespace(c, ns)})" for c in filters),
                    f"{expand_namespace(key or self.primary_key, ns)} IN {soql_in(ids)}"]
        if self.replication_key:
            rk = expand_namespace(self.replication_key, ns)
            if start is not None:
                where.append(f"{rk} >= {soql_datetime(start)}")
            if end is not None:
                where.append(f"{rk} < {soql_datetime(end)}")
        where += [f"({expand_namespace(c, ns)})" for c in self.filters]
        if self.parent_filter and parent_object is not None:       # a semi-join: the parents of one object
            if not _OBJECT_RE.match(parent_object):
                raise StreamSpecError(self.source_object, f"invalid parent object {parent_object!r}")
            where.append(f"{expand_namespace(self.parent_filter, ns)} IN (SELECT Id FROM "
                         f"{expand_namespace(parent_object, ns)})")
        elif self.parent_filter:
            if parent_ids is None:
                raise StreamSpecError(self.source_object, f"needs parent ids for {self.parent_filter} IN (...)")
            bad = [i for i in parent_ids if not is_sf_id(i)]
            if bad:
                raise ValueError(f"{self.source_object}: not Salesforce ids: {bad[:5]}")
            where.append(f"{expand_namespace(self.parent_filter, ns)} IN {soql_in(parent_ids)}")
        return where

    def soql(self, start: datetime | None, end: datetime | None, ns: str, *,
             parent_ids: Sequence[str] | None = None, ids: Sequence[str] | None = None,
             key: str | None = None, parent_object: str | None = None) -> str:
        """Return the SOQL for the window ``[start, end)``, ordered by replication key then id.

        ``start=None`` reads from the beginning; ``parent_ids`` fills ``parent_filter IN (...)``
        (one chunk: :meth:`records` chunks for you); ``ids``: the records of those primary keys instead of a
        window (one chunk: :meth:`records_by_id`), the stream's filters still applied; with ``key``: the records
        whose field ``key`` is in ``ids`` (``delta_match``), without the stream's filters; ``parent_object``:
        ``parent_filter IN (SELECT Id FROM <parent_object>)`` instead of ids.
        """
        if start is not None and end is not None and soql_datetime(start) >= soql_datetime(end):
            raise ValueError(f"{self.source_object}: empty window [{soql_datetime(start)}, {soql_datetime(end)})")
        where = self._where(start, end, ns, parent_ids, ids, key, parent_object)
        order = [expand_namespace(k, ns) for k in (self.replication_key, self.primary_key) if k]
        text = f"SELECT {', '.join(self.field_names(ns))} FROM {self.object_name(ns)}"
        if where:
            text += " WHERE " + " AND ".join(where)
        return text + " ORDER BY " + ", ".join(order)

    def _queries(self, start: datetime | None, end: datetime | None, ns: str,
                 parent_ids: Sequence[str] | None, parent_objects: Sequence[str] | None = None) -> Iterator[str]:
        if self.parent_filter and parent_objects is not None:
            for parent in dict.fromkeys(parent_objects):
                yield self.soql(start, end, ns, parent_object=parent)
        elif self.parent_filter and parent_ids is not None:
            for batch in chunked(dict.fromkeys(parent_ids), self.parent_chunk_size):
                yield self.soql(start, end, ns, parent_ids=batch)
        else:
            yield self.soql(start, end, ns, parent_ids=parent_ids)

    # ---- reading ---------------------------------------------------------------------------------------

    def records(self, hook: AptoHook, start: datetime | None, end: datetime, *,
                parent_ids: Sequence[str] | None = None,
                parent_objects: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records changed in ``[start, end)`` page by page, never one at or past ``end``.

        The path (REST or Bulk API 2.0) follows ``bulk``; the choice and its reason are logged.

        :param parent_ids: ids for ``parent_filter`` (required when the stream has one; none → nothing); a delta
            window (``start`` given) of a stream with ``delta_by`` needs none and ignores them.
        :param parent_objects: instead of ``parent_ids``, the objects whose records are the parents: one semi-join
            query each (``parent_filter IN (SELECT Id FROM <object>)``), paged.
        """
        if start is not None and self.delta_by is not None:
            yield from self._delta_records(hook, start, end)
            return
        if self.parent_filter and parent_objects is None and parent_ids is not None and not parent_ids:
            return
        if end > datetime.now(UTC):
            hook.log.warning("%s: window end %s is in the future; records changed after now and before it"
                             " may be missed by this read", self.source_object, soql_datetime(end))
        ns = hook.namespace
        rk = expand_namespace(self.replication_key, ns) if self.replication_key else None
        queries = list(self._queries(start, end, ns, parent_ids, parent_objects))
        bulk = self._use_bulk(hook, start, queries, chunked_ids=bool(self.parent_filter and parent_ids is not None
                                                                     and parent_objects is None))
        skipped = 0
        lo, hi = (soql_datetime(start) if start is not None else None), soql_datetime(end)
        for soql in queries:
            if bulk:
                rows = hook.bulk_query(soql, include_deleted=self.include_deleted)
            else:
                rows = hook.query(soql, include_deleted=self.include_deleted, batch_size=self.batch_size)
            for record in rows:
                if rk and not self._in_window(record.get(rk), lo, hi):
                    skipped += 1  # the org answered past the signpost: leave it for the next window
                    continue
                yield record
        if skipped:
            hook.log.warning("%s: %d record(s) outside [%s, %s) dropped (left for their window)",
                             self.source_object, skipped, start and soql_datetime(start), soql_datetime(end))

    def _delta_records(self, hook: AptoHook, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """A delta window by ``delta_by``: one query of the records that changed in the window (none: nothing
        more), then this stream's records matching them, ``ID_CHUNK`` keys per query, whatever their own stamp."""
        assert self.delta_by is not None and self.delta_match is not None
        changers = self.delta_by if not self.include_deleted or self.delta_by.include_deleted else \
            replace(self.delta_by, include_deleted=True,
                    fields=tuple(dict.fromkeys((*self.delta_by.fields, "IsDeleted"))))
        pk = expand_namespace(changers.primary_key, hook.namespace)
        keys = list(dict.fromkeys(str(r[pk]) for r in changers.records(hook, start, end) if r.get(pk)))
        hook.log.info("%s: %d %s record(s) changed in the window; their %s read by %s", self.source_object,
                      len(keys), changers.source_object, self.source_object, self.delta_match)
        ns = hook.namespace
        for chunk in chunked(keys, ID_CHUNK):
            soql = self.soql(None, None, ns, ids=chunk, key=self.delta_match)
            yield from hook.query(soql, include_deleted=self.include_deleted, batch_size=self.batch_size)

    def records_by_id(self, hook: AptoHook, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Yield the live records of ``ids`` (primary keys), whenever they changed: REST queries of
        ``primary_key IN (...)`` in chunks of ``ID_CHUNK`` (a replay of dead letters re-reads them)."""
        ns = hook.namespace
        for chunk in chunked(list(dict.fromkeys(ids)), ID_CHUNK):
            yield from hook.query(self.soql(None, None, ns, ids=chunk), batch_size=self.batch_size)

    def _use_bulk(self, hook: AptoHook, start: datetime | None, queries: Sequence[str], *,
                  chunked_ids: bool) -> bool:
        """Pick REST or Bulk API 2.0 for this read (see ``bulk``); log which and why."""
        name, log = self.source_object, hook.log
        if chunked_ids:
            log.info("%s: REST query (parent ids in %d IN-list chunk(s))", name, len(queries))
            return False
        if self.bulk != "auto":
            log.info("%s: %s (stream bulk: %s)", name, "Bulk API 2.0 query job" if self.bulk == "always"
                     else "REST query", self.bulk)
            return self.bulk == "always"
        if start is not None:
            log.info("%s: REST query (delta window from %s)", name, soql_datetime(start))
            return False
        count = sum(hook.count(q, include_deleted=self.include_deleted) for q in queries)
        threshold = hook.bulk_threshold
        bulk = count >= threshold
        log.info("%s: %s (full read: %d record(s) %s bulk_threshold %d)", name,
                 "Bulk API 2.0 query job" if bulk else "REST query", count, ">=" if bulk else "<", threshold)
        return bulk

    @staticmethod
    def _in_window(value: Any, lo: str | None, hi: str) -> bool:
        """Whether a replication-key value is in the window of SOQL literals ``[lo, hi)``, at their (second)
        precision."""
        if not isinstance(value, str) or "T" not in value:
            return True  # a date or an empty key: the SOQL filter is the only judge
        if len(value) >= 20 and value[10] == "T" and value.endswith(("+0000", "Z")):
            when_s = value[:19] + "Z"               # UTC as Salesforce writes it: no parsing (asked per record)
        else:
            try:
                when_s = soql_datetime(parse_sf_datetime(value))
            except ValueError:
                return True
        return (lo is None or when_s >= lo) and when_s < hi

    def count(self, hook: AptoHook, start: datetime | None, end: datetime, *,
              parent_ids: Sequence[str] | None = None) -> int:
        """Return how many records ``[start, end)`` holds (``SELECT COUNT()``; one call per id chunk)."""
        if self.parent_filter and parent_ids is not None and not parent_ids:
            return 0
        ns = hook.namespace
        return sum(hook.count(q, include_deleted=self.include_deleted)
                   for q in self._queries(start, end, ns, parent_ids))

    # ---- schema check ----------------------------------------------------------------------------------

    def missing_fields(self, hook: AptoHook) -> list[str]:
        """Return the declared fields the org's describe does not know (namespace filled in).

        A dotted field (``Account.Name``) is checked on its first hop: a relationship name of the object.
        """
        ns = hook.namespace
        describe = hook.describe(self.object_name(ns))
        names = {f["name"].lower() for f in describe.get("fields", [])}
        relations = {f["relationshipName"].lower() for f in describe.get("fields", []) if f.get("relationshipName")}
        missing = []
        for name in self.field_names(ns):
            head, dot, _ = name.partition(".")
            known = relations if dot else names
            if head.lower() not in known:
                missing.append(name)
        return missing

    def check_fields(self, hook: AptoHook) -> None:
        """Raise :class:`AptoUnknownFieldError` naming the object and every unknown field."""
        if missing := self.missing_fields(hook):
            raise AptoUnknownFieldError(self.object_name(hook.namespace), missing)


_SPEC_KEYS = frozenset({"kind", "source_object", "object", "fields", "primary_key", "replication_key",
                        "filters", "include_deleted", "parent_filter", "parent_chunk_size", "batch_size", "bulk",
                        "delta_by"})


def stream_from_spec(spec: Mapping[str, Any], *, source_object: str | None = None) -> SoqlStream:
    """Build a :class:`SoqlStream` from a mapping file's ``stream:`` block.

    ``{kind: soql, fields: [...], replication_key: SystemModstamp, filters: [...]}``; the object
    comes from ``source_object`` (the mapping's object key) or the block's ``source_object``/``object``.
    ``replication_key: null`` reads the whole object; ``bulk: auto | always | never`` picks the read
    path (see :class:`SoqlStream`); ``delta_by: {source_object, fields, filters, ..., match}``: a stream of its
    own whose changes a delta window follows, ``match`` this stream's field matched against its primary keys.
    """
    if not isinstance(spec, Mapping):
        raise StreamSpecError(str(source_object or "?"), "stream spec must be a mapping")
    name = source_object or spec.get("source_object") or spec.get("object") or "?"
    if unknown := sorted(set(spec) - _SPEC_KEYS):
        raise StreamSpecError(str(name), f"unknown key(s) {unknown}; known: {sorted(_SPEC_KEYS)}")
    if spec.get("kind", "soql") != "soql":
        raise StreamSpecError(str(name), f"kind must be 'soql', not {spec.get('kind')!r}")
    if name == "?":
        raise StreamSpecError(str(name), "no source_object")
    fields = spec.get("fields")
    if not isinstance(fields, (list, tuple)) or not fields:
        raise StreamSpecError(str(name), "fields must be a non-empty list")
    filters = spec.get("filters") or ()
    if isinstance(filters, str):
        filters = (filters,)
    kwargs: dict[str, Any] = {"source_object": name, "fields": tuple(fields), "filters": tuple(filters)}
    for key in ("primary_key", "parent_filter", "parent_chunk_size", "batch_size", "bulk"):
        if spec.get(key) is not None:
            kwargs[key] = spec[key]
    if "replication_key" in spec:
        kwargs["replication_key"] = spec["replication_key"]
    if "include_deleted" in spec:
        if not isinstance(spec["include_deleted"], bool):
            raise StreamSpecError(str(name), "include_deleted must be true or false")
        kwargs["include_deleted"] = spec["include_deleted"]
    for key in ("parent_chunk_size", "batch_size"):
        if key in kwargs and (isinstance(kwargs[key], bool) or not isinstance(kwargs[key], int)):
            raise StreamSpecError(str(name), f"{key} must be an integer")
    if (delta := spec.get("delta_by")) is not None:
        if not isinstance(delta, Mapping) or not isinstance(delta.get("match"), str):
            raise StreamSpecError(str(name), "delta_by must be a stream block with a match field")
        kwargs["delta_by"] = stream_from_spec({k: v for k, v in delta.items() if k != "match"})
        kwargs["delta_match"] = delta["match"]
    return SoqlStream(**kwargs)
