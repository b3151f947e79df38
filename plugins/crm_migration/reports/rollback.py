"""The rollback report: what was removed, restored and created again per model; what was refused and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crm_migration.engine.rollback import summary
from crm_migration.reports.writer import Report, cell

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def edited_by(edit: Mapping[str, Any]) -> str:
    """Who changed a field since the run: a person, or a later run of the tool still in force."""
    if edit["by"] == "run":
        return f"the tool's later run {edit['run_id']} (not rolled back)"
    return "a person (edited in Odoo)"


def write_rollback_report(result: Mapping[str, Any], *, pair: str, rollback_run_id: str,
                          root: str | ObjectStoragePath | None = None) -> ObjectStoragePath:
    """Write the report of one rollback; return the HTML page's path."""
    report = Report(title=f"Rollback of {result['run_id']}", pair=pair, run_id=rollback_run_id, kind="rollback")
    report.headline = summary(result)
    report.tone = {"refused": "bad", "rolled_back": "ok", "nothing_to_do": "ok"}.get(str(result["status"]), "warn")
    if result["status"] == "refused":
        report.actions.append("Nothing was changed in Odoo. Roll back the later run named below first (newest "
                              "first), or trigger the rollback again with force to overwrite the edits listed.")
    report.summary.append(f"{result['odoo_calls']} Odoo calls, {result['seconds']:.1f} s.")
    recreated = result.get("recreated") or {}
    models = sorted(set(result["unlinked"]) | set(result["restored"]) | set(recreated) | set(result["already_gone"]))
    report.add("Per model", [{"model": m, "removed (created by the run)": result["unlinked"].get(m, 0),
                              "restored (changed by the run: prior values written back)": result["restored"].get(m, 0),
                              "created again (removed by the run)": recreated.get(m, 0),
                              "already gone": result["already_gone"].get(m, 0)} for m in models],
               note="Nothing was changed in Odoo: the rollback was refused." if result["status"] == "refused" else "")
    report.add("Records changed since the run" + (" (rolled back anyway: force)" if result.get("forced") else ""), [
        {"model": r["model"], "odoo id": r["odoo_id"], "source object": r["source_object"],
         "source id": r["source_id"], "field": f, "changed by": edited_by(e),
         "the tool last wrote": cell(e["tool_wrote"]), "Odoo now": cell(e["odoo_now"])}
        for r in result["refused"] for f, e in r["fields"].items()],
        note="A record is judged by the last value the tool itself wrote to each field, in any run (a later run, "
             "a rollback, the link step). A later run still in force must be rolled back first (newest first); "
             "a field a person edited in Odoo refuses the rollback unless it is triggered again with force, "
             "which overwrites those edits.")
    missed = result.get("not_restored") or []
    if missed:
        report.tone = "warn" if report.tone == "ok" else report.tone
        report.summary.append(f"{len(missed)} field(s) could not be put back as they were before the run (listed "
                              "below, per record and field).")
    report.add("Fields not put back", [
        {"model": m["model"], "odoo id": m["odoo_id"], "source object": m["source_object"],
         "source id": m["source_id"], "field": m["field"], "before the run": cell(m["wanted"]), "why": m["why"]}
        for m in missed],
        note="What the run changed is written back, then read back. A field Odoo computes by itself (a deal's "
             "automated probability) is written back from the value read before the run's write; a file gets the "
             "bytes the run kept before replacing it. Listed here: what Odoo did not keep, or could not be given.")
    back = result.get("watermarks_back") or []
    if back:
        report.summary.append(f"{len(back)} watermark(s) moved back to where they were before the run: the next "
                              "delta reads that span again.")
    report.add("Watermarks moved back", [
        {"object": b["source_object"], "from": cell(b["from"]), "back to": cell(b["to"]) or "none (a full run sets it)"}
        for b in back], note="A watermark the run moved goes back to its value before the run, so the next delta "
                             "reads again what the run had read (overlapping reads are harmless).")
    report.add("Records created again", [
        {"model": r["model"], "odoo id (new)": r["odoo_id"], "odoo id (before)": r["old_id"],
         "source object": r["source_object"], "source id": r["source_id"], "x_migration_key": r["key"],
         "why it was gone": r["why"]} for r in result.get("recreated_records") or ()],
        note="Records gone from Odoo because of the run, created again with their values and key as they were "
             "before it (without mail) and bound again in the crosswalk: an activity the run replaced by its "
             "message once done, or one Odoo 17 deleted when the run archived its record.")
    return report.write(root)
