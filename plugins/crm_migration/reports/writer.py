"""Readable reports: one HTML page per report plus one CSV per table, in a folder per run.

Reports are for people: a title, a few sentences saying what happened, then tables. pandas renders
the tables (per report, never a whole-table frame in the load path).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.9rem} .ok{color:#176f2c} .bad{color:#a12622} .warn{color:#8a5a00}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} th,td{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top} th{background:#f4f4f4} tr:nth-child(even) td{background:#fafafa}
.note{color:#555;font-size:.9rem}
"""


def reports_root() -> Path:
    """``$CRM_MIGRATION_REPORTS_DIR``, else ``$AIRFLOW_HOME/crm_migration_reports``."""
    if env := os.environ.get("CRM_MIGRATION_REPORTS_DIR"):
        return Path(env)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "crm_migration_reports"


def cell(value: Any) -> Any:
    """A value as a report cell: text as is, lists and dicts as compact JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "report"


@dataclass
class Section:
    title: str
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame
    note: str = ""
    limit: int = 500          # rows shown in the HTML; the CSV always has all of them


@dataclass
class Report:
    """A report under construction; :meth:`write` puts it on disk and returns the HTML path."""

    title: str
    pair: str
    run_id: str
    kind: str
    summary: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def add(self, title: str, rows: Sequence[Mapping[str, Any]] | pd.DataFrame, note: str = "",
            limit: int = 500) -> Report:
        self.sections.append(Section(title, rows, note, limit))
        return self

    def add_flags(self, flags: Sequence[Mapping[str, Any]]) -> Report:
        """The values the run landed repaired or as written but flagged (``MigrationStateHook.flags``): a
        summary line counting them per object and field, and a table naming each record and field."""
        if not flags:
            return self
        per: dict[tuple[str, str], int] = {}
        for f in flags:
            key = (str(f["source_object"]), str(f.get("field") or "?"))
            per[key] = per.get(key, 0) + 1
        self.summary.append(
            "<span class='warn'>" + html.escape(
                f"{len(flags):,} value(s) landed repaired or as written and are flagged for review: "
                + ", ".join(f"{o}.{fld} {n:,}" for (o, fld), n in sorted(per.items())) + ".") + "</span>")
        self.add("Flagged values (landed, to review)", [
            {"object": f["source_object"], "source id": f["source_id"], "odoo model": f.get("odoo_model") or "",
             "odoo id": f.get("odoo_id") or "", "field": f.get("field") or "",
             "why": str(f.get("message") or "").removeprefix(f"{f.get('field')}: ")} for f in flags],
            note="Repair and flag: each record landed; the field holds the source value as written, or the nearest "
                 "valid target (a stage of the deal's own pipeline), or is left empty (a country Odoo does not "
                 "know). Fix the source or the mapping and rerun, or accept them.")
        return self

    def folder(self, root: Path | None = None) -> Path:
        return (root or reports_root()) / _slug(self.pair) / _slug(self.run_id)

    def write(self, root: Path | None = None) -> Path:
        out = self.folder(root)
        out.mkdir(parents=True, exist_ok=True)
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                 f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>",
                 f"<p class='meta'>pair {html.escape(self.pair)} · run {html.escape(self.run_id)} · "
                 f"written {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>"]
        parts += [f"<p>{line}</p>" for line in self.summary]
        for i, sec in enumerate(self.sections, 1):
            frame = sec.rows if isinstance(sec.rows, pd.DataFrame) else pd.DataFrame(list(sec.rows))
            csv_name = f"{self.kind}_{i:02d}_{_slug(sec.title).lower()}.csv"
            frame.to_csv(out / csv_name, index=False)
            parts.append(f"<h2>{html.escape(sec.title)} <span class='meta'>({len(frame)} rows, "
                         f"<a href='{csv_name}'>CSV</a>)</span></h2>")
            if sec.note:
                parts.append(f"<p class='note'>{html.escape(sec.note)}</p>")
            if frame.empty:
                parts.append("<p class='meta'>none</p>")
            else:
                shown = frame.head(sec.limit)
                parts.append(shown.to_html(index=False, escape=True, na_rep="", border=0))
                if len(frame) > sec.limit:
                    parts.append(f"<p class='meta'>first {sec.limit} of {len(frame)} rows; all in the CSV</p>")
        parts.append("</body></html>")
        path = out / f"{self.kind}.html"
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
