"""Operator extra links: a task's report, opened in the on-call view.

``ReportLink`` reads the ``report`` URI the task returned (XCom ``return_value``) and links to it in the on-call
view (``/crm-migration/reports/...``, read through the reports base, so an ``s3://`` base works too). An operator
names it in ``operator_extra_links``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from crm_migration.ui import report_href

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey


class ReportLink(BaseOperatorLink):
    """The report of the task's run (its return value's ``report``), in the on-call view."""

    name = "Report"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        value = XCom.get_value(ti_key=ti_key, key="return_value")
        uri = value.get("report") if isinstance(value, dict) else None
        return report_href(uri) or ""
