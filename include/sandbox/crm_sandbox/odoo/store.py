"""The in-memory ORM core: registry, transactions, CRUD, search, read, validation, RPC dispatch.

Model-specific side effects (chatter, won/lost, address sync …) live in :mod:`.hooks`.
"""

from __future__ import annotations

import base64
import copy
import inspect
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from . import errors as E
from .domain import compile_domain, mentions_active
from .schema import MAGIC, Field, Model, fdef, load_data, magic_fields
from .values import now_str, sanitize_html, to_date_str, to_datetime_str

INT_MAX = 2**31 - 1

# model -> (description, default order)
MODEL_INFO: dict[str, tuple[str, str]] = {
    "res.partner": ("Contact", "complete_name ASC, id DESC"),
    "crm.lead": ("Lead/Opportunity", "priority desc, id desc"),
    "crm.stage": ("CRM Stages", "sequence, name, id"),
    "crm.team": ("Sales Team", "sequence ASC, create_date DESC, id DESC"),
    "crm.lost.reason": ("Opp. Lost Reason", "name, id"),
    "crm.tag": ("CRM Tag", "name, id"),
    "mail.message": ("Message", "id desc"),
    "mail.message.subtype": ("Message subtypes", "sequence, id"),
    "mail.activity": ("Activity", "date_deadline ASC, id ASC"),
    "mail.activity.type": ("Activity Type", "sequence, id"),
    "calendar.event": ("Calendar Event", "start desc, id desc"),
    "calendar.attendee": ("Calendar Attendee Information", "id"),
    "ir.attachment": ("Attachment", "id desc"),
    "ir.model": ("Models", "model"),
    "ir.model.fields": ("Fields", "name"),
    "ir.model.fields.selection": ("Fields Selection", "sequence, id"),
    "ir.model.data": ("Model Data", "module, model, name"),
    "res.users": ("User", "name, login"),
    "res.groups": ("Access Groups", "name"),
    "res.country": ("Country", "name"),
    "res.country.state": ("Country state", "code"),
    "res.company": ("Companies", "sequence, name"),
    "res.currency": ("Currency", "active desc, name"),
    "res.partner.title": ("Partner Title", "name"),
    "res.partner.category": ("Partner Tags", "name"),
    "mail.followers": ("Document Followers", "id"),
    "mail.mail": ("Outgoing Mails", "id desc"),
    "mail.tracking.value": ("Mail Tracking Value", "id desc"),
    "utm.source": ("Source", "name"),
    "utm.medium": ("UTM Medium", "name"),
    "utm.campaign": ("UTM Campaign", "id"),
}

MAIL_THREAD = frozenset({"res.partner", "crm.lead", "crm.team", "calendar.event", "res.users"})
#: models inheriting ``mail.activity.mixin``; on 17.0 its ``write({'active': False})`` (hence archiving)
#: unlinks every activity of the record, 19.0 keeps them (mail/models/mail_activity_mixin.py)
ACTIVITY_MIXIN = frozenset({"res.partner", "crm.lead"})

# _inherits: child model -> parent model (custom fields of the parent appear on the child)
INHERITS = {"res.users": "res.partner", "mail.mail": "mail.message"}
#: records.json derived each country's xmlid from its code ("mismatches: ['GB']"): Odoo 17's is base.uk
XMLID_FIXES = {"base.gb": "base.uk"}

# many2many relation tables (for the FK constraint name)
M2M_TABLES = {
    ("crm.lead", "tag_ids"): ("crm_tag_rel", "tag_id"),
    ("res.partner", "category_id"): ("res_partner_res_partner_category_rel", "category_id"),
    ("calendar.event", "partner_ids"): ("calendar_event_res_partner_rel", "res_partner_id"),
}

# many2one fields that refuse the deletion of their target (ondelete='restrict')
RESTRICT = {("res.users", "partner_id"), ("crm.lead", "stage_id"), ("res.company", "partner_id"),
            ("res.company", "currency_id"), ("res.country.state", "country_id")}
CASCADE = {("mail.activity", "res_model_id"), ("calendar.attendee", "event_id"),
           ("mail.tracking.value", "mail_message_id"), ("mail.followers", "partner_id"),
           ("ir.model.fields", "model_id"), ("mail.message", "parent_id")}


def _synth_fields() -> dict[str, dict[str, dict[str, Any]]]:
    """Field tables of the models not captured in fields.json (mail queue, followers …)."""
    state_sel = [["outgoing", "Outgoing"], ["sent", "Sent"], ["received", "Received"],
                 ["exception", "Delivery Failed"], ["cancel", "Cancelled"]]
    return {
        "res.currency": {"name": fdef("char", "Currency", required=True), "symbol": fdef("char", "Symbol"),
                         "active": fdef("boolean", "Active"), "rounding": fdef("float", "Rounding Factor"),
                         "full_name": fdef("char", "Name")},
        "res.partner.title": {"name": fdef("char", "Title", required=True),
                              "shortcut": fdef("char", "Abbreviation")},
        "res.partner.category": {"name": fdef("char", "Tag Name", required=True),
                                 "color": fdef("integer", "Color"), "active": fdef("boolean", "Active"),
                                 "parent_id": fdef("many2one", "Parent Category", "res.partner.category")},
        "res.groups": {"name": fdef("char", "Name", required=True), "full_name": fdef("char", "Group Name")},
        "utm.campaign": {"name": fdef("char", "Campaign Identifier", required=True),
                         "title": fdef("char", "Campaign Name"), "active": fdef("boolean", "Active")},
        "mail.followers": {"res_model": fdef("char", "Related Document Model Name", required=True),
                           "res_id": fdef("many2one_reference", "Related Document ID"),
                           "partner_id": fdef("many2one", "Related Partner", "res.partner", required=True),
                           "subtype_ids": fdef("many2many", "Subtype", "mail.message.subtype"),
                           "name": fdef("char", "Name", store=False), "email": fdef("char", "Email",
                                                                                     store=False)},
        "mail.tracking.value": {
            "field_id": fdef("many2one", "Field", "ir.model.fields"),
            "old_value_integer": fdef("integer", "Old Value Integer"),
            "old_value_float": fdef("float", "Old Value Float"),
            "old_value_char": fdef("char", "Old Value Char"),
            "old_value_text": fdef("text", "Old Value Text"),
            "old_value_datetime": fdef("datetime", "Old Value DateTime"),
            "new_value_integer": fdef("integer", "New Value Integer"),
            "new_value_float": fdef("float", "New Value Float"),
            "new_value_char": fdef("char", "New Value Char"),
            "new_value_text": fdef("text", "New Value Text"),
            "new_value_datetime": fdef("datetime", "New Value Datetime"),
            "mail_message_id": fdef("many2one", "Message ID", "mail.message", required=True)},
        "mail.mail": {
            "mail_message_id": fdef("many2one", "Message", "mail.message"),
            "subject": fdef("char", "Subject"), "body_html": fdef("text", "Text Contents"),
            "email_from": fdef("char", "From"), "email_to": fdef("text", "To"),
            "email_cc": fdef("char", "Cc"),
            "recipient_ids": fdef("many2many", "To (Partners)", "res.partner"),
            "model": fdef("char", "Related Document Model"),
            "res_id": fdef("many2one_reference", "Related Document ID"),
            "state": fdef("selection", "Status", selection=state_sel),
            "auto_delete": fdef("boolean", "Auto Delete"),
            "message_type": fdef("selection", "Type", selection=[["email", "Email"], ["comment", "Comment"],
                                                                   ["notification", "System notification"]])},
        "calendar.attendee": {
            "event_id": fdef("many2one", "Meeting linked", "calendar.event", required=True),
            "partner_id": fdef("many2one", "Attendee", "res.partner", required=True),
            "email": fdef("char", "Email", store=False), "common_name": fdef("char", "Common name"),
            "state": fdef("selection", "Status", selection=[["needsAction", "Needs Action"],
                                                              ["tentative", "Maybe"], ["declined", "No"],
                                                              ["accepted", "Yes"]]),
            "availability": fdef("selection", "Available", selection=[["free", "Available"],
                                                                       ["busy", "Busy"]])},
    }


