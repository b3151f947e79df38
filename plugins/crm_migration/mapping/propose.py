"""The mapping proposer: a proposed pair file from the source's schema, a profile of its values and Odoo's schema.

``propose(pair, schemas, samples, targets)`` is pure (no I/O, deterministic, offline): the plan step
(:func:`crm_migration.engine.plan.build_plan`) gives it what its readers already read live (the source's
describe-like fields per record object and a sample of records, Odoo's ``fields_get`` of the target
models) and writes what it returns next to the mapping in force (``proposal.yaml``, a diff).

For every field of each **record object** of the pair (the objects with ``custom_fields: true``: companies,
contacts, deals) it says where the field goes, with a confidence in [0, 1] and the reasons:

- an **existing Odoo field** (``x_`` fields already in Odoo included), scored by name similarity (rapidfuzz
  on the field's name and label, and a small CRM vocabulary, :data:`VOCABULARY`), type fit (a reference
  needs a many2one to the model its object migrates to, or a lookup of the pair into that model) and the
  value profile (emails into an email field, options that fit a selection); with its transform;
- a **new typed x_ field**: custom fields keep the pair's ``custom_fields`` rules (one way of typing, the
  schema step's), widened when a sampled value does not fit the rule's type, renamed when two fields of an
  object would land on one ``x_`` name; a custom value without a definition gets an ``x_`` field typed
  from its values;
- **not migrated**, with the reason (a system field, empty in every sampled record, no Odoo field fits).

Odoo's own fields are matched first, then the ``x_`` fields (in Odoo, or declared by the pair's ``x_fields``: the
schema step creates those, so the proposal is the same before and after the first run). Rules beyond one field to
one field, each stating its reason: a value Odoo keeps less of (a selection's option, a field Odoo sets itself) is
also kept as written in the ``x_`` field of its name, else a new typed one; a field Odoo sets on create is deferred;
the stage date comes from the deal's stage history where the object reads one; a partner with a parent and an
address gets its address type (``contact_partner_type``); a deal status with won and lost values gives a closed
deal's probability, and an open one's is its stage's where the deal has none of its own; a person's name falls back
to its email unless the source requires a last name.

Nothing is dropped silently: every source field is one row. Values outside a field's declared options
are counted per value. The other objects (users, pipelines, activities, files, ...) are not field-to-field
mappings and are kept as in force. An optional :class:`Suggester` (a language model, say) may add
candidates; it is off by default and never needed.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import yaml
from rapidfuzz import fuzz, process

from crm_migration.mapping import transforms as T
from crm_migration.mapping.spec import (
    MAGIC_FIELDS,
    NOT_RECORD_PATHS,
    ObjectSpec,
    PairSpec,
    SpecError,
    _unexpand,
    get_path,
    parse_pair,
    thaw,
)

#: libyaml's C dumper and loader where PyYAML has them (a pair file's worth of YAML in milliseconds)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "VOCABULARY", "Proposal", "Suggester", "dump_pair", "field_profile", "infer_fields", "mapping_edges",
    "precision_recall", "propose", "unified_diff",
]

#: CRM vocabulary: a concept and the words naming it in sources and in Odoo (field names and labels)
VOCABULARY: dict[str, tuple[str, ...]] = {
    "name": ("name", "account name", "company name", "opportunity", "opportunity name", "deal name", "full name"),
    "first name": ("first name", "given name", "firstname"),
    "last name": ("last name", "family name", "surname", "lastname"),
    "street": ("street", "address street", "address line 1", "address"),
    "street2": ("street2", "street 2", "address street2", "address line 2"),
    "city": ("city", "address city", "town"),
    "zip": ("zip", "postal code", "postcode", "zip code", "address zip"),
    "state": ("state", "province", "address state"),
    "country": ("country", "address country"),
    "phone": ("phone", "business phone", "telephone", "main phone", "tel"),
    "mobile": ("mobile", "mobile phone", "cell", "cell phone"),
    "email": ("email", "e mail", "email address"),
    "website": ("website", "web site", "website link", "homepage", "web address"),
    "function": ("title", "job title", "job position", "position"),
    "notes": ("description", "notes", "comments", "comment"),
    "salesperson": ("owner", "salesperson", "assigned to", "account owner", "opportunity owner"),
    "parent company": ("parent", "parent account", "parent company", "related company", "account", "company"),
    "customer": ("customer", "contact", "partner"),
    "amount": ("amount", "deal value", "expected revenue", "value"),
    "close date": ("close date", "expected close date", "expected closing"),
    "stage": ("stage", "stage name"),
    "pipeline": ("record type", "pipeline", "sales team"),
    "probability": ("probability",),
    "priority": ("priority",),
    "lost reason": ("loss reason", "lost reason"),
    "stage date": ("last stage change date", "last stage update", "stage entered at"),
    "closed": ("closed", "is closed"),
    "won": ("won", "is won"),
}
#: option words that mean the same selection value (Link app's ``urgent`` is Odoo's ``Very High``; a billing address
#: is Odoo's invoice address type, a shipping address its delivery one)
VALUE_SYNONYMS = {"urgent": "very high", "critical": "very high", "normal": "medium", "billing": "invoice",
                  "bill to": "invoice", "shipping": "delivery", "ship to": "delivery"}
#: source fields that are the record's own bookkeeping, never mapped (the id goes to x_migration_key)
SYSTEM_FIELDS = frozenset({"id", "isdeleted", "createddate", "createdbyid", "lastmodifieddate", "lastmodifiedbyid",
                           "systemmodstamp", "lastactivitydate", "lastvieweddate", "lastreferenceddate",
                           "masterrecordid", "created_at", "updated_at", "deleted_at"})
#: Odoo fields never proposed (bookkeeping, UI state, computed helpers)
_SKIP_TARGET_PREFIXES = ("message_", "activity_", "signup_", "calendar_", "image_", "website_message", "iap_",
                         "partner_gid", "color", "lead_properties", "x_migration_key", "barcode", "self")
#: the keys ``stage_entered_at`` reads in a stage-history row: the stage, and when the row was made
_HISTORY_KEYS = ("StageName", "CreatedDate")
_SKIP_TARGET_TYPES = frozenset({"one2many", "binary", "properties", "many2one_reference", "reference", "json"})
#: type fit: source type -> Odoo ttype -> fit
_TYPE_FIT: dict[str, dict[str, float]] = {
    "string": {"char": 1.0, "text": 0.9, "html": 0.8, "selection": 0.9},
    "combobox": {"char": 1.0, "text": 0.9, "html": 0.8},
    "textarea": {"text": 1.0, "html": 1.0, "char": 0.8},
    "html": {"html": 1.0, "text": 0.8},
    "picklist": {"selection": 1.0, "char": 0.8},
    "multipicklist": {"char": 0.8, "text": 0.8},
    "email": {"char": 1.0},
    "phone": {"char": 1.0},
    "url": {"char": 1.0},
    "double": {"float": 1.0, "monetary": 1.0, "integer": 0.6},
    "currency": {"monetary": 1.0, "float": 1.0},
    "percent": {"float": 1.0},
    "int": {"integer": 1.0, "float": 0.9},
    "long": {"integer": 1.0, "float": 0.9},
    "date": {"date": 1.0, "datetime": 0.7},
    "datetime": {"datetime": 1.0, "date": 0.6},
    "boolean": {"boolean": 1.0},
}
#: the score an existing field needs to be proposed (below: an x_ field or "not migrated"); a custom field, which
#: has a safe home in its own x_ field, needs more to go into a standard one
ACCEPT, ACCEPT_CUSTOM = 0.8, 0.9
#: a second reference to records of the same model is a fallback of the first (the contact, else the company)
ACCEPT_FALLBACK = 0.6
_WEIGHTS = (0.55, 0.25, 0.2)         # name, type, values


class Suggester(Protocol):
    """An optional second opinion (e.g. a language model) on where a source field goes; off by default.

    ``suggest`` returns ``(Odoo field, confidence in [0, 1], reason)`` candidates among ``candidates``
    (``{field name: fields_get entry}``); the proposer scores them with its own rules too and keeps the best.
    """

    def suggest(self, obj: str, source: Mapping[str, Any], profile: Mapping[str, Any],
                candidates: Mapping[str, Mapping[str, Any]]) -> Sequence[tuple[str, float, str]]: ...


# --------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL_RE = re.compile(r"^(https?://|www\.)\S+$", re.I)
_PHONE_RE = re.compile(r"^\+?[\d\s().\-/]{7,}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SFID_RE = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


def _filled(value: Any) -> bool:
    return not T._empty(value) and not (isinstance(value, float) and value != value)


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
        return True
    except ValueError:
        return False


def _items(value: Any) -> list[str]:
    parts = value if isinstance(value, list | tuple) else str(value).split(";")
    return [str(p).strip() for p in parts if str(p).strip()]


def field_profile(values: Sequence[Any], *, options: Sequence[str] = (), multi: bool = False) -> dict[str, Any]:
    """The profile of one field's sampled values: ``sampled``, ``empty share``, ``distinct``, ``max length``,
    ``multiline``, ``looks`` (share of the filled values that look like an ``email``, ``url``, ``phone``,
    ``date``, ``datetime``, ``number``, ``integer``, ``boolean``, ``id``), and, when ``options`` are declared,
    ``outside``: each value seen outside them with its count (a multi-select value counted per item)."""
    filled = [v for v in values if _filled(v)]
    texts = [v if isinstance(v, str) else "; ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
             for v in filled]
    n = len(filled)

    def share(pred: Any, pool: Sequence[Any]) -> float:
        return round(sum(1 for v in pool if pred(v)) / n, 3) if n else 0.0

    looks = {
        "email": share(lambda t: bool(_EMAIL_RE.match(t.strip())), texts),
        "url": share(lambda t: bool(_URL_RE.match(t.strip())), texts),
        "phone": share(lambda t: bool(_PHONE_RE.match(t.strip())) and sum(c.isdigit() for c in t) >= 7
                       and not _DATE_RE.match(t.strip()), texts),
        "date": share(lambda t: bool(_DATE_RE.match(t.strip())), texts),
        "datetime": share(lambda t: bool(_DATETIME_RE.match(t.strip())) and not _DATE_RE.match(t.strip()), texts),
        "number": share(_number, filled),
        "integer": share(lambda v: _number(v) and float(v) == int(float(v)), filled),
        "boolean": share(lambda v: isinstance(v, bool), filled),
        "id": share(lambda t: bool(_SFID_RE.match(t)) and any(c.isdigit() for c in t), texts),
    }
    out: dict[str, Any] = {
        "sampled": len(values), "filled": n, "empty share": round(1 - n / len(values), 3) if values else 1.0,
        "distinct": len(set(texts)), "max length": max((len(t) for t in texts), default=0),
        "multiline": any("\n" in t for t in texts), "looks": looks,
    }
    if out["distinct"] <= 20:                      # a status-like field: its values (a selection may take them)
        out["values"] = dict(sorted(Counter(texts).items()))
    if options:
        allowed = {str(o) for o in options}
        outside: Counter[str] = Counter()
        for v in filled:
            for item in (_items(v) if multi or isinstance(v, list | tuple) else [str(v)]):
                if item not in allowed:
                    outside[item] += 1
        out["outside"] = dict(sorted(outside.items()))
    return out


def infer_fields(records: Sequence[Mapping[str, Any]], *, resources: Sequence[str] = (),
                 skip: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Describe-like fields of a source without a describe (a REST resource), from its records: every path a
    record holds (a nested object's keys as ``address.city``; ``custom_fields`` left out: its definitions
    describe it), typed from the values; ``<x>_id`` referring to a resource named in ``resources``
    (``company_id`` -> ``companies``; ``parent_company_id`` too; ``owner_id`` -> ``users``) is a reference."""
    skip = set(skip) | {"custom_fields"}
    paths: dict[str, None] = {}
    nested: set[str] = set()
    for r in records:
        for k, v in r.items():
            if k in skip:
                continue
            if isinstance(v, Mapping):
                nested.add(k)
                for sub in v:
                    paths[f"{k}.{sub}"] = None
            elif isinstance(v, list) and v and isinstance(v[0], Mapping):
                continue                       # a list of objects (a pipeline's stages): not a field
            else:
                paths[k] = None
    singular = {_singular(r): r for r in resources}
    out = []
    for path in paths:
        if path in nested:
            continue
        values = [get_path(r, path) for r in records]
        prof = field_profile(values)
        looks, ftype = prof["looks"], "string"
        ref: list[str] = []
        base = path.rsplit(".", 1)[-1]
        if base.endswith("_id") and (target := _resource_of(base[:-3], singular)):
            ftype, ref = "reference", [target]
        elif base.endswith("_ids") or (values and any(isinstance(v, list) for v in values)):
            ftype = "multipicklist"
        elif prof["filled"] and looks["boolean"] == 1:
            ftype = "boolean"
        elif prof["filled"] and all(isinstance(v, int | float) and not isinstance(v, bool)
                                    for v in values if _filled(v)):          # numbers, not digits in text (a zip)
            ftype = "int" if looks["integer"] == 1 and not any(isinstance(v, float) for v in values) else "double"
        elif prof["filled"] and looks["datetime"] == 1:
            ftype = "datetime"
        elif prof["filled"] and looks["date"] == 1:
            ftype = "date"
        elif prof["filled"] and looks["email"] >= 0.9:
            ftype = "email"
        elif prof["filled"] and looks["url"] >= 0.9:
            ftype = "url"
        elif prof["filled"] and looks["phone"] >= 0.9:
            ftype = "phone"
        elif prof["multiline"] or prof["max length"] > 255:
            ftype = "textarea"
        out.append({"name": path, "label": path.replace(".", " ").replace("_", " "), "type": ftype, "custom": False,
                    "referenceTo": ref, "picklistValues": []})
    return out


