"""Readable reports: one HTML page per report plus one CSV per table, in a folder per run.

Reports are for people: a title, a headline saying in a sentence whether all is well, what needs a
person's action, a few sentences saying what happened, then tables. They are rendered from the Jinja2
template ``templates/report.html`` with autoescape on (no HTML is built by hand: every value is text),
and written through Airflow's :class:`~airflow.sdk.ObjectStoragePath` under the reports base, so any
worker writes them where people can read them:

- ``[crm_migration] reports_base`` (environment ``AIRFLOW__CRM_MIGRATION__REPORTS_BASE``): a local
  folder (default ``$AIRFLOW_HOME/crm_migration_reports``), ``file:///...``, ``s3://bucket/prefix``,
  ``gs://...`` (with their Airflow providers installed), ``s3://<conn_id>@bucket/prefix`` naming the
  Airflow connection that holds the credentials.

A report lives at ``<base>/<pair>/<run id>/<kind>.html``; its URI is what the task logs and returns.
Every text a report shows goes through Airflow's secrets masker first: a connection secret the task
read never appears in a report. pandas renders the tables' CSVs (per report, never a whole-table
frame in the load path).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import ObjectStoragePath

CONFIG_SECTION, CONFIG_OPTION = "crm_migration", "reports_base"
ENV_REPORTS_BASE = "AIRFLOW__CRM_MIGRATION__REPORTS_BASE"


def default_reports_base() -> str:
    """``$AIRFLOW_HOME/crm_migration_reports`` as a ``file://`` URI."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return (home / "crm_migration_reports").resolve().as_uri()


def _as_uri(base: str) -> str:
    """A local path (no scheme) as an absolute ``file://`` URI; a URI as given."""
    return base if "://" in base else Path(base).expanduser().resolve().as_uri()


def reports_base_uri() -> str:
    """The configured reports base (``[crm_migration] reports_base``), as a URI."""
    from airflow.sdk.configuration import conf

    base = conf.get(CONFIG_SECTION, CONFIG_OPTION, fallback=None) or default_reports_base()
    return _as_uri(str(base).strip())


def storage_path(uri: str | os.PathLike[str] | ObjectStoragePath) -> ObjectStoragePath:
    """An :class:`ObjectStoragePath` for a base or report URI (a local path becomes ``file://``).

    A report URI returned by a task carries no connection id; one named in the configured base
    (``s3://<conn_id>@bucket/...``) is used for URIs under that base, so the on-call view can read
    what the tasks wrote.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(uri, ObjectStoragePath):
        return uri
    text = _as_uri(os.fspath(uri))
    base = ObjectStoragePath(reports_base_uri())
    if base.conn_id and text.startswith(str(base)):
        return ObjectStoragePath(text, conn_id=base.conn_id)
    return ObjectStoragePath(text)


def reports_base() -> ObjectStoragePath:
    """The configured reports base as an :class:`ObjectStoragePath`."""
    return storage_path(reports_base_uri())


@cache
def templates() -> jinja2.Environment:
    """The package's Jinja2 templates (``crm_migration/templates``), autoescaped."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("crm_migration", "templates"),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def redact(value: Any) -> Any:
    """``value`` with every secret Airflow's masker knows (connection passwords, tokens...) replaced by ***."""
    try:
        from airflow.sdk._shared.secrets_masker import redact as _redact
    except ImportError:  # pragma: no cover - an Airflow without the shared masker
        return value
    return _redact(value)


