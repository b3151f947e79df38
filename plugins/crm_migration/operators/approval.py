"""A person's approval, or its headless stand-in: the ``approved_by`` Param.

With ``approved_by`` set (a name), the approval is recorded in the state DB like a person's and the
task returns at once; without it the task waits for a person in Airflow's Human-in-the-loop UI
(``Approve`` or ``Reject``), then records who decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from crm_migration.hooks.state import MigrationStateHook


class MigrationApprovalOperator(ApprovalOperator):
    """Wait for a person to approve (or take ``params.approved_by``), and record the decision.

    :param what: what is being approved, recorded with the decision (e.g. ``mapping``, ``diff``).
    :param state_conn_id: the state DB connection.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "what")

    def __init__(self, *, what: str, state_conn_id: str = MigrationStateHook.default_conn_name,
                 **kwargs: Any) -> None:
        kwargs.setdefault("fail_on_reject", True)
        super().__init__(**kwargs)
        self.what, self.state_conn_id = what, state_conn_id

    def execute(self, context: Any) -> Any:
        approved_by = (context["params"].get("approved_by") or "").strip()
        if approved_by:
            self._record(context, approved_by)
            self.log.info("%s approved by %s (approved_by Param): not waiting for a person", self.what, approved_by)
            return {"chosen_options": [self.APPROVE], "params_input": {},
                    "responded_at": datetime.now(UTC).isoformat(), "responded_by_user": {"name": approved_by}}
        self.log.info("waiting for a person to approve the %s (Airflow UI: Required actions)", self.what)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        ret = super().execute_complete(context=context, event=event)
        user = event.get("responded_by_user") or {}
        who = user.get("name") or user.get("id") or "unknown"
        if ret["chosen_options"][0] == self.APPROVE:
            self._record(context, who)
        return ret

    def _record(self, context: Any, who: str) -> None:
        state = MigrationStateHook(postgres_conn_id=self.state_conn_id)
        try:
            state.approve_run(context["run_id"], f"{who} ({self.what})")
        finally:
            state.close()