def _singular(resource: str) -> str:
    return resource[:-3] + "y" if resource.endswith("ies") else resource[:-1] if resource.endswith("s") else resource


def _resource_of(stem: str, singular: Mapping[str, str]) -> str | None:
    if stem in singular:
        return singular[stem]
    last = stem.rsplit("_", 1)[-1]
    if last in singular:
        return singular[last]
    if last == "owner" and "user" in singular:
        return singular["user"]
    return None


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _words(name: str) -> str:
    """``McLabs2__Cap_Rate__c`` -> ``cap rate``; ``BillingPostalCode`` -> ``postal code``; ``address.zip`` -> ``address zip``."""
    base = name[:-3] if name.lower().endswith("__c") else name
    if "__" in base:
        base = base.split("__", 1)[1]
    base = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", base)
    words = re.sub(r"[^A-Za-z0-9]+", " ", base).lower().split()
    if len(words) > 1 and words[0] in ("billing", "mailing", "shipping", "other"):
        words = words[1:]
    if len(words) > 1 and words[-1] == "id":
        words = words[:-1]
    return " ".join(words)


def _label(tgt: Mapping[str, Any]) -> str:
    """An Odoo field's label in lower case without a trailing ``(Source)``: ``Priority (Link app)`` -> ``priority``."""
    return re.sub(r"\s*\([^)]*\)$", "", str(tgt.get("string") or "").lower().strip())


def _concepts(*texts: str) -> set[str]:
    out: set[str] = set()
    for t in texts:
        out |= _concepts_of(t.strip().lower())
    return out


@lru_cache(maxsize=4096)
def _concepts_of(text: str) -> frozenset[str]:
    return frozenset(concept for concept, words in VOCABULARY.items() if text in words)


def _name_score(src: Mapping[str, Any], tgt_name: str, tgt: Mapping[str, Any], *, obj: str = "") -> tuple[float, str]:
    """How well a source field's name or label names an Odoo field (``obj``: the source object, which an x_ field's
    label may name with the field: Account's ``Type`` is ``Account type (Apto)``)."""
    s_texts = {_words(str(src["name"])), _words(str(src.get("label") or "")).strip()} - {""}
    t_texts = {_words(tgt_name), _label(tgt)} - {""}
    if s_texts & {tgt_name.lower(), _words(tgt_name)}:
        return 1.0, "same name"
    if tgt_name.startswith("x_") and _label(tgt) in s_texts | {f"{_words(_singular(obj))} {_words(str(src['name']))}"}:
        return 1.0, "same name as its label"
    common = _concepts(*s_texts) & _concepts(*t_texts)
    if common:
        return 0.95, f"vocabulary: {sorted(common)[0]}"
    best, why = 0.0, ""
    for a in s_texts:
        for b in t_texts:
            score = max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a, b)) / 100 * 0.9
            if score > best:
                best, why = score, f"{a!r} ~ {b!r}"
    return round(best, 3), why


