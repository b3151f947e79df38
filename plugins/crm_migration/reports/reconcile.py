"""The reconciliation report at the end of a full run: counts and checksums per object, the records
that differ, and short summary lines for the DAG log and the demo."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.engine.verify import ReconRow, dead_letter_verdict
from crm_migration.reports.writer import Report
from crm_migration.reports.writer import cell as _cell

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def summary_lines(rows: Iterable[ReconRow]) -> list[str]:
    """One short line per object, e.g. ``Contact: source 146, Odoo 141, dead letters 5, checksum ok``.

    A line says more only when something is off: the crosswalk count when it differs from Odoo's,
    the records that differ (the first few named), staged records neither landed nor dead-lettered.
    """
    out = []
    for r in rows:
        parts = [f"source {r['staged']:,}", f"Odoo {r['odoo']:,}", f"dead letters {r['dead_letters']:,}"]
        if r["crosswalk"] != r["odoo"]:
            parts.append(f"crosswalk {r['crosswalk']:,}")
        if r["checksum_crosswalk"] == r["checksum_odoo"]:
            parts.append("checksum ok")
        else:
            named = list(dict.fromkeys(
                f"{e['source_id']}" + (f" {e['field']}" if e["field"] else " missing") for e in r["examples"]))
            parts.append(f"checksum MISMATCH ({r['differing']:,} record{'s' * (r['differing'] != 1)} differ: "
                         + ", ".join(named[:3]) + ("…" if r["differing"] > 3 else "") + ")")
        if r["unaccounted"]:
            parts.append(f"{r['unaccounted']:,} staged records neither landed nor dead-lettered")
        if r.get("moved"):
            parts.append(f"{r['moved']:,} since moved to another model by a later run")
        out.append(f"{r['object']}: " + ", ".join(parts))
    return out


def write_reconciliation_report(rows: Sequence[ReconRow], *, pair: str, run_id: str,
                                root: str | ObjectStoragePath | None = None,
                                flags: Sequence[Mapping[str, Any]] = ()) -> ObjectStoragePath:
    """Write the reconciliation report of ``rows`` (from :func:`~crm_migration.engine.verify.reconcile`) and
    the run's flagged values (``MigrationStateHook.flags``); return the HTML page's path."""
    rows = list(rows)
    bad = [r for r in rows if r["status"] != "ok"]
    # dead letters are not "ok": an object that reconciles but has open dead letters needs action
    waiting = [r for r in rows if r["status"] == "ok" and r["dead_letters"]]
    report = Report(title=f"Reconciliation of {run_id}", pair=pair, run_id=run_id, kind="reconciliation")
    if bad:
        report.headline, report.tone = (f"{len(bad)} of {len(rows)} objects do not reconcile: "
                                        f"{', '.join(r['object'] for r in bad)}."
                                        + (f" {len(waiting)} more need action: open dead letters in "
                                           f"{', '.join(r['object'] for r in waiting)}." if waiting else ""), "bad")
        report.actions.extend(f"{r['object']}: {'; '.join(r['problems']) or r['status']}" for r in bad)
    elif waiting:
        report.headline, report.tone = (f"{len(waiting)} of {len(rows)} objects need action: open dead letters in "
                                        f"{', '.join(r['object'] for r in waiting)}; otherwise Odoo holds what the "
                                        "tool recorded writing.", "warn")
    else:
        report.headline = (f"All {len(rows)} objects reconcile: Odoo holds what the tool recorded writing, and "
                           "every staged record landed; no open dead letter.")
    staged = sum(r["staged"] for r in rows)
    landed = sum(r["landed"] for r in rows)
    dead = sum(r["dead_letters"] for r in rows)
    if dead:
        report.actions.append(f"{dead:,} open dead letter(s) need a person: see 'Dead letters by reason'.")
        over, action = dead_letter_verdict(rows)
        report.actions.extend(over + action)           # per object: count, share and reasons grouped and counted
    report.summary.append(f"{staged:,} source records staged in the run, {landed:,} landed, "
                          f"{dead:,} open dead letters; {sum(r['compared'] for r in rows):,} crosswalk "
                          f"records compared with Odoo field by field "
                          f"({sum(r['seconds'] for r in rows):.1f} s).")
    report.summary.extend(summary_lines(rows))
    report.add("Per object", [{
        "object": r["object"], "model": r["model"],
        "status": f"needs action ({r['dead_letters']:,} open dead letters)" if r in waiting else r["status"],
        "source (staged)": r["staged"], "landed": r["landed"], "crosswalk": r["crosswalk"], "Odoo": r["odoo"],
        "dead letters": r["dead_letters"], "unaccounted": r["unaccounted"],
        "moved since": r.get("moved", 0), "differing records": r["differing"],
        "gone from Odoo": r["missing_in_odoo"], "checksum crosswalk": r["checksum_crosswalk"][:16],
        "checksum Odoo": r["checksum_odoo"][:16], "problems": "; ".join(r["problems"]),
    } for r in rows], note="source = records staged in the run; crosswalk = records the tool bound (all runs); "
                           "Odoo = records carrying the object's x_migration_key (archived included). The "
                           "checksums are sha256 over (source id, written values) in source-id order, one from "
                           "the crosswalk, one from an Odoo read-back of the same fields.")
    report.add("Dead letters by reason", [
        {"object": r["object"], "reason (ids cut)": text, "dead letters": n,
         "counts toward the limit": "yes" if counted else "no: a gap in the source",
         "share of the object (counted)": f"{r['dead_letter_share']:.1%} (limit {r['dead_letter_limit']:.1%})"}
        for r in rows for text, n, counted in r.get("dead_letter_reasons", [])],
        note="Every open dead letter needs a person's action. Those a mapping or Odoo caused count toward "
             "settings.max_dead_letter_share of the object's records (crosswalk + dead letters); above it the "
             "verify step fails. A gap in the source (a file it lost, a record hanging on a record it deleted "
             "or never had) is listed, not counted.")
    report.add("Records that differ (examples)", [
        {"object": r["object"], "source id": e["source_id"], "odoo id": e["odoo_id"], "field": e["field"],
         "the tool wrote": _cell(e["crosswalk"]), "Odoo now": _cell(e["odoo"])}
        for r in rows for e in r["examples"]],
        note="Up to five records per object. A record edited in Odoo after the load shows here; the next load "
             "reports it as a conflict (or overwrites it, with conflict_policy source_wins).")
    report.add_flags(flags)
    return report.write(root)
