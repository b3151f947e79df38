"""The plan's questions answered for a Link app tenant (REST, ``specs/link-app-api.md``): :class:`LinkAppPlanReader`.

``LinkAppSource.plan_reader()`` returns one; :func:`crm_migration.engine.plan.build_plan` asks it
(:class:`~crm_migration.engine.plan.PlanReader`). The API has no count, no aggregate and no filter but
``updated_at``, so the reader reads **each resource once, page by page**, and collects in that one pass
everything the plan needs of every object reading it (a resource several objects read, such as
``activities``, is still read once; each record counts for the objects whose ``target.where`` it meets):

- the live count, the paths records hold (a mapped path no record holds is reported), the custom values
  whose key has no definition;
- records per owner for every owner field; the values of the fields a ``create_missing`` lookup (lost
  reasons) resolves;
- the parent edges and names of a ``hierarchy`` object (cycles); the first ``sample_limit`` records (the
  bad-data sample); every record of the small objects (users, pipelines and their stages, automations).

Besides: ``/custom_fields`` once (the definitions: types and options) and ``/deleted`` once (what the
tenant still keeps, 30 days). Requests: about one per page of each resource (``page_size`` from the
connection), never one per record. Memory: the samples, the small objects and the hierarchy edges.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crm_migration.engine.plan import PICKLIST_TYPES, Plan, Sample, lookup_fields, owner_fields
from crm_migration.mapping.mapper import matches
from crm_migration.mapping.propose import infer_fields
from crm_migration.mapping.spec import NOT_RECORD_PATHS, ObjectSpec, PairSpec, get_path
from crm_migration.streams.link_app_source import _singular, nested_items, nested_stream

if TYPE_CHECKING:
    from crm_migration.streams.link_app_source import LinkAppSource

__all__ = ["LinkAppPlanReader", "automation_entry"]

#: ``/deleted`` is asked from this moment: the tenant answers what it still keeps (30 days)
_DELETED_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
_KINDS = ("rest", "nested", "export")


@dataclass
class _Seen:
    """What one read of a resource collected for one object."""

    live: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    dict_paths: set[str] = field(default_factory=set)
    owners: dict[str, Counter[str]] = field(default_factory=dict)
    edges: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    custom_keys: Counter[str] = field(default_factory=Counter)
    custom_example: dict[str, str] = field(default_factory=dict)


def _resource(obj: ObjectSpec) -> str:
    return str(obj.stream.get("resource") or obj.source_object)


class LinkAppPlanReader:
    """The plan reader of a Link app tenant (see :class:`~crm_migration.engine.plan.PlanReader`)."""

    label = "Link app"
    place = "tenant"
    id_field = "id"

    def __init__(self, source: LinkAppSource) -> None:
        self.source, self.hook = source, source.hook
        self.pair: PairSpec | None = None
        self.plan: Plan | None = None
        self.sample_limit = 2000
        self._seen: dict[str, _Seen] = {}               # object name -> what its resource's read collected
        self._values: dict[str, dict[str, Counter[str]]] = {}   # resource -> path -> value counts
        self._read: set[str] = set()                   # resources read
        self._deleted: Counter[str] | None = None
        self._describes: dict[str, list[dict[str, Any]]] | None = None

    def begin(self, pair: PairSpec, plan: Plan, *, sample_limit: int) -> None:
        self.pair, self.plan, self.sample_limit = pair, plan, sample_limit
        self._owner_paths: dict[str, list[str]] = defaultdict(list)
        for obj, path in owner_fields(pair):
            self._owner_paths[obj.name].append(path)
        self._value_paths: dict[str, set[str]] = defaultdict(set)
        for name, lookup in pair.lookups.items():
            if lookup.options.get("create_missing") or lookup.options.get("create_from_picklist"):
                for obj, path in lookup_fields(pair, name):
                    self._value_paths[_resource(obj)].add(path)

    # ---- the one read of each resource -----------------------------------------------------------------

    def _objects_of(self, resource: str) -> list[ObjectSpec]:
        assert self.pair is not None
        return [o for o in self.pair.objects.values() if o.stream.get("kind") in _KINDS and _resource(o) == resource]

    def _keeps_all(self, obj: ObjectSpec) -> bool:
        """The small objects, kept whole: users, pipelines and their stages, the automation export."""
        return (obj.target.action == "match" or obj.model in ("crm.team", "crm.stage")
                or obj.stream.get("kind") in ("nested", "export"))

    def seen(self, obj: ObjectSpec) -> _Seen:
        """What the read of ``obj``'s resource collected for it (the resource is read on first need)."""
        resource = _resource(obj)
        if resource not in self._read:
            self._read_resource(resource)
        return self._seen.setdefault(obj.name, _Seen())

    def _read_resource(self, resource: str) -> None:
        objects = self._objects_of(resource)
        self._read.add(resource)
        seen = {o.name: self._seen.setdefault(o.name, _Seen()) for o in objects}
        values = self._values.setdefault(resource, {p: Counter() for p in self._value_paths.get(resource, ())})
        for record in self.hook.iter_records(resource):
            for path, counts in values.items():
                v = get_path(record, path)
                if v not in (None, ""):
                    counts[str(v)] += 1
            for obj in objects:
                kind = obj.stream.get("kind")
                if kind == "nested":
                    _, items, parent_key = nested_stream(obj)
                    for item in nested_items(record, items, parent_key):
                        self._collect(obj, seen[obj.name], item)
                elif kind == "export" or matches(obj, record):
                    self._collect(obj, seen[obj.name], record)

    def _collect(self, obj: ObjectSpec, s: _Seen, record: dict[str, Any]) -> None:
        s.live += 1
        if len(s.sample) < self.sample_limit:
            s.sample.append(record)
        if self._keeps_all(obj):
            s.kept.append(record)
        for key, value in record.items():
            s.paths.add(key)
            if isinstance(value, Mapping):
                s.dict_paths.add(key)
                s.paths.update(f"{key}.{k}" for k in value)
        for path in self._owner_paths.get(obj.name, ()):
            v = get_path(record, path)
            s.owners.setdefault(path, Counter())[str(v) if v not in (None, "") else "None"] += 1
        if (h := obj.hierarchy) is not None:
            rid = record.get(h.id_field)
            s.edges.append({h.id_field: rid, h.parent_field: record.get(h.parent_field)})
            if record.get("name") is not None:
                s.names[str(rid)] = str(record["name"])
        custom = record.get("custom_fields")
        if obj.custom_fields and isinstance(custom, Mapping):
            for key in custom:
                s.custom_keys[key] += 1
                s.custom_example.setdefault(key, str(record.get("id")))

    def _deleted_counts(self) -> Counter[str]:
        if self._deleted is None:
            self._deleted = Counter(str(d.get("resource")) for d in self.hook.iter_deleted(since=_DELETED_SINCE))
        return self._deleted

    def _definitions(self) -> dict[str, list[dict[str, Any]]]:
        """``{resource: describe-like fields}`` of the custom field definitions (one read of ``/custom_fields``)."""
        if self._describes is None:
            assert self.pair is not None
            resources = [_resource(o) for o in self.pair.objects.values() if o.custom_fields]
            self._describes = self.source.describes(resources) if resources else {}
        return self._describes

    # ---- namespace and inventory -----------------------------------------------------------------------

    def namespace(self) -> tuple[str, str]:
        return "", "Link app has no namespace"

    def inventory(self, obj: ObjectSpec, row: dict[str, Any]) -> list[dict[str, Any]]:
        kind = obj.stream.get("kind")
        resource = _resource(obj)
        row["filters"] = ", ".join(f"{k} {_cond(v)}" for k, v in obj.target.where.items())
        if kind not in _KINDS:
            row["count note"] = f"stream kind {kind!r} is not a Link app stream"
            return []
        s = self.seen(obj)
        if kind == "export":
            row["count note"] = f"{resource}: see Automations" if obj.target.export == "automation_reference" \
                else f"{resource}, read whole (not loaded on its own)"
            row["live"] = s.live
            if obj.target.export == "automation_reference":
                return []
        elif kind == "nested":
            parents = len({str(r.get(nested_stream(obj)[2])) for r in s.kept})
            row["live"] = s.live
            row["count note"] = f"{nested_stream(obj)[1]} of {parents} {resource}"
        else:
            row["live"] = s.live
            sharing = [o.name for o in self._objects_of(resource) if o.stream.get("kind") == "rest"]
            deleted = self._deleted_counts().get(resource, 0)
            if len(sharing) == 1:
                row["deleted"] = deleted
                row["count note"] = f"one read of {resource}; deleted: kept by Link app for 30 days"
            else:
                row["count note"] = (f"one read of {resource}, shared with {', '.join(n for n in sharing if n != obj.name)}"
                                     f" (records split by the filters); {deleted} {resource} deleted in the last "
                                     "30 days (not split)")
        return [{"object": obj.name, "source object": resource, "field": path, "why": why, "severity": "warning"}
                for path in self._read_paths(obj) if (why := self.unknown_reason(obj, path))]

    def _read_paths(self, obj: ObjectSpec) -> list[str]:
        """The record paths the object's mapping reads (fields, conditions, attach, hierarchy, key)."""
        skip = set(obj.enrich)
        paths: list[str] = []
        for f in obj.fields.values():
            paths += f.sources
        for c in obj.conditions.values():
            paths += c.sources
        if obj.attach is not None:
            paths += obj.attach.sources
            if obj.attach.type_from:
                paths.append(obj.attach.type_from)
        if obj.hierarchy is not None:
            paths += [obj.hierarchy.id_field, obj.hierarchy.parent_field]
        paths += obj.target.id_fields
        return [p for p in dict.fromkeys(paths) if not p.startswith(NOT_RECORD_PATHS) and p.split(".")[0] not in skip]

    def unknown_reason(self, obj: ObjectSpec, path: str) -> str | None:
        s = self.seen(obj)
        if not s.live or path in s.paths:
            return None
        head = path.split(".")[0]
        if head == "custom_fields":
            defined = {f["name"] for f in self._definitions().get(_resource(obj), ())}
            return None if path in defined else f"no record of the {s.live} read has it and no definition names it"
        if head in s.paths and head not in s.dict_paths:
            return None          # a value that is never an object: its parts cannot be checked
        return f"no record of the {s.live} read has it"

    # ---- custom fields and users -----------------------------------------------------------------------

    def describes(self, objects: Sequence[ObjectSpec]) -> dict[str, list[dict[str, Any]]]:
        definitions = self._definitions()
        return {o.name: list(definitions.get(_resource(o), ())) for o in objects}

    def users(self, user_obj: ObjectSpec | None) -> list[dict[str, Any]]:
        if user_obj is None:
            return []
        src = {f: user_obj.fields[f].sources[0] for f in ("email", "name")
               if f in user_obj.fields and user_obj.fields[f].sources}
        return [{"id": str(u["id"]), "name": get_path(u, src.get("name", "name")),
                 "email": get_path(u, src.get("email", "email")), "username": None, "active": u.get("active")}
                for u in self.seen(user_obj).kept]

    # ---- owner counts ----------------------------------------------------------------------------------

    def owner_countable(self, obj: ObjectSpec) -> bool:
        return obj.stream.get("kind") == "rest"

    def owner_counts(self, obj: ObjectSpec, path: str, fallback_ids: Sequence[str]
                     ) -> tuple[Counter[str] | None, int | None]:
        counts = self.seen(obj).owners.get(path, Counter())
        return counts, sum(counts.get(str(i), 0) for i in fallback_ids)

    def owner_counts_note(self, counted: bool) -> str:
        return ("records per owner counted in the one read of each resource (every live record, each object's "
                "filters)" if counted else "no object has an owner field")

    # ---- pipelines -------------------------------------------------------------------------------------

    def pipelines(self, team_obj: ObjectSpec, stage_obj: ObjectSpec | None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        assert self.plan is not None
        pipelines = self.seen(team_obj).kept
        teams = [{"pipeline id": str(p["id"]), "name": p.get("name"), "stages": len(p.get("stages") or ()),
                  "key": team_obj.key(p)} for p in pipelines]
        if stage_obj is None:
            return teams, []
        parent_key = nested_stream(stage_obj)[2] if stage_obj.stream.get("kind") == "nested" else "pipeline_id"
        names = {str(p["id"]): p.get("name") for p in pipelines}
        stages = []
        for st in self.seen(stage_obj).kept:
            stages.append({"pipeline": names.get(str(st.get(parent_key))),
                           "pipeline id": str(st.get(parent_key)), "stage": str(st.get("id")),
                           "label": st.get("name"), "sequence": st.get("order"), "won": st.get("is_won"),
                           "closed": st.get("is_closed"), "probability": st.get("probability"),
                           "key": stage_obj.key(st)})
        for p in pipelines:
            mine = [s for s in stages if s["pipeline id"] == str(p["id"])]
            if mine and not any(s["won"] for s in mine):
                self.plan.problem("warning", "schema", f"pipeline {p.get('name')}: no won stage (is_won); its won "
                                                       "deals land in their stage, not marked won")
        return teams, stages

    # ---- hierarchy and sample --------------------------------------------------------------------------

    def edges(self, obj: ObjectSpec) -> list[dict[str, Any]] | None:
        if obj.stream.get("kind") != "rest":
            return None
        return self.seen(obj).edges

    def names(self, obj: ObjectSpec, ids: Sequence[str]) -> dict[str, str]:
        names = self.seen(obj).names
        return {str(i): names[str(i)] for i in ids if str(i) in names}

    def sample(self, obj: ObjectSpec) -> Sample | None:
        """The first ``sample_limit`` records of the object (oldest change first), its custom picklists, and
        the custom values whose key no definition names (counted over every record read)."""
        if obj.stream.get("kind") != "rest" or obj.target.action == "match" or not obj.model:
            return None
        s = self.seen(obj)
        if not s.live:
            return None
        fields = self._definitions().get(_resource(obj), []) if obj.custom_fields else []
        cols = [p for p in self._read_paths(obj) if self.unknown_reason(obj, p) is None]
        cols += [f["name"] for f in fields if f["name"] not in cols]
        findings = []
        defined = {f["name"].split(".", 1)[1] for f in fields}
        for key, n in sorted(s.custom_keys.items()):
            if obj.custom_fields and key not in defined:
                findings.append({"object": obj.name, "check": "custom value without a definition",
                                 "field": f"custom_fields.{key}", "value": f"in {n} of {s.live} record(s) read",
                                 "records in sample": n, "example id": s.custom_example[key],
                                 "consequence": "not migrated: no x_ field (define it in Link app, or map the key "
                                                "in the pair file)"})
        schema: list[dict[str, Any]] = []
        if obj.custom_fields:        # every field the records hold (the mapping proposer profiles them)
            assert self.pair is not None
            resources = [_resource(o) for o in self.pair.objects.values()]
            schema = infer_fields(s.sample, resources=resources, skip=obj.enrich)
            schema += [dict(f) for f in fields]
            undefined = [{"name": f"custom_fields.{key}", "custom": False, "label": key, "picklistValues": [],
                          "referenceTo": []} for key in sorted(s.custom_keys) if key not in defined]
            for u in undefined:                       # typed from its values, as a field without a describe
                (typed,) = infer_fields([{"v": get_path(r, u["name"])} for r in s.sample]) or ({"type": "string"},)
                u["type"] = typed["type"]
            schema += undefined
        return Sample(records=s.sample, columns=cols,
                      picklists=[f for f in fields if f.get("type") in PICKLIST_TYPES], findings=findings,
                      schema=schema)

    # ---- lost reasons ----------------------------------------------------------------------------------

    def picklist(self, source_object: str, field_name: str) -> dict[str, Any] | None:
        return next((f for f in self._definitions().get(source_object, ()) if f["name"] == field_name), None)

    def seen_values(self, source_object: str, path: str) -> dict[str, int]:
        resource = next((_resource(o) for o in self._objects_of(source_object)), source_object)
        if resource not in self._read:
            self._read_resource(resource)
        return dict(self._values.get(resource, {}).get(path, Counter()))

    # ---- automations -----------------------------------------------------------------------------------

    def automations(self, obj: ObjectSpec, models: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Every record of the export resource as a rebuild-reference entry (:func:`automation_entry`)."""
        by_singular = {_singular(k): v for k, v in models.items()} | dict(models)
        entries = [automation_entry(r, by_singular) for r in self.seen(obj).kept]
        return entries, dict(sorted(Counter(e["type"] for e in entries).items()))


# ---- automations as a rebuild reference ----------------------------------------------------------------


def _cond(value: Any) -> str:
    if isinstance(value, Mapping) and "not" in value:
        return f"not {_cond(value['not'])}"
    if isinstance(value, list | tuple):
        return "in " + "/".join(str(v) for v in value)
    return f"= {value}"


def _text(value: Any) -> str | None:
    if value in (None, "", [], {}):
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


_ACTION_HINTS = {
    "assign_owner": "a server action setting user_id (round robin: a few lines of Python code)",
    "send_email": "a server action 'Send email' with a mail template",
    "create_task": "a server action 'Create activity' (mail.activity)",
    "webhook": "a server action 'Send webhook notification'",
    "set_field": "a server action 'Update record'",
}


def automation_entry(row: Mapping[str, Any], models: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Shape one Link app automation (``name, trigger {event, fields, pipeline_id} | {schedule},
    conditions [{field, op, value}], actions [{type, ...}], active``) as a rebuild-reference entry
    (the keys of the Apto entries: ``type, id, name, object, odoo_model, active, trigger, condition,
    formula, actions, description, rebuild_as, source``)."""
    models = models or {}
    trigger = row.get("trigger") if isinstance(row.get("trigger"), Mapping) else {}
    event = str(trigger.get("event") or "")
    obj, _, what = event.partition(".")
    conditions = row.get("conditions") or []
    actions = row.get("actions") or []
    cond_text = " and ".join(f"{c.get('field')} {c.get('op')} {_text(c.get('value'))}" for c in conditions
                             if isinstance(c, Mapping)) or None
    kinds = [str(a.get("type")) for a in actions if isinstance(a, Mapping)]
    model = models.get(obj) if obj else None
    if trigger.get("schedule"):
        kind, when = "scheduled automation", f"schedule {trigger['schedule']}"
        base = "a scheduled action (ir.cron) running a server action on the records the conditions select"
    else:
        kind = "event automation"
        when = event + (f" (fields {', '.join(map(str, trigger['fields']))})" if trigger.get("fields") else "") + (
            f" in pipeline {trigger['pipeline_id']}" if trigger.get("pipeline_id") else "")
        on = {"created": "creation", "updated": "update", "stage_changed": "stage change"}.get(what, what or "save")
        base = f"a base.automation on {on} of {model or obj or 'the record'}" + (
            " (trigger field stage_id)" if what == "stage_changed" else "")
    steps = [_ACTION_HINTS.get(k, f"a server action ({k})") for k in kinds]
    return {"type": kind, "id": row.get("id"), "name": row.get("name"), "object": obj or None, "odoo_model": model,
            "active": row.get("active"), "trigger": when, "condition": cond_text, "formula": None,
            "actions": ", ".join(kinds) or None, "description": None, "namespace": None, "managed": None,
            "rebuild_as": base + (" with a filter domain for the conditions" if conditions else "")
            + (": " + "; ".join(steps) if steps else ""),
            "source": dict(row)}
