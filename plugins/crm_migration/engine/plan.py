"""The plan step: audit a source and Odoo before any migration, with a bounded number of API calls.

``build_plan(source, odoo, pair)`` reads, never writes, and returns a :class:`Plan` of plain data. It is
the same for every source: what only a source can answer (how to count, what its fields are, who its
users are, its pipelines, its automations) is asked of the source adapter's plan reader,
``source.plan_reader()`` (:class:`PlanReader`: ``streams/apto_plan.py``, ``streams/link_app_plan.py``).

1. **inventory**: the namespace (and how it was found); per mapped object its record counts (live, and
   deleted where the source keeps them), the fields its mapping reads that the source does not know, the
   custom fields (type, options) and the ``x_`` field each becomes; on the Odoo side the target model,
   whether ``x_migration_key`` exists and how many records already carry a key of this pair and object;
2. **owners**: every source user → the Odoo user matched by email (case-insensitive; archived users
   noted) or the fallback user (pair ``settings.fallback_user``, overridden by the Odoo connection's
   ``extra.fallback_user``); a missing fallback user is a blocking problem; records per owner where the
   source can count them, and in any case how many records of each object go to the fallback user;
3. **schema**: the fields to create (``x_migration_key`` per target model, the pair's ``x_fields``, the
   custom fields), one ``crm.team`` per pipeline, its stages, the lost reasons to create, and every
   mapped field checked against the target's ``fields_get`` (the preflight's problems);
4. **bad data**: hierarchy cycles and self-parents (the parent edges of every record and
   :func:`~crm_migration.mapping.mapper.break_cycles`), and a profile of a sample (``sample_limit``
   records per object): invalid emails, values outside their picklist, deals whose stage is not one of
   their pipeline's stages, required values missing, plus what the reader finds (Link app: custom values
   without a definition);
5. **automations**: the source's automations shaped as a rebuild reference; nothing is migrated;
6. **proposed mapping**: from the sampled record objects' every field (``Sample.schema``), their values and the
   target's ``fields_get``, :func:`crm_migration.mapping.propose.propose` proposes the pair file
   (``Plan.proposal``; written next to the mapping in force by :func:`crm_migration.reports.plan.write_plan_report`).

Every source request is recorded in ``Plan.source_requests`` (method, path and SOQL, never a header:
an httpx event hook on the reader's ``hook.client``) and the Odoo calls in ``Plan.odoo_calls``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from crm_migration.engine.schema import target_field_problems, target_major
from crm_migration.hooks.odoo import MIGRATION_KEY, OdooError
from crm_migration.mapping import transforms as T
from crm_migration.mapping.mapper import break_cycles, resolve_owners, sf_prefix
from crm_migration.mapping.spec import (
    MISSING,
    NOT_RECORD_PATHS,
    ObjectSpec,
    PairSpec,
    SpecError,
    get_path,
    thaw,
)

if TYPE_CHECKING:
    from crm_migration.hooks.odoo import OdooHook

__all__ = [
    "Plan", "PlanReader", "Sample", "automation_reference", "build_plan", "invalid_emails", "missing_required",
    "picklist_outside", "stages_outside", "value_profile",
]

log = logging.getLogger(__name__)

_NOT_MIGRATED_NOTE = ("A rebuild reference: nothing here is migrated. Each entry says what the automation does "
                      "in the source and how it may be rebuilt in Odoo.")
PICKLIST_TYPES = ("picklist", "multipicklist")


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What the plan step found; plain data only (JSON-able with :meth:`to_dict`).

    Row lists hold flat dicts, one per table row of the report. ``problems`` are the lines a person
    acts on: ``{"severity": "blocking"|"warning"|"info", "topic", "message"}``.
    ``source_label`` names the source in sentences (``Apto``, ``Link app``), ``source_place`` what holds
    its data (``org``, ``tenant``).
    """

    pair: str
    source: str
    namespace: str
    namespace_how: str
    fallback_user: str
    fallback_user_from: str
    fallback_user_id: int | None
    started_at: str
    source_label: str = "source"
    source_place: str = "source"
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
    source_requests: list[dict[str, Any]] = field(default_factory=list)
    odoo_calls: dict[str, int] = field(default_factory=dict)
    #: the proposed mapping (:mod:`crm_migration.mapping.propose`): ``rows`` (every source field of the record
    #: objects: target, transform, confidence, reasons), ``yaml`` (the proposed pair file), ``in_force_yaml``
    #: (the mapping in force written the same way), ``diff`` (unified), ``changes``, ``summary``, ``error``
    proposal: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem(self, severity: str, topic: str, message: str) -> None:
        self.problems.append({"severity": severity, "topic": topic, "message": message})

    @property
    def source_calls(self) -> int:
        """API requests sent to the source (a token request included)."""
        return len(self.source_requests)

    def requests_per_path(self) -> dict[str, int]:
        """Source requests per path (Link app: one per page of each resource)."""
        return dict(Counter(str(r.get("path")) for r in self.source_requests))

    @property
    def odoo_call_count(self) -> int:
        return sum(self.odoo_calls.values())


