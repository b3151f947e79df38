"""The plan step: audit Apto and Odoo before any migration, with a bounded number of API calls.

``build_plan(apto, odoo, pair)`` reads, never writes, and returns a :class:`Plan` of plain data:

1. **inventory**: the namespace (and how it was found); per mapped object its SOQL counts (live, and
   deleted through ``queryAll`` when the object has ``IsDeleted``), the fields its stream reads that
   the org's describe does not know (the migration would fail on them), the custom fields and the
   ``x_`` field each becomes; on the Odoo side the target model, whether ``x_migration_key`` exists
   and how many records already carry a key of this pair and object;
2. **owners**: every Apto user → the Odoo user matched by email (case-insensitive) or the fallback
   user (pair ``settings.fallback_user``, overridden by the Odoo connection's ``extra.fallback_user``);
   a missing fallback user is a blocking problem; records per owner where SOQL ``GROUP BY`` answers,
   and in any case how many records of each object go to the fallback user (``COUNT()`` per object);
3. **schema**: the fields to create (``x_migration_key`` per target model, the pair's ``x_fields``, the
   custom fields), one ``crm.team`` per Opportunity record type, its stages (the record type's
   ``StageName`` picklist joined with ``OpportunityStage``), the lost reasons to create;
4. **bad data**: company hierarchy cycles and self-parents (``Id, ParentId`` of every Account and
   :func:`~crm_migration.mapping.mapper.break_cycles`), and a profile of a sample (``sample_limit``
   records per object): invalid emails, custom picklist values outside their picklist, deals whose
   stage is not one of their record type's stages, required values missing;
5. **automations**: Tooling API rows of WorkflowRule, ValidationRule, FlowDefinitionView and ApexTrigger
   shaped as a rebuild reference (:func:`automation_entry`); nothing is migrated.

Whole tables are read only for ``User`` and the hierarchy edges (``Id, ParentId``); everything else is
``COUNT()``, ``GROUP BY``, describes, small metadata objects (RecordType, OpportunityStage, the Tooling
objects) or a sample with ``LIMIT``. Every Apto request is recorded in ``Plan.apto_requests`` (path and
SOQL, never a header) and the Odoo calls in ``Plan.odoo_calls``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from crm_migration.engine.schema import target_field_problems, target_major
from crm_migration.hooks.apto import AptoApiError, soql_in_chunks
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooError
from crm_migration.mapping import transforms as T
from crm_migration.mapping.mapper import break_cycles, resolve_owners, sf_prefix
from crm_migration.mapping.spec import MISSING, ObjectSpec, PairSpec, SpecError

if TYPE_CHECKING:
    from crm_migration.hooks.apto import AptoHook
    from crm_migration.hooks.odoo import OdooHook

__all__ = [
    "AUTOMATION_OBJECTS", "Plan", "automation_entry", "automation_reference", "build_plan", "invalid_emails",
    "missing_required", "picklist_outside", "stages_outside", "value_profile",
]

log = logging.getLogger(__name__)

AUTOMATION_OBJECTS = ("WorkflowRule", "ValidationRule", "FlowDefinitionView", "ApexTrigger")
#: Tooling fields never selected: compound metadata is only readable one row at a time.
_TOOLING_SKIP = frozenset({"Metadata", "FullName"})
_NOT_MIGRATED_NOTE = ("A rebuild reference: nothing here is migrated. Each entry says what the automation does "
                      "in Salesforce and how it may be rebuilt in Odoo.")
_PICKLIST_TYPES = ("picklist", "multipicklist")
_SAMPLE_SKIP_KINDS = ("tooling", "pipeline_stages")


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What the plan step found; plain data only (JSON-able with :meth:`to_dict`).

    Row lists hold flat dicts, one per table row of the report. ``problems`` are the lines a person
    acts on: ``{"severity": "blocking"|"warning"|"info", "topic", "message"}``.
    """

    pair: str
    source: str
    namespace: str
    namespace_how: str
    fallback_user: str
    fallback_user_from: str
    fallback_user_id: int | None
    started_at: str
    seconds: float = 0.0
    sample_limit: int = 2000
    objects: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: list[dict[str, Any]] = field(default_factory=list)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    owner_counts: list[dict[str, Any]] = field(default_factory=list)
    owner_counts_note: str = ""
    fallback_records: list[dict[str, Any]] = field(default_factory=list)
    fields_to_create: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    lost_reasons: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    dangling_parents: list[dict[str, Any]] = field(default_factory=list)
    bad_data: list[dict[str, Any]] = field(default_factory=list)
    profile: list[dict[str, Any]] = field(default_factory=list)
    automations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    apto_requests: list[dict[str, Any]] = field(default_factory=list)
    odoo_calls: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem(self, severity: str, topic: str, message: str) -> None:
        self.problems.append({"severity": severity, "topic": topic, "message": message})

    @property
    def apto_calls(self) -> int:
        """API requests sent to the org (the token request included)."""
        return len(self.apto_requests)

    @property
    def odoo_call_count(self) -> int:
        return sum(self.odoo_calls.values())


# --------------------------------------------------------------------------------------------------
# Pure helpers (unit-tested): value profiles and automation entries
# --------------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    """Empty as the mapping sees it (None, "", blanks, empty list), NaN included (pandas' missing value)."""
    return T._empty(value) or (isinstance(value, float) and value != value)


