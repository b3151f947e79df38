"""The mapping file of a pair, as typed, validated, frozen objects.

``load_pair("apto_to_odoo")`` reads ``<pairs_folder>/apto_to_odoo.yaml`` (the Airflow option
``[crm_migration] pairs_folder``, when that file exists) or ``crm_migration/pairs/apto_to_odoo.yaml`` (a symlink to
``include/pairs``), or a path, checks it and returns a :class:`PairSpec`. Every error names the object
and the field it is about (:class:`SpecError`): unknown transform or transform argument, unknown
``ref`` object or lookup, a dependency cycle between objects, a missing target model, a bad key
template, a ``from`` field the stream does not read, an ``x_`` field that is not declared.

The file holds no code. Its shape (see ``include/pairs/apto_to_odoo.yaml`` for the full example)::

    pair: apto_to_odoo
    source: apto
    settings: {fallback_user: admin, conflict_policy: source_wins, on_missing_ref: error, ...}
    connections: {source: apto_eu, odoo: odoo_eu, state: crm_migration_state}   # optional; default: DESIGN.md's
    lookups:  {owner: {model: res.users, match: email}, country: {...}, ...}
    x_fields: {res.partner: {x_apto_industry: {ttype: char, label: Industry}}, ...}
    custom_fields: {objects: {Account: res.partner}, type_map: {...}, overrides: {...}}
    objects:
      Contact:
        stream: {kind: soql, fields: [Id, FirstName, ...], replication_key: SystemModstamp}
        target: {model: res.partner, key: "apto:Contact:{Id}"}
        on_conflict: keep_odoo        # or source_wins (default: settings.conflict_policy)
        depends_on: [Account, User]
        fields:
          name:      {from: [FirstName, LastName], fn: join_name}
          parent_id: {from: AccountId, ref: Account}
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from crm_migration.errors import ConfigurationError
from crm_migration.mapping import transforms as T

__all__ = [
    "AttachSpec", "ConditionSpec", "CustomField", "CustomFieldRules", "FieldSpec", "FnStep", "HierarchySpec",
    "ApprovalStep", "Approvals", "LookupSpec", "MappingFile", "NOT_RECORD_PATHS", "ObjectSpec", "PairSpec",
    "Settings", "SpecError", "TargetSpec", "expand_namespace", "get_path", "load_pair", "locate_pair", "pairs_folder", "parse_pair",
    "read_pair_file",
]

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()

ON_MISSING = ("null", "error")
ON_ERROR = ("error", "null")
#: what the load does with a record edited in Odoo since the tool wrote it: ``source_wins`` overwrites the edited
#: fields with the source's values, ``keep_odoo`` keeps Odoo's (``report``: its older name); both report it
CONFLICT_POLICIES = ("source_wins", "keep_odoo", "report")
ON_CONFLICT = ("source_wins", "keep_odoo")
EXTRA_COMPANY_MODES = ("child_contacts", "many2many")
ACTIONS = ("load", "match", "none")
_X_NAME_RE = re.compile(r"^x_[a-z0-9_]+$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_PATH_RE = re.compile(r"^(?:\$[A-Za-z_][A-Za-z0-9_]*|_[A-Za-z0-9_]+|=[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*|"
                      r"(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*(?:\.(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*)*)$")
#: a source path that is no field of the source record: ``$condition``, ``_blob`` (a value the engine attached),
#: ``=field.odoo_field`` (an Odoo field of the record another field of the row maps to)
NOT_RECORD_PATHS = ("$", "_", "=")
MAGIC_FIELDS = frozenset({"id", "create_date", "create_uid", "write_date", "write_uid", "x_migration_key"})


class SpecError(ConfigurationError):
    """The mapping file is invalid; names the pair, the object and the field."""

    def __init__(self, where: str, reason: str, *, obj: str | None = None, field: str | None = None) -> None:
        self.where, self.obj, self.field, self.reason = where, obj, field, reason
        place = where + (f": object {obj}" if obj else "") + (f", field {field}" if field else "")
        super().__init__(f"{place}: {reason}")


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """A value by dotted path: ``Account.BillingCity`` follows a relationship (``None`` if it is null);
    a flat key ``"Account.BillingCity"`` (staging may flatten) is found too; a list on the way maps
    over its items, and a Salesforce sub-query ``{records: [...]}`` is its records."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and "records" in value and part not in value:
            value = value["records"]
        if isinstance(value, list):
            value = [v.get(part) if isinstance(v, Mapping) else None for v in value]
        elif isinstance(value, Mapping):
            value = value.get(part)
            if value is None:
                return None
        else:
            return None
    return value


def fill_id_template(template: str, parts: Sequence[Any]) -> str:
    """``{RecordTypeId}/{ApiName}`` filled with ``parts`` in order: ``012.../Closed Won``."""
    it = iter(str(p) for p in parts)
    return _PLACEHOLDER_RE.sub(lambda _m: next(it), template)


def expand_namespace(text: str, ns: str | None) -> str:
    """Replace ``<ns>`` with ``ns``; with no namespace, ``<ns>__`` disappears (an unmanaged org)."""
    if ns:
        return text.replace("<ns>", ns)
    return text.replace("<ns>__", "").replace("<ns>", "")


def _expand(value: Any, ns: str | None) -> Any:
    if isinstance(value, str):
        return expand_namespace(value, ns)
    if isinstance(value, Mapping):
        return {_expand(k, ns): _expand(v, ns) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_expand(v, ns) for v in value)
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A frozen spec value as plain dicts and lists (for the stream factory, JSON, logs)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


