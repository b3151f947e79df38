"""Bulk API 2.0 query jobs (``/services/data/vNN.N/jobs/query``) over an :class:`AptoOrg`.

A job runs at creation (its matching ids are kept, not the rows); the first status poll answers
``InProgress``, later ones ``JobComplete``. Results are CSV pages (``maxRecords``, ``locator``,
``Sforce-Locator`` / ``Sforce-NumberOfRecords`` headers), every value quoted, blanks as ``""``.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import soql
from .ids import make_id
from .soql import Column, SoqlError, format_datetime

if TYPE_CHECKING:
    from .org import AptoOrg

DEFAULT_MAX_RECORDS = 10_000


@dataclass
class BulkJob:
    id: str
    operation: str
    sobject: str
    columns: list[Column]
    ids: list[str]
    version: str
    created: str
    user: str
    state: str = "UploadComplete"
    polls: int = 0
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

    def create(self, body: dict[str, Any], version: str, user: str) -> dict[str, Any]:
        operation = body.get("operation", "query")
        if operation not in {"query", "queryAll"}:
            raise _api_error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if body.get("contentType", "CSV") != "CSV" or body.get("columnDelimiter", "COMMA") != "COMMA":
            raise _api_error(400, "INVALIDJOB", "InvalidJob : only CSV with COMMA delimiters is supported here")
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
            if cq.sobject == "ContentDocumentLink":
                org._check_cdl(q)
            rows = org._select(cq, org.tables, operation == "queryAll")
            self._seq += 1
            job = BulkJob(make_id("750", 7000 + self._seq), operation, cq.sobject, cq.columns,
                          [r["Id"] for r in rows], version, format_datetime(org.now()), user)
            self.jobs[job.id] = job
            return self._info(job)

    def _info(self, job: BulkJob, *, detail: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.sobject, "createdById": job.user,
            "createdDate": job.created, "systemModstamp": job.created, "state": job.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(job.version),
            "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if detail:
            done = job.state == "JobComplete"
            info.update({"jobType": "V2Query", "numberRecordsProcessed": len(job.ids) if done else 0,
                         "retries": 0, "totalProcessingTime": 42 if done else 0, "isPkChunkingSupported": True})
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
                job.state = "InProgress" if job.polls == 1 else "JobComplete"
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
            if job.state == "JobComplete":
                raise _api_error(400, "INVALIDJOB", f"InvalidJob : Cannot abort job {job_id}: job is complete")
            job.state = "Aborted"
            return self._info(job)

    def delete(self, job_id: str) -> None:
        with self.org.lock:
            self._job(job_id)
            del self.jobs[job_id]

    def results(self, job_id: str, version: str, locator: str | None, max_records: str | None) -> tuple[bytes, dict[str, str]]:
        org = self.org
        with org.lock:
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
            ids = job.ids[start:start + size]
            out = io.StringIO()
            w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            w.writerow([c.path for c in job.columns])
            table = org.tables[job.sobject]
            for rid in ids:
                rec = table.get(rid)
                if rec is not None:
                    w.writerow([_csv_value(soql.read_column(rec, c, org.catalog)) for c in job.columns])
            end = start + len(ids)
            nxt = base64.b64encode(str(end).encode()).decode() if end < len(job.ids) else "null"
            return out.getvalue().encode(), {"Sforce-Locator": nxt, "Sforce-NumberOfRecords": str(len(ids))}


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
