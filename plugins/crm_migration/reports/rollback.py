"""The rollback report: what was removed, what was restored, what was refused and why."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crm_migration.engine.rollback import summary
from crm_migration.reports.writer import Report


def write_rollback_report(result: Mapping[str, Any], *, pair: str, rollback_run_id: str,
                          root: Path | None = None) -> Path:
    """Write the report of one rollback; return the HTML path."""
    report = Report(title=f"Rollback of {result['run_id']}", pair=pair, run_id=rollback_run_id, kind="rollback")
    report.summary.append(summary(result))
    report.summary.append(f"{result['odoo_calls']} Odoo calls, {result['seconds']:.1f} s.")
    models = sorted(set(result["unlinked"]) | set(result["restored"]) | set(result["already_gone"]))
    report.add("Per model", [{"model": m, "removed (created by the run)": result["unlinked"].get(m, 0),
                              "restored (changed by the run)": result["restored"].get(m, 0),
                              "already gone": result["already_gone"].get(m, 0)} for m in models])
    report.add("Records edited in Odoo after the run", [
        {"model": r["model"], "odoo id": r["odoo_id"], "source object": r["source_object"],
         "source id": r["source_id"], "field": f, "the run wrote": d["run wrote"], "Odoo now": d["odoo now"]}
        for r in result["refused"] for f, d in r["fields"].items()],
        note="A rollback is refused while any record it would touch was edited after the run; "
             "trigger it again with force to overwrite those edits.")
    return report.write(root)