#: the versions the sandbox emulates; each loads its own captures (``fields.json``/``records.json`` for 17,
#: ``fields19.json``/``records19.json`` for 19, made by ``python -m crm_sandbox.odoo.capture``)
VERSIONS = (17, 19)
#: models a version no longer has (19.0 removed res.partner.title)
REMOVED_MODELS = {19: frozenset({"res.partner.title"})}


def capture_file(stem: str, version: int) -> str:
    """The packaged capture ``stem`` (``fields``, ``records``) of ``version``: ``fields.json``, ``fields19.json``."""
    return f"{stem}.json" if version == 17 else f"{stem}{version}.json"


def model_info(version: int) -> dict[str, tuple[str, str]]:
    """:data:`MODEL_INFO` of the models ``version`` has."""
    gone = REMOVED_MODELS.get(version, frozenset())
    return {m: info for m, info in MODEL_INFO.items() if m not in gone}


class _Registry:
    """The immutable template of one version, built once from its captures; each sandbox copies it on reset."""

    def __init__(self, version: int = 17) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unsupported Odoo version {version!r} ({' or '.join(map(str, VERSIONS))})")
        self.version = version
        captured = load_data(capture_file("fields", version))
        synth = _synth_fields()
        self.model_info = model_info(version)
        self.field_attrs: dict[str, dict[str, dict[str, Any]]] = {}
        for name in self.model_info:
            if name in captured:
                attrs = dict(captured[name])
            else:
                attrs = {**magic_fields(), **synth[name]}
            self.field_attrs[name] = attrs
        self.fields: dict[str, dict[str, Field]] = {
            m: {f: Field(f, a) for f, a in attrs.items()} for m, attrs in self.field_attrs.items()}
        self.records = load_data(capture_file("records", version))


_REGISTRY: dict[int, _Registry] = {}
_REGISTRY_LOCK = threading.Lock()


def registry(version: int = 17) -> _Registry:
    with _REGISTRY_LOCK:
        if version not in _REGISTRY:
            _REGISTRY[version] = _Registry(version)
        return _REGISTRY[version]


class Txn:
    """Undo journal of one RPC call: the first prior version of every touched row, plus callbacks."""

    __slots__ = ("entries", "seen")

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.seen: set[tuple[str, int]] = set()