# --------------------------------------------------------------------------------------------------
# The proposal
# --------------------------------------------------------------------------------------------------


@dataclass
class Proposal:
    """What :func:`propose` returns.

    :param rows: one per source field of each record object: ``object, source field, source type, custom,
        target, kind`` (``existing``, ``new x_``, ``custom rule``, ``not migrated``), ``transform``,
        ``confidence``, ``reasons``, ``empty %``, ``outside options`` (value: count).
    :param raw: the proposed pair file as data (what ``yaml`` is the text of); valid for ``parse_pair``.
    :param entries: ``{object: {odoo field: entry}}`` the proposer itself made (what precision/recall measure).
    """

    pair: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)
    not_migrated: dict[str, list[str]] = field(default_factory=dict)
    yaml: str = ""
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        kinds = Counter(r["kind"] for r in self.rows)
        outside = sum(sum(r["outside options"].values()) for r in self.rows if r.get("outside options"))
        return {"source fields": len(self.rows), **{k: kinds.get(k, 0) for k in
                ("existing", "custom rule", "new x_", "not migrated")},
                "values outside options": outside, "valid": self.error is None}


def propose(pair: PairSpec, schemas: Mapping[str, Sequence[Mapping[str, Any]]],
            samples: Mapping[str, Sequence[Mapping[str, Any]]], targets: Mapping[str, Mapping[str, Any]], *,
            base: PairSpec | None = None, suggester: Suggester | None = None) -> Proposal:
    """Propose the pair file for ``pair`` (resolved: namespace and target version applied).

    :param schemas: ``{object: describe-like fields}`` of the record objects (every field of the source:
        ``name, label, type, custom, picklistValues, referenceTo, length``).
    :param samples: ``{object: sampled records}`` (the plan's sample).
    :param targets: ``{model: fields_get}`` of the record objects' models.
    :param base: the mapping file in force as written (``<ns>`` unresolved); the proposal is written in its
        terms and keeps its other objects. Default: ``pair``.
    :param suggester: an optional :class:`Suggester`; never needed.
    """
    base = base or pair
    prop = Proposal(pair=pair.pair)
    ns = pair.namespace or None
    raw = thaw(base.raw)
    objects_raw = raw.setdefault("objects", {})
    x_fields: dict[str, dict[str, Any]] = raw.setdefault("x_fields", {}) or {}
    raw["x_fields"] = x_fields
    overrides: dict[str, Any] = dict((raw.get("custom_fields") or {}).get("overrides") or {})
    custom_plans = pair.plan_custom_fields({n: list(f) for n, f in schemas.items()}) if schemas else {}
    for name, obj in pair.objects.items():
        if not obj.custom_fields or name not in schemas or not obj.model:
            continue
        matcher = _ObjectMatcher(pair, obj, list(schemas[name]), list(samples.get(name) or ()),
                                 _with_declared(targets.get(obj.model) or {}, pair.x_fields.get(obj.model) or {}),
                                 suggester)
        matcher.run()
        rows, entries = matcher.rows, matcher.entries
        for x_name, decl in matcher.new_x.items():     # raw copies in x_ fields neither Odoo nor the pair has
            x_fields.setdefault(obj.model, {}).setdefault(x_name, decl)
        # custom fields: the pair's rules (one way of typing), checked against the sampled values
        planned = {cf.source_field: cf for cf in custom_plans.get(name, [])}
        seen_names: dict[str, str] = {}
        for row in rows:
            if not row["custom"] or row["kind"] != "pending":
                continue
            cf = planned.get(row["source field"])
            if cf is None:       # the rules skip it (an override): mapped explicitly, or not at all
                row.update(kind="not migrated", target=None, confidence=1.0,
                           reasons=["custom_fields.overrides skip it and nothing maps it"])
                continue
            key = f"{name}.{_unexpand(row['source field'], ns)}"
            ttype, widened = _holding_type(cf.ttype, cf.size, matcher.profiles[row["source field"]])
            over = dict(overrides.get(key) or {})
            if widened:
                over["ttype"] = ttype
            x_name = cf.name
            if x_name in seen_names and seen_names[x_name] != row["source field"]:
                x_name = _unique_name(pair, row["source field"], set(seen_names) | set(targets.get(obj.model) or {}))
                over["name"] = x_name
                row["reasons"].append(f"{cf.name} is taken by {seen_names[cf.name]} of the same object: renamed")
            seen_names[x_name] = row["source field"]
            if over:
                overrides[key] = over
            row.update(kind="custom rule", target=x_name, transform=(over.get("fn") or
                       (cf.field.fn[0].name if cf.field and cf.field.fn else "ref" if cf.relation else "")),
                       ttype=ttype, confidence=1.0 if not widened else 0.9)
            row["reasons"].append(f"custom field: the pair's custom_fields rule makes it {x_name} ({ttype}"
                                  + (f", widened from {cf.ttype}: {widened}" if widened else "") + ")")
        # custom values no definition names (Link app): an x_ field typed from their values, by the same rules
        for row in rows:
            if row["kind"] != "pending":
                continue
            desc = {"name": row["source field"], "type": row["source type"], "custom": True,
                    "label": row["source field"].rsplit(".", 1)[-1].replace("_", " ").capitalize()}
            (cf,) = pair.custom_fields.plan(name, [desc], ns=ns, taken={}) or (None,)
            if cf is None or cf.field is None:
                row.update(kind="not migrated", target=None, reasons=[*row["reasons"], "no custom_fields rule"])
                continue
            x_name = cf.name if cf.name not in seen_names else _unique_name(pair, cf.source_field, set(seen_names))
            seen_names[x_name] = row["source field"]
            ttype, _w = _holding_type(cf.ttype, None, matcher.profiles[row["source field"]])
            entry: dict[str, Any] = {"from": _unexpand(row["source field"], ns)}
            if cf.field.fn:
                entry["fn"] = cf.field.fn[0].name
            entries[x_name] = entry
            x_fields.setdefault(obj.model, {})[x_name] = {"ttype": ttype, "label": cf.label}
            row.update(kind="new x_", target=x_name, transform=entry.get("fn", ""), ttype=ttype, confidence=0.8)
            row["reasons"].append(f"no definition names this custom value: {x_name} ({ttype}) typed from its values")
        for tname in entries:           # an x_ field already in Odoo (or the pair's for this version): declared
            t = matcher.target.get(tname)
            if tname.startswith("x_") and t is not None and tname not in (x_fields.get(obj.model) or {}):
                decl = {"ttype": t.get("type"), "label": t.get("string") or tname}
                if t.get("relation"):
                    decl["relation"] = t["relation"]
                x_fields.setdefault(obj.model, {})[tname] = decl
        prop.rows.extend(rows)
        prop.entries[name] = entries
        prop.comments[name] = matcher.comments
        prop.not_migrated[name] = [f"{r['source field']}: {r['reasons'][-1] if r['reasons'] else ''}"
                                   for r in rows if r["kind"] == "not migrated"]
        objects_raw[name] = _merged_object(objects_raw[name], obj, entries, rows, ns, prop, name,
                                           conditions=matcher.conditions)
    if overrides:
        raw.setdefault("custom_fields", {})["overrides"] = overrides
    prop.raw = raw
    prop.yaml = dump_pair(raw, comments=prop.comments, not_migrated=prop.not_migrated,
                          header=f"Proposed by the plan for {pair.pair}: review, edit and confirm before migrating.")
    try:
        parse_pair(yaml.load(prop.yaml, Loader=_LOADER), origin="proposal.yaml")  # noqa: S506 - a safe loader
    except SpecError as exc:
        prop.error = str(exc)
    return prop


