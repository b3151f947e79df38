"""``CrmMigrationPlugin``: the on-call view in the Airflow 3 UI.

Registered by the package's ``airflow.plugins`` entry point (``pip install`` is enough). It mounts a
FastAPI app on the API server at ``/crm-migration`` and adds "CRM migration" to the UI's Browse menu,
shown inside the Airflow UI (an external view with a ``url_route``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crm_migration.ui.app import URL_PREFIX, create_app


class CrmMigrationPlugin(AirflowPlugin):
    """Per pair: the runs, counts per object, dead letters, reports, and the rollback trigger of a run."""

    name = "crm_migration"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "CRM migration on-call view"}]
    external_views = [{"name": "CRM migration", "href": f"{URL_PREFIX}/", "destination": "nav",
                       "category": "browse", "url_route": "crm-migration"}]
