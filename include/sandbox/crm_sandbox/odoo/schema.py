"""Field and model tables of the emulated database, built from the captured ``fields_get`` output."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

MAGIC = frozenset({"id", "create_date", "create_uid", "write_date", "write_uid", "display_name", "__last_update"})


@cache
def load_data(name: str) -> Any:
    """One of the packaged captures: ``fields.json``, ``records.json`` or ``faults.json``."""
    with resources.files(__package__).joinpath("data", name).open("r", encoding="utf-8") as fh:
        return json.load(fh)


class Field:
    """One field of a model, with what validation needs precomputed."""

    __slots__ = ("name", "type", "string", "required", "readonly", "store", "relation", "relation_field",
                 "selection", "sel_keys", "attrs", "manual", "computed", "related", "empty")

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        self.name = name
        self.attrs = attrs
        self.type: str = attrs["type"]
        self.string: str = attrs.get("string", name)
        self.required: bool = bool(attrs.get("required"))
        self.readonly: bool = bool(attrs.get("readonly"))
        self.store: bool = attrs.get("store", True)
        self.relation: str | None = attrs.get("relation")
        self.relation_field: str | None = attrs.get("relation_field")
        sel = attrs.get("selection")
        self.selection = [tuple(s) for s in sel] if isinstance(sel, list) else None
        self.sel_keys = frozenset(k for k, _ in self.selection) if self.selection is not None else None
        self.manual: bool = bool(attrs.get("manual"))
        self.computed: bool = bool(attrs.get("depends"))
        self.related = attrs.get("related")
        self.empty: Any = empty_value(self.type)


def empty_value(ftype: str) -> Any:
    if ftype in ("integer", "many2one_reference"):
        return 0
    if ftype in ("float", "monetary"):
        return 0.0
    if ftype in ("one2many", "many2many"):
        return []
    return False


def fdef(ftype: str, string: str, relation: str | None = None, *, required: bool = False,
         selection: list[list[str]] | None = None, store: bool = True, readonly: bool = False,
         relation_field: str | None = None) -> dict[str, Any]:
    """A ``fields_get``-shaped attribute dict for a synthesised field."""
    attrs: dict[str, Any] = {"type": ftype, "string": string, "required": required, "readonly": readonly,
                             "store": store, "searchable": store, "sortable": store, "manual": False,
                             "company_dependent": False, "depends": []}
    if relation:
        attrs["relation"] = relation
    if relation_field:
        attrs["relation_field"] = relation_field
    if selection is not None:
        attrs["selection"] = selection
    return attrs


def magic_fields() -> dict[str, dict[str, Any]]:
    return {
        "id": fdef("integer", "ID", readonly=True),
        "display_name": fdef("char", "Display Name", store=False, readonly=True),
        "create_date": fdef("datetime", "Created on", readonly=True),
        "create_uid": fdef("many2one", "Created by", "res.users", readonly=True),
        "write_date": fdef("datetime", "Last Updated on", readonly=True),
        "write_uid": fdef("many2one", "Last Updated by", "res.users", readonly=True),
    }


class Model:
    """A model's field table and its rows (``id -> stored values``)."""

    def __init__(self, name: str, description: str, fields: dict[str, Field], order: str,
                 computed: dict[str, Callable[[dict[str, Any]], Any]] | None = None) -> None:
        self.name = name
        self.description = description
        self.table = name.replace(".", "_")
        self.fields = fields
        self.order = order
        self.rows: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.computed: dict[str, Callable[[dict[str, Any]], Any]] = computed or {}
        self._getters: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.cache: dict[str, Any] = {}
        # one2many values for domains (read() computes them in one batch instead)
        self.o2m_getters: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.has_active = "active" in fields

    def add_field(self, field: Field) -> None:
        self.fields[field.name] = field
        self._getters.pop(field.name, None)
        self._getters.pop(f"{field.name}\0column", None)
        self.cache.clear()

    def remove_field(self, name: str) -> None:
        self.fields.pop(name, None)
        self._getters.pop(name, None)
        self._getters.pop(f"{name}\0column", None)
        self.cache.clear()

    def getter(self, fname: str) -> Callable[[dict[str, Any]], Any]:
        """``row -> value`` for a field (computed fields evaluated, empty values typed)."""
        get = self._getters.get(fname)
        if get is None:
            if fname in self.computed:
                get = self.computed[fname]
            elif fname in self.o2m_getters:
                get = self.o2m_getters[fname]
            else:
                empty = self.fields[fname].empty if fname in self.fields else False
                if isinstance(empty, list):
                    def get(row: dict[str, Any], _f: str = fname) -> Any:
                        return row.get(_f) or []
                else:
                    def get(row: dict[str, Any], _f: str = fname, _e: Any = empty) -> Any:
                        v = row.get(_f, _e)
                        return _e if v is None else v
            self._getters[fname] = get
        return get

    def column_getter(self, fname: str) -> Callable[[dict[str, Any]], Any]:
        """``row -> value`` as the database column holds it, for a number field: None when empty (NULL: never given a
        value, nor computed by Odoo, or left uncomputed by a hook), else as :meth:`getter` reads it (0 for NULL)."""
        key = f"{fname}\0column"
        get = self._getters.get(key)
        if get is None:
            field, read = self.fields[fname], self.getter(fname)
            by_odoo = field.computed or bool(field.related)    # a stored computed field is always written

            def get(row: dict[str, Any], _f: str = fname, _read: Any = read, _by_odoo: bool = by_odoo) -> Any:
                if _f in row:
                    return None if row[_f] is None else _read(row)
                return _read(row) if _by_odoo else None
            self._getters[key] = get
        return get

    def invalidate_getters(self) -> None:
        self._getters.clear()