# ---- the model ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FnStep:
    """One transform call: ``name`` with keyword ``args``."""

    name: str
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """How one Odoo field of the target gets its value.

    :param name: the Odoo field.
    :param sources: the source paths (``from``); dotted paths follow relationships (``Account.Name``),
        ``$name`` is a condition's result, ``_blob`` a value the engine attached (file bytes).
    :param many: ``from`` was a list (the transform gets one argument per path).
    :param fn: transforms applied in order (the first gets the source values, the next the result).
    :param ref: source objects whose crosswalk gives the Odoo id (one, or one per ``from`` path: the
        first that resolves wins; with ``fn: as_list`` all that resolve). A list value (many2many)
        becomes ``[(6, 0, ids)]``. An id of another object than its ref (by key prefix) is passed over.
    :param lookup: a named lookup (``owner``, ``country``, ...) resolved by :class:`~.mapper.Refs`.
    :param const: a constant value (no ``from``).
    :param default: used when the value is empty.
    :param required: an empty value is a mapping error.
    :param on_missing: a ``ref``/``lookup`` that finds nothing: ``null`` or ``error``.
    :param on_error: a transform error: ``error`` (the record is dead-lettered) or ``null`` (the field
        is left empty and a warning kept with the row).
    :param when: the name of an object condition; false → the field is not sent at all.
    :param deferred: written in a second ``write`` after the create/update (fields Odoo overwrites
        when they come with others: ``date_closed``, ``date_last_stage_update``, a meeting's deal); or
        the name of an object condition: deferred for the records where it holds. On create, those the
        server keeps when created with them go with the create (``OdooHook.kept_on_create``: a deal's
        ``date_closed``; its ``date_last_stage_update`` from Odoo 19 on).
    :param fallback: a named lookup asked, with the same source values, when a ``ref`` finds nothing (a
        deal's stage outside its pipeline: the pipeline's stage of that name, else its first stage); what
        it answers lands, flagged.

    A source path ``=<field>.<odoo field>`` reads Odoo rather than the source record: the ``<odoo field>`` of the
    record this row maps its field ``<field>`` to (a ``ref`` or a ``lookup`` declared earlier in the object, e.g.
    ``=stage_id.x_link_app_probability``: the probability of the deal's stage, the fallback stage included). A
    repair flagged on ``<field>`` is flagged on this field too; when ``<field>`` has no record to read, the path
    gives None, flagged, and an empty result is not sent at all. ``via`` holds, per such path, ``(field, Odoo
    model, odoo field)``.
    """

    name: str
    sources: tuple[str, ...] = ()
    many: bool = False
    fn: tuple[FnStep, ...] = ()
    ref: tuple[str, ...] = ()
    lookup: str | None = None
    const: Any = MISSING
    default: Any = MISSING
    required: bool = False
    on_missing: str | None = None
    on_error: str = "error"
    when: str | None = None
    deferred: bool | str = False
    fallback: str | None = None
    doc: str | None = None
    # filled in when the pair is parsed: per ref, the referenced object's id template and key prefix
    ref_templates: tuple[str, ...] = ()
    ref_prefixes: tuple[str | None, ...] = ()
    via: Mapping[str, tuple[str, str, str]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class ConditionSpec:
    """A named boolean per record: ``{from: [...], fn: predicate}`` or ``{any_of: [...]}`` (any set)."""

    name: str
    sources: tuple[str, ...]
    fn: tuple[FnStep, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AttachSpec:
    """The record a message/activity/file belongs to: the first of ``sources`` whose id belongs to one of
    ``objects`` (by Salesforce key prefix, or by a type field) and is migrated.

    :param model_field: the Odoo field for the model (``model``, ``res_model``, ``res_model_id``).
    :param model_as: ``name`` (the model name) or ``ir_model`` (the ``ir.model`` id, via lookup ``model``).
    :param id_field: the Odoo field for the record id (``res_id``).
    :param type_from: a field naming the kind of record the id belongs to (Link app's ``related.type``);
        ``types`` maps its values to objects (``{contact: contacts, deal: deals}``). Without it, the
        object is told by the id's Salesforce key prefix.
    """

    sources: tuple[str, ...]
    objects: tuple[str, ...]
    model_field: str
    id_field: str
    model_as: str = "name"
    required: bool = True
    type_from: str | None = None
    types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # filled in when the pair is parsed: (object, key prefix, Odoo model) per allowed object
    targets: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class TargetSpec:
    """Where an object lands.

    :param model: the Odoo model (``None`` only with ``action: none``).
    :param key: the ``x_migration_key`` template, ``<source>:<KeyObject>:<id template>``.
    :param action: ``load`` (create/write), ``match`` (resolve existing records, create none: users),
        ``none`` (nothing migrated; ``export`` names what is exported instead).
    :param where: which source records belong here: ``{field: value | [values] | {not: ...} | {prefix: [...]}}``.
    :param context: extra Odoo context for this object's calls (``no_mail_to_attendees``...).
    """

    model: str | None
    key: str | None = None
    action: str = "load"
    where: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    export: str | None = None
    match: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def key_object(self) -> str:
        """The middle part of the key (``Contact`` in ``apto:Contact:{Id}``): the crosswalk's source object."""
        return (self.key or "::").split(":", 2)[1]

    @property
    def id_template(self) -> str:
        return (self.key or "::").split(":", 2)[2]

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The source fields the source id is made of, in order."""
        return tuple(_PLACEHOLDER_RE.findall(self.id_template))


@dataclass(frozen=True, kw_only=True)
class HierarchySpec:
    """A self-referencing hierarchy (Account.ParentId): cycles broken, loaded parents first."""

    parent_field: str
    id_field: str = "Id"
    break_cycles: bool = True
    load_by_level: bool = True


@dataclass(frozen=True, kw_only=True)
class ObjectSpec:
    """One source object (or a filtered part of one) and how it becomes Odoo records.

    :param name: the name in the file (``Contact``; ``OpenTask`` for a second mapping of ``Task``).
    :param source_object: the source's object name (``Task``).
    :param stream: the block given to the stream factory (``kind: soql``, ``fields``, ``filters``...).
    :param id_prefix: the Salesforce key prefix of its ids (``003``) for polymorphic references.
    :param enrich: child rows or blobs the engine attaches to each record before mapping
        (``{OpportunityHistories: {object: OpportunityHistory, match: OpportunityId, fields: [...]}}``,
        ``{_blob: {url: "/sobjects/Attachment/{Id}/Body"}}``).
    :param custom_fields: add the object's describe ``custom: true`` fields by the pair's rules.
    """

    name: str
    source_object: str
    stream: Mapping[str, Any]
    target: TargetSpec
    depends_on: tuple[str, ...] = ()
    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: MappingProxyType({}))
    conditions: Mapping[str, ConditionSpec] = field(default_factory=lambda: MappingProxyType({}))
    attach: AttachSpec | None = None
    hierarchy: HierarchySpec | None = None
    id_prefix: str | None = None
    enrich: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    custom_fields: bool = False
    on_missing: str = "error"
    on_conflict: str | None = None      # None: settings.conflict_policy
    doc: str | None = None

    @property
    def model(self) -> str | None:
        return self.target.model

    @property
    def key_object(self) -> str:
        return self.target.key_object

    @property
    def stream_key(self) -> tuple[str, str]:
        """What the object reads from the source: its source object and stream settings (objects with the same key
        read one stream, split by ``where``)."""
        return self.source_object, repr(sorted(dict(self.stream).items()))

    def source_id(self, record: Mapping[str, Any]) -> str:
        """The record's id in keys and the crosswalk (``{Id}``, or a composite ``{RecordTypeId}/{ApiName}``)."""

        def one(match: re.Match[str]) -> str:
            value = get_path(record, match.group(1))
            if value is None or value == "":
                raise KeyError(match.group(1))
            return str(value)

        return _PLACEHOLDER_RE.sub(one, self.target.id_template)

    def source_id_from(self, parts: Sequence[Any]) -> str:
        """The source id made of ``parts`` in the order of the key template's placeholders."""
        return fill_id_template(self.target.id_template, parts)

    def key(self, record: Mapping[str, Any]) -> str:
        """The ``x_migration_key`` of ``record``: ``apto:Contact:0035g00000abcDE``."""
        source, key_object = (self.target.key or "::").split(":", 2)[:2]
        return f"{source}:{key_object}:{self.source_id(record)}"

    def stream_fields(self) -> tuple[str, ...]:
        return tuple(self.stream.get("fields") or ())

    def with_fields(self, extra: Mapping[str, FieldSpec], stream_fields: Iterable[str] = ()) -> ObjectSpec:
        """A copy with ``extra`` fields added (custom fields) and their sources read by the stream."""
        fields = {**self.fields, **{k: v for k, v in extra.items() if k not in self.fields}}
        have = {f.lower() for f in self.stream_fields()}
        add = [f for f in stream_fields if f.lower() not in have]
        stream = dict(self.stream)
        if add and "fields" in stream:
            stream["fields"] = (*self.stream_fields(), *add)
        return replace(self, fields=MappingProxyType(fields), stream=MappingProxyType(stream))


@dataclass(frozen=True, kw_only=True)
class LookupSpec:
    """A named lookup the Refs implementation resolves (owner by email, country by code or name...)."""

    name: str
    model: str
    match: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Pair-wide choices.

    :param fallback_user: Odoo login of the user for records whose owner matches no Odoo user.
    :param conflict_policy: the default of each object's ``on_conflict``: ``source_wins`` (default) or ``keep_odoo``
        (``report``, its older name, means the same): a record edited in Odoo since the tool wrote it is reported
        with both values either way; ``source_wins`` overwrites the edited fields, ``keep_odoo`` leaves them.
    :param on_missing_ref: default for a ``ref`` to a record not (yet) migrated: ``error`` or ``null``.
    :param contact_extra_companies: ``child_contacts`` (one child partner per extra company) or ``many2many``.
    :param contact_own_address_type: the ``res.partner.type`` of a contact with its own address.
    :param max_dead_letter_share: the share of an object's records (0 to 1; 0.01 = 1 %) whose dead letters a
        mapping or Odoo caused above which the run's verify step fails (gaps in the source do not count).
    :param activities_oldest_first: load the chatter (every object that becomes ``mail.message``: stage
        history, done tasks, emails, calls, notes) as one timeline, oldest first, so message ids follow
        the dates (Odoo shows a record's chatter by id). See :meth:`PairSpec.timeline`.
    """

    fallback_user: str = "admin"
    conflict_policy: str = "source_wins"
    on_missing_ref: str = "error"
    contact_extra_companies: str = "child_contacts"
    contact_own_address_type: str = "other"
    activities_oldest_first: bool = True
    owner_match: str = "email"
    max_dead_letter_share: float = 0.01



#: the approval steps a pair file's ``approvals.steps`` may configure
APPROVAL_STEPS = ("mapping", "sample_diff", "full_run", "rollback")


@dataclass(frozen=True, kw_only=True)
class ApprovalStep:
    """Who may answer an approval step, and who is told it waits.

    :param assigned_users: Airflow users who may respond (``{"id": ..., "name": ...}``: the id is the login of
        Airflow's simple auth manager, the user id of FAB's); empty: anyone allowed to act on the DAG.
    :param notifiers: notifiers called when the step starts waiting: ``{"class": "<module>.<Class>", **kwargs}``
        (any Airflow ``BaseNotifier``, e.g. ``airflow.providers.smtp.notifications.smtp.SmtpNotifier``).
    """

    assigned_users: tuple[Mapping[str, str], ...] = ()
    notifiers: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Approvals:
    """The pair file's ``approvals:`` section: defaults for every step, and per-step overrides
    (``steps: {mapping | sample_diff | full_run | rollback: {assigned_users, notifiers}}``: a key given there
    replaces the default's)."""

    default: ApprovalStep = field(default_factory=ApprovalStep)
    steps: Mapping[str, ApprovalStep] = field(default_factory=lambda: MappingProxyType({}))

    def step(self, what: str) -> ApprovalStep:
        return self.steps.get(what) or self.default


@dataclass(frozen=True)
class MappingFile:
    """A mapping file as read: where from, its text, and the sha256 of its bytes (what a confirmation names)."""

    origin: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

SF_TYPE_MAP = {
    "string": "char", "textarea": "text", "picklist": "char", "multipicklist": "char", "combobox": "char",
    "double": "float", "currency": "float", "percent": "float", "int": "integer", "long": "float",
    "date": "date", "datetime": "datetime", "boolean": "boolean", "url": "char", "email": "char",
    "phone": "char", "reference": "many2one", "html": "html", "encryptedstring": "char", "id": "char",
    "time": "char",
}
SF_TYPE_FN: dict[str, tuple[str, Mapping[str, Any]]] = {
    "string": ("text", {}), "textarea": ("text", {}), "picklist": ("text", {}), "combobox": ("text", {}),
    "multipicklist": ("multipicklist", {}), "double": ("float", {}), "currency": ("float", {}),
    "percent": ("float", {}), "int": ("int", {}), "long": ("float", {}), "date": ("date", {}),
    "datetime": ("sf_datetime_to_odoo", {}), "boolean": ("bool", {}), "url": ("text", {}),
    "email": ("text", {}), "phone": ("phone", {}), "html": ("html_clean", {}), "encryptedstring": ("text", {}),
    "id": ("text", {}), "time": ("text", {}), "reference": ("text", {}),
}
ODOO_TTYPES = frozenset({"char", "text", "html", "integer", "float", "monetary", "date", "datetime", "boolean",
                         "selection", "many2one", "many2many"})


@dataclass(frozen=True, kw_only=True)
class CustomField:
    """One ``x_`` field planned from a describe ``custom: true`` field."""

    source_object: str
    source_field: str            # the API name as described (namespace filled in)
    model: str
    name: str
    ttype: str
    label: str
    relation: str | None = None
    size: int | None = None
    selection: tuple[tuple[str, str], ...] = ()
    field: FieldSpec | None = None


@dataclass(frozen=True, kw_only=True)
class CustomFieldRules:
    """How describe ``custom: true`` fields become typed ``x_`` fields.

    Name: ``x_`` + the API name lower-cased, without the namespace and ``__c`` (``McLabs2__Cap_Rate__c``
    → ``x_cap_rate``), other characters as ``_``, cut to ``max_length`` with a hash suffix when longer.
    Type: ``type_map`` (Salesforce type → Odoo ttype). A reference to a migrated object becomes a
    many2one to its model (through ``ref``), to anything else the raw Salesforce id in a char.
    ``overrides`` (``"Account.<ns>__Notes__c": {name: x_apto_notes, ttype: html, skip: false}``) win.
    """

    objects: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    prefix: str = "x_"
    max_length: int = 63
    type_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(SF_TYPE_MAP)))
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    skip: tuple[str, ...] = ()

    def field_name(self, api_name: str) -> str:
        """``McLabs2__Cap_Rate__c`` → ``x_cap_rate`` (Link app's ``custom_fields.cap_rate`` too); safe for
        PostgreSQL (63 bytes) and Odoo (``x_[a-z0-9_]``)."""
        base = api_name.rsplit(".", 1)[-1]             # Link app's custom_fields.<key> -> <key>
        base = base[:-3] if base.lower().endswith("__c") else base
        if "__" in base:
            base = base.split("__", 1)[1]     # drop the namespace prefix
        base = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "field"
        name = self.prefix + base
        if len(name) > self.max_length:
            digest = hashlib.blake2b(api_name.encode(), digest_size=4).hexdigest()
            name = name[: self.max_length - 9].rstrip("_") + "_" + digest
        return name

    def plan(self, source_object: str, describe_fields: Iterable[Mapping[str, Any]], *,
             refs: Mapping[str, tuple[str, str, str | None, str]] | None = None, ns: str | None = None,
             taken: dict[str, str] | None = None) -> list[CustomField]:
        """Plan the ``x_`` fields of ``source_object`` from its describe ``fields``.

        :param refs: Salesforce object → ``(pair object, Odoo model, key prefix, id template)`` for the
            objects migrated from it (reference targets; :meth:`PairSpec.plan_custom_fields` fills it).
        :param taken: Odoo field names already used on the model → their ttype; updated in place (a
            name taken with another type is an error naming both).
        """
        model = self.objects.get(source_object)
        if not model:
            return []
        refs = refs or {}
        used: dict[str, str] = taken if taken is not None else {}
        out: list[CustomField] = []
        for desc in describe_fields:
            if not desc.get("custom"):
                continue
            api = str(desc["name"])
            key_spec = f"{source_object}.{_unexpand(api, ns)}"
            over = dict(self.overrides.get(key_spec) or self.overrides.get(f"{source_object}.{api}") or {})
            if over.get("skip") or key_spec in self.skip or f"{source_object}.{api}" in self.skip:
                continue
            sf_type = str(desc.get("type") or "string")
            rich = sf_type == "html" or desc.get("extraTypeInfo") == "richtextarea"   # a rich text area
            ttype = str(over.get("ttype") or ("html" if rich else self.type_map.get(sf_type, "char")))
            name = str(over.get("name") or self.field_name(api))
            relation = None
            step_name, step_args = SF_TYPE_FN.get(sf_type, ("text", {}))
            ref: tuple[str, ...] = ()
            ref_info: dict[str, Any] = {}
            if ttype == "many2one":
                target = next((refs[t] for t in desc.get("referenceTo") or () if t in refs), None)
                if target is None:
                    ttype = "char"
                else:
                    ref, step_name, relation = (target[0],), "", str(over.get("relation") or target[1])
                    ref_info = {"ref_prefixes": (target[2],), "ref_templates": (target[3],)}
            if ttype == "html" and step_name in ("text", "html_clean"):     # text stays text, html stays html
                step_name = "html_clean" if rich else "html_text"
            elif rich and ttype in ("char", "text"):
                step_name = "html_to_text"
            if ttype not in ODOO_TTYPES:
                raise SpecError("custom_fields", f"ttype {ttype!r} unknown (one of {sorted(ODOO_TTYPES)})",
                                obj=source_object, field=api)
            if not _X_NAME_RE.match(name) or len(name) > self.max_length:
                raise SpecError("custom_fields", f"bad field name {name!r}", obj=source_object, field=api)
            if name in used and used[name] != ttype:
                raise SpecError("custom_fields", f"{name} already on {model} as {used[name]}, here {ttype}; "
                                "add an override with another name", obj=source_object, field=api)
            used[name] = ttype
            if over.get("fn"):
                step_name, step_args = str(over["fn"]), dict(over.get("args") or {})
            steps = (FnStep(name=step_name, args=MappingProxyType(dict(step_args))),) if step_name else ()
            fspec = FieldSpec(name=name, sources=(api,), fn=steps, ref=ref, on_missing="null",
                              on_error="null", doc=f"custom field {api}", **ref_info)
            selection = tuple((str(v.get("value")), str(v.get("label") or v.get("value")))
                              for v in desc.get("picklistValues") or () if v.get("active", True))
            out.append(CustomField(
                source_object=source_object, source_field=api, model=model, name=name, ttype=ttype,
                label=str(over.get("label") or desc.get("label") or api), relation=relation,
                size=int(desc["length"]) if ttype == "char" and desc.get("length") else None,
                selection=selection if ttype == "selection" else (), field=fspec))
        return out


def _unexpand(api: str, ns: str | None) -> str:
    if ns and api.startswith(ns + "__"):
        return "<ns>" + api[len(ns):]
    return api


@dataclass(frozen=True, kw_only=True)
class PairSpec:
    """A validated mapping file.

    :param objects: in dependency order (:meth:`order`).
    :param x_fields: ``{model: {x_name: {ttype, label, relation?}}}``: the fields the mapping writes that
        the schema step must create (besides ``x_migration_key`` and planned custom fields).
    """

    pair: str
    source: str
    settings: Settings
    objects: Mapping[str, ObjectSpec]
    lookups: Mapping[str, LookupSpec] = field(default_factory=lambda: MappingProxyType({}))
    x_fields: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=lambda: MappingProxyType({}))
    custom_fields: CustomFieldRules = field(default_factory=CustomFieldRules)
    origin: str = "<memory>"
    namespace: str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)
    #: the target's major version whose ``targets:`` overrides are applied (None: not resolved yet; 0: unknown)
    target_version: int | None = None
    approvals: Approvals = field(default_factory=Approvals)
    #: the Airflow connection ids the file names (``source``, ``odoo``, ``state``); an absent one: the default
    connections: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def order(self) -> list[str]:
        """The object names, dependencies first (ties in file order)."""
        return list(self.objects)

    def object(self, name: str) -> ObjectSpec:
        try:
            return self.objects[name]
        except KeyError:
            raise SpecError(self.origin, f"no object {name!r} (known: {', '.join(self.objects)})") from None

    def loadable(self) -> list[ObjectSpec]:
        """The objects written to Odoo (``action: load``), in order."""
        return [o for o in self.objects.values() if o.target.action == "load"]

    def needs(self, name: str) -> list[str]:
        """The other objects ``name`` depends on (``depends_on``), refers to (``ref``) or hangs on (``attach_to``),
        in file order."""
        obj = self.object(name)
        wanted = {*obj.depends_on, *(obj.attach.objects if obj.attach else ()),
                  *(r for f in obj.fields.values() for r in f.ref)} - {name}
        return [n for n in self.objects if n in wanted]

    def extracted_first(self) -> list[str]:
        """The loadable objects whose extraction needs nothing loaded, in order: not in the timeline, not hanging on
        a record (a file's or note's read keeps what hangs on a migrated record), alone on their source stream,
        and referring only to such objects. A run extracts them all before its first load, so it knows their
        picklist values before any record is written (one registry change, see ``Pipeline.extend_picklists``)."""
        loadable = {o.name for o in self.loadable()}
        timeline = {o.name for o in self.timeline()}
        streams = Counter(o.stream_key for o in self.loadable())
        first: list[str] = []
        for o in self.loadable():
            if (o.name not in timeline and o.attach is None
                    and streams[o.stream_key] == 1
                    and all(d in first for d in self.needs(o.name) if d in loadable)):
                first.append(o.name)
        return first

    def keyed_models(self) -> list[str]:
        """Every Odoo model the tool creates records of, so carries ``x_migration_key``: the loaded objects'
        models and those of lookups that create what they miss (lost reasons)."""
        models = [o.model for o in self.loadable() if o.model]
        models += [lk.model for lk in self.lookups.values()
                   if lk.options.get("create_missing") or lk.options.get("create_from_picklist")]
        return sorted(set(models))

    def target_kwargs(self, name: str) -> dict[str, Any]:
        """Keyword arguments of the loader's ``engine.load.Target`` for object ``name``: its crosswalk
        scope is the key object (``pipeline`` for RecordType), so ``Target.key(source_id)`` equals
        :meth:`ObjectSpec.key` and ``Refs.odoo_id(name, ...)`` reads the crosswalk of that scope."""
        obj = self.object(name)
        if obj.target.action != "load":
            raise SpecError(self.origin, f"{name} is not loaded into Odoo (action {obj.target.action})", obj=name)
        return {"pair": self.pair, "source": self.source, "source_object": obj.key_object, "model": obj.model,
                "conflict_policy": self.conflict_policy(name)}

    def conflict_policy(self, name: str) -> str:
        """Object ``name``'s conflict policy in the loader's words: ``source_wins`` or ``report`` (keep Odoo's)."""
        policy = self.object(name).on_conflict or self.settings.conflict_policy
        return "source_wins" if policy == "source_wins" else "report"

    #: the name of the chatter timeline (its batches are staged under this name)
    TIMELINE = "chatter"

    def timeline(self) -> list[ObjectSpec]:
        """The objects loaded together as the chatter timeline, oldest first: every loadable object whose
        model is ``mail.message`` and which maps its ``date``, when ``activities_oldest_first`` is set.

        Their batches mix objects in date order, and all the messages of one record fall in one batch,
        so parallel batches keep each record's chatter in date order."""
        if not self.settings.activities_oldest_first:
            return []
        return [o for o in self.loadable() if o.model == "mail.message" and "date" in o.fields]

    def by_prefix(self, prefix: str) -> list[ObjectSpec]:
        return [o for o in self.objects.values() if o.id_prefix == prefix]

    def plan_custom_fields(self, describes: Mapping[str, Iterable[Mapping[str, Any]]]
                           ) -> dict[str, list[CustomField]]:
        """Plan the ``x_`` fields of every object with ``custom_fields: true`` from its describe ``fields``
        (``{"Account": describe["fields"], ...}``); names are unique per Odoo model across objects."""
        refs: dict[str, tuple[str, str, str | None, str]] = {}
        for o in self.objects.values():
            if o.target.action == "load" and o.model and o.source_object not in refs and o.id_prefix:
                refs[o.source_object] = (o.name, o.model, o.id_prefix, o.target.id_template)
        taken: dict[str, dict[str, str]] = {}
        for model, fields in self.x_fields.items():
            taken[model] = {name: str(spec["ttype"]) for name, spec in fields.items()}
        out: dict[str, list[CustomField]] = {}
        for name, obj in self.objects.items():
            if not obj.custom_fields or name not in describes:
                continue
            model = self.custom_fields.objects.get(obj.source_object) or self.custom_fields.objects.get(name)
            if not model:
                continue
            mapped = set(obj.fields)
            plan = self.custom_fields.plan(name, describes[name], refs=refs, ns=self.namespace or None,
                                           taken=taken.setdefault(model, {}))
            out[name] = [cf for cf in plan if cf.name not in mapped]
        return out

    def with_custom_fields(self, plans: Mapping[str, Iterable[CustomField]]) -> PairSpec:
        """A copy whose objects also map their planned custom fields (and read them in their streams)."""
        objects = dict(self.objects)
        for name, plan in plans.items():
            plan = list(plan)
            objects[name] = objects[name].with_fields({cf.name: cf.field for cf in plan if cf.field is not None},
                                                      [cf.source_field for cf in plan])
        return replace(self, objects=MappingProxyType(objects))

    def with_namespace(self, ns: str | None) -> PairSpec:
        """A copy with ``<ns>`` replaced by the namespace found at run time (``McLabs2``; ``None``: none)."""
        if self.namespace is not None:
            raise ValueError(f"{self.pair}: namespace already resolved to {self.namespace!r}")
        return parse_pair(_expand(thaw(self.raw), ns), origin=self.origin, namespace=ns or "")

    def for_target(self, major: int | None) -> PairSpec:
        """The mapping in force on an Odoo of major version ``major``: the file's ``targets:`` overrides
        whose version is at most ``major`` merged in, lowest first (``None``, an unknown version: none).

        An override is merged key by key into the file (``objects.<name>.fields.<field>`` replaced whole;
        ``null`` removes it; ``x_fields.<model>.<field>`` added); the result is validated like the file."""
        if self.target_version is not None:
            if self.target_version != (major or 0):
                raise ValueError(f"{self.pair}: already resolved for Odoo {self.target_version}")
            return self
        raw = thaw(self.raw)
        overrides = {int(v): o for v, o in (raw.pop("targets", None) or {}).items()}
        applied = sorted(v for v in overrides if major is not None and v <= major)
        for version in applied:
            raw = _merge(raw, overrides[version])
        spec = parse_pair(raw, origin=self.origin, namespace=self.namespace) if applied else self
        return replace(spec, target_version=major or 0, raw=self.raw)