def value_profile(obj: str, records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Per column of a sample: rows, filled, fill %, distinct values, the most frequent value and its count."""
    if not records:
        return []
    frame = pd.DataFrame([{c: _flat(r.get(c)) for c in columns} for r in records], columns=list(columns))
    out = []
    for col in columns:
        series = frame[col]
        filled = series[~series.map(_blank)]
        counts = filled.astype(str).value_counts()
        out.append({"object": obj, "field": col, "sampled": len(series), "filled": len(filled),
                    "fill %": round(100.0 * len(filled) / len(series), 1) if len(series) else 0.0,
                    "distinct": int(counts.size),
                    "top value": _short(counts.index[0]) if counts.size else "",
                    "top count": int(counts.iloc[0]) if counts.size else 0})
    return out


def _flat(value: Any) -> Any:
    return None if isinstance(value, Mapping) else value


def _short(value: Any, n: int = 60) -> str:
    text = str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def invalid_emails(obj: str, records: Sequence[Mapping[str, Any]], fields: Mapping[str, str],
                   ) -> list[dict[str, Any]]:
    """Sampled values the mapping's ``normalize_email`` refuses.

    :param fields: source field → what happens to such a value in the migration (``dead letter`` ...).
    """
    out = []
    for path, consequence in fields.items():
        frame = pd.DataFrame({"Id": [r.get("Id") for r in records], "value": [_get(r, path) for r in records]})
        frame = frame[~frame["value"].map(_blank)]
        bad = frame[~frame["value"].map(_email_ok)]
        for value, group in bad.groupby("value", sort=True):
            out.append({"object": obj, "check": "invalid email", "field": path, "value": _short(value),
                        "records in sample": len(group), "example id": group["Id"].iloc[0],
                        "consequence": consequence})
    return out


def _email_ok(value: Any) -> bool:
    try:
        return not isinstance(T.normalize_email(value), T.Flagged)
    except (T.TransformError, TypeError, ValueError):
        return False


def picklist_outside(obj: str, records: Sequence[Mapping[str, Any]], describe_field: Mapping[str, Any],
                     ) -> list[dict[str, Any]]:
    """Sampled values of a (multi)picklist field that its describe ``picklistValues`` do not list
    (inactive values are reported as such)."""
    name = str(describe_field["name"])
    values = describe_field.get("picklistValues") or ()
    active = {str(v.get("value")) for v in values if v.get("active", True)}
    inactive = {str(v.get("value")) for v in values if not v.get("active", True)}
    multi = describe_field.get("type") == "multipicklist"
    frame = pd.DataFrame({"Id": [r.get("Id") for r in records], "value": [r.get(name) for r in records]})
    frame = frame[~frame["value"].map(_blank)]
    if frame.empty:
        return []
    if multi:
        frame = frame.assign(value=frame["value"].map(lambda v: [p.strip() for p in str(v).split(";") if p.strip()]))
        frame = frame.explode("value").dropna(subset=["value"])
    frame = frame.assign(value=frame["value"].astype(str))
    bad = frame[~frame["value"].isin(active)]
    out = []
    for value, group in bad.groupby("value", sort=True):
        status = "inactive picklist value" if value in inactive else "value outside the picklist"
        out.append({"object": obj, "check": status, "field": name, "value": _short(value),
                    "records in sample": int(group["Id"].nunique()), "example id": group["Id"].iloc[0],
                    "consequence": "kept as text in its x_ field (picklists become char)"})
    return out


def stages_outside(obj: str, records: Sequence[Mapping[str, Any]], stages: Mapping[str, Sequence[str]], *,
                   record_type_field: str = "RecordTypeId", stage_field: str = "StageName",
                   names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Sampled deals whose stage is not one of their record type's stages (``stages``: record type id →
    allowed ``StageName`` values), or whose record type is none of the planned pipelines."""
    names = names or {}
    frame = pd.DataFrame({"Id": [r.get("Id") for r in records], "rt": [r.get(record_type_field) for r in records],
                          "stage": [r.get(stage_field) for r in records]})
    if frame.empty:
        return []
    known = frame["rt"].isin(list(stages))
    allowed = pd.Series([s in set(stages.get(rt, ())) for rt, s in zip(frame["rt"], frame["stage"], strict=True)],
                        index=frame.index, dtype=bool)
    out = []
    for (rt, stage), group in frame[~known].groupby(["rt", "stage"], dropna=False, sort=True):
        out.append({"object": obj, "check": "record type is not a planned pipeline", "field": record_type_field,
                    "value": f"{rt} / {stage}", "records in sample": len(group), "example id": group["Id"].iloc[0],
                    "consequence": "dead letter (team_id/stage_id cannot resolve)"})
    for (rt, stage), group in frame[known & ~allowed].groupby(["rt", "stage"], dropna=False, sort=True):
        out.append({"object": obj, "check": "stage not in its pipeline", "field": stage_field,
                    "value": f"{stage} (pipeline {names.get(rt, rt)})", "records in sample": len(group),
                    "example id": group["Id"].iloc[0],
                    "consequence": "lands in its own pipeline (its stage of that name, else its first stage), "
                                   "flagged (field stage_id)"})
    return out


def missing_required(spec: ObjectSpec, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sampled records whose ``required: true`` fields have every source empty (and no default), and
    records with a required ``attach_to`` whose ids name none of the allowed objects."""
    out = []
    for fspec in spec.fields.values():
        if not fspec.required or not fspec.sources or fspec.default is not MISSING:
            continue
        if any(p.startswith(("$", "_")) for p in fspec.sources):
            continue
        empty = [r for r in records if _maps_to_empty(fspec, r)]
        if empty:
            out.append({"object": spec.name, "check": "required value missing", "field": fspec.name,
                        "value": f"empty {' / '.join(fspec.sources)}", "records in sample": len(empty),
                        "example id": empty[0].get("Id"), "consequence": "dead letter"})
    att = spec.attach
    if att is not None and att.required and att.targets:
        prefixes = {t[1] for t in att.targets}
        orphans = [r for r in records if not any(sf_prefix(_get(r, p)) in prefixes for p in att.sources)]
        if orphans:
            out.append({"object": spec.name, "check": "no record to attach to", "field": att.id_field,
                        "value": f"{' / '.join(att.sources)} name none of {', '.join(att.objects)}",
                        "records in sample": len(orphans), "example id": orphans[0].get("Id"),
                        "consequence": "dead letter"})
    return out


def _maps_to_empty(fspec: Any, record: Mapping[str, Any]) -> bool:
    """Whether the field's sources, through its transforms, give nothing (before ref/lookup resolution).

    A transform that supplies a default (``selection`` with ``default``) fills the value; a transform that
    refuses the value is another check's business (not "missing"); a composite ref is empty when a part is.
    """
    values = [_get(record, p) for p in fspec.sources]
    if not fspec.fn:
        return any(_blank(v) for v in values) if fspec.many and fspec.ref else all(_blank(v) for v in values)
    out: Any = None
    try:
        for i, step in enumerate(fspec.fn):
            out = T.apply(step.name, values if i == 0 else [out], dict(step.args))
    except (T.TransformError, TypeError, ValueError):
        return False
    return _blank(out)


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


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


def automation_reference(plan: Plan) -> dict[str, Any]:
    """The JSON document written as ``automation_reference.json``."""
    by_type = Counter(e["type"] for e in plan.automations)
    return {"pair": plan.pair, "source": plan.source, "namespace": plan.namespace, "generated_at": plan.started_at,
            "note": _NOT_MIGRATED_NOTE, "counts": dict(sorted(by_type.items())), "automations": plan.automations}


# --------------------------------------------------------------------------------------------------
# Request recording (what the plan cost, and proof of what it read)
# --------------------------------------------------------------------------------------------------


class _Recorder:
    """Record every request the Apto hook's client sends: method, path and SOQL (no header, no body)."""

    def __init__(self, apto: AptoHook) -> None:
        self.apto = apto
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Any) -> None:
        url = request.url
        row: dict[str, Any] = {"method": request.method, "path": url.path}
        if q := url.params.get("q"):
            row["soql"] = q
        self.requests.append(row)

    def __enter__(self) -> _Recorder:
        self.apto.client.event_hooks["request"].append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        hooks = self.apto.client.event_hooks["request"]
        if self in hooks:
            hooks.remove(self)


# --------------------------------------------------------------------------------------------------
# Building the plan
# --------------------------------------------------------------------------------------------------


class _Planner:
    def __init__(self, apto: AptoHook, odoo: OdooHook, pair: PairSpec, plan: Plan, *, sample_limit: int,
                 logger: logging.Logger) -> None:
        self.apto, self.odoo, self.pair, self.plan = apto, odoo, pair, plan
        self.sample_limit, self.log = sample_limit, logger
        self._odoo_fields: dict[str, dict[str, Any] | None] = {}
        self._counts: dict[tuple[str, str, bool], int | None] = {}
        self._missing_objects: set[str] = set()
        self.group_by: bool | None = None         # None: not tried yet
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.stages_by_rt: dict[str, list[str]] = {}
        self.rt_names: dict[str, str] = {}

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

    def odoo_fields(self, model: str) -> dict[str, Any] | None:
        if model not in self._odoo_fields:
            try:
                self._odoo_fields[model] = self.odoo.fields_get(model, ("type", "string", "relation"))
            except OdooError as exc:
                self.log.warning("Plan: Odoo model %s not readable (%s)", model, exc.message)
                self._odoo_fields[model] = None
        return self._odoo_fields[model]

    def count(self, sobject: str, where: Sequence[str] = (), *, deleted: bool = False) -> int | None:
        clauses = list(where) + (["IsDeleted = true"] if deleted else [])
        soql = f"SELECT COUNT() FROM {sobject}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        key = (sobject, soql, deleted)
        if key not in self._counts:
            try:
                self._counts[key] = self.apto.count(soql, include_deleted=deleted)
            except AptoApiError as exc:
                self.log.warning("Plan: %s: %s", soql, exc.error_code)
                self._counts[key] = None
        return self._counts[key]

    def filters(self, obj: ObjectSpec) -> list[str]:
        raw = obj.stream.get("filters") or ()
        return [f"({c})" for c in ([raw] if isinstance(raw, str) else raw)]

    # ---- 1. inventory ----------------------------------------------------------------------------------

    def parent_targets(self, obj: ObjectSpec) -> list[str]:
        """Objects whose ids a ``parent_filter`` stream is read for (by ``target.where`` prefixes)."""
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

    def inventory(self) -> None:
        for obj in self.pair.objects.values():
            kind = obj.stream.get("kind")
            row: dict[str, Any] = {"object": obj.name, "source object": obj.source_object, "kind": kind,
                                   "filters": " AND ".join(self.filters(obj)), "live": None, "deleted": None,
                                   "count note": "", "unknown fields": 0, "custom fields": 0,
                                   "odoo model": obj.model or f"(none: {obj.target.action}"
                                   + (f", export {obj.target.export})" if obj.target.export else ")"),
                                   "key field in Odoo": None, "already keyed in Odoo": None}
            if kind == "soql":
                self._count_soql(obj, row)
                row["unknown fields"] = self._check_stream_fields(obj)
            elif kind == "pipeline_stages":
                row["live"] = self.count("OpportunityStage")
                row["count note"] = "OpportunityStage rows; stages per pipeline in the schema plan"
                row["unknown fields"] = self._check_paths(obj.name, "OpportunityStage",
                                                          [f for f in obj.stream_fields() if f != "RecordTypeId"])
            elif kind == "tooling":
                row["count note"] = "Tooling API rows, see Automations"
            self._odoo_side(obj, row)
            self.plan.objects.append(row)

    def _count_soql(self, obj: ObjectSpec, row: dict[str, Any]) -> None:
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

    def _check_stream_fields(self, obj: ObjectSpec) -> int:
        paths = list(obj.stream_fields())
        for key in ("primary_key", "replication_key", "parent_filter"):
            if obj.stream.get(key):
                paths.append(str(obj.stream[key]))
        if "replication_key" not in obj.stream:
            paths.append("SystemModstamp")
        n = self._check_paths(obj.name, obj.source_object, paths)
        for name, enrich in obj.enrich.items():
            if isinstance(enrich, Mapping) and enrich.get("object"):
                child = [*(enrich.get("fields") or ()), str(enrich.get("match") or "Id")]
                if enrich.get("order_by"):
                    child.append(str(enrich["order_by"]))
                n += self._check_paths(f"{obj.name} (enrich {name})", str(enrich["object"]), child)
        return n

    def _check_paths(self, label: str, sobject: str, paths: Iterable[str]) -> int:
        found = 0
        for path in dict.fromkeys(paths):
            reason = self._unknown_reason(sobject, path)
            if reason:
                found += 1
                self.plan.unknown_fields.append({"object": label, "source object": sobject, "field": path,
                                                 "why": reason})
        return found

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

    def _odoo_side(self, obj: ObjectSpec, row: dict[str, Any]) -> None:
        if not obj.model or obj.target.action != "load":
            return
        fields = self.odoo_fields(obj.model)
        if fields is None:
            row["key field in Odoo"] = "model not installed"
            self.plan.problem("blocking", "odoo", f"{obj.name}: Odoo model {obj.model} is not installed")
            return
        has_key = MIGRATION_KEY in fields
        row["key field in Odoo"] = "yes" if has_key else "no (to create)"
        if has_key:
            pattern = f"{self.pair.source}:{obj.key_object}:%"
            row["already keyed in Odoo"] = int(self.odoo.call(obj.model, "search_count",
                                                              [[(MIGRATION_KEY, "=like", pattern)]],
                                                              context={"active_test": False}))
        else:
            row["already keyed in Odoo"] = 0

    # ---- custom fields ---------------------------------------------------------------------------------

    def custom_fields(self) -> dict[str, list[Any]]:
        describes = {}
        for name, obj in self.pair.objects.items():
            if obj.custom_fields and (d := self.describe(obj.source_object)) is not None:
                describes[name] = d.get("fields", [])
        try:
            plans = self.pair.plan_custom_fields(describes)
        except SpecError as exc:        # e.g. two custom fields landing on one x_ name with different types
            self.plan.problem("blocking", "custom fields", f"custom fields cannot be planned: {exc}")
            plans = {}
        for name, fields in describes.items():
            planned = {cf.source_field: cf for cf in plans.get(name, [])}
            read = {f.lower() for f in self.pair.objects[name].stream_fields()}
            count = 0
            for f in fields:
                if not f.get("custom"):
                    continue
                count += 1
                cf = planned.get(f["name"])
                status = ("x_ field planned" if cf else "mapped explicitly by the pair" if f["name"].lower() in read
                          else "skipped (custom_fields.overrides / skip)")
                self.plan.custom_fields.append({
                    "object": name, "source field": f["name"], "sf type": f.get("type"), "label": f.get("label"),
                    "picklist values": len(f.get("picklistValues") or ()) if f.get("type") in _PICKLIST_TYPES
                    else None,
                    "referenceTo": ", ".join(f.get("referenceTo") or ()) or None,
                    "x_ field": cf.name if cf else None, "odoo model": cf.model if cf else None,
                    "x_ type": cf.ttype if cf else None, "relation": cf.relation if cf else None, "status": status})
            for row in self.plan.objects:
                if row["object"] == name:
                    row["custom fields"] = count
        return plans

    # ---- 2. owners -------------------------------------------------------------------------------------

    def fallback_login(self) -> tuple[str, str]:
        try:
            extra = self.odoo.get_connection(self.odoo.odoo_conn_id).extra_dejson or {}
        except Exception:  # noqa: BLE001 - no connection: the pair setting stands
            extra = {}
        if extra.get("fallback_user"):
            return str(extra["fallback_user"]), "Odoo connection extra.fallback_user"
        return self.pair.settings.fallback_user, "pair settings.fallback_user"

    def owners(self) -> None:
        user_obj = next((o for o in self.pair.objects.values() if o.source_object == "User"), None)
        wanted = list(user_obj.stream_fields()) if user_obj else ["Id", "Name", "Email", "Username", "IsActive"]
        have = self.field_map("User")
        cols = [f for f in dict.fromkeys(["Id", *wanted, "IsActive"]) if f.lower() in have]
        users = list(self.apto.query(f"SELECT {', '.join(cols)} FROM User ORDER BY Id"))
        odoo_users = list(self.odoo.search_read("res.users", [], ["login", "email", "active", "name", "partner_id"],
                                                context={"active_test": False}))
        login = self.plan.fallback_user
        fallback = next((u for u in odoo_users if u.get("login") == login), None)
        sentinel = -1
        if fallback is None:
            self.plan.problem("blocking", "owners", f"the fallback user {login!r} ({self.plan.fallback_user_from}) "
                                                    "does not exist in Odoo: create it or configure another login")
            pool = [*odoo_users, {"id": sentinel, "login": login, "email": None, "active": False}]
        else:
            self.plan.fallback_user_id = int(fallback["id"])
            if not fallback.get("active", True):
                self.plan.problem("warning", "owners", f"the fallback user {login!r} is archived in Odoo")
            pool = odoo_users
        matches = resolve_owners(users, pool, fallback_login=login)
        by_id = {int(u["id"]): u for u in odoo_users}
        for u in users:
            m = matches[str(u["Id"])]
            matched = m["matched"] and m["user_id"] != sentinel
            target = by_id.get(m["user_id"])
            if matched or fallback is not None:
                reason = m["reason"]
            elif m["matched"]:         # the email equals the (missing) fallback login: no user either
                reason = f"email matches only the fallback login {login}, which DOES NOT EXIST in Odoo"
            else:
                reason = m["reason"].split(":")[0] + f": fallback user {login} DOES NOT EXIST in Odoo"
            self.plan.owners.append({
                "apto user": u["Id"], "name": u.get("Name"), "email": u.get("Email"),
                "username": u.get("Username"), "active in Apto": u.get("IsActive"), "matched": matched,
                "odoo user id": target["id"] if target else None, "odoo login": target.get("login") if target else None,
                "odoo user active": target.get("active") if target else None, "reason": reason})
        if fallback is not None:
            archived = [o for o in self.plan.owners if o["matched"] and o["odoo user active"] is False]
            if archived:
                self.plan.problem("warning", "owners", f"{len(archived)} Apto owner(s) match an archived Odoo user: "
                                  + ", ".join(str(o["name"]) for o in archived))

    def owner_objects(self) -> list[tuple[ObjectSpec, str]]:
        """``(object, owner path)`` for every SOQL object with a field looked up in the owner tables."""
        owner_lookups = {n for n, lk in self.pair.lookups.items() if lk.model == "res.users"}
        out: list[tuple[ObjectSpec, str]] = []
        for obj in self.pair.objects.values():
            if obj.stream.get("kind") != "soql" or obj.stream.get("parent_filter") or obj.source_object == "User":
                continue
            for fspec in obj.fields.values():
                if fspec.lookup in owner_lookups and len(fspec.sources) == 1:
                    if (obj, fspec.sources[0]) not in out and self._unknown_reason(obj.source_object,
                                                                                    fspec.sources[0]) is None:
                        out.append((obj, fspec.sources[0]))
        return out

    def owner_counts(self) -> None:
        fallback_ids = [o["apto user"] for o in self.plan.owners if not o["matched"]]
        names = {o["apto user"]: o["name"] for o in self.plan.owners}
        per_owner: dict[tuple[str, str], Counter[str]] = {}
        for obj, path in self.owner_objects():
            where = self.filters(obj)
            counts = self._group_count(obj.source_object, path, where) if self.group_by is not False else None
            if counts is not None:
                per_owner[(obj.name, path)] = counts
                n = sum(counts.get(i, 0) for i in fallback_ids)
            elif fallback_ids:
                parts = [self.count(obj.source_object, [*where, f"{path} IN {chunk}"])
                         for chunk in soql_in_chunks(fallback_ids)]
                n = sum(p for p in parts if p is not None) if all(p is not None for p in parts) else None
            else:
                n = 0
            self.plan.fallback_records.append({"object": obj.name, "owner field": path,
                                               "records going to the fallback user": n})
        if per_owner:
            self.plan.owner_counts_note = "records per owner from SOQL GROUP BY (live records, stream filters)"
            for oid in [o["apto user"] for o in self.plan.owners]:
                row: dict[str, Any] = {"apto user": oid, "name": names.get(oid)}
                for (name, path), counts in per_owner.items():
                    row[f"{name}.{path}"] = counts.get(oid, 0)
                self.plan.owner_counts.append(row)
            for row in self.plan.owners:
                row["records owned"] = sum(v for k, v in next(
                    (r for r in self.plan.owner_counts if r["apto user"] == row["apto user"]), {}).items()
                    if k not in ("apto user", "name"))
        else:
            self.plan.owner_counts_note = (
                "records per owner not counted: the org answered GROUP BY with MALFORMED_QUERY (the Apto "
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
                self.plan.notes.append(f"SOQL GROUP BY not answered ({exc.error_code}); aggregates skipped")
            return None
        self.group_by = True
        last = path.split(".")[-1]
        out: Counter[str] = Counter()
        for r in rows:
            key = r.get(last) if last in r else _get(r, path)
            out[str(key)] += int(r.get("n") or r.get("expr0") or 0)
        return out

    # ---- 3. schema -------------------------------------------------------------------------------------

    def schema(self, custom_plans: Mapping[str, list[Any]]) -> None:
        for model in self.pair.keyed_models():
            self._plan_field(model, MIGRATION_KEY, "char", "Migration key", None, "migration key (indexed)")
        for model, fields in self.pair.x_fields.items():
            for name, spec in fields.items():
                self._plan_field(model, name, str(spec["ttype"]), str(spec.get("label") or name),
                                 spec.get("relation"), "pair x_fields")
        for obj_name, plan in custom_plans.items():
            for cf in plan:
                self._plan_field(cf.model, cf.name, cf.ttype, cf.label, cf.relation,
                                 f"custom field {obj_name}.{cf.source_field}")
        self._teams_and_stages()

    def target_fields(self) -> None:
        """Every field the mapping writes, checked against the target's own ``fields_get``: a field the target
        lacks (or of a type that cannot hold the value) is blocking, with a remedy."""
        for p in target_field_problems(self.odoo, self.pair):
            self.plan.problem(p["severity"], "target schema",
                              f"{p['object']} -> {p['model']}.{p['field']}: {p['problem']}. Remedy: {p['remedy']}")

    def _plan_field(self, model: str, name: str, ttype: str, label: str, relation: str | None, why: str) -> None:
        fields = self.odoo_fields(model)
        existing = (fields or {}).get(name)
        if fields is None:
            action = "model not installed"
        elif existing is None:
            action = "create"
        elif existing.get("type") != ttype or (relation and existing.get("relation") != relation):
            action = f"CONFLICT: exists as {existing.get('type')}{' ' + existing['relation'] if existing.get('relation') else ''}"
            self.plan.problem("blocking", "schema", f"{model}.{name} exists in Odoo as {existing.get('type')}, the plan "
                                                    f"needs {ttype}: rename it or add an override")
        else:
            action = "exists"
        self.plan.fields_to_create.append({"odoo model": model, "field": name, "type": ttype, "relation": relation,
                                           "label": label, "why": why, "action": action})

    def _find_keys(self, model: str, keys: Sequence[str]) -> dict[str, int]:
        fields = self.odoo_fields(model)
        if not keys or fields is None or MIGRATION_KEY not in fields:
            return {}
        return self.odoo.find_by_keys(model, keys)

    def _teams_and_stages(self) -> None:
        team_obj = next((o for o in self.pair.loadable() if o.model == "crm.team"), None)
        stage_obj = next((o for o in self.pair.objects.values() if o.stream.get("kind") == "pipeline_stages"), None)
        if team_obj is None:
            return
        have = self.field_map(team_obj.source_object)
        cols = [f for f in team_obj.stream_fields() if f.lower() in have]
        where = self.filters(team_obj)
        soql = f"SELECT {', '.join(cols)} FROM {team_obj.source_object}" + (
            f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY Id"
        rts = list(self.apto.query(soql))
        keys = {rt["Id"]: team_obj.key(rt) for rt in rts}
        found = self._find_keys("crm.team", list(keys.values()))
        for rt in rts:
            self.rt_names[rt["Id"]] = str(rt.get("Name"))
            self.plan.teams.append({"record type": rt["Id"], "name": rt.get("Name"),
                                    "developer name": rt.get("DeveloperName"), "active": rt.get("IsActive"),
                                    "key": keys[rt["Id"]], "odoo team id": found.get(keys[rt["Id"]]),
                                    "action": "exists (keyed)" if keys[rt["Id"]] in found else "create"})
        if stage_obj is None:
            return
        smap = self.field_map("OpportunityStage")
        scols = [f for f in stage_obj.stream_fields() if f != "RecordTypeId" and f.lower() in smap]
        if "apiname" not in {c.lower() for c in scols}:
            scols.append("ApiName")
        stages = {s["ApiName"]: s for s in self.apto.query(f"SELECT {', '.join(scols)} FROM OpportunityStage")}
        planned: list[dict[str, Any]] = []
        for rt in rts:
            values = self.apto.stage_picklist(rt["Id"])
            self.stages_by_rt[rt["Id"]] = [str(v.get("value")) for v in values]
            for v in values:
                api = str(v.get("value"))
                st = stages.get(api)
                rec = {"RecordTypeId": rt["Id"], "ApiName": api}
                planned.append({"pipeline": rt.get("Name"), "record type": rt["Id"], "stage": api,
                                "label": (st or {}).get("MasterLabel") or v.get("label"),
                                "sequence": (st or {}).get("SortOrder"), "won": (st or {}).get("IsWon"),
                                "closed": (st or {}).get("IsClosed"),
                                "probability": (st or {}).get("DefaultProbability"),
                                "active": (st or {}).get("IsActive"), "key": stage_obj.key(rec),
                                "in OpportunityStage": st is not None})
                if st is None:
                    self.plan.problem("warning", "schema", f"pipeline {rt.get('Name')}: stage {api!r} is in the "
                                      "record type's picklist but not in OpportunityStage (no label/won flag)")
        found = self._find_keys("crm.stage", [p["key"] for p in planned])
        for p in planned:
            p["odoo stage id"] = found.get(p["key"])
            p["action"] = "exists (keyed)" if p["key"] in found else "create"
        self.plan.stages.extend(planned)
        unused = sorted(set(stages) - {p["stage"] for p in planned})
        if unused:
            self.plan.notes.append(f"OpportunityStage values in no pipeline (not created): {', '.join(unused)}")

    def lost_reasons(self) -> None:
        for name, lookup in self.pair.lookups.items():
            source = lookup.options.get("create_from_picklist")
            if not source or "." not in str(source):
                continue
            sobject, fname = str(source).split(".", 1)
            f = self.field_map(sobject).get(fname.lower())
            if f is None:
                self.plan.problem("warning", "schema", f"lookup {name}: {source} is not in the org; no "
                                                       f"{lookup.model} is created")
                continue
            existing = {str(r["name"]).strip().casefold(): r["id"] for r in self.odoo.search_read(
                lookup.model, [], ["name"], context={"active_test": False})}
            seen = self._seen_values(sobject, f["name"])
            for v in f.get("picklistValues") or ():
                value = str(v.get("value"))
                hit = existing.get(value.strip().casefold())
                self.plan.lost_reasons.append({
                    "lookup": name, "model": lookup.model, "value": value, "active in picklist": v.get("active", True),
                    "records": seen.get(value), "odoo id": hit,
                    "action": "exists" if hit else "create"})
            listed = {str(v.get("value")) for v in f.get("picklistValues") or ()}
            for value, n in sorted(seen.items()):
                if value not in listed:
                    hit = existing.get(value.strip().casefold())
                    self.plan.lost_reasons.append({
                        "lookup": name, "model": lookup.model, "value": value, "active in picklist": None,
                        "records": n, "odoo id": hit,
                        "action": "exists" if hit else (
                            "create (free text outside the picklist: one reason of that name, keyed)"
                            if lookup.options.get("create_missing") else
                            "not created (outside the picklist; kept as text)")})

    def _seen_values(self, sobject: str, fname: str) -> dict[str, int]:
        """Values of a field: by GROUP BY when the org answers it, else from the sample (counts of the sample)."""
        if self.group_by is not False:
            counts = self._group_count(sobject, fname, [])
            if counts is not None:
                return {k: v for k, v in counts.items() if k not in ("None", "")}
        out: Counter[str] = Counter()
        for name, records in self.samples.items():
            if self.pair.objects[name].source_object == sobject:
                out.update(str(r[fname]) for r in records if not _blank(r.get(fname)))
                break
        return dict(out)

    # ---- 4. cycles and bad data ------------------------------------------------------------------------

    def cycles(self) -> None:
        for obj in self.pair.objects.values():
            h = obj.hierarchy
            if h is None or obj.stream.get("kind") != "soql":
                continue
            if any(self._unknown_reason(obj.source_object, f) for f in (h.id_field, h.parent_field)):
                continue            # listed with the unknown fields already
            where = self.filters(obj)
            soql = (f"SELECT {h.id_field}, {h.parent_field} FROM {obj.source_object}"
                    + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {h.id_field}")
            edges = [{h.id_field: r[h.id_field], h.parent_field: r.get(h.parent_field)} for r in self.apto.query(soql)]
            _, cut = break_cycles(edges, h.id_field, h.parent_field)
            ids = {str(e[h.id_field]) for e in edges}
            dangling = [e for e in edges if e.get(h.parent_field) and str(e[h.parent_field]) not in ids]
            wanted = sorted({i for c in cut for i in (*c["cycle"], c["parent_id"])})
            names = self._names(obj.source_object, wanted)
            for c in cut:
                kind = "self-parent" if len(c["cycle"]) == 1 else f"cycle of {len(c['cycle'])}"
                loop = self._loop(c["cycle"], {str(e[h.id_field]): e.get(h.parent_field) for e in edges}, c["source_id"])
                self.plan.cycles.append({
                    "object": obj.name, "kind": kind, "record cut": c["source_id"],
                    "record name": names.get(c["source_id"]), "parent removed": c["parent_id"],
                    "parent name": names.get(c["parent_id"]),
                    "cycle": " → ".join(names.get(i, i) for i in loop),
                    "cycle ids": " → ".join(loop), "what happens": c["reason"]})
            for e in dangling:
                self.plan.dangling_parents.append({"object": obj.name, "record": e[h.id_field],
                                                   "parent": e[h.parent_field],
                                                   "what happens": "parent not migrated (deleted or filtered): "
                                                                   "loaded without a parent"})

    @staticmethod
    def _loop(cycle: Sequence[str], parent: Mapping[str, Any], start: str) -> list[str]:
        out = [start]
        node = parent.get(start)
        while node is not None and node != start and len(out) <= len(cycle):
            out.append(str(node))
            node = parent.get(str(node))
        return [*out, start]

    def _names(self, sobject: str, ids: Sequence[str]) -> dict[str, str]:
        if not ids or "name" not in self.field_map(sobject):
            return {}
        out = {}
        for chunk in soql_in_chunks(ids):
            for r in self.apto.query(f"SELECT Id, Name FROM {sobject} WHERE Id IN {chunk}"):
                out[str(r["Id"])] = str(r.get("Name"))
        return out

    def sample(self) -> None:
        """Read ``sample_limit`` records per SOQL object (``ORDER BY Id LIMIT n``) and profile them."""
        for obj in self.pair.objects.values():
            if obj.stream.get("kind") != "soql" or obj.stream.get("parent_filter"):
                continue
            if obj.source_object == "User" or self.describe(obj.source_object) is None:
                continue
            fmap = self.field_map(obj.source_object)
            cols = [p for p in dict.fromkeys(["Id", *obj.stream_fields()])
                    if self._unknown_reason(obj.source_object, p) is None]
            picklists = [f for f in fmap.values() if f.get("custom") and f.get("type") in _PICKLIST_TYPES]
            emails = [f for f in fmap.values() if f.get("type") == "email"]
            for f in (*picklists, *emails):
                if f["name"].lower() not in {c.lower() for c in cols}:
                    cols.append(f["name"])
            where = self.filters(obj)
            soql = (f"SELECT {', '.join(cols)} FROM {obj.source_object}"
                    + (f" WHERE {' AND '.join(where)}" if where else "")
                    + f" ORDER BY Id LIMIT {int(self.sample_limit)}")
            records = list(self.apto.query(soql))
            self.samples[obj.name] = records
            self.plan.profile.extend(value_profile(obj.name, records, [c for c in cols if c != "Id"]))
            self._check_sample(obj, records, picklists, emails)

    def _check_sample(self, obj: ObjectSpec, records: list[dict[str, Any]], picklists: Sequence[Mapping[str, Any]],
                      emails: Sequence[Mapping[str, Any]]) -> None:
        checks: dict[str, str] = {}
        for fspec in obj.fields.values():
            if fspec.fn and fspec.fn[0].name == "normalize_email" and len(fspec.sources) == 1:
                checks[fspec.sources[0]] = f"lands as written, flagged (field {fspec.name})"
        for f in emails:
            checks.setdefault(f["name"], "copied as text into its x_ field (not validated)")
        bad = invalid_emails(obj.name, records, checks)
        for f in picklists:
            bad += picklist_outside(obj.name, records, f)
        stage_ref = self._stage_ref(obj)
        if stage_ref and self.stages_by_rt:
            rt_path, stage_path = stage_ref
            bad += stages_outside(obj.name, records, self.stages_by_rt, record_type_field=rt_path,
                                  stage_field=stage_path, names=self.rt_names)
        bad += missing_required(obj, records)
        self.plan.bad_data.extend(bad)

    def _stage_ref(self, obj: ObjectSpec) -> tuple[str, str] | None:
        stage_objs = {n for n, o in self.pair.objects.items() if o.stream.get("kind") == "pipeline_stages"}
        for fspec in obj.fields.values():
            if len(fspec.ref) == 1 and fspec.ref[0] in stage_objs and len(fspec.sources) == 2:
                return fspec.sources[0], fspec.sources[1]
        return None

    # ---- 5. automations --------------------------------------------------------------------------------

    def automations(self) -> None:
        models: dict[str, str] = {}
        for o in self.pair.loadable():
            if o.model:
                models.setdefault(o.source_object, o.model)
        for obj in self.pair.objects.values():
            if obj.stream.get("kind") != "tooling":
                continue
            counts = {}
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
                self.plan.automations.extend(automation_entry(kind, r, models) for r in rows)
            for row in self.plan.objects:
                if row["object"] == obj.name:
                    row["live"] = sum(counts.values())
                    row["count note"] = ", ".join(f"{k} {v}" for k, v in counts.items())


def _namespace_how(apto: AptoHook) -> tuple[str, str]:
    """The namespace and how it was found (connection, PackageLicense, or the sobjects list)."""
    if apto.settings.namespace is not None:
        return apto.settings.namespace, "set in the Apto connection (extra.namespace)"
    ns = apto.namespace
    try:
        licensed = sorted({str(r["NamespacePrefix"]) for r in apto.query("SELECT NamespacePrefix FROM PackageLicense")
                           if r.get("NamespacePrefix")})
    except AptoApiError:
        licensed = []
    objects = [s["name"] for s in apto.describe_global().get("sobjects", [])
               if ns and str(s.get("name", "")).startswith(ns + "__")]
    if licensed:
        others = [p for p in licensed if p != ns]
        how = (f"PackageLicense lists {', '.join(licensed)}; {ns!r} has {len(objects)} object(s) in the org"
               + (f" ({', '.join(others)}: none used)" if others else ""))
    elif ns:
        how = f"inferred from the sobjects list ({len(objects)} object(s) named {ns}__*__c); PackageLicense not readable"
    else:
        how = "no namespaced objects in the org: fields are read without a prefix"
    return ns, how


def build_plan(apto: AptoHook, odoo: OdooHook, pair: PairSpec, *, sample_limit: int = 2000,
               logger: logging.Logger | None = None) -> Plan:
    """Audit Apto and Odoo for ``pair`` (unresolved: ``<ns>`` still in it); read-only, bounded calls.

    :param sample_limit: records read per object for the bad-data profile (``LIMIT``), 1..2000 (one page).
    :return: the :class:`Plan`; write it with :func:`crm_migration.reports.plan.write_plan_report`.
    """
    if not 1 <= sample_limit <= 2000:
        raise ValueError("sample_limit must be in [1, 2000] (one page per object)")
    logger = logger or log
    started, t0 = datetime.now(UTC), time.perf_counter()
    odoo_before = Counter(odoo.calls)
    with _Recorder(apto) as rec:
        ns, how = _namespace_how(apto)
        resolved = pair.with_namespace(ns) if pair.namespace is None else pair
        if resolved.target_version is None:
            try:
                major = target_major(odoo)
            except OdooError as exc:       # Odoo unreadable: its problems are reported step by step
                logger.warning("Plan: Odoo version not readable (%s); no per-version override applied", exc.message)
                major = None
            resolved = resolved.for_target(major)      # the target version's overrides (pair file `targets:`)
        plan = Plan(pair=pair.pair, source=pair.source, namespace=ns, namespace_how=how, fallback_user="",
                    fallback_user_from="", fallback_user_id=None, started_at=started.isoformat(timespec="seconds"),
                    sample_limit=sample_limit)
        planner = _Planner(apto, odoo, resolved, plan, sample_limit=sample_limit, logger=logger)
        plan.fallback_user, plan.fallback_user_from = planner.fallback_login()
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("inventory", planner.inventory), ("owners", planner.owners), ("owner counts", planner.owner_counts),
        ]
        for name, step in steps:
            logger.info("Plan %s: %s", pair.pair, name)
            step()
        custom = planner.custom_fields()
        logger.info("Plan %s: schema", pair.pair)
        planner.schema(custom)
        planner.target_fields()
        logger.info("Plan %s: cycles and sample", pair.pair)
        planner.cycles()
        planner.sample()
        planner.lost_reasons()                  # after the sample: values outside the picklist come from it
        logger.info("Plan %s: automations", pair.pair)
        planner.automations()
        _summarise_problems(plan)
        plan.apto_requests = list(rec.requests)
    plan.odoo_calls = {f"{m}.{meth}": n for (m, meth), n in sorted((Counter(odoo.calls) - odoo_before).items())}
    plan.seconds = round(time.perf_counter() - t0, 3)
    logger.info("Plan %s: %d Apto requests, %d Odoo calls, %.1f s; %d problem(s)", pair.pair, plan.apto_calls,
                plan.odoo_call_count, plan.seconds, len(plan.problems))
    return plan


def _summarise_problems(plan: Plan) -> None:
    """Turn the findings into the problem lines a person acts on (blocking first in the report)."""
    fallback = [o for o in plan.owners if not o["matched"]]
    if fallback and plan.fallback_user_id is not None:
        plan.problem("warning", "owners", f"{len(fallback)} of {len(plan.owners)} Apto owner(s) fall back to "
                                          f"{plan.fallback_user}: " + ", ".join(str(o["name"]) for o in fallback))
    for row in plan.unknown_fields:
        plan.problem("blocking", "inventory", f"{row['object']} reads {row['field']}, unknown to the org "
                                              f"({row['why']}): the mapping will fail on it")
    for c in plan.cycles:
        plan.problem("warning", "hierarchy", f"{c['kind']}: {c['cycle']}; the link from {c['record name'] or c['record cut']} "
                                             f"to {c['parent name'] or c['parent removed']} will be cut")
    if plan.dangling_parents:
        plan.problem("info", "hierarchy", f"{len(plan.dangling_parents)} record(s) point to a parent that is not "
                                          "migrated; they load without a parent")
    dead = defaultdict(int)
    for b in plan.bad_data:
        if str(b["consequence"]).startswith("dead letter"):
            dead[f"{b['object']}: {b['check']} ({b['field']})"] += int(b["records in sample"])
    for what, n in sorted(dead.items()):
        plan.problem("warning", "bad data", f"{n} sampled record(s) will be dead-lettered: {what}")
    flagged = defaultdict(int)
    for b in plan.bad_data:
        if "flagged" in str(b["consequence"]):
            flagged[f"{b['object']}: {b['check']} ({b['field']})"] += int(b["records in sample"])
    for what, n in sorted(flagged.items()):
        plan.problem("info", "bad data", f"{n} sampled record(s) will land repaired or as written, flagged for "
                                         f"review in the run's report: {what}")
    outside = [b for b in plan.bad_data if "picklist" in b["check"]]
    if outside:
        plan.problem("info", "bad data", f"{len(outside)} picklist value(s) outside their picklist (kept as text)")
    keyed = [o for o in plan.objects if o.get("already keyed in Odoo")]
    for o in keyed:
        plan.problem("info", "odoo", f"{o['already keyed in Odoo']} {o['odoo model']} record(s) already carry a key "
                                     f"of {o['object']}: a migration updates them instead of creating")
    order = {"blocking": 0, "warning": 1, "info": 2}
    plan.problems.sort(key=lambda p: order.get(p["severity"], 3))


_SOQL_FROM = re.compile(r"\bFROM\s+(\w+)", re.I)


def soql_reads(request: Mapping[str, Any]) -> str | None:
    """The object a recorded request's SOQL reads (for tests and the report), else ``None``."""
    soql = request.get("soql")
    m = _SOQL_FROM.search(soql) if soql else None
    return m.group(1) if m else None

