"""A person's approval, or its headless stand-in: the ``approved_by`` Param.

The step's body (Airflow UI: *Required actions*) says what to check and where: the report's URI (and its link in
the on-call view) and two to four lines of what to look at. Who may answer (``assigned_users``) and who is told
(``notifiers``) come from the pair file's ``approvals:`` section (:func:`approval_kwargs`).

With ``approved_by`` set (a name), the decision is recorded in the state DB like a person's (``how`` =
``approved_by``) and the task returns at once; without it the task waits for a person (``Approve`` or ``Reject``),
then records who decided (the responder Airflow reports: name and user id). Every decision is a row of
``crm_migration.approvals``; an approval of the mapping (``what="mapping"``) also records the confirmation of the
mapping file as it is at that moment (sha256 and a snapshot: edit the YAML, then approve).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from crm_migration.hooks.state import MigrationStateHook

if TYPE_CHECKING:
    from crm_migration.mapping.spec import PairSpec

#: what an approval step approves (the pair file's approvals.steps keys)
WHATS = ("mapping", "sample_diff", "full_run", "rollback")


def approval_kwargs(spec: PairSpec, what: str) -> dict[str, Any]:
    """``assigned_users`` and ``notifiers`` of the step ``what`` from the pair file's ``approvals:`` section, as
    :class:`MigrationApprovalOperator` takes them (each notifier ``{class: <module>.<Class>, **kwargs}`` built)."""
    from crm_migration.errors import ConfigurationError

    step = spec.approvals.step(what)
    notifiers = []
    for n in step.notifiers:
        path = str(n["class"])
        module, _, name = path.partition(":") if ":" in path else path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"{spec.origin}: approvals notifier {path!r} cannot be imported ({exc}); "
                                     "install its provider or fix the class path") from None
        notifiers.append(cls(**{k: v for k, v in _plain(n).items() if k != "class"}))
    return {"assigned_users": [dict(u) for u in step.assigned_users] or None, "notifiers": notifiers or None}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class MigrationApprovalOperator(ApprovalOperator):
    """Wait for a person to approve (or take ``params.approved_by``), and record the decision.

    :param pair: the pair (its state rows; ``mapping`` defaults to its pair file).
    :param what: ``mapping``, ``sample_diff``, ``full_run`` or ``rollback``.
    :param report: (templated) the URI of the report to check, shown in the body.
    :param checks: (templated) what to check, one short line each (two to four).
    :param modes: only ask in runs whose ``mode`` Param is one of these (else the step returns at once: e.g. the
        sample diff's approval in a sample run only).
    :param mapping: the mapping file a ``mapping`` approval confirms (a pair name or a path; default ``pair``).
    :param state_conn_id: the state DB connection.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "report", "checks")

    def __init__(self, *, pair: str, what: str, report: str | None = None, checks: Sequence[str] = (),
                 modes: Collection[str] | None = None, mapping: str | None = None,
                 state_conn_id: str = MigrationStateHook.default_conn_name, **kwargs: Any) -> None:
        if what not in WHATS:
            raise ValueError(f"what must be one of {WHATS}, not {what!r}")
        kwargs.setdefault("fail_on_reject", True)
        super().__init__(**kwargs)
        self.pair, self.what, self.report, self.checks = pair, what, report, list(checks)
        self.modes = tuple(modes) if modes else None
        self.mapping, self.state_conn_id = mapping or pair, state_conn_id

    # --- what the person sees ----------------------------------------------------------------------------

    def compose_body(self, report: str | None, extra: Sequence[str] = ()) -> str:
        """The body: the intro (``body``), the report to check (URI and on-call view link), what to check."""
        from crm_migration.ui import report_href

        parts = [self.body.strip()] if self.body else []
        if report:
            href = report_href(report)
            parts.append(f"**Report to check:** `{report}`" + (f" ([open in the on-call view]({href}))" if href else ""))
        else:
            parts.append("**Report to check:** none was written (see the task logs of this run).")
        lines = [c.strip() for c in [*self.checks, *extra] if c and c.strip()]
        if lines:
            parts.append("**What to check:**\n" + "\n".join(f"- {c}" for c in lines))
        return "\n\n".join(parts)

    def execute(self, context: Any) -> Any:
        params = context["params"]
        if self.modes and params.get("mode") not in self.modes:
            self.log.info("no %s approval in a %s run: nothing to decide here", self.what.replace("_", " "),
                          params.get("mode"))
            return None
        extra = []
        if self.what == "mapping":
            from crm_migration.mapping.spec import read_pair_file

            mf = read_pair_file(self.mapping)
            extra.append(f"The mapping file `{mf.origin}` (sha256 `{mf.sha256[:12]}`) is what you confirm; edit it "
                         "first if it needs it: the file as it is when you approve is recorded, with a snapshot.")
        self.body = self.compose_body(self.report, extra)
        self.log.info("%s: %s", self.subject, self.body)
        approved_by = (params.get("approved_by") or "").strip()
        if approved_by:
            self._record(context, approved_by, how="approved_by", decision="approved")
            self.log.info("%s approved by %s (approved_by Param): not waiting for a person", self.what, approved_by)
            return {"chosen_options": [self.APPROVE], "params_input": {},
                    "responded_at": datetime.now(UTC).isoformat(), "responded_by_user": {"name": approved_by}}
        self.log.info("waiting for a person to approve the %s (Airflow UI: Required actions)%s",
                      self.what.replace("_", " "), f"; report: {self.report}" if self.report else "")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.providers.standard.exceptions import HITLRejectException
        from airflow.sdk.exceptions import AirflowFailException

        chosen = (event.get("chosen_options") or [None])[0]
        who = "unknown"
        if "error" not in event and chosen in (self.APPROVE, self.REJECT):
            user = event.get("responded_by_user") or {}
            who = str(user.get("name") or user.get("id") or "unknown")
            self._record(context, who, how="person", who_id=str(user["id"]) if user.get("id") else None,
                         decision="approved" if chosen == self.APPROVE else "rejected")
        try:
            return super().execute_complete(context=context, event=event)
        except HITLRejectException:
            # a person's "no" is final for this run: not retried (a retry would ask again, as if unanswered)
            raise AirflowFailException(
                f"{self.task_id}: the {self.what.replace('_', ' ')} was rejected by {who}; fix what the report "
                "shows, then trigger the run again") from None

    # --- the state DB --------------------------------------------------------------------------------------

    def _record(self, context: Any, who: str, *, how: str, decision: str, who_id: str | None = None) -> None:
        from crm_migration.engine.approvals import confirm_mapping
        from crm_migration.mapping.spec import read_pair_file

        run_id = context["run_id"]
        state = MigrationStateHook(postgres_conn_id=self.state_conn_id)
        try:
            state.migrate()
            run = state.get_run(run_id) or {}
            sha = run.get("mapping_sha256")
            if self.what == "mapping":
                mf = read_pair_file(self.mapping)
                sha = mf.sha256
                if decision == "approved":
                    confirm_mapping(state, pair=self.pair, mapping=mf, who=who, who_id=who_id, how=how,
                                    run_id=run_id, report=self.report or None, log=self.log)
            state.record_approval(run_id=run_id, pair=self.pair, what=self.what, decision=decision, decided_by=who,
                                  decided_by_id=who_id, how=how, task_id=self.task_id, report=self.report or None,
                                  mapping_sha256=sha)
            self.log.info("%s %s by %s (%s)", self.what.replace("_", " "), decision, who,
                          "approved_by Param" if how == "approved_by" else "in the Airflow UI")
            if (run.get("stats") or {}).get("audit_report"):     # the run's audit report lists its approvals
                from crm_migration.reports.audit import write_audit_report

                write_audit_report(state, pair=self.pair, run_id=run_id)
        finally:
            state.close()
