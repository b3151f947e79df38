"""The on-call view's FastAPI app, mounted by :class:`~crm_migration.ui.plugin.CrmMigrationPlugin` on the
Airflow API server at ``/crm-migration``.

Server-rendered pages (Jinja2, autoescape), read-only but for one action:

- ``GET /``: per pair, its runs (kind, mode, state, who approved, counts: source, landed, dead letters,
  conflicts, flags, the state DB connection) with links to their reports. The runs are read from every state
  DB connection a migration DAG uses (its tasks' ``state_conn_id``: the pair file's ``connections:``,
  ``build_pair_dags`` arguments or a hand-written DAG's operators), each connection once; one that cannot be
  read is named on the page with the reason;
- ``GET /runs/{run_id}?conn=<state connection>``: one run: counts per object, the dead letters with their
  reasons and record ids, the reports, and a button that triggers the pair's rollback DAG on that state
  connection (``<pair>_rollback``) for the run (which still waits for approval);
- ``POST /runs/{run_id}/rollback?conn=<state connection>``: that trigger;
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
from urllib.parse import quote, urlencode

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


def state_connections() -> dict[str, list[dict[str, Any]]]:
    """``{state connection id: [{"dag_id", "rollback_pairs"}...]}``: the state DB connections the migration tasks
    of Airflow's active DAGs use (from their serialized form, so any DAG file counts: the bundled pairs, a pair on
    connections of its own, a DAG written by hand from the operators), the default connection first.

    ``rollback_pairs``: the pairs the DAG's ``RollbackOperator`` tasks roll back. A ``state_conn_id`` left as a
    template cannot be resolved here and is left out. Without any migration DAG: the default connection alone.
    """
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from crm_migration.hooks.state import MigrationStateHook

    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with create_session() as session:
        dag_ids = list(session.scalars(select(DagModel.dag_id).where(DagModel.is_stale.is_(False))))
        for row in SerializedDagModel.get_latest_serialized_dags(dag_ids=dag_ids, session=session):
            conns: dict[str, set[str]] = defaultdict(set)
            for task in ((row.data or {}).get("dag") or {}).get("tasks") or ():
                var = task.get("__var", task) if isinstance(task, dict) else {}
                if not str(var.get("_task_module") or "").startswith("crm_migration."):
                    continue
                args = {**(var.get("partial_kwargs") or {}), **var}
                conn = args.get("state_conn_id")
                if not isinstance(conn, str) or not conn or "{{" in conn:
                    continue
                rolled_back = conns[conn]
                if var.get("task_type") == "RollbackOperator" and isinstance(args.get("pair"), str):
                    rolled_back.add(args["pair"])
            for conn, rollback_pairs in conns.items():
                found[conn].append({"dag_id": row.dag_id, "rollback_pairs": rollback_pairs})
    default = MigrationStateHook.default_conn_name
    if not found:
        found[default] = []
    return {c: sorted(found[c], key=lambda d: d["dag_id"]) for c in sorted(found, key=lambda c: (c != default, c))}


def _rollback_dag(pair: str, conn: str, sources: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """The DAG that rolls back a run of ``pair`` recorded on state connection ``conn``: ``<pair>_rollback`` when
    it reads that connection, else another DAG rolling back that pair on it (else None)."""
    dags = [d for d in sources.get(conn, ()) if pair in d["rollback_pairs"]]
    names = [d["dag_id"] for d in dags]
    return f"{pair}_rollback" if f"{pair}_rollback" in names else (names[0] if names else None)


def _reason(exc: BaseException) -> str:
    """Why a state DB connection could not be read, in one line (the driver's message names host and database,
    never the password)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def _run_url(prefix: str, run_id: str, conn: str, action: str = "") -> str:
    """A run's page (or its ``/rollback`` action): the state connection in the query unless it is the default."""
    from crm_migration.hooks.state import MigrationStateHook

    url = f"{prefix}/runs/{quote(run_id, safe='')}{action}"
    return url if conn == MigrationStateHook.default_conn_name else f"{url}?conn={quote(conn, safe='')}"


