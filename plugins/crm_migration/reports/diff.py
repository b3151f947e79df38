"""The field-level diff report of a run: what a person reads before approving the full migration.

One HTML page (``diff.html``) and one CSV per table, in the run's report folder: a summary that says
in a sentence whether everything landed as mapped, the differences first, the records that did not
land with their reason, counts per object, the fields that match only after normalising what Odoo
changes on purpose (sanitised html, trimmed text), and every compared field (all of them in the CSV).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_migration.engine.verify import NOTE_FILE, NOTE_HTML, NOTE_TRIM, DiffRow
from crm_migration.reports.writer import Report
from crm_migration.reports.writer import cell as _cell

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_PROBLEM_KINDS = ("missing_in_odoo", "mapping_error", "not_loaded")
_NORMALISED = (NOTE_HTML, NOTE_TRIM, NOTE_FILE)
_INFO = ("mapping warning", "hierarchy")


def _has(row: Mapping[str, Any], notes: tuple[str, ...]) -> bool:
    return any(n in row["note"] for n in notes)




def _short(value: Any, n: int = 60) -> str:
    text = str(_cell(value))
    return text if len(text) <= n else text[:n - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _row(r: Mapping[str, Any], *cols: str) -> dict[str, Any]:
    return {c.replace("_", " "): _cell(r.get(c)) for c in cols}


def diff_summary(rows: Iterable[DiffRow]) -> list[str]:
    """Plain-text summary lines (the DAG logs them): counts, the first differences, dead letters."""
    rows = list(rows)
    fields = [r for r in rows if r["kind"] == "field"]
    differ = [r for r in fields if not r["match"]]
    problems = [r for r in rows if r["kind"] in _PROBLEM_KINDS]
    dead = [r for r in rows if r["kind"] == "dead_letter"]
    records = len({(r["object"], r["source_id"]) for r in fields})
    objects = len({r["object"] for r in rows})
    head = f"{_plural(len(fields), 'field')} compared on {_plural(records, 'record')} of {_plural(objects, 'object')}"
    if differ:
        shown = "; ".join(f"{r['object']} {r['source_id']}: {r['field']} (sent {_short(r['sent'])!r}, "
                          f"Odoo {_short(r['odoo'])!r})" for r in differ[:3])
        more = f"; and {len(differ) - 3:,} more" if len(differ) > 3 else ""
        lines = [f"{head}; {len(differ):,} differ: {shown}{more}."]
    else:
        lines = [f"{head}; all match."]
    parts = [f"{n} ({c:,})" for n in (NOTE_HTML, NOTE_TRIM) if (c := sum(n in r["note"] for r in fields))]
    if files := sum(NOTE_FILE in r["note"] for r in fields):
        parts.append(f"{_plural(files, 'file')} compared by checksum")
    if parts:
        lines.append("Expected differences, compared after normalising: " + ", ".join(parts) + ".")
    warned = sum("mapping warning" in r["note"] for r in fields)
    cut = sum("hierarchy" in r["note"] for r in fields)
    if warned or cut:
        lines.append(f"Left empty on purpose: {_plural(warned, 'field')} with a mapping warning (a reference or "
                     f"lookup not found, on_missing/on_error null), {_plural(cut, 'parent link')} cut in a "
                     "hierarchy cycle.")
    if dead:
        per = Counter(r["object"] for r in dead)
        lines.append(f"{_plural(len(dead), 'record')} did not land (dead letters): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(per.items())) + ".")
    if problems:
        per = Counter(r["kind"].replace("_", " ") for r in problems)
        lines.append(f"{_plural(len(problems), 'record')} could not be compared: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(per.items())) + ".")
    return lines


def write_diff_report(rows: Iterable[DiffRow], *, pair: str, run_id: str, root: str | ObjectStoragePath | None = None,
                      flags: Sequence[Mapping[str, Any]] = ()) -> ObjectStoragePath:
    """Write the field-level diff report of ``rows`` (from :func:`~crm_migration.engine.verify.field_diff`,
    one or several objects) and the run's flagged values (``MigrationStateHook.flags``); return the HTML
    page's path under ``root`` (default: the configured reports base)."""
    rows = list(rows)
    fields = [r for r in rows if r["kind"] == "field"]
    differ = [r for r in fields if not r["match"]]
    problems = [r for r in rows if r["kind"] in _PROBLEM_KINDS]
    dead = [r for r in rows if r["kind"] == "dead_letter"]
    report = Report(title=f"Field-level diff of {run_id}", pair=pair, run_id=run_id, kind="diff")
    bad = len(differ) + len(problems)
    if bad:
        report.headline, report.tone = f"{bad:,} difference{'s' * (bad != 1)} to review.", "bad"
        report.actions.append("Review the differences below before approving the full run: fix the mapping "
                              "or the source data, then run the sample again.")
    else:
        report.headline = "Every compared field holds in Odoo what the mapping sends."
    if dead:
        report.actions.append(f"{_plural(len(dead), 'record')} did not land (dead letters): see 'Records that "
                              "did not land' for the reason of each.")
    report.summary.extend(diff_summary(rows))

    cols = ("object", "source_id", "odoo_id", "field", "source", "sent", "odoo", "note")
    report.add("Differences", [_row(r, *cols) for r in differ + problems],
               note="Fields whose value in Odoo is not what the mapping sends (canonical values: many2one as "
                    "the id, html after the sanitiser's normalisation), and records that could not be compared.")
    report.add("Records that did not land", [
        {"object": r["object"], "source id": r["source_id"], "field": r["field"],
         "reason": r["note"].removeprefix("dead letter: ")} for r in dead],
        note="Dead letters of the run: fix the data or the mapping and load again.")
    objects = list(dict.fromkeys(r["object"] for r in rows))
    report.add("Per object", [{
        "object": o,
        "model": next((r["model"] for r in rows if r["object"] == o), ""),
        "records compared": len({r["source_id"] for r in fields if r["object"] == o}),
        "fields compared": sum(r["object"] == o for r in fields),
        "differ": sum(r["object"] == o for r in differ),
        "matched after normalising": sum(r["object"] == o and r["match"] and _has(r, _NORMALISED) for r in fields),
        "mapping warnings": sum(r["object"] == o and _has(r, _INFO) for r in fields),
        "did not land": sum(r["object"] == o for r in dead),
        "not compared": sum(r["object"] == o for r in problems),
    } for o in objects])
    report.add("Matched after normalising", [_row(r, *cols) for r in fields if r["match"] and _has(r, _NORMALISED)],
               note="Expected differences: Odoo sanitises html (scripts, event handlers) and trims text; files "
                    "are compared by the sha1 of their bytes against Odoo's checksum.", limit=200)
    report.add("Mapping warnings and cut links", [_row(r, *cols) for r in fields if _has(r, _INFO)],
               note="Values the mapping left empty on purpose (a reference or lookup not found with on_missing: "
                    "null, a transform error with on_error: null) and parent links cut to break a hierarchy "
                    "cycle.", limit=200)
    report.add("All compared fields", [_row(r, *cols, "match") for r in fields],
               note="Every field of every loaded record; the CSV has them all.", limit=200)
    report.add_flags(flags)
    return report.write(root)