# --------------------------------------------------------------------------------------------------
# What the plan asks a source
# --------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """A sample of one object's records, as :meth:`PlanReader.sample` returns it.

    :param records: up to ``sample_limit`` records, as the source gives them.
    :param columns: the paths profiled (``Account.BillingCity``, ``address.city``, ``custom_fields.tier``).
    :param picklists: describe-like field dicts (``name`` = the path, ``type`` ``picklist``/``multipicklist``,
        ``picklistValues``) whose sampled values are checked against their options.
    :param emails: paths holding an email the mapping copies without validating (Salesforce ``email`` fields).
    :param findings: bad-data rows only this source can find (same columns as :attr:`Plan.bad_data`).
    :param schema: describe-like dicts of every field the source holds for the object (``name, label, type,
        custom, picklistValues, referenceTo, length``; the records hold them all), for the mapping proposer;
        empty: the object is not proposed.
    """

    records: list[dict[str, Any]]
    columns: list[str]
    picklists: list[Mapping[str, Any]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    schema: list[Mapping[str, Any]] = field(default_factory=list)


class PlanReader(Protocol):
    """The source-specific questions of the plan; ``source.plan_reader()`` returns one.

    Every method reads, never writes, and sends its requests through ``hook.client`` (an
    ``httpx.Client``: the plan records each request). Rows returned are plain dicts for the report.
    A reader may add ``plan.problem(...)`` lines and ``plan.notes`` for what only it can see.
    """

    #: how sentences name the source ("Apto") and what holds its data ("org", "tenant")
    label: str
    place: str
    #: a record's id field ("Id", "id"): the bad-data rows' example ids
    id_field: str
    hook: Any

    def begin(self, pair: PairSpec, plan: Plan, *, sample_limit: int) -> None:
        """Called first, with the resolved pair (namespace and target version applied) and the plan."""

    def namespace(self) -> tuple[str, str]:
        """The namespace and how it was found (``""`` and a sentence when the source has none)."""

    def inventory(self, obj: ObjectSpec, row: dict[str, Any]) -> list[dict[str, Any]]:
        """Fill ``row``'s ``filters``, ``live``, ``deleted``, ``count note``; return the fields the object's
        mapping reads that the source does not have: ``{"object", "source object", "field", "why"}`` and
        ``"severity"`` (``blocking``: the migration fails on it; ``warning``: it maps to nothing)."""

    def unknown_reason(self, obj: ObjectSpec, path: str) -> str | None:
        """Why ``path`` cannot be read on ``obj`` (``None``: it can)."""

    def describes(self, objects: Sequence[ObjectSpec]) -> dict[str, list[dict[str, Any]]]:
        """``{object name: describe-like fields}`` of the objects with ``custom_fields`` (a missing object
        left out): ``name``, ``label``, ``type``, ``custom``, ``picklistValues``, ``referenceTo``."""

    def users(self, user_obj: ObjectSpec | None) -> list[dict[str, Any]]:
        """Every source user as ``{"id", "name", "email", "username", "active"}``."""

    def owner_countable(self, obj: ObjectSpec) -> bool:
        """Whether records of ``obj`` are counted per owner."""

    def owner_counts(self, obj: ObjectSpec, path: str, fallback_ids: Sequence[str]
                     ) -> tuple[Counter[str] | None, int | None]:
        """Records of ``obj`` per owner id (``None``: not countable) and how many belong to ``fallback_ids``."""

    def owner_counts_note(self, counted: bool) -> str:
        """How the records per owner were counted (``counted`` false: they were not)."""

    def pipelines(self, team_obj: ObjectSpec, stage_obj: ObjectSpec | None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The teams (``{"pipeline id", "name", "active", "key", ...}``) and their stages (``{"pipeline",
        "pipeline id", "stage"`` (the value a deal's stage field holds), ``"label", "sequence", "won",
        "closed", "probability", "key", ...}``), keys from ``team_obj.key`` / ``stage_obj.key``."""

    def edges(self, obj: ObjectSpec) -> list[dict[str, Any]] | None:
        """``{id_field: id, parent_field: parent}`` of every record of a ``hierarchy`` object (``None``: not
        readable)."""

    def names(self, obj: ObjectSpec, ids: Sequence[str]) -> dict[str, str]:
        """Display names of some records of ``obj``."""

    def sample(self, obj: ObjectSpec) -> Sample | None:
        """Up to ``sample_limit`` records of ``obj`` to profile (``None``: the object is not sampled)."""

    def picklist(self, source_object: str, field_name: str) -> dict[str, Any] | None:
        """The describe-like field ``field_name`` of ``source_object`` (``None``: the source lacks it)."""

    def seen_values(self, source_object: str, path: str) -> dict[str, int]:
        """Values of ``path`` in the source and how many records hold each."""

    def automations(self, obj: ObjectSpec, models: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The rebuild-reference entries of an ``export`` object (``models``: source object → Odoo model) and
        their counts per kind. An entry: ``type, id, name, object, odoo_model, active, trigger, condition,
        formula, actions, description, rebuild_as, source``."""


# --------------------------------------------------------------------------------------------------
# Pure helpers (unit-tested): value profiles and bad-data checks
# --------------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    """Empty as the mapping sees it (None, "", blanks, empty list), NaN included (pandas' missing value)."""
    return T._empty(value) or (isinstance(value, float) and value != value)


def value_profile(obj: str, records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Per column (a path: ``Account.BillingCity``, ``address.city``) of a sample: rows, filled, fill %,
    distinct values, the most frequent value and its count."""
    if not records:
        return []
    frame = pd.DataFrame([{c: _flat(get_path(r, c)) for c in columns} for r in records], columns=list(columns))
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
    if isinstance(value, list | tuple):        # a multi-select value: its items, in order
        return "; ".join(str(v) for v in value) if value else None
    return None if isinstance(value, Mapping) else value


def _short(value: Any, n: int = 60) -> str:
    text = str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def invalid_emails(obj: str, records: Sequence[Mapping[str, Any]], fields: Mapping[str, str], *,
                   id_field: str = "Id") -> list[dict[str, Any]]:
    """Sampled values the mapping's ``normalize_email`` refuses.

    :param fields: source field → what happens to such a value in the migration (``dead letter`` ...).
    """
    out = []
    for path, consequence in fields.items():
        frame = pd.DataFrame({"Id": [r.get(id_field) for r in records], "value": [get_path(r, path) for r in records]})
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


def picklist_outside(obj: str, records: Sequence[Mapping[str, Any]], describe_field: Mapping[str, Any], *,
                     id_field: str = "Id",
                     consequence: str = "kept as text in its x_ field (picklists become char)",
                     ) -> list[dict[str, Any]]:
    """Sampled values of a (multi)picklist field that its describe ``picklistValues`` do not list
    (inactive values are reported as such). The field's ``name`` is a path; a multi-select value is a
    ``;``-separated string (Salesforce) or a list (Link app)."""
    name = str(describe_field["name"])
    values = describe_field.get("picklistValues") or ()
    active = {str(v.get("value")) for v in values if v.get("active", True)}
    inactive = {str(v.get("value")) for v in values if not v.get("active", True)}
    multi = describe_field.get("type") == "multipicklist"
    frame = pd.DataFrame({"Id": [r.get(id_field) for r in records], "value": [get_path(r, name) for r in records]})
    frame = frame[~frame["value"].map(_blank)]
    if frame.empty:
        return []
    if multi:
        frame = frame.assign(value=frame["value"].map(_items))
        frame = frame.explode("value").dropna(subset=["value"])
    frame = frame.assign(value=frame["value"].astype(str))
    bad = frame[~frame["value"].isin(active)]
    out = []
    for value, group in bad.groupby("value", sort=True):
        status = "inactive picklist value" if value in inactive else "value outside the picklist"
        out.append({"object": obj, "check": status, "field": name, "value": _short(value),
                    "records in sample": int(group["Id"].nunique()), "example id": group["Id"].iloc[0],
                    "consequence": consequence})
    return out


def _items(value: Any) -> list[str]:
    parts = value if isinstance(value, list | tuple) else str(value).split(";")
    return [str(p).strip() for p in parts if str(p).strip()]


def stages_outside(obj: str, records: Sequence[Mapping[str, Any]], stages: Mapping[str, Sequence[str]], *,
                   record_type_field: str = "RecordTypeId", stage_field: str = "StageName",
                   names: Mapping[str, str] | None = None, id_field: str = "Id") -> list[dict[str, Any]]:
    """Sampled deals whose stage is not one of their pipeline's stages (``stages``: pipeline id (a record
    type) → allowed stage values), or whose pipeline is none of the planned pipelines."""
    names = names or {}
    frame = pd.DataFrame({"Id": [r.get(id_field) for r in records],
                          "rt": [_str(get_path(r, record_type_field)) for r in records],
                          "stage": [_str(get_path(r, stage_field)) for r in records]})
    if frame.empty:
        return []
    known = frame["rt"].isin(list(stages))
    allowed = pd.Series([s in set(stages.get(rt, ())) for rt, s in zip(frame["rt"], frame["stage"], strict=True)],
                        index=frame.index, dtype=bool)
    out = []
    for (rt, stage), group in frame[~known].groupby(["rt", "stage"], dropna=False, sort=True):
        out.append({"object": obj, "check": "pipeline not planned", "field": record_type_field,
                    "value": f"{rt} / {stage}", "records in sample": len(group), "example id": group["Id"].iloc[0],
                    "consequence": "dead letter (team_id/stage_id cannot resolve)"})
    for (rt, stage), group in frame[known & ~allowed].groupby(["rt", "stage"], dropna=False, sort=True):
        out.append({"object": obj, "check": "stage not in its pipeline", "field": stage_field,
                    "value": f"{stage} (pipeline {names.get(rt, rt)})", "records in sample": len(group),
                    "example id": group["Id"].iloc[0],
                    "consequence": "lands in its own pipeline (its stage of that name, else its first stage), "
                                   "flagged (field stage_id)"})
    return out


def _str(value: Any) -> Any:
    return None if value is None else str(value)


def missing_required(spec: ObjectSpec, records: Sequence[Mapping[str, Any]], *, id_field: str = "Id"
                     ) -> list[dict[str, Any]]:
    """Sampled records whose ``required: true`` fields have every source empty (and no default), and
    records with a required ``attach_to`` whose ids name none of the allowed objects (by Salesforce key
    prefix, or by the ``type_from`` field's value)."""
    out = []
    for fspec in spec.fields.values():
        if not fspec.required or not fspec.sources or fspec.default is not MISSING:
            continue
        if any(p.startswith(NOT_RECORD_PATHS) for p in fspec.sources):
            continue
        empty = [r for r in records if _maps_to_empty(fspec, r)]
        if empty:
            out.append({"object": spec.name, "check": "required value missing", "field": fspec.name,
                        "value": f"empty {' / '.join(fspec.sources)}", "records in sample": len(empty),
                        "example id": empty[0].get(id_field), "consequence": "dead letter"})
    att = spec.attach
    orphans: list[Mapping[str, Any]] = []
    if att is not None and att.required and att.type_from:
        orphans = [r for r in records if str(get_path(r, att.type_from)) not in att.types
                   or all(_blank(get_path(r, p)) for p in att.sources)]
    elif att is not None and att.required and att.targets:
        prefixes = {t[1] for t in att.targets}
        orphans = [r for r in records if not any(sf_prefix(get_path(r, p)) in prefixes for p in att.sources)]
    if att is not None and orphans:
        out.append({"object": spec.name, "check": "no record to attach to", "field": att.id_field,
                    "value": f"{' / '.join(att.sources)} name none of {', '.join(att.objects)}",
                    "records in sample": len(orphans), "example id": orphans[0].get(id_field),
                    "consequence": "dead letter"})
    return out


def _maps_to_empty(fspec: Any, record: Mapping[str, Any]) -> bool:
    """Whether the field's sources, through its transforms, give nothing (before ref/lookup resolution).

    A transform that supplies a default (``selection`` with ``default``) fills the value; a transform that
    refuses the value is another check's business (not "missing"); a composite ref is empty when a part is.
    """
    values = [get_path(record, p) for p in fspec.sources]
    if not fspec.fn:
        return any(_blank(v) for v in values) if fspec.many and fspec.ref else all(_blank(v) for v in values)
    out: Any = None
    try:
        for i, step in enumerate(fspec.fn):
            out = T.apply(step.name, values if i == 0 else [out], dict(step.args))
    except (T.TransformError, TypeError, ValueError):
        return False
    return _blank(out)


def automation_reference(plan: Plan) -> dict[str, Any]:
    """The JSON document written as ``automation_reference.json``."""
    by_type = Counter(e["type"] for e in plan.automations)
    return {"pair": plan.pair, "source": plan.source, "namespace": plan.namespace, "generated_at": plan.started_at,
            "note": _NOT_MIGRATED_NOTE, "counts": dict(sorted(by_type.items())), "automations": plan.automations}


# --------------------------------------------------------------------------------------------------
# Request recording (what the plan cost, and proof of what it read)
# --------------------------------------------------------------------------------------------------


class _Recorder:
    """Record every request a source hook's httpx client sends: method, path and SOQL (no header, no body)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Any) -> None:
        url = request.url
        row: dict[str, Any] = {"method": request.method, "path": url.path}
        if q := url.params.get("q"):
            row["soql"] = q
        self.requests.append(row)

    def __enter__(self) -> _Recorder:
        self.hook.client.event_hooks["request"].append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        hooks = self.hook.client.event_hooks["request"]
        if self in hooks:
            hooks.remove(self)


# --------------------------------------------------------------------------------------------------
# Building the plan
# --------------------------------------------------------------------------------------------------


def owner_fields(pair: PairSpec) -> list[tuple[ObjectSpec, str]]:
    """``(object, owner path)`` for every object with a single-source field looked up in ``res.users``."""
    owner_lookups = {n for n, lk in pair.lookups.items() if lk.model == "res.users"}
    out: list[tuple[ObjectSpec, str]] = []
    for obj in pair.objects.values():
        if obj.target.action == "match":
            continue
        for fspec in obj.fields.values():
            if fspec.lookup in owner_lookups and len(fspec.sources) == 1 and (obj, fspec.sources[0]) not in out:
                out.append((obj, fspec.sources[0]))
    return out


def lookup_fields(pair: PairSpec, lookup: str) -> list[tuple[ObjectSpec, str]]:
    """``(object, path)`` of every field resolved through the named lookup from one record path (conditions
    such as ``$lost`` aside)."""
    out = []
    for obj in pair.objects.values():
        for f in obj.fields.values():
            paths = [p for p in f.sources if not p.startswith(NOT_RECORD_PATHS)]
            if f.lookup == lookup and len(paths) == 1:
                out.append((obj, paths[0]))
    return out


def stage_ref(pair: PairSpec, obj: ObjectSpec) -> tuple[str, str] | None:
    """``(pipeline path, stage path)`` of ``obj``'s field that refers to the stage object by both."""
    stage_objs = {o.name for o in pair.loadable() if o.model == "crm.stage"}
    for fspec in obj.fields.values():
        if len(fspec.ref) == 1 and fspec.ref[0] in stage_objs and len(fspec.sources) == 2:
            return fspec.sources[0], fspec.sources[1]
    return None


class _Planner:
    def __init__(self, reader: PlanReader, odoo: OdooHook, pair: PairSpec, plan: Plan, *, sample_limit: int,
                 logger: logging.Logger) -> None:
        self.reader, self.odoo, self.pair, self.plan = reader, odoo, pair, plan
        self.sample_limit, self.log = sample_limit, logger
        self._odoo_fields: dict[str, dict[str, Any] | None] = {}
        self.stages_by_pipeline: dict[str, list[str]] = {}
        self.pipeline_names: dict[str, str] = {}
        self.samples: dict[str, Sample] = {}

    # ---- Odoo ------------------------------------------------------------------------------------------

    def odoo_fields(self, model: str) -> dict[str, Any] | None:
        if model not in self._odoo_fields:
            try:
                self._odoo_fields[model] = self.odoo.fields_get(model)    # the preflight reads the same (cached)
            except OdooError as exc:
                self.log.warning("Plan: Odoo model %s not readable (%s)", model, exc.message)
                self._odoo_fields[model] = None
        return self._odoo_fields[model]

    def _find_keys(self, model: str, keys: Sequence[str]) -> dict[str, int]:
        fields = self.odoo_fields(model)
        if not keys or fields is None or MIGRATION_KEY not in fields:
            return {}
        return self.odoo.find_by_keys(model, keys)

    # ---- 1. inventory ----------------------------------------------------------------------------------

    def inventory(self) -> None:
        for obj in self.pair.objects.values():
            row: dict[str, Any] = {"object": obj.name, "source object": obj.source_object,
                                   "kind": obj.stream.get("kind"), "filters": "", "live": None, "deleted": None,
                                   "count note": "", "unknown fields": 0, "custom fields": 0,
                                   "odoo model": obj.model or f"(none: {obj.target.action}"
                                   + (f", export {obj.target.export})" if obj.target.export else ")"),
                                   "key field in Odoo": None, "already keyed in Odoo": None}
            unknown = self.reader.inventory(obj, row)
            row["unknown fields"] = len(unknown)
            self.plan.unknown_fields.extend(unknown)
            self._odoo_side(obj, row)
            self.plan.objects.append(row)

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
        describes = self.reader.describes([o for o in self.pair.objects.values() if o.custom_fields])
        try:
            plans = self.pair.plan_custom_fields(describes)
        except SpecError as exc:        # e.g. two custom fields landing on one x_ name with different types
            self.plan.problem("blocking", "custom fields", f"custom fields cannot be planned: {exc}")
            plans = {}
        for name, fields in describes.items():
            planned = {cf.source_field: cf for cf in plans.get(name, [])}
            read = {f.lower() for f in self.pair.objects[name].stream_fields()}
            read |= {s.lower() for f in self.pair.objects[name].fields.values() for s in f.sources}
            count = 0
            for f in fields:
                if not f.get("custom"):
                    continue
                count += 1
                cf = planned.get(f["name"])
                status = ("x_ field planned" if cf else "mapped explicitly by the pair" if f["name"].lower() in read
                          else "skipped (custom_fields.overrides / skip)")
                options = [str(v.get("value")) for v in f.get("picklistValues") or ()]
                picklist = f.get("type") in PICKLIST_TYPES
                self.plan.custom_fields.append({
                    "object": name, "source field": f["name"], "source type": f.get("type"), "label": f.get("label"),
                    "picklist values": len(options) if picklist else None,
                    "options": "; ".join(options) if picklist else None,
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
        label = self.reader.label
        user_obj = next((o for o in self.pair.objects.values() if o.target.action == "match"
                         and o.model == "res.users"), None)
        users = self.reader.users(user_obj)
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
        matches = resolve_owners(users, pool, fallback_login=login, id_field="id", email_field="email",
                                 name_field="name")
        by_id = {int(u["id"]): u for u in odoo_users}
        for u in users:
            m = matches[str(u["id"])]
            matched = m["matched"] and m["user_id"] != sentinel
            target = by_id.get(m["user_id"])
            if matched or fallback is not None:
                reason = m["reason"]
            elif m["matched"]:         # the email equals the (missing) fallback login: no user either
                reason = f"email matches only the fallback login {login}, which DOES NOT EXIST in Odoo"
            else:
                reason = m["reason"].split(":")[0] + f": fallback user {login} DOES NOT EXIST in Odoo"
            self.plan.owners.append({
                "source user": u["id"], "name": u.get("name"), "email": u.get("email"),
                "username": u.get("username"), f"active in {label}": u.get("active"), "matched": matched,
                "odoo user id": target["id"] if target else None, "odoo login": target.get("login") if target else None,
                "odoo user active": target.get("active") if target else None, "reason": reason})
        if fallback is not None:
            archived = [o for o in self.plan.owners if o["matched"] and o["odoo user active"] is False]
            if archived:
                self.plan.problem("warning", "owners", f"{len(archived)} {label} owner(s) match an archived Odoo "
                                  "user (records keep that user): " + ", ".join(str(o["name"]) for o in archived))

    def owner_objects(self) -> list[tuple[ObjectSpec, str]]:
        """``(object, owner path)`` for every object the reader counts per owner."""
        return [(obj, path) for obj, path in owner_fields(self.pair)
                if self.reader.owner_countable(obj) and self.reader.unknown_reason(obj, path) is None]

    def owner_counts(self) -> None:
        fallback_ids = [o["source user"] for o in self.plan.owners if not o["matched"]]
        names = {o["source user"]: o["name"] for o in self.plan.owners}
        per_owner: dict[tuple[str, str], Counter[str]] = {}
        for obj, path in self.owner_objects():
            counts, n = self.reader.owner_counts(obj, path, fallback_ids)
            if counts is not None:
                per_owner[(obj.name, path)] = counts
            self.plan.fallback_records.append({"object": obj.name, "owner field": path,
                                               "records going to the fallback user": n})
        self.plan.owner_counts_note = self.reader.owner_counts_note(bool(per_owner))
        if per_owner:
            for oid in [o["source user"] for o in self.plan.owners]:
                row: dict[str, Any] = {"source user": oid, "name": names.get(oid)}
                for (name, path), counts in per_owner.items():
                    row[f"{name}.{path}"] = counts.get(str(oid), 0)
                self.plan.owner_counts.append(row)
            by_user = {r["source user"]: r for r in self.plan.owner_counts}
            for row in self.plan.owners:
                row["records owned"] = sum(v for k, v in by_user.get(row["source user"], {}).items()
                                           if k not in ("source user", "name"))

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

    def _teams_and_stages(self) -> None:
        team_obj = next((o for o in self.pair.loadable() if o.model == "crm.team"), None)
        stage_obj = next((o for o in self.pair.loadable() if o.model == "crm.stage"), None)
        if team_obj is None:
            return
        teams, stages = self.reader.pipelines(team_obj, stage_obj)
        found = self._find_keys("crm.team", [t["key"] for t in teams])
        for t in teams:
            self.pipeline_names[str(t["pipeline id"])] = str(t.get("name"))
            t["odoo team id"] = found.get(t["key"])
            t["action"] = "exists (keyed)" if t["key"] in found else "create"
        self.plan.teams.extend(teams)
        found = self._find_keys("crm.stage", [s["key"] for s in stages])
        for s in stages:
            self.stages_by_pipeline.setdefault(str(s["pipeline id"]), []).append(str(s["stage"]))
            s["odoo stage id"] = found.get(s["key"])
            s["action"] = "exists (keyed)" if s["key"] in found else "create"
        self.plan.stages.extend(stages)

    def lost_reasons(self) -> None:
        """The records a ``create_from_picklist`` / ``create_missing`` lookup (lost reasons) will create: the
        picklist's values, and the values the source holds outside it."""
        for name, lookup in self.pair.lookups.items():
            source = lookup.options.get("create_from_picklist")
            if source and "." in str(source):
                sobject, fname = str(source).split(".", 1)
                f = self.reader.picklist(sobject, fname)
                if f is None:
                    self.plan.problem("warning", "schema", f"lookup {name}: {source} is not in the "
                                                           f"{self.reader.place}; no {lookup.model} is created")
                    continue
                listed = [v for v in f.get("picklistValues") or ()]
                seen = self.reader.seen_values(sobject, f["name"])
            elif lookup.options.get("create_missing") and (fields := lookup_fields(self.pair, name)):
                listed, seen = [], Counter()
                for obj, path in fields:
                    seen.update(self.reader.seen_values(obj.source_object, path))
            else:
                continue
            existing = {str(r["name"]).strip().casefold(): r["id"] for r in self.odoo.search_read(
                lookup.model, [], ["name"], context={"active_test": False})}
            for v in listed:
                value = str(v.get("value"))
                hit = existing.get(value.strip().casefold())
                self.plan.lost_reasons.append({
                    "lookup": name, "model": lookup.model, "value": value, "active in picklist": v.get("active", True),
                    "records": seen.get(value), "odoo id": hit,
                    "action": "exists" if hit else "create"})
            names = {str(v.get("value")) for v in listed}
            for value, n in sorted(seen.items()):
                if value not in names:
                    hit = existing.get(value.strip().casefold())
                    self.plan.lost_reasons.append({
                        "lookup": name, "model": lookup.model, "value": value, "active in picklist": None,
                        "records": n, "odoo id": hit,
                        "action": "exists" if hit else (
                            f"create (free text{' outside the picklist' if listed else ''}: one reason of that "
                            "name, keyed)" if lookup.options.get("create_missing") else
                            "not created (outside the picklist; kept as text)")})

    # ---- 4. cycles and bad data ------------------------------------------------------------------------

    def cycles(self) -> None:
        for obj in self.pair.objects.values():
            h = obj.hierarchy
            if h is None:
                continue
            if any(self.reader.unknown_reason(obj, f) for f in (h.id_field, h.parent_field)):
                continue            # listed with the unknown fields already
            edges = self.reader.edges(obj)
            if edges is None:
                continue
            _, cut = break_cycles(edges, h.id_field, h.parent_field)
            ids = {str(e[h.id_field]) for e in edges}
            dangling = [e for e in edges if e.get(h.parent_field) and str(e[h.parent_field]) not in ids]
            wanted = sorted({i for c in cut for i in (*c["cycle"], c["parent_id"])})
            names = self.reader.names(obj, wanted) if wanted else {}
            parents = {str(e[h.id_field]): e.get(h.parent_field) for e in edges}
            for c in cut:
                kind = "self-parent" if len(c["cycle"]) == 1 else f"cycle of {len(c['cycle'])}"
                loop = self._loop(c["cycle"], parents, c["source_id"])
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
        while node is not None and str(node) != start and len(out) <= len(cycle):
            out.append(str(node))
            node = parent.get(str(node))
        return [*out, start]

    def sample(self) -> None:
        """Profile a sample of each object the reader samples and check it for bad data."""
        for obj in self.pair.objects.values():
            sample = self.reader.sample(obj)
            if sample is None:
                continue
            self.samples[obj.name] = sample
            self.plan.profile.extend(value_profile(obj.name, sample.records,
                                                   [c for c in sample.columns if c != self.reader.id_field]))
            self._check_sample(obj, sample)

    def _check_sample(self, obj: ObjectSpec, sample: Sample) -> None:
        records, id_field = sample.records, self.reader.id_field
        checks: dict[str, str] = {}
        for fspec in obj.fields.values():
            if fspec.fn and fspec.fn[0].name == "normalize_email" and len(fspec.sources) == 1:
                checks[fspec.sources[0]] = f"lands as written, flagged (field {fspec.name})"
        for path in sample.emails:
            checks.setdefault(path, "copied as text into its x_ field (not validated)")
        bad = invalid_emails(obj.name, records, checks, id_field=id_field)
        type_map = self.pair.custom_fields.type_map
        for f in sample.picklists:
            ttype = type_map.get(str(f.get("type")), "char")
            consequence = ("lands as written in its x_ selection field (the value is added to its options), flagged"
                           if ttype == "selection" else f"kept as text in its x_ field (picklists become {ttype})")
            bad += picklist_outside(obj.name, records, f, id_field=id_field, consequence=consequence)
        ref = stage_ref(self.pair, obj)
        if ref and self.stages_by_pipeline:
            bad += stages_outside(obj.name, records, self.stages_by_pipeline, record_type_field=ref[0],
                                  stage_field=ref[1], names=self.pipeline_names, id_field=id_field)
        bad += missing_required(obj, records, id_field=id_field)
        bad += sample.findings
        self.plan.bad_data.extend(bad)

    # ---- the proposed mapping --------------------------------------------------------------------------

    def propose(self, base: PairSpec) -> None:
        """The proposed pair file from the sampled objects' fields, their values and the target's fields_get
        (:func:`crm_migration.mapping.propose.propose`); ``base`` is the mapping file as written."""
        from crm_migration.mapping.changes import field_changes
        from crm_migration.mapping.propose import dump_pair, propose, unified_diff

        wanted = {n: s for n, s in self.samples.items() if s.schema and self.pair.objects[n].custom_fields}
        targets = {m: f for m in {self.pair.objects[n].model for n in wanted}
                   if m and (f := self.odoo_fields(m)) is not None}
        if not wanted or not targets:
            return
        t0 = time.perf_counter()
        result = propose(self.pair, {n: s.schema for n, s in wanted.items()},
                         {n: s.records for n, s in wanted.items()}, targets, base=base)
        in_force = thaw(base.raw)
        in_force_yaml = dump_pair(in_force)
        self.plan.proposal = {
            "rows": result.rows, "entries": result.entries, "yaml": result.yaml, "in_force_yaml": in_force_yaml,
            "diff": unified_diff(in_force_yaml, result.yaml, pair=self.pair.pair),
            "changes": [{**c, "why": (result.comments.get(c["object"]) or {}).get(c["field"], "")}
                        for c in field_changes(in_force_yaml, result.yaml)],
            "summary": result.summary(), "error": result.error,
            "seconds": round(time.perf_counter() - t0, 3)}
        if result.error:
            self.plan.problem("warning", "proposal", f"the proposed mapping does not validate: {result.error}")
        outside = [r for r in result.rows if r.get("outside options")]
        if outside:
            self.plan.problem("info", "proposal", f"{sum(sum(r['outside options'].values()) for r in outside)} sampled "
                              "value(s) outside their declared options: " + "; ".join(
                                  f"{r['object']}.{r['source field']} " + ", ".join(
                                      f"{v} x{n}" for v, n in list(r["outside options"].items())[:3])
                                  for r in outside) + f" (every value in {'proposal.html'})")

    # ---- 5. automations --------------------------------------------------------------------------------

    def automations(self) -> None:
        models: dict[str, str] = {}
        for o in self.pair.loadable():
            if o.model:
                models.setdefault(o.source_object, o.model)
        for obj in self.pair.objects.values():
            if obj.target.export != "automation_reference" and obj.stream.get("kind") != "tooling":
                continue
            entries, counts = self.reader.automations(obj, models)
            self.plan.automations.extend(entries)
            for row in self.plan.objects:
                if row["object"] == obj.name:
                    row["live"] = sum(counts.values())
                    row["count note"] = ", ".join(f"{k} {v}" for k, v in counts.items())


def build_plan(source: Any, odoo: OdooHook, pair: PairSpec, *, sample_limit: int = 2000,
               logger: logging.Logger | None = None) -> Plan:
    """Audit the source and Odoo for ``pair`` (unresolved: ``<ns>`` still in it); read-only, bounded calls.

    :param source: the pair's source adapter (``AptoSource``, ``LinkAppSource``): its ``plan_reader()``
        answers the source-specific questions (:class:`PlanReader`).
    :param sample_limit: records read per object for the bad-data profile, 1..2000 (one page of a SOQL query).
    :return: the :class:`Plan`; write it with :func:`crm_migration.reports.plan.write_plan_report`.
    """
    if not 1 <= sample_limit <= 2000:
        raise ValueError("sample_limit must be in [1, 2000] (one page per object)")
    logger = logger or log
    reader: PlanReader = source.plan_reader()
    started, t0 = datetime.now(UTC), time.perf_counter()
    odoo_before = Counter(odoo.calls)
    with _Recorder(reader.hook) as rec:
        ns, how = reader.namespace()
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
                    source_label=reader.label, source_place=reader.place, sample_limit=sample_limit)
        reader.begin(resolved, plan, sample_limit=sample_limit)
        planner = _Planner(reader, odoo, resolved, plan, sample_limit=sample_limit, logger=logger)
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
        planner.lost_reasons()                  # after the sample: values outside the picklist may come from it
        logger.info("Plan %s: proposed mapping", pair.pair)
        planner.propose(pair)
        logger.info("Plan %s: automations", pair.pair)
        planner.automations()
        _summarise_problems(plan)
        plan.source_requests = list(rec.requests)
    plan.odoo_calls = {f"{m}.{meth}": n for (m, meth), n in sorted((Counter(odoo.calls) - odoo_before).items())}
    plan.seconds = round(time.perf_counter() - t0, 3)
    logger.info("Plan %s: %d %s requests, %d Odoo calls, %.1f s; %d problem(s)", pair.pair, plan.source_calls,
                plan.source_label, plan.odoo_call_count, plan.seconds, len(plan.problems))
    return plan


def _summarise_problems(plan: Plan) -> None:
    """Turn the findings into the problem lines a person acts on (blocking first in the report)."""
    fallback = [o for o in plan.owners if not o["matched"]]
    if fallback and plan.fallback_user_id is not None:
        plan.problem("warning", "owners", f"{len(fallback)} of {len(plan.owners)} {plan.source_label} owner(s) fall "
                                          f"back to {plan.fallback_user}: "
                                          + ", ".join(str(o["name"]) for o in fallback))
    for row in plan.unknown_fields:
        if row.get("severity", "blocking") == "blocking":
            plan.problem("blocking", "inventory", f"{row['object']} reads {row['field']}, unknown to the "
                                                  f"{plan.source_place} ({row['why']}): the mapping will fail on it")
        else:
            plan.problem(row["severity"], "inventory", f"{row['object']} reads {row['field']}, which the "
                                                       f"{plan.source_place} does not hold ({row['why']}): it maps "
                                                       "to nothing")
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
        plan.problem("info", "bad data", f"{len(outside)} picklist value(s) outside their picklist (kept)")
    keyed = [o for o in plan.objects if o.get("already keyed in Odoo")]
    for o in keyed:
        plan.problem("info", "odoo", f"{o['already keyed in Odoo']} {o['odoo model']} record(s) already carry a key "
                                     f"of {o['object']}: a migration updates them instead of creating")
    order = {"blocking": 0, "warning": 1, "info": 2}
    plan.problems.sort(key=lambda p: order.get(p["severity"], 3))
