"""The plan report: what a migration of the pair would do, and what a person must fix first.

``write_plan_report(plan, pair=..., run_id=...)`` writes, in the run's report folder, ``plan.html`` (a
summary a person can act on, then the tables), one CSV per table, ``automation_reference.json`` (the
rebuild reference of the org's automations) and ``plan.json`` (the whole plan, plain data). The plan
holds no secret (no connection password, token or key ever enters it), so neither does the report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.engine.plan import Plan, automation_reference
from crm_migration.reports.writer import Report

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = ["AUTOMATION_FILE", "IN_FORCE_FILE", "PLAN_FILE", "PROPOSAL_DIFF", "PROPOSAL_FILE", "PROPOSAL_PAGE",
           "summary_lines", "write_plan_report", "write_proposal"]

AUTOMATION_FILE = "automation_reference.json"
PLAN_FILE = "plan.json"
#: the proposed mapping, the mapping in force written the same way, their unified diff, the readable page
PROPOSAL_FILE = "proposal.yaml"
IN_FORCE_FILE = "mapping_in_force.yaml"
PROPOSAL_DIFF = "proposal.diff"
PROPOSAL_PAGE = "proposal.html"
_SEVERITY = {"blocking": "bad", "warning": "warn", "info": "note"}


def _names(rows: Sequence[Mapping[str, Any]], key: str, limit: int = 8) -> str:
    names = [str(r.get(key)) for r in rows]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def summary_lines(plan: Plan) -> list[str]:
    """The summary, one plain-text sentence per line (escaped when written as HTML)."""
    src, place = plan.source_label, plan.source_place
    lines = [f"{src} namespace {plan.namespace or '(none)'}: {plan.namespace_how}."]
    blocking = [p for p in plan.problems if p["severity"] == "blocking"]
    if blocking:
        lines.append(f"{len(blocking)} blocking problem(s) to fix before migrating: "
                     + "; ".join(p["message"] for p in blocking[:5]) + (" …" if len(blocking) > 5 else "") + ".")
    else:
        lines.append("No blocking problem: the migration can run as mapped.")
    counted = [f"{o['live']} {o['object']}" for o in plan.objects if o.get("live") is not None]
    if counted:
        lines.append(f"{src} records: " + ", ".join(counted) + ".")
    # owners
    fallback = [o for o in plan.owners if not o["matched"]]
    if plan.fallback_user_id is None:
        lines.append(f"The fallback user {plan.fallback_user!r} ({plan.fallback_user_from}) does not exist in Odoo: "
                     f"{len(fallback)} owner(s) have no user to fall back to. Blocking.")
    elif fallback:
        going = ", ".join(f"{r['records going to the fallback user']} {r['object']}"
                          for r in plan.fallback_records if r["records going to the fallback user"])
        lines.append(f"{len(fallback)} of {len(plan.owners)} owners fall back to {plan.fallback_user} "
                     f"({plan.fallback_user_from}): {_names(fallback, 'name')}."
                     + (f" Records going to {plan.fallback_user}: {going}." if going else ""))
    else:
        lines.append(f"All {len(plan.owners)} {src} owners match an Odoo user by email.")
    archived = [o for o in plan.owners if o["matched"] and o.get("odoo user active") is False]
    if archived:
        lines.append(f"{len(archived)} owner(s) match an archived Odoo user and keep it: {_names(archived, 'name')}.")
    # cycles
    cycles = [c for c in plan.cycles if c["kind"] != "self-parent"]
    selfp = [c for c in plan.cycles if c["kind"] == "self-parent"]
    for c in cycles:
        lines.append(f"1 cycle will be cut: {c['cycle']} (the link from {c['record name'] or c['record cut']} "
                     f"to {c['parent name'] or c['parent removed']} is removed).")
    if selfp:
        lines.append(f"{len(selfp)} self-parent(s) lose their parent: {_names(selfp, 'record name')}.")
    if plan.dangling_parents:
        lines.append(f"{len(plan.dangling_parents)} record(s) point to a parent that is not migrated; they load "
                     "without a parent.")
    # unknown fields
    if plan.unknown_fields:
        listed = ", ".join(f"{u['object']}.{u['field']}" for u in plan.unknown_fields[:10])
        blocking_fields = any(u.get("severity", "blocking") == "blocking" for u in plan.unknown_fields)
        lines.append(f"{len(plan.unknown_fields)} field(s) the mapping reads are unknown to the {place}: {listed}. "
                     + (f"The migration will fail on them: fix the mapping or the {place}." if blocking_fields else
                        "They map to nothing: check the mapping."))
    else:
        lines.append(f"Every field the mapping reads exists in the {place}.")
    # schema
    create = [f for f in plan.fields_to_create if f["action"] == "create"]
    by_why = Counter("x_migration_key" if f["field"] == "x_migration_key" else
                     "pair x_fields" if f["why"] == "pair x_fields" else "custom" for f in create)
    teams = sum(t["action"] == "create" for t in plan.teams)
    stages = sum(s["action"] == "create" for s in plan.stages)
    reasons = sum(str(r["action"]).startswith("create") for r in plan.lost_reasons)
    lines.append(f"Odoo will get {len(create)} new field(s) ({by_why['x_migration_key']} x_migration_key, "
                 f"{by_why['pair x_fields']} from the pair, {by_why['custom']} from {src} custom fields), "
                 f"{teams} sales team(s), {stages} stage(s) and {reasons} lost reason(s).")
    for team in plan.teams:
        mine = [st for st in plan.stages if str(st["pipeline id"]) == str(team["pipeline id"])]
        won = [str(st["label"]) for st in mine if st.get("won")]
        lines.append(f"Pipeline {team['name']} ({team['action']}): {len(mine)} stage(s): "
                     + (", ".join(str(st["label"]) for st in mine) or "none")
                     + (f"; won: {', '.join(won)}" if won else "; no won stage") + ".")
    conflicts = [f for f in plan.fields_to_create if str(f["action"]).startswith("CONFLICT")]
    if conflicts:
        lines.append(f"{len(conflicts)} field(s) exist in Odoo with another type: "
                     + ", ".join(f"{f['odoo model']}.{f['field']}" for f in conflicts) + ".")
    keyed = [o for o in plan.objects if o.get("already keyed in Odoo")]
    if keyed:
        lines.append("Already in Odoo from an earlier run: " + ", ".join(
            f"{o['already keyed in Odoo']} {o['object']}" for o in keyed) + " (a migration updates them).")
    # bad data
    by_check = Counter()
    for b in plan.bad_data:
        by_check[b["check"]] += int(b["records in sample"])
    if by_check:
        lines.append("Bad data in the sample (up to " f"{plan.sample_limit} records per object): "
                     + ", ".join(f"{n} × {check}" for check, n in sorted(by_check.items())) + ".")
    else:
        lines.append(f"No bad data found in the sample (up to {plan.sample_limit} records per object).")
    by_type = Counter(a["type"] for a in plan.automations)
    lines.append(f"{len(plan.automations)} automation(s) exported to {AUTOMATION_FILE} for rebuilding in Odoo, "
                 "none migrated: " + (", ".join(f"{n} {t}" for t, n in sorted(by_type.items())) or "none found") + ".")
    if plan.proposal:
        sm = plan.proposal["summary"]
        changes = plan.proposal.get("changes") or []
        lines.append(f"Proposed mapping ({PROPOSAL_FILE}, diff in {PROPOSAL_PAGE}): {sm['source fields']} source field(s) "
                     f"of the record objects: {sm['existing']} to an existing Odoo field, {sm['custom rule']} to their "
                     f"x_ field by the custom field rules, {sm['new x_']} to a new x_ field, {sm['not migrated']} not "
                     f"migrated (each with its reason); {len(changes)} field(s) differ from the mapping in force; "
                     f"{sm['values outside options']} sampled value(s) outside their declared options"
                     + ("." if sm["valid"] else f". It does not validate: {plan.proposal.get('error')}."))
    per_path = plan.requests_per_path()
    busiest = ", ".join(f"{p} {n}" for p, n in sorted(per_path.items(), key=lambda kv: -kv[1])[:5])
    lines.append(f"This plan cost {plan.source_calls} {src} API request(s) ({len(per_path)} path(s); most: "
                 f"{busiest or 'none'}) and {plan.odoo_call_count} Odoo call(s) (reads only), {plan.seconds:.1f} s.")
    return lines


def write_plan_report(plan: Plan, *, pair: str, run_id: str,
                      root: str | ObjectStoragePath | None = None) -> ObjectStoragePath:
    """Write the plan report (HTML, CSVs, ``automation_reference.json``, ``plan.json``); return the HTML
    page's path."""
    report = Report(title=f"Migration plan: {pair}", pair=pair, run_id=run_id, kind="plan")
    lines = summary_lines(plan)
    blocking = [p for p in plan.problems if p["severity"] == "blocking"]
    report.headline, report.tone = lines[1], "bad" if blocking else "ok"
    report.actions.extend(f"{p['message']}" for p in blocking)
    report.summary.extend(lines[:1] + lines[2:])
    report.files.extend([(AUTOMATION_FILE, AUTOMATION_FILE), (PLAN_FILE, PLAN_FILE)])
    if plan.proposal:
        report.files.extend([("proposed mapping", PROPOSAL_FILE), ("its diff (page)", PROPOSAL_PAGE),
                             ("its diff (unified)", PROPOSAL_DIFF), ("mapping in force", IN_FORCE_FILE)])
    report.add("Problems to act on", plan.problems, note="blocking: fix before migrating; warning: records will "
               "be dead-lettered or reassigned; info: nothing to do, but know it.")
    report.add("Objects", plan.objects, note="live and deleted counts with the stream's filters (see each row's "
               "count note for how the source counted them); 'already keyed' = Odoo records whose x_migration_key "
               "names this object.")
    report.add(f"Fields the mapping reads that the {plan.source_place} does not have", plan.unknown_fields,
               note="blocking: the migration fails on the field until the mapping or the source is fixed; "
                    "warning: the field maps to nothing.")
    report.add(f"{plan.source_label} custom fields", plan.custom_fields,
               note="the source's custom field definitions (type, options) → the x_ field each becomes.")
    report.add("Owners", plan.owners, note=f"{plan.source_label} users (source user = their id) → Odoo users by "
               f"email (case-insensitive; an archived Odoo user is kept); unmatched → "
               f"{plan.fallback_user} ({plan.fallback_user_from}).")
    report.add("Records going to the fallback user", plan.fallback_records)
    report.add("Records per owner", plan.owner_counts, note=plan.owner_counts_note)
    report.add("Fields to create in Odoo", plan.fields_to_create)
    report.add("Sales teams (one per pipeline)", plan.teams)
    report.add("Stages per team", plan.stages)
    report.add("Lost reasons", plan.lost_reasons)
    if plan.proposal:
        report.add("Proposed mapping: fields that differ from the mapping in force", plan.proposal.get("changes") or [],
                   note=f"the whole proposal, every source field with its target, confidence and reasons: {PROPOSAL_PAGE}")
    report.add("Company hierarchy: cycles and self-parents", plan.cycles,
               note="Deterministic: a self-parent loses its parent; in a cycle the record with the smallest id "
                    "loses its link, the rest hangs below it.")
    report.add("Parents not migrated", plan.dangling_parents)
    report.add("Bad data in the sample", plan.bad_data)
    report.add("Value profile of the sample", plan.profile, limit=300)
    report.add("Automations (rebuild reference, not migrated)", [
        {k: v for k, v in a.items() if k not in ("source", "formula")} for a in plan.automations])
    report.add(f"{plan.source_label} requests made by the plan (per path)",
               [{"path": p, "requests": n} for p, n in plan.requests_per_path().items()])
    report.add(f"{plan.source_label} requests made by the plan", plan.source_requests, limit=300)
    report.add("Odoo calls made by the plan", [{"call": k, "count": v} for k, v in plan.odoo_calls.items()])
    if plan.notes:
        report.summary.extend(plan.notes)
    path = report.write(root)
    folder = path.parent
    (folder / AUTOMATION_FILE).write_text(json.dumps(automation_reference(plan), indent=2, ensure_ascii=False,
                                                     default=str), encoding="utf-8")
    (folder / PLAN_FILE).write_text(json.dumps(plan.to_dict(), indent=1, ensure_ascii=False, default=str),
                                    encoding="utf-8")
    if plan.proposal:
        write_proposal(plan, pair=pair, run_id=run_id, root=root)
    return path