def _find_run(run_id: str, conn: str | None,
              sources: Mapping[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """``(connection, run row, open state hook)`` of a run: on ``conn`` if given (one of ``sources``), else the
    first connection that has it. 404 when no connection has it, 503 naming the connection that failed."""
    from crm_migration.hooks.state import MigrationStateHook

    if conn is not None and conn not in sources:
        raise HTTPException(status_code=404, detail=f"{conn!r} is not the state DB connection of a migration DAG")
    failed = []
    for name in [conn] if conn is not None else list(sources):
        state = MigrationStateHook(postgres_conn_id=name)
        try:
            (run,) = state.runs(run_ids=[run_id], limit=1) or [None]
        except Exception as exc:  # noqa: BLE001 - named to the person, not a 500
            state.close()
            log.warning("state DB connection %s could not be read", name, exc_info=True)
            failed.append(f"{name} ({_reason(exc)})")
            continue
        if run is not None:
            return name, run, state
        state.close()
    where = ", ".join(sources if conn is None else [conn])
    if failed:
        raise HTTPException(status_code=503, detail=f"run {run_id!r} not found; state DB connection(s) that could "
                                                    f"not be read: {'; '.join(failed)}")
    raise HTTPException(status_code=404, detail=f"no run {run_id!r} in the state database(s) of {where}")


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

        prefix, sources = _prefix(request), state_connections()
        pairs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        unreadable = []
        for conn, dags in sources.items():          # each connection read once, whatever number of pairs use it
            state = MigrationStateHook(postgres_conn_id=conn)
            try:
                runs = state.runs(limit=300)
                counts = state.run_counts([r["run_id"] for r in runs])
            except Exception as exc:  # noqa: BLE001 - a connection that fails is named on the page, not a 500
                log.warning("state DB connection %s could not be read", conn, exc_info=True)
                unreadable.append({"conn": conn, "dags": [d["dag_id"] for d in dags], "reason": _reason(exc)})
                continue
            finally:
                state.close()
            per_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in counts:
                per_run[row["run_id"]].append(row)
            for run in runs:
                pairs[run["pair"]].append({**run, "state_conn": conn, "href": _run_url(prefix, run["run_id"], conn),
                                           "totals": _totals(per_run[run["run_id"]]), "reports": _reports(run, prefix)})
        for runs in pairs.values():
            runs.sort(key=lambda r: (r["started_at"] is not None, r["started_at"], r["run_id"]), reverse=True)
        return _page(request, "oncall_index.html", pairs=dict(sorted(pairs.items())), unreadable=unreadable,
                     connections=list(sources))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, dependencies=[can_read_runs])
    def run_page(request: Request, run_id: str, conn: str | None = None, triggered: str | None = None,
                 paused: bool = False, error: str | None = None) -> HTMLResponse:
        from crm_migration.reports.audit import landed

        sources = state_connections()
        conn, run, state = _find_run(run_id, conn, sources)
        try:
            counts = state.run_counts([run_id])
            dead = state.dead_letters(run_id=run_id, unresolved_only=False)[:500]
        except Exception as exc:  # noqa: BLE001
            log.warning("state DB connection %s could not be read", conn, exc_info=True)
            raise HTTPException(status_code=503, detail=f"state DB connection {conn} could not be read: "
                                                        f"{_reason(exc)}") from None
        finally:
            state.close()
        objects = [{**r, "landed": landed(r)} for r in counts]
        prefix = _prefix(request)
        return _page(request, "oncall_run.html", run=run, objects=objects, totals=_totals(counts), dead=dead,
                     reports=_reports(run, prefix), can_roll_back=run["kind"] in ROLLBACK_KINDS, state_conn=conn,
                     rollback_dag=_rollback_dag(run["pair"], conn, sources),
                     rollback_action=_run_url(prefix, run_id, conn, "/rollback"),
                     triggered=triggered, paused=paused, error=error)

    @app.post("/runs/{run_id}/rollback")
    def trigger_rollback(run_id: str, request: Request, conn: str | None = None,
                         user: Any = Depends(get_user)) -> Response:
        _same_origin(request)
        return _trigger(run_id, conn, user, _prefix(request))

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


def _trigger(run_id: str, conn: str | None, user: Any, prefix: str) -> Response:
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.exceptions import DagNotFound
    from airflow.models.dag import DagModel
    from airflow.utils.types import DagRunTriggeredByType

    sources = state_connections()
    conn, run, state = _find_run(run_id, conn, sources)
    state.close()
    if run["kind"] not in ROLLBACK_KINDS:
        raise HTTPException(status_code=400, detail=f"a {run['kind']} run has nothing to roll back")
    page = _run_url(prefix, run_id, conn)
    dag_id = _rollback_dag(run["pair"], conn, sources)
    if dag_id is None:
        return RedirectResponse(_with(page, error=f"no rollback DAG of {run['pair']} reads the state DB connection "
                                                  f"{conn} where this run is recorded"), status_code=303)
    if not get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=dag_id), user=user):
        raise HTTPException(status_code=403, detail=f"you may not trigger {dag_id}")
    try:
        dag_run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user.get_name(),
                              conf={"run_id": run_id},
                              note=f"Rollback of {run_id}, triggered from the CRM migration on-call view")
    except DagNotFound:
        return RedirectResponse(_with(page, error=f"the DAG {dag_id} is not in Airflow (not parsed yet?)"),
                                status_code=303)
    log.info("%s triggered %s for run %s: %s", user.get_name(), dag_id, run_id, dag_run.run_id)
    dag = DagModel.get_dagmodel(dag_id)
    paused = {"paused": "true"} if dag is not None and dag.is_paused else {}
    return RedirectResponse(_with(page, triggered=dag_run.run_id, **paused), status_code=303)


def _with(url: str, **query: str) -> str:
    """``url`` with ``query`` added to its query string."""
    return url + ("&" if "?" in url else "?") + urlencode(query, quote_via=quote)
