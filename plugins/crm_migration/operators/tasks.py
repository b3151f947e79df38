"""What every migration operator shares: the pair's mapping file, its source adapter, and the
:class:`~crm_migration.engine.pipeline.Pipeline` over hooks built from the named connections.

Nothing here runs at DAG parse time except :func:`pair_spec` (the factory reads the pair file); hooks are
made when an operator executes. The work itself is in ``crm_migration.engine``; the operators in
:mod:`crm_migration.operators.migration` call it.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from crm_migration.engine.pipeline import Pipeline
from crm_migration.errors import ConfigurationError
from crm_migration.hooks.odoo import OdooHook
from crm_migration.hooks.state import MigrationStateHook
from crm_migration.mapping.spec import PairSpec, load_pair

log = logging.getLogger("crm_migration.tasks")

#: source name -> (hook class, source adapter class, Airflow pool of its API)
SOURCES: dict[str, tuple[str, str, str]] = {
    "apto": ("crm_migration.hooks.apto:AptoHook", "crm_migration.streams.apto_source:AptoSource", "apto_api"),
    "link_app": ("crm_migration.hooks.link_app:LinkAppHook", "crm_migration.streams.link_app_source:LinkAppSource",
                 "link_app_api"),
}


def source_pool(source: str) -> str:
    try:
        return SOURCES[source][2]
    except KeyError:
        raise ConfigurationError(f"no source adapter for {source!r} (known: {', '.join(SOURCES)})") from None


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def pair_spec(pair: str | Path | PairSpec) -> PairSpec:
    """The pair's validated mapping: a pair name (``[crm_migration] pairs_folder``, else the bundled pairs) or the
    path of a mapping file (:func:`~crm_migration.mapping.spec.locate_pair`)."""
    return pair if isinstance(pair, PairSpec) else load_pair(pair)


def source_adapter(spec: PairSpec, conn_id: str | None = None) -> Any:
    """The pair's source adapter over its hook on ``conn_id`` (``None``: the source's default connection)."""
    hook_path, source_path, _ = SOURCES.get(spec.source) or (None, None, None)
    if hook_path is None or source_path is None:
        raise ConfigurationError(f"{spec.pair}: no source adapter for {spec.source!r} (known: {', '.join(SOURCES)})")
    hook_cls = _load(hook_path)
    return _load(source_path)(hook_cls(conn_id) if conn_id else hook_cls())


def pipeline(pair: str | Path | PairSpec, logger: Any = None, *, run_id: str | None = None,
             source_conn_id: str | None = None, odoo_conn_id: str = OdooHook.default_conn_name,
             state_conn_id: str = MigrationStateHook.default_conn_name) -> Pipeline:
    """The pair's :class:`Pipeline` over hooks on the named connections (defaults: DESIGN.md's).

    With ``run_id``, the source facts ``start_run`` recorded for the run are reused (no metadata calls).
    """
    spec = pair_spec(pair)
    source = source_adapter(spec, source_conn_id)
    state = MigrationStateHook(postgres_conn_id=state_conn_id)
    meta = None
    if run_id:
        run = state.get_run(run_id) or {}
        meta = (run.get("stats") or {}).get("source_meta")
    return Pipeline(spec, source, OdooHook(odoo_conn_id), state, log=logger or log, meta=meta)