# ---- parsing -------------------------------------------------------------------------------------------

_TOP_KEYS = frozenset({"pair", "source", "version", "description", "settings", "lookups", "x_fields",
                       "custom_fields", "objects", "targets", "approvals", "connections"})
#: ``connections:`` keys: the source, Odoo and state-DB connection ids
CONNECTION_KEYS = ("source", "odoo", "state")
_CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
#: what a ``targets.<version>`` override may change
_TARGET_OVERRIDE_KEYS = frozenset({"doc", "x_fields", "objects"})
_OBJ_OVERRIDE_KEYS = frozenset({"fields"})
_OBJ_KEYS = frozenset({"source_object", "stream", "target", "depends_on", "fields", "conditions", "attach_to",
                       "hierarchy", "id_prefix", "enrich", "custom_fields", "on_missing", "on_conflict", "doc",
                       "unknown_fields"})
_FIELD_KEYS = frozenset({"from", "fn", "args", "ref", "lookup", "const", "default", "required", "on_missing",
                         "on_error", "when", "deferred", "fallback", "doc"})
_TARGET_KEYS = frozenset({"model", "key", "action", "where", "context", "export", "match"})
_SETTINGS_KEYS = frozenset({"fallback_user", "conflict_policy", "on_missing_ref", "contact_extra_companies",
                            "contact_own_address_type", "activities_oldest_first", "owner_match",
                            "max_dead_letter_share"})


