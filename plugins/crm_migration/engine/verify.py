"""Verify a run: the field-level diff of a sample and the reconciliation at the end of a full run.

:func:`field_diff` answers "did every field of every record land as the mapping says?". For each
staged record of the run it maps the record again exactly as :meth:`Pipeline.load` did (same
mapping, same crosswalk references, file bytes fetched from the source again), reads the mapped fields
back from Odoo (one ``read`` per staged batch) and returns one :class:`DiffRow` per record and field.
Records that did not land appear once, with the reason they were dead-lettered.

:func:`reconcile` answers "does what Odoo holds agree with what the tool says it wrote?". Per object it
counts the records staged in the run, the crosswalk rows, the Odoo records carrying the object's key and
the open dead letters, and builds a sha256 on each side over the crosswalk's written values and the same
fields read back from Odoo, paged (:data:`PAGE` records per ``read``).

Both compare values in :func:`~crm_migration.engine.values.canonical` form, with two expected
differences folded in: html is compared after the normalisation Odoo's sanitiser applies (``<script>``
and friends dropped with their content, ``on*`` attributes and ``javascript:`` URLs dropped, whitespace
collapsed), and an attachment's ``datas`` is compared as the sha1 of its bytes against Odoo's
``checksum`` (the bytes are never read back). Memory stays bounded: one staged batch, or one page of
the crosswalk, at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from crm_migration.engine.completeness import NAMED, Completeness, check, source_ids
from crm_migration.engine.values import canonical
from crm_migration.hooks.odoo import MIGRATION_KEY
from crm_migration.hooks.state import SCHEMA
from crm_migration.mapping.spec import MISSING, ObjectSpec, get_path
from crm_migration.mapping.transforms import html_clean

if TYPE_CHECKING:
    from crm_migration.engine.pipeline import Pipeline

log_ = logging.getLogger(__name__)

PAGE = 2000                 # records per Odoo read in the reconciliation
EXAMPLES = 5                # differing records named per object
_SOURCE_CHARS = 300         # a source value longer than this is cut in the report

NOTE_HTML = "html sanitised by Odoo"
NOTE_FILE = "file compared by checksum"
NOTE_TRIM = "whitespace trimmed by Odoo"

__all__ = ["DiffRow", "ReconRow", "field_diff", "holds", "html_normal", "iter_field_diff", "odoo_value", "read_names",
           "reconcile"]


class DiffRow(TypedDict):
    """One compared field of one record (``kind="field"``), or one record that could not be compared.

    ``kind``: ``field``; ``dead_letter`` (did not land: ``note`` is the reason); ``not_loaded`` (staged,
    neither in the crosswalk nor dead-lettered); ``missing_in_odoo`` (in the crosswalk, gone from Odoo);
    ``mapping_error`` (landed earlier, but the staged record no longer maps).
    """

    object: str
    model: str
    source_id: str
    odoo_id: int | None
    field: str
    source: str          # the raw source value(s) the field is made from, readable
    sent: Any            # what the load sends, canonical (a file: ``sha1:<hex>``)
    odoo: Any            # what Odoo holds, canonical (a file: ``sha1:<checksum>``)
    match: bool
    note: str
    kind: str


class ReconRow(TypedDict):
    """The reconciliation of one object."""

    object: str
    model: str
    scope: str                    # the crosswalk's source object / the key's middle part
    staged: int                   # source records staged in the run (not deleted)
    landed: int                   # of those, bound in the crosswalk
    crosswalk: int                # crosswalk rows of the object, all runs
    odoo: int                     # Odoo records whose x_migration_key is <source>:<scope>:...
    dead_letters: int             # open dead letters of the object (distinct source ids, all runs)
    unaccounted: int              # staged records neither landed nor dead-lettered
    moved: int                    # staged records a later run moved to another model (a task completed since)
    compared: int                 # crosswalk records compared with Odoo
    differing: int                # of those, records whose values differ
    missing_in_odoo: int          # crosswalk records Odoo no longer has
    checksum_crosswalk: str
    checksum_odoo: str
    examples: list[dict[str, Any]]   # up to EXAMPLES differing records: source_id, odoo_id, field, crosswalk, odoo
    problems: list[str]
    status: str                   # ok | mismatch
    seconds: float
    dead_letters_counted: int     # of the dead letters, those a mapping or Odoo caused (not a gap in the source)
    dead_letter_share: float      # dead_letters_counted / (crosswalk + dead_letters): the object's records
    dead_letter_limit: float      # settings.max_dead_letter_share in force
    dead_letter_reasons: list[list[Any]]  # [reason (ids cut), count, counted?], most frequent first
    differences: list[dict[str, Any]]     # every differing field (up to completeness.NAMED): source_id, odoo_id,
                                          # field, crosswalk (what the tool wrote), odoo (Odoo now)
    completeness: Completeness | None     # the id sets compared (reconcile(completeness=True)), else None
    deleted_on_archive: int       # crosswalk activities Odoo deleted when their record was archived (Odoo 17)
    archived_away: list[dict[str, Any]]   # those (up to completeness.NAMED): source_id, odoo_id, key, record_model,
                                          # record_id, record_key, archived (by which run, when: if the tool did it)


# ---- comparable values -------------------------------------------------------------------------------

def html_normal(value: Any) -> str | bool:
    """``value`` (html) in the form Odoo's sanitiser stores it (the loader's own sanitiser,
    :func:`~crm_migration.mapping.transforms.html_clean`), whitespace collapsed.

    What we send and what Odoo stores after sanitising compare equal; a real change of text or
    markup does not. Empty → ``False``.
    """
    value = canonical(value, "html")
    if value is False:
        return False
    text = re.sub(r"\s+", " ", html_clean(str(value)) or "")
    return re.sub(r">\s+<", "><", text).strip() or False


def _sha1_of_b64(value: Any) -> str | bool:
    """A file (base64, or the ``sha1:`` fingerprint the crosswalk keeps) as ``sha1:<hex>``."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("ascii", "replace")
    return canonical(value, "binary")


