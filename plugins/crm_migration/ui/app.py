"""The on-call view's FastAPI app, mounted by :class:`~crm_migration.ui.plugin.CrmMigrationPlugin` on the
Airflow API server at ``/crm-migration``.

Server-rendered pages (Jinja2, autoescape), read-only but for one action:

- ``GET /``: per pair, its runs (kind, mode, state, who approved, counts: source, landed, dead letters,
  conflicts, flags) with links to their reports;
- ``GET /runs/{run_id}``: one run: counts per object, the dead letters with their reasons and record ids,
  the reports, and a button that triggers ``<pair>_rollback`` for the run (which still waits for approval);
- ``POST /runs/{run_id}/rollback``: that trigger;
- ``GET /reports/{path}``: a report file under the configured reports base (read through ObjectStoragePath,
  so an ``s3://`` base is shown here too).

Behind Airflow's own auth: every route needs a logged-in user (the UI's session cookie or a bearer token)
allowed to read DAG runs; the trigger needs the right to create runs of the rollback DAG.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_migration.ui import URL_PREFIX, report_href

log = logging.getLogger(__name__)

ROLLBACK_KINDS = ("migrate", "delta")
#: headers of every page: nothing from elsewhere is loaded, nothing frames it but Airflow's own UI
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "json": "application/json"}


def _prefix(request: Request) -> str:
    """Where the app is mounted (``/crm-migration``, below Airflow's base path if it has one)."""
    return str(request.scope.get("root_path") or URL_PREFIX).rstrip("/")


def _totals(counts: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    from crm_migration.reports.audit import landed, totals

    out = totals(counts)
    out["landed"] = sum(landed(r) for r in counts)
    out["objects"] = len(counts)
    return out


def _reports(run: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    stats = run.get("stats") or {}
    out = []
    for key, label in (("report", "report"), ("reconciliation_report", "reconciliation"),
                       ("conflicts_report", "conflicts"), ("audit_report", "audit summary")):
        if uri := stats.get(key):
            out.append({"label": label, "uri": uri, "href": report_href(uri, prefix)})
    return out


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    from crm_migration.reports.writer import templates

    html = templates().get_template(name).render(prefix=_prefix(request), **context)
    return HTMLResponse(html, headers=_HEADERS)


def create_app() -> FastAPI:
    """The app the plugin mounts; the state DB is reached per request."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    can_read_runs = Depends(requires_access_dag("GET", DagAccessEntity.RUN))
    app = FastAPI(title="CRM migration: on-call view", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=[can_read_runs])
    def index(request: Request) -> HTMLResponse:
        from crm_migration.hooks.state import MigrationStateHook

        state = MigrationStateHook()
        try:
            runs = state.runs(limit=300)
            counts = state.run_counts([r["run_id"] for r in runs])
        finally:
            state.close()
        per_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in counts:
            per_run[row["run_id"]].append(row)
        pairs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for run in runs:
            pairs[run["pair"]].append({**run, "totals": _totals(per_run[run["run_id"]]),
                                       "reports": _reports(run, _prefix(request))})
        return _page(request, "oncall_index.html", pairs=dict(sorted(pairs.items())))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, dependencies=[can_read_runs])
    def run_page(request: Request, run_id: str, triggered: str | None = None, paused: bool = False,
                 error: str | None = None) -> HTMLResponse:
        from crm_migration.hooks.state import MigrationStateHook
        from crm_migration.reports.audit import landed

        state = MigrationStateHook()
        try:
            (run,) = state.runs(run_ids=[run_id], limit=1) or [None]
            if run is None:
                raise HTTPException(status_code=404, detail=f"no run {run_id!r} in the state database")
            counts = state.run_counts([run_id])
            dead = state.dead_letters(run_id=run_id, unresolved_only=False)[:500]
        finally:
            state.close()
        objects = [{**r, "landed": landed(r)} for r in counts]
        return _page(request, "oncall_run.html", run=run, objects=objects, totals=_totals(counts), dead=dead,
                     reports=_reports(run, _prefix(request)), can_roll_back=run["kind"] in ROLLBACK_KINDS,
                     rollback_dag=f"{run['pair']}_rollback", triggered=triggered, paused=paused, error=error)

    @app.post("/runs/{run_id}/rollback")
    def trigger_rollback(run_id: str, request: Request, user: Any = Depends(get_user)) -> Response:
        _same_origin(request)
        return _trigger(run_id, user, _prefix(request))

    @app.get("/reports/{path:path}", dependencies=[can_read_runs])
    def report_file(path: str) -> Response:
        from crm_migration.reports.writer import reports_base

        parts = path.split("/")
        if not path or any(p in ("", ".", "..") for p in parts):
            raise HTTPException(status_code=404, detail="no such report")
        target = reports_base().joinpath(*parts)
        try:
            data = target.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise HTTPException(status_code=404, detail=f"report {path} not found under the reports base") from None
        media = _MEDIA.get(parts[-1].rpartition(".")[2].lower(), "text/plain; charset=utf-8")
        return Response(data, media_type=media, headers=_HEADERS)

    return app


def _same_origin(request: Request) -> None:
    """Refuse a cross-site form post (the session cookie is SameSite=Lax already; this is a second lock)."""
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None}
    if origin and origin.split("://", 1)[-1] not in hosts:
        raise HTTPException(status_code=403, detail="cross-site request refused")


def _trigger(run_id: str, user: Any, prefix: str) -> Response:
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.exceptions import DagNotFound
    from airflow.models.dag import DagModel
    from airflow.utils.types import DagRunTriggeredByType

    from crm_migration.hooks.state import MigrationStateHook

    state = MigrationStateHook()
    try:
        (run,) = state.runs(run_ids=[run_id], limit=1) or [None]
    finally:
        state.close()
    if run is None:
        raise HTTPException(status_code=404, detail=f"no run {run_id!r} in the state database")
    if run["kind"] not in ROLLBACK_KINDS:
        raise HTTPException(status_code=400, detail=f"a {run['kind']} run has nothing to roll back")
    dag_id = f"{run['pair']}_rollback"
    if not get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=dag_id), user=user):
        raise HTTPException(status_code=403, detail=f"you may not trigger {dag_id}")
    page = f"{prefix}/runs/{quote(run_id, safe='')}"
    try:
        dag_run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user.get_name(),
                              conf={"run_id": run_id},
                              note=f"Rollback of {run_id}, triggered from the CRM migration on-call view")
    except DagNotFound:
        return RedirectResponse(f"{page}?error=" + quote(f"the DAG {dag_id} is not in Airflow (not parsed yet?)"),
                                status_code=303)
    log.info("%s triggered %s for run %s: %s", user.get_name(), dag_id, run_id, dag_run.run_id)
    dag = DagModel.get_dagmodel(dag_id)
    paused = "&paused=true" if dag is not None and dag.is_paused else ""
    return RedirectResponse(f"{page}?triggered={quote(dag_run.run_id, safe='')}{paused}", status_code=303)
