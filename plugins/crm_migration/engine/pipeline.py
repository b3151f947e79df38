"""The migration pipeline for one pair: schema, extract, map + load, link, archive; no Airflow inside.

Each public method is one task of the migrate/delta DAGs and is safe to rerun: extraction stages
batches as upserts, loading goes through :func:`~crm_migration.engine.load.load_batch` (exactly
once, keyed in Odoo), linking and archiving compare before they write.

A :class:`Pipeline` is cheap to build; what it learns from the systems (the resolved mapping with the
namespace and the custom fields, the lookup tables) is cached on the instance, so one task makes the
few metadata calls it needs once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypedDict

from crm_migration.engine.extract import BatchRef, stage_stream
from crm_migration.engine.load import (
    RECOMPUTED,
    LoadResult,
    Row,
    Target,
    activities_archived_away,
    load_batch,
)
from crm_migration.engine.rollback import DERIVED
from crm_migration.engine.schema import migration_key_field, target_field_problems, target_major
from crm_migration.engine.values import canonical
from crm_migration.errors import ConfigurationError, CrmMigrationError
from crm_migration.hooks.odoo import FieldDef, OdooHook
from crm_migration.hooks.state import SCHEMA, MigrationStateHook
from crm_migration.mapping import transforms as T
from crm_migration.mapping.mapper import (
    CountryIndex,
    StateIndex,
    StaticRefs,
    attached_to,
    break_cycles,
    get_path,
    hierarchy_levels,
    lookups_needed,
    map_batch,
    matches,
    refs_needed,
    resolve_owners,
    timeline_position,
)
from crm_migration.mapping.spec import ObjectSpec, PairSpec, load_pair
from crm_migration.streams import MissingFile

log_ = logging.getLogger(__name__)


class SchemaResult(TypedDict):
    fields_created: list[str]
    lost_reasons_created: list[str]
    models: list[str]


class LinkResult(TypedDict):
    object: str
    field: str
    written: int
    unchanged: int
    cycles_cut: list[dict[str, Any]]
    missing_parent: int


class Pipeline:
    """One pair's migration steps over a source, Odoo and the state DB.

    :param pair: the pair name (``apto_to_odoo``) or a loaded :class:`PairSpec`.
    :param source: the source adapter (:class:`~crm_migration.streams.apto_source.AptoSource`).
    """

    def __init__(self, pair: str | PairSpec, source: Any, odoo: OdooHook, state: MigrationStateHook, *,
                 log: Any = None, meta: Mapping[str, Any] | None = None) -> None:
        """:param meta: what :meth:`source_meta` returned earlier in the same run (namespace, describes):
        later tasks reuse it instead of asking the source again."""
        self._pair = pair
        self.meta = dict(meta or {})
        if "namespace" in self.meta and hasattr(source, "use_namespace"):
            source.use_namespace(self.meta["namespace"])
        self.source, self.odoo, self.state = source, odoo, state
        self.log = log or log_
        #: held while a load calls Odoo or the state DB, and by a mapping thread's own calls (:meth:`_mapped_parts`)
        self._hooks = threading.RLock()

    # ---- the resolved mapping ------------------------------------------------------------------------

    @cached_property
    def base_spec(self) -> PairSpec:
        """The pair file with the namespace resolved and the target version's overrides (``targets:``) applied."""
        spec = self._pair if isinstance(self._pair, PairSpec) else load_pair(self._pair)
        if spec.namespace is None:
            ns = self.meta["namespace"] if "namespace" in self.meta else self.source.namespace
            spec = spec.with_namespace(ns)
        if spec.target_version is None:
            spec = spec.for_target(self.meta["target_version"] if "target_version" in self.meta
                                   else target_major(self.odoo))
        return spec

    @cached_property
    def custom_field_plan(self) -> dict[str, list[Any]]:
        """The ``x_`` fields planned from the source's describe (``custom: true`` fields)."""
        spec = self.base_spec
        wanted = [o.source_object for o in spec.objects.values() if o.custom_fields]
        if not wanted:
            return {}
        describes = self.meta.get("describes") or self.source.describes(wanted)
        by_name = {o.name: describes[o.source_object] for o in spec.objects.values() if o.custom_fields}
        return spec.plan_custom_fields(by_name)

    def source_meta(self, *, reuse_target_version: bool = False) -> dict[str, Any]:
        """The source facts the mapping depends on (namespace, custom fields) and the target's major version, to
        hand to later tasks.

        :param reuse_target_version: take the target's version from the pair's latest run that recorded it (a
            delta: a window with nothing to load then makes no Odoo call at all); asked of Odoo when none did.
        """
        if reuse_target_version and "target_version" not in self.meta:
            pair = self._pair.pair if isinstance(self._pair, PairSpec) else self._pair
            for run in self.state.runs(pair=pair, limit=20):
                recorded = ((run.get("stats") or {}).get("source_meta") or {})
                if recorded.get("target_version") is not None:
                    self.meta["target_version"] = recorded["target_version"]
                    break
        spec = self.base_spec
        wanted = [o.source_object for o in spec.objects.values() if o.custom_fields]
        describes = self.source.describes(wanted) if wanted else {}
        return {"namespace": spec.namespace or "", "target_version": spec.target_version,
                "describes": {o: [f for f in fields if f.get("custom")] for o, fields in describes.items()}}

    @cached_property
    def spec(self) -> PairSpec:
        """The mapping in force: namespace resolved, custom fields added."""
        return self.base_spec.with_custom_fields(self.custom_field_plan)

    @property
    def pair(self) -> str:
        return self.base_spec.pair

    def loadable(self) -> list[str]:
        return [o.name for o in self.spec.loadable()]

    def target(self, name: str) -> Target:
        obj = self.spec.object(name)
        return Target(**self.spec.target_kwargs(name), context=dict(obj.target.context))

    # ---- schema --------------------------------------------------------------------------------------

    def prepare_schema(self, *, run_id: str) -> SchemaResult:
        """Create what the load needs in Odoo (idempotent): keys, the pair's x_ fields, custom fields,
        lost reasons named by the source picklist (keyed, in ``run_id``'s rollback manifest)."""
        spec = self.spec
        self.preflight()
        models = spec.keyed_models()
        # keys, the pair's x_ fields and the source's custom fields: those missing are created in one call
        wanted = [migration_key_field(m) for m in models]
        wanted += [FieldDef(model, name, str(f["ttype"]), str(f.get("label") or name), relation=f.get("relation"))
                   for model, fields in spec.x_fields.items() for name, f in fields.items()]
        wanted += [FieldDef(cf.model, cf.name, cf.ttype, cf.label, relation=cf.relation,
                            selection=tuple(tuple(x) for x in cf.selection))
                   for plan in self.custom_field_plan.values() for cf in plan]
        created = [f"{f.model}.{f.name}" for f in wanted if f.name not in self.odoo.fields_get(f.model)]
        self.odoo.ensure_fields(wanted)
        reasons = self._ensure_lost_reasons(run_id)
        self.log.info("schema: %d fields created (%s), %d lost reasons created; models %s", len(created),
                      ", ".join(created) or "none", len(reasons), ", ".join(models))
        return {"fields_created": created, "lost_reasons_created": reasons, "models": models}

    def preflight(self) -> list[dict[str, Any]]:
        """Check every mapped field against the target's ``fields_get`` before anything is written.

        Raises :class:`ConfigurationError` naming each field the target cannot take, with its remedy (a
        field the target lacks would otherwise dead-letter every record, one by one); returns the
        warnings (values Odoo would ignore), which are logged.
        """
        planned: dict[str, list[str]] = {}
        for cfs in self.custom_field_plan.values():
            for cf in cfs:
                planned.setdefault(cf.model, []).append(cf.name)
        problems = target_field_problems(self.odoo, self.spec, planned)
        blocking = [p for p in problems if p["severity"] == "blocking"]
        for p in problems:
            if p["severity"] != "blocking":
                self.log.warning("preflight: %s -> %s.%s: %s", p["object"], p["model"], p["field"], p["problem"])
        if blocking:
            lines = "\n".join(f"- {p['object']} -> {p['model']}.{p['field']}: {p['problem']}. Remedy: {p['remedy']}"
                              for p in blocking)
            raise ConfigurationError(f"{self.pair}: the target Odoo cannot take {len(blocking)} mapped field(s); "
                                     f"nothing was written:\n{lines}")
        self.log.info("preflight: every mapped field exists in the target with a fitting type (%d warnings)",
                      len(problems))
        return problems

    def _ensure_lost_reasons(self, run_id: str) -> list[str]:
        """The lost reasons of the source picklist, created (keyed, recorded for rollback) when Odoo lacks them."""
        spec = self.spec.lookups.get("lost_reason")
        source_field = spec.options.get("create_from_picklist") if spec else None
        if not source_field or spec is None:
            return []
        obj, _, field = str(source_field).partition(".")
        values = [v.get("value") for f in self.source.describes([obj])[obj] if f.get("name") == field
                  for v in f.get("picklistValues") or () if v.get("active", True)]
        return self._create_lookup_records(spec, [v for v in values if isinstance(v, str)], run_id=run_id)

    def ensure_lookup_records(self, obj: ObjectSpec, records: list[dict[str, Any]], *, run_id: str,
                              dry_run: bool = False) -> list[str]:
        """Create the records a ``create_missing`` lookup of this batch does not find (a lost reason given as
        free text outside the picklist becomes a ``crm.lost.reason`` of that name), keyed and recorded like
        any load, so the batch's records land with them; returns the names created."""
        created: list[str] = []
        for name, keys in lookups_needed(obj, records).items():
            spec = self.spec.lookups.get(name)
            if spec is None or not spec.options.get("create_missing"):
                continue
            created += self._create_lookup_records(spec, [k for k in keys if isinstance(k, str)], run_id=run_id,
                                                   dry_run=dry_run)
        return created

    def _create_lookup_records(self, spec: Any, names: list[str], *, run_id: str,
                               dry_run: bool = False) -> list[str]:
        """Create, through the loader (key ``<source>:<lookup>:<name>``, crosswalk, audit, rollback manifest),
        the records of lookup ``spec`` named ``names`` that Odoo lacks (names match case-insensitively)."""
        table = self.refs_lookups[spec.name]
        have = {str(k).strip().casefold() for k in table}
        new: dict[str, str] = {}
        for n in names:
            if n.strip() and n.strip().casefold() not in have:
                new.setdefault(n.strip().casefold(), n.strip())
        if not new:
            return []
        target = Target(pair=self.pair, source=self.spec.source, source_object=spec.name, model=spec.model,
                        conflict_policy="source_wins" if self.spec.settings.conflict_policy == "source_wins" else "report")
        field = spec.match[0] if spec.match else "name"
        rows: list[Row] = [{"source_id": n, "values": {field: n}} for n in new.values()]
        load_batch(self.odoo, self.state, target, rows, run_id=run_id, dry_run=dry_run, log=self.log)
        if not dry_run:
            table.update(self.state.odoo_ids(self.pair, spec.name, list(new.values())))
        return list(new.values())

    # ---- lookups ----------------------------------------------------------------------------------------

    @cached_property
    def owners(self) -> dict[str, Any]:
        """Source users → Odoo users by email (fallback user for the rest)."""
        users_obj = next((o for o in self.spec.objects.values() if o.target.action == "match"
                          and o.model == "res.users"), None)
        source_users = list(self.source.records(users_obj, start=None, end=_now())) if users_obj else []
        odoo_users = list(self.odoo.search_read("res.users", [], ["login", "email", "active", "partner_id"],
                                                context={"active_test": False}))
        fallback = self.odoo.fallback_user or self.spec.settings.fallback_user
        if users_obj is None:
            return resolve_owners(source_users, odoo_users, fallback_login=fallback)
        src = {f: users_obj.fields[f].sources[0] for f in ("email", "name")
               if f in users_obj.fields and users_obj.fields[f].sources}
        return resolve_owners(source_users, odoo_users, fallback_login=fallback,
                              id_field=users_obj.target.id_fields[0] if users_obj.target.id_fields else "Id",
                              email_field=src.get("email", "Email"), name_field=src.get("name", "Name"))

    @cached_property
    def refs_lookups(self) -> dict[str, Any]:
        odoo = self.odoo
        country = self.spec.lookups.get("country")
        countries = CountryIndex(odoo.search_read("res.country", [], ["code", "name"]),
                                 dict(country.options.get("aliases") or {}) if country else None)
        state_aliases = dict((self.spec.lookups.get("state").options.get("aliases") or {})
                             if self.spec.lookups.get("state") else {})
        states = StateIndex(odoo.search_read("res.country.state", [], ["code", "name", "country_id"]), countries,
                            state_aliases)
        reasons = {r["name"]: r["id"] for r in odoo.search_read("crm.lost.reason", [], ["name"],
                                                                 context={"active_test": False})}
        models = {m["model"]: m["id"] for m in odoo.search_read("ir.model", [], ["model"])}
        xmlids: dict[str, int | None] = {}

        def xmlid(key: Any) -> int | None:
            if key in (None, False, ""):
                return None
            if key not in xmlids:
                with self._hooks:
                    try:
                        xmlids[key] = odoo.resolve_xmlid(str(key))[1]
                    except Exception:                      # an unknown xmlid is a mapping problem, named later
                        xmlids[key] = None
            return xmlids[key]

        owners = self.owners
        return {"owner": {k: v["user_id"] for k, v in owners.items()},
                "owner_partner": {k: v["partner_id"] for k, v in owners.items()},
                "country": countries, "state": states, "lost_reason": reasons, "model": models,
                "subtype": xmlid, "activity_type": xmlid, "pipeline_stage": self._pipeline_stage}

    def _pipeline_stage(self, key: Any) -> T.Flagged | None:
        """The ``pipeline_stage`` lookup, asked for ``(pipeline id, stage name)`` when that stage is not a stage
        of that pipeline: the pipeline's stage of that name (case-insensitive), else its first stage, flagged;
        None when the pipeline itself was not migrated. The lookup's ``pipeline`` option names the pipeline
        object (its crosswalk gives the team)."""
        if not isinstance(key, tuple) or len(key) != 2 or "pipeline_stage" not in self.spec.lookups:
            return None
        with self._hooks:
            return self._stage_in(*key)

    def _stage_in(self, pipeline_id: Any, stage: Any) -> T.Flagged | None:
        pipeline_obj = self.spec.object(str(self.spec.lookups["pipeline_stage"].options.get("pipeline")))
        if pipeline_id not in self._teams_of:
            self._teams_of[pipeline_id] = self.state.odoo_ids(self.pair, pipeline_obj.key_object,
                                                              [str(pipeline_id)]).get(str(pipeline_id))
        team = self._teams_of[pipeline_id]
        stages = self._stages_by_team.get(team) if team else None
        if not stages:
            return None
        wanted = str(stage or "").strip().casefold()
        named = next((st for st in stages if str(st["name"]).strip().casefold() == wanted), None)
        if named is not None:
            return T.Flagged(named["id"], f"stage {stage!r} is not a stage of pipeline {pipeline_id}: "
                                          f"matched by name to its stage {named['name']!r}")
        return T.Flagged(stages[0]["id"], f"stage {stage!r} is not a stage of pipeline {pipeline_id}: "
                                          f"placed in its first stage {stages[0]['name']!r}")

    @cached_property
    def _teams_of(self) -> dict[Any, int | None]:
        return {}

    @cached_property
    def _stages_by_team(self) -> dict[int, list[dict[str, Any]]]:
        """The target's stages per sales team, in Odoo's order (sequence, then id)."""
        fields = self.odoo.fields_get("crm.stage")
        team_field = "team_id" if "team_id" in fields else "team_ids"
        out: dict[int, list[dict[str, Any]]] = {}
        stages = sorted(self.odoo.search_read("crm.stage", [], ["name", "sequence", team_field]),
                        key=lambda st: (st["sequence"], st["id"]))
        for st in stages:
            teams = st[team_field]
            ids = ([teams[0]] if teams else []) if team_field == "team_id" else list(teams or [])
            for team in ids:
                out.setdefault(team, []).append(st)
        return out

    def refs_for(self, obj: ObjectSpec, records: list[dict[str, Any]]) -> StaticRefs:
        """Crosswalk ids of everything this batch refers to: one query per referenced object; and the Odoo fields
        its ``=field.odoo_field`` paths read of the records referred to (one ``read`` per model; a record the
        batch reaches otherwise, a fallback stage say, is read when asked)."""
        ids: dict[str, dict[str, int]] = {}
        for name, wanted in refs_needed(obj, records).items():
            scope = self.spec.object(name).key_object
            ids[name] = self.state.odoo_ids(self.pair, scope, sorted(wanted)) if wanted else {}
        reads: dict[str, tuple[set[str], set[int]]] = {}
        for fspec in obj.fields.values():
            for through, model, odoo_field in fspec.via.values():
                fields, oids = reads.setdefault(model, (set(), set()))
                fields.add(odoo_field)
                oids.update(*(ids.get(r, {}).values() for r in obj.fields[through].ref))
        values: dict[tuple[str, str], dict[int, Any]] = {}
        for model, (fields, oids) in reads.items():
            for f in fields:
                values[(model, f)] = {}
            for rec in self.odoo.read(model, sorted(oids), sorted(fields), context={"active_test": False}) \
                    if oids else ():
                for f in fields:
                    values[(model, f)][rec["id"]] = _odoo_value(rec.get(f))

        def value(model: str, oid: int, field: str) -> Any:
            known = values.setdefault((model, field), {})
            if oid not in known:
                with self._hooks:
                    found = self.odoo.read(model, [oid], [field], context={"active_test": False})
                known[oid] = _odoo_value(found[0].get(field)) if found else None
            return known[oid]

        return StaticRefs(ids, self.refs_lookups, value)

    # ---- extract -----------------------------------------------------------------------------------------

    def extract(self, name: str, *, run_id: str, start: datetime | None, end: datetime, batch_size: int,
                sample_size: int | None = None, with_deleted: bool = False,
                replay: Sequence[str] = ()) -> list[BatchRef]:
        """Stage the object's records of ``[start, end)`` in batches (a sample: at most ``sample_size``
        records whose references are in the sample too; ``with_deleted``: records deleted in the window
        come along, flagged, in the same single query per stream; ``replay``: source ids of dead letters to
        re-read by id and stage too, see :mod:`~crm_migration.engine.replay`). A hierarchy's batches are numbered
        parents first (:meth:`parents_first`)."""
        refs = self._extract(name, run_id=run_id, start=start, end=end, batch_size=batch_size,
                             sample_size=sample_size, with_deleted=with_deleted, replay=replay)
        return self.parents_first(name, refs, run_id=run_id, batch_size=batch_size)

    def parents_first(self, name: str, refs: list[BatchRef], *, run_id: str, batch_size: int) -> list[BatchRef]:
        """Number the run's staged batches of a hierarchy loaded by level (:meth:`hierarchy_field`) again by level,
        after the run's cycle cut (:meth:`cut_links`): a parent lands in an earlier batch than its children, or in
        the same one a level before them, so each is created with its parent and :meth:`link` has nothing left to
        write but cut links and updates. ``refs`` as they are for any other object. Safe to rerun: the numbering
        is a function of the staged rows (ordered by level, then source id)."""
        hf = self.hierarchy_field(self.spec.object(name))
        if hf is None or not refs:
            return refs
        field, src = hf
        edges, _cut = self.cut_links(name, run_id=run_id)[field]
        levels = _levels(edges, src)
        batches = self.state.renumber_batches(run_id=run_id, pair=self.pair, source_object=name, levels=levels,
                                              batch_size=batch_size)
        self.log.info("%s: %d records in %d batches, parents first (%d levels)", name,
                      sum(b["count"] for b in batches), len(batches), max(levels.values(), default=0) + 1)
        return [{"source_object": name, "batch_no": b["batch_no"], "count": b["count"], "of": len(batches)}
                for b in batches]

    def _extract(self, name: str, *, run_id: str, start: datetime | None, end: datetime, batch_size: int,
                 sample_size: int | None, with_deleted: bool, replay: Sequence[str]) -> list[BatchRef]:
        obj = self.spec.object(name)
        if start is None and not sample_size and not replay and self._lists_first(obj):
            refs = self._extract_listed(obj, run_id=run_id, end=end, batch_size=batch_size)
            if refs is not None:
                return refs
        staged = _staged_enrichments(obj)
        for spec in staged.values():            # children the source cannot list per parent: staged first
            self._stage_children(str(spec["object"]), run_id=run_id, start=start, end=end, batch_size=batch_size,
                                 with_deleted=with_deleted)
        # a parent_filter stream (files, notes): a delta follows what changed in the window (delta_by), a full read
        # asks one query per parent object (a semi-join); either keeps what hangs on a migrated record. A sample,
        # or a delta without delta_by, asks about the parent ids
        by_change = start is not None and not sample_size and bool(obj.stream.get("delta_by"))
        by_object = start is None and not sample_size and self.source.needs_parents(obj) and obj.attach is not None
        parent_ids = self._parent_ids(obj, run_id if sample_size else None) \
            if self.source.needs_parents(obj) and not (by_change or by_object) else None
        parent_objects = [self.spec.object(n).source_object for n in obj.attach.objects] \
            if by_object and obj.attach is not None else None
        records: Iterable[dict[str, Any]] = self._read(obj, run_id=run_id, start=start, end=end,
                                                       parent_ids=parent_ids, with_deleted=with_deleted,
                                                       parent_objects=parent_objects)
        if by_change or by_object:
            records = self._on_migrated(obj, records, batch_size)
        if replay:
            from crm_migration.engine.replay import replayed

            records = replayed(self, obj, records, replay, run_id=run_id)
        # a deletion may carry only its id (Link app): it passes `where`; archiving looks at what it was bound to
        records = self._keyed(obj, (r for r in records if r.get("IsDeleted") or matches(obj, r)), run_id)
        full_run = run_id if start is None else None
        if staged:      # before sampling: a sampled contact's companies come from its links
            if start is not None:
                records = self._relinked(obj, records, run_id=run_id, staged=staged)
            records = self._enriched(obj, records, batch_size, staged=True, full_run=full_run)
        if sample_size:
            records = self._sample(obj, records, run_id=run_id, size=sample_size)
        if any(k != "_blob" and k not in staged for k in obj.enrich):      # the source's own: sampled records only
            records = self._enriched(obj, records, batch_size, staged=False)
        return stage_stream(self.state, records, run_id=run_id, pair=self.pair, source_object=name,
                            batch_size=batch_size, id_field="_source_id", log=self.log,
                            deleted=lambda r: bool(r.get("IsDeleted")), volatile=_volatile(obj))

    def _lists_first(self, obj: ObjectSpec) -> bool:
        """Whether a full read of ``obj`` may list ids and modification stamps first (:meth:`_extract_listed`): a
        source that lists them cheaply, an object read by its own key with no enrichment but a file's bytes (which
        the load fetches), alone on its stream."""
        stream = obj.stream
        pk = str(stream.get("primary_key") or "Id")
        return (bool(getattr(self.source, "lists_stamps", False)) and stream.get("kind", "soql") == "soql"
                and bool(stream.get("replication_key", "SystemModstamp")) and not self.source.needs_parents(obj)
                and obj.target.id_template == f"{{{pk}}}" and not any(k != "_blob" for k in obj.enrich)
                and len(self.siblings(obj)) < 2)

    def _extract_listed(self, obj: ObjectSpec, *, run_id: str, end: datetime,
                        batch_size: int) -> list[BatchRef] | None:
        """A full read of an object that landed before: its ids, modification stamps and parents' fields first (one
        narrow listing: what can change a record without changing its stamp is listed too), then the records new
        or changed since the run that last wrote them staged them, in full, by id; the others are staged again from
        that version inside the state DB (:meth:`MigrationStateHook.stage_landed`), and the load finds them
        unchanged (or maps them again: a flag a later run may clear, an open dead letter) as before. ``None``: read it whole instead (nothing of it landed yet, or a tenth of it or more changed:
        paging through it asks fewer queries than reading those by id)."""
        from crm_migration.engine.completeness import id_fields

        scope = self.target(obj.name).source_object
        if not self.state.get_first(f"SELECT 1 FROM {SCHEMA}.crosswalk WHERE pair = %s AND source_object = %s "
                                    "LIMIT 1", parameters=(self.pair, scope)):
            return None
        started = time.perf_counter()
        pk = str(obj.stream.get("primary_key") or "Id")
        rk = str(obj.stream.get("replication_key", "SystemModstamp"))
        fields = self.source.read_fields(obj)
        narrow = [*id_fields(obj), rk, *(f for f in fields if "." in f)]
        same: set[str] = set()
        fetch: list[str] = []               # new or changed, and the unkeyed (the extraction dead-letters them)
        listed: dict[str, dict[str, Any]] = {}
        total = 0

        def compare() -> None:              # per 5,000 listed: memory holds ids, not records
            found = set(self.state.landed_as_listed(run_id=run_id, pair=self.pair, source_object=obj.name,
                                                    scope=scope, fields=fields, listed=listed))
            same.update(found)
            fetch.extend(sid for sid in listed if sid not in found)
            listed.clear()

        for r in self.source.id_records(obj, fields=narrow, end=end):
            if r.get("IsDeleted") or not matches(obj, r):
                continue
            total += 1
            try:
                listed[obj.source_id(r)] = r
            except KeyError:
                fetch.append(str(r[pk]))
            if len(listed) >= 5000:
                compare()
        compare()
        if fetch and len(fetch) * 10 >= total:
            self.log.info("%s: %d of %d records new or changed since the run that last wrote them: read whole", obj.name, len(fetch),
                          total)
            return None
        refs: list[BatchRef] = [{"source_object": obj.name, "batch_no": b["batch_no"], "count": b["count"], "of": 0}
                                for b in self.state.stage_landed(run_id=run_id, pair=self.pair, source_object=obj.name,
                                                                 scope=scope, source_ids=sorted(same), first_batch=0,
                                                                 batch_size=batch_size)]
        records = self.source.records_by_id(obj, fetch) if fetch else None
        if records is not None:
            keyed = self._keyed(obj, (r for r in records if matches(obj, r)), run_id)
            refs += stage_stream(self.state, keyed, run_id=run_id, pair=self.pair, source_object=obj.name,
                                 batch_size=batch_size, id_field="_source_id", log=self.log, volatile=_volatile(obj),
                                 first_batch=len(refs))
        for ref in refs:
            ref["of"] = len(refs)
        self.log.info("%s: %d records listed by id and %s; %d unchanged since the run that last wrote them, staged "
                      "again from the state DB, %d read in full (%.1f s)", obj.name, total, rk, len(same), len(fetch),
                      time.perf_counter() - started)
        return refs

    def siblings(self, obj: ObjectSpec) -> list[str]:
        """The loadable objects that read the same source stream as ``obj`` (one resource split by ``where``
        into several models: Link app's activities -> messages, activities, meetings), in load order."""
        return [o.name for o in self.spec.loadable() if o.stream_key == obj.stream_key]

    def _read(self, obj: ObjectSpec, *, run_id: str, start: datetime | None, end: datetime,
              parent_ids: list[str] | None, with_deleted: bool,
              parent_objects: list[str] | None = None) -> Iterable[dict[str, Any]]:
        """The object's source records of the window: from the source, or, when other objects read the same
        stream, from the run's one read of it (the first of them to extract stages the stream whole under
        ``<source object>:read``; the others read it back from the staging table, not from the source)."""
        if start is not None and start >= end:
            self.log.info("%s: the window [%s, %s) is empty: nothing to read", obj.name, start.isoformat(),
                          end.isoformat())
            return iter(())
        if parent_objects is not None:
            return self.source.records(obj, start=start, end=end, parent_objects=parent_objects,
                                       with_deleted=with_deleted)
        if parent_ids is not None or self.source.needs_parents(obj) or len(self.siblings(obj)) < 2:
            return self.source.records(obj, start=start, end=end, parent_ids=parent_ids, with_deleted=with_deleted)
        return self._read_once(obj, run_id=run_id, start=start, end=end, with_deleted=with_deleted)

    def _read_once(self, obj: ObjectSpec, *, run_id: str, start: datetime | None, end: datetime,
                   with_deleted: bool) -> Iterable[dict[str, Any]]:
        scope = f"{obj.source_object}:read"
        done = self.state.staged_batches(run_id=run_id, pair=self.pair, source_object=f"{scope}:done")
        if not done:
            rows = self.source.records(obj, start=start, end=end, with_deleted=with_deleted)
            stage_stream(self.state, self._keyed(obj, rows, run_id), run_id=run_id, pair=self.pair,
                         source_object=scope, batch_size=1000, id_field="_source_id", log=self.log,
                         deleted=lambda r: bool(r.get("IsDeleted")))
            self.state.stage(run_id=run_id, pair=self.pair, source_object=f"{scope}:done", batch_no=0,
                             rows=[{"source_id": "done", "record": {"read_by": obj.name}}])
        else:
            self.log.info("%s: %s read once in this run (by %s); taken from the staging table", obj.name,
                          obj.source_object, ", ".join(n for n in self.siblings(obj) if n != obj.name))
        for b in self.state.staged_batches(run_id=run_id, pair=self.pair, source_object=scope):
            for row in self.state.read_batch(run_id=run_id, pair=self.pair, source_object=scope,
                                             batch_no=b["batch_no"]):
                yield row["record"]

    def _keyed(self, obj: ObjectSpec, records: Iterable[dict[str, Any]], run_id: str) -> Iterable[dict[str, Any]]:
        """Give each record its source id (``_source_id``); a record that has none is dead-lettered."""
        for r in records:
            try:
                r["_source_id"] = obj.source_id(r)
            except KeyError as exc:
                rid = str(r.get("Id") or r.get("id") or "?")
                reason = f"no value for {exc.args[0]}, part of the record's key {obj.target.key}"
                self.log.warning("%s %s: %s; dead-lettered", obj.name, rid, reason)
                self.state.record_batch(run_id=run_id, pair=self.pair, source_object=obj.key_object,
                                        odoo_model=obj.model or "", dead_letters=[
                                            {"source_id": rid, "field": str(exc.args[0]), "reason": reason,
                                             "record": _small(r)}])
                continue
            yield r

    def _enriched(self, obj: ObjectSpec, records: Iterable[dict[str, Any]], size: int, *, staged: bool,
                  full_run: str | None = None) -> Iterable[dict[str, Any]]:
        buf: list[dict[str, Any]] = []
        for r in records:
            buf.append(r)
            if len(buf) >= size:
                yield from self._enrich(obj, buf, staged=staged, full_run=full_run)
                buf = []
        if buf:
            yield from self._enrich(obj, buf, staged=staged, full_run=full_run)

    def _enrich(self, obj: ObjectSpec, records: list[dict[str, Any]], *, staged: bool,
                full_run: str | None) -> list[dict[str, Any]]:
        """Attach the enrichments of a batch: the source's own (``staged`` false: a sub-query per 200 parents),
        or the staged ones (``staged: true`` in the file) from the staging table, one query per enrichment for
        the whole batch: in a full read the children staged in this run, in a delta each child's latest
        staged version."""
        if not staged:
            return self.source.enrich_children(obj, records)
        for name, spec in _staged_enrichments(obj).items():
            match, fields = str(spec["match"]), [str(f) for f in spec.get("fields") or ()]
            found = self.state.staged_children(pair=self.pair, source_object=str(spec["object"]), match=match,
                                               parent_ids=[r["_source_id"] for r in records], run_id=full_run)
            for r in records:
                rows = found.get(r["_source_id"], [])
                r[name] = [{f: row.get(f) for f in fields} for row in rows] if fields else rows
        return records

    def _stage_children(self, name: str, *, run_id: str, start: datetime | None, end: datetime, batch_size: int,
                        with_deleted: bool) -> list[BatchRef]:
        """Stage the records of object ``name`` of the window (deletions too in a delta) for the objects that
        take them from the staging table (``enrich: {<name>: {object, match, staged: true}}``)."""
        obj = self.spec.object(name)
        empty = start is not None and start >= end
        records = iter(()) if empty else self.source.records(obj, start=start, end=end, with_deleted=with_deleted)
        return stage_stream(self.state, self._keyed(obj, records, run_id), run_id=run_id, pair=self.pair,
                            source_object=name, batch_size=max(batch_size, 1000), id_field="_source_id",
                            log=self.log, deleted=lambda r: bool(r.get("IsDeleted")))

    def _relinked(self, obj: ObjectSpec, records: Iterable[dict[str, Any]], *, run_id: str,
                  staged: Mapping[str, Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
        """A delta's records, then those whose staged children changed in the window while they did not (a
        contact whose primary link moved): taken again from their latest staged version, with no request, so
        what they take from their children is mapped afresh."""
        seen: set[str] = set()
        for r in records:
            seen.add(r["_source_id"])
            yield r
        parents: set[str] = set()
        for spec in staged.values():
            parents |= self.state.staged_parents(run_id=run_id, pair=self.pair, source_object=str(spec["object"]),
                                                 match=str(spec["match"]))
        again = self.state.latest_staged(pair=self.pair, source_object=obj.name, source_ids=parents - seen,
                                         exclude_run=run_id)
        if again:
            self.log.info("%s: %d records mapped again because their %s changed in the window", obj.name,
                          len(again), ", ".join(staged))
        for sid in sorted(again):
            yield {**again[sid], "_source_id": sid}

    def _on_migrated(self, obj: ObjectSpec, records: Iterable[dict[str, Any]], size: int) -> Iterable[dict[str, Any]]:
        """The records (deletions too) hanging on a record the crosswalk knows, as a read by parent ids keeps them:
        one state-DB query per attach_to object per ``size`` records."""
        names = obj.attach.objects if obj.attach else ()
        sources = obj.attach.sources if obj.attach else ()
        buf: list[dict[str, Any]] = []

        def kept() -> Iterable[dict[str, Any]]:
            wanted = {str(v) for r in buf for p in sources if (v := get_path(r, p))}
            known: set[str] = set()
            for name in names:
                known |= set(self.state.odoo_ids(self.pair, self.spec.object(name).key_object, sorted(wanted)))
            return [r for r in buf if any(str(get_path(r, p)) in known for p in sources)]

        for r in records:
            buf.append(r)
            if len(buf) >= size:
                yield from kept()
                buf = []
        if buf:
            yield from kept()

    def _parent_ids(self, obj: ObjectSpec, sample_run: str | None) -> list[str]:
        """Source ids of the records files/notes can hang on (the attach_to objects), from the state DB."""
        names = obj.attach.objects if obj.attach else ()
        out: list[str] = []
        for name in names:
            if sample_run:
                rows = self.state.get_records(
                    f"SELECT source_id FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s AND source_object = %s",
                    parameters=(sample_run, self.pair, name))
            else:
                rows = self.state.get_records(
                    f"SELECT source_id FROM {SCHEMA}.crosswalk WHERE pair = %s AND source_object = %s",
                    parameters=(self.pair, self.spec.object(name).key_object))
            out.extend(r[0] for r in rows)
        return out

    def _sample(self, obj: ObjectSpec, records: Iterable[dict[str, Any]], *, run_id: str,
                size: int) -> Iterable[dict[str, Any]]:
        """Keep up to ``size`` records whose references (to sampled objects) are in the sample."""
        staged: dict[str, set[str]] = {}

        def in_sample(name: str) -> set[str]:
            if name not in staged:
                staged[name] = {r[0] for r in self.state.get_records(
                    f"SELECT source_id FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s AND source_object = %s",
                    parameters=(run_id, self.pair, name))}
            return staged[name]

        kept = 0
        loadable = {o.name for o in self.spec.loadable()}
        for r in records:
            if kept >= size:
                return
            needs = refs_needed(obj, [r])
            ok = all(not ids or name == obj.name or name not in loadable or (ids & in_sample(name))
                     for name, ids in needs.items())
            if ok:
                kept += 1
                yield r

    # ---- what landed: known before any download or mapping ------------------------------------------------

    def fingerprint(self, name: str, run_id: str | None = None) -> str:
        """The mapping in force for object ``name``, as a short hash: its spec, the pair's settings and lookups,
        the target's version, and the owner map when its fields look owners up (an owner given an Odoo user
        later maps again). The crosswalk records ``<fingerprint>:<md5 of the staged record>`` of what landed,
        so a record is mapped again when its source changed *or* the mapping did. With ``run_id`` it is remembered
        for that run's later batches (a run loads an object once what it reads through has landed; another run, or
        a step before the loads, takes it afresh)."""
        if run_id is None or (run_id, name) not in self._fingerprints:
            obj = self.spec.object(name)
            parts: list[Any] = [obj, self.spec.settings, self.spec.lookups, self.spec.target_version]
            looked_up = {f.lookup for f in obj.fields.values() if f.lookup}
            if looked_up & {"owner", "owner_partner"}:
                parts.append(sorted((str(k), repr(v)) for k, v in self.owners.items()))
            parts += self._read_through(obj)
            tag = hashlib.sha1(repr(parts).encode()).hexdigest()[:12]  # noqa: S324 - a tag
            if run_id is None:
                return tag
            self._fingerprints[(run_id, name)] = tag
        return self._fingerprints[(run_id, name)]

    @cached_property
    def _fingerprints(self) -> dict[tuple[str, str], str]:
        return {}

    def _read_through(self, obj: ObjectSpec) -> list[Any]:
        """What ``obj``'s ``=field.odoo_field`` paths read, for its fingerprint: per path through a ref, that field of
        every record the pair keyed for the referenced object (a stage's probability changed in the source, its
        deals are mapped again though they did not change); per path through a lookup, that field of every record
        of the lookup's model, archived ones too (any of them may be the one found: an owner renamed in Odoo, the
        records that read the name are mapped again). One ``search_read`` per path."""
        out: list[Any] = []
        for fspec in obj.fields.values():
            for path, (through, model, odoo_field) in sorted(fspec.via.items()):
                ref = obj.fields[through].ref
                if len(ref) == 1:
                    pattern = f"{self.spec.source}:{self.spec.object(ref[0]).key_object}:%"
                    domain: list[Any] = [("x_migration_key", "=like", pattern)]
                else:                               # through a lookup: records the pair does not key
                    domain = []
                rows = self.odoo.search_read(model, domain, [odoo_field], context={"active_test": False})
                out.append((path, sorted((r["id"], repr(_odoo_value(r.get(odoo_field)))) for r in rows)))
        return out

    def _known(self, name: str, run_id: str | None) -> tuple[str, str]:
        """``(crosswalk scope, fingerprint)`` of object ``name`` in ``run_id``: what a batch read compares with."""
        return self.target(name).source_object, self.fingerprint(name, run_id)

    def _record_unchanged(self, name: str | None, unchanged: list[dict[str, Any]], *, run_id: str) -> None:
        """Audit ``skip`` rows for the staged records a batch read found unchanged (one statement); ``name``: the
        object, None for a timeline batch (each row names its object)."""
        scopes = {n: self.target(n).source_object for n in {name or u["object"] for u in unchanged}}
        model = self.spec.object(name).model if name else "mail.message"
        self.state.record_batch(run_id=run_id, pair=self.pair, source_object=next(iter(scopes.values())),
                                odoo_model=model or "",
                                audit=[{"source_object": scopes[name or u["object"]], "source_id": u["source_id"],
                                        "action": "skip"} for u in unchanged])

    # ---- load -----------------------------------------------------------------------------------------------

    def self_ref_fields(self, obj: ObjectSpec) -> list[str]:
        """Fields referring to the object itself (a company's parent): sent with a new record's create when its
        parent is in Odoo by then (:meth:`hierarchy_field`), else written by :meth:`link` afterwards."""
        return [f for f, fs in obj.fields.items() if obj.name in fs.ref]

    def hierarchy_field(self, obj: ObjectSpec) -> tuple[str, str] | None:
        """``(Odoo field, source field)`` of the object's hierarchy loaded parents first (``hierarchy`` with
        ``load_by_level``: its batches in level order, a new record created with its parent); None without one."""
        h = obj.hierarchy
        if h is None or not h.load_by_level:
            return None
        return next(((f, h.parent_field) for f in self.self_ref_fields(obj)
                     if tuple(obj.fields[f].sources[:1]) == (h.parent_field,)), None)

    def _parents_on_create(self, name: str, records: Sequence[Mapping[str, Any]], rows: list[Any]) -> int:
        """Give the batch's rows their parent for the case they are created (returns how many got one).

        A record being created cannot close a cycle in Odoo (nothing points at it yet), so a new record takes its
        parent in its create: a parent already in Odoo (an earlier batch or run) by id (``on_create``), a new one
        of this batch by its row (``after``: the loader creates it a level later, with that row's new id). Cycles
        within the batch are cut first, as :meth:`link` cuts them over the run; the rest (an update's parent, a
        parent not in Odoo yet, a cut link) :meth:`link` writes. On Odoo 17 a parent without any address takes the
        address of its first child created with one (``_handle_first_contact_creation``, loader trap 4's sibling):
        such a child waits for :meth:`link` too, which writes its parent without that effect.
        """
        obj = self.spec.object(name)
        hf = self.hierarchy_field(obj)
        if hf is None:
            return 0
        field, src = hf
        edges, _cut = break_cycles([{"Id": obj.source_id(r), src: get_path(r, src)} for r in records], "Id", src)
        parent_of = {e["Id"]: str(e[src]) for e in edges if e.get(src) not in (None, "")}
        new = {row["source_id"]: row for row in rows if not row.get("error")}
        bound = self.state.lookup(self.pair, self.target(name).source_object, sorted(set(parent_of.values())))
        first_child_trap = obj.model == "res.partner" and (self.spec.target_version or 0) < 19
        sent = 0
        for sid, row in new.items():
            parent = parent_of.get(sid)
            if parent in bound:
                parent_address = any(bound[parent].written.get(f) for f in T.ADDRESS_FIELDS)
            elif parent in new:
                parent_address = any(new[parent]["values"].get(f) for f in T.ADDRESS_FIELDS)
            else:
                continue            # no parent, or one not in Odoo yet (a later batch): link writes it
            if first_child_trap and not parent_address and any(row["values"].get(f) for f in T.ADDRESS_FIELDS):
                continue
            if parent in bound:
                row["on_create"] = {field: bound[parent].odoo_id}
            else:
                row["after"] = (field, parent)
            sent += 1
        return sent

    def load_spec(self, name: str) -> ObjectSpec:
        """The object as a batch load maps it: without its self-references (a new record's parent is added to its
        create by :meth:`_parents_on_create`, the others are written by :meth:`link`)."""
        obj = self.spec.object(name)
        self_refs = self.self_ref_fields(obj)
        if not self_refs:
            return obj
        return replace(obj, fields=MappingProxyType({k: v for k, v in obj.fields.items() if k not in self_refs}))

    def mapped_rows(self, name: str, records: list[dict[str, Any]], *,
                    source_hashes: Mapping[str, str | None] | None = None,
                    downloaded: Sequence[tuple[bytes | MissingFile | None, str]] | None = None,
                    refs: StaticRefs | None = None) -> tuple[ObjectSpec, list[Any], dict[str, str]]:
        """Map staged records exactly as a load does: file bytes attached (downloaded concurrently,
        :meth:`download`), references pre-fetched.

        :param source_hashes: ``{source id: source hash}`` of the staged records: each row carries its own, which
            the load records with what landed (a row flagged on a reference or a lookup none: it is mapped again
            next time, what was missing may be there by then).
        :param downloaded: the records' files as :meth:`download` returns them, already fetched (a load streams
            its batch's files part by part, :meth:`_file_parts`); else they are downloaded here.
        :param refs: the references of these records, already fetched (:meth:`refs_for`, once per batch).
        :return: ``(object spec used, loader rows, {source id: sha1 of its file's bytes})``; a row whose field is
            the file's base64 carries that sha1 as the field's canonical value (``digests``: not decoded again).
        """
        obj = self.load_spec(name)
        files: dict[str, str] = {}
        gone: dict[str, MissingFile] = {}
        if "_blob" in obj.enrich:
            for r, (data, sha1) in zip(records, self.download(obj, records) if downloaded is None else downloaded,
                                       strict=True):
                if isinstance(data, MissingFile):    # not empty bytes: dead-lettered below, the rest goes on
                    gone[r["_source_id"]] = data
                    data = None
                r["_blob"] = data if data is not None else b""
                if r["_source_id"] not in gone:
                    files[r["_source_id"]] = sha1
        as_base64 = [f for f, fs in obj.fields.items()
                     if fs.sources == ("_blob",) and [step.name for step in fs.fn] == ["base64"]]
        rows = map_batch(obj, records, self.refs_for(obj, records) if refs is None else refs)
        for row in rows:
            row["record"] = _small(row.get("record") or {})
            if source_hashes is not None:
                row["source_hash"] = "" if _may_resolve(obj, row) else (source_hashes.get(row["source_id"]) or "")
            if missing := gone.get(row["source_id"]):
                row["record"]["_blob"] = f"<missing: HTTP {missing.status}>"
                if not row.get("error"):
                    row["error"] = _missing_file(obj, row, missing)
            elif as_base64 and files.get(row["source_id"], _EMPTY_SHA1) != _EMPTY_SHA1:
                row["digests"] = dict.fromkeys(as_base64, f"sha1:{files[row['source_id']]}")
        return obj, rows, files

    def download(self, obj: ObjectSpec, records: Sequence[Mapping[str, Any]]
                 ) -> list[tuple[bytes | MissingFile | None, str]]:
        """The files of a batch's records, in their order: ``(bytes, or MissingFile, or None without a file;
        the sha1 of the bytes)``. Up to the source's ``download_workers`` at a time (the connection's
        ``extra.download_workers``, 8): each download is a round trip to a CDN or to Salesforce. An error other
        than a missing file stops the batch (the downloads not started are cancelled) and the task's rerun starts
        it again."""
        with closing(self._downloads(obj, [records])) as parts:
            return next(parts)

    def _mapped_parts(self, name: str, obj: ObjectSpec, records: list[dict[str, Any]],
                      hashes: Mapping[str, str | None], refs: StaticRefs
                      ) -> Iterator[tuple[list[dict[str, Any]], ObjectSpec, list[Any], dict[str, str]]]:
        """A batch's records mapped, in the parts a load creates one after the other: ``(records, object spec
        used, loader rows, {source id: sha1 of its file})`` (:meth:`mapped_rows`).

        Files: each part mapped when its downloads are in, the next part downloading while the caller loads this
        one (:meth:`_file_parts`). Other records: a first part of a tenth of the batch (:data:`MAP_AHEAD_FIRST`
        at least), then the rest mapped in a thread while the caller loads that first part, so mapping the rest
        waits on nothing (Odoo's create of a record costs about ten times its mapping). A hierarchy loaded with
        its parents (:meth:`hierarchy_field`) stays one part: its rows come in no set order within the batch, and a
        child in an earlier part than its parent would wait for the link pass instead of taking its parent in its
        create. So does a model this server creates in rounds (:meth:`OdooHook.create_apart`: Odoo 17's open tasks,
        light to map): a second part would double its rounds and their checks, which costs more than the mapping
        it hides. The thread's own calls to Odoo or the state DB (a reference the batch did not prefetch) take
        :attr:`_hooks`, which the caller holds while it loads."""

        def mapped(part: list[dict[str, Any]], downloaded: Any = None
                   ) -> tuple[list[dict[str, Any]], ObjectSpec, list[Any], dict[str, str]]:
            spec, rows, files = self.mapped_rows(name, part, source_hashes=hashes, downloaded=downloaded, refs=refs)
            for r in part:                  # the file is in its row now (base64): its bytes not held twice
                r.pop("_blob", None)
            return part, spec, rows, files

        if "_blob" in obj.enrich:
            with closing(self._file_parts(obj, records)) as parts:
                for part, downloaded in parts:
                    got = mapped(part, downloaded)
                    del downloaded          # the bytes are in the rows now (base64): not held twice
                    yield got
                    del got
            return
        first = max(MAP_AHEAD_FIRST, len(records) // 10)
        if (self.hierarchy_field(self.spec.object(name)) is not None or len(records) < 2 * first
                or self.odoo.create_apart(self.target(name).model)):
            yield mapped(records)
            return
        head = mapped(records[:first])
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"map-{name}")
        try:
            rest = ahead.submit(mapped, records[first:])    # submitted before the head is handed over: mapped
            yield head                                      # while the caller loads the head
            del head
            yield rest.result()
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)

    def _file_parts(self, obj: ObjectSpec, records: list[dict[str, Any]]
                    ) -> Iterator[tuple[list[dict[str, Any]], list[tuple[bytes | MissingFile | None, str]] | None]]:
        """A batch's records in the parts a load creates one after the other, each with its files: ``(records,
        downloads)``; one part without downloads for an object without files.

        The next part's files download while the current part is mapped and created in Odoo (the downloads wait
        on the source, a CDN's round trip or Salesforce, the create on Odoo: each hides the other), so only the
        first part's downloads are waited for: it is small (two rounds of ``download_workers``), each next part
        at most :data:`PART_GROWTH` times the one before, up to :data:`FILES_PER_PART`. At most two parts' bytes
        are held at once (the one loading, the one downloading): never more than the batch's."""
        if "_blob" not in obj.enrich or not records:
            yield records, None
            return
        parts, size, at = [], 2 * self.source.download_workers, 0
        while at < len(records):
            parts.append(records[at:at + size])
            at += size
            size = min(FILES_PER_PART, math.ceil(size * PART_GROWTH))
        with closing(self._downloads(obj, parts)) as downloads:
            yield from zip(parts, downloads, strict=True)

    def _downloads(self, obj: ObjectSpec, parts: Sequence[Sequence[Mapping[str, Any]]]
                   ) -> Iterator[list[tuple[bytes | MissingFile | None, str]]]:
        """The files of each part in turn (as :meth:`download`); the next part's downloads start as soon as a
        part is handed over, so they run while the caller works on it. Closing the generator cancels the
        downloads not started and waits for those under way."""

        def fetch(record: Mapping[str, Any]) -> tuple[bytes | MissingFile | None, str]:
            data = self.source.blob(obj, record)
            raw = data if isinstance(data, bytes) else b""
            return data, hashlib.sha1(raw).hexdigest()  # noqa: S324 - Odoo's own checksum is sha1

        workers = min(self.source.download_workers, max(len(p) for p in parts) if parts else 0)
        if workers <= 1:
            for part in parts:
                yield [fetch(r) for r in part]
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"download-{obj.name}")
        try:
            pending = [pool.submit(fetch, r) for r in parts[0]]
            for i in range(len(parts)):
                got = [f.result() for f in pending]
                pending = [pool.submit(fetch, r) for r in parts[i + 1]] if i + 1 < len(parts) else []
                yield got
                del got                 # this part is the caller's now: two parts' bytes at most
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def cut_links(self, name: str, *, run_id: str) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """Per self-reference field: ``(edges after cycles are broken, the cut report)`` of the run's records."""
        obj = self.spec.object(name)
        out = {}
        for field in self.self_ref_fields(obj):
            src_field = obj.fields[field].sources[0]
            rows = self.state.get_records(
                f"SELECT source_id, record->>%s FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s "
                "AND source_object = %s AND NOT deleted", parameters=(src_field, run_id, self.pair, name))
            edges: list[dict[str, Any]] = [{"Id": sid, src_field: parent} for sid, parent in rows]
            cut: list[dict[str, Any]] = []
            if obj.hierarchy and obj.hierarchy.break_cycles:
                edges, report = break_cycles(edges, "Id", src_field)
                cut = [dict(r) for r in report]
            out[field] = (edges, cut)
        return out

    def load(self, name: str, *, run_id: str, batch_no: int, dry_run: bool = False, of: int | None = None) -> LoadResult:
        """Map one staged batch and load it; verify file checksums for attachments."""
        started = time.perf_counter()
        obj = self.spec.object(name)
        staged = self.newest_only(name, run_id, self.state.read_batch(run_id=run_id, pair=self.pair,
                                                                     source_object=name, batch_no=batch_no,
                                                                     known=self._known(name, run_id)))
        unchanged = [s for s in staged if s["unchanged"]]
        if unchanged and not dry_run:
            self._record_unchanged(name, unchanged, run_id=run_id)
        staged = [s for s in staged if not s["unchanged"]]
        records = [s["record"] for s in staged if not s["deleted"]]
        if len(records) < len(staged) and not dry_run:
            self._archive(name, [s["source_id"] for s in staged if s["deleted"]], run_id=run_id)
        if not records:
            result = _empty_result(name, obj.model or "", len(staged) + len(unchanged))
            if unchanged:
                result["skipped"] = len(unchanged)
                self.log.info("%s batch %d: %d records unchanged in the source since they landed: nothing fetched "
                              "or mapped", name, batch_no, len(unchanged))
            return result
        self.ensure_lookup_records(obj, records, run_id=run_id, dry_run=dry_run)
        hashes = {s["source_id"]: s["source_hash"] for s in staged}
        load_obj = self.load_spec(name)
        refs = self.refs_for(load_obj, records)
        result: LoadResult | None = None
        landed: dict[str, str] = {}         # {source id: sha1} of the files of the parts loaded
        verify = not dry_run and self.target(name).model == "ir.attachment"
        try:
            with closing(self._mapped_parts(name, load_obj, records, hashes, refs)) as parts:
                for part, obj, rows, files in parts:
                    with self._hooks:       # the next part's mapping may ask Odoo or the state DB: not meanwhile
                        self._extend_selections(obj, rows, dry_run=dry_run)
                        self._parents_on_create(name, part, rows)
                        self._flag_open_on_archived(name, rows)
                        done = load_batch(self.odoo, self.state, self.target(name), rows, run_id=run_id,
                                          dry_run=dry_run, log=self.log)
                    del rows
                    landed.update(files)
                    result = done if result is None else _added(result, done)
        except Exception:
            if verify and landed:       # the parts that landed are checked all the same: a rerun skips them
                with suppress(CrmMigrationError):
                    self._verify_checksums(name, run_id, landed)
            raise
        if verify and landed:
            self._verify_checksums(name, run_id, landed)
        assert result is not None       # noqa: S101 - records is not empty: one part at least
        if unchanged:
            result = {**result, "rows": result["rows"] + len(unchanged),
                      "skipped": result["skipped"] + len(unchanged)}
        self.log.info("%s batch %d%s done in %.2f s", name, batch_no, f" ({batch_no + 1} of {of})" if of else "",
                      time.perf_counter() - started)
        return result

    def _flag_open_on_archived(self, name: str, rows: list[Any]) -> int:
        """Flag an activity object's rows whose record is archived in Odoo, on a server that deletes the activities
        of a record when it is archived (Odoo 17: :meth:`OdooHook.archive_deletes_activities`; a deal lost before
        the migration): Odoo 17 keeps an activity created on an archived record (checked on the real server), so it
        lands as the source has it, but the next archive of that record deletes it (a run that archives it keeps it
        in its rollback manifest, the reconciliation names it). Returns the rows flagged."""
        if self.target(name).model != "mail.activity" or not self.odoo.archive_deletes_activities():
            return 0
        on: dict[int, set[int]] = {}
        for row in rows:
            vals = row.get("values") or {}
            if not row.get("error") and vals.get("res_model_id") and vals.get("res_id"):
                on.setdefault(int(vals["res_model_id"]), set()).add(int(vals["res_id"]))
        if not on:
            return 0
        models = {m["id"]: m["model"] for m in self.odoo.read("ir.model", sorted(on), ["model"])}
        archived: set[tuple[int, int]] = set()
        for mid, ids in on.items():
            model = models.get(mid)
            if model and self.odoo.archive_deletes_activities(self.odoo.fields_get(model)):
                archived |= {(mid, r["id"]) for r in self.odoo.read(model, sorted(ids), ["active"],
                                                                    context={"active_test": False})
                             if r.get("active") is False}
        flagged = 0
        for row in rows:
            vals = row.get("values") or {}
            at = (int(vals.get("res_model_id") or 0), int(vals.get("res_id") or 0))
            if row.get("error") or at not in archived:
                continue
            row.setdefault("warnings", []).append((
                "res_id", f"open activity on an archived record ({models[at[0]]} {at[1]}): this Odoo version (17) "
                          "deletes the activities of a record when it is archived; created on the archived record, "
                          "where Odoo keeps it until the record is archived again (a run that archives it keeps it "
                          "for its rollback)"))
            flagged += 1
        if flagged:
            self.log.info("%s: %d open activities are on records archived in Odoo: created there and flagged (this "
                          "Odoo version deletes them when their record is archived again)", name, flagged)
        return flagged

    def _extend_selections(self, obj: ObjectSpec, rows: list[Any], *, dry_run: bool = False) -> dict[str, list[str]]:
        """A picklist value outside its options (a custom ``x_`` selection field) is a value Odoo can hold once
        the field knows it: each record carrying one is flagged (a value outside the source's options, for a field
        planned from the source's describe; else outside Odoo's), and the values Odoo's field does not have yet are
        added to it before the batch loads (:meth:`extend_picklists` added those of the run's staged records
        already, in one registry change; what is left is what it could not see). Returns ``{field: values added}``."""
        added = self._outside_options(obj, rows, flag=True)
        if added and not dry_run:
            self.odoo.add_options({obj.model or "": {f: sorted(v) for f, v in added.items()}})
            self.log.info("%s: values outside their options added to the selection: %s", obj.name,
                          "; ".join(f"{f} {', '.join(sorted(v))}" for f, v in sorted(added.items())))
        return {f: sorted(v) for f, v in added.items()}

    def _outside_options(self, obj: ObjectSpec, rows: list[Any], *, flag: bool) -> dict[str, set[str]]:
        """``{field: values}`` of the rows' custom ``x_`` selection values that Odoo's field does not have;
        ``flag``: each row holding a value outside the field's options gets a warning."""
        fields = self.odoo.fields_get(obj.model) if obj.model else {}
        selections = {f: {str(k) for k, _label in (fd.get("selection") or ())} for f, fd in fields.items()
                      if f.startswith("x_") and fd.get("type") == "selection"}
        source = {cf.name: {str(v) for v, _label in cf.selection} for plan in self.custom_field_plan.values()
                  for cf in plan if cf.model == obj.model and cf.ttype == "selection"}
        new: dict[str, set[str]] = {}
        for row in rows:
            if row.get("error"):
                continue
            for f, value in (row.get("values") or {}).items():
                if f not in selections or T._empty(value):
                    continue
                if str(value) not in selections[f]:
                    new.setdefault(f, set()).add(str(value))
                if flag and str(value) not in source.get(f, selections[f]):
                    row.setdefault("warnings", []).append(
                        (f, f"{value!r} is not one of the options of {fields[f].get('string') or f}: added to them"))
        return new

    def extend_picklists(self, names: Sequence[str], *, run_id: str, dry_run: bool = False) -> dict[str, list[str]]:
        """Add to Odoo's custom selection fields, in one call for every object of ``names`` (one registry change for
        the run, before any record is written), the values the run's staged records hold outside their options.

        Only the ``x_`` selection fields are mapped, over the staged records a load would map (not those unchanged
        since they landed). The loads then find the options there, and flag the records holding them
        (:meth:`_extend_selections`). Returns ``{"<model>.<field>": [values]}``. Safe to rerun: options already
        there are skipped."""
        options: dict[str, dict[str, set[str]]] = {}
        for name in names:
            obj = self.load_spec(name)
            if not obj.model or obj.attach is not None or not any(f.startswith("x_") for f in obj.fields):
                continue
            narrow: ObjectSpec | None = None
            batches = self.state.staged_batches(run_id=run_id, pair=self.pair, source_object=name)
            # the mapping as Odoo holds it now, not kept: the loads come after what it reads through (a deal's
            # stages) has landed, and compare with the fingerprint then
            known = self._known(name, None) if batches else None
            for batch in batches:
                staged = self.state.read_batch(run_id=run_id, pair=self.pair, source_object=name,
                                               batch_no=batch["batch_no"], known=known)
                records = [s["record"] for s in staged if not s["unchanged"] and not s["deleted"]]
                if not records:
                    continue                # nothing to map: its fields are not asked of Odoo
                if narrow is None:
                    fields = self.odoo.fields_get(obj.model)
                    narrow = replace(obj, fields=MappingProxyType({
                        f: fs for f, fs in obj.fields.items()
                        if f.startswith("x_") and (fields.get(f) or {}).get("type") == "selection"}))
                if not narrow.fields:
                    break
                rows = map_batch(narrow, records, self.refs_for(narrow, records))
                for f, values in self._outside_options(obj, rows, flag=False).items():
                    options.setdefault(obj.model or "", {}).setdefault(f, set()).update(values)
        out = {f"{m}.{f}": sorted(v) for m, fs in sorted(options.items()) for f, v in sorted(fs.items())}
        if not out:
            self.log.info("picklists: every staged value is one of its field's options; Odoo's schema unchanged")
        elif dry_run:
            self.log.info("picklists (dry run, nothing added): values outside their options: %s",
                          "; ".join(f"{k} {', '.join(v)}" for k, v in out.items()))
        else:
            self.odoo.add_options({m: {f: sorted(v) for f, v in fs.items()} for m, fs in options.items()})
            self.log.info("picklists: values outside their options added to the selections in one registry change, "
                          "before the loads: %s", "; ".join(f"{k} {', '.join(v)}" for k, v in out.items()))
        return out

    def newest_only(self, name: str, run_id: str, staged: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The staged rows of ``name`` but those a later read of the object has already written to Odoo.

        A source read returns the records as they are then: when another run read the object after this run
        did and wrote a record (a rerun of an old window's load, after the next window landed), this run's
        staged version is older than Odoo's and is skipped, not written back over it.
        """
        if not staged:
            return staged
        newer = self.state.newer_reads(run_id=run_id, pair=self.pair, source_object=name,
                                       key_object=self.target(name).source_object,
                                       source_ids=[s["source_id"] for s in staged])
        if newer:
            self.log.info("%s: %d staged records skipped: a later read already wrote a newer version (runs %s)",
                          name, len(newer), ", ".join(sorted(set(newer.values()))))
        return [s for s in staged if s["source_id"] not in newer]

    def _verify_checksums(self, name: str, run_id: str, files: Mapping[str, str]) -> None:
        """Odoo's checksum of each file against the sha1 of the bytes downloaded (``files``: by source id)."""
        target = self.target(name)
        ids = self.state.odoo_ids(self.pair, target.source_object, list(files))
        back = {r["id"]: r for r in self.odoo.read("ir.attachment", list(ids.values()), ["checksum", "file_size"])}
        bad = []
        for sid, oid in ids.items():
            want = files[sid]
            got = back.get(oid, {}).get("checksum")
            if want != _EMPTY_SHA1 and got != want:
                bad.append({"source_id": sid, "field": "datas",
                            "reason": f"checksum mismatch after upload: Odoo {got}, source {want}", "record": {}})
        if bad:
            self.state.record_batch(run_id=run_id, pair=self.pair, source_object=target.source_object,
                                    odoo_model="ir.attachment", dead_letters=bad,
                                    audit=[{"source_id": b["source_id"], "action": "error", "message": b["reason"]}
                                           for b in bad])
            self.log.warning("%s: %d files differ from the source after upload: %s", name, len(bad),
                             ", ".join(b["source_id"] for b in bad[:10]))
        else:
            self.log.info("%s: %d files verified by checksum", name, len(ids))

    def link(self, name: str, *, run_id: str, dry_run: bool = False) -> list[LinkResult]:
        """Write the self-references of an object (a company's parent) once all its records exist.

        Cycles and self-parents are broken deterministically first, over the run's records (the cut report goes
        to the audit log, see :meth:`_cut_audit`); a parent that was not migrated leaves the field empty (counted). Only
        links that differ from what the crosswalk says was written are written (a record created with its parent
        is left alone), parents first: level by level of the hierarchy after the cut, so a link cut from a record
        created with its parent is cleared before the link that would close the cycle through it (Odoo refuses
        a recursive hierarchy); within a level, grouped by value.
        """
        obj = self.spec.object(name)
        out: list[LinkResult] = []
        for field, (edges, cut) in self.cut_links(name, run_id=run_id).items():
            src_field = obj.fields[field].sources[0]
            target = self.target(name)
            wanted_parents = {e[src_field] for e in edges if e.get(src_field)}
            ids = self.state.odoo_ids(self.pair, target.source_object, [e["Id"] for e in edges] + list(wanted_parents))
            bound = self.state.lookup(self.pair, target.source_object, [e["Id"] for e in edges])
            level = _levels(edges, src_field)
            writes: dict[int, dict[int, dict[str, Any]]] = {}          # level -> {odoo id: values}
            rows: dict[int, dict[str, list[dict[str, Any]]]] = {}       # level -> links, manifest, audit rows
            missing = unchanged = 0
            for e in edges:
                sid = e["Id"]
                if sid not in bound:
                    continue
                parent = e.get(src_field)
                value = ids.get(parent, False) if parent else False
                if parent and not value:
                    missing += 1
                before = bound[sid].written.get(field, False)
                if canonical(before, "many2one") == canonical(value, "many2one"):
                    unchanged += 1
                    continue
                oid, n = bound[sid].odoo_id, level.get(sid, 0)
                writes.setdefault(n, {})[oid] = {field: value}
                at = rows.setdefault(n, {"links": [], "manifest": [], "audit": []})
                at["links"].append({"source_id": sid, "odoo_id": oid, "written": {field: value}})
                at["manifest"].append({"source_id": sid, "odoo_id": oid, "action": "updated",
                                       "prior_values": {field: canonical(before, "many2one")},
                                       "new_values": {field: value}})
                at["audit"].append({"source_id": sid, "odoo_id": oid, "action": "update",
                                    "changes": {field: {"old": before, "new": value}}})
            if not dry_run:
                cut_audit = self._cut_audit(target.source_object, cut, run_id=run_id, wrote=bool(writes))
                for n in sorted(writes):
                    self.odoo.write_batch(target.model, writes[n], context=target.ctx)
                    self.state.record_batch(run_id=run_id, pair=self.pair, source_object=target.source_object,
                                            odoo_model=target.model, links=rows[n]["links"],
                                            manifest=rows[n]["manifest"], audit=rows[n]["audit"] + cut_audit)
                    cut_audit = []
                if cut_audit:
                    self.state.record_batch(run_id=run_id, pair=self.pair, source_object=target.source_object,
                                            odoo_model=target.model, audit=cut_audit)
            written = sum(len(w) for w in writes.values())
            self.log.info("%s.%s: %d links written (%d levels), %d unchanged, %d parents not migrated, %d cycle "
                          "edges cut", name, field, written, len(writes), unchanged, missing, len(cut))
            out.append({"object": name, "field": field, "written": written, "unchanged": unchanged,
                        "cycles_cut": cut, "missing_parent": missing})
        return out

    def _cut_audit(self, scope: str, cut: Sequence[Mapping[str, Any]], *, run_id: str,
                   wrote: bool) -> list[dict[str, Any]]:
        """The audit rows of the hierarchy links cut, in a run whose link step writes links (``wrote``) or whose load
        created a record whose link is cut; once per run (a rerun of the step reports nothing twice), and not in a
        run that changed nothing of the hierarchy."""
        prefix = "hierarchy cycle broken: "
        rows = [{"source_id": c["source_id"], "action": "update", "message": f"{prefix}{c}"} for c in cut]
        if not rows:
            return []
        seen = self.state.run_audit(run_id=run_id, pair=self.pair, source_object=scope,
                                    source_ids={r["source_id"] for r in rows})
        if not wrote and not any(action == "create" for _sid, action, _msg in seen):
            return []
        reported = {(sid, msg) for sid, _action, msg in seen}
        return [r for r in rows if (r["source_id"], r["message"]) not in reported]

    # ---- delta: deletions ------------------------------------------------------------------------------------

    def archive_deleted(self, name: str, *, run_id: str, batch_no: int) -> dict[str, int]:
        """Archive in Odoo the records of a staged batch that were deleted in the source."""
        staged = self.state.read_batch(run_id=run_id, pair=self.pair, source_object=name, batch_no=batch_no)
        return self._archive(name, [s["source_id"] for s in staged if s["deleted"]], run_id=run_id)

    def _archive(self, name: str, gone: list[str], *, run_id: str) -> dict[str, int]:
        """Archive the Odoo records of ``gone`` (source ids deleted in the source)."""
        obj = self.spec.object(name)
        target = self.target(name)
        if not gone:
            return {"archived": 0, "not_migrated": 0, "cannot_archive": 0}
        bound = self.state.lookup(self.pair, target.source_object, gone)
        ids = {s: b.odoo_id for s, b in bound.items() if b.odoo_model in (None, obj.model)}
        fields = self.odoo.fields_get(obj.model)
        if "active" not in fields:
            self.log.warning("%s: %d records deleted in the source; %s cannot be archived, left as they are",
                             name, len(ids), obj.model)
            return {"archived": 0, "not_migrated": len(gone) - len(ids), "cannot_archive": len(ids)}
        if ids:
            # what Odoo resets by itself on archiving (a deal's close date, its automated probability) is part of what
            # a rollback gives back
            prior = {oid: {"active": True} for oid in ids.values()}
            derived = [f for f, triggers in DERIVED.get(obj.model, {}).items() if "active" in triggers and f in fields]
            derived += [f for f in RECOMPUTED.get(obj.model, ()) if f in fields]
            if derived:
                for rec in self.odoo.read(obj.model, list(ids.values()), derived, context={"active_test": False}):
                    prior[rec["id"]].update({f: canonical(rec[f], fields[f].get("type")) for f in derived})
            # on Odoo 17 the archive deletes the records' activities: the migrated ones are kept in the manifest
            away = (activities_archived_away(self.odoo, self.state, self.pair, obj.model, list(ids.values()))
                    if self.odoo.archive_deletes_activities(fields) else {})
            self.odoo.write_batch(obj.model, {oid: {"active": False} for oid in ids.values()}, context=target.ctx)
            self.state.record_batch(
                run_id=run_id, pair=self.pair, source_object=target.source_object, odoo_model=obj.model,
                links=[{"source_id": s, "odoo_id": o, "written": {"active": False}} for s, o in ids.items()],
                manifest=[*({"source_id": s, "odoo_id": o, "action": "archived", "prior_values": prior[o],
                             "new_values": {"active": False}} for s, o in ids.items()),
                          *(m for rows, _ in away.values() for m in rows)],
                audit=[*({"source_id": s, "odoo_id": o, "action": "archive", "message": "deleted in the source"}
                         for s, o in ids.items()), *(a for _, notes in away.values() for a in notes)])
            if away:
                self.log.info("%s: Odoo deleted %d migrated activities of the %d records archived (this version "
                              "deletes a record's activities when it is archived; a rollback creates them again)",
                              name, sum(len(rows) for rows, _ in away.values()), len(ids))
        self.log.info("%s: %d archived (deleted in the source), %d were never migrated", name, len(ids),
                      len(gone) - len(ids))
        return {"archived": len(ids), "not_migrated": len(gone) - len(ids), "cannot_archive": 0}

    # ---- the chatter timeline ---------------------------------------------------------------------------------

    def order_timeline(self, *, run_id: str, batch_size: int) -> list[BatchRef]:
        """Cut the staged records of the timeline objects into batches for :meth:`load_timeline`.

        Each record goes to the batch of the record it is posted on (a hash of its parent's source id),
        so all the messages of one deal, company or contact are in one batch and are created there in
        date order; batches can then load in parallel and in any order. Only small pointers are
        staged (object, id, date); the records stay where extraction put them. Safe to rerun: the
        run's timeline is cut afresh.
        """
        members = [o.name for o in self.spec.timeline()]
        scope = self.spec.TIMELINE
        self.state.clear_staging(run_id=run_id, pair=self.pair, source_object=scope)
        batches = {name: self.state.staged_batches(run_id=run_id, pair=self.pair, source_object=name)
                   for name in members}
        total = sum(b["count"] for bs in batches.values() for b in bs)
        n = max(1, math.ceil(total / max(1, batch_size)))
        for name in members:
            obj = self.spec.object(name)
            for b in batches[name]:
                staged = self.state.read_batch(run_id=run_id, pair=self.pair, source_object=name,
                                               batch_no=b["batch_no"])
                pointers = []
                for row in staged:
                    date, parent = timeline_position(obj, row["record"])
                    pointers.append({"source_id": f"{name}/{row['source_id']}", "deleted": row["deleted"],
                                     "batch_no": zlib.crc32((parent or row["source_id"]).encode()) % n,
                                     "record": {"o": name, "b": b["batch_no"], "id": row["source_id"], "d": date,
                                                "p": parent}})
                self.state.stage(run_id=run_id, pair=self.pair, source_object=scope, batch_no=0, rows=pointers)
        cut = self.state.staged_batches(run_id=run_id, pair=self.pair, source_object=scope)
        refs: list[BatchRef] = [{"source_object": scope, "batch_no": b["batch_no"], "count": b["count"], "of": len(cut)}
                                for b in cut]
        self.log.info("chatter timeline: %d messages of %s in %d batches (by the record they are posted on, "
                      "oldest first within each)", total, ", ".join(members) or "-", len(refs))
        return refs

    def load_timeline(self, *, run_id: str, batch_no: int, dry_run: bool = False, of: int | None = None) -> LoadResult:
        """Map and load one timeline batch in one create call, oldest first (ids follow the dates)."""
        started = time.perf_counter()
        members = [o.name for o in self.spec.timeline()]
        staged = self.state.read_timeline_batch(run_id=run_id, pair=self.pair, timeline=self.spec.TIMELINE,
                                                batch_no=batch_no, known={n: self._known(n, run_id) for n in members})
        # unchanged, and so is everything posted on the same record: no record read, nothing mapped or compared
        unchanged = [s for s in staged if s["unchanged"] and s["record"] is None]
        if unchanged and not dry_run:
            self._record_unchanged(None, unchanged, run_id=run_id)
        staged = [s for s in staged if not (s["unchanged"] and s["record"] is None)]
        for name in {s["object"] for s in staged}:
            keep = {s["source_id"] for s in self.newest_only(name, run_id, [s for s in staged if s["object"] == name])}
            staged = [s for s in staged if s["object"] != name or s["source_id"] in keep]
        gone: dict[str, list[str]] = {}
        live: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for pos, s in enumerate(staged):
            if s["deleted"]:
                gone.setdefault(s["object"], []).append(s["source_id"])
            else:
                live.setdefault(s["object"], []).append((pos, s))
        if not dry_run:
            for name, ids in gone.items():
                self._archive(name, ids, run_id=run_id)
        placed: list[tuple[int, Row]] = []
        for name, items in live.items():
            _obj, rows, _blobs = self.mapped_rows(name, [s["record"] for _, s in items],
                                                  source_hashes={s["source_id"]: s["source_hash"] for _, s in items})
            target = self.target(name)
            for (pos, _), row in zip(items, rows, strict=True):
                row["target"] = target
                placed.append((pos, row))
        placed.sort(key=lambda p: p[0])
        if not placed:
            result = _empty_result(self.spec.TIMELINE, "mail.message", len(staged) + len(unchanged))
            result["skipped"] = len(unchanged)
            self.log.info("chatter batch %d: %d messages unchanged in the source since they landed: nothing mapped",
                          batch_no, len(unchanged))
            return result
        first = placed[0][1]["target"]          # any member's target: the batch's pair, model and context
        result = load_batch(self.odoo, self.state, first, [row for _, row in placed], run_id=run_id,
                            dry_run=dry_run, log=self.log, order_group=_posted_on)
        if unchanged:
            result = {**result, "rows": result["rows"] + len(unchanged),
                      "skipped": result["skipped"] + len(unchanged)}
        self.log.info("chatter batch %d%s done in %.2f s (%s)", batch_no, f" ({batch_no + 1} of {of})" if of else "",
                      time.perf_counter() - started,
                      ", ".join(f"{name} {len(items)}" for name, items in live.items()))
        return {**result, "source_object": self.spec.TIMELINE}


#: The most files a load creates in one Odoo call, and how much bigger than the one before a part may be: the next
#: part downloads while one is created (:meth:`Pipeline._file_parts`), in about the time Odoo takes to create it
FILES_PER_PART, PART_GROWTH = 250, 2.5
#: The fewest records in the first part of a batch whose rest is mapped while that part loads
#: (:meth:`Pipeline._mapped_parts`); a batch under twice this is one part
MAP_AHEAD_FIRST = 25

_EMPTY_SHA1 = hashlib.sha1(b"").hexdigest()  # noqa: S324 - an empty file: Odoo keeps no checksum for it


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(microsecond=0)


def _staged_enrichments(obj: ObjectSpec) -> dict[str, Mapping[str, Any]]:
    """The object's enrichments taken from the staging table (``staged: true``): children a source lists
    only by date (Link app's contact_companies), staged before the object and matched to it by a field."""
    return {k: v for k, v in obj.enrich.items() if k != "_blob" and isinstance(v, Mapping) and v.get("staged")}


def _odoo_value(value: Any) -> Any:
    """A value as Odoo reads it, as a ``=field.odoo_field`` path gives it: a many2one's id (not ``[id, name]``)."""
    if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str):
        return value[0]
    return value


def _may_resolve(obj: ObjectSpec, row: Row) -> bool:
    """Whether a row landed with a flag a later run may clear without a source change: a reference or a lookup
    that found nothing (the record or the user may land by then), or a field the object does not map itself."""
    for field, _reason in row.get("warnings") or ():
        fspec = obj.fields.get(field)
        if fspec is None or fspec.ref or fspec.lookup or fspec.fallback:
            return True
    return False


def _volatile(obj: ObjectSpec) -> list[str]:
    """The keys of a staged record left out of its source hash: a file's download URL (it may be signed afresh
    on every read; the file's own stamps, ``updated_at`` and ``size_bytes`` or ``Checksum``, say when it changed)."""
    blob = obj.enrich.get("_blob")
    return [str(blob["url_field"])] if isinstance(blob, Mapping) and blob.get("url_field") else []


def _levels(edges: Sequence[Mapping[str, Any]], parent_field: str) -> dict[str, int]:
    """``{id: level}`` of hierarchy edges (``Id``, ``parent_field``): 0 for a record whose parent is none of them.
    Empty when a cycle is left in them (``break_cycles: false``): one level, Odoo refuses the cycle."""
    try:
        levels = hierarchy_levels(edges, "Id", parent_field)
    except ValueError:
        return {}
    return {str(e["Id"]): n for n, level in enumerate(levels) for e in level}


def _posted_on(row: Row) -> tuple[Any, Any]:
    """The record a chatter message is posted on (its group in the timeline)."""
    values = row.get("values") or {}
    return values.get("model"), values.get("res_id")


def _missing_file(obj: ObjectSpec, row: Row, missing: MissingFile) -> tuple[str, str]:
    """The dead-letter ``(field, reason)`` of a row whose file the source no longer has: the reason names
    the file and the record it hangs on (``file missing in the source (HTTP 404): 'LOI.pdf'
    (/sobjects/Attachment/00P.../Body) on Account 001...``)."""
    field, fspec = next(((f, fs) for f, fs in obj.fields.items() if "_blob" in fs.sources), ("_blob", None))
    record = row.get("record") or {}
    titles = [get_path(record, p) for p in (fspec.sources if fspec else ()) if p != "_blob"]   # a note's title
    name = (row.get("values") or {}).get("name") or next((t for t in titles if t), None)
    on = ", ".join(f"{o} {sid}" for o, sid in attached_to(obj, record))
    return field, (f"{missing.reason}: {f'{name!r} ' if name else ''}({missing.path})"
                   + (f" on {on}" if on else ""))


def _small(record: Mapping[str, Any]) -> dict[str, Any]:
    """The source record as kept with a dead letter: bytes dropped, JSON-safe."""
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes | bytearray) else v) for k, v in record.items()}


def _added(a: LoadResult, b: LoadResult) -> LoadResult:
    """Two parts of one batch's load as one result."""
    out: dict[str, Any] = {**a}
    for k, v in b.items():
        if k not in ("source_object", "model"):
            out[k] = out[k] + v
    out["seconds"] = round(out["seconds"], 3)
    return LoadResult(**out)


def _empty_result(name: str, model: str, rows: int) -> LoadResult:
    return {"source_object": name, "model": model, "rows": rows, "created": 0, "updated": 0, "skipped": 0,
            "adopted": 0, "superseded": 0, "conflicts": 0, "flagged": 0, "dead_lettered": 0, "dead_letter_ids": [], "odoo_calls": 0,
            "seconds": 0.0}