def _rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"object": r["object"], "source field": r["source field"], "source type": r["source type"],
             "custom": r["custom"], "target": r["target"] or "", "kind": r["kind"], "transform": r["transform"],
             "confidence": r["confidence"], "empty %": r["empty %"],
             "outside options": ", ".join(f"{v} x{n}" for v, n in (r.get("outside options") or {}).items()),
             "reasons": "; ".join(r["reasons"])} for r in rows]


def write_proposal(plan: Plan, *, pair: str, run_id: str, root: str | ObjectStoragePath | None = None
                   ) -> ObjectStoragePath:
    """Write the proposed mapping next to the mapping in force, in the plan's folder: ``proposal.yaml``,
    ``mapping_in_force.yaml`` (the file in force written the same way, so their diff shows fields, not
    formatting), ``proposal.diff`` (unified) and ``proposal.html`` (the fields that differ, then every
    source field with its target, transform, confidence and reasons; values outside their options)."""
    prop = plan.proposal
    sm = prop["summary"]
    report = Report(title=f"Proposed mapping: {pair}", pair=pair, run_id=run_id, kind="proposal")
    changes = prop.get("changes") or []
    report.headline = (f"{len(changes)} field(s) differ from the mapping in force; review {PROPOSAL_FILE}, edit it "
                       "if needed, and confirm it before migrating." if prop.get("error") is None else
                       f"The proposal does not validate: {prop['error']}")
    report.tone = "warn" if changes or prop.get("error") else "ok"
    report.summary.append(f"{sm['source fields']} source field(s) of the record objects: {sm['existing']} to an "
                          f"existing Odoo field, {sm['custom rule']} to their x_ field by the pair's custom field "
                          f"rules, {sm['new x_']} to a new x_ field, {sm['not migrated']} not migrated, each with its "
                          "reason. Confidence is in [0, 1]: name similarity, type fit and the sampled values.")
    report.files.extend([("proposed mapping", PROPOSAL_FILE), ("mapping in force", IN_FORCE_FILE),
                         ("unified diff", PROPOSAL_DIFF), ("plan", "plan.html")])
    report.add("Fields that differ from the mapping in force", changes)
    outside = [r for r in prop["rows"] if r.get("outside options")]
    report.add("Values outside their declared options (sample)", [
        {"object": r["object"], "source field": r["source field"], "value": v, "records in sample": n}
        for r in outside for v, n in r["outside options"].items()])
    report.add("Every source field and its target", _rows(prop["rows"]))
    report.add("Unified diff", [{"line": line} for line in prop["diff"].splitlines()], limit=2000)
    path = report.write(root)
    folder = path.parent
    (folder / PROPOSAL_FILE).write_text(prop["yaml"], encoding="utf-8")
    (folder / IN_FORCE_FILE).write_text(prop["in_force_yaml"], encoding="utf-8")
    (folder / PROPOSAL_DIFF).write_text(prop["diff"], encoding="utf-8")
    return path
