"""Bulk API 2.0 query jobs (``/services/data/vNN.N/jobs/query``) over an :class:`AptoOrg`.

A job runs at creation: its rows are rendered then (a snapshot, as Salesforce stores a job's results
once it has run), so later changes to the org never show in its pages and every page holds exactly
``Sforce-NumberOfRecords`` rows. The first status poll answers ``InProgress``, later ones
``JobComplete`` (or ``Failed`` with an ``errorMessage``, for a job told to fail with
:meth:`BulkQueries.fail_next`). Results are CSV pages (``maxRecords``, ``locator``; ``Sforce-Locator``
``null`` on the last page, ``Sforce-NumberOfRecords``) in the job's ``columnDelimiter`` and
``lineEnding``, every value quoted, in the Bulk API's value format, not the REST API's: a blank is
``""``, a boolean ``true``/``false``, a number with a decimal point ``100.0`` (an int field ``100``),
a dateTime ``2024-04-16T19:00:00.000Z`` (REST: ``...000+0000``), a relationship column
``Account.Name`` (blank when the parent is missing). Blob (base64) fields cannot be selected.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import soql
from .ids import make_id
from .soql import Column, SoqlError, format_datetime, parse_sf_datetime

if TYPE_CHECKING:
    from .org import AptoOrg

DEFAULT_MAX_RECORDS = 10_000
DAILY_JOBS = 10_000
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
DEFAULT_FAILURE = ("InvalidBatch : Failed to process query: QUERY_TIMEOUT: Your query request was running for "
                   "too long.")


@dataclass
class BulkJob:
    id: str
    operation: str
    sobject: str
    header: list[str]
    rows: list[list[str]]                    # rendered CSV values, as the job found them when it ran
    version: str
    created: str
    user: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "UploadComplete"
    polls: int = 0
    error: str | None = None                 # set: the job fails on its first poll past InProgress
    info: dict[str, Any] = field(default_factory=dict)


def _api_error(status: int, code: str, message: str) -> Exception:
    from .org import ApiError

    return ApiError(status, code, message)


class BulkQueries:
    """The org's Bulk API 2.0 query jobs."""

    def __init__(self, org: AptoOrg) -> None:
        self.org = org
        self.jobs: dict[str, BulkJob] = {}
        self._seq = 0
        self._failures: list[str] = []

    def fail_next(self, count: int = 1, message: str | None = None) -> int:
        """Make the next ``count`` jobs created end ``Failed`` with ``message`` as their ``errorMessage``;
        return how many jobs are now set to fail."""
        with self.org.lock:
            self._failures += [message or DEFAULT_FAILURE] * int(count)
            return len(self._failures)

    @property
    def created(self) -> int:
        """Jobs created since the org was (re)generated (``DailyBulkV2QueryJobs`` in ``limits``)."""
        return self._seq

    def create(self, body: dict[str, Any], version: str, user: str) -> dict[str, Any]:
        operation = body.get("operation", "query")
        if operation not in {"query", "queryAll"}:
            raise _api_error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if body.get("contentType", "CSV") != "CSV":
            raise _api_error(400, "INVALIDJOB", "InvalidJob : The only content type supported is CSV")
        delimiter, line_ending = body.get("columnDelimiter", "COMMA"), body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS:
            raise _api_error(400, "INVALIDJOB", f"InvalidJob : Invalid columnDelimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise _api_error(400, "INVALIDJOB", f"InvalidJob : Invalid lineEnding: {line_ending}")
        text = body.get("query")
        if not text:
            raise _api_error(400, "INVALIDJOB", "InvalidJob : Query is required")
        org = self.org
        with org.lock:
            try:
                q = soql.parse(text)
                cq = soql.compile_query(q, org.catalog, now=org.now())
            except SoqlError as e:
                raise _api_error(400, e.error_code, e.message) from None
            if cq.count_only or cq.aggregates:
                raise _api_error(400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0")
            if q.offset:
                raise _api_error(400, "INVALIDJOB", "InvalidJob : OFFSET is not supported by Bulk API 2.0")
            if blobs := [c.path for c in cq.columns if c.field.type == "base64"]:
                raise _api_error(400, "INVALIDJOB", f"InvalidJob : Binary (base64) field {blobs[0]} is not supported "
                                                    "by Bulk API 2.0 query")
            if cq.sobject == "ContentDocumentLink":
                org._check_cdl(q)
            found = org._select(cq, org.tables, operation == "queryAll")
            rows = [[_csv_value(soql.read_column(r, c, org.catalog), c) for c in cq.columns] for r in found]
            self._seq += 1
            job = BulkJob(make_id("750", 7000 + self._seq), operation, cq.sobject, [c.path for c in cq.columns],
                          rows, version, format_datetime(org.now()), user, delimiter, line_ending)
            if self._failures:
                job.error = self._failures.pop(0)
            self.jobs[job.id] = job
            return self._info(job)

    def _info(self, job: BulkJob, *, detail: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.sobject, "createdById": job.user,
            "createdDate": job.created, "systemModstamp": job.created, "state": job.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(job.version),
            "lineEnding": job.line_ending, "columnDelimiter": job.delimiter}
        if detail:
            done = job.state == "JobComplete"
            info.update({"jobType": "V2Query", "numberRecordsProcessed": len(job.rows) if done else 0,
                         "retries": 0, "totalProcessingTime": 42 if done else 0, "isPkChunkingSupported": True})
            if job.state == "Failed":
                info["errorMessage"] = job.error
        return info

    def _job(self, job_id: str) -> BulkJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise _api_error(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        with self.org.lock:
            job = self._job(job_id)
            if job.state in {"UploadComplete", "InProgress"}:
                job.polls += 1
                if job.polls == 1:
                    job.state = "InProgress"
                else:
                    job.state = "Failed" if job.error else "JobComplete"
            return self._info(job, detail=True)

    def list(self) -> dict[str, Any]:
        with self.org.lock:
            return {"done": True, "nextRecordsUrl": None,
                    "records": [self._info(j) | {"jobType": "V2Query"} for j in self.jobs.values()]}

    def abort(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.org.lock:
            job = self._job(job_id)
            if body.get("state") != "Aborted":
                raise _api_error(400, "INVALIDJOB", "InvalidJob : only state Aborted can be set on a query job")
            if job.state in {"JobComplete", "Failed"}:
                raise _api_error(400, "INVALIDJOB", f"InvalidJob : Cannot abort job {job_id}: job is {job.state}")
            job.state = "Aborted"
            return self._info(job)

    def delete(self, job_id: str) -> None:
        with self.org.lock:
            self._job(job_id)
            del self.jobs[job_id]

    def results(self, job_id: str, version: str, locator: str | None, max_records: str | None) -> tuple[bytes, dict[str, str]]:
        with self.org.lock:
            job = self._job(job_id)
            if job.version != version:
                raise _api_error(409, "INVALIDJOB", "InvalidJob : Use the API version the job was created with")
            if job.state != "JobComplete":
                raise _api_error(400, "INVALIDJOB", f"InvalidJob : Job {job_id} is not complete (state {job.state})")
            try:
                start = int(base64.b64decode(locator).decode()) if locator else 0
                size = int(max_records) if max_records else DEFAULT_MAX_RECORDS
            except ValueError:
                raise _api_error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
            if size < 1:
                raise _api_error(400, "INVALIDJOB", "InvalidJob : maxRecords must be a positive number")
            rows = job.rows[start:start + size]
            out = io.StringIO()
            w = csv.writer(out, delimiter=DELIMITERS[job.delimiter], quoting=csv.QUOTE_ALL,
                           lineterminator=LINE_ENDINGS[job.line_ending])
            w.writerow(job.header)
            w.writerows(rows)
            end = start + len(rows)
            nxt = base64.b64encode(str(end).encode()).decode() if end < len(job.rows) else "null"
            return out.getvalue().encode(), {"Sforce-Locator": nxt, "Sforce-NumberOfRecords": str(len(rows))}


def _csv_value(value: Any, col: Column) -> str:
    """A value as the Bulk API writes it (not as the REST API's JSON has it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = "string" if col.sobject_type else col.field.type
    if kind == "datetime":
        if isinstance(value, str) and len(value) == 28 and value.endswith("+0000"):  # as stored: ...000+0000
            return value[:23] + "Z"
        dt = parse_sf_datetime(str(value))
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    if isinstance(value, float) or kind in {"double", "currency", "percent"}:
        text = repr(float(value))
        return f"{float(value):.1f}" if "e" in text else text      # 100.0, never 1e+16
    return str(value)
