"""LinkAppSource: every kind of Link app stream a pair file declares, behind AptoSource's interface.

- ``rest``: ``{kind: rest, resource: companies, replication_key: updated_at}``: the resource's records
  with ``updated_at`` in ``[start, end)``, page by page; with ``with_deleted``, the resource's records
  deleted in the window (``GET /deleted``) follow as ``{"id", "IsDeleted": True, "deleted_at"}``;
- ``nested``: ``{kind: nested, resource: pipelines, items: stages, parent_key: pipeline_id}``: one record
  per item of each parent record (the item's fields, the parent's id as ``parent_key`` and its name as
  ``pipeline_name``: ``parent_key`` with ``_id`` replaced by ``_name``); the parents are read whole;
- ``export``: every record of the resource (automations: the rebuild reference; nothing is loaded).

``describes`` turns the ``custom_fields`` definitions into Salesforce-describe-like fields so the
pair's custom-field rules type them; ``blob`` downloads the file a record's URL field names. Link app
has no namespace and no child sub-queries (see :meth:`LinkAppSource.enrich_children`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crm_migration.hooks.link_app import LinkAppError, LinkAppHook
from crm_migration.mapping.spec import ObjectSpec, get_path
from crm_migration.streams import MISSING_STATUS, MissingFile

if TYPE_CHECKING:
    from crm_migration.streams.link_app_plan import LinkAppPlanReader

log = logging.getLogger(__name__)

#: Link app custom field type -> the Salesforce describe type the custom-field rules know
FIELD_TYPES: dict[str, str] = {
    "text": "string", "number": "double", "date": "date", "picklist": "picklist",
    "multiselect": "multipicklist", "url": "url", "boolean": "boolean",
}
KINDS = ("rest", "nested", "export")
#: the only field the API windows on (``updated_since`` / ``updated_before``)
REPLICATION_KEY = "updated_at"
#: how long Link app lists a deleted record in ``GET /deleted`` (the spec)
DELETIONS_KEPT = timedelta(days=30)


def _singular(resource: str) -> str:
    """``companies`` -> ``company``, ``deals`` -> ``deal``: a ``custom_fields`` definition's ``object``."""
    if resource.endswith("ies"):
        return resource[:-3] + "y"
    return resource[:-1] if resource.endswith("s") else resource


