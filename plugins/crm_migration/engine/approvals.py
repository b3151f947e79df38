"""What a ``_migrate`` run needs before it moves a record: plain Python over the state DB (no Airflow).

- The mapping in force (the pair file's bytes, by sha256) has a recorded confirmation: a person's at
  ``<pair>_plan``'s ``confirm_mapping`` step, or a scripted run's ``approved_by`` (recorded the same way, as such).
- A full run has an approved sample diff of that mapping: the latest sample run with the same mapping hash whose
  ``approve_diff`` step was approved; or ``approved_by`` (recorded as a full run without an approved sample).
- The run's mapping is compared with the confirmed snapshot of the previous run's: the fields that changed go to
  the run's stats and its audit report.

:func:`check_migrate_run` raises :class:`~crm_migration.errors.ApprovalRequired` naming what to do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crm_migration.errors import ApprovalRequired
from crm_migration.mapping.changes import field_changes, summary

if TYPE_CHECKING:
    from crm_migration.hooks.state import MigrationStateHook
    from crm_migration.mapping.spec import MappingFile

log_ = logging.getLogger(__name__)

#: the plan DAG's step that confirms the mapping in force
CONFIRM_STEP = "confirm_mapping"
#: the migrate DAG's step that approves a sample run's field-level diff
DIFF_STEP = "approve_diff"


def confirm_mapping(state: MigrationStateHook, *, pair: str, mapping: MappingFile, who: str, how: str,
                    who_id: str | None = None, run_id: str | None = None, report: str | None = None,
                    log: Any = None) -> dict[str, Any]:
    """Record ``who``'s confirmation of ``mapping`` (with a snapshot of it); return the row."""
    row = state.confirm_mapping(pair=pair, mapping_sha256=mapping.sha256, mapping_file=mapping.origin,
                                mapping_text=mapping.text, confirmed_by=who, confirmed_by_id=who_id, how=how,
                                run_id=run_id, report=report)
    (log or log_).info("mapping %s (sha256 %s) confirmed by %s (%s)", mapping.origin, mapping.sha256, who,
                       "approved_by Param" if how == "approved_by" else "in the Airflow UI")
    return row


def check_migrate_run(state: MigrationStateHook, *, pair: str, mapping: MappingFile, run_id: str, mode: str,
                      approved_by: str | None, log: Any = None) -> dict[str, Any]:
    """Check (and with ``approved_by``, record) what a migrate run needs before it starts; return what the run's
    stats keep: ``mapping_sha256``, ``mapping_confirmed_by``, ``sample_run``/``sample_report`` (full runs),
    ``mapping_changes`` (against the previous run's mapping)."""
    log = log or log_
    sha = mapping.sha256
    out: dict[str, Any] = {"mapping_file": mapping.origin, "mapping_sha256": sha}
    conf = state.mapping_confirmation(pair, sha)
    if conf is None:
        if not approved_by:
            raise ApprovalRequired(
                f"the mapping in force ({mapping.origin}, sha256 {sha[:12]}) has no recorded confirmation: trigger "
                f"{pair}_plan and approve its {CONFIRM_STEP} step (check the plan report; edit the YAML first if it "
                f"needs it), then trigger this run again; or give approved_by to confirm it for a scripted run")
        conf = confirm_mapping(state, pair=pair, mapping=mapping, who=approved_by, how="approved_by", run_id=run_id,
                               log=log)
        state.record_approval(run_id=run_id, pair=pair, what="mapping", decision="approved", decided_by=approved_by,
                              how="approved_by", task_id="start_run", mapping_sha256=sha)
    else:
        log.info("mapping %s (sha256 %s) confirmed by %s (%s) at %s", mapping.origin, sha[:12], conf["confirmed_by"],
                 "approved_by Param" if conf["how"] == "approved_by" else "in the Airflow UI", conf["confirmed_at"])
    out["mapping_confirmed_by"] = f"{conf['confirmed_by']} ({conf['how']}, {conf['confirmed_at'].isoformat(timespec='minutes')})"
    if mode == "full":
        sample = state.approved_sample(pair, sha)
        if sample is None:
            if not approved_by:
                raise ApprovalRequired(
                    f"a full run needs an approved sample diff of the mapping in force ({mapping.origin}, sha256 "
                    f"{sha[:12]}), and no sample run with this mapping has one: trigger {pair}_migrate with "
                    f"mode=sample, check its field-level diff report and approve its {DIFF_STEP} step, then trigger "
                    "the full run again; or give approved_by to run it without an approved sample (recorded as such)")
            state.record_approval(run_id=run_id, pair=pair, what="sample_diff", decision="approved",
                                  decided_by=approved_by, how="approved_by", task_id="start_run", mapping_sha256=sha)
            log.warning("no approved sample diff of this mapping: the full run goes on by approved_by=%s (recorded)",
                        approved_by)
        else:
            out.update(sample_run=sample["run_id"], sample_report=sample["report"],
                       sample_approved_by=f"{sample['decided_by']} ({sample['how']})")
            log.info("sample diff of this mapping approved by %s (%s): run %s, report %s", sample["decided_by"],
                     sample["how"], sample["run_id"], sample["report"])
    prev = state.previous_run_mapping(pair, run_id)
    if prev is not None and prev["mapping_sha256"] != sha:
        if prev["mapping_text"] is None:
            out["mapping_changes"] = {"since_run": prev["run_id"], "rows": [],
                                      "note": "the previous run's mapping has no confirmed snapshot to compare with"}
        else:
            rows = field_changes(prev["mapping_text"], mapping.text)
            out["mapping_changes"] = {"since_run": prev["run_id"], "rows": rows}
            log.info("mapping changed since run %s: %s", prev["run_id"], summary(rows))
    return out
