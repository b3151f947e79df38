"""Schema the loader needs in Odoo before any record lands (idempotent)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_migration.hooks.odoo import MIGRATION_KEY, FieldDef, OdooHook, _major


def target_major(odoo: OdooHook) -> int | None:
    """The target's major version, from the hook's cached ``common.version()`` (one call per hook): the
    version whose ``targets:`` overrides of the pair file apply (None when Odoo does not say: none)."""
    return _major(odoo.version())


def migration_key_field(model: str) -> FieldDef:
    """The indexed ``x_migration_key`` char field of ``model`` (not copied by a duplicate)."""
    return FieldDef(model, MIGRATION_KEY, "char", "Migration key", index=True, copy=False)


def ensure_migration_keys(odoo: OdooHook, models: Iterable[str]) -> dict[str, bool]:
    """Make sure each model has the indexed ``x_migration_key`` char field (one call for all that lack it);
    return ``{model: created}``."""
    models = list(dict.fromkeys(models))
    missing = [m for m in models if MIGRATION_KEY not in odoo.fields_get(m)]
    odoo.ensure_fields([migration_key_field(m) for m in missing])
    return {m: m in missing for m in models}


#: field types that take a record id (a ``ref``, a ``lookup``, an ``attach_to`` id)
_ID_TYPES = frozenset({"many2one", "many2many", "one2many", "integer", "many2one_reference"})


def target_field_problems(odoo: OdooHook, spec: Any, planned: Mapping[str, Iterable[str]] | None = None
                          ) -> list[dict[str, Any]]:
    """Check every field the mapping writes against the target's own schema (``fields_get``).

    Returns one problem per field the target cannot take: ``{"object", "model", "field", "severity",
    "problem", "remedy"}`` (``blocking``: the load would fail record by record; ``warning``: Odoo would
    ignore the value). ``planned`` names the ``x_`` fields the schema step creates (``{model: names}``):
    those are not missing. Read-only; one ``fields_get`` per model.
    """
    planned_by_model = {m: set(names) for m, names in (planned or {}).items()}
    for model, fields in (spec.x_fields or {}).items():
        planned_by_model.setdefault(model, set()).update(fields)
    out: list[dict[str, Any]] = []
    for obj in spec.loadable():
        if not obj.model:
            continue
        try:
            target = odoo.fields_get(obj.model)
        except Exception as exc:   # noqa: BLE001 - an uninstalled model is the problem reported
            out.append({"object": obj.name, "model": obj.model, "field": "", "severity": "blocking",
                        "problem": f"model {obj.model} is not available in Odoo ({type(exc).__name__})",
                        "remedy": "install the Odoo module that provides it, or remove the object from the mapping"})
            continue
        written = [(f.name, f) for f in obj.fields.values()]
        if obj.attach is not None:
            written += [(obj.attach.model_field, None), (obj.attach.id_field, None)]
        for name, fspec in written:
            problem = _field_problem(name, fspec, target, planned_by_model.get(obj.model, set()))
            if problem is None:
                continue
            severity, text = problem
            out.append({"object": obj.name, "model": obj.model, "field": name, "severity": severity,
                        "problem": text, "remedy": _remedy(name, fspec, target, obj.model)})
    return out


def _field_problem(name: str, fspec: Any, target: Mapping[str, Mapping[str, Any]],
                   planned: set[str]) -> tuple[str, str] | None:
    f = target.get(name)
    if f is None:
        if name in planned:
            return None
        return "blocking", f"the target has no field {name!r}"
    ftype = f.get("type")
    if fspec is not None and (fspec.ref or fspec.lookup) and ftype not in _ID_TYPES:
        what = f"ref {'/'.join(fspec.ref)}" if fspec.ref else f"lookup {fspec.lookup}"
        return "blocking", f"{name} is a {ftype} field, the mapping gives it a record id ({what})"
    if f.get("readonly") and not f.get("store", True):
        return "warning", f"{name} is computed and read-only in the target: Odoo ignores a value written to it"
    return None


def _remedy(name: str, fspec: Any, target: Mapping[str, Mapping[str, Any]], model: str) -> str:
    """What a person can do about a field the target lacks: close fields of a fitting type, or an ``x_`` field."""
    import difflib

    want_ids = fspec is not None and bool(fspec.ref or fspec.lookup)
    fitting = [n for n, f in target.items()
               if (f.get("type") in _ID_TYPES) == want_ids and not (f.get("readonly") and not f.get("store", True))]
    close = difflib.get_close_matches(name, fitting, n=3, cutoff=0.5)
    if name in target:          # it exists with the wrong type
        hint = f"map the value to a field of a fitting type{' such as ' + ', '.join(close) if close else ''}"
    else:
        hint = f"map it to another field of {model}{' (' + ', '.join(close) + '?)' if close else ''}"
    label = (fspec.sources[0] if fspec is not None and fspec.sources else name)
    return (f"{hint}, or keep the value in a custom field: declare x_{name.removeprefix('x_')} under x_fields "
            f"of {model} in the pair file (e.g. {{ttype: char, label: \"{label}\"}}) and map it there")