#: a folder of the user's own ``<pair>.yaml`` files, looked up before the bundled pairs: the Airflow option
#: ``[crm_migration] pairs_folder``, i.e. this environment variable
PAIRS_FOLDER_ENV = "AIRFLOW__CRM_MIGRATION__PAIRS_FOLDER"


def pairs_folder() -> Path | None:
    """The ``[crm_migration] pairs_folder`` option (read from the environment where Airflow is absent)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - Airflow is a dependency; the engine runs without it in tools
        folder = os.environ.get(PAIRS_FOLDER_ENV, "")
    else:
        folder = conf.get("crm_migration", "pairs_folder", fallback="") or ""
    return Path(folder.strip()).expanduser() if folder.strip() else None


def locate_pair(name_or_path: str | Path) -> str:
    """Where a pair's file is: a path (``.yaml``/``.yml``, or with a ``/``) as given; a pair name's
    ``<pairs_folder>/<name>.yaml`` when it exists; else the name itself (the bundled ``include/pairs`` file)."""
    text_path = str(name_or_path)
    if isinstance(name_or_path, Path) or text_path.endswith((".yaml", ".yml")) or "/" in text_path:
        return text_path
    folder = pairs_folder()
    if folder is not None and (folder / f"{text_path}.yaml").is_file():
        return str(folder / f"{text_path}.yaml")
    return text_path


def read_pair_file(name_or_path: str | Path) -> MappingFile:
    """The mapping file of a pair name (``<pairs_folder>/<pair>.yaml``, else the bundled
    ``crm_migration/pairs/<pair>.yaml``) or a path, as read now: the one place that finds a pair's file
    (:func:`load_pair` parses it; a confirmation hashes it)."""
    text_path = locate_pair(name_or_path)
    if text_path.endswith((".yaml", ".yml")) or "/" in text_path:
        path = Path(text_path)
        if not path.is_file():
            raise SpecError(text_path, "no such mapping file")
        return MappingFile(str(path), path.read_text(encoding="utf-8"))
    res = files("crm_migration") / "pairs" / f"{text_path}.yaml"
    if not res.is_file():
        raise SpecError(f"pairs/{text_path}.yaml", "no such pair (include/pairs/<pair>.yaml)")
    return MappingFile(f"pairs/{text_path}.yaml", res.read_text(encoding="utf-8"))


def load_pair(name_or_path: str | Path) -> PairSpec:
    """Read and validate a pair file: a pair name (``apto_to_odoo``: ``[crm_migration] pairs_folder`` first, then
    the bundled pairs) or a path to a YAML file."""
    mf = read_pair_file(name_or_path)
    try:
        raw = yaml.safe_load(mf.text)
    except yaml.YAMLError as exc:
        raise SpecError(mf.origin, f"not valid YAML: {exc}") from None
    return parse_pair(raw, origin=mf.origin)


def parse_pair(raw: Any, *, origin: str = "<memory>", namespace: str | None = None) -> PairSpec:
    """Validate a pair file's parsed YAML and build the :class:`PairSpec`."""
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "the file must be a mapping with pair, source, objects")
    if unknown := sorted(set(raw) - _TOP_KEYS):
        raise SpecError(origin, f"unknown top-level key(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    for key in ("pair", "source", "objects"):
        if not raw.get(key):
            raise SpecError(origin, f"missing {key!r}")
    source = str(raw["source"])
    settings = _settings(raw.get("settings") or {}, origin)
    connections = _connections(raw.get("connections") or {}, origin)
    lookups = _lookups(raw.get("lookups") or {}, origin)
    x_fields = _x_fields(raw.get("x_fields") or {}, origin)
    objects_raw = raw["objects"]
    if not isinstance(objects_raw, Mapping):
        raise SpecError(origin, "objects must be a mapping of name → object")
    objects = {str(name): _object(str(name), spec, origin, source, settings) for name, spec in objects_raw.items()}
    custom = _custom_rules(raw.get("custom_fields") or {}, origin, objects)
    _check_cross(objects, lookups, x_fields, origin)
    _check_settings(objects, settings, source, origin)
    objects = _link(objects, lookups)
    order = _toposort(objects, origin)
    _check_targets(raw.get("targets"), raw, origin, namespace)
    approvals = _approvals(raw.get("approvals"), origin)
    pair = PairSpec(pair=str(raw["pair"]), source=source, settings=settings,
                    objects=MappingProxyType({n: objects[n] for n in order}), lookups=MappingProxyType(lookups),
                    x_fields=_freeze(x_fields), custom_fields=custom, origin=origin, namespace=namespace,
                    raw=_freeze(dict(raw)), approvals=approvals, connections=MappingProxyType(connections))
    return pair


def _merge(base: Any, override: Any) -> Any:
    """``override`` merged into ``base``: mappings key by key down to a field's spec (``objects.X.fields.f``
    and ``x_fields.model.f`` are replaced whole), ``None`` removes the key; an override's ``doc`` is its own."""

    def merge(b: Any, o: Any, path: tuple[str, ...]) -> Any:
        whole = (len(path) == 4 and path[0] == "objects" and path[2] == "fields") or \
                (len(path) == 3 and path[0] == "x_fields")
        if whole or not isinstance(b, Mapping) or not isinstance(o, Mapping):
            return o
        out = dict(b)
        for k, v in o.items():
            if k == "doc" and not path:
                continue
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(b.get(k), v, (*path, str(k))) if k in b else v
        return out

    return merge(base, override, ())


def _check_targets(raw: Any, whole: Mapping[str, Any], origin: str, namespace: str | None) -> None:
    """Validate ``targets:`` (``{<major version>: {doc, x_fields, objects: {<object>: {fields}}}}``): the
    keys, and the file with each override applied in turn (parsed like the file itself)."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "targets must be a mapping of Odoo major version → override")
    merged: Any = {k: v for k, v in whole.items() if k != "targets"}
    for version in sorted(raw, key=lambda v: int(v) if str(v).isdigit() else -1):
        where = f"targets.{version}"
        if not str(version).isdigit() or not 8 <= int(version) <= 99:
            raise SpecError(origin, f"{where}: a target is an Odoo major version such as \"19\"")
        over = raw[version]
        if not isinstance(over, Mapping):
            raise SpecError(origin, f"{where} must be a mapping with x_fields and/or objects")
        if unknown := sorted(set(over) - _TARGET_OVERRIDE_KEYS):
            raise SpecError(origin, f"{where}: unknown key(s) {unknown}; known: {sorted(_TARGET_OVERRIDE_KEYS)}")
        objects = over.get("objects") or {}
        if not isinstance(objects, Mapping):
            raise SpecError(origin, f"{where}.objects must be a mapping of object → {{fields}}")
        for name, obj in objects.items():
            if name not in (whole.get("objects") or {}):
                raise SpecError(origin, f"{where}.objects.{name}: no such object in the file")
            if not isinstance(obj, Mapping) or set(obj) - _OBJ_OVERRIDE_KEYS:
                raise SpecError(origin, f"{where}.objects.{name}: an override changes fields only "
                                        f"({{fields: {{odoo_field: spec or null}}}})")
        merged = _merge(merged, over)
        parse_pair(merged, origin=f"{origin} ({where} applied)", namespace=namespace)


def _connections(raw: Any, origin: str) -> dict[str, str]:
    """``connections: {source: apto_eu, odoo: odoo_eu, state: crm_migration_state}``: Airflow connection ids."""
    if not isinstance(raw, Mapping):
        raise SpecError(origin, f"connections must be a mapping of {', '.join(CONNECTION_KEYS)} → connection id")
    if unknown := sorted(set(map(str, raw)) - set(CONNECTION_KEYS)):
        raise SpecError(origin, f"connections: unknown key(s) {unknown}; known: {list(CONNECTION_KEYS)}")
    out: dict[str, str] = {}
    for key, conn_id in raw.items():
        if conn_id is None:
            continue
        if not isinstance(conn_id, str) or not _CONN_ID_RE.match(conn_id):
            raise SpecError(origin, f"connections.{key} must be an Airflow connection id (letters, digits, "
                                    f"'_', '.', '-'), not {conn_id!r}")
        out[str(key)] = conn_id
    return out


def _settings(raw: Any, origin: str) -> Settings:
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "settings must be a mapping")
    if unknown := sorted(set(raw) - _SETTINGS_KEYS):
        raise SpecError(origin, f"unknown setting(s) {unknown}; known: {sorted(_SETTINGS_KEYS)}")
    known = dict(raw)
    if "on_missing_ref" in known and known["on_missing_ref"] is None:
        known["on_missing_ref"] = "null"                                 # YAML null
    s = Settings(**known)
    if s.conflict_policy not in CONFLICT_POLICIES:
        raise SpecError(origin, f"settings.conflict_policy must be one of {ON_CONFLICT} (report: keep_odoo's older "
                                f"name), not {s.conflict_policy!r}")
    if s.on_missing_ref not in ON_MISSING:
        raise SpecError(origin, f"settings.on_missing_ref must be one of {ON_MISSING}")
    if s.contact_extra_companies not in EXTRA_COMPANY_MODES:
        raise SpecError(origin, f"settings.contact_extra_companies must be one of {EXTRA_COMPANY_MODES}")
    if s.contact_own_address_type not in ("contact", "other", "invoice", "delivery"):
        raise SpecError(origin, "settings.contact_own_address_type must be a res.partner type")
    if not isinstance(s.fallback_user, str) or not s.fallback_user:
        raise SpecError(origin, "settings.fallback_user must be an Odoo login")
    share = s.max_dead_letter_share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise SpecError(origin, "settings.max_dead_letter_share must be a share of an object's records, 0 to 1 "
                                "(0.01 = 1 %)")
    return s



def _approval_step(raw: Any, where: str, origin: str, base: ApprovalStep | None = None) -> ApprovalStep:
    if not isinstance(raw, Mapping):
        raise SpecError(origin, f"{where} must be a mapping with assigned_users and/or notifiers")
    if unknown := sorted(set(raw) - {"assigned_users", "notifiers", "steps"} - ({"steps"} if base else set())):
        raise SpecError(origin, f"{where}: unknown key(s) {unknown}; known: assigned_users, notifiers"
                                + ("" if base else ", steps"))
    users, notifiers = (base.assigned_users, base.notifiers) if base else ((), ())
    if "assigned_users" in raw:
        given = raw["assigned_users"] or []
        if not isinstance(given, list):
            raise SpecError(origin, f"{where}.assigned_users must be a list of Airflow users (a login, or "
                                    "{id, name})")
        users = []
        for i, u in enumerate(given):
            if isinstance(u, str | int) and not isinstance(u, bool) and str(u).strip():
                users.append(MappingProxyType({"id": str(u).strip(), "name": str(u).strip()}))
            elif isinstance(u, Mapping) and u.get("id") not in (None, "") and not set(u) - {"id", "name"}:
                users.append(MappingProxyType({"id": str(u["id"]), "name": str(u.get("name") or u["id"])}))
            else:
                raise SpecError(origin, f"{where}.assigned_users[{i}]: {u!r} is not an Airflow user (a login, or "
                                        "{id, name})")
        users = tuple(users)
    if "notifiers" in raw:
        given = raw["notifiers"] or []
        if not isinstance(given, list):
            raise SpecError(origin, f"{where}.notifiers must be a list of {{class: <module>.<Class>, ...kwargs}}")
        out = []
        for i, n in enumerate(given):
            cls = n.get("class") if isinstance(n, Mapping) else None
            if not isinstance(cls, str) or not re.fullmatch(r"[A-Za-z_][\w.]*[.:][A-Za-z_]\w*", cls):
                raise SpecError(origin, f"{where}.notifiers[{i}]: needs class: <module>.<Class> (an Airflow "
                                        f"notifier, e.g. airflow.providers.smtp.notifications.smtp.SmtpNotifier); "
                                        f"got {n!r}")
            out.append(_freeze(dict(n)))
        notifiers = tuple(out)
    return ApprovalStep(assigned_users=users, notifiers=notifiers)


def _approvals(raw: Any, origin: str) -> Approvals:
    if raw is None:
        return Approvals()
    default = _approval_step(raw, "approvals", origin)
    steps_raw = raw.get("steps") or {}
    if not isinstance(steps_raw, Mapping):
        raise SpecError(origin, f"approvals.steps must be a mapping of step ({', '.join(APPROVAL_STEPS)}) → "
                                "{assigned_users, notifiers}")
    if unknown := sorted(set(steps_raw) - set(APPROVAL_STEPS)):
        raise SpecError(origin, f"approvals.steps: unknown step(s) {unknown}; known: {', '.join(APPROVAL_STEPS)}")
    steps = {str(k): _approval_step(v or {}, f"approvals.steps.{k}", origin, base=default)
             for k, v in steps_raw.items()}
    return Approvals(default=default, steps=MappingProxyType(steps))

def _lookups(raw: Any, origin: str) -> dict[str, LookupSpec]:
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "lookups must be a mapping")
    out = {}
    for name, spec in raw.items():
        if not isinstance(spec, Mapping) or not spec.get("model"):
            raise SpecError(origin, f"lookup {name!r} needs a model")
        match = spec.get("match") or ()
        match = (match,) if isinstance(match, str) else tuple(match)
        options = {k: v for k, v in spec.items() if k not in ("model", "match")}
        out[str(name)] = LookupSpec(name=str(name), model=str(spec["model"]), match=match,
                                    options=_freeze(options))
    return out


def _x_fields(raw: Any, origin: str) -> dict[str, dict[str, dict[str, Any]]]:
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "x_fields must be a mapping of model → {x_field: {ttype, label}}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for model, fields in raw.items():
        out[str(model)] = {}
        for name, spec in (fields or {}).items():
            spec = {"ttype": spec} if isinstance(spec, str) else dict(spec or {})
            if not _X_NAME_RE.match(str(name)):
                raise SpecError(origin, f"x_fields.{model}.{name}: a custom field name is x_[a-z0-9_]")
            if spec.get("ttype") not in ODOO_TTYPES:
                raise SpecError(origin, f"x_fields.{model}.{name}: ttype {spec.get('ttype')!r} not one of "
                                        f"{sorted(ODOO_TTYPES)}")
            if spec["ttype"] in ("many2one", "many2many") and not spec.get("relation"):
                raise SpecError(origin, f"x_fields.{model}.{name}: a {spec['ttype']} needs a relation")
            out[str(model)][str(name)] = spec
    return out


def _steps(raw_fn: Any, args: Any, where: str, obj: str, fname: str, n_values: int) -> tuple[FnStep, ...]:
    if raw_fn is None:
        if args:
            raise SpecError(where, "args without fn", obj=obj, field=fname)
        return ()
    items = raw_fn if isinstance(raw_fn, list) else [raw_fn]
    if args is not None and (len(items) != 1 or not isinstance(items[0], str)):
        raise SpecError(where, "args go with a single fn name; in a list write {name: {arg: value}}",
                        obj=obj, field=fname)
    steps = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, step_args = item, dict(args or {})
        elif isinstance(item, Mapping) and len(item) == 1:
            name, step_args = next(iter(item.items()))
            step_args = dict(step_args or {})
        else:
            raise SpecError(where, f"bad fn {item!r}: a name or {{name: {{args}}}}", obj=obj, field=fname)
        if name not in T.TRANSFORMS:
            raise SpecError(where, f"unknown transform {name!r} (known: {', '.join(sorted(T.TRANSFORMS))})",
                            obj=obj, field=fname)
        try:
            T.check_args(name, n_values if i == 0 else 1, step_args)
        except TypeError as exc:
            raise SpecError(where, f"transform arguments do not fit: {exc}", obj=obj, field=fname) from None
        steps.append(FnStep(name=str(name), args=_freeze(step_args)))
    return tuple(steps)


def _sources(raw: Any, where: str, obj: str, fname: str) -> tuple[tuple[str, ...], bool]:
    if raw is None:
        return (), False
    many = isinstance(raw, list)
    paths = tuple(str(p) for p in (raw if many else [raw]))
    for p in paths:
        if not _PATH_RE.match(p):
            raise SpecError(where, f"bad source path {p!r}", obj=obj, field=fname)
    return paths, many


# transform arguments that default to a pair setting when the file does not give them
SETTING_ARGS: dict[str, dict[str, str]] = {"contact_partner_type": {"own_type": "contact_own_address_type"}}


def _with_settings(steps: tuple[FnStep, ...], settings: Settings) -> tuple[FnStep, ...]:
    out = []
    for step in steps:
        extra = {arg: getattr(settings, key) for arg, key in SETTING_ARGS.get(step.name, {}).items()
                 if arg not in step.args}
        out.append(replace(step, args=MappingProxyType({**step.args, **extra})) if extra else step)
    return tuple(out)


def _field(obj: str, fname: str, raw: Any, where: str) -> FieldSpec:
    if not isinstance(raw, Mapping):
        if isinstance(raw, str):           # shorthand: odoo_field: SourceField
            raw = {"from": raw}
        else:
            raise SpecError(where, "a field is a mapping {from, fn, ref, lookup, const, default...}",
                            obj=obj, field=fname)
    if unknown := sorted(set(raw) - _FIELD_KEYS):
        raise SpecError(where, f"unknown key(s) {unknown}; known: {sorted(_FIELD_KEYS)}", obj=obj, field=fname)
    sources, many = _sources(raw.get("from"), where, obj, fname)
    if "const" in raw and sources:
        raise SpecError(where, "const and from exclude each other", obj=obj, field=fname)
    if "const" not in raw and not sources:
        raise SpecError(where, "needs from (source fields) or const", obj=obj, field=fname)
    steps = _steps(raw.get("fn"), raw.get("args"), where, obj, fname, len(sources))
    ref = raw.get("ref")
    ref_t = () if ref is None else ((ref,) if isinstance(ref, str) else tuple(str(r) for r in ref))
    if len(ref_t) > 1 and (len(ref_t) != len(sources) or [st.name for st in steps] not in ([], ["as_list"])):
        raise SpecError(where, "a list of refs takes one from path per ref (the first that resolves wins), "
                               "and no fn but as_list (all that resolve, a many2many)", obj=obj, field=fname)
    if ref_t and raw.get("lookup"):
        raise SpecError(where, "ref and lookup exclude each other", obj=obj, field=fname)
    raw = {**raw, **{k: "null" for k in ("on_missing", "on_error") if k in raw and raw[k] is None}}  # YAML null
    for key, allowed in (("on_missing", ON_MISSING), ("on_error", ON_ERROR)):
        if raw.get(key) is not None and raw[key] not in allowed:
            raise SpecError(where, f"{key} must be one of {allowed}", obj=obj, field=fname)
    if len(sources) > 1 and not steps and not ref_t and "lookup" not in raw:
        raise SpecError(where, "several from fields need a fn to combine them (e.g. first, join_name)",
                        obj=obj, field=fname)
    return FieldSpec(
        name=fname, sources=sources, many=many, fn=steps, ref=ref_t, lookup=raw.get("lookup"),
        const=_freeze(raw["const"]) if "const" in raw else MISSING,
        default=_freeze(raw["default"]) if "default" in raw else MISSING,
        required=bool(raw.get("required", False)), on_missing=raw.get("on_missing"),
        on_error=raw.get("on_error") or "error", when=raw.get("when"), deferred=_deferred(raw.get("deferred", False), where, obj, fname),
        fallback=raw.get("fallback"), doc=raw.get("doc"))


def _deferred(value: Any, where: str, obj: str, fname: str) -> bool | str:
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise SpecError(where, f"deferred: true, false or a condition name, not {value!r}", obj=obj, field=fname)


def _check_key(obj: str, key: Any, source: str, where: str) -> str:
    if not isinstance(key, str) or key.count(":") < 2:
        raise SpecError(where, f"bad key template {key!r}: '<source>:<Object>:{{Field}}'", obj=obj, field="key")
    src, key_object, id_tpl = key.split(":", 2)
    if src != source:
        raise SpecError(where, f"bad key template {key!r}: must start with '{source}:'", obj=obj, field="key")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", key_object):
        raise SpecError(where, f"bad key template {key!r}: object part {key_object!r}", obj=obj, field="key")
    placeholders = _PLACEHOLDER_RE.findall(id_tpl)
    rest = _PLACEHOLDER_RE.sub("", id_tpl)
    if "{" in rest or "}" in rest:
        raise SpecError(where, f"bad key template {key!r}: unbalanced braces", obj=obj, field="key")
    if not placeholders:
        raise SpecError(where, f"bad key template {key!r}: no {{Field}} placeholder", obj=obj, field="key")
    for p in placeholders:
        if not _PATH_RE.match(p) or p.startswith(("$", "=")):
            raise SpecError(where, f"bad key template {key!r}: placeholder {{{p}}} is not a field", obj=obj,
                            field="key")
    return key


def _object(name: str, raw: Any, origin: str, source: str, settings: Settings) -> ObjectSpec:
    where = origin
    if not isinstance(raw, Mapping):
        raise SpecError(where, "an object is a mapping {stream, target, fields...}", obj=name)
    if unknown := sorted(set(raw) - _OBJ_KEYS):
        raise SpecError(where, f"unknown key(s) {unknown}; known: {sorted(_OBJ_KEYS)}", obj=name)
    target_raw = raw.get("target")
    if not isinstance(target_raw, Mapping):
        raise SpecError(where, "missing target {model, key}", obj=name, field="target")
    if unknown := sorted(set(target_raw) - _TARGET_KEYS):
        raise SpecError(where, f"unknown target key(s) {unknown}", obj=name, field="target")
    explicit_none = target_raw.get("model") == "none" or ("model" not in target_raw and target_raw.get("export"))
    action = target_raw.get("action") or ("none" if explicit_none else "load")
    if action not in ACTIONS:
        raise SpecError(where, f"target.action must be one of {ACTIONS}", obj=name, field="target")
    model = target_raw.get("model")
    if model == "none":
        model = None
    if action != "none" and not model:
        raise SpecError(where, "missing target model", obj=name, field="target.model")
    if model is not None and not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+", str(model)):
        raise SpecError(where, f"bad target model {model!r}", obj=name, field="target.model")
    key = None
    if action == "load":
        key = _check_key(name, target_raw.get("key"), source, where)
    elif target_raw.get("key"):
        key = _check_key(name, target_raw.get("key"), source, where)
    if action == "none" and not target_raw.get("export"):
        raise SpecError(where, "target none needs export (what is produced instead)", obj=name, field="target")
    target = TargetSpec(model=model, key=key, action=action, where=_freeze(dict(target_raw.get("where") or {})),
                        context=_freeze(dict(target_raw.get("context") or {})), export=target_raw.get("export"),
                        match=_freeze(dict(target_raw.get("match") or {})))
    stream = raw.get("stream")
    if not isinstance(stream, Mapping) or not stream.get("kind"):
        raise SpecError(where, "missing stream {kind, ...}", obj=name, field="stream")
    if stream["kind"] == "soql":
        _check_soql_stream(name, raw.get("source_object") or name, stream, where)
    fields_raw = raw.get("fields") or {}
    if not isinstance(fields_raw, Mapping):
        raise SpecError(where, "fields must be a mapping odoo_field → spec", obj=name, field="fields")
    fields = {str(f): _field(name, str(f), spec, where) for f, spec in fields_raw.items()}
    fields = {k: replace(f, fn=_with_settings(f.fn, settings)) if f.fn else f for k, f in fields.items()}
    for f in fields:
        if f in MAGIC_FIELDS:
            raise SpecError(where, f"{f} is set by Odoo or the loader, not by the mapping", obj=name, field=f)
    conditions: dict[str, ConditionSpec] = {}
    for cname, craw in (raw.get("conditions") or {}).items():
        if not isinstance(craw, Mapping):
            raise SpecError(where, "a condition is {from, fn} or {any_of: [...]}", obj=name, field=f"${cname}")
        if "any_of" in craw:
            srcs, _ = _sources(list(craw["any_of"]), where, name, f"${cname}")
            conditions[str(cname)] = ConditionSpec(name=str(cname), sources=srcs)
        else:
            srcs, _ = _sources(craw.get("from"), where, name, f"${cname}")
            steps = _steps(craw.get("fn"), craw.get("args"), where, name, f"${cname}", len(srcs))
            if not srcs or not steps:
                raise SpecError(where, "a condition needs from and fn", obj=name, field=f"${cname}")
            conditions[str(cname)] = ConditionSpec(name=str(cname), sources=srcs, fn=steps)
    for c in conditions.values():
        if any(p.startswith("=") for p in c.sources):
            raise SpecError(where, "a condition reads the source record (a =field path reads what a field maps to)",
                            obj=name, field=f"${c.name}")
    order = list(fields)
    for f in fields.values():
        for p in f.sources:
            if not p.startswith("="):
                continue
            through = p[1:].split(".", 1)[0]
            if through not in fields or order.index(through) >= order.index(f.name):
                raise SpecError(where, f"{p}: {through} is not a field of {name} mapped before {f.name}", obj=name,
                                field=f.name)
            if fields[through].deferred:
                raise SpecError(where, f"{p}: {through} is written after the record (deferred); read a field "
                                       "written with it", obj=name, field=f.name)
    for f in fields.values():
        if f.when and f.when not in conditions:
            raise SpecError(where, f"when: unknown condition {f.when!r}", obj=name, field=f.name)
        if isinstance(f.deferred, str) and f.deferred not in conditions:
            raise SpecError(where, f"deferred: unknown condition {f.deferred!r}", obj=name, field=f.name)
        for p in f.sources:
            if p.startswith("$") and p[1:] not in conditions:
                raise SpecError(where, f"unknown condition {p!r}", obj=name, field=f.name)
    attach = None
    if (a := raw.get("attach_to")) is not None:
        if not isinstance(a, Mapping) or not a.get("from") or not a.get("objects"):
            raise SpecError(where, "attach_to needs from, objects, model_field, id_field", obj=name, field="attach_to")
        srcs, _ = _sources(a["from"] if isinstance(a["from"], list) else [a["from"]], where, name, "attach_to")
        model_as = a.get("model_as", "name")
        if model_as not in ("name", "ir_model"):
            raise SpecError(where, "attach_to.model_as must be name or ir_model", obj=name, field="attach_to")
        type_from, types = a.get("type_from"), a.get("types") or {}
        if type_from is not None and (not isinstance(types, Mapping) or not types
                                      or not set(map(str, types.values())) <= set(map(str, a["objects"]))):
            raise SpecError(where, "attach_to type_from needs types {type value: object} naming only its objects",
                            obj=name, field="attach_to")
        if unknown := sorted(set(a) - {"from", "objects", "model_field", "id_field", "model_as", "required",
                                       "type_from", "types"}):
            raise SpecError(where, f"attach_to: unknown key(s) {unknown}", obj=name, field="attach_to")
        attach = AttachSpec(sources=srcs, objects=tuple(a["objects"]), model_field=str(a.get("model_field", "model")),
                            id_field=str(a.get("id_field", "res_id")), model_as=model_as,
                            required=bool(a.get("required", True)),
                            type_from=str(type_from) if type_from is not None else None,
                            types=MappingProxyType({str(k): str(v) for k, v in types.items()}))
    hierarchy = None
    if (h := raw.get("hierarchy")) is not None:
        if not isinstance(h, Mapping) or not h.get("parent_field"):
            raise SpecError(where, "hierarchy needs parent_field", obj=name, field="hierarchy")
        hierarchy = HierarchySpec(parent_field=str(h["parent_field"]), id_field=str(h.get("id_field", "Id")),
                                  break_cycles=bool(h.get("break_cycles", True)),
                                  load_by_level=bool(h.get("load_by_level", True)))
    depends = raw.get("depends_on") or ()
    if isinstance(depends, str):
        depends = (depends,)
    on_missing = raw.get("on_missing", settings.on_missing_ref)
    on_missing = "null" if on_missing is None else on_missing         # YAML null
    if on_missing not in ON_MISSING:
        raise SpecError(where, f"on_missing must be one of {ON_MISSING}", obj=name)
    on_conflict = raw.get("on_conflict")
    if on_conflict is not None and on_conflict not in ON_CONFLICT:
        raise SpecError(where, f"on_conflict must be one of {', '.join(ON_CONFLICT)} (what the load does with a "
                               f"record edited in Odoo since the tool wrote it), not {on_conflict!r}",
                        obj=name, field="on_conflict")
    id_prefix = raw.get("id_prefix")
    if id_prefix is not None and not re.fullmatch(r"[A-Za-z0-9]{3}", str(id_prefix)):
        raise SpecError(where, f"id_prefix {id_prefix!r} is a 3-character Salesforce key prefix", obj=name)
    obj = ObjectSpec(
        name=name, source_object=str(raw.get("source_object") or name), stream=_freeze(dict(stream)),
        target=target, depends_on=tuple(str(d) for d in depends), fields=MappingProxyType(fields),
        conditions=MappingProxyType(conditions), attach=attach, hierarchy=hierarchy,
        id_prefix=str(id_prefix) if id_prefix is not None else None, enrich=_freeze(dict(raw.get("enrich") or {})),
        custom_fields=bool(raw.get("custom_fields", False)), on_missing=on_missing, on_conflict=on_conflict,
        doc=raw.get("doc"))
    _check_paths_read(obj, where)
    return obj


# the keys crm_migration.streams.soql.stream_from_spec accepts (checked here without importing Airflow)
_SOQL_KEYS = frozenset({"kind", "source_object", "object", "fields", "primary_key", "replication_key",
                        "filters", "include_deleted", "parent_filter", "parent_chunk_size", "batch_size", "bulk",
                        "delta_by"})
_SOQL_FIELD_RE = re.compile(r"^(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*(?:\.(?:<ns>|[A-Za-z])[A-Za-z0-9_<>]*)*$")


def _check_soql_stream(name: str, source_object: str, stream: Mapping[str, Any], where: str) -> None:
    if unknown := sorted(set(stream) - _SOQL_KEYS):
        raise SpecError(where, f"stream: unknown key(s) {unknown}; known: {sorted(_SOQL_KEYS)}", obj=name,
                        field="stream")
    fields = stream.get("fields")
    if not isinstance(fields, list | tuple) or not fields:
        raise SpecError(where, "stream: fields must be a non-empty list", obj=name, field="stream")
    for f in fields:
        if not isinstance(f, str) or not _SOQL_FIELD_RE.match(f):
            raise SpecError(where, f"stream: invalid field name {f!r}", obj=name, field="stream")
    filters = stream.get("filters") or ()
    for clause in [filters] if isinstance(filters, str) else filters:
        if not isinstance(clause, str) or not clause.strip():
            raise SpecError(where, f"stream: invalid filter {clause!r}", obj=name, field="stream")
    if (delta := stream.get("delta_by")) is not None:
        if not isinstance(delta, Mapping) or not isinstance(delta.get("match"), str) or not stream.get("parent_filter"):
            raise SpecError(where, "stream: delta_by is a stream block with a match field, for a parent_filter stream",
                            obj=name, field="stream")
        _check_soql_stream(name, str(delta.get("source_object")), {k: v for k, v in delta.items() if k != "match"},
                           where)


def _check_paths_read(obj: ObjectSpec, where: str) -> None:
    """Every source path a field, condition, key or attach_to uses is read by a SOQL stream."""
    if obj.stream.get("kind") != "soql":
        return
    read = {f.lower() for f in obj.stream_fields()} | {"id"}
    if rk := obj.stream.get("replication_key"):
        read.add(str(rk).lower())
    extra = {k.lower() for k in obj.enrich}

    def check(path: str, fname: str) -> None:
        if path.startswith(NOT_RECORD_PATHS):
            return
        if path.lower() in read or path.split(".")[0].lower() in extra:
            return
        raise SpecError(where, f"source field {path!r} is not read by the stream (add it to stream.fields)",
                        obj=obj.name, field=fname)

    for f in obj.fields.values():
        for p in f.sources:
            check(p, f.name)
    for c in obj.conditions.values():
        for p in c.sources:
            check(p, f"${c.name}")
    for p in obj.target.id_fields:
        check(p, "key")
    for p in obj.target.where:
        check(str(p), "target.where")
    if obj.attach:
        for p in obj.attach.sources:
            check(p, "attach_to")
    if obj.hierarchy:
        check(obj.hierarchy.parent_field, "hierarchy")


def _custom_rules(raw: Any, origin: str, objects: Mapping[str, ObjectSpec]) -> CustomFieldRules:
    if not isinstance(raw, Mapping):
        raise SpecError(origin, "custom_fields must be a mapping")
    type_map = dict(SF_TYPE_MAP)
    type_map.update(raw.get("type_map") or {})
    for sf, tt in type_map.items():
        if tt not in ODOO_TTYPES:
            raise SpecError(origin, f"custom_fields.type_map.{sf}: {tt!r} is not an Odoo ttype")
    objs = dict(raw.get("objects") or {})
    for o in objs:
        if o not in objects:
            raise SpecError(origin, f"custom_fields.objects: unknown object {o!r}")
    for key in raw.get("overrides") or {}:
        if str(key).split(".", 1)[0] not in objects or "." not in str(key):
            raise SpecError(origin, f"custom_fields.overrides: {key!r} is not '<Object>.<ApiName>'")
    max_len = int(raw.get("max_length", 63))
    if not 10 <= max_len <= 63:
        raise SpecError(origin, "custom_fields.max_length must be in [10, 63]")
    return CustomFieldRules(objects=MappingProxyType(objs), prefix=str(raw.get("prefix", "x_")), max_length=max_len,
                            type_map=MappingProxyType(type_map), overrides=_freeze(dict(raw.get("overrides") or {})),
                            skip=tuple(raw.get("skip") or ()))


def _check_cross(objects: Mapping[str, ObjectSpec], lookups: Mapping[str, LookupSpec],
                 x_fields: Mapping[str, Mapping[str, Any]], origin: str) -> None:
    key_objects: dict[str, str] = {}
    for obj in objects.values():
        for dep in obj.depends_on:
            if dep not in objects:
                raise SpecError(origin, f"depends_on: unknown object {dep!r}", obj=obj.name)
        for f in obj.fields.values():
            for r in f.ref:
                if r not in objects:
                    raise SpecError(origin, f"unknown ref object {r!r}", obj=obj.name, field=f.name)
                if objects[r].target.action != "load":
                    raise SpecError(origin, f"ref {r!r} is not loaded into Odoo (action "
                                            f"{objects[r].target.action}); use a lookup", obj=obj.name, field=f.name)
            if f.fallback and (not f.ref or f.fallback not in lookups):
                raise SpecError(origin, f"fallback {f.fallback!r} needs a ref and a declared lookup (known: "
                                        f"{', '.join(sorted(lookups))})", obj=obj.name, field=f.name)
            if f.lookup and f.lookup not in lookups:
                raise SpecError(origin, f"unknown lookup {f.lookup!r} (known: {', '.join(sorted(lookups))})",
                                obj=obj.name, field=f.name)
            for p in f.sources:
                if p.startswith("=") and _via_model(obj, obj.fields[p[1:].split(".", 1)[0]], objects, lookups) is None:
                    raise SpecError(origin, f"{p}: {p[1:].split('.', 1)[0]} must refer to one record of another "
                                            "object (a ref) or of a lookup's model", obj=obj.name, field=f.name)
            if len(f.ref) == 1 and f.many and len(f.sources) > 1 and not f.fn:
                ref_obj = objects[f.ref[0]]
                if len(ref_obj.target.id_fields) != len(f.sources):
                    raise SpecError(origin, f"ref {ref_obj.name} ids are made of {list(ref_obj.target.id_fields)}; "
                                            f"from gives {len(f.sources)} value(s)", obj=obj.name, field=f.name)
            if f.name.startswith("x_") and obj.model and f.name not in (x_fields.get(obj.model) or {}):
                raise SpecError(origin, f"{f.name} is not declared in x_fields.{obj.model} (the schema step "
                                        "creates only declared fields)", obj=obj.name, field=f.name)
        if obj.attach:
            for r in obj.attach.objects:
                if r not in objects:
                    raise SpecError(origin, f"unknown attach_to object {r!r}", obj=obj.name, field="attach_to")
                if not objects[r].id_prefix and not obj.attach.type_from:
                    raise SpecError(origin, f"attach_to object {r!r} has no id_prefix (or give type_from)",
                                    obj=obj.name, field="attach_to")
            if obj.attach.model_as == "ir_model" and "model" not in lookups:
                raise SpecError(origin, "attach_to model_as ir_model needs the lookup 'model'", obj=obj.name,
                                field="attach_to")
        if obj.target.key and obj.target.action == "load":
            ko = obj.target.key_object
            if ko in key_objects:
                # one source object split by `where` into two models (open tasks -> activities, closed ->
                # messages) shares its key and crosswalk entry: the record moves from one model to the other
                other = objects[key_objects[ko]]
                if not (other.source_object == obj.source_object and other.model != obj.model
                        and other.target.where and obj.target.where):
                    raise SpecError(origin, f"key object {ko!r} already used by {key_objects[ko]}: the crosswalk "
                                            "needs one per object (two mappings of one source object may share it "
                                            "only when `where` splits them into different models)",
                                    obj=obj.name, field="key")
            key_objects[ko] = obj.name


def _via_model(obj: ObjectSpec, through: FieldSpec, objects: Mapping[str, ObjectSpec],
               lookups: Mapping[str, LookupSpec]) -> str | None:
    """The Odoo model of the one record ``through`` maps to (a ``=through.field`` path reads it), else None: a ref
    to one other loaded object, or a lookup with a model; not a list of records, nor the object itself (its
    self-references are written after the batch)."""
    if len(through.ref) == 1 and through.ref[0] != obj.name and through.ref[0] in objects \
            and not (through.fn and through.fn[-1].name == "as_list"):
        return objects[through.ref[0]].model
    if through.lookup and through.lookup in lookups:
        return lookups[through.lookup].model
    return None


def _link(objects: Mapping[str, ObjectSpec], lookups: Mapping[str, LookupSpec]) -> dict[str, ObjectSpec]:
    """Copy into each object what it needs to know of the objects it references (no lookups at map time)."""
    out = {}
    for name, obj in objects.items():
        fields = {}
        for fname, f in obj.fields.items():
            if f.ref:
                f = replace(f, ref_templates=tuple(objects[r].target.id_template for r in f.ref),
                            ref_prefixes=tuple(objects[r].id_prefix for r in f.ref))
            if any(p.startswith("=") for p in f.sources):
                via = {}
                for p in f.sources:
                    if p.startswith("="):
                        through, odoo_field = p[1:].split(".", 1)
                        via[p] = (through, str(_via_model(obj, obj.fields[through], objects, lookups)), odoo_field)
                f = replace(f, via=MappingProxyType(via))
            fields[fname] = f
        attach = obj.attach
        if attach is not None:
            attach = replace(attach, targets=tuple((r, str(objects[r].id_prefix or ""), str(objects[r].model))
                                                   for r in attach.objects))
        out[name] = replace(obj, fields=MappingProxyType(fields), attach=attach)
    return out


#: per source: the object linking a person to its companies, and the many2many field of the other companies
CONTACT_LINKS: dict[str, tuple[str, str]] = {
    "apto": ("AccountContactRelation", "x_apto_company_ids"),
    "link_app": ("contact_companies", "x_link_app_company_ids"),
}


def _check_settings(objects: Mapping[str, ObjectSpec], settings: Settings, source: str, origin: str) -> None:
    """The settings agree with the objects (a setting nobody implements is a silent lie)."""
    link_object, m2m_field = CONTACT_LINKS.get(source, ("", ""))
    if not link_object or not any(o.source_object == link_object for o in objects.values()):
        return                              # the pair maps no contact-company links: nothing to check
    if settings.contact_extra_companies == "child_contacts":
        if not any(o.source_object == link_object and o.model == "res.partner"
                   and o.target.action == "load" for o in objects.values()):
            raise SpecError(origin, "settings.contact_extra_companies is child_contacts but no object maps "
                                    f"{link_object} to res.partner")
    elif not any(m2m_field in o.fields for o in objects.values()):
        raise SpecError(origin, f"settings.contact_extra_companies is many2many but no object writes {m2m_field}")


def _toposort(objects: Mapping[str, ObjectSpec], origin: str) -> list[str]:
    """Dependencies first; refs count as dependencies (a self-ref is the hierarchy, not a cycle)."""
    deps: dict[str, set[str]] = {}
    for name, obj in objects.items():
        d = set(obj.depends_on)
        for f in obj.fields.values():
            d.update(f.ref)
        if obj.attach:
            d.update(obj.attach.objects)
        d.discard(name)
        deps[name] = d
    order: list[str] = []
    done: set[str] = set()
    names = list(objects)
    while len(order) < len(names):
        ready = [n for n in names if n not in done and deps[n] <= done]
        if not ready:
            left = [n for n in names if n not in done]
            cycle = _find_cycle({n: deps[n] - done for n in left})
            raise SpecError(origin, f"dependency cycle between objects: {' -> '.join(cycle)}")
        order.append(ready[0])
        done.add(ready[0])
    return order


def _find_cycle(deps: Mapping[str, set[str]]) -> list[str]:
    start = next(iter(deps))
    path, seen = [start], {start: 0}
    node = start
    while True:
        node = sorted(d for d in deps[node] if d in deps)[0]
        if node in seen:
            return path[seen[node]:] + [node]
        seen[node] = len(path)
        path.append(node)