def _with_declared(fields_get: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The target's fields plus the ``x_`` fields the pair declares (``x_fields``) that Odoo does not have yet:
    the schema step creates them before any record moves, so the proposal is the same before and after the first
    run (after it, Odoo's ``fields_get`` lists them)."""
    out = dict(fields_get)
    for x_name, decl in declared.items():
        if x_name not in out:
            out[x_name] = {"type": decl.get("ttype"), "string": decl.get("label") or x_name,
                           "relation": decl.get("relation"), "store": True, "readonly": False, "declared": True}
    return out


def _unique_name(pair: PairSpec, api: str, taken: set[str]) -> str:
    """``x_<namespace>_<name>`` for a custom field whose rule name is taken (another namespace's field)."""
    base = api.rsplit(".", 1)[-1]
    base = base[:-3] if base.lower().endswith("__c") else base
    name = pair.custom_fields.prefix + re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_")
    name = name[:pair.custom_fields.max_length]
    n = 2
    while name in taken:
        name = f"{name[:pair.custom_fields.max_length - 3]}_{n}"
        n += 1
    return name


def _holding_type(ttype: str, size: int | None, prof: Mapping[str, Any]) -> tuple[str, str]:
    """The rule's ``ttype`` or a wider one that holds every sampled value, and why it was widened."""
    filled, looks = prof.get("filled", 0), prof.get("looks", {})
    if not filled:
        return ttype, ""
    if ttype == "char" and (prof.get("multiline") or (size and prof.get("max length", 0) > size)):
        return "text", f"values up to {prof.get('max length')} characters" + (" over several lines"
                                                                             if prof.get("multiline") else "")
    if ttype == "integer" and looks.get("integer", 0) < 1:
        return ("float", "decimal values") if looks.get("number", 0) == 1 else ("char", "values that are not numbers")
    if ttype in ("float", "monetary") and looks.get("number", 0) < 1:
        return "char", "values that are not numbers"
    if ttype == "date" and looks.get("date", 0) < 1:
        return ("datetime", "values with a time") if looks.get("datetime", 0) + looks.get("date", 0) >= 1 \
            else ("char", "values that are not dates")
    if ttype == "datetime" and looks.get("datetime", 0) + looks.get("date", 0) < 1:
        return "char", "values that are not dates"
    if ttype == "boolean" and looks.get("boolean", 0) < 1:
        return "char", "values that are not true/false"
    return ttype, ""


class _ObjectMatcher:
    """The field-to-field matching of one record object."""

    def __init__(self, pair: PairSpec, obj: ObjectSpec, schema: list[Mapping[str, Any]],
                 records: list[Mapping[str, Any]], target: Mapping[str, Any], suggester: Suggester | None) -> None:
        self.pair, self.obj, self.schema, self.target, self.suggester = pair, obj, schema, target, suggester
        self.rows: list[dict[str, Any]] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, str] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.by_name = {str(f["name"]): f for f in schema}
        self.records = records
        #: x_ fields the proposal adds for raw copies (neither in Odoo nor declared by the pair): name -> declaration
        self.new_x: dict[str, dict[str, Any]] = {}
        #: conditions the proposed entries name that the object in force lacks: name -> definition
        self.conditions: dict[str, Any] = {}
        #: a status deal without a probability field: (status field, its won value, the closed condition)
        self._open_probability: tuple[str, str, str] | None = None
        for f in schema:
            opts = [str(v.get("value")) for v in f.get("picklistValues") or () if v.get("active", True)]
            self.profiles[str(f["name"])] = field_profile([get_path(r, str(f["name"])) for r in records],
                                                          options=opts, multi=f.get("type") == "multipicklist")
        self.candidates = {n: t for n, t in target.items() if self._candidate(n, t)}
        self._selections: dict[tuple[str, int], tuple[dict[str, Any], float]] = {}
        self.ns = pair.namespace or None

    @staticmethod
    def _candidate(name: str, t: Mapping[str, Any]) -> bool:
        if name in MAGIC_FIELDS or name.startswith(_SKIP_TARGET_PREFIXES) or t.get("type") in _SKIP_TARGET_TYPES:
            return False
        return not (t.get("readonly") and t.get("store", True) is False)     # computed, not stored: ignored

    # ---- references and lookups -----------------------------------------------------------------------

    def _ref_object(self, src: Mapping[str, Any], relation: str) -> ObjectSpec | None:
        for sobject in src.get("referenceTo") or ():
            for o in self.pair.objects.values():
                if o.target.action == "load" and o.model == relation and sobject in (o.source_object, o.name):
                    return o
        return None

    def _lookup(self, relation: str) -> str | None:
        hits = [n for n, lk in self.pair.lookups.items() if lk.model == relation and not lk.options.get("value")]
        return hits[0] if hits else None

    def _resolution(self, src: Mapping[str, Any], tname: str, t: Mapping[str, Any]) -> dict[str, Any] | None:
        """How a value of ``src`` becomes a record id for the relational field ``t`` (``None``: it cannot)."""
        relation = str(t.get("relation") or "")
        if t.get("type") != "many2one":
            return None
        if src.get("type") == "reference" or src.get("referenceTo"):
            ref = self._ref_object(src, relation)
            if ref is not None and len(ref.target.id_fields) == 1:
                return {"ref": ref.name, "fit": 1.0}
            lookup = self._lookup(relation)
            if lookup and any(self.pair.lookups[lookup].options.get("source_object") == s
                              for s in src.get("referenceTo") or ()):
                return {"lookup": lookup, "fit": 1.0}
            if ref is not None:                       # a composite key (pipeline/stage): by its parts
                return self._composite(src, ref)
            return None
        if src.get("type") in ("date", "datetime", "boolean", "double", "currency", "percent", "int", "textarea"):
            return None                               # a value no lookup resolves
        # a value (a name, a code, a stage): a composite-key object of that model, else a lookup into it
        stage = next((o for o in self.pair.loadable() if o.model == relation and len(o.target.id_fields) == 2), None)
        if stage is not None:
            return self._composite(src, stage)
        lookup = self._lookup(relation)
        if lookup is None or self.pair.lookups[lookup].options.get("source_object"):
            return None
        return {"lookup": lookup, "fit": 0.8}

    def _composite(self, src: Mapping[str, Any], ref: ObjectSpec) -> dict[str, Any] | None:
        """A ref to an object keyed by two parts (a stage: its pipeline, then itself): the source field
        referring to the object the first part names, then ``src``."""
        parents = set(ref.depends_on)
        for f in self.schema:
            if f is src:
                continue
            for sobject in f.get("referenceTo") or ():
                if any(o.name in parents and sobject in (o.source_object, o.name) for o in self.pair.objects.values()):
                    out: dict[str, Any] = {"from": [str(f["name"]), str(src["name"])], "ref": ref.name,
                                           "fit": 1.0 if src.get("referenceTo") else 0.8}
                    fb = next((n for n, lk in self.pair.lookups.items() if lk.model == ref.model
                               and lk.options.get("pipeline")), None)
                    if fb:
                        out["fallback"] = fb
                    return out
        return None

    # ---- scoring ---------------------------------------------------------------------------------------

    def _type_fit(self, src: Mapping[str, Any], tname: str, t: Mapping[str, Any]) -> tuple[float, str, Any]:
        stype, ttype = str(src.get("type") or "string"), str(t.get("type"))
        if ttype == "many2one":
            res = self._resolution(src, tname, t)
            if res is None:
                return 0.0, f"{stype} cannot give a {t.get('relation')} id (no migrated object nor lookup)", None
            how = f"ref {res['ref']}" if "ref" in res else f"lookup {res['lookup']}"
            fit = res.pop("fit")
            return fit, f"{stype} -> many2one {t.get('relation')} by {how}", res
        if stype == "reference":
            return 0.0, "a reference needs a many2one", None
        fit = _TYPE_FIT.get(stype, {"char": 0.8, "text": 0.8}).get(ttype, 0.0)
        if ttype == "selection":
            mapping, share = self._selection_map(src, t)
            if not mapping or share < 0.5:
                return 0.0, f"its values fit none of {tname}'s options", None
            return fit * share, f"{stype} -> selection ({round(share * 100)} % of the options map)", mapping
        return fit, f"{stype} -> {ttype}", None

    def _selection_map(self, src: Mapping[str, Any], t: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        key = (str(src["name"]), id(t))
        if key not in self._selections:
            self._selections[key] = self._selection_map_of(src, t)
        return self._selections[key]

    def _selection_map_of(self, src: Mapping[str, Any], t: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        opts = [str(v.get("value")) for v in src.get("picklistValues") or () if v.get("active", True)]
        prof = self.profiles.get(str(src["name"])) or {}
        if not opts and prof.get("distinct", 99) <= 12:     # a value field with few values (a status)
            opts = sorted(prof.get("values") or ())
        choices = [(str(k), str(label)) for k, label in (t.get("selection") or ())]
        if not opts or not choices:
            return {}, 0.0
        # each option to the selection value whose key or label is closest (rapidfuzz's extractOne, C speed)
        texts = [c[1].lower() for c in choices] + [c[0].lower() for c in choices]
        mapping: dict[str, Any] = {}
        for o in opts:
            want = VALUE_SYNONYMS.get(o.lower().strip(), o.lower().strip())
            hit = process.extractOne(want, texts, scorer=fuzz.ratio, score_cutoff=85)
            if hit is not None:
                mapping[o] = choices[hit[2] % len(choices)][0]
        return mapping, len(mapping) / len(opts)

    def _value_fit(self, src: Mapping[str, Any], tname: str, t: Mapping[str, Any]) -> tuple[float, str]:
        prof = self.profiles.get(str(src["name"])) or {}
        looks = prof.get("looks") or {}
        if not prof.get("filled"):
            return 0.5, "no sampled value"
        want = {"email": "email", "email_from": "email", "website": "url", "phone": "phone", "mobile": "phone"}
        kind = want.get(tname)
        if kind:
            return looks.get(kind, 0.0), f"{round(looks.get(kind, 0.0) * 100)} % look like {kind}s"
        for kind in ("email", "url", "phone"):
            if looks.get(kind, 0) >= 0.9 and t.get("type") in ("char", "text"):
                return 0.3, f"values look like {kind}s, {tname} is not one"
        return 1.0, "values fit"

    def score(self, src: Mapping[str, Any], tname: str, t: Mapping[str, Any]) -> tuple[float, list[str], Any]:
        type_fit, type_why, extra = self._type_fit(src, tname, t)
        if type_fit <= 0:
            return 0.0, [type_why], None
        name, name_why = _name_score(src, tname, t, obj=self.obj.source_object)
        value, value_why = self._value_fit(src, tname, t)
        w = _WEIGHTS
        total = round(w[0] * name + w[1] * type_fit + w[2] * value, 3)
        return total, [f"name {name:.2f} ({name_why})", f"type {type_fit:.2f} ({type_why})",
                       f"values {value:.2f} ({value_why})"], extra

    # ---- the run ---------------------------------------------------------------------------------------

    def run(self) -> None:
        scored: list[tuple[float, str, str, list[str], Any]] = []
        rows: dict[str, dict[str, Any]] = {}
        for f in self.schema:
            fname = str(f["name"])
            prof = self.profiles[fname]
            row = {"object": self.obj.name, "source field": fname, "source type": f.get("type"),
                   "custom": bool(f.get("custom")), "target": None, "kind": "pending", "transform": "",
                   "confidence": 0.0, "reasons": [], "empty %": round(prof["empty share"] * 100, 1),
                   "outside options": prof.get("outside") or {}}
            rows[fname] = row
            if fname.lower() in SYSTEM_FIELDS or f.get("type") in ("id", "base64", "address", "location"):
                row.update(kind="not migrated", confidence=1.0,
                           reasons=["system field: the record's id is its x_migration_key, its dates and "
                                    "audit users are the source's own"])
                continue
            for tname, t in self.candidates.items():
                total, why, extra = self.score(f, tname, t)
                if total > 0:
                    scored.append((total, fname, tname, why, extra))
            if self.suggester is not None:
                for tname, conf, reason in self.suggester.suggest(self.obj.name, f, prof, self.candidates):
                    if tname in self.candidates:
                        total, why, extra = self.score(f, tname, self.candidates[tname])
                        if total > 0:
                            scored.append((max(total, min(1.0, conf)), fname, tname, [*why, f"suggested: {reason}"],
                                           extra))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        best_seen: dict[str, tuple[float, str, list[str]]] = {}
        for total, fname, tname, why, _extra in scored:
            best_seen.setdefault(fname, (total, tname, why))
        taken: dict[str, str] = {}
        self._names(rows, taken)
        status = self._deal_status(rows, taken)
        # Odoo's own fields first; then the x_ fields (in Odoo, or declared by the pair): the home of a field no
        # Odoo field takes, or a second target keeping the value as written beside a mapped one
        scored = [s for s in scored if not s[2].startswith("x_")] + [s for s in scored if s[2].startswith("x_")]
        for total, fname, tname, why, extra in scored:
            row = rows[fname]
            if tname.startswith("x_") and row["kind"] == "existing" and not str(row["target"]).startswith("x_"):
                self._raw_copy(row, tname, total, taken)
                continue
            if row["kind"] != "pending" or (tname.startswith("x_") and row["custom"]):
                continue
            if tname in taken:
                other = rows[taken[tname]]
                entry = self.entries.get(tname) or {}
                if (total >= ACCEPT_FALLBACK and not row["custom"] and "ref" in entry and "fallback" not in entry and isinstance(extra, dict)
                        and "ref" in extra and "from" not in extra):
                    self._merge_ref(entry, fname, extra["ref"])        # a fallback reference (contact, else company)
                    row.update(kind="existing", target=tname, transform=f"ref {extra['ref']} (after "
                               f"{other['source field']})", confidence=total, reasons=why)
                continue
            if total < (ACCEPT_CUSTOM if row["custom"] else ACCEPT):
                continue
            taken[tname] = fname
            self._accept(row, rows, tname, self.candidates[tname], total, why, extra, taken)
        if status:
            self._closed_fields(rows, *status)
        self._lossy_copies(rows, taken)
        self._stage_history(rows)
        self._stage_probability(rows)
        self._address_type(rows, taken)
        for fname, row in rows.items():
            if row["kind"] != "pending" or row["custom"]:
                continue
            f = self.by_name[fname]
            if fname.startswith("custom_fields."):
                continue                          # a custom value without a definition: typed later
            prof = self.profiles[fname]
            if not prof["filled"]:
                row.update(kind="not migrated", confidence=0.9, reasons=["empty in every sampled record"])
            elif fname in best_seen:
                total, tname, why = best_seen[fname]
                row.update(kind="not migrated", confidence=round(1 - total, 3),
                           reasons=[f"no Odoo field of {self.obj.model} fits well enough: best {tname} ({total:.2f}: "
                                    + "; ".join(why) + "); keep it in an x_ field if it matters"])
            else:
                row.update(kind="not migrated", confidence=0.9,
                           reasons=[f"no Odoo field of {self.obj.model} takes a {f.get('type')}; keep it in an "
                                    "x_ field if it matters"])
        self.rows = list(rows.values())
        for row in rows.values():
            if row["custom"] and row["kind"] == "existing" and not row.get("also"):
                row["reasons"].append("its raw value is kept in its x_ field too (custom_fields rule)")
                row["keep custom"] = True
        for row in self.rows:
            if row["target"] and row["kind"] == "existing":
                self.comments.setdefault(row["target"], f"{row['confidence']:.2f}: " + "; ".join(
                    r.split(" (")[0] for r in row["reasons"][:3]))

    # ---- rules beyond field-to-field --------------------------------------------------------------------

    def _condition(self, name: str, definition: Mapping[str, Any]) -> str:
        """The condition ``name`` an entry is sent under: the object's own of that name (kept as written), else
        ``definition``, added to the proposal."""
        if name not in self.obj.conditions:
            self.conditions[name] = dict(definition)
        return name

    def _raw_copy(self, row: dict[str, Any], tname: str, total: float, taken: dict[str, str]) -> None:
        """An x_ field (in Odoo, or declared by the pair) named as a source field that went to one of Odoo's own
        fields: the value as written is kept there too (a selection, a lookup or a field Odoo sets keeps less)."""
        fname = str(row["source field"])
        t = self.candidates[tname]
        name, _ = _name_score(self.by_name[fname], tname, t, obj=self.obj.source_object)
        if tname in taken or total < ACCEPT or name < 0.95:
            return
        entry: dict[str, Any] = {"from": fname}
        if fn := _transform(self.by_name[fname], tname, t, self.profiles[fname]):
            entry["fn"] = fn
        self.entries[tname] = entry
        taken[tname] = fname
        where = "an x_ field the pair declares" if t.get("declared") else "an x_ field already in Odoo"
        row.setdefault("also", []).append(tname)
        row["reasons"].append(f"its value as written is also kept in {tname} ({where}, same name {name:.2f})")
        self.comments[tname] = f"{total:.2f}: {fname} as written, beside {row['target']}; {where}"

    def _lossy_copies(self, rows: dict[str, dict[str, Any]], taken: dict[str, str]) -> None:
        """A source field whose Odoo field keeps less than its value (a selection keeps one of its options; a
        field Odoo sets itself is overwritten) and that has no x_ field of its name: a new one keeps it as written."""
        label_of = self.pair.source.replace("_", " ").capitalize()
        for fname, row in rows.items():
            why = row.get("lossy")
            if not why or row.get("also") or row["kind"] != "existing" or row["custom"]:
                continue                      # (a custom field keeps its value in its own x_ field: the rule's)
            t = self.candidates[str(row["target"])]
            ttype = "char" if t.get("type") == "selection" else str(t.get("type"))
            base = re.sub(r"[^a-z0-9]+", "_", _words(fname)).strip("_")
            x_name = f"x_{self.pair.source}_{base}"[:self.pair.custom_fields.max_length]
            if x_name in self.candidates or x_name in self.new_x or x_name in taken:
                continue
            src = self.by_name[fname]
            label = str(src.get("label") or fname).replace(".", " ").replace("_", " ")
            self.new_x[x_name] = {"ttype": ttype, "label": f"{label[:1].upper()}{label[1:]} ({label_of})"}
            entry: dict[str, Any] = {"from": fname}
            if fn := _transform(src, x_name, {"type": ttype}, self.profiles[fname]):
                entry["fn"] = fn
            self.entries[x_name] = entry
            taken[x_name] = fname
            row.setdefault("also", []).append(x_name)
            row["reasons"].append(f"{why}: its value as written is kept in a new {x_name} ({ttype})")
            self.comments[x_name] = f"0.80: {fname} as written ({why})"

    def _stage_history(self, rows: dict[str, dict[str, Any]]) -> None:
        """The time a deal entered its stage, from its stage history where the object reads one (an enrichment
        holding the stage field and when each row was made: ``stage_entered_at`` takes the newest row of the
        current stage, else the deal's own stage date)."""
        stage_src = next((_plain_sources(e)[-1] for n, e in self.entries.items() if _plain_sources(e)
                          and (self.candidates.get(n) or {}).get("type") == "many2one"
                          and "stage" in _concepts(_words(n))), None)
        if stage_src is None:
            return
        history = next((n for n, e in self.obj.enrich.items() if isinstance(e, Mapping)
                        and {stage_src, *_HISTORY_KEYS} <= set(e.get("fields") or ())), None)
        if history is None:
            return
        for tname, entry in self.entries.items():
            t = self.candidates.get(tname) or {}
            if not isinstance(entry.get("from"), str) or t.get("type") not in ("datetime", "date") \
                    or "stage date" not in _concepts(_words(tname), _label(t)):
                continue
            date_src = entry["from"]
            entry["from"], entry["fn"] = [history, stage_src, date_src], "stage_entered_at"
            rows[date_src]["reasons"].append(
                f"{tname}: when the deal entered its current stage, from its stage history ({history}: the newest "
                f"row of {stage_src}), else {date_src} (stage_entered_at)")
            self.comments[tname] = f"0.90: the stage history {history} (stage_entered_at), else {date_src}"

    def _stage_probability(self, rows: dict[str, dict[str, Any]]) -> None:
        """A deal with a status but no probability of its own shows its stage's (a stage object of the pair mapping a
        probability): an open deal's probability is read through the field that refers to its stage
        (``=stage_id.<the stage's probability field>``), won 100, lost 0 (deal_probability); none known: not
        sent. What it lands with is then the source's, not the order deals land in (Odoo's predictive score
        stays in automated_probability)."""
        if self._open_probability is None or "probability" not in self.entries:
            return
        status, won, closed = self._open_probability
        for tname, entry in self.entries.items():
            ref = entry.get("ref")
            stage = self.pair.objects.get(ref) if isinstance(ref, str) else None
            if stage is None:
                continue
            prob = next((n for n, f in stage.fields.items() if "probability" in _concepts(_words(n), *(
                _words(p) for p in f.sources if not p.startswith(NOT_RECORD_PATHS)))), None)
            if prob is None:
                continue
            won_cond = self._condition("won", {"from": status, "fn": "selection",
                                               "args": {"mapping": {won: True}, "default": False}})
            self.entries["probability"] = {"from": [f"={tname}.{prob}", f"${closed}", f"${won_cond}"],
                                           "fn": "deal_probability", "args": {"empty": None}}
            rows[status]["reasons"].append(
                f"an open deal has no probability of its own: its stage's ({tname}.{prob}, as the source shows it); "
                f"{won} 100, lost 0 (deal_probability)")
            self.comments["probability"] = (f"0.90: the source deal has no probability: its stage's ={tname}.{prob} "
                                            f"when open, {won} 100, lost 0 (deal_probability)")
            return

    def _address_type(self, rows: dict[str, dict[str, Any]], taken: dict[str, str]) -> None:
        """A partner's type from its parent and its address: Odoo copies a parent company's address onto a child
        of type ``contact``, so a record with a parent and an address of its own is ``other`` (the setting
        ``contact_own_address_type``), else ``contact`` (``contact_partner_type``)."""
        t = self.candidates.get("type") or {}
        keys = {str(k) for k, _label_ in t.get("selection") or ()}
        parent = self.entries.get("parent_id") or {}
        if "type" in taken or t.get("type") != "selection" or not {"contact", "other"} <= keys \
                or "ref" not in parent or not isinstance(parent.get("from"), str):
            return
        address = list(dict.fromkeys(_plain_sources(e)[0] for n in T.ADDRESS_FIELDS
                                     if (e := self.entries.get(n)) and _plain_sources(e)))
        if not address:
            return
        cond = self._condition("own_address", {"any_of": address})
        self.entries["type"] = {"from": [parent["from"], f"${cond}"], "fn": "contact_partner_type"}
        taken["type"] = parent["from"]
        rows[parent["from"]]["reasons"].append(
            "also gives the partner's type: Odoo copies a parent's address onto a child of type contact, so one "
            f"with an address of its own ({cond}) under a parent is type other (contact_partner_type)")
        self.comments["type"] = (f"0.90: Odoo's address sync: {parent['from']} and {cond} "
                                 "(settings.contact_own_address_type)")

    def _flag(self, concept: str) -> str | None:
        return next((n for n, f in self.by_name.items() if f.get("type") == "boolean"
                     and concept in _concepts(_words(n))), None)

    def _deal_status(self, rows: dict[str, dict[str, Any]], taken: dict[str, str]) -> tuple[str, str] | None:
        """A deal's status from its closed and won flags (vocabulary): closed and not won is lost, which Odoo
        archives (``active``: deal_active); its probability is 100 when won, 0 when lost, else the source's
        (deal_probability)."""
        closed, won = self._flag("closed"), self._flag("won")
        if "active" not in self.candidates:
            return None
        if not closed or not won:             # a status field whose values are won, lost (and open ones)
            status = next((n for n in self.by_name if {"won", "lost"} <= {str(v).lower() for v in
                                                                         self.profiles[n].get("values") or ()}), None)
            if status:
                lost = next(str(v) for v in self.profiles[status]["values"] if str(v).lower() == "lost")
                self.entries["active"] = {"from": status, "fn": "selection",
                                          "args": {"mapping": {lost: False}, "default": True}}
                taken["active"] = status
                why = ["vocabulary: a lost deal is archived in Odoo (active false)"]
                won = next(str(v) for v in self.profiles[status]["values"] if str(v).lower() == "won")
                prob = next((n for n, f in self.by_name.items() if "probability" in _concepts(_words(n))), None)
                if "probability" in self.candidates and prob is None:
                    # a closed deal's probability is Odoo's own rule (won 100, lost 0); an open deal's is left to
                    # its stage, so the entry is sent only for a closed deal (condition closed)
                    closed = self._condition("closed", {"from": status, "fn": "selection", "args": {
                        "mapping": {won: True, lost: True}, "default": False}})
                    self.entries["probability"] = {"from": status, "fn": "selection", "args": {
                        "mapping": {won: 100.0, lost: 0.0}, "default": None}, "when": closed}
                    taken["probability"] = status
                    why.append(f"a closed deal's probability: {won} 100, {lost} 0 (sent when {closed}; an open "
                               "deal's is its stage's)")
                    self.comments["probability"] = f"0.90: {status} {won} 100, {lost} 0, when {closed} (Odoo's rule)"
                    self._open_probability = (status, won, closed)     # an open deal's: its stage's, if it has one
                rows[status].update(kind="existing", target="active", transform="selection", confidence=0.9,
                                    reasons=why)
            return None
        why = ["vocabulary: a deal closed and not won is lost (archived in Odoo), won is probability 100"]
        self.entries["active"] = {"from": [closed, won], "fn": "deal_active"}
        taken["active"] = closed
        for flag in (closed, won):
            rows[flag].update(kind="existing", target="active", transform="deal_active", confidence=0.9, reasons=why)
        prob = next((n for n, f in self.by_name.items() if "probability" in _concepts(_words(n))
                     and f.get("type") in ("percent", "double", "int")), None)
        if prob and "probability" in self.candidates:
            self.entries["probability"] = {"from": [prob, closed, won], "fn": "deal_probability"}
            taken["probability"] = prob
            rows[prob].update(kind="existing", target="probability", transform="deal_probability", confidence=0.95,
                              reasons=why)
        return closed, won

    def _closed_fields(self, rows: dict[str, dict[str, Any]], closed: str, won: str) -> None:
        """With a deal's closed and won flags: its lost reason only when lost (if_lost); its closing date, when
        closed, in ``date_closed`` (written after the record: Odoo sets it on a stage or probability write)."""
        lost = self.entries.get("lost_reason_id")
        if lost and "lookup" in lost and isinstance(lost.get("from"), str):
            lost.update({"from": [lost["from"], closed, won], "fn": "if_lost"})
        deadline = self.entries.get("date_deadline")
        if deadline and isinstance(deadline.get("from"), str) and "date_closed" in self.candidates \
                and "date_closed" not in self.entries:
            self.entries["date_closed"] = {"from": [deadline["from"], closed], "fn": ["if_closed", "date_to_datetime"],
                                           "deferred": True}

    def _names(self, rows: dict[str, dict[str, Any]], taken: dict[str, str]) -> None:
        """A person's name from its parts (first and last name) when the source has both."""
        first = next((n for n, f in self.by_name.items() if "first name" in _concepts(_words(n))), None)
        last = next((n for n, f in self.by_name.items() if "last name" in _concepts(_words(n))), None)
        if not first or not last or "name" not in self.candidates:
            return
        taken["name"] = first
        self.entries["name"] = {"from": [first, last], "fn": "join_name"}
        why = ["vocabulary: a person's name is its first and last name (join_name)"]
        nameless = sum(1 for r in self.records if not _filled(get_path(r, first)) and not _filled(get_path(r, last)))
        required = any(self.by_name[p].get("nillable") is False for p in (first, last))
        email = next((n for n, f in self.by_name.items() if f.get("type") == "email"
                      or "email" in _concepts(_words(n))), None)
        if email and (nameless or not required):
            # Odoo needs a name: a person with neither part is named by its email rather than "(no name)"
            self.entries["name"] = {"from": [first, last, email], "fn": "person_name"}
            why = [f"vocabulary: a person's name is its first and last name; the source does not require one "
                   f"({nameless} sampled record(s) have neither): such a person is named by its {email} "
                   "(person_name, flagged)"]
            rows[email]["reasons"].append("also names a person without a first or last name (person_name)")
        for part in (first, last):
            rows[part].update(kind="existing", target="name", transform=self.entries["name"]["fn"], confidence=0.95,
                              reasons=list(why))
        for n, row in rows.items():
            if n.lower() == "name" and row["kind"] == "pending":
                row.update(kind="not migrated", confidence=0.9,
                           reasons=[f"the full name is made of {first} and {last}, mapped to name"])

    @staticmethod
    def _merge_ref(entry: dict[str, Any], fname: str, ref: str) -> None:
        sources = entry["from"] if isinstance(entry["from"], list) else [entry["from"]]
        refs = entry["ref"] if isinstance(entry["ref"], list) else [entry["ref"]]
        entry["from"], entry["ref"] = [*sources, fname], [*refs, ref]

    def _accept(self, row: dict[str, Any], rows: dict[str, dict[str, Any]], tname: str, t: Mapping[str, Any],
                total: float, why: list[str], extra: Any, taken: dict[str, str]) -> None:
        fname = str(row["source field"])
        src = self.by_name[fname]
        entry: dict[str, Any] = {"from": fname}
        fn = _transform(src, tname, t, self.profiles[fname])
        if isinstance(extra, dict) and extra and t.get("type") == "many2one":
            entry.update(extra)
            if "from" in extra:
                entry["from"] = list(extra["from"])
            fn = ""
            lookup = extra.get("lookup")
            within = self.pair.lookups[lookup].options.get("within") if lookup else None
            if within:                                    # a state: looked up within its country
                country = next((n for n, f in self.by_name.items() if "country" in _concepts(_words(n))
                                and n != fname), None)
                if country:
                    entry["from"] = [fname, country]
        elif t.get("type") == "selection" and isinstance(extra, dict):
            fn = ""
            entry["fn"] = "selection"
            entry["args"] = {"mapping": dict(extra), "default": None}
            row["lossy"] = f"{tname} keeps one of its {len(t.get('selection') or ())} options"
        if fn:
            entry["fn"] = fn
        if t.get("readonly") and t.get("store", True) and not t.get("declared"):
            entry["deferred"] = True          # a field Odoo sets itself on create (a stage's date): written after
            why = [*why, f"{tname} is set by Odoo on create: written after the record exists (deferred)"]
            row["lossy"] = f"Odoo sets {tname} itself"
        if fn == "street_line" and "street2" in self.candidates and "street2" not in taken:
            taken["street2"] = fname
            self.entries["street2"] = {"from": fname, "fn": "street_line", "args": {"line": 2}}
        self.entries[tname] = entry
        row.update(kind="existing", target=tname, transform=entry.get("fn") or (
            f"ref {entry['ref']}" if "ref" in entry else f"lookup {entry.get('lookup')}" if "lookup" in entry else ""),
            confidence=total, reasons=why)


def _transform(src: Mapping[str, Any], tname: str, t: Mapping[str, Any], prof: Mapping[str, Any]) -> str:
    """The transform a value of ``src`` needs to land in the Odoo field ``tname``."""
    stype, ttype = str(src.get("type") or "string"), str(t.get("type"))
    if tname in ("email", "email_from"):
        return "normalize_email"
    if tname in ("phone", "mobile") or (stype == "phone" and ttype == "char"):
        return "phone"
    if tname == "website":
        return "website"
    if tname == "street" and (prof.get("multiline") or stype == "textarea"):
        return "street_line"
    if ttype == "html":
        return "html_clean" if stype == "html" else "html_text"
    if ttype in ("char", "text"):
        return "multipicklist" if stype == "multipicklist" else "text"
    return {"float": "float", "monetary": "float", "integer": "int", "boolean": "bool", "date": "date",
            "datetime": "sf_datetime_to_odoo"}.get(ttype, "")


# --------------------------------------------------------------------------------------------------
# Writing the proposal into the pair file
# --------------------------------------------------------------------------------------------------


def _plain_sources(entry: Mapping[str, Any]) -> list[str]:
    src = entry.get("from")
    paths = src if isinstance(src, list) else [src] if src is not None else []
    return [str(p) for p in paths if not str(p).startswith(NOT_RECORD_PATHS)]


def _merged_object(raw_obj: dict[str, Any], obj: ObjectSpec, entries: Mapping[str, dict[str, Any]],
                   rows: Sequence[Mapping[str, Any]], ns: str | None, prop: Proposal, name: str, *,
                   conditions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The object's fields as proposed: the proposer's entries (an entry in force that reads the same source
    for the same Odoo field is kept as written: its conditions, deferral and arguments), then the entries in
    force the proposer has no opinion on whose sources the source still holds (structural entries: constants,
    conditions, enrichments). ``conditions`` the proposer's entries name are added where the object lacks them."""
    live = {str(r["source field"]).lower() for r in rows}
    in_force: dict[str, Any] = dict(raw_obj.get("fields") or {})
    out: dict[str, Any] = {}
    notes = prop.comments.setdefault(name, {})
    proposed_sources = set()
    for tname, entry in entries.items():
        entry = _unexpand_entry(entry, ns)
        proposed_sources.update(s.lower() for s in _plain_sources(entry))
        old = in_force.get(tname)
        if isinstance(old, Mapping) and (old == entry or {_expand_path(s, ns).lower() for s in _plain_sources(entry)} & {
                _expand_path(s, ns).lower() for s in _plain_sources(old)}):
            out[tname] = old
            notes[tname] = "as in force; proposed " + notes.get(tname, "")
        else:
            out[tname] = entry
            notes[tname] = ("CHANGED; " if old is not None else "NEW; ") + notes.get(tname, "")
    for tname, old in in_force.items():
        if tname in out:
            continue
        srcs = _plain_sources(old) if isinstance(old, Mapping) else []
        gone = [s for s in srcs if "." not in s and _expand_path(s, ns).lower() not in live]
        if any(s.split(".")[0] in obj.enrich for s in srcs):
            gone = []
        if gone:
            prop.not_migrated.setdefault(name, []).append(
                f"(in force) {tname} from {', '.join(gone)}: the {', '.join(gone)} field is not in the source")
            continue
        out[tname] = old
        notes[tname] = "kept from the mapping in force"
    order = [k for k in in_force if k in out] + [k for k in out if k not in in_force]
    new_obj = dict(raw_obj)
    new_obj["fields"] = {k: out[k] for k in order}
    if conditions:
        have = dict(new_obj.get("conditions") or {})
        for cname, cdef in conditions.items():
            have.setdefault(cname, _unexpand_entry(cdef, ns) if "from" in cdef else dict(cdef))
        new_obj["conditions"] = have
    stream = dict(new_obj.get("stream") or {})
    if stream.get("kind") == "soql" and isinstance(stream.get("fields"), list):
        keep = [f for f in stream["fields"] if "." in f or _expand_path(f, ns).lower() in live]
        have = {_expand_path(f, ns).lower() for f in keep}
        for entry in out.values():
            for s in _plain_sources(entry) if isinstance(entry, Mapping) else []:
                if "." not in s and _expand_path(s, ns).lower() not in have and s.split(".")[0] not in obj.enrich:
                    keep.append(s)
                    have.add(_expand_path(s, ns).lower())
        stream["fields"] = keep
        new_obj["stream"] = stream
    return new_obj


def _expand_path(path: str, ns: str | None) -> str:
    return path.replace("<ns>", ns) if ns else path.replace("<ns>__", "")


def _unexpand_entry(entry: Mapping[str, Any], ns: str | None) -> dict[str, Any]:
    out = dict(entry)
    src = out.get("from")
    if isinstance(src, list):
        out["from"] = [_unexpand(str(s), ns) for s in src]
    elif src is not None:
        out["from"] = _unexpand(str(src), ns)
    return out


_TOP_ORDER = ("pair", "source", "version", "description", "settings", "lookups", "x_fields", "custom_fields",
              "objects", "targets")


def _flow(value: Any) -> str:
    return yaml.dump(value, Dumper=_DUMPER, default_flow_style=True, allow_unicode=True, width=10_000,
                     sort_keys=False).strip()


def dump_pair(raw: Mapping[str, Any], *, comments: Mapping[str, Mapping[str, str]] | None = None,
              not_migrated: Mapping[str, Sequence[str]] | None = None, header: str = "") -> str:
    """A pair file's data as YAML: one line per field entry (so a diff shows a field per line), ``comments``
    at the end of an entry's line, ``not_migrated`` as comment lines under an object's fields."""
    comments, not_migrated = comments or {}, not_migrated or {}
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for key in [k for k in _TOP_ORDER if k in raw] + [k for k in raw if k not in _TOP_ORDER]:
        value = raw[key]
        if key != "objects":
            lines.append(yaml.dump({key: value}, Dumper=_DUMPER, allow_unicode=True, sort_keys=False,
                                   width=110).rstrip())
            continue
        lines.append("objects:")
        for oname, obj in value.items():
            lines.append(f"  {oname}:")
            for okey, ovalue in obj.items():
                if okey != "fields":
                    dumped = yaml.dump({okey: ovalue}, Dumper=_DUMPER, allow_unicode=True, sort_keys=False,
                                       width=110).rstrip()
                    lines.extend("    " + ln for ln in dumped.splitlines())
                    continue
                lines.append("    fields:")
                for fname, fvalue in (ovalue or {}).items():
                    note = (comments.get(oname) or {}).get(fname)
                    lines.append(f"      {fname}: {_flow(fvalue)}" + (f"   # {_one_line(note)}" if note else ""))
                for line in not_migrated.get(oname, ()):
                    lines.append(f"      # not migrated: {_one_line(line)}")
            if "fields" not in obj and not_migrated.get(oname):
                lines.extend(f"    # not migrated: {_one_line(line)}" for line in not_migrated[oname])
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def unified_diff(in_force: str, proposal: str, *, pair: str) -> str:
    """The proposal against the mapping in force (both as :func:`dump_pair` writes them), unified diff."""
    return "".join(difflib.unified_diff(
        _strip_comments(in_force).splitlines(keepends=True), _strip_comments(proposal).splitlines(keepends=True),
        fromfile=f"{pair}.yaml (in force)", tofile="proposal.yaml", n=1))


def _strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("#"):
            continue
        out.append(re.sub(r"\s+# .*$", "", line.rstrip("\n")) + "\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Quality: field -> target against a hand-written pair file
# --------------------------------------------------------------------------------------------------


def mapping_edges(fields_by_object: Mapping[str, Mapping[str, Any]], standard: Mapping[str, set[str]], *,
                  ns: str | None = None) -> set[tuple[str, str, str]]:
    """``(object, source field, Odoo field)`` for every source field an entry reads (``from``, conditions and
    engine values aside), of the objects and source fields in ``standard`` (``{object: lower-case names}``)."""
    out = set()
    for oname, fields in fields_by_object.items():
        names = standard.get(oname)
        if not names:
            continue
        for tname, entry in fields.items():
            if not isinstance(entry, Mapping):
                entry = {"from": list(entry.sources)} if hasattr(entry, "sources") else {}
            for s in _plain_sources(entry):
                s = _expand_path(s, ns).lower()
                if s in names:
                    out.add((oname, s, tname))
    return out


def precision_recall(rows: Sequence[Mapping[str, Any]], entries: Mapping[str, Mapping[str, Any]],
                     truth: PairSpec) -> dict[str, Any]:
    """Precision and recall of the proposer's field -> Odoo field edges (``rows`` and ``entries`` of a
    :class:`Proposal`) against a hand-written pair file (resolved), on the record objects' standard fields (a
    custom field's target is a rule's, not a choice): an edge is a source field an entry reads and the Odoo
    field the entry fills."""
    standard: dict[str, set[str]] = {}
    for r in rows:
        if not r["custom"] and not str(r["source field"]).startswith("custom_fields."):
            standard.setdefault(r["object"], set()).add(str(r["source field"]).lower())
    truth_fields = {n: {k: {"from": list(f.sources)} for k, f in truth.objects[n].fields.items()}
                    for n in entries if n in truth.objects}
    ns = truth.namespace or None
    want = mapping_edges(truth_fields, standard, ns=ns)
    got = mapping_edges(entries, standard, ns=ns)
    hit = want & got
    return {"precision": round(len(hit) / len(got), 3) if got else 0.0,
            "recall": round(len(hit) / len(want), 3) if want else 0.0,
            "proposed": len(got), "in the pair file": len(want), "agree": len(hit),
            "only proposed": sorted(got - want), "missed": sorted(want - got)}