class Core:
    """ORM core shared by the sandbox. Subclassed by :class:`crm_sandbox.odoo.server.OdooSandbox`."""

    models: dict[str, Model]
    uid: int
    ctx: dict[str, Any]
    #: the Odoo major version emulated (its captured schema and default records)
    version: int = 17

    # ------------------------------------------------------------------ registry / data
    def _build(self) -> None:
        reg = registry(self.version)
        self.models = {}
        for name, (desc, order) in reg.model_info.items():
            fields = dict(reg.fields[name])
            self.models[name] = Model(name, desc, fields, order)
        self._txn: Txn | None = None
        self._now = now_str()
        self._memo = {}
        self._tracking = {}
        self._xmlid_index: dict[tuple[str, str], int] | None = None
        self._followers_index: dict[tuple[str, int], dict[int, int]] | None = None
        self._ir_model_ids: dict[str, int] = {}
        self._ir_field_ids: dict[tuple[str, str], int] = {}
        self._load_records(reg.records)
        self._install_computed()

    def _load_records(self, rec: dict[str, Any]) -> None:
        ts = "2026-11-23 07:00:00"
        xmlids: list[tuple[str, str, str, int]] = []

        def add(model: str, data: dict[str, Any]) -> None:
            M = self.models[model]
            row: dict[str, Any] = {}
            for k, v in data.items():
                if k == "xmlid":
                    module, _, name = XMLID_FIXES.get(v, v).partition(".")
                    xmlids.append((module, name, model, data["id"]))
                    continue
                if k not in M.fields:
                    continue
                f = M.fields[k]
                if f.type == "many2one" and isinstance(v, list):
                    v = v[0] if v else False
                elif isinstance(v, list):
                    v = list(v)
                row[k] = v
            row.setdefault("create_date", ts)
            row.setdefault("write_date", ts)
            row.setdefault("create_uid", 1)
            row.setdefault("write_uid", 1)
            M.rows[row["id"]] = row
            M.next_id = max(M.next_id, row["id"] + 1)

        for key, model in [("res.company", "res.company"), ("res.currency (active)", "res.currency"),
                           ("res.partner", "res.partner"), ("res.users", "res.users"),
                           ("res.country", "res.country"), ("res.country.state (US, CA, DE)", "res.country.state"),
                           ("crm.stage", "crm.stage"), ("crm.team", "crm.team"),
                           ("crm.lost.reason", "crm.lost.reason"), ("crm.tag", "crm.tag"),
                           ("mail.activity.type", "mail.activity.type"),
                           ("mail.message.subtype", "mail.message.subtype"),
                           ("res.partner.title", "res.partner.title"),
                           ("res.partner.category", "res.partner.category"),
                           ("res.groups (crm/sales/base user)", "res.groups"),
                           ("utm.source", "utm.source"), ("utm.medium", "utm.medium"),
                           ("utm.campaign", "utm.campaign"), ("ir.model", "ir.model")]:
            for data in rec.get(key, []):
                add(model, data)
        # partner data the captures imply (admin email etc. are in records.json)
        P = self.models["res.partner"].rows
        for pid, prow in P.items():
            prow.setdefault("lang", "en_US")
            prow.setdefault("type", "contact")
            if pid == 1:
                prow["is_company"] = True
        for srow in self.models["res.country.state"].rows.values():
            srow.setdefault("country_id", False)
        for urow in self.models["res.users"].rows.values():
            urow.setdefault("notification_type", "email")
        for s in self.models["crm.stage"].rows.values():
            s.setdefault("requirements", False)
        # the currencies countries refer to exist (inactive) as in a fresh database
        CUR = self.models["res.currency"]
        for crow in rec.get("res.country", []):
            cur = crow.get("currency_id")
            if isinstance(cur, list) and cur and cur[0] not in CUR.rows:
                CUR.rows[cur[0]] = {"id": cur[0], "name": cur[1], "symbol": cur[1], "active": False,
                                    "create_date": ts, "write_date": ts, "create_uid": 1, "write_uid": 1}
                CUR.next_id = max(CUR.next_id, cur[0] + 1)
        for cur in self.models["res.currency"].rows.values():
            cur.setdefault("rounding", 0.01)
            cur.setdefault("full_name", "United States dollar" if cur.get("name") == "USD" else cur.get("name"))
        # ir.model rows for every emulated model (captured ids kept; others get free ids)
        IM = self.models["ir.model"]
        for r in IM.rows.values():
            self._ir_model_ids[r["model"]] = r["id"]
        next_free = max(max(IM.rows), 400) + 1
        module_of = {"mail": "mail", "calendar": "calendar", "utm": "utm", "crm": "crm"}
        for name, (desc, _order) in model_info(self.version).items():
            if name in self._ir_model_ids:
                continue
            mid = next_free
            next_free += 1
            IM.rows[mid] = {"id": mid, "model": name, "name": desc, "state": "base", "transient": False,
                            "create_date": ts, "write_date": ts, "create_uid": 1, "write_uid": 1}
            self._ir_model_ids[name] = mid
            module = module_of.get(name.split(".")[0], "base")
            xmlids.append((module, "model_" + name.replace(".", "_"), "ir.model", mid))
        IM.next_id = next_free
        # ir.model.fields rows for every field
        IF = self.models["ir.model.fields"]
        fid = 1
        for name, M in self.models.items():
            for fname, f in M.fields.items():
                IF.rows[fid] = {
                    "id": fid, "model_id": self._ir_model_ids[name], "model": name, "name": fname,
                    "field_description": f.string, "ttype": f.type, "relation": f.relation or False,
                    "relation_field": f.relation_field or False, "required": f.required,
                    "readonly": f.readonly, "store": bool(f.store), "state": "base", "index": False,
                    "copied": False, "translate": bool(f.attrs.get("translate")), "related": f.related or False,
                    "create_date": ts, "write_date": ts, "create_uid": 1, "write_uid": 1}
                self._ir_field_ids[(name, fname)] = fid
                fid += 1
        IF.next_id = fid
        # ir.model.data
        IMD = self.models["ir.model.data"]
        for i, (module, name, model, res_id) in enumerate(xmlids, start=1):
            IMD.rows[i] = {"id": i, "module": module, "name": name, "model": model, "res_id": res_id,
                           "noupdate": True, "create_date": ts, "write_date": ts, "create_uid": 1,
                           "write_uid": 1}
        IMD.next_id = len(xmlids) + 1
        # sequences close to the real database's
        self.models["mail.message"].next_id = 1
        self.models["crm.lead"].next_id = 1
        if self.version == 17:
            self.models["res.partner"].next_id = max(self.models["res.partner"].next_id, 7)

    # ------------------------------------------------------------------ DomainEnv
    def model(self, name: str) -> Model | None:
        return self.models.get(name)

    def display_name(self, model: str, rid: int) -> str:
        M = self.models.get(model)
        if M is None or not rid:
            return ""
        row = M.rows.get(rid)
        if row is None:
            return ""
        get = M.computed.get("display_name")
        if get is not None:
            return get(row)
        name = row.get("name")
        return name if name else f"{model},{rid}"

    def _install_computed(self) -> None:  # overridden by hooks
        pass

    # ------------------------------------------------------------------ transactions
    def _touch(self, M: Model, rid: int) -> None:
        old = M.rows.get(rid)
        if old is not None and M.name == "ir.model.data":
            self._xmlid_index = None
        elif old is not None and M.name == "mail.followers":
            self._followers_index = None
        txn = self._txn
        if txn is None:
            return
        key = (M.name, rid)
        if key in txn.seen:
            return
        txn.seen.add(key)
        txn.entries.append((M, rid, dict(old) if old is not None else None, key))

    def _on_rollback(self, fn: Callable[[], None]) -> None:
        if self._txn is not None:
            self._txn.entries.append((fn,))

    def _mark(self) -> int:
        return len(self._txn.entries) if self._txn is not None else 0

    def _rollback_to(self, mark: int) -> None:
        txn = self._txn
        if txn is None:
            return
        while len(txn.entries) > mark:
            entry = txn.entries.pop()
            if len(entry) == 1:
                entry[0]()
                continue
            M, rid, old, key = entry
            txn.seen.discard(key)
            if old is None:
                M.rows.pop(rid, None)
            else:
                M.rows[rid] = old
            if M.name == "ir.model.data":
                self._xmlid_index = None
            elif M.name == "mail.followers":
                self._followers_index = None

    def _begin(self) -> None:
        self._txn = Txn()
        self._tracking: dict[tuple[str, int], dict[str, Any]] = {}
        self._now = now_str()
        self._memo: dict[Any, Any] = {}

    def now(self) -> str:
        """The transaction's timestamp (PostgreSQL's ``now()`` is fixed for a transaction too)."""
        return self._now if self._txn is not None else now_str()

    def _end(self, ok: bool) -> None:
        if not ok:
            self._rollback_to(0)
        self._txn = None

    # ------------------------------------------------------------------ helpers
    def _m(self, name: str) -> Model:
        M = self.models.get(name)
        if M is None:
            raise E.UserError(f"Object {name} doesn't exist", json_tb_lines=37)
        return M

    def _new_id(self, M: Model) -> int:
        # ids are not reused after a rollback (PostgreSQL sequences are not transactional either)
        rid = M.next_id
        M.next_id += 1
        return rid

    def _insert(self, M: Model, row: dict[str, Any]) -> int:
        rid = self._new_id(M)
        row["id"] = rid
        self._touch(M, rid)
        M.rows[rid] = row
        if M.name == "ir.model.data" and self._xmlid_index is not None:
            self._xmlid_index[(row.get("module"), row.get("name"))] = rid
        elif M.name == "mail.followers" and self._followers_index is not None:
            self._followers_index.setdefault((row.get("res_model"), row.get("res_id")), {})[
                row.get("partner_id")] = rid
        return rid

    def _followers(self, model: str, res_id: int) -> dict[int, int]:
        """``partner_id -> mail.followers id`` of one document (indexed)."""
        if self._followers_index is None:
            idx: dict[tuple[str, int], dict[int, int]] = {}
            for fid, r in self.models["mail.followers"].rows.items():
                idx.setdefault((r.get("res_model"), r.get("res_id")), {})[r.get("partner_id")] = fid
            self._followers_index = idx
        return self._followers_index.get((model, res_id), {})

    def _set(self, M: Model, rid: int, vals: dict[str, Any]) -> None:
        """Low-level write (no validation, no hooks)."""
        self._touch(M, rid)
        M.rows[rid] = {**M.rows[rid], **vals}

    def _delete(self, M: Model, rid: int) -> None:
        self._touch(M, rid)
        M.rows.pop(rid, None)

    def _partner_of_uid(self, uid: int | None = None) -> int:
        row = self.models["res.users"].rows.get(uid or self.uid)
        return row.get("partner_id") or False if row else False

    @staticmethod
    def _ids(value: Any) -> list[int]:
        if value is None or value is False:
            return []
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if isinstance(value, (list, tuple)):
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise E.value_error(f"Invalid id {v!r}")
                out.append(v)
            return out
        raise E.value_error(f"Invalid ids {value!r}")

    # ------------------------------------------------------------------ xmlids
    def _xmlids(self) -> dict[tuple[str, str], int]:
        if self._xmlid_index is None:
            self._xmlid_index = {(r["module"], r["name"]): rid
                                 for rid, r in self.models["ir.model.data"].rows.items()}
        return self._xmlid_index

    def xmlid_lookup(self, xmlid: str) -> tuple[str, int] | None:
        module, _, name = xmlid.partition(".")
        if not name:
            module, name = "__import__", module
        imd = self._xmlids().get((module, name))
        if imd is None:
            return None
        row = self.models["ir.model.data"].rows[imd]
        return row["model"], row["res_id"]

    def xmlid_to_id(self, xmlid: str) -> int | bool:
        found = self.xmlid_lookup(xmlid)
        if not found:
            return False
        M = self.models.get(found[0])
        return found[1] if M is not None and found[1] in M.rows else False

    def _set_xmlid(self, xmlid: str, model: str, res_id: int) -> None:
        module, _, name = xmlid.partition(".")
        if not name:
            module, name = "__import__", module
        IMD = self.models["ir.model.data"]
        existing = self._xmlids().get((module, name))
        if existing:
            row = IMD.rows[existing]
            if (row.get("model"), row.get("res_id")) != (model, res_id):
                index = self._xmlid_index
                self._set(IMD, existing, {"model": model, "res_id": res_id})
                self._xmlid_index = index  # same (module, name) key: the index stays right
        else:
            now = self.now()
            self._insert(IMD, {"module": module, "name": name, "model": model, "res_id": res_id,
                               "noupdate": False, "create_date": now, "write_date": now,
                               "create_uid": self.uid, "write_uid": self.uid})

    def _invalid_field(self, M: Model, key: str, tb: int | None, op: str) -> E.OdooError:
        """A field the model lacks, as the server of this version words it (19.0: captured over JSON-2)."""
        if self.version < 19:
            return E.value_error(f"Invalid field {key!r} on model {M.name!r}", tb)
        if op == "write":  # JSON-2 gives the KeyError's argument as its message, unquoted
            return E.PyError("KeyError", key, tb_lines=tb, arguments=[key])
        return E.value_error(f"Invalid field {key!r} {'in' if op == 'create' else 'on'} {M.name!r}", tb)

    # ------------------------------------------------------------------ value conversion
    def _convert(self, M: Model, vals: dict[str, Any], tb: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate and convert ``vals`` to stored values; x2many commands are returned apart."""
        out: dict[str, Any] = {}
        x2m: dict[str, Any] = {}
        fields = M.fields
        for key, value in vals.items():
            f = fields.get(key)
            if f is None:
                raise E.value_error(f"Invalid field {key!r} on model {M.name!r}", tb)
            if key in MAGIC:
                continue
            t = f.type
            if value is None:
                value = False
            if t in ("char", "text"):
                out[key] = value if (value is False or isinstance(value, str)) else str(value)
            elif t == "selection":
                if value is not False and not (isinstance(value, str) and value in (f.sel_keys or ())):
                    raise E.value_error(f"Wrong value for {M.name}.{key}: {value!r}", tb - 15)
                out[key] = value
            elif t == "many2one":
                out[key] = self._m2o_value(f, value)
            elif t in ("one2many", "many2many"):
                x2m[key] = value
            elif t == "boolean":
                out[key] = bool(value)
            elif t in ("integer", "many2one_reference"):
                out[key] = self._int_value(value)
            elif t in ("float", "monetary"):
                out[key] = self._float_value(value)
            elif t == "datetime":
                out[key] = to_datetime_str(value, 60)
            elif t == "date":
                out[key] = to_date_str(value, 84)
            elif t == "html":
                out[key] = sanitize_html(value, self.version)
            elif t == "binary":
                out[key] = value.decode() if isinstance(value, bytes) else value
            else:
                out[key] = value
        return out, x2m

    @staticmethod
    def _int_value(value: Any) -> int:
        if value is False:
            return 0
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise E.psycopg_error("psycopg2.errors.InvalidTextRepresentation",
                                      f'invalid input syntax for type integer: "{value}"', 67) from None
        if not isinstance(value, int):
            raise E.type_error(f"int() argument must be a string, a bytes-like object or a real number, "
                               f"not '{type(value).__name__}'")
        if abs(value) > INT_MAX:
            raise E.psycopg_error("psycopg2.errors.NumericValueOutOfRange", "integer out of range", 67)
        return value

    @staticmethod
    def _float_value(value: Any) -> float:
        if value is False:
            return 0.0
        try:
            return float(value)
        except (TypeError, ValueError):
            raise E.psycopg_error("psycopg2.errors.InvalidTextRepresentation",
                                  f'invalid input syntax for type double precision: "{value}"', 67) from None

    def _m2o_value(self, f: Field, value: Any) -> int | bool:
        if value is False or value == 0:
            return False
        if isinstance(value, bool):
            return 1 if value else False
        if isinstance(value, int):
            if abs(value) > INT_MAX:
                raise E.psycopg_error("psycopg2.errors.NumericValueOutOfRange", "integer out of range", 67)
            return value
        if isinstance(value, (list, tuple)):
            if len(value) == 1 and isinstance(value[0], int):
                return value[0] or False
            raise E.value_error(f"Expected singleton: {f.relation}{tuple(value)!r}", 62)
        if isinstance(value, str):
            caret = " " * 61 + "^"
            raise E.psycopg_error(
                "psycopg2.errors.InvalidTextRepresentation",
                f'invalid input syntax for type integer: "{value}"\n'
                f'LINE 1: ...lity", "type", "user_id", "write_date", "write_uid") VALUES (\'{value}\', ...\n'
                f"{caret}", 67)
        raise E.value_error(f"Wrong value for {f.name}: {value!r}")

    # ------------------------------------------------------------------ x2many
    def _m2m_table(self, M: Model, f: Field) -> tuple[str, str]:
        known = M2M_TABLES.get((M.name, f.name))
        if known:
            return known
        comodel_table = (f.relation or "x").replace(".", "_")
        a, b = sorted([M.table, comodel_table])
        return f"{a}_{b}_rel", f"{comodel_table}_id"

    def _apply_m2m(self, M: Model, f: Field, current: list[int], cmds: Any, ctx: dict[str, Any]) -> list[int]:
        ids = list(current)
        if cmds is False or cmds is None:
            return []
        if not isinstance(cmds, (list, tuple)):
            raise E.value_error(f"Wrong value for {M.name}.{f.name}: {cmds!r}")
        if all(isinstance(c, int) and not isinstance(c, bool) for c in cmds):
            ids = list(dict.fromkeys(cmds))
        else:
            for cmd in cmds:
                if isinstance(cmd, int):
                    if cmd not in ids:
                        ids.append(cmd)
                    continue
                if not isinstance(cmd, (list, tuple)) or not cmd:
                    raise E.value_error(f"Wrong value for {M.name}.{f.name}: {cmd!r}")
                op = cmd[0]
                if op == 6:
                    ids = list(dict.fromkeys(cmd[2] or []))
                elif op == 5:
                    ids = []
                elif op == 4:
                    if cmd[1] not in ids:
                        ids.append(cmd[1])
                elif op == 3:
                    ids = [i for i in ids if i != cmd[1]]
                elif op == 2:
                    ids = [i for i in ids if i != cmd[1]]
                    CM = self.models.get(f.relation or "")
                    if CM is not None and cmd[1] in CM.rows:
                        self._unlink(CM, [cmd[1]], ctx)
                elif op == 1:
                    CM = self._m(f.relation or "")
                    self._write(CM, [cmd[1]], cmd[2], ctx)
                elif op == 0:
                    CM = self._m(f.relation or "")
                    ids.append(self._create(CM, [cmd[2]], ctx)[0])
                else:
                    raise E.value_error(f"Wrong value for {M.name}.{f.name}: {cmd!r}")
        CM = self.models.get(f.relation or "")
        if CM is not None:
            for i in ids:
                if not isinstance(i, int) or i not in CM.rows:
                    table, col = self._m2m_table(M, f)
                    raise E.fk_error("Unknown", "unknown", f"{table}_{col}_fkey")
        return ids

    def _apply_o2m(self, M: Model, f: Field, rid: int, cmds: Any, ctx: dict[str, Any]) -> None:
        CM = self.models.get(f.relation or "")
        inverse = f.relation_field
        if CM is None or not inverse or inverse not in CM.fields or CM.fields[inverse].type != "many2one":
            return
        if cmds is False or cmds is None:
            cmds = [(5,)]
        if not isinstance(cmds, (list, tuple)):
            raise E.value_error(f"Wrong value for {M.name}.{f.name}: {cmds!r}")
        if all(isinstance(c, int) and not isinstance(c, bool) for c in cmds):
            cmds = [(6, 0, list(cmds))]
        for cmd in cmds:
            if not isinstance(cmd, (list, tuple)) or not cmd or cmd[0] not in (0, 1, 2, 3, 4, 5, 6):
                raise E.value_error(f"Wrong value for {M.name}.{f.name}: {cmd!r}")
            op = cmd[0]
            current = [i for i, r in CM.rows.items() if r.get(inverse) == rid]
            if op == 0:
                self._create(CM, [{**cmd[2], inverse: rid}], ctx)
            elif op == 1:
                self._write(CM, [cmd[1]], cmd[2], ctx)
            elif op == 2:
                self._unlink(CM, [cmd[1]], ctx)
            elif op == 3:
                self._write(CM, [cmd[1]], {inverse: False}, ctx)
            elif op == 4:
                self._write(CM, [cmd[1]], {inverse: rid}, ctx)
            elif op == 5:
                if current:
                    self._write(CM, current, {inverse: False}, ctx)
            elif op == 6:
                keep = list(cmd[2] or [])
                drop = [i for i in current if i not in keep]
                if drop:
                    self._write(CM, drop, {inverse: False}, ctx)
                if keep:
                    self._write(CM, keep, {inverse: rid}, ctx)

    # ------------------------------------------------------------------ checks
    def _check_required(self, M: Model, row: dict[str, Any], skip: Iterable[str] = ()) -> None:
        for fname in self._required_fields(M):
            if fname in skip:
                continue
            v = row.get(fname, False)
            if v is False or v is None:
                f = M.fields[fname]
                raise E.mandatory_error(M.description, M.name, f.string, fname,
                                        version=self.version)

    _REQUIRED_SKIP = {
        "crm.team": {"alias_contact", "alias_defaults", "alias_id", "alias_model_id"},
        "res.company": {"layout_background", "partner_id"},
        "ir.model": {"field_id", "order"},
        "mail.activity.type": {"chaining_type", "delay_from", "delay_unit"},
        "res.users": {"notification_type", "partner_id", "company_id"},
        "ir.model.fields": {"model", "state"},
        "calendar.event": {"privacy", "show_as", "stop"},
        "ir.model.fields.selection": {"field_id"},
    }

    def _required_fields(self, M: Model) -> list[str]:
        cached = M.cache.get("required")
        if cached is None:
            skip = self._REQUIRED_SKIP.get(M.name, ())
            cached = M.cache["required"] = [
                n for n, f in M.fields.items()
                if f.required and f.store and n not in skip and n not in MAGIC and f.type not in
                ("one2many", "many2many", "boolean", "integer", "float", "monetary")]
        return cached

    def _check_fk(self, M: Model, row: dict[str, Any], keys: Iterable[str]) -> None:
        m2o = M.cache.get("m2o")
        if m2o is None:
            m2o = M.cache["m2o"] = {n: f.relation for n, f in M.fields.items()
                                    if f.type == "many2one" and f.relation in self.models}
        for k in m2o.keys() & keys:
            v = row.get(k)
            if v and v not in self.models[m2o[k]].rows:
                raise E.fk_error(M.description, M.name, f"{M.table}_{k}_fkey")

    # ------------------------------------------------------------------ create / write / unlink
    def _create(self, M: Model, vals_list: list[dict[str, Any]], ctx: dict[str, Any]) -> list[int]:
        prepared = []
        fields = M.fields
        for vals in vals_list:
            if not isinstance(vals, dict):
                raise E.value_error(f"Invalid create values {vals!r}", 83)
            if not fields.keys() >= vals.keys():
                key = next(k for k in vals if k not in fields)
                raise self._invalid_field(M, key, 83, "create")
        defaults_ctx = {k[8:]: v for k, v in ctx.items() if k.startswith("default_") and k[8:] in fields}
        now = self.now()
        pre = self._hook("pre_create", M.name)
        defaults = self._defaults(M)
        scalar_defaults = {k: v for k, v in defaults.items() if fields[k].type not in ("one2many", "many2many")}
        x2m_defaults = {k: v for k, v in defaults.items() if k not in scalar_defaults}
        for vals in vals_list:
            if defaults_ctx:
                vals = {**defaults_ctx, **vals}
            row, x2m = self._convert(M, vals, 83)
            row = {**scalar_defaults, **row}
            for k, v in x2m_defaults.items():
                if k not in x2m and k not in vals:
                    x2m[k] = v
            if pre is not None:
                pre(M, row, x2m, vals, ctx)
            prepared.append((row, x2m, vals))
        for row, _x2m, _vals in prepared:
            self._check_required(M, row)
        constraints = self._hook("constraints", M.name)
        for row, _x2m, _vals in prepared:
            self._check_fk(M, row, row.keys())
            if constraints is not None:
                constraints(M, row, ctx)
        ids = []
        for row, x2m, _vals in prepared:
            row["create_date"] = row["write_date"] = now
            row["create_uid"] = row["write_uid"] = self.uid
            rid = self._insert(M, row)
            ids.append(rid)
            for k, cmds in x2m.items():
                f = M.fields[k]
                if f.type == "many2many":
                    M.rows[rid][k] = self._apply_m2m(M, f, [], cmds, ctx)
                else:
                    self._apply_o2m(M, f, rid, cmds, ctx)
        post = self._hook("post_create", M.name)
        if post is not None:
            post(M, ids, [v for _r, _x, v in prepared], ctx)
        if M.name in MAIL_THREAD:
            self._thread_after_create(M, ids, [v for _r, _x, v in prepared], ctx)
        return ids

    def _write(self, M: Model, ids: list[int], vals: dict[str, Any], ctx: dict[str, Any]) -> bool:
        if not isinstance(vals, dict):
            raise E.value_error(f"Invalid write values {vals!r}", 49)
        for key in vals:
            if key not in M.fields:
                raise self._invalid_field(M, key, 49, "write")
        missing = [i for i in ids if i not in M.rows]
        if missing:
            raise E.missing_error(M.name, missing, self.uid)
        conv, x2m = self._convert(M, vals, 49)
        if self.version == 17 and M.name in ACTIVITY_MIXIN and vals.get("active", None) is False:
            # Odoo 17 deletes the activities of a record it archives, whatever it is archived with
            A = self.models["mail.activity"]
            idset = set(ids)
            gone = [rid for rid, r in A.rows.items() if r.get("res_model") == M.name and r.get("res_id") in idset]
            if gone:
                self._unlink(A, gone, ctx)
        pre = self._hook("pre_write", M.name)
        if pre is not None:
            pre(M, ids, conv, x2m, vals, ctx)
        tracked = self._tracked_fields(M, ctx)
        olds = {rid: {f: M.rows[rid].get(f, False) for f in tracked} for rid in ids} if tracked else {}
        prior = {rid: dict(M.rows[rid]) for rid in ids}
        now = self.now()
        for rid in ids:
            self._touch(M, rid)
            row = {**M.rows[rid], **conv, "write_date": now, "write_uid": self.uid}
            M.rows[rid] = row
            for k, cmds in x2m.items():
                f = M.fields[k]
                if f.type == "many2many":
                    M.rows[rid][k] = self._apply_m2m(M, f, row.get(k) or [], cmds, ctx)
                else:
                    self._apply_o2m(M, f, rid, cmds, ctx)
        for rid in ids:
            row = M.rows[rid]
            self._check_required(M, row)
            self._check_fk(M, row, conv.keys())
            self._check_constraints(M, row, ctx)
        post = self._hook("post_write", M.name)
        if post is not None:
            post(M, ids, conv, vals, prior, ctx)
        if M.name in MAIL_THREAD and tracked:
            self._thread_track(M, ids, olds, ctx)
        return True

    def _unlink(self, M: Model, ids: list[int], ctx: dict[str, Any]) -> bool:
        missing = [i for i in ids if i not in M.rows]
        if missing:
            raise E.missing_error(M.name, missing, self.uid)
        pre = self._hook("pre_unlink", M.name)
        if pre is not None:
            pre(M, ids, ctx)
        idset = set(ids)
        for rid in ids:
            self._delete(M, rid)
        # ondelete rules of every many2one pointing here
        for other in self.models.values():
            for fname, f in other.fields.items():
                if f.type != "many2one" or f.relation != M.name or not f.store:
                    continue
                hits = [rid for rid, r in other.rows.items() if r.get(fname) in idset]
                if not hits:
                    continue
                if (other.name, fname) in RESTRICT:
                    raise E.fk_error(other.description, other.name, f"{other.table}_{fname}_fkey")
                if (other.name, fname) in CASCADE:
                    self._unlink(other, [h for h in hits if h in other.rows], ctx)
                else:
                    for h in hits:
                        self._set(other, h, {fname: False})
        # documents attached by (model, res_id)
        for other_name, mfield in (("mail.message", "model"), ("mail.followers", "res_model"),
                                   ("mail.activity", "res_model"), ("ir.attachment", "res_model")):
            other = self.models[other_name]
            hits = [rid for rid, r in other.rows.items() if r.get(mfield) == M.name and r.get("res_id") in idset]
            if hits:
                self._unlink(other, hits, ctx)
        IMD = self.models["ir.model.data"]
        if M.name != "ir.model.data":
            for rid, r in list(IMD.rows.items()):
                if r.get("model") == M.name and r.get("res_id") in idset:
                    self._delete(IMD, rid)
        post = self._hook("post_unlink", M.name)
        if post is not None:
            post(M, ids, ctx)
        return True

    def _check_constraints(self, M: Model, row: dict[str, Any], ctx: dict[str, Any]) -> None:
        check = self._hook("constraints", M.name)
        if check is not None:
            check(M, row, ctx)

    def _defaults(self, M: Model) -> dict[str, Any]:
        return {}

    def _hook(self, kind: str, model: str) -> Callable[..., Any] | None:
        return getattr(self, f"_{kind}__{model.replace('.', '_')}", None)

    def _tracked_fields(self, M: Model, ctx: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def _thread_after_create(self, M: Model, ids: list[int], vals_list: list[dict[str, Any]],
                             ctx: dict[str, Any]) -> None:
        pass

    def _thread_track(self, M: Model, ids: list[int], olds: dict[int, dict[str, Any]], ctx: dict[str, Any]) -> None:
        pass

    def _flush_tracking(self) -> None:
        pass

    # ------------------------------------------------------------------ search / read
    def _search_ids(self, M: Model, domain: Any, ctx: dict[str, Any], *, offset: int = 0,
                    limit: int | None = None, order: str | None = None, tb: int = 52) -> list[int]:
        if domain is None or domain is False:
            domain = []
        if not isinstance(domain, (list, tuple)):
            raise E.value_error(f"Invalid domain {domain!r}", tb)
        pred = compile_domain(self, M, domain, tb_lines=tb)
        active_filter = M.has_active and ctx.get("active_test", True) and not mentions_active(domain)
        rows = M.rows
        candidates: Iterable[int] = rows
        if all(isinstance(t, (list, tuple)) or t == "&" for t in domain):
            # a pure conjunction naming ids: look at those rows only
            for t in domain:
                if isinstance(t, (list, tuple)) and len(t) == 3 and t[0] == "id" and t[1] in ("=", "in"):
                    wanted = t[2] if isinstance(t[2], (list, tuple)) else [t[2]]
                    candidates = sorted({i for i in wanted if isinstance(i, int) and i in rows})
                    break
        if active_filter:
            ids = [rid for rid in candidates if rows[rid].get("active", True) and pred(rows[rid])]
        else:
            ids = [rid for rid in candidates if pred(rows[rid])]
        ids = self._sort(M, ids, order)
        if offset:
            ids = ids[int(offset):]
        if limit:
            ids = ids[: int(limit)]
        return ids

    def _sort(self, M: Model, ids: list[int], order: str | None) -> list[int]:
        spec = order or M.order
        keys: list[tuple[str, bool]] = []
        for part in spec.split(","):
            bits = part.strip().split()
            if not bits:
                continue
            fname = bits[0].strip('"')
            desc = len(bits) > 1 and bits[1].lower() == "desc"
            if fname not in M.fields:
                raise E.value_error(f"Invalid field {fname!r} on model {M.name!r}")
            keys.append((fname, desc))
        rows = M.rows
        for fname, desc in reversed(keys):
            get = M.getter(fname)
            f = M.fields[fname]
            if f.type in ("char", "text", "html", "selection"):
                def key(rid: int, _g: Any = get) -> Any:
                    v = _g(rows[rid])
                    return (1, "") if v is False or v is None else (0, str(v).casefold())
            elif f.type == "boolean":
                def key(rid: int, _g: Any = get) -> Any:
                    return (0, bool(_g(rows[rid])))
            elif f.type in ("one2many", "many2many"):
                def key(rid: int) -> Any:
                    return (0, rid)
            else:
                def key(rid: int, _g: Any = get) -> Any:
                    v = _g(rows[rid])
                    return (1, 0) if v is False or v is None else (0, v)
            ids = sorted(ids, key=key, reverse=desc)
        return ids

    def _read(self, M: Model, ids: list[int], fields: list[str] | None, ctx: dict[str, Any],
              tb: int = 39) -> list[dict[str, Any]]:
        if fields:
            for fname in fields:
                if fname not in M.fields:
                    raise self._invalid_field(M, fname, tb, "read")
            names = [f for f in fields if f != "id"]
        else:
            names = [f for f in M.fields if f != "id"]
        rows = M.rows
        if fields and not names:
            # as the real Odoo 17 does: reading only "id" fetches no column, so every id asked comes back,
            # deleted ones included (the hook never relies on it to tell whether a record exists)
            return [{"id": rid} for rid in ids]
        present = [rid for rid in ids if rid in rows]
        o2m_maps: dict[str, dict[int, list[int]]] = {}
        for fname in names:
            f = M.fields[fname]
            if f.type == "one2many" and fname not in M.computed:
                o2m_maps[fname] = self._o2m_map(M, f, present, ctx)
        result = []
        for rid in present:
            row = rows[rid]
            out: dict[str, Any] = {"id": rid}
            for fname in names:
                f = M.fields[fname]
                t = f.type
                if fname in o2m_maps:
                    out[fname] = o2m_maps[fname].get(rid, [])
                    continue
                v = M.getter(fname)(row)
                if t == "many2one":
                    if v:
                        CM = self.models.get(f.relation or "")
                        if CM is not None and v not in CM.rows:
                            v = False
                        else:
                            v = [v, self.display_name(f.relation or "", v)] if CM is not None else [v, ""]
                elif t == "many2many":
                    v = list(v or [])
                out[fname] = v
            result.append(out)
        return result

    def _o2m_map(self, M: Model, f: Field, ids: list[int], ctx: dict[str, Any]) -> dict[int, list[int]]:
        """The ids of ``f`` per record; archived ones too under ``active_test: False``, as Odoo reads them."""
        CM = self.models.get(f.relation or "")
        inv = f.relation_field
        out: dict[int, list[int]] = {}
        if CM is None or not inv or not ids:
            return out
        wanted = set(ids)
        model_key = None
        if inv == "res_id":
            model_key = "res_model" if "res_model" in CM.fields else "model"
        active_filter = CM.has_active and ctx.get("active_test", True)
        for cid, r in CM.rows.items():
            p = r.get(inv)
            if p in wanted and (model_key is None or r.get(model_key) == M.name):
                if active_filter and not r.get("active", True):
                    continue
                out.setdefault(p, []).append(cid)
        if CM.order != "id":
            for k, v in out.items():
                out[k] = self._sort(CM, v, None)
        return out

    # ------------------------------------------------------------------ dispatch
    def call(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run one ORM call as ``self.uid`` (caller holds the lock and the transaction)."""
        M = self._m(model)
        if method.startswith("_"):
            raise E.AccessError(f"Private methods (such as {method}) cannot be called remotely.",
                                json_tb_lines=36)
        fn = self._method(M, method)
        if fn is None:
            raise E.PyError("AttributeError",
                            f"The method '{method}' does not exist on the model '{model}'", tb_lines=28)
        kwargs = dict(kwargs or {})
        ctx = kwargs.pop("context", None) or {}
        if not isinstance(ctx, dict):
            raise E.type_error("context must be a dictionary")
        self.ctx = ctx
        try:
            bound = inspect.signature(fn).bind(M, ctx, *args, **kwargs)
        except TypeError as exc:
            text = str(exc)
            missing = re.match(r"missing a required argument: '(\w+)'", text)
            if missing:
                text = f"missing 1 required positional argument: '{missing.group(1)}'"
            elif text == "too many positional arguments":
                text = f"takes {len(inspect.signature(fn).parameters) - 1} positional arguments but " \
                       f"{len(args) + 1} were given"
            raise E.type_error(f"{method}() {text}", 30) from None
        return fn(*bound.args, **bound.kwargs)

    def _method(self, M: Model, method: str) -> Callable[..., Any] | None:
        fn = getattr(self, f"rpc_{M.table}__{method}", None)
        if fn is not None:
            return fn
        if method in THREAD_METHODS and M.name in MAIL_THREAD:
            return getattr(self, f"rpc_{method}")
        if method in ACTIVE_METHODS and M.has_active:
            return getattr(self, f"rpc_{method}")
        if method in GENERIC_METHODS:
            return getattr(self, f"rpc_{method}")
        return None

    def is_record_method(self, model: str, method: str) -> bool:
        M = self.models.get(model)
        fn = self._method(M, method) if M is not None else None
        if fn is None:
            return False
        params = list(inspect.signature(fn).parameters)
        return len(params) > 2 and params[2] == "ids"

    # ------------------------------------------------------------------ generic ORM methods
    def rpc_create(self, M: Model, ctx: dict[str, Any], vals_list: Any) -> Any:
        if isinstance(vals_list, dict):
            return self._create(M, [vals_list], ctx)[0]
        if not isinstance(vals_list, list):
            raise E.value_error(f"Invalid create values {vals_list!r}", 83)
        if not vals_list:
            return []
        return self._create(M, vals_list, ctx)

    def rpc_write(self, M: Model, ctx: dict[str, Any], ids: Any, vals: Any) -> bool:
        return self._write(M, self._ids(ids), vals, ctx)

    def rpc_unlink(self, M: Model, ctx: dict[str, Any], ids: Any) -> bool:
        return self._unlink(M, self._ids(ids), ctx)

    def rpc_read(self, M: Model, ctx: dict[str, Any], ids: Any, fields: Any = None, load: str = "_classic_read") -> Any:
        return self._read(M, self._ids(ids), fields or None, ctx)

    def rpc_search(self, M: Model, ctx: dict[str, Any], domain: Any = None, offset: int = 0, limit: Any = None,
                   order: Any = None) -> list[int]:
        return self._search_ids(M, domain, ctx, offset=offset, limit=limit, order=order)

    def rpc_search_read(self, M: Model, ctx: dict[str, Any], domain: Any = None, fields: Any = None,
                        offset: int = 0, limit: Any = None, order: Any = None, **_kw: Any) -> Any:
        if fields:
            for fname in fields:
                if fname not in M.fields:
                    raise self._invalid_field(M, fname, 39, "read")
        ids = self._search_ids(M, domain, ctx, offset=offset, limit=limit, order=order)
        # as Odoo 17's search_read: active_test is for the search only, what it reads is read without it
        self.ctx = {k: v for k, v in ctx.items() if k != "active_test"}
        return self._read(M, ids, fields or None, self.ctx)

    def rpc_search_count(self, M: Model, ctx: dict[str, Any], domain: Any = None, limit: Any = None) -> int:
        return len(self._search_ids(M, domain, ctx, limit=limit, order="id"))

    def rpc_search_fetch(self, M: Model, ctx: dict[str, Any], domain: Any, field_names: Any, offset: int = 0,
                         limit: Any = None, order: Any = None) -> Any:
        return self.rpc_search_read(M, ctx, domain, field_names, offset, limit, order)

    def rpc_fields_get(self, M: Model, ctx: dict[str, Any], allfields: Any = None, attributes: Any = None) -> Any:
        out = {}
        for name, f in M.fields.items():
            if allfields and name not in allfields:
                continue
            attrs = dict(f.attrs)
            if attributes:
                attrs = {a: attrs[a] for a in attributes if a in attrs}
            out[name] = copy.deepcopy(attrs)
        return out

    def rpc_default_get(self, M: Model, ctx: dict[str, Any], fields_list: Any) -> Any:
        defaults = self._default_get(M, ctx)
        for k, v in ctx.items():
            if k.startswith("default_") and k[8:] in M.fields:
                defaults[k[8:]] = v
        return {k: v for k, v in defaults.items() if k in (fields_list or [])}

    def _default_get(self, M: Model, ctx: dict[str, Any]) -> dict[str, Any]:
        return {}

    def rpc_name_search(self, M: Model, ctx: dict[str, Any], name: str = "", args: Any = None,
                        operator: str = "ilike", limit: int = 100) -> Any:
        ids = self._search_ids(M, list(args or []), ctx, order=None)
        if name:
            pred = compile_domain(self, _DisplayModel(self, M), [("display_name", operator, name)])
            ids = [i for i in ids if pred(M.rows[i])]
        if limit:
            ids = ids[: int(limit)]
        return [[i, self.display_name(M.name, i)] for i in ids]

    def rpc_name_get(self, M: Model, ctx: dict[str, Any], ids: Any) -> Any:
        return [[i, self.display_name(M.name, i)] for i in self._ids(ids) if i in M.rows]

    def rpc_name_create(self, M: Model, ctx: dict[str, Any], name: str) -> Any:
        rid = self._create(M, [{"name": name}], ctx)[0]
        return [rid, self.display_name(M.name, rid)]

    def rpc_exists(self, M: Model, ctx: dict[str, Any], ids: Any) -> Any:
        return [i for i in self._ids(ids) if i in M.rows]

    def rpc_copy(self, M: Model, ctx: dict[str, Any], ids: Any, default: Any = None) -> Any:
        ids = self._ids(ids)
        if len(ids) != 1:
            raise E.value_error(f"Expected singleton: {M.name}{tuple(ids)!r}")
        if ids[0] not in M.rows:
            raise E.missing_error(M.name, ids, self.uid)
        row = M.rows[ids[0]]
        vals = {k: v for k, v in row.items() if k not in MAGIC and k in M.fields and M.fields[k].store
                and M.fields[k].type != "one2many"}
        vals.update(default or {})
        return self._create(M, [vals], ctx)[0]

    def rpc_read_group(self, M: Model, ctx: dict[str, Any], domain: Any, fields: Any, groupby: Any,
                       offset: int = 0, limit: Any = None, orderby: Any = False, lazy: bool = True) -> Any:
        groupby = [groupby] if isinstance(groupby, str) else list(groupby or [])
        if not groupby:
            raise E.value_error("read_group needs a groupby")
        gb = groupby[0].split(":")[0]
        if gb not in M.fields:
            raise E.value_error(f"Invalid field {gb!r} on model {M.name!r}")
        ids = self._search_ids(M, domain, ctx)
        aggs = []
        for spec in fields or []:
            name, _, func = spec.partition(":")
            name = name.split("(")[0]
            if name in M.fields and M.fields[name].type in ("integer", "float", "monetary") and name != gb:
                aggs.append((name, func or "sum"))
        groups: dict[Any, list[int]] = {}
        get = M.getter(gb)
        for rid in ids:
            v = get(M.rows[rid])
            groups.setdefault(v if not isinstance(v, list) else tuple(v), []).append(rid)
        f = M.fields[gb]
        out = []
        for value, members in groups.items():
            g: dict[str, Any] = {}
            if f.type == "many2one" and value:
                g[gb] = [value, self.display_name(f.relation or "", value)]
            else:
                g[gb] = value
            g[f"{gb}_count" if lazy else "__count"] = len(members)
            for name, func in aggs:
                vals = [M.getter(name)(M.rows[r]) or 0 for r in members]
                g[name] = {"sum": sum(vals), "max": max(vals), "min": min(vals),
                           "avg": sum(vals) / len(vals), "count": len(vals)}.get(func, sum(vals))
            g["__domain"] = [[gb, "=", value if not isinstance(value, tuple) else list(value)], *list(domain or [])]
            out.append(g)
        out.sort(key=lambda g: (g[gb] is False, str(g[gb])))
        if offset:
            out = out[offset:]
        if limit:
            out = out[:limit]
        return out

    def rpc_action_archive(self, M: Model, ctx: dict[str, Any], ids: Any) -> None:
        ids = [i for i in self._ids(ids) if i in M.rows and M.rows[i].get("active", True)]
        if ids:
            self._write(M, ids, {"active": False}, ctx)
        return None

    def rpc_action_unarchive(self, M: Model, ctx: dict[str, Any], ids: Any) -> None:
        ids = [i for i in self._ids(ids) if i in M.rows and not M.rows[i].get("active", True)]
        if ids:
            self._write(M, ids, {"active": True}, ctx)
        return None

    def rpc_toggle_active(self, M: Model, ctx: dict[str, Any], ids: Any) -> None:
        ids = self._ids(ids)
        on = [i for i in ids if i in M.rows and not M.rows[i].get("active", True)]
        off = [i for i in ids if i in M.rows and M.rows[i].get("active", True)]
        if off:
            self.rpc_action_archive(M, ctx, off)
        if on:
            self.rpc_action_unarchive(M, ctx, on)
        return None

    def rpc_check_access_rights(self, M: Model, ctx: dict[str, Any], operation: str,
                                raise_exception: bool = True) -> bool:
        return True

    def rpc_get_metadata(self, M: Model, ctx: dict[str, Any], ids: Any) -> Any:
        out = []
        for i in self._ids(ids):
            r = M.rows.get(i)
            if r is None:
                continue
            xmlid = next((f"{d['module']}.{d['name']}" for d in self.models["ir.model.data"].rows.values()
                          if d["model"] == M.name and d["res_id"] == i), False)
            out.append({"id": i, "create_uid": r.get("create_uid"), "create_date": r.get("create_date"),
                        "write_uid": r.get("write_uid"), "write_date": r.get("write_date"),
                        "xmlid": xmlid, "xmlids": [], "noupdate": False})
        return out

    # ir.model.data
    def rpc_ir_model_data__check_object_reference(self, M: Model, ctx: dict[str, Any], module: str,
                                                  xml_id: str, raise_on_access_error: bool = False) -> Any:
        found = self.xmlid_lookup(f"{module}.{xml_id}")
        if not found:
            raise E.value_error(f"External ID not found in the system: {module}.{xml_id}", 56)
        model, res_id = found
        TM = self.models.get(model)
        if TM is None or res_id not in TM.rows:
            raise E.value_error(f"External ID not found in the system: {module}.{xml_id}", 56)
        if TM.has_active and not TM.rows[res_id].get("active", True):
            return [model, False]
        return [model, res_id]

    def rpc_ir_model_data__xmlid_to_res_id(self, M: Model, ctx: dict[str, Any], xmlid: str,
                                           raise_if_not_found: bool = False) -> Any:
        rid = self.xmlid_to_id(xmlid)
        if not rid and raise_if_not_found:
            raise E.value_error(f"External ID not found in the system: {xmlid}")
        return rid

    # ------------------------------------------------------------------ load()
    def rpc_load(self, M: Model, ctx: dict[str, Any], fields: Any, data: Any) -> Any:
        # the legacy "field:id" / "field:db_id" spellings are still accepted
        fields = [f.replace(":db_id", "/.id").replace(":id", "/id") for f in fields]
        for col in fields:
            base = col.split("/")[0]
            if base in ("id", ".id"):
                continue
            if base not in M.fields:
                raise E.key_error(base, 35)
        mark = self._mark()
        messages: list[dict[str, Any]] = []
        ids: list[int] = []
        for i, row in enumerate(data):
            vals: dict[str, Any] = {}
            xmlid = None
            dbid = None
            row_msgs: list[dict[str, Any]] = []
            for col, cell in zip(fields, row, strict=False):
                if col == "id":
                    xmlid = cell or None
                    continue
                if col == ".id":
                    dbid = int(cell) if cell and str(cell).isdigit() else (cell or None)
                    # Odoo checks the id with a search: archived records are unknown unless active_test is off
                    if dbid is not None and not (isinstance(dbid, int) and dbid in M.rows and not (
                            M.has_active and ctx.get("active_test", True) and not M.rows[dbid].get("active", True))):
                        row_msgs.append({"field": ".id", "message": f"Unknown database identifier '{dbid}'",
                                         "record": i, "rows": {"from": i, "to": i}, "type": "error"})
                        dbid = None
                    continue
                fname, _, sub = col.partition("/")
                f = M.fields[fname]
                try:
                    vals[fname] = self._load_value(M, f, sub, cell, i, ctx)
                except _LoadError as err:
                    row_msgs.append(err.message)
            for col, cell in zip(fields, row, strict=False):
                fname = col.split("/")[0]
                if fname in M.fields and M.fields[fname].required and not cell and fname not in MAGIC:
                    f = M.fields[fname]
                    row_msgs.append({"field": fname, "message": f"Missing required value for the field "
                                     f"'{f.string}' ({fname})", "record": i, "rows": {"from": i, "to": i},
                                     "type": "error"})
            if row_msgs:
                messages.extend(row_msgs)
                continue
            try:
                target = None
                if xmlid:
                    found = self.xmlid_lookup(xmlid)
                    if found and found[0] == M.name and found[1] in M.rows:
                        target = found[1]
                if dbid:
                    target = dbid
                if target:
                    self._write(M, [target], vals, ctx)
                    rid = target
                else:
                    rid = self._create(M, [vals], ctx)[0]
                if xmlid:
                    self._set_xmlid(xmlid, M.name, rid)
                ids.append(rid)
            except E.OdooError as exc:
                messages.append({"message": exc.message, "record": i, "rows": {"from": i, "to": i},
                                 "type": "error"})
        if any(m["type"] == "error" for m in messages):
            self._rollback_to(mark)
            return {"ids": False, "messages": messages, "nextrow": 0}
        return {"ids": ids, "messages": messages, "nextrow": 0}

    def _load_value(self, M: Model, f: Field, sub: str, cell: Any, i: int, ctx: dict[str, Any]) -> Any:
        def fail(message: str, moreinfo: Any = None) -> _LoadError:
            msg: dict[str, Any] = {"field": f.name, "field_name": f.string, "message": message, "record": i,
                                   "rows": {"from": i, "to": i}, "type": "error"}
            if moreinfo is not None:
                msg["moreinfo"] = moreinfo
            return _LoadError(msg)

        def action(res_model: str, domain: Any = None) -> dict[str, Any]:
            a: dict[str, Any] = {"context": {"create": False}, "help": "See all possible values",
                                 "name": "Possible Values", "res_model": res_model, "target": "new",
                                 "type": "ir.actions.act_window", "view_mode": "tree,form",
                                 "views": [[False, "list"], [False, "form"]]}
            if domain is not None:
                a["domain"] = domain
            return a

        if cell is None or cell == "" or cell is False:
            return [(5,)] if f.type in ("one2many", "many2many") else False
        cell = str(cell)
        if f.type in ("many2one", "many2many"):
            CM = self.models.get(f.relation or "")
            out = []
            for part in (cell.split(",") if f.type == "many2many" else [cell]):
                part = part.strip()
                if sub == "id":
                    rid = self.xmlid_to_id(part if "." in part else f"__import__.{part}")
                    if not rid:
                        raise fail(f"No matching record found for external id '{part}' in field '{f.string}'",
                                   action("ir.model.data", [["model", "=", f.relation]]))
                elif sub == ".id":
                    rid = int(part) if part.isdigit() else 0
                    if CM is None or rid not in CM.rows:
                        raise fail(f"No matching record found for database id '{part}' in field '{f.string}'",
                                   action("ir.model.data", [["model", "=", f.relation]]))
                else:
                    rid = next((r for r in (CM.rows if CM else {})
                                if self.display_name(CM.name, r) == part), 0) if CM else 0
                    if not rid:
                        raise fail(f"No matching record found for name '{part}' in field '{f.string}'",
                                   action(f.relation or ""))
                out.append(rid)
            return out[0] if f.type == "many2one" else [(6, 0, out)]
        if f.type == "selection":
            for key, label in f.selection or []:
                if cell == key or cell == label:
                    return key
            raise fail(f"Value '{cell}' not found in selection field '{f.string}'",
                       [label for _k, label in f.selection or []])
        if f.type == "boolean":
            return cell.lower() not in ("0", "false", "no", "off", "")
        if f.type == "integer":
            try:
                return int(cell)
            except ValueError:
                raise fail(f"'{cell}' does not seem to be an integer for field '{f.string}'") from None
        if f.type in ("float", "monetary"):
            try:
                return float(cell)
            except ValueError:
                raise fail(f"'{cell}' does not seem to be a number for field '{f.string}'") from None
        if f.type in ("date", "datetime"):
            try:
                value = to_date_str(cell) if f.type == "date" else to_datetime_str(cell)
            except E.OdooError:
                fmt = "2012-12-31" if f.type == "date" else "2012-12-31 23:59:59"
                raise fail(f"'{cell}' does not seem to be a valid {f.type} for field '{f.string}'",
                           f"Use the format '{fmt}'") from None
            # Odoo's import reads a datetime in the context's time zone, else the user's, else UTC
            tz = self._load_tz(ctx)
            if f.type == "datetime" and tz is not None and value:
                local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
                value = local.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            return value
        if f.type == "binary":
            try:
                base64.b64decode(cell)
            except Exception:  # noqa: BLE001
                raise fail(f"Invalid binary value for field '{f.string}'") from None
        return cell


    def _load_tz(self, ctx: dict[str, Any]) -> Any:
        """The time zone ``load()`` reads datetimes in (``tz`` of the context, else the user's); None for UTC."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for name in (ctx.get("tz"), (self.models["res.users"].rows.get(self.uid) or {}).get("tz")):
            if name:
                try:
                    return None if name == "UTC" else ZoneInfo(str(name))
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return None


class _LoadError(Exception):
    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(message["message"])
        self.message = message


class _DisplayModel:
    """A view of a model whose only searchable field is ``display_name`` (for name_search)."""

    def __init__(self, env: Core, M: Model) -> None:
        self.name = M.name
        self.rows = M.rows
        self.fields = {"display_name": Field("display_name", fdef("char", "Display Name"))}
        self._env = env

    def getter(self, fname: str) -> Callable[[dict[str, Any]], Any]:
        return lambda row: self._env.display_name(self.name, row["id"])


GENERIC_METHODS = frozenset({
    "create", "write", "unlink", "read", "search", "search_read", "search_count", "search_fetch",
    "fields_get", "default_get", "name_search", "name_get", "name_create", "read_group", "load", "copy",
    "exists", "check_access_rights", "get_metadata"})
ACTIVE_METHODS = frozenset({"action_archive", "action_unarchive", "toggle_active"})
THREAD_METHODS = frozenset({"message_post", "message_subscribe", "message_unsubscribe"})
