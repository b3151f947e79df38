"""``CrmMigrationPlugin``: the on-call view in the Airflow 3 UI.

Registered by the package's ``airflow.plugins`` entry point (``pip install`` is enough). It mounts a
FastAPI app on the API server at ``/crm-migration`` and adds "CRM migration" to the UI's Browse menu,
shown inside the Airflow UI (an external view with a ``url_route``). Every Airflow process loads plugins;
the app (FastAPI, Airflow's API security) is built on the API server's first request to it, nowhere else.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from crm_migration.ui import URL_PREFIX


class OnCallApp:
    """The on-call view's ASGI app, built on its first request (see :func:`crm_migration.ui.app.create_app`)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from crm_migration.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class CrmMigrationPlugin(AirflowPlugin):
    """Per pair: the runs, counts per object, dead letters, reports, and the rollback trigger of a run."""

    name = "crm_migration"
    fastapi_apps = [{"app": OnCallApp(), "url_prefix": URL_PREFIX, "name": "CRM migration on-call view"}]
    external_views = [{"name": "CRM migration", "href": f"{URL_PREFIX}/", "destination": "nav",
                       "category": "browse", "url_route": "crm-migration"}]
