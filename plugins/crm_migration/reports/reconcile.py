"""The reconciliation report at the end of a full run or a delta: counts and checksums per object, the records
that differ, the completeness of the cutover (ids alive in the source against keys in Odoo: missing, extra,
different), one line saying whether the cutover is complete, and short summary lines for the DAG log and the demo.
Also the conflicts report: each record edited in Odoo since the tool wrote it, both values per field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.engine.completeness import complete
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
        if r.get("deleted_on_archive"):
            parts.append(f"{r['deleted_on_archive']:,} deleted by Odoo when their record was archived (Odoo 17; "
                         "not missing)")
        out.append(f"{r['object']}: " + ", ".join(parts))
    return out


def _objects(rows: Sequence[ReconRow], key: Any) -> str:
    names = [r["object"] for r in rows if key(r)]
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def cutover_line(rows: Sequence[ReconRow]) -> str | None:
    """One line: is the cutover complete (every record alive in the source in Odoo as the source has it, nothing
    extra, nothing different, no open dead letter)? None when the ids were not compared (``completeness``)."""
    checked = [r for r in rows if r.get("completeness") and r["completeness"]["checked"]]
    if not checked:
        return None
    unchecked = [r["object"] for r in rows if not (r.get("completeness") and r["completeness"]["checked"])]
    tail = f" ({', '.join(unchecked)}: counts and checksums only)" if unchecked else ""

    def total(k: str) -> int:
        return sum(r["completeness"][k] for r in checked)                # type: ignore[index]

    missing, pending, changed = total("missing_count"), total("pending"), total("changed_count")
    extra = total("extra_count") - total("extra_kept")
    dup = total("duplicates")
    differing = sum(r["differing"] for r in rows)
    dead = sum(r["dead_letters"] for r in rows)
    alive = total("source_alive")
    if all(complete(r["completeness"], differing=r["differing"], dead_letters=r["dead_letters"])  # type: ignore[arg-type]
           for r in checked):
        kept = total("extra_kept")
        return (f"Cutover complete: all {alive:,} records alive in the source are in Odoo as the source has them, "
                f"none extra, none different, no open dead letter{tail}."
                + (f" ({kept:,} deleted in the source stay on models Odoo cannot archive.)" if kept else ""))
    parts = []
    if missing:
        parts.append(f"{missing:,} missing ({_objects(checked, lambda r: r['completeness']['missing_count'])})")
    if extra:
        parts.append(f"{extra:,} extra ({_objects(checked, lambda r: r['completeness']['extra_count'] - r['completeness']['extra_kept'])})")
    if differing:
        parts.append(f"{differing:,} different in Odoo from what the tool wrote ({_objects(rows, lambda r: r['differing'])})")
    if dead:
        parts.append(f"{dead:,} open dead letters ({_objects(rows, lambda r: r['dead_letters'])})")
    if dup:
        parts.append(f"{dup:,} keys on two records")
    if pending or changed:
        parts.append(f"{pending + changed:,} created or changed in the source since the last landed read, which the "
                     "next delta lands ("
                     + _objects(checked, lambda r: r['completeness']['pending'] + r['completeness']['changed_count'])
                     + ")")
    return f"Cutover NOT complete: {'; '.join(parts)}{tail}."


def write_reconciliation_report(rows: Sequence[ReconRow], *, pair: str, run_id: str,
                                root: str | ObjectStoragePath | None = None,
                                flags: Sequence[Mapping[str, Any]] = (),
                                dead_letters: Mapping[str, Mapping[str, int]] | None = None) -> ObjectStoragePath:
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
    away = sum(r.get("deleted_on_archive", 0) for r in rows)
    if away:
        report.summary.append(f"{away:,} migrated open activit{'ies were' if away != 1 else 'y was'} deleted by "
                              "Odoo when their record was archived (Odoo 17 deletes the activities of a record it "
                              "archives; 19 keeps them): counted apart, not missing, see 'Activities Odoo deleted "
                              "with their archived record'. A rollback of the run that archived the record creates "
                              "them again.")
    report.summary.extend(summary_lines(rows))
    if dead_letters:            # MigrationStateHook.dead_letter_tally: the pair's records with dead letters, all runs
        report.summary.append("Dead letters of the pair (records, all runs): "
                              f"{sum(t['open'] for t in dead_letters.values()):,} open, "
                              f"{sum(t['resolved'] for t in dead_letters.values()):,} resolved ("
                              f"{sum(t['replayed'] for t in dead_letters.values()):,} replayed); "
                              + ", ".join(f"{o} {t['open']:,} open / {t['resolved']:,} resolved"
                                          for o, t in dead_letters.items()) + ".")
    verdict = cutover_line(rows)
    if verdict:
        report.headline = f"{verdict} {report.headline}"
        if verdict.startswith("Cutover NOT"):
            report.tone = "bad" if bad else "warn"
    report.add("Per object", [{
        "object": r["object"], "model": r["model"],
        "status": f"needs action ({r['dead_letters']:,} open dead letters)" if r in waiting else r["status"],
        "source (staged)": r["staged"], "landed": r["landed"], "crosswalk": r["crosswalk"], "Odoo": r["odoo"],
        "dead letters": r["dead_letters"], "unaccounted": r["unaccounted"],
        "moved since": r.get("moved", 0), "differing records": r["differing"],
        "gone from Odoo": r["missing_in_odoo"],
        "deleted by Odoo with their archived record": r.get("deleted_on_archive", 0),
        "checksum crosswalk": r["checksum_crosswalk"][:16],
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
    report.add("Activities Odoo deleted with their archived record", [
        {"object": r["object"], "source id": a["source_id"], "x_migration_key": a["key"], "odoo id": a["odoo_id"],
         "record": f"{a['record_model']} {a['record_id']}", "record's key": a["record_key"],
         "archived": a["archived"]} for r in rows for a in (r.get("archived_away") or ())],
        note="Open activities the tool loaded, whose record is archived in Odoo now: Odoo 17 deletes the activities "
             "of a record when it is archived (19 keeps them). Not lost by the migration and not counted as "
             "missing; rolling back the run that archived the record creates them again.")
    report.add("Records that differ (examples)", [
        {"object": r["object"], "source id": e["source_id"], "odoo id": e["odoo_id"], "field": e["field"],
         "the tool wrote": _cell(e["crosswalk"]), "Odoo now": _cell(e["odoo"])}
        for r in rows for e in r["examples"]],
        note="Up to five records per object. A record edited in Odoo after the load shows here; the next load "
             "reports it as a conflict (or overwrites it, with conflict_policy source_wins).")
    checked = [r for r in rows if r.get("completeness")]
    if checked:
        report.add("Completeness: source ids against Odoo's keys", [{
            "object": r["object"], "model": r["model"],
            "complete": ("yes" if complete(c, differing=r["differing"], dead_letters=r["dead_letters"]) else "no")
            if c["checked"] else "not checked",
            "alive in the source": c["source_alive"], "keyed in Odoo (archived incl.)": c["odoo"],
            "active in Odoo": c["odoo_active"], "missing": c["missing_count"], "extra": c["extra_count"],
            "different (Odoo vs the tool's write)": r["differing"],
            "changed in the source since the last read": c["changed_count"],
            "not in Odoo: open dead letter": c["dead_lettered"], "not in Odoo: next delta": c["pending"],
            "keys on two records": c["duplicates"], "note": c["note"],
        } for r in checked if (c := r["completeness"])],
            note="alive in the source = the ids an id-only read of the object finds now (its where applied); missing "
                 "= alive in the source, no keyed record in Odoo; extra = active in Odoo, not alive in the source "
                 "(deleted there); different = Odoo's values differ from what the tool wrote (edited in Odoo); "
                 "changed in the source = its replication key is past the object's watermark (the next delta).")
        report.add("Missing, extra and different records", [
            *({"object": r["object"], "source id": sid, "is": "missing", "why": why}
              for r in checked for sid, why in r["completeness"]["missing"]),
            *({"object": r["object"], "source id": sid, "is": "extra", "why": why}
              for r in checked for sid, why in r["completeness"]["extra"]),
            *({"object": r["object"], "source id": sid, "is": "different",
               "why": "changed in the source since the last landed read (the next delta brings it)"}
              for r in checked for sid in r["completeness"]["changed_in_source"]),
            *({"object": r["object"], "source id": d["source_id"], "is": "different",
               "why": f"{d['field']}: the tool wrote {_cell(d['crosswalk'])!s:.80}, Odoo now {_cell(d['odoo'])!s:.80}"}
              for r in rows for d in (r.get("differences") or [])),
        ], note="Ids, up to 5,000 per object and kind (the counts above are exact). A missing record: run a delta "
                "(sync now) or replay its dead letter; an extra one: deleted in the source after the last read, "
                "the next delta archives it; a different one: see the conflicts report.")
    report.add_flags(flags)
    return report.write(root)


def write_conflicts_report(rows: Sequence[ReconRow], conflicts: Sequence[Mapping[str, Any]], *, pair: str,
                           run_id: str, policies: Mapping[str, str] | None = None,
                           root: str | ObjectStoragePath | None = None) -> ObjectStoragePath:
    """Records edited in Odoo since the tool wrote them, both values per field: those the run's loads met
    (``MigrationStateHook.conflicts``: the tool wrote, Odoo had, the source sent, what the policy did) and those
    the reconciliation finds (``ReconRow.differences``: the tool wrote, Odoo now). ``policies``: the
    ``on_conflict`` of each object (by crosswalk scope and by name)."""
    policies = dict(policies or {})
    report = Report(title=f"Conflicts of {run_id}", pair=pair, run_id=run_id, kind="conflicts")
    met = [c for c in conflicts]
    found = [(r, d) for r in rows for d in (r.get("differences") or [])]
    records = {(c["source_object"], c["source_id"]) for c in met} | {(r["scope"], d["source_id"]) for r, d in found}
    if not records:
        report.headline = "No conflict: no record was edited in Odoo since the tool wrote it."
    else:
        report.tone = "warn"
        report.headline = (f"{len(records):,} record(s) were edited in Odoo since the tool wrote them: "
                           f"{len(met):,} met by this run's loads, {len({(r['scope'], d['source_id']) for r, d in found}):,} "
                           "differ from the tool's last write now.")
        report.actions.append("Check each field below: keep Odoo's value (on_conflict: keep_odoo) or let the source "
                              "win (on_conflict: source_wins, per object in the pair file); the rollback refuses to "
                              "undo a field a person edited unless forced.")
    load_rows = []
    for c in met:
        changes = c.get("changes") or {}
        for field, v in sorted(changes.items()):
            both = v if isinstance(v, Mapping) and "odoo" in v else {"odoo": v}
            load_rows.append({"object": c["source_object"], "source id": c["source_id"], "odoo model": c["odoo_model"],
                              "odoo id": c["odoo_id"], "field": field, "the tool wrote": _cell(both.get("tool_wrote")),
                              "Odoo had": _cell(both.get("odoo")), "the source sent": _cell(both.get("source")),
                              "applied": c.get("message") or ""})
    report.add("Conflicts met by the load", load_rows,
               note="A record the source changed whose field was also edited in Odoo since the tool wrote it. "
                    "source_wins overwrote Odoo's value with the source's; keep_odoo left it.")
    report.add("Edited in Odoo since the tool wrote them", [
        {"object": r["object"], "source id": d["source_id"], "odoo model": r["model"], "odoo id": d["odoo_id"],
         "field": d["field"], "the tool wrote": _cell(d["crosswalk"]), "Odoo now": _cell(d["odoo"]),
         "policy (on_conflict)": policies.get(r["object"], "")} for r, d in found],
        note="The reconciliation's read-back: Odoo's value differs from the tool's last write. If the source "
             "changes the record, the next load applies the object's policy.")
    return report.write(root)