def cell(value: Any) -> Any:
    """A value as a report cell: text as is, lists and dicts as compact JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "report"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):   # None, NaN
        return ""
    return str(redact(str(cell(value))))


@dataclass
class Section:
    title: str
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame
    note: str = ""
    limit: int = 500          # rows shown in the HTML; the CSV always has all of them


@dataclass
class Report:
    """A report under construction; :meth:`write` stores it and returns the HTML page's path.

    :param headline: one sentence, first on the page: is all well, or what is wrong.
    :param tone: ``ok``, ``bad`` or ``warn`` (the headline's colour).
    :param actions: what needs a person's action, one sentence each (shown under the headline).
    :param summary: what happened, one plain-text sentence per line.
    :param files: ``(label, file name)`` of other files written next to the page, linked from it.
    """

    title: str
    pair: str
    run_id: str
    kind: str
    headline: str = ""
    tone: str = "ok"
    actions: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)

    def add(self, title: str, rows: Sequence[Mapping[str, Any]] | pd.DataFrame, note: str = "",
            limit: int = 500) -> Report:
        self.sections.append(Section(title, rows, note, limit))
        return self

    def add_flags(self, flags: Sequence[Mapping[str, Any]]) -> Report:
        """The values the run landed repaired or as written but flagged (``MigrationStateHook.flags``): an
        action line counting them per object and field, and a table naming each record and field."""
        if not flags:
            return self
        per: dict[tuple[str, str], int] = {}
        for f in flags:
            key = (str(f["source_object"]), str(f.get("field") or "?"))
            per[key] = per.get(key, 0) + 1
        self.actions.append(
            f"{len(flags):,} value(s) landed repaired or as written and are flagged for review: "
            + ", ".join(f"{o}.{fld} {n:,}" for (o, fld), n in sorted(per.items())) + ".")
        self.add("Flagged values (landed, to review)", [
            {"object": f["source_object"], "source id": f["source_id"], "odoo model": f.get("odoo_model") or "",
             "odoo id": f.get("odoo_id") or "", "field": f.get("field") or "",
             "why": str(f.get("message") or "").removeprefix(f"{f.get('field')}: ")} for f in flags],
            note="Repair and flag: each record landed; the field holds the source value as written, or the nearest "
                 "valid target (a stage of the deal's own pipeline), or is left empty (a country Odoo does not "
                 "know). Fix the source or the mapping and rerun, or accept them.")
        return self

    def folder(self, root: str | os.PathLike[str] | ObjectStoragePath | None = None) -> ObjectStoragePath:
        base = storage_path(root) if root is not None else reports_base()
        return base / _slug(self.pair) / _slug(self.run_id)

    def render(self, csv_names: Sequence[str], frames: Sequence[pd.DataFrame]) -> str:
        """The HTML page (autoescaped template; every text redacted)."""
        sections = []
        for sec, frame, csv_name in zip(self.sections, frames, csv_names, strict=True):
            shown = frame.head(sec.limit)
            sections.append({
                "title": _text(sec.title), "note": _text(sec.note), "csv": csv_name, "total": len(frame),
                "limit": sec.limit, "columns": [_text(c) for c in shown.columns],
                "rows": [[_text(v) for v in row] for row in shown.itertuples(index=False, name=None)]})
        return templates().get_template("report.html").render(
            title=_text(self.title), pair=_text(self.pair), run_id=_text(self.run_id), kind=self.kind,
            written=f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", headline=_text(self.headline),
            tone=self.tone if self.tone in ("ok", "bad", "warn") else "warn",
            actions=[_text(a) for a in self.actions], summary=[_text(s) for s in self.summary],
            files=[(_text(label), name) for label, name in self.files], sections=sections)

    def write(self, root: str | os.PathLike[str] | ObjectStoragePath | None = None) -> ObjectStoragePath:
        """Write the page and its CSVs under ``root`` (default: the configured reports base); return the
        page's path (``str()`` of it is the URI the task logs and returns)."""
        out = self.folder(root)
        out.mkdir(parents=True, exist_ok=True)
        frames, names = [], []
        for i, sec in enumerate(self.sections, 1):
            frame = sec.rows if isinstance(sec.rows, pd.DataFrame) else pd.DataFrame(list(sec.rows))
            frame = frame.map(_text) if not frame.empty else frame
            csv_name = f"{self.kind}_{i:02d}_{_slug(sec.title).lower()}.csv"
            (out / csv_name).write_text(frame.to_csv(index=False), encoding="utf-8")
            frames.append(frame)
            names.append(csv_name)
        path = out / f"{self.kind}.html"
        path.write_text(self.render(names, frames), encoding="utf-8")
        return path
