"""AptoSource: every kind of Apto stream a pair file declares, behind one interface.

- ``soql``: a :class:`~crm_migration.streams.soql.SoqlStream` over the window (``parent_filter``
  objects such as ContentDocumentLink get their parent ids from the caller);
- ``pipeline_stages``: for each Opportunity record type, the StageName values it allows (ui-api
  picklist values) joined with ``OpportunityStage`` by ApiName: one record per (pipeline, stage);
- ``tooling``: Tooling API rows (automation export only; nothing is loaded).

``enrich_children`` attaches child rows (``OpportunityHistories``) with one SOQL query per 200 parents;
``blob`` downloads the bytes an ``_blob`` enrichment names (a file gone from the org: :class:`MissingFile`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crm_migration.hooks.apto import AptoApiError, AptoHook, chunked, parse_sf_datetime, soql_in
from crm_migration.mapping.mapper import get_path
from crm_migration.mapping.spec import ObjectSpec
from crm_migration.streams import MISSING_STATUS, MissingFile
from crm_migration.streams.soql import stream_from_spec

if TYPE_CHECKING:
    from crm_migration.streams.apto_plan import AptoPlanReader

_PLACEHOLDER = re.compile(r"\{([^}]+)\}")


class AptoSource:
    """Read one pair's objects from an Apto org.

    :param hook: the AptoHook of the org.
    """

    name = "apto"
    #: deletions are read from the recycle bin (``queryAll``, ``IsDeleted``), which keeps them 15 days
    deletions_kept = timedelta(days=15)
    deletions_kept_where = "Salesforce keeps deleted records in its recycle bin"
    #: a full rerun may list ids and ``SystemModstamp`` first and read in full only what changed (``id_records``,
    #: ``records_by_id``): one narrow SOQL listing instead of every field of every record
    lists_stamps = True

    def __init__(self, hook: AptoHook) -> None:
        self.hook = hook

    @property
    def download_workers(self) -> int:
        """Files a load downloads at a time (the connection's ``extra.download_workers``): :meth:`blob` is safe
        to call from that many threads at once."""
        return self.hook.download_workers

    @property
    def namespace(self) -> str:
        return self.hook.namespace or ""

    def use_namespace(self, ns: str) -> None:
        """Take the namespace found earlier in the run instead of asking the org again."""
        self.hook.__dict__["namespace"] = ns        # AptoHook.namespace is a cached property

    def plan_reader(self) -> AptoPlanReader:
        """What the plan step asks this org (:class:`~crm_migration.engine.plan.PlanReader`)."""
        from crm_migration.streams.apto_plan import AptoPlanReader

        return AptoPlanReader(self.hook)

    def describes(self, source_objects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """``{object: describe fields}`` for the custom-field plan."""
        return {o: list(self.hook.describe(o)["fields"]) for o in dict.fromkeys(source_objects)}

    def records(self, obj: ObjectSpec, *, start: datetime | None, end: datetime,
                parent_ids: Sequence[str] | None = None, with_deleted: bool = False,
                parent_objects: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield the object's source records in ``[start, end)`` (``start=None``: from the beginning).

        :param with_deleted: also the records deleted in the window (``queryAll``, ``IsDeleted`` true).
        :param parent_objects: a ``parent_filter`` stream's parents by object (a semi-join each), not by ids.
        """
        kind = obj.stream.get("kind", "soql")
        if kind == "soql":
            spec = dict(obj.stream)
            if with_deleted:
                deleted = {**spec, "include_deleted": True,
                           "fields": [*spec.get("fields", ()), *(() if "IsDeleted" in spec.get("fields", ())
                                                                 else ("IsDeleted",))]}
                rows = stream_from_spec(deleted, source_object=obj.source_object).records(
                    self.hook, start, end, parent_ids=parent_ids, parent_objects=parent_objects)
                try:
                    first = next(rows, None)
                except AptoApiError as exc:     # objects that cannot be deleted have no IsDeleted
                    if exc.error_code != "INVALID_FIELD" or "IsDeleted" not in exc.message:
                        raise
                else:
                    if first is not None:
                        yield first
                        yield from rows
                    return
            stream = stream_from_spec(spec, source_object=obj.source_object)
            yield from stream.records(self.hook, start, end, parent_ids=parent_ids, parent_objects=parent_objects)
        elif kind == "pipeline_stages":
            yield from self._pipeline_stages(obj)
        elif kind == "tooling":
            for tooling_object in obj.stream.get("objects", ()):
                for row in self.hook.tooling_query(f"SELECT Id, Name FROM {tooling_object}"):
                    yield {"ToolingObject": tooling_object, **row}
        else:
            raise ValueError(f"{obj.name}: unknown stream kind {kind!r}")

    def id_records(self, obj: ObjectSpec, *, fields: Sequence[str], end: datetime) -> Iterator[dict[str, Any]]:
        """The object's records alive now, with ``fields`` (and the primary and replication keys) only: the
        object's own stream (filters, read path) with a short select list. Not for a ``parent_filter`` stream
        (:meth:`needs_parents`); another kind is read whole (:meth:`records`)."""
        if obj.stream.get("kind", "soql") != "soql":
            yield from self.records(obj, start=None, end=end)
            return
        spec = {**dict(obj.stream), "fields": list(fields)}
        yield from stream_from_spec(spec, source_object=obj.source_object).records(self.hook, None, end)

    def read_fields(self, obj: ObjectSpec) -> tuple[str, ...]:
        """The fields a record of the object's stream carries (namespace filled in)."""
        return stream_from_spec(obj.stream, source_object=obj.source_object).field_names(self.namespace)

    def records_by_id(self, obj: ObjectSpec, ids: Sequence[str]) -> Iterator[dict[str, Any]] | None:
        """The live records of ``ids`` (the object's own ids: its key is its primary key), or None when the object
        cannot be read by id (a composite key, another stream kind)."""
        pk = str(obj.stream.get("primary_key") or "Id")
        if obj.stream.get("kind", "soql") != "soql" or obj.target.id_template != f"{{{pk}}}":
            return None
        return stream_from_spec(obj.stream, source_object=obj.source_object).records_by_id(self.hook, ids)

    def changed_at(self, obj: ObjectSpec, record: Mapping[str, Any]) -> datetime | None:
        """When the record last changed (its replication key), or None when the stream has none."""
        rk = obj.stream.get("replication_key", "SystemModstamp")
        value = record.get(rk) if rk else None
        return parse_sf_datetime(value) if isinstance(value, str) and "T" in value else None

    def needs_parents(self, obj: ObjectSpec) -> bool:
        return obj.stream.get("kind", "soql") == "soql" and bool(obj.stream.get("parent_filter"))

    def _pipeline_stages(self, obj: ObjectSpec) -> Iterator[dict[str, Any]]:
        where = obj.stream.get("record_types") or "SobjectType = 'Opportunity'"
        stages = {s["ApiName"]: s for s in self.hook.query(
            "SELECT ApiName, MasterLabel, SortOrder, IsWon, IsClosed, DefaultProbability, IsActive "
            "FROM OpportunityStage")}
        for rt in self.hook.query(f"SELECT Id, Name FROM RecordType WHERE {where} ORDER BY Id"):
            for value in self.hook.stage_picklist(rt["Id"]):
                api = value.get("value") if isinstance(value, Mapping) else value
                stage = stages.get(api)
                if stage is None:       # a picklist value with no OpportunityStage row: keep what we know
                    stage = {"ApiName": api, "MasterLabel": (value.get("label") if isinstance(value, Mapping)
                                                             else api), "SortOrder": None, "IsWon": False,
                             "IsClosed": False, "DefaultProbability": None, "IsActive": True}
                yield {"RecordTypeId": rt["Id"], **stage}

    def enrich_children(self, obj: ObjectSpec, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach each enrichment's child rows as ``{"records": [...]}`` (Salesforce's sub-query shape)."""
        for name, spec in obj.enrich.items():
            if name == "_blob" or "object" not in spec or spec.get("staged"):     # staged: the engine's
                continue
            match, fields = spec["match"], [f for f in spec.get("fields", ()) if f != spec["match"]]
            order = f" ORDER BY {spec['order_by']}" if spec.get("order_by") else ""
            found: dict[str, list[dict[str, Any]]] = defaultdict(list)
            ids = [str(r["Id"]) for r in records if r.get("Id")]
            for chunk in chunked(ids, 200):
                soql = f"SELECT {', '.join([match, *fields])} FROM {spec['object']} WHERE {match} IN {soql_in(chunk)}"
                for row in self.hook.query(soql + order):
                    found[str(row[match])].append({f: row.get(f) for f in fields})
            for r in records:
                r[name] = {"records": found.get(str(r.get("Id")), [])}
        return records

    def blob(self, obj: ObjectSpec, record: Mapping[str, Any]) -> bytes | MissingFile | None:
        """The bytes of the record's ``_blob`` enrichment (``None`` when the path cannot be built).

        A download answering 404 or 410 (never retried) is :class:`MissingFile`; other errors raise
        as the hook raises them (5xx retried first, 401 an auth error).
        """
        spec = obj.enrich.get("_blob")
        if not spec:
            return None
        parts: dict[str, str] = {}
        for name in _PLACEHOLDER.findall(spec["url"]):
            value = get_path(record, name)
            if value in (None, ""):
                return None
            parts[name] = str(value)
        path = _PLACEHOLDER.sub(lambda m: parts[m.group(1)], spec["url"])
        try:
            return self.hook.download(path)
        except AptoApiError as exc:
            if exc.status not in MISSING_STATUS:
                raise
            return MissingFile(exc.status, exc.path or path)
