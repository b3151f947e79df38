"""The on-call view: an Airflow UI plugin showing each pair's runs, counts, dead letters and reports.

``report_href`` is here, light to import (tasks and operator links use it): the view's link to a report.
"""

from __future__ import annotations

from urllib.parse import quote

#: where the plugin mounts its app on the Airflow API server
URL_PREFIX = "/crm-migration"


def report_href(uri: str | None, prefix: str = URL_PREFIX) -> str | None:
    """The on-call view's link to a report URI under the configured reports base (else None)."""
    from crm_migration.reports.writer import reports_base_uri

    if not uri:
        return None
    base = reports_base_uri().rstrip("/") + "/"
    if not str(uri).startswith(base):
        return None
    return f"{prefix}/reports/" + quote(str(uri)[len(base):])
