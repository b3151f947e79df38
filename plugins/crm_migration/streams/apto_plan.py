"""The plan's questions answered for an Apto org (Salesforce REST, Tooling API): :class:`AptoPlanReader`.

``AptoSource.plan_reader()`` returns one; :func:`crm_migration.engine.plan.build_plan` asks it
(:class:`~crm_migration.engine.plan.PlanReader`). Whole tables are read only for ``User`` and the
hierarchy edges (``Id, ParentId``); everything else is ``COUNT()``, ``GROUP BY``, describes, small
metadata objects (RecordType, OpportunityStage, the Tooling objects) or a sample with ``ORDER BY Id
LIMIT n``. Every request goes through the AptoHook's client (the plan records it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.engine.plan import PICKLIST_TYPES, Plan, Sample
from crm_migration.hooks.apto import AptoApiError, soql_in_chunks
from crm_migration.mapping.spec import ObjectSpec, PairSpec, get_path

if TYPE_CHECKING:
    from crm_migration.hooks.apto import AptoHook

__all__ = ["AUTOMATION_OBJECTS", "AptoPlanReader", "automation_entry"]

AUTOMATION_OBJECTS = ("WorkflowRule", "ValidationRule", "FlowDefinitionView", "ApexTrigger")
#: Tooling fields never selected: compound metadata is only readable one row at a time.
_TOOLING_SKIP = frozenset({"Metadata", "FullName"})
#: field types a sample does not select (file bytes, compound fields)
_NOT_SAMPLED = frozenset({"base64", "address", "location"})


class AptoPlanReader:
    """The plan reader of an Apto org (see :class:`~crm_migration.engine.plan.PlanReader`)."""

    label = "Apto"
    place = "org"
    id_field = "Id"

    def __init__(self, hook: AptoHook) -> None:
        self.hook = self.apto = hook
        self._counts: dict[tuple[str, str, bool], int | None] = {}
        self._missing_objects: set[str] = set()
        self.group_by: bool | None = None         # None: not tried yet
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.pair: PairSpec | None = None
        self.plan: Plan | None = None
        self.sample_limit = 2000

    def begin(self, pair: PairSpec, plan: Plan, *, sample_limit: int) -> None:
        self.pair, self.plan, self.sample_limit = pair, plan, sample_limit

    # ---- small wrappers --------------------------------------------------------------------------------

    def describe(self, sobject: str) -> dict[str, Any] | None:
        if sobject in self._missing_objects:
            return None
        try:
            return self.apto.describe(sobject)
        except AptoApiError as exc:
            if exc.status in (400, 404):
                self._missing_objects.add(sobject)
                return None
            raise

    def field_map(self, sobject: str) -> dict[str, dict[str, Any]]:
        d = self.describe(sobject)
        return {f["name"].lower(): f for f in (d or {}).get("fields", [])}

    def count(self, sobject: str, where: Sequence[str] = (), *, deleted: bool = False) -> int | None:
        clauses = list(where) + (["IsDeleted = true"] if deleted else [])
        soql = f"SELECT COUNT() FROM {sobject}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        key = (sobject, soql, deleted)
        if key not in self._counts:
            try:
                self._counts[key] = self.apto.count(soql, include_deleted=deleted)
            except AptoApiError as exc:
                self.apto.log.warning("Plan: %s: %s", soql, exc.error_code)
                self._counts[key] = None
        return self._counts[key]

    @staticmethod
    def filters(obj: ObjectSpec) -> list[str]:
        raw = obj.stream.get("filters") or ()
        return [f"({c})" for c in ([raw] if isinstance(raw, str) else raw)]

    # ---- namespace and inventory -----------------------------------------------------------------------

    def namespace(self) -> tuple[str, str]:
        """The namespace and how it was found (connection, PackageLicense, or the sobjects list)."""
        apto = self.apto
        if apto.settings.namespace is not None:
            return apto.settings.namespace, "set in the Apto connection (extra.namespace)"
        ns = apto.namespace
        try:
            licensed = sorted({str(r["NamespacePrefix"]) for r in apto.query(
                "SELECT NamespacePrefix FROM PackageLicense") if r.get("NamespacePrefix")})
        except AptoApiError:
            licensed = []
        objects = [s["name"] for s in apto.describe_global().get("sobjects", [])
                   if ns and str(s.get("name", "")).startswith(ns + "__")]
        if licensed:
            others = [p for p in licensed if p != ns]
            how = (f"PackageLicense lists {', '.join(licensed)}; {ns!r} has {len(objects)} object(s) in the org"
                   + (f" ({', '.join(others)}: none used)" if others else ""))
        elif ns:
            how = (f"inferred from the sobjects list ({len(objects)} object(s) named {ns}__*__c); PackageLicense "
                   "not readable")
        else:
            how = "no namespaced objects in the org: fields are read without a prefix"
        return ns, how

    def parent_targets(self, obj: ObjectSpec) -> list[str]:
        """Objects whose ids a ``parent_filter`` stream is read for (by ``target.where`` prefixes)."""
        assert self.pair is not None
        prefixes: Iterable[str] = ()
        cond = obj.target.where.get(str(obj.stream.get("parent_filter")))
        if isinstance(cond, Mapping) and cond.get("prefix"):
            prefixes = cond["prefix"]
        elif obj.attach is not None:
            prefixes = [t[1] for t in obj.attach.targets]
        out = []
        for prefix in prefixes:
            for o in self.pair.by_prefix(str(prefix)):
                if o.source_object not in out:
                    out.append(o.source_object)
        return out

    def inventory(self, obj: ObjectSpec, row: dict[str, Any]) -> list[dict[str, Any]]:
        kind = obj.stream.get("kind")
        row["filters"] = " AND ".join(self.filters(obj))
        unknown: list[dict[str, Any]] = []
        if kind == "soql":
            self._count_soql(obj, row)
            unknown = self._check_stream_fields(obj)
        elif kind == "pipeline_stages":
            row["live"] = self.count("OpportunityStage")
            row["count note"] = "OpportunityStage rows; stages per pipeline in the schema plan"
            unknown = self._check_paths(obj.name, "OpportunityStage",
                                        [f for f in obj.stream_fields() if f != "RecordTypeId"])
        elif kind == "tooling":
            row["count note"] = "Tooling API rows, see Automations"
        return unknown

    def _count_soql(self, obj: ObjectSpec, row: dict[str, Any]) -> None:
        assert self.plan is not None
        sobject, where = obj.source_object, self.filters(obj)
        if self.describe(sobject) is None:
            row["count note"] = f"{sobject} is not in the org"
            self.plan.problem("blocking", "inventory", f"{obj.name}: object {sobject} does not exist in the org")
            return
        if parent := obj.stream.get("parent_filter"):
            targets = self.parent_targets(obj)
            counts = [self.count(sobject, [*where, f"{parent} IN (SELECT Id FROM {t})"]) for t in targets]
            row["live"] = sum(c for c in counts if c is not None) if all(c is not None for c in counts) else None
            row["count note"] = f"linked to {', '.join(targets)} (semi-join per object)"
            return
        row["live"] = self.count(sobject, where)
        if "isdeleted" in self.field_map(sobject):
            row["deleted"] = self.count(sobject, where, deleted=True)
        else:
            row["count note"] = "no IsDeleted on this object: deleted rows not counted"

    def _check_stream_fields(self, obj: ObjectSpec) -> list[dict[str, Any]]:
        paths = list(obj.stream_fields())
        for key in ("primary_key", "replication_key", "parent_filter"):
            if obj.stream.get(key):
                paths.append(str(obj.stream[key]))
        if "replication_key" not in obj.stream:
            paths.append("SystemModstamp")
        out = self._check_paths(obj.name, obj.source_object, paths)
        for name, enrich in obj.enrich.items():
            if isinstance(enrich, Mapping) and enrich.get("object"):
                child = [*(enrich.get("fields") or ()), str(enrich.get("match") or "Id")]
                if enrich.get("order_by"):
                    child.append(str(enrich["order_by"]))
                out += self._check_paths(f"{obj.name} (enrich {name})", str(enrich["object"]), child)
        return out

    def _check_paths(self, label: str, sobject: str, paths: Iterable[str]) -> list[dict[str, Any]]:
        out = []
        for path in dict.fromkeys(paths):
            reason = self._unknown_reason(sobject, path)
            if reason:
                out.append({"object": label, "source object": sobject, "field": path, "why": reason,
                            "severity": "blocking"})
        return out

    def unknown_reason(self, obj: ObjectSpec, path: str) -> str | None:
        return self._unknown_reason(obj.source_object, path)

    def _unknown_reason(self, sobject: str, path: str) -> str | None:
        """Why ``path`` cannot be read on ``sobject`` (``None``: it can): walks relationship names."""
        current = sobject
        parts = path.split(".")
        for i, part in enumerate(parts):
            fields = self.field_map(current)
            if not fields:
                return f"object {current} is not in the org"
            if i == len(parts) - 1:
                return None if part.lower() in fields else f"no field {part} on {current}"
            rel = next((f for f in fields.values() if str(f.get("relationshipName") or "").lower() == part.lower()),
                       None)
            if rel is None:
                return f"no relationship {part} on {current}"
            targets = rel.get("referenceTo") or []
            if not targets:
                return f"relationship {part} on {current} names no object"
            if len(targets) > 1:       # polymorphic (Owner, What): only the common name fields are safe
                return None if parts[i + 1] in ("Id", "Name", "Type") and i + 1 == len(parts) - 1 else (
                    f"{part} is polymorphic ({', '.join(targets)}): {parts[i + 1]} may not exist on all")
            current = targets[0]
        return None

    # ---- custom fields and users -----------------------------------------------------------------------

    def describes(self, objects: Sequence[ObjectSpec]) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for obj in objects:
            if (d := self.describe(obj.source_object)) is not None:
                out[obj.name] = list(d.get("fields", []))
        return out

    def users(self, user_obj: ObjectSpec | None) -> list[dict[str, Any]]:
        wanted = list(user_obj.stream_fields()) if user_obj else ["Id", "Name", "Email", "Username", "IsActive"]
        have = self.field_map("User")
        cols = [f for f in dict.fromkeys(["Id", *wanted, "IsActive"]) if f.lower() in have]
        return [{"id": u["Id"], "name": u.get("Name"), "email": u.get("Email"), "username": u.get("Username"),
                 "active": u.get("IsActive")}
                for u in self.apto.query(f"SELECT {', '.join(cols)} FROM User ORDER BY Id")]

    # ---- owner counts ----------------------------------------------------------------------------------

    def owner_countable(self, obj: ObjectSpec) -> bool:
        return (obj.stream.get("kind") == "soql" and not obj.stream.get("parent_filter")
                and obj.source_object != "User")

    def owner_counts(self, obj: ObjectSpec, path: str, fallback_ids: Sequence[str]
                     ) -> tuple[Counter[str] | None, int | None]:
        where = self.filters(obj)
        counts = self._group_count(obj.source_object, path, where) if self.group_by is not False else None
        if counts is not None:
            return counts, sum(counts.get(i, 0) for i in fallback_ids)
        if not fallback_ids:
            return None, 0
        parts = [self.count(obj.source_object, [*where, f"{path} IN {chunk}"]) for chunk in soql_in_chunks(fallback_ids)]
        return None, (sum(p for p in parts if p is not None) if all(p is not None for p in parts) else None)

    def owner_counts_note(self, counted: bool) -> str:
        if counted:
            return "records per owner from SOQL GROUP BY (live records, stream filters)"
        return ("records per owner not counted: the org answered GROUP BY with MALFORMED_QUERY (the Apto "
                "sandbox does not support aggregates); one COUNT() per object gives the records going to "
                "the fallback user instead")

    def _group_count(self, sobject: str, path: str, where: Sequence[str]) -> Counter[str] | None:
        soql = (f"SELECT {path}, COUNT(Id) n FROM {sobject}" + (f" WHERE {' AND '.join(where)}" if where else "")
                + f" GROUP BY {path}")
        try:
            rows = list(self.apto.query(soql))
        except AptoApiError as exc:
            if exc.error_code in ("MALFORMED_QUERY", "INVALID_TYPE", "INVALID_FIELD") and self.group_by is None:
                self.group_by = False
                if self.plan is not None:
                    self.plan.notes.append(f"SOQL GROUP BY not answered ({exc.error_code}); aggregates skipped")
            return None
        self.group_by = True
        last = path.split(".")[-1]
        out: Counter[str] = Counter()
        for r in rows:
            key = r.get(last) if last in r else get_path(r, path)
            out[str(key)] += int(r.get("n") or r.get("expr0") or 0)
        return out

    # ---- pipelines -------------------------------------------------------------------------------------

    def pipelines(self, team_obj: ObjectSpec, stage_obj: ObjectSpec | None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One team per Opportunity record type; its stages: the record type's ``StageName`` picklist joined
        with ``OpportunityStage`` by ApiName."""
        assert self.plan is not None
        have = self.field_map(team_obj.source_object)
        cols = [f for f in team_obj.stream_fields() if f.lower() in have]
        where = self.filters(team_obj)
        soql = f"SELECT {', '.join(cols)} FROM {team_obj.source_object}" + (
            f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY Id"
        rts = list(self.apto.query(soql))
        teams = [{"pipeline id": rt["Id"], "name": rt.get("Name"), "developer name": rt.get("DeveloperName"),
                  "active": rt.get("IsActive"), "key": team_obj.key(rt)} for rt in rts]
        if stage_obj is None:
            return teams, []
        smap = self.field_map("OpportunityStage")
        scols = [f for f in stage_obj.stream_fields() if f != "RecordTypeId" and f.lower() in smap]
        if "apiname" not in {c.lower() for c in scols}:
            scols.append("ApiName")
        stages = {s["ApiName"]: s for s in self.apto.query(f"SELECT {', '.join(scols)} FROM OpportunityStage")}
        planned: list[dict[str, Any]] = []
        for rt in rts:
            for v in self.apto.stage_picklist(rt["Id"]):
                api = str(v.get("value"))
                st = stages.get(api)
                rec = {"RecordTypeId": rt["Id"], "ApiName": api}
                planned.append({"pipeline": rt.get("Name"), "pipeline id": rt["Id"], "stage": api,
                                "label": (st or {}).get("MasterLabel") or v.get("label"),
                                "sequence": (st or {}).get("SortOrder"), "won": (st or {}).get("IsWon"),
                                "closed": (st or {}).get("IsClosed"),
                                "probability": (st or {}).get("DefaultProbability"),
                                "active": (st or {}).get("IsActive"), "key": stage_obj.key(rec),
                                "in OpportunityStage": st is not None})
                if st is None:
                    self.plan.problem("warning", "schema", f"pipeline {rt.get('Name')}: stage {api!r} is in the "
                                      "record type's picklist but not in OpportunityStage (no label/won flag)")
        unused = sorted(set(stages) - {p["stage"] for p in planned})
        if unused:
            self.plan.notes.append(f"OpportunityStage values in no pipeline (not created): {', '.join(unused)}")
        return teams, planned

    # ---- hierarchy and sample --------------------------------------------------------------------------

    def edges(self, obj: ObjectSpec) -> list[dict[str, Any]] | None:
        h = obj.hierarchy
        if h is None or obj.stream.get("kind") != "soql":
            return None
        where = self.filters(obj)
        soql = (f"SELECT {h.id_field}, {h.parent_field} FROM {obj.source_object}"
                + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {h.id_field}")
        return [{h.id_field: r[h.id_field], h.parent_field: r.get(h.parent_field)} for r in self.apto.query(soql)]

    def names(self, obj: ObjectSpec, ids: Sequence[str]) -> dict[str, str]:
        if not ids or "name" not in self.field_map(obj.source_object):
            return {}
        out = {}
        for chunk in soql_in_chunks(ids):
            for r in self.apto.query(f"SELECT Id, Name FROM {obj.source_object} WHERE Id IN {chunk}"):
                out[str(r["Id"])] = str(r.get("Name"))
        return out

    def sample(self, obj: ObjectSpec) -> Sample | None:
        """``sample_limit`` records of a SOQL object (``ORDER BY Id LIMIT n``), with its custom picklists and
        email fields (from the describe)."""
        if obj.stream.get("kind") != "soql" or obj.stream.get("parent_filter"):
            return None
        if obj.source_object == "User" or self.describe(obj.source_object) is None:
            return None
        fmap = self.field_map(obj.source_object)
        cols = [p for p in dict.fromkeys(["Id", *obj.stream_fields()])
                if self._unknown_reason(obj.source_object, p) is None]
        picklists = [f for f in fmap.values() if f.get("custom") and f.get("type") in PICKLIST_TYPES]
        emails = [f for f in fmap.values() if f.get("type") == "email"]
        for f in (*picklists, *emails):
            if f["name"].lower() not in {c.lower() for c in cols}:
                cols.append(f["name"])
        # a record object's every field (the mapping proposer profiles them); not the profile's columns
        schema = [f for f in fmap.values() if f.get("type") not in _NOT_SAMPLED] if obj.custom_fields else []
        have = {c.lower() for c in cols}
        select = cols + [f["name"] for f in schema if f["name"].lower() not in have]
        where = self.filters(obj)
        soql = (f"SELECT {', '.join(select)} FROM {obj.source_object}"
                + (f" WHERE {' AND '.join(where)}" if where else "")
                + f" ORDER BY Id LIMIT {int(self.sample_limit)}")
        records = list(self.apto.query(soql))
        self.samples[obj.name] = records
        return Sample(records=records, columns=cols, picklists=picklists, emails=[f["name"] for f in emails],
                      schema=schema)

    # ---- lost reasons ----------------------------------------------------------------------------------

    def picklist(self, source_object: str, field_name: str) -> dict[str, Any] | None:
        return self.field_map(source_object).get(field_name.lower())

    def seen_values(self, source_object: str, path: str) -> dict[str, int]:
        """Values of a field: by GROUP BY when the org answers it, else from the sample (counts of the sample)."""
        assert self.pair is not None
        if self.group_by is not False:
            counts = self._group_count(source_object, path, [])
            if counts is not None:
                return {k: v for k, v in counts.items() if k not in ("None", "")}
        out: Counter[str] = Counter()
        for name, records in self.samples.items():
            if self.pair.objects[name].source_object == source_object:
                out.update(str(r[path]) for r in records if r.get(path) not in (None, ""))
                break
        return dict(out)

    # ---- automations -----------------------------------------------------------------------------------

    def automations(self, obj: ObjectSpec, models: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Tooling API rows of WorkflowRule, ValidationRule, FlowDefinitionView and ApexTrigger (every field
        the Tooling describe lists but compound metadata) shaped by :func:`automation_entry`."""
        assert self.plan is not None
        counts: dict[str, int] = {}
        entries: list[dict[str, Any]] = []
        for kind in obj.stream.get("objects") or AUTOMATION_OBJECTS:
            try:
                described = self.apto.get_json(f"tooling/sobjects/{kind}/describe")
                cols = [f["name"] for f in described.get("fields", []) if f["name"] not in _TOOLING_SKIP]
                rows = list(self.apto.tooling_query(f"SELECT {', '.join(cols)} FROM {kind}"))
            except AptoApiError as exc:
                self.plan.problem("warning", "automations", f"{kind}: not readable through the Tooling API "
                                                            f"({exc.error_code}); not exported")
                continue
            counts[kind] = len(rows)
            entries.extend(automation_entry(kind, r, models) for r in rows)
        return entries, counts


def _rebuild_hint(kind: str, row: Mapping[str, Any]) -> str:
    managed = bool(row.get("NamespacePrefix"))
    prefix = "managed package logic (code hidden or vendor-owned): check it is still needed; " if managed else ""
    if kind == "WorkflowRule":
        return prefix + ("base.automation on create/update of the model, with a filter domain for the rule's "
                         "criteria and server actions for its field updates / email alerts")
    if kind == "ValidationRule":
        return prefix + ("constraint: a Python @api.constrains in a small module, or a base.automation "
                         "'on save' whose server action raises a UserError with the rule's message")
    if kind == "FlowDefinitionView":
        trigger = str(row.get("TriggerType") or "")
        if trigger in ("RecordAfterSave", "RecordBeforeSave", "RecordBeforeDelete"):
            return prefix + "base.automation on create/update of the model with a server action (the flow's steps)"
        if trigger == "Scheduled":
            return prefix + "scheduled action (ir.cron) or a time-based base.automation"
        if trigger.startswith("PlatformEvent"):
            return prefix + "server action called from the integration that raises the event"
        return prefix + "server action (button or contextual action) or a wizard for a screen flow"
    if kind == "ApexTrigger":
        when = [w for w, k in (("create", "UsageBeforeInsert"), ("create", "UsageAfterInsert"),
                               ("write", "UsageBeforeUpdate"), ("write", "UsageAfterUpdate"),
                               ("unlink", "UsageBeforeDelete"), ("unlink", "UsageAfterDelete")) if row.get(k)]
        on = "/".join(dict.fromkeys(when)) or "save"
        return prefix + (f"base.automation on {on} with a Python-code server action, or an override of "
                         f"{on} in a small module (constraint if it only validates)")
    return prefix + "server action"


def automation_entry(kind: str, row: Mapping[str, Any], models: Mapping[str, str] | None = None
                     ) -> dict[str, Any]:
    """Shape one Tooling API row as a rebuild-reference entry.

    ``type``, ``name``, ``object`` (Salesforce), ``odoo_model`` (from ``models``: source object → model),
    ``active``, ``trigger``, ``condition``, ``formula``, ``actions``, ``description``, ``namespace``,
    ``rebuild_as`` (a short hint) and ``source`` (every field the row had).
    """
    models = models or {}
    get = row.get
    entry: dict[str, Any] = {"type": kind, "id": get("Id") or get("DurableId"), "name": None, "object": None,
                             "active": None, "trigger": None, "condition": None, "formula": None, "actions": None,
                             "description": get("Description"), "namespace": get("NamespacePrefix") or None,
                             "managed": get("ManageableState")}
    if kind == "WorkflowRule":
        entry.update(name=get("Name"), object=get("TableEnumOrId"), active=get("Active"),
                     trigger=get("TriggerType"), condition=get("Formula") or get("BooleanFilter"),
                     formula=get("Formula"), actions=get("Actions"))
    elif kind == "ValidationRule":
        msg = get("ErrorMessage")
        entry.update(name=get("ValidationName"), object=get("EntityDefinitionId"), active=get("Active"),
                     trigger="on save (insert and update)", condition=get("ErrorConditionFormula"),
                     formula=get("ErrorConditionFormula"),
                     actions=f"block the save: {msg!r} on {get('ErrorDisplayField') or 'the record'}" if msg else None)
    elif kind == "FlowDefinitionView":
        entry.update(name=get("Label") or get("ApiName"), object=get("TriggerObjectOrEventId"),
                     active=get("IsActive"), trigger=get("TriggerType") or get("ProcessType"),
                     actions=f"{get('ProcessType')} flow {get('ApiName')}" if get("ApiName") else None)
        entry["api_name"] = get("ApiName")
    elif kind == "ApexTrigger":
        status = get("Status")
        events = [e for e, k in (("before insert", "UsageBeforeInsert"), ("after insert", "UsageAfterInsert"),
                                 ("before update", "UsageBeforeUpdate"), ("after update", "UsageAfterUpdate"),
                                 ("before delete", "UsageBeforeDelete"), ("after delete", "UsageAfterDelete"),
                                 ("after undelete", "UsageAfterUndelete")) if get(k)]
        body = get("Body")
        entry.update(name=get("Name"), object=get("TableEnumOrId"),
                     active=(status == "Active") if status is not None else None,
                     trigger=", ".join(events) or None,
                     actions="Apex code (body hidden by the package)" if body == "(hidden)" else "Apex code",
                     formula=body if body and body != "(hidden)" else None)
    else:
        entry.update(name=get("Name") or get("DeveloperName"), active=get("Active") or get("IsActive"))
    entry["odoo_model"] = models.get(str(entry["object"])) if entry["object"] else None
    entry["rebuild_as"] = _rebuild_hint(kind, row)
    entry["source"] = {k: v for k, v in row.items() if k != "attributes"}
    return entry
