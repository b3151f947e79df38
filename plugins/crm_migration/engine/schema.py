"""Schema the loader needs in Odoo before any record lands (idempotent)."""

from __future__ import annotations

from collections.abc import Iterable

from crm_migration.hooks.odoo import MIGRATION_KEY, OdooHook


def ensure_migration_keys(odoo: OdooHook, models: Iterable[str]) -> dict[str, bool]:
    """Make sure each model has the indexed ``x_migration_key`` char field; return ``{model: created}``."""
    out = {}
    for model in dict.fromkeys(models):
        existed = MIGRATION_KEY in odoo.fields_get(model)
        if not existed:
            odoo.ensure_field(model, MIGRATION_KEY, "char", string="Migration key", index=True, copy=False)
        out[model] = not existed
    return out