def _is_checksum_field(model: str, field: str, ftype: str | None, fields: Mapping[str, Any]) -> bool:
    """A binary field compared through Odoo's ``checksum`` (``ir.attachment.datas``)."""
    return ftype == "binary" and field in ("datas", "raw") and "checksum" in fields


def _read_name(model: str, field: str, fields: Mapping[str, Any]) -> str:
    ftype = (fields.get(field) or {}).get("type")
    return "checksum" if _is_checksum_field(model, field, ftype, fields) else field


def _odoo_side(model: str, field: str, rec: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
    """The canonical Odoo value of ``field`` in a read answer (a file: ``sha1:<checksum>``)."""
    ftype = (fields.get(field) or {}).get("type")
    if _is_checksum_field(model, field, ftype, fields):
        got = rec.get("checksum")
        return f"sha1:{got}" if got else False
    return canonical(rec.get(field), ftype)


def _sent_side(model: str, field: str, value: Any, fields: Mapping[str, Any]) -> Any:
    """The canonical value we send (a file: ``sha1`` of its bytes)."""
    ftype = (fields.get(field) or {}).get("type")
    if _is_checksum_field(model, field, ftype, fields):
        return _sha1_of_b64(value)
    return canonical(value, ftype)


def _compare(ftype: str | None, sent: Any, odoo: Any) -> tuple[bool, str]:
    """``(match, note)`` for two canonical values of a field of type ``ftype``."""
    if sent == odoo:
        return True, ""
    if ftype == "html" and html_normal(sent) == html_normal(odoo):
        return True, NOTE_HTML
    if ftype == "char" and isinstance(sent, str) and isinstance(odoo, str) and sent.strip() == odoo.strip():
        return True, NOTE_TRIM
    if ftype == "char" and isinstance(sent, str) and not sent.strip() and odoo is False:
        return True, NOTE_TRIM
    return False, ""


def read_names(model: str, names: Iterable[str], fields: Mapping[str, Any]) -> list[str]:
    """The fields to read from ``model`` to compare ``names`` (a file's ``datas`` is read as its ``checksum``)."""
    return sorted({_read_name(model, f, fields) for f in names if f in fields}) or ["id"]


def odoo_value(model: str, field: str, rec: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
    """The canonical value of ``field`` in ``rec`` (a ``read`` answer, fields from :func:`read_names`)."""
    return _odoo_side(model, field, rec, fields)


def holds(model: str, field: str, written: Any, rec: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Whether ``rec`` (a ``read`` answer, fields from :func:`read_names`) holds what the tool wrote to ``field``,
    Odoo's own normalisations folded in (html as sanitised, char trimmed, a file by its checksum)."""
    ftype = (fields.get(field) or {}).get("type")
    return _compare(ftype, _sent_side(model, field, written, fields), _odoo_side(model, field, rec, fields))[0]


def _comparable(model: str, field: str, value: Any, fields: Mapping[str, Any], *, odoo: bool) -> Any:
    """One value in the form both reconciliation checksums use (html normalised, files as sha1)."""
    ftype = (fields.get(field) or {}).get("type")
    if _is_checksum_field(model, field, ftype, fields):
        if odoo:
            got = value.get("checksum") if isinstance(value, Mapping) else value
            return f"sha1:{got}" if got else False
        return _sha1_of_b64(value)
    if odoo and isinstance(value, Mapping):
        value = value.get(field)
    value = canonical(value, ftype)
    if ftype == "html":
        return html_normal(value)
    if ftype == "char" and isinstance(value, str):
        return value.strip() or False
    return value


# ---- readable source values ------------------------------------------------------------------------------


def _readable(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _cut(text: str) -> str:
    return text if len(text) <= _SOURCE_CHARS else text[:_SOURCE_CHARS - 1] + "…"


def _source_text(paths: Sequence[str], record: Mapping[str, Any], const: Any = MISSING) -> str:
    """The raw source values of ``paths`` (``Email=a@b.c``; one path: the value alone)."""
    if not paths:
        return "" if const is MISSING else f"const {_readable(const)}"
    shown = [(p, get_path(record, p)) for p in paths if not p.startswith(("$", "="))]
    if len(paths) == 1 and shown:
        return _cut(_readable(shown[0][1]))
    return _cut(" · ".join(f"{p}={_readable(v)}" for p, v in shown))


def _field_sources(obj: ObjectSpec) -> dict[str, tuple[tuple[str, ...], Any]]:
    """``{odoo field: (source paths, const)}`` of an object, the attach_to fields included."""
    out: dict[str, tuple[tuple[str, ...], Any]] = {
        name: (fs.sources, fs.const) for name, fs in obj.fields.items()}
    if obj.attach:
        for f in (obj.attach.model_field, obj.attach.id_field):
            out.setdefault(f, (obj.attach.sources, MISSING))
    return out


# ---- the field-level diff ---------------------------------------------------------------------------------


def _cut_edges(pipe: Pipeline, obj: ObjectSpec, *, run_id: str) -> dict[str, dict[str, str]]:
    """Per self-reference field, the records whose link :meth:`Pipeline.link` cuts (cycles): ``{sid: reason}``."""
    return {field: {str(c["source_id"]): str(c["reason"]) for c in cut}
            for field, (_edges, cut) in pipe.cut_links(obj.name, run_id=run_id).items()}


def _dead_letter_reasons(pipe: Pipeline, scope: str, source_ids: Sequence[str], run_id: str) -> dict[str, str]:
    """The latest dead-letter reason of each id (this run's first), ``field: reason``."""
    if not source_ids:
        return {}
    rows = pipe.state.run_in_transaction(lambda cur: (cur.execute(
        f"SELECT DISTINCT ON (source_id) source_id, field, reason FROM {SCHEMA}.dead_letter "
        "WHERE pair = %s AND source_object = %s AND source_id = ANY(%s) "
        "ORDER BY source_id, (run_id = %s) DESC, updated_at DESC",
        (pipe.pair, scope, list(source_ids), run_id)), cur.fetchall())[1])
    return {sid: (f"{field}: {reason}" if field else str(reason)) for sid, field, reason in rows}


def iter_field_diff(pipe: Pipeline, name: str, *, run_id: str) -> Iterator[DiffRow]:
    """:func:`field_diff` as a generator: one staged batch in memory at a time."""
    obj = pipe.spec.object(name)
    target = pipe.target(name)
    model, scope = target.model, target.source_object
    fields = pipe.odoo.fields_get(model)
    self_refs = pipe.self_ref_fields(obj)
    cut = _cut_edges(pipe, obj, run_id=run_id) if self_refs else {}
    sources = _field_sources(obj)
    order = {f: i for i, f in enumerate([*sources, MIGRATION_KEY])}

    for batch in pipe.state.staged_batches(run_id=run_id, pair=pipe.pair, source_object=name):
        staged = pipe.state.read_batch(run_id=run_id, pair=pipe.pair, source_object=name,
                                       batch_no=batch["batch_no"])
        records = [s["record"] for s in staged if not s["deleted"]]
        if not records:
            continue
        load_obj, rows, _blobs = pipe.mapped_rows(name, records)
        by_sid = {r.get("_source_id") or load_obj.source_id(r): r for r in records}
        sids = [row["source_id"] for row in rows]
        bound = {s: b for s, b in pipe.state.lookup(pipe.pair, scope, sids).items() if b.odoo_model in (None, model)}

        # the self-references link() wrote: the parent's Odoo id, unless the link closed a cycle
        parents: dict[str, dict[str, Any]] = {}
        if self_refs:
            wanted = {get_path(by_sid[s], obj.fields[f].sources[0]) for s in sids for f in self_refs}
            parent_ids = pipe.state.odoo_ids(pipe.pair, scope, sorted(str(p) for p in wanted if p))
            for f in self_refs:
                src = obj.fields[f].sources[0]
                parents[f] = {}
                for s in sids:
                    p = get_path(by_sid[s], src)
                    parents[f][s] = False if (not p or s in cut.get(f, {})) else parent_ids.get(str(p), False)

        names = sorted({_read_name(model, f, fields) for row in rows if not row.get("error")
                        for f in [*row.get("values", {}), *(row.get("deferred") or {}), *self_refs]
                        if f in fields} | {MIGRATION_KEY})
        ids = [bound[s].odoo_id for s in sids if s in bound]
        back = {rec["id"]: rec for rec in pipe.odoo.read(model, ids, names, context={"active_test": False})} \
            if ids else {}
        dead = _dead_letter_reasons(pipe, scope, [s for s in sids if s not in bound], run_id)

        for row in rows:
            sid = row["source_id"]
            record = by_sid.get(sid, row.get("record") or {})
            base = {"object": name, "model": model, "source_id": sid}
            if sid not in bound:
                if sid in dead:
                    yield DiffRow(**base, odoo_id=None, field=_error_field(row), source="", sent=None, odoo=None,
                                  match=False, note=f"dead letter: {dead[sid]}", kind="dead_letter")
                else:
                    why = f"mapping error: {row['error'][1]}" if row.get("error") else "no crosswalk entry"
                    yield DiffRow(**base, odoo_id=None, field=_error_field(row), source="", sent=None, odoo=None,
                                  match=False, note=f"not loaded ({why}; no dead letter: was the batch loaded?)",
                                  kind="not_loaded")
                continue
            b = bound[sid]
            if row.get("error"):
                yield DiffRow(**base, odoo_id=b.odoo_id, field=_error_field(row), source="", sent=None, odoo=None,
                              match=False, note=f"landed earlier, but the staged record no longer maps: "
                                                f"{row['error'][1]}", kind="mapping_error")
                continue
            rec = back.get(b.odoo_id)
            if rec is None:
                yield DiffRow(**base, odoo_id=b.odoo_id, field="", source="", sent=None, odoo=None, match=False,
                              note=f"Odoo {model} {b.odoo_id} no longer exists", kind="missing_in_odoo")
                continue
            warnings = dict(row.get("warnings") or ())
            sent: dict[str, Any] = {**row["values"], **(row.get("deferred") or {})}
            for f in self_refs:
                sent[f] = parents[f][sid]
            sent[MIGRATION_KEY] = target.key(sid)
            for f in sorted(sent, key=lambda k: order.get(k, len(order))):
                ftype = (fields.get(f) or {}).get("type")
                want = _sent_side(model, f, sent[f], fields)
                got = _odoo_side(model, f, rec, fields) if f in fields else "<no such field in Odoo>"
                ok, note = _compare(ftype, want, got)
                notes = [note] if note else []
                if _is_checksum_field(model, f, ftype, fields):
                    notes.append(NOTE_FILE)
                if f in self_refs and sid in cut.get(f, {}):
                    notes.append(f"hierarchy: {cut[f][sid]}")
                if f in warnings:
                    notes.append(f"mapping warning: {warnings[f]}")
                if not ok:
                    notes.append(_why(model, f, want, b.written, fields))
                paths, const = sources.get(f, ((), MISSING))
                src = sid if f == MIGRATION_KEY else _source_text(paths, record, const)
                yield DiffRow(**base, odoo_id=b.odoo_id, field=f, source=src, sent=want, odoo=got, match=ok,
                              note="; ".join(n for n in notes if n), kind="field")


def _error_field(row: Mapping[str, Any]) -> str:
    err = row.get("error")
    return str(err[0] or "") if err else ""


def _why(model: str, field: str, want: Any, written: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    """Why a field differs, as far as the crosswalk tells."""
    if field == MIGRATION_KEY:
        return "the record carries another key"
    if field not in written:
        return "never written by the tool"
    if _comparable(model, field, written[field], fields, odoo=False) == _comparable(model, field, want, fields,
                                                                                     odoo=False):
        return "changed in Odoo after the load"
    return "the source changed since the last load"


def field_diff(pipe: Pipeline, name: str, *, run_id: str) -> list[DiffRow]:
    """The field-level diff of object ``name`` in run ``run_id``: one row per loaded record and mapped field
    (regular, deferred, self-reference, and the ``x_migration_key``), one row per record that did not land.

    :param pipe: the pipeline the run loaded with (same mapping, same source, same Odoo and state DB).
    """
    started = time.perf_counter()
    rows = list(iter_field_diff(pipe, name, run_id=run_id))
    fields = [r for r in rows if r["kind"] == "field"]
    pipe.log.info("diff %s: %d fields compared on %d records, %d differ, %d records not compared; %.2f s", name,
                  len(fields), len({r["source_id"] for r in fields}), sum(not r["match"] for r in fields),
                  len(rows) - len(fields), time.perf_counter() - started)
    return rows


# ---- reconciliation -----------------------------------------------------------------------------------------


def _count_sql(pipe: Pipeline, name: str, scope: str, model: str, run_id: str
               ) -> tuple[int, int, int, int, int, int]:
    """``(staged, landed, crosswalk, dead letters, unaccounted, moved)`` in one statement."""
    # EXISTS in the select list stays a per-row index probe: right after a load the tables have no
    # statistics yet, and a join planned from them degenerates into a nested loop over the whole object
    sql = f"""
    SELECT count(*), count(*) FILTER (WHERE landed),
           (SELECT count(*) FROM {SCHEMA}.crosswalk WHERE pair = %(pair)s AND source_object = %(scope)s
            AND odoo_model = %(model)s),
           (SELECT count(DISTINCT source_id) FROM {SCHEMA}.dead_letter
            WHERE pair = %(pair)s AND source_object = %(scope)s AND odoo_model = %(model)s AND resolved_at IS NULL),
           count(*) FILTER (WHERE NOT landed AND NOT dead AND NOT moved), count(*) FILTER (WHERE moved)
    FROM (
        SELECT EXISTS (SELECT 1 FROM {SCHEMA}.crosswalk c WHERE c.pair = %(pair)s AND c.source_object = %(scope)s
                       AND c.source_id = s.source_id AND c.odoo_model = %(model)s) AS landed,
               EXISTS (SELECT 1 FROM {SCHEMA}.dead_letter d WHERE d.pair = %(pair)s AND d.source_object = %(scope)s
                       AND d.source_id = s.source_id AND d.odoo_model = %(model)s AND d.resolved_at IS NULL) AS dead,
               EXISTS (SELECT 1 FROM {SCHEMA}.crosswalk c WHERE c.pair = %(pair)s AND c.source_object = %(scope)s
                       AND c.source_id = s.source_id AND c.odoo_model <> %(model)s) AS moved
        FROM {SCHEMA}.staging s
        WHERE s.run_id = %(run)s AND s.pair = %(pair)s AND s.source_object = %(name)s AND NOT s.deleted
    ) t
    """
    params = {"run": run_id, "pair": pipe.pair, "name": name, "scope": scope, "model": model}
    return pipe.state.run_in_transaction(lambda cur: (cur.execute(sql, params), cur.fetchone())[1])


def _crosswalk_pages(pipe: Pipeline, scope: str, model: str,
                     size: int) -> Iterator[list[tuple[str, int, dict[str, Any]]]]:
    """The object's crosswalk rows (of its model) in source-id order, ``size`` at a time (keyset)."""
    last: str | None = None
    while True:
        sql = (f"SELECT source_id, odoo_id, written FROM {SCHEMA}.crosswalk WHERE pair = %s AND source_object = %s"
               " AND odoo_model = %s" + (" AND source_id > %s" if last is not None else "")
               + " ORDER BY source_id LIMIT %s")
        args: tuple[Any, ...] = (pipe.pair, scope, model, *((last,) if last is not None else ()), size)
        rows = pipe.state.run_in_transaction(lambda cur, sql=sql, args=args: (cur.execute(sql, args),
                                                                              cur.fetchall())[1])
        if not rows:
            return
        yield [(s, int(o), _as_obj(w) or {}) for s, o, w in rows]
        if len(rows) < size:
            return
        last = rows[-1][0]


def deleted_on_archive(pipe: Pipeline, model: str, gone: Sequence[tuple[str, int, Mapping[str, Any]]], *,
                       key: Callable[[str], str] = str) -> dict[str, dict[str, Any]]:
    """Of the crosswalk records ``gone`` from Odoo (``(source id, odoo id, written)``), the activities Odoo deleted
    when their record was archived, by source id: an activity (``res_model_id``, ``res_id`` written) whose record
    is archived in Odoo now, on a server that deletes the activities of a record it archives (Odoo 17; 19 keeps
    them). Facts, not the version alone: an activity whose record is active, or gone, stays missing. Each names
    the record (model, Odoo id, key) and, when the tool archived it, the run and the time."""
    if model != "mail.activity" or not gone:
        return {}
    by_model: dict[int, set[int]] = {}
    for _, _, w in gone:
        if w.get("res_model_id") and w.get("res_id"):
            by_model.setdefault(int(w["res_model_id"]), set()).add(int(w["res_id"]))
    if not by_model:
        return {}
    names = {m["id"]: m["model"] for m in pipe.odoo.read("ir.model", sorted(by_model), ["model"])}
    archived: dict[tuple[str, int], str] = {}          # (model, id) -> its key
    for mid, ids in by_model.items():
        rmodel = names.get(mid)
        if not rmodel:
            continue
        fields = pipe.odoo.fields_get(rmodel)
        if not pipe.odoo.archive_deletes_activities(fields):
            continue
        want = ["active", *([MIGRATION_KEY] if MIGRATION_KEY in fields else [])]
        for rec in pipe.odoo.read(rmodel, sorted(ids), want, context={"active_test": False}):
            if rec.get("active") is False:
                archived[(rmodel, rec["id"])] = rec.get(MIGRATION_KEY) or ""
    if not archived:
        return {}
    sql = (f"SELECT DISTINCT ON (odoo_model, odoo_id) odoo_model, odoo_id, run_id, recorded_at "
           f"FROM {SCHEMA}.rollback_manifest WHERE pair = %s AND odoo_model = ANY(%s) AND odoo_id = ANY(%s) "
           "AND rolled_back_at IS NULL AND new_values->>'active' = 'false' ORDER BY odoo_model, odoo_id, seq DESC")
    rows = pipe.state.run_in_transaction(lambda cur: (cur.execute(
        sql, (pipe.pair, sorted({m for m, _ in archived}), sorted({i for _, i in archived}))), cur.fetchall())[1])
    when = {(m, int(i)): f"by run {r} at {t:%Y-%m-%d %H:%M:%S %Z}".rstrip() for m, i, r, t in rows}
    out: dict[str, dict[str, Any]] = {}
    for sid, oid, w in gone:
        rec = (names.get(int(w.get("res_model_id") or 0)), int(w.get("res_id") or 0))
        if rec in archived:
            out[sid] = {"source_id": sid, "odoo_id": oid, "key": key(sid), "record_model": rec[0],
                        "record_id": rec[1], "record_key": archived[rec],
                        "archived": when.get(rec, "not by the tool (archived in Odoo, or by a run since rolled back)")}
    return out


def _as_obj(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _line(sid: str, values: Any) -> bytes:
    return json.dumps([sid, values], sort_keys=True, default=str, ensure_ascii=False,
                      separators=(",", ":")).encode() + b"\n"


# ---- dead letters: how many, why, and whether a mapping or Odoo caused them ---------------------------------

#: reasons saying the source's own data is incomplete: a file it lost, a record hanging on no record at all
_SOURCE_GAPS = ("file missing in the source", "no parent record among")
#: the references a "not migrated (yet)" reason names: ``Opportunity 006…``, ``WhatId → Account 001…``
_NOT_MIGRATED_REF = re.compile(r"(\w+) ([^\s,;]+)(?=$|,|;| not migrated)")
_IDS = (re.compile(r"\b(?=[A-Za-z]*\d)[A-Za-z0-9]{15,18}\b"),          # Salesforce ids
        re.compile(r"(?<![\w.])(?<!HTTP )\d{2,}(?![\w.])"),           # numeric ids (not an HTTP status)
        re.compile(r"'[^']*'"))                                          # quoted values (file names …)
TOP_REASONS = 5


def reason_group(field: str | None, reason: str) -> str:
    """A dead letter's reason with its ids and quoted values cut, so that alike reasons count together."""
    text = " ".join(reason.split())
    for pattern, repl in zip(_IDS, ("<id>", "<id>", "'…'"), strict=True):
        text = pattern.sub(repl, text)
    return f"{field}: {text}" if field else text


def open_dead_letters(pipe: Pipeline) -> dict[tuple[str, str], tuple[str | None, str | None, str]]:
    """``{(source object, source id): (odoo model, field, reason)}``: the pair's open dead letters (latest)."""
    sql = (f"SELECT DISTINCT ON (source_object, source_id) source_object, source_id, odoo_model, field, reason "
           f"FROM {SCHEMA}.dead_letter WHERE pair = %s AND resolved_at IS NULL "
           "ORDER BY source_object, source_id, updated_at DESC")
    rows = pipe.state.run_in_transaction(lambda cur: (cur.execute(sql, (pipe.pair,)), cur.fetchall())[1])
    return {(o, s): (m, f, r) for o, s, m, f, r in rows}


def staged_refs(pipe: Pipeline, dead: Mapping[tuple[str, str], tuple[str | None, str | None, str]],
                run_id: str) -> set[tuple[str, str]]:
    """Of the records the open dead letters say were "not migrated (yet)", those the source has: staged in run
    ``run_id`` and not deleted, as ``(object, source id)``. (A record the source deleted is not read by a full
    run; a delta reads changes only, so there a parent it did not read counts as a gap: lenient.)"""
    ids = sorted({sid for _, _, reason in dead.values() if "not migrated (yet)" in reason
                  for _, sid in _NOT_MIGRATED_REF.findall(reason)})
    if not ids:
        return set()
    sql = (f"SELECT source_object, source_id FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s AND NOT deleted"
           " AND source_id = ANY(%s)")
    rows = pipe.state.run_in_transaction(lambda cur: (cur.execute(sql, (run_id, pipe.pair, ids)), cur.fetchall())[1])
    return {(o, s) for o, s in rows}


def source_gap(key: tuple[str, str], dead: Mapping[tuple[str, str], tuple[str | None, str | None, str]],
               scopes: Mapping[str, str], staged: Collection[tuple[str, str]],
               _memo: dict[tuple[str, str], bool] | None = None) -> bool:
    """Whether the dead letter ``key`` stems from a gap in the source, not from the mapping or Odoo.

    A gap: a file the source lost, a record hanging on no record, or a reference to a record the source
    does not have (deleted there, or never there: not in ``staged``, see :func:`staged_refs`). A reference to a record that is a
    dead letter itself is a gap only when that one is (a stage Odoo refused makes each of its deals count);
    a reference to a record the source has but that did not land counts (an object not loaded, a bug).
    """
    memo = {} if _memo is None else _memo
    if key in memo:
        return memo[key]
    memo[key] = False                       # a cycle of references counts
    reason = dead[key][2]
    gap = any(g in reason for g in _SOURCE_GAPS)
    if not gap and "not migrated (yet)" in reason:
        refs = _NOT_MIGRATED_REF.findall(reason)
        gap = bool(refs) and all(
            source_gap((scopes.get(obj, obj), sid), dead, scopes, staged, memo)
            if (scopes.get(obj, obj), sid) in dead else (obj, sid) not in staged for obj, sid in refs)
    memo[key] = gap
    return gap


def _dead_letter_counts(pipe: Pipeline, scope: str, model: str,
                        dead: Mapping[tuple[str, str], tuple[str | None, str | None, str]],
                        scopes: Mapping[str, str], staged: Collection[tuple[str, str]],
                        memo: dict[tuple[str, str], bool]) -> tuple[int, list[list[Any]]]:
    """``(counted, [[reason, count, counted?], ...])`` of the object's open dead letters, most frequent first."""
    groups: dict[tuple[str, bool], int] = {}
    counted = 0
    for key, (m, field, reason) in dead.items():
        if key[0] != scope or m != model:
            continue
        counts = not source_gap(key, dead, scopes, staged, memo)
        counted += counts
        group = (reason_group(field, reason), counts)
        groups[group] = groups.get(group, 0) + 1
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1], not kv[0][1], kv[0][0]))
    return counted, [[text, n, counts] for (text, counts), n in ranked]


def dead_letter_verdict(rows: Sequence[ReconRow]) -> tuple[list[str], list[str]]:
    """``(over the limit, needing action)``: one line per object with dead letters, naming its count, share
    and top reasons. An object is over the limit when the dead letters a mapping or Odoo caused exceed
    ``settings.max_dead_letter_share`` of its records; any other dead letter still needs a person's look."""
    over, action = [], []
    for r in rows:
        if not r.get("dead_letters"):
            continue
        records = r["crosswalk"] + r["dead_letters"]
        reasons = "; ".join(f"{n} × {text}" + ("" if counts else " (a gap in the source)")
                            for text, n, counts in r["dead_letter_reasons"][:TOP_REASONS])
        more = len(r["dead_letter_reasons"]) - TOP_REASONS
        reasons += f"; and {more} other reason{'s' * (more != 1)}" if more > 0 else ""
        if r["dead_letter_share"] > r["dead_letter_limit"]:
            over.append(f"{r['object']}: {r['dead_letters_counted']:,} of {records:,} records are dead letters "
                        f"({r['dead_letter_share']:.1%}, limit {r['dead_letter_limit']:.1%} "
                        f"settings.max_dead_letter_share): {reasons}")
        else:
            gaps = r["dead_letters"] - r["dead_letters_counted"]
            action.append(f"{r['object']}: {r['dead_letters']:,} dead letter"
                          f"{'s need' if r['dead_letters'] != 1 else ' needs'} "
                          f"action ({r['dead_letters_counted']:,} counted, {r['dead_letter_share']:.1%} of "
                          f"{records:,} records, limit {r['dead_letter_limit']:.1%}; {gaps:,} a gap in the "
                          f"source): {reasons}")
    return over, action


def reconcile(pipe: Pipeline, *, run_id: str, objects: Iterable[str] | None = None,
              page_size: int = PAGE, max_dead_letter_share: float | None = None,
              completeness: bool = False) -> list[ReconRow]:
    """Reconcile each loadable object (or ``objects``) after run ``run_id``.

    Counts: records staged in the run, landed of those, crosswalk rows (all runs), Odoo records with the
    object's key (``search_count``, archived included), open dead letters, and staged records neither
    landed nor dead-lettered. Checksums: a sha256 over ``(source_id, {field: value})`` in source-id order,
    from the crosswalk's written values on one side and an Odoo read-back of the same fields on the other
    (html normalised, files by checksum). ``status`` is ``ok`` when the checksums agree, Odoo holds as
    many keyed records as the crosswalk and every staged record is accounted for.

    Dead letters: those a mapping or Odoo caused (not a gap in the source, see :func:`source_gap`) are
    counted against ``max_dead_letter_share`` (default: the pair's ``settings.max_dead_letter_share``) of
    the object's records (crosswalk + dead letters); over it, the object is a mismatch and
    :func:`dead_letter_verdict` names it.

    ``completeness``: also compare the ids alive in the source now with the keys in Odoo and the crosswalk
    (:mod:`~crm_migration.engine.completeness`): a record missing from Odoo or extra in it (deleted in the
    source, still active) makes the object a mismatch; what the next delta lands is counted, not a mismatch.
    """
    wanted = list(objects) if objects is not None else pipe.loadable()
    limit = (float(max_dead_letter_share) if max_dead_letter_share is not None
             else float(getattr(pipe.spec.settings, "max_dead_letter_share", 0.01)))
    dead_all = open_dead_letters(pipe)
    scopes = {name: pipe.target(name).source_object for name in pipe.loadable()}
    staged_ids = staged_refs(pipe, dead_all, run_id)
    memo: dict[tuple[str, str], bool] = {}
    ids = None
    if completeness:
        from crm_migration.engine.windows import now

        ids = source_ids(pipe, wanted, at=now(), marks={n: pipe.state.get_watermark(pipe.pair, n) for n in wanted})
    out: list[ReconRow] = []
    for name in wanted:
        started = time.perf_counter()
        target = pipe.target(name)
        model, scope = target.model, target.source_object
        staged, landed, cw_count, dead, unaccounted, moved = _count_sql(pipe, name, scope, model, run_id)
        odoo_count = int(pipe.odoo.call(model, "search_count",
                                        [[(MIGRATION_KEY, "=like", f"{target.source}:{scope}:%")]],
                                        context={"active_test": False}))
        fields = pipe.odoo.fields_get(model)
        h_cw, h_odoo = hashlib.sha256(), hashlib.sha256()
        compared = differing = missing = 0
        examples: list[dict[str, Any]] = []
        differences: list[dict[str, Any]] = []
        away: list[dict[str, Any]] = []
        away_ids: set[str] = set()
        away_count = 0
        for page in _crosswalk_pages(pipe, scope, model, page_size):
            names = sorted({f for _, _, w in page for f in w})
            known = [f for f in names if f in fields]
            reads = sorted({_read_name(model, f, fields) for f in known})
            back = {r["id"]: r for r in pipe.odoo.read(model, [o for _, o, _ in page], reads or ["id"],
                                                       context={"active_test": False})}
            # an activity Odoo deleted when its record was archived (Odoo 17) is counted apart, not missing
            gone_away = deleted_on_archive(pipe, model, [(s, o, w) for s, o, w in page if o not in back],
                                           key=target.key)
            away_count += len(gone_away)
            away_ids |= gone_away.keys()
            away.extend(list(gone_away.values())[:max(0, NAMED - len(away))])
            for sid, oid, written in page:
                if sid in gone_away:
                    continue
                compared += 1
                mine = {f: _comparable(model, f, v, fields, odoo=False) for f, v in written.items()}
                rec = back.get(oid)
                if rec is None:
                    theirs: Any = None
                    missing += 1
                else:
                    theirs = {f: (_comparable(model, f, rec, fields, odoo=True) if f in fields
                                  else "<no such field in Odoo>") for f in written}
                h_cw.update(_line(sid, mine))
                h_odoo.update(_line(sid, theirs))
                if theirs != mine:
                    differing += 1
                    if len(differences) < NAMED:
                        differences.extend(
                            {"source_id": sid, "odoo_id": oid, "field": f, "crosswalk": mine[f], "odoo": theirs[f]}
                            for f in sorted(mine) if theirs is not None and mine[f] != theirs[f])
                    if len({e["source_id"] for e in examples}) < EXAMPLES:
                        if theirs is None:
                            examples.append({"source_id": sid, "odoo_id": oid, "field": "",
                                             "crosswalk": "(record)", "odoo": "missing"})
                        else:
                            examples.extend({"source_id": sid, "odoo_id": oid, "field": f, "crosswalk": mine[f],
                                             "odoo": theirs[f]} for f in sorted(mine) if mine[f] != theirs[f])
        cs_cw, cs_odoo = h_cw.hexdigest(), h_odoo.hexdigest()
        problems = []
        if cs_cw != cs_odoo:
            problems.append(f"{differing} record{'s' * (differing != 1)} differ from what the tool wrote"
                            + (f" ({missing} gone from Odoo)" if missing else ""))
        if odoo_count != cw_count - away_count:
            problems.append(f"Odoo has {odoo_count} records keyed {target.source}:{scope}:…, "
                            f"the crosswalk {cw_count}"
                            + (f" ({away_count} of them deleted by Odoo with their archived record)"
                               if away_count else ""))
        if unaccounted:
            problems.append(f"{unaccounted} staged records neither landed nor dead-lettered")
        counted, reasons = _dead_letter_counts(pipe, scope, model, dead_all, scopes, staged_ids, memo)
        share = counted / (cw_count + dead) if counted else 0.0
        if share > limit:
            problems.append(f"{counted} dead letters, {share:.1%} of its records (limit {limit:.1%})")
        comp = None
        if ids is not None:
            comp = check(pipe, name, ids[name], dead={sid for (o, sid), (m, _, _) in dead_all.items()
                                                      if o == scope and m in (model, None)},
                         away=away_ids)
            if comp["missing_count"]:
                problems.append(f"{comp['missing_count']} record{'s' * (comp['missing_count'] != 1)} alive in the "
                                "source not in Odoo (missing)")
            if extra := comp["extra_count"] - comp["extra_kept"]:
                problems.append(f"{extra} record{'s' * (extra != 1)} active in Odoo not alive in the source (extra)")
            if comp["duplicates"]:
                problems.append(f"{comp['duplicates']} key{'s' * (comp['duplicates'] != 1)} on more than one Odoo "
                                "record")
        row = ReconRow(object=name, model=model, scope=scope, staged=staged, landed=landed, crosswalk=cw_count,
                       odoo=odoo_count, dead_letters=dead, unaccounted=unaccounted, moved=moved, compared=compared,
                       differing=differing, missing_in_odoo=missing, checksum_crosswalk=cs_cw,
                       checksum_odoo=cs_odoo, examples=examples, problems=problems,
                       status="mismatch" if problems else "ok", seconds=round(time.perf_counter() - started, 3),
                       dead_letters_counted=counted, dead_letter_share=round(share, 6), dead_letter_limit=limit,
                       dead_letter_reasons=reasons, differences=differences, completeness=comp,
                       deleted_on_archive=away_count, archived_away=away)
        pipe.log.info("reconcile %s: staged %d, landed %d, crosswalk %d, Odoo %d, dead letters %d; checksum %s; "
                      "%s (%.2f s)", name, staged, landed, cw_count, odoo_count, dead,
                      "ok" if cs_cw == cs_odoo else f"MISMATCH ({differing} records)", row["status"],
                      row["seconds"])
        for a in away[:20]:
            pipe.log.info("reconcile %s: %s (Odoo %s %s) was deleted by Odoo when its record %s %s (%s) was archived "
                          "(%s): Odoo 17 deletes the activities of a record it archives", name, a["key"] or a["source_id"],
                          model, a["odoo_id"], a["record_model"], a["record_id"], a["record_key"] or "no key",
                          a["archived"])
        out.append(row)
    return out
