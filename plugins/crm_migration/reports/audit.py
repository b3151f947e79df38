"""The audit summary of a run: what the tool did per object (created, updated, flagged, dead letters...),
read from the state DB's audit log, staging and dead letters, and the dead letters with their reasons.

``write_audit_report(state, pair=..., run_id=...)`` writes ``audit.html`` (and its CSVs) in the run's
report folder; ``audit_lines`` gives the same counts as plain-text lines for the task's log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.reports.writer import Report

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from crm_migration.hooks.state import MigrationStateHook

#: (column of MigrationStateHook.run_counts, heading in the report)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("staged", "source records read"), ("created", "created"), ("updated", "updated"), ("adopted", "adopted"),
    ("skipped", "unchanged"), ("archived", "archived"), ("flags", "flagged"), ("conflicts", "conflicts"),
    ("dead_letters", "dead letters"), ("open_dead_letters", "dead letters open"), ("unlinked", "removed"),
    ("restored", "restored"), ("deleted_in_source", "deleted in the source"),
)
_DEAD_LETTER_ROWS = 2000


def landed(row: Mapping[str, Any]) -> int:
    """Records of a ``run_counts`` row that are in Odoo as the run wanted: created, updated, adopted (found by
    key after a crash) or unchanged."""
    return sum(int(row.get(c) or 0) for c in ("created", "updated", "adopted", "skipped"))


def totals(counts: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Sum ``run_counts`` rows column by column."""
    return {col: sum(int(r.get(col) or 0) for r in counts) for col, _ in COLUMNS}


def audit_lines(counts: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per object with its non-zero counts, e.g. ``Contact: 146 source records read, 141 created``."""
    return [f"{r['source_object']}: " + (", ".join(f"{int(r[c]):,} {label}" for c, label in COLUMNS if r.get(c))
                                         or "nothing") for r in counts]


def write_audit_report(state: MigrationStateHook, *, pair: str, run_id: str,
                       root: str | ObjectStoragePath | None = None) -> ObjectStoragePath:
    """Write the audit summary of ``run_id`` from the state DB; return the HTML page's path."""
    counts = state.run_counts([run_id])
    run = state.get_run(run_id) or {}
    dead = state.dead_letters(run_id=run_id, unresolved_only=False)
    total = totals(counts)
    report = Report(title=f"Audit summary of {run_id}", pair=pair, run_id=run_id, kind="audit")
    report.headline = (f"{total['created']:,} created, {total['updated']:,} updated, {total['flags']:,} flagged, "
                       f"{total['dead_letters']:,} dead letter(s) over {len(counts)} object(s).")
    if total["open_dead_letters"]:
        report.tone = "bad"
        report.actions.append(f"{total['open_dead_letters']:,} record(s) did not land (open dead letters): each "
                              "is listed below with its reason; fix the data or the mapping, then replay them "
                              "(delta Param replay_dead_letters).")
    if total["conflicts"]:
        report.tone = "bad" if report.tone == "bad" else "warn"
        report.actions.append(f"{total['conflicts']:,} record(s) were edited in Odoo since the tool wrote them "
                              "(conflicts; the object's on_conflict kept Odoo's value or let the source win): both "
                              "values per field are in the run's conflicts report.")
    if total["flags"]:
        report.tone = "bad" if report.tone == "bad" else "warn"
        report.actions.append(f"{total['flags']:,} value(s) landed repaired or as written and are flagged: see "
                              "the run's diff or reconciliation report.")
    if run:
        report.summary.append(
            f"{run.get('kind')} run of {run.get('dag_id')}" + (f", mode {run['mode']}" if run.get("mode") else "")
            + (f", status {run['status']}" if run.get("status") != "running" else "")
            + (f", approved by {run['approved_by']}" if run.get("approved_by") else "") + ".")
    report.summary.extend(audit_lines(counts))
    stats = run.get("stats") or {}
    if stats.get("mapping_sha256"):
        report.summary.append(f"Mapping {stats.get('mapping_file')} (sha256 {str(stats['mapping_sha256'])[:12]}), "
                              f"confirmed by {stats.get('mapping_confirmed_by')}.")
    changes = stats.get("mapping_changes")
    if changes:
        from crm_migration.mapping.changes import summary

        report.summary.append(f"Mapping changed since run {changes['since_run']}: "
                              f"{changes.get('note') or summary(changes['rows'])}.")
    report.add("Per object", [{"object": r["source_object"], "landed": landed(r),
                               **{label: int(r[c] or 0) for c, label in COLUMNS}} for r in counts],
               note="From the audit log of the run (every create, update, skip, archive, flag, conflict), its "
                    "staging (the source records it read) and its dead letters.")
    report.add("Approvals", [{"step": a.get("task_id") or "", "what": str(a["what"]).replace("_", " "),
                              "decision": a["decision"], "by": a["decided_by"],
                              "how": "approved_by Param" if a["how"] == "approved_by" else "in the Airflow UI",
                              "user id": a.get("decided_by_id") or "", "at": a["decided_at"],
                              "report checked": a.get("report") or ""} for a in state.approvals(run_id)],
               note="Every decision at the run's approval steps: a person's in Airflow's Required actions, or the "
                    "approved_by Param of a scripted run (recorded as such).")
    if changes and changes.get("rows"):
        report.add(f"Mapping changes since run {changes['since_run']}", changes["rows"],
                   note="This run's mapping against the confirmed snapshot of the previous run's. A field added or "
                        "changed is written only to the records whose mapped value differs from what was written.")
    report.add("Dead letters", [{"object": d["source_object"], "source id": d["source_id"],
                                 "odoo model": d.get("odoo_model") or "", "field": d.get("field") or "",
                                 "reason": d["reason"], "attempts": d.get("attempts"),
                                 "resolved": "yes" if d.get("resolved_at") else "no"} for d in dead[:_DEAD_LETTER_ROWS]],
               note="Records that could not land, with the reason Odoo or the mapping gave; the rest of their "
                    "batch landed. A later run that lands one resolves it.")
    return report.write(root)