def _ts(value: str) -> datetime:
    """An API timestamp (``2024-03-05T14:02:11Z``) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def nested_stream(obj: ObjectSpec) -> tuple[str, str, str]:
    """``(resource, items, parent_key)`` of a ``nested`` stream (``ValueError`` naming the object without items)."""
    resource = str(obj.stream.get("resource") or obj.source_object)
    items = obj.stream.get("items")
    if not items:
        raise ValueError(f"{obj.name}: a nested stream needs items (the list field of {resource} to read)")
    return resource, str(items), str(obj.stream.get("parent_key") or f"{_singular(resource)}_id")


def nested_items(parent: Mapping[str, Any], items: str, parent_key: str) -> list[dict[str, Any]]:
    """The records a nested stream makes of one parent: each item's fields, the parent's id as ``parent_key``
    and its name as ``parent_key`` with ``_id`` replaced by ``_name``."""
    name_key = (parent_key[:-3] if parent_key.endswith("_id") else parent_key) + "_name"
    return [{**item, parent_key: parent["id"], name_key: parent.get("name")} for item in parent.get(items) or ()]


def _window(start: datetime | None, end: datetime) -> str:
    return f"[{start.isoformat() if start else 'beginning'}, {end.isoformat()})"


class LinkAppSource:
    """Read one pair's objects from a Link app tenant.

    :param hook: the LinkAppHook of the tenant.
    """

    name = "link_app"
    #: ``GET /deleted`` lists the deletions of the last 30 days only
    deletions_kept = DELETIONS_KEPT
    deletions_kept_where = "the Link app tenant keeps deletions"

    def __init__(self, hook: LinkAppHook) -> None:
        self.hook = hook

    @property
    def download_workers(self) -> int:
        """Files a load downloads at a time (the connection's ``extra.download_workers``): :meth:`blob` is safe
        to call from that many threads at once."""
        return self.hook.download_workers

    @property
    def namespace(self) -> str:
        """Always ``""``: Link app has no managed-package namespace."""
        return ""

    def use_namespace(self, ns: str) -> None:
        """Do nothing: Link app has no namespace (kept for the engine's source interface)."""

    # ---- records -------------------------------------------------------------------------------------

    def records(self, obj: ObjectSpec, *, start: datetime | None, end: datetime,
                parent_ids: Sequence[str] | None = None, with_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Yield the object's source records in ``[start, end)`` (``start=None``: from the beginning; UTC-aware).

        The stream is checked before anything is read: an unknown kind, a missing resource or a
        replication key other than ``updated_at`` raise :class:`ValueError` naming the object.

        :param parent_ids: ignored: :meth:`needs_parents` is always false (the API filters no child by parent).
        :param with_deleted: ``rest`` only: also the resource's records deleted in ``[start, end)``, as
            ``{"id", "IsDeleted": True, "deleted_at"}`` after the live ones; a full read (``start=None``)
            asks for none (``/deleted`` keeps 30 days, and a full read has nothing to archive).
        """
        kind = obj.stream.get("kind")
        resource = str(obj.stream.get("resource") or obj.source_object)
        if kind == "rest":
            rk = obj.stream.get("replication_key", REPLICATION_KEY)
            if rk != REPLICATION_KEY:
                raise ValueError(f"{obj.name}: Link app windows only on {REPLICATION_KEY!r}, not replication_key "
                                 f"{rk!r}")
            return self._rest(obj, resource, start, end, deleted_since=start if with_deleted else None)
        if kind == "nested":
            resource, items, parent_key = nested_stream(obj)
            return self._nested(obj, resource, items, parent_key)
        if kind == "export":
            return self._counted(obj, resource, self.hook.iter_records(resource), "records (export)")
        raise ValueError(f"{obj.name}: unknown Link app stream kind {kind!r} (known: {', '.join(KINDS)})")

    def _rest(self, obj: ObjectSpec, resource: str, start: datetime | None, end: datetime, *,
              deleted_since: datetime | None) -> Iterator[dict[str, Any]]:
        window = _window(start, end)
        live = 0
        for record in self.hook.iter_records(resource, since=start, before=end):
            live += 1
            yield record
        deleted = 0
        # a start older than DELETIONS_KEPT is warned about once, by the read window (engine.windows, its report)
        if deleted_since is not None:
            for d in self.hook.iter_deleted(since=deleted_since):
                if d.get("resource") != resource or not deleted_since <= _ts(str(d["deleted_at"])) < end:
                    continue
                deleted += 1
                yield {"id": str(d["id"]), "IsDeleted": True, "deleted_at": d["deleted_at"]}
        log.info("Link app %s (%s): %d records%s in %s", resource, obj.name, live,
                 f" and {deleted} deletions" if deleted_since is not None else "", window)

    def _nested(self, obj: ObjectSpec, resource: str, items: str, parent_key: str) -> Iterator[dict[str, Any]]:
        parents = count = 0
        for parent in self.hook.iter_records(resource):        # few parents, no window: read whole
            parents += 1
            for item in nested_items(parent, items, parent_key):
                count += 1
                yield item
        log.info("Link app %s.%s (%s): %d items of %d %s", resource, items, obj.name, count, parents, resource)

    @staticmethod
    def _counted(obj: ObjectSpec, resource: str, rows: Iterable[dict[str, Any]], what: str
                 ) -> Iterator[dict[str, Any]]:
        count = 0
        for row in rows:
            count += 1
            yield row
        log.info("Link app %s (%s): %d %s", resource, obj.name, count, what)

    def records_by_id(self, obj: ObjectSpec, ids: Sequence[str]) -> Iterator[dict[str, Any]] | None:
        """The live records of ``ids`` (``GET /<resource>/<id>``, one request each: a 404 is a record the tenant
        no longer has), or None when the object cannot be read by id (not a ``rest`` stream keyed by ``{id}``)."""
        if obj.stream.get("kind") != "rest" or obj.target.id_template != "{id}":
            return None
        resource = str(obj.stream.get("resource") or obj.source_object)
        return (rec for rec in (self.hook.get(resource, i) for i in dict.fromkeys(ids)) if rec)

    def changed_at(self, obj: ObjectSpec, record: Mapping[str, Any]) -> datetime | None:
        """When the record last changed (``updated_at``), or None (a nested item has none)."""
        value = record.get(REPLICATION_KEY)
        return _ts(value) if isinstance(value, str) and value else None

    def needs_parents(self, obj: ObjectSpec) -> bool:
        """Always false: no Link app listing filters by parent ids (attachments carry ``related``)."""
        return False

    def enrich_children(self, obj: ObjectSpec, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return ``records`` unchanged.

        The API lists a resource by ``updated_at`` only: it has no filter by parent (no ``?deal_id=``),
        so children cannot be fetched per batch of parents as Salesforce sub-queries are. What Link app
        nests (a pipeline's stages) comes inside the parent record, and other children are streams of
        their own that name their parent (``related``, ``contact_id``).
        """
        return records

    # ---- schema and files ----------------------------------------------------------------------------

    def plan_reader(self) -> LinkAppPlanReader:
        """What the plan step asks this tenant (:class:`~crm_migration.engine.plan.PlanReader`)."""
        from crm_migration.streams.link_app_plan import LinkAppPlanReader

        return LinkAppPlanReader(self)

    def describes(self, source_objects: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """``{object: describe-like fields}`` of the ``custom_fields`` definitions, for the custom-field plan.

        An object is a resource (``contacts``); its definitions are those whose ``object`` is the
        singular (``contact``). Each becomes ``{"name": "custom_fields.<key>", "label", "custom": True,
        "type": <Salesforce type>, "picklistValues": [{"value", "label", "active"}]}``: text -> string,
        number -> double, date, picklist, multiselect -> multipicklist, url, boolean; an unknown type is
        a string (logged). An object without definitions gets ``[]``.
        """
        wanted = list(dict.fromkeys(source_objects))
        if not wanted:
            return {}
        by_object: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in self.hook.iter_records("custom_fields"):
            key = d.get("key")
            if not key:
                log.warning("Link app custom field %s has no key; skipped", d.get("id"))
                continue
            kind = str(d.get("type") or "")
            sf_type = FIELD_TYPES.get(kind)
            if sf_type is None:
                log.warning("Link app custom field %s.%s: unknown type %r, described as a string",
                            d.get("object"), key, kind)
                sf_type = "string"
            options = (d.get("options") or ()) if sf_type in ("picklist", "multipicklist") else ()
            by_object[str(d.get("object"))].append({
                "name": f"custom_fields.{key}", "label": d.get("label") or key, "custom": True, "type": sf_type,
                "picklistValues": [{"value": o, "label": o, "active": True} for o in options]})
        out = {o: list(by_object.get(_singular(o)) or by_object.get(o) or []) for o in wanted}
        log.info("Link app custom fields: %s", ", ".join(f"{o} {len(f)}" for o, f in out.items()))
        return out

    def blob(self, obj: ObjectSpec, record: Mapping[str, Any]) -> bytes | MissingFile | None:
        """The bytes of the file the record's URL field names (``enrich: {_blob: {url_field: url}}``,
        default ``url``); ``None`` when the record has no URL; :class:`MissingFile` when the file is
        missing (404 or 410, logged: the load dead-letters it and goes on). Other errors raise."""
        spec = obj.enrich.get("_blob")
        url_field = str((spec or {}).get("url_field") or "url")
        url = get_path(record, url_field)
        if url in (None, ""):
            return None
        try:
            return self.hook.download(str(url))
        except LinkAppError as exc:
            if exc.status not in MISSING_STATUS:
                raise
            log.warning("%s %s: its file %r is missing in Link app (HTTP %d)", obj.name, record.get("id"),
                        record.get("file_name"), exc.status)
            return MissingFile(exc.status, exc.path)      # the URL's path: a signed query never kept
