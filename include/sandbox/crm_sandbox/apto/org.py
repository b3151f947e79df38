"""``AptoOrg``: the sandbox's state (records, tokens, cursors, API usage, faults, stats) and the
Salesforce REST behaviour over it, independent of HTTP. The server maps requests onto its methods.

Every method that answers an API call returns ``(status, payload)`` or raises :class:`ApiError`,
whose ``payload`` is Salesforce's error list ``[{"message", "errorCode"}]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import soql
from .bulk import BulkQueries
from .generator import OrgData, generate_org
from .ids import is_id, make_id, to18
from .schema import MASTER_RECORD_TYPE, FieldDef, ObjectDef, describe_global_entry, describe_object
from .soql import Column, FieldMeta, SoqlError, format_datetime, parse_sf_datetime

API_VERSIONS = {"55.0": "Summer '22", "56.0": "Winter '23", "57.0": "Spring '23", "58.0": "Summer '23",
                "59.0": "Winter '24", "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25",
                "63.0": "Spring '25", "64.0": "Summer '25", "65.0": "Winter '26", "66.0": "Spring '26"}
DEFAULT_CLIENT_ID = "apto-sandbox-client-id"
DEFAULT_CLIENT_SECRET = "apto-sandbox-client-secret"
DEFAULT_USERNAME = "integration@mclabs2.sandbox"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_SECURITY_TOKEN = "SANDBOXTOKEN"
CDL_RESTRICTION = ("Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
                   "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN "
                   "operator.")
CDL_DOCUMENT_FIELDS = ("Implementation restriction: ContentDocumentLink can be filtered on ContentDocument fields only "
                       "when it is filtered by LinkedEntityId, not by ContentDocumentId.")
CURSOR_IDLE_SECONDS = 15 * 60
BLOB_FIELDS = {("ContentVersion", "VersionData"), ("Attachment", "Body"), ("ContentNote", "Content")}


class ApiError(Exception):
    """An answer in Salesforce's error shape."""

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status, self.error_code, self.message = status, error_code, message
        self.headers = headers or {}

    @property
    def payload(self) -> list[dict[str, str]]:
        return [{"message": self.message, "errorCode": self.error_code}]


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass
class Fault:
    """An injected fault for the next ``count`` matching API calls."""

    kind: str                   # status | delay | drop | cut | invalid_session | limit_exceeded
    count: int = 1
    status: int = 503
    delay: float = 0.0
    match: str | None = None    # substring of the path; None = any /services/data call

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "status": self.status, "delay": self.delay, "match": self.match}


@dataclass
class _Cursor:
    sobject: str
    columns: list[Column]
    ids: list[str]
    batch: int
    tooling: bool
    used: float = field(default_factory=time.monotonic)


class _Catalog:
    """The SOQL engine's view of one schema (data or tooling) and the org's records."""

    def __init__(self, org: AptoOrg, schema: dict[str, ObjectDef], tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.org, self.schema, self.tables = org, schema, tables
        self._lower = {name.lower(): name for name in schema}
        self._metas: dict[str, list[FieldMeta]] = {}

    def object_name(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    def field(self, sobject: str, name: str) -> FieldMeta | None:
        f = self.schema[sobject].field(name) if sobject in self.schema else None
        return f.meta() if f else None

    def fields(self, sobject: str) -> Sequence[FieldMeta]:
        if sobject not in self._metas:
            self._metas[sobject] = [f.meta() for f in self.schema[sobject].fields]
        return self._metas[sobject]

    def relationship(self, sobject: str, name: str) -> FieldMeta | None:
        f = self.schema[sobject].relationship(name)
        return f.meta() if f else None

    def lookup(self, record_id: str) -> tuple[str, Mapping[str, Any]] | None:
        return self.org._lookup(record_id)

    def select_ids(self, query: soql.Query, *, include_deleted: bool) -> list[str]:
        cq = soql.compile_query(query, self, now=self.org.now())
        rows = self.org._select(cq, self.tables, include_deleted)
        col = cq.columns[0]
        return [v for r in rows if (v := soql.read_column(r, col, self)) is not None]


class AptoOrg:
    """A generated Apto org behind the Salesforce REST API.

    :param scale: size multiplier of the generated org (1: ~50 accounts, 150 contacts, 100 deals).
    :param seed: generator seed.
    :param namespace: the managed package's namespace prefix.
    :param client_id: OAuth consumer key accepted by the token endpoint.
    :param client_secret: OAuth consumer secret.
    :param users: ``{username: (password, security_token)}`` for the password grant; the default is
        the integration user. JWT bearer accepts any active user's ``Username`` as ``sub``.
    :param api_limit: daily API request limit (``Sforce-Limit-Info: api-usage=N/M``).
    :param as_of: the generator's reference time (default: today 00:00 UTC).
    :param session_timeout: seconds after which a token answers 401 INVALID_SESSION_ID (default: never).
    :param profile: ``default``, or ``variant``: an org with a renamed standard field, two custom fields of the
        customer's own and another package's namespace (``generator._variant``).
    """

    def __init__(self, scale: int = 1, seed: int = 7, *, namespace: str = "McLabs2",
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 users: Mapping[str, tuple[str, str]] | None = None, api_limit: int = 100_000,
                 as_of: datetime | None = None, instance_url: str = "",
                 session_timeout: float | None = None, profile: str = "default") -> None:
        self.scale, self.seed, self.namespace, self.as_of = scale, seed, namespace, as_of
        self.profile = profile
        self.client_id, self.client_secret = client_id, client_secret
        self.users = dict(users or {DEFAULT_USERNAME: (DEFAULT_PASSWORD, DEFAULT_SECURITY_TOKEN)})
        self.api_limit = self._initial_api_limit = api_limit
        self.instance_url = instance_url
        self.session_timeout = session_timeout
        self.lock = threading.RLock()
        self.clock: datetime | None = None      # set to freeze "now"
        self.tokens: dict[str, dict[str, Any]] = {}
        self._load(generate_org(scale, seed, namespace, as_of, profile))

    # ------------------------------------------------------------------------------------- state
    def _load(self, data: OrgData) -> None:
        self.data = data
        self.schema = data.schema
        self.tables = data.tables
        self.index: dict[str, str] = {}
        for name, rows in self.tables.items():
            if name == "ContentNote":
                continue
            for rid in rows:
                self.index[rid] = name
        self.catalog = _Catalog(self, self.schema, self.tables)
        self.tooling_catalog = _Catalog(self, data.tooling_schema, data.tooling)
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.bulk = BulkQueries(self)
        self.api_used = 0
        self.api_limit = self._initial_api_limit
        self.faults: list[Fault] = []
        self.stats: Counter[str] = Counter()
        self.user_by_username = {u["Username"].lower(): uid for uid, u in self.tables["User"].items()}
        self.integration_user = data.hard_cases["user_integration"]
        self._locator_seq = 0

    def reset(self) -> None:
        """Regenerate the org as first generated; reset API usage and limit, faults, stats, cursors (tokens stay valid)."""
        with self.lock:
            self._load(generate_org(self.scale, self.seed, self.namespace, self.data.as_of, self.profile))

    def now(self) -> datetime:
        return self.clock or datetime.now(UTC)

    def _lookup(self, record_id: str) -> tuple[str, Mapping[str, Any]] | None:
        obj = self.index.get(record_id) or self.index.get(to18(record_id))
        if obj is None:
            return None
        return obj, self.tables[obj][to18(record_id)]

    # ------------------------------------------------------------------------------------- auth
    def issue_token(self, form: Mapping[str, str], base_url: str) -> tuple[int, dict[str, Any]]:
        """``POST /services/oauth2/token``: client_credentials, password, or JWT bearer."""
        grant = form.get("grant_type", "")
        bad = (400, {"error": "invalid_grant", "error_description": "authentication failure"})
        if grant == "client_credentials":
            if form.get("client_id") != self.client_id:
                return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            if form.get("client_secret") != self.client_secret:
                return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            user = self.integration_user
        elif grant == "password":
            if form.get("client_id") != self.client_id:
                return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            # the secret is optional (a connected app may not require it), but a wrong one is refused
            if "client_secret" in form and form["client_secret"] != self.client_secret:
                return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            username = form.get("username", "")
            cred = next((c for u, c in self.users.items() if u.lower() == username.lower()), None)   # case-insensitive
            if cred is None or form.get("password") != cred[0] + cred[1]:
                return bad
            user = self.user_by_username.get(username.lower(), self.integration_user)
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            # The signature is NOT verified: any well-formed assertion naming a known active user is accepted.
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None:
                return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
            if claims.get("iss") != self.client_id:
                return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            if isinstance(claims.get("exp"), (int, float)) and claims["exp"] < time.time() - 300:
                return 400, {"error": "invalid_grant", "error_description": "expired authorization code"}
            sub = str(claims.get("sub", "")).lower()
            user = self.user_by_username.get(sub) or (self.integration_user if sub in {u.lower() for u in self.users} else None)
            if user is None or not self.tables["User"][user]["IsActive"]:
                return 400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        token = f"{self.data.org_id[:15]}!{secrets.token_urlsafe(48)}"
        issued = str(int(time.time() * 1000))
        with self.lock:
            self.tokens[token] = {"user": user, "issued": issued, "valid": True}
        instance = self.instance_url or base_url
        sig = base64.b64encode(hashlib.sha256(f"{instance}{issued}".encode()).digest()).decode()
        return 200, {"access_token": token, "instance_url": instance,
                     "id": f"{instance}/id/{self.data.org_id}/{user}", "token_type": "Bearer",
                     "issued_at": issued, "signature": sig, "scope": "api"}

    def check_token(self, authorization: str | None) -> str:
        """Return the user id of a valid ``Authorization: Bearer`` token, else raise 401 INVALID_SESSION_ID."""
        token = ""
        if authorization:
            parts = authorization.split(None, 1)
            if len(parts) == 2 and parts[0].lower() in {"bearer", "oauth"}:
                token = parts[1].strip()
        info = self.tokens.get(token)
        if info and self.session_timeout is not None and time.time() - int(info["issued"]) / 1000 > self.session_timeout:
            info["valid"] = False
        if not info or not info["valid"]:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return info["user"]

    def expire_tokens(self) -> int:
        """Expire every issued token (the next call answers 401 INVALID_SESSION_ID)."""
        with self.lock:
            n = 0
            for info in self.tokens.values():
                n += info["valid"]
                info["valid"] = False
            return n

    # ------------------------------------------------------------------------ usage, faults, stats
    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}

    def count_call(self, endpoint: str) -> None:
        """Count one API call; raise 403 REQUEST_LIMIT_EXCEEDED once the daily limit is used up."""
        with self.lock:
            self.stats[endpoint] += 1
            if self.api_used >= self.api_limit:
                self.stats["rejected:REQUEST_LIMIT_EXCEEDED"] += 1
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1

    def set_api_usage(self, used: int | None = None, limit: int | None = None) -> dict[str, int]:
        with self.lock:
            if used is not None:
                self.api_used = int(used)
            if limit is not None:
                self.api_limit = int(limit)
            return {"used": self.api_used, "limit": self.api_limit}

    def inject_fault(self, kind: str, count: int = 1, *, status: int = 503, delay: float = 0.0,
                     match: str | None = None) -> Fault:
        """Make the next ``count`` API calls (whose path contains ``match``) fail.

        ``kind``: ``status`` (answer ``status``: 500/502/503/504 ...), ``delay`` (sleep ``delay`` s, then
        answer normally), ``drop`` (close the connection without an answer), ``cut`` (a blob answer
        whose body stops half way, the connection closed), ``invalid_session`` (401 INVALID_SESSION_ID),
        ``limit_exceeded`` (403 REQUEST_LIMIT_EXCEEDED).
        """
        if kind not in {"status", "delay", "drop", "cut", "invalid_session", "limit_exceeded"}:
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, int(count), int(status), float(delay), match)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.count > 0 and (f.match in path if f.match else path.startswith("/services/data/v")):
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    self.stats[f"fault:{f.kind}"] += 1
                    return f
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def reset_stats(self) -> None:
        """Forget the call counts (API usage stays)."""
        with self.lock:
            self.stats.clear()

    def get_stats(self) -> dict[str, Any]:
        with self.lock:
            calls = {k: v for k, v in self.stats.items() if ":" not in k}
            return {"calls": dict(sorted(calls.items())), "total": sum(calls.values()),
                    "events": {k: v for k, v in self.stats.items() if ":" in k},
                    "api_usage": {"used": self.api_used, "limit": self.api_limit},
                    "open_cursors": len(self.cursors), "faults": [f.to_dict() for f in self.faults]}

    # --------------------------------------------------------------------------------- metadata
    def versions(self, base: str = "") -> list[dict[str, str]]:
        return [{"label": label, "url": f"/services/data/v{v}", "version": v} for v, label in API_VERSIONS.items()]

    def describe_global(self, version: str, tooling: bool = False) -> dict[str, Any]:
        schema = self.data.tooling_schema if tooling else self.schema
        return {"encoding": "UTF-8", "maxBatchSize": 200,
                "sobjects": [describe_global_entry(o, version, tooling) for o in schema.values()]}

    def object_def(self, name: str, tooling: bool = False) -> ObjectDef:
        cat = self.tooling_catalog if tooling else self.catalog
        canon = cat.object_name(name)
        if canon is None:
            raise not_found()
        return cat.schema[canon]

    def describe(self, name: str, version: str, tooling: bool = False) -> dict[str, Any]:
        obj = self.object_def(name, tooling)
        rts = [rt for rt in self.tables["RecordType"].values() if rt["SobjectType"] == obj.name and not tooling]
        schema = self.data.tooling_schema if tooling else self.schema
        return describe_object(obj, schema, version, rts, tooling)

    def picklist_values(self, obj: str, record_type_id: str, field_name: str | None, version: str) -> dict[str, Any]:
        """``/ui-api/object-info/{obj}/picklist-values/{recordTypeId}[/{field}]``."""
        odef = self.object_def(obj)
        rtid = to18(record_type_id)
        rt = self.tables["RecordType"].get(rtid)
        if rtid != MASTER_RECORD_TYPE and (rt is None or rt["SobjectType"] != odef.name):
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: record type {record_type_id}")
        base = f"/services/data/v{version}/ui-api/object-info/{odef.name}/picklist-values/{rtid}"

        def one(fdef: Any) -> dict[str, Any]:
            values = list(fdef.picklist)
            attrs: dict[str, dict[str, Any]] = {}
            if odef.name == "Opportunity" and fdef.name == "StageName":
                stages = {s["ApiName"]: s for s in self.tables["OpportunityStage"].values()}
                values = self.data.pipelines.get(rtid) or [s["ApiName"] for s in stages.values() if s["IsActive"]]
                for v in values:
                    s = stages[v]
                    attrs[v] = {"closed": s["IsClosed"], "defaultProbability": s["DefaultProbability"],
                                "forecastCategoryName": s["ForecastCategoryName"],
                                "picklistAtrributesValueType": "OpportunityStage", "won": s["IsWon"]}
            payload = {"controllerValues": {}, "defaultValue": None,
                       "eTag": hashlib.md5(json.dumps(values).encode()).hexdigest(),  # noqa: S324
                       "url": f"{base}/{fdef.name}",
                       "values": [{"attributes": attrs.get(v), "label": v, "validFor": [], "value": v} for v in values]}
            return payload

        if field_name is None:
            fields = {f.name: one(f) for f in odef.fields if f.type in {"picklist", "multipicklist"}}
            return {"eTag": hashlib.md5(json.dumps(sorted(fields)).encode()).hexdigest(),  # noqa: S324
                    "picklistFieldValues": fields}
        fdef = odef.field(field_name)
        if fdef is None or fdef.type not in {"picklist", "multipicklist"}:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: field {field_name}")
        return one(fdef)

    def limits(self) -> dict[str, Any]:
        return {"DailyApiRequests": {"Max": self.api_limit, "Remaining": max(0, self.api_limit - self.api_used)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": max(0, 10000 - self.bulk.created)},
                "DataStorageMB": {"Max": 10240, "Remaining": 9000},
                "FileStorageMB": {"Max": 20480, "Remaining": 20000}}

    # ------------------------------------------------------------------------------------ query
    def query(self, text: str, version: str, *, include_deleted: bool = False, batch_size: int | None = None,
              tooling: bool = False) -> dict[str, Any]:
        """``/query``, ``/queryAll`` and ``/tooling/query``: the first page."""
        cat = self.tooling_catalog if tooling else self.catalog
        with self.lock:
            try:
                q = soql.parse(text)
                cq = soql.compile_query(q, cat, now=self.now())
            except SoqlError as e:
                raise ApiError(400, e.error_code, e.message) from None
            if cq.sobject == "ContentDocumentLink":
                self._check_cdl(q)
            rows = self._select(cq, cat.tables, include_deleted)
            if cq.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            if cq.aggregates:
                rec: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
                for key, col in cq.aggregates:
                    rec[key] = sum(1 for r in rows if soql.read_column(r, col, cat) is not None) if col else len(rows)
                return {"totalSize": 1, "done": True, "records": [rec]}
            ids = [r["Id"] for r in rows]
            batch = _batch(batch_size)
            cursor = _Cursor(cq.sobject, cq.columns, ids, batch, tooling)
            return self._page(cursor, self._new_locator(cursor) if len(ids) > batch else None, 0, version)

    def query_more(self, locator: str, version: str, tooling: bool = False) -> dict[str, Any]:
        """``/query/{locator}-{offset}``: a further page of a query."""
        loc, _, off = locator.rpartition("-")
        with self.lock:
            cursor = self.cursors.get(loc) if off.isdigit() else None
            if cursor is not None and time.monotonic() - cursor.used > CURSOR_IDLE_SECONDS:
                del self.cursors[loc]       # Salesforce drops a locator after 15 minutes without use
                cursor = None
            if cursor is None or cursor.tooling != tooling:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            cursor.used = time.monotonic()
            self.cursors.move_to_end(loc)
            return self._page(cursor, loc, int(off), version)

    def _new_locator(self, cursor: _Cursor) -> str:
        self._locator_seq += 1
        loc = make_id("01g", self._locator_seq * 65536 + secrets.randbelow(65536))
        self.cursors[loc] = cursor
        while len(self.cursors) > 200:
            self.cursors.popitem(last=False)
        return loc

    def _page(self, cursor: _Cursor, locator: str | None, offset: int, version: str) -> dict[str, Any]:
        cat = self.tooling_catalog if cursor.tooling else self.catalog
        ids = cursor.ids[offset:offset + cursor.batch]
        table = cat.tables[cursor.sobject]
        records = [self._format(cursor.sobject, table[i], cursor.columns, version, cursor.tooling, cat)
                   for i in ids if i in table]
        end = offset + cursor.batch
        out: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids) or locator is None}
        if not out["done"]:
            prefix = "tooling/" if cursor.tooling else ""
            out["nextRecordsUrl"] = f"/services/data/v{version}/{prefix}query/{locator}-{end}"
        out["records"] = records
        return out

    def _select(self, cq: soql.CompiledQuery, tables: Mapping[str, dict[str, dict[str, Any]]],
                include_deleted: bool) -> list[dict[str, Any]]:
        pred = cq.predicate
        rows = [r for r in tables[cq.sobject].values() if (include_deleted or not r.get("IsDeleted")) and pred(r)]
        if cq.order:
            rows = cq.sort(rows, self.catalog if tables is self.tables else self.tooling_catalog)  # type: ignore[assignment]
        q = cq.query
        if q.offset:
            rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[:q.limit]
        return rows

    def _check_cdl(self, q: soql.Query) -> None:
        """Salesforce's rule: a filter by Id(s) on ContentDocumentId or LinkedEntityId (``=`` or ``IN``); a filter on
        ContentDocument fields only next to a LinkedEntityId one."""
        by: set[str] = set()
        for cond in soql.top_level_conditions(q.where):
            name = cond.field.path.lower() if hasattr(cond, "field") else ""
            if name.startswith("contentdocumentlink."):
                name = name.split(".", 1)[1]
            if name not in {"linkedentityid", "contentdocumentid"}:
                continue
            if (isinstance(cond, soql.Compare) and cond.op == "=" and cond.value.kind == "string") or (
                    isinstance(cond, soql.InList) and not cond.negate):
                by.add(name)
        if not by:
            raise ApiError(400, "MALFORMED_QUERY", CDL_RESTRICTION)
        if "linkedentityid" not in by:
            for cond in soql.iter_literals(q.where):
                path = cond.field.path.lower() if hasattr(cond, "field") else ""
                if path.startswith("contentdocumentlink."):
                    path = path.split(".", 1)[1]
                if path.startswith("contentdocument."):
                    raise ApiError(400, "MALFORMED_QUERY", CDL_DOCUMENT_FIELDS)

    def _format(self, sobject: str, rec: Mapping[str, Any], columns: list[Column], version: str,
                tooling: bool, cat: _Catalog) -> dict[str, Any]:
        prefix = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects"
        out: dict[str, Any] = {"attributes": {"type": sobject, "url": f"{prefix}/{sobject}/{rec['Id']}"}}
        for col in columns:
            if not col.chain:
                name = col.field.name
                if (sobject, name) in BLOB_FIELDS:
                    out[name] = f"{prefix}/{sobject}/{rec['Id']}/{name}" if rec["Id"] in self.data.blobs else None
                else:
                    out[name] = rec.get(name)
                continue
            node: dict[str, Any] | None = out      # nested parents: {"Account": {"attributes", "Owner": {...}}}
            cur: Mapping[str, Any] = rec
            obj = sobject
            for ref_field in col.chain:
                rel = ref_field.relationship_name or ref_field.name
                ref = cur.get(ref_field.name)
                found = self._lookup(ref) if ref else None
                if rel not in node:
                    node[rel] = None if found is None else {
                        "attributes": {"type": found[0], "url": f"{prefix}/{found[0]}/{found[1]['Id']}"}}
                node = node[rel]
                if node is None or found is None:
                    break
                obj, cur = found
            if node is not None:
                node[col.field.name] = obj if col.sobject_type else cur.get(col.field.name)
        return out

    # ------------------------------------------------------------------------- records and blobs
    def get_record(self, obj: str, record_id: str, fields: Iterable[str] | None, version: str) -> dict[str, Any]:
        odef = self.object_def(obj)
        rec = self.tables[odef.name].get(to18(record_id))
        if rec is None:
            raise not_found()
        if rec.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        names = [odef.field(f).name if odef.field(f) else f for f in fields] if fields else odef.field_names()
        for n in names:
            if not odef.has(n):
                raise ApiError(400, "INVALID_FIELD", f"No such column '{n}' on sobject of type {odef.name}")
        cols = [Column(odef.field(n).meta(), (), n) for n in names]  # type: ignore[union-attr]
        return self._format(odef.name, rec, cols, version, False, self.catalog)

    def blob(self, obj: str, record_id: str, field_name: str) -> tuple[bytes, str]:
        odef = self.object_def(obj)
        fdef = odef.field(field_name)
        if fdef is None or (odef.name, fdef.name) not in BLOB_FIELDS:
            raise not_found()
        rid = to18(record_id)
        rec = self.tables[odef.name].get(rid)
        if rec is None or rec.get("IsDeleted") or rid not in self.data.blobs or rid in self.data.missing_blobs:
            raise not_found()            # a missing file (data.missing_blobs): the record is there, its bytes are not
        ctype = rec.get("ContentType") if odef.name == "Attachment" else None
        return self.data.blobs[rid], ctype or "application/octet-stream"

    # -------------------------------------------------------------------- replication (delta)
    def get_updated(self, obj: str, start: str | None, end: str | None) -> dict[str, Any]:
        odef = self.object_def(obj)
        lo, hi = self._window(start, end)
        if self.now() - lo > timedelta(days=30):
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate can not be more than 30 days ago")
        los, his = format_datetime(lo), format_datetime(hi)
        with self.lock:
            ids = [r["Id"] for r in self.tables[odef.name].values()
                   if not r.get("IsDeleted") and los <= (r.get("SystemModstamp") or "") < his]
        return {"ids": ids, "latestDateCovered": his}

    def get_deleted(self, obj: str, start: str | None, end: str | None) -> dict[str, Any]:
        odef = self.object_def(obj)
        lo, hi = self._window(start, end)
        earliest = (self.now() - timedelta(days=15)).replace(hour=0, minute=0, second=0, microsecond=0)
        if lo < earliest:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate before org replication enabled date: "
                           "deleted records are kept for 15 days")
        los, his = format_datetime(lo), format_datetime(hi)
        with self.lock:
            rows = [{"id": rid, "deletedDate": when} for rid, when in self.data.deleted_log.get(odef.name, [])
                    if los <= when < his and self.tables[odef.name].get(rid, {}).get("IsDeleted")]
        return {"deletedRecords": rows, "earliestDateAvailable": format_datetime(earliest), "latestDateCovered": his}

    def _window(self, start: str | None, end: str | None) -> tuple[datetime, datetime]:
        if not start or not end:
            raise ApiError(400, "MALFORMED_QUERY", "Both start and end parameters are required")
        # a raw "+00:00" in a query string arrives as " 00:00"
        start, end = start.strip().replace(" ", "+"), end.strip().replace(" ", "+")
        try:
            lo, hi = parse_sf_datetime(start), parse_sf_datetime(end)
        except ValueError:
            raise ApiError(400, "INVALID_DATE_FORMAT", f"Unable to parse date: {start} / {end}") from None
        lo, hi = lo.replace(second=0, microsecond=0), hi.replace(second=0, microsecond=0)   # minute precision
        if hi <= lo:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        return lo, hi

    # ------------------------------------------------------------------------- admin: mutations
    def _stamp(self, at: str | datetime | None) -> str:
        if at is None:
            return format_datetime(self.now().replace(microsecond=0))
        if isinstance(at, datetime):
            return format_datetime(at)
        return format_datetime(parse_sf_datetime(at))

    def _fields_ok(self, odef: ObjectDef, values: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in values.items():
            f = odef.field(k)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{k}' on sobject of type {odef.name}")
            out[f.name] = v
        return out

    def _derive(self, obj: str, rec: dict[str, Any], stamp: str, old_stage: str | None = None) -> None:
        """Keep computed fields right, as Salesforce does: names, IsClosed/IsWon, a history row per stage."""
        if obj in {"Contact", "User"}:
            rec["Name"] = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        if obj == "Opportunity" and rec.get("StageName"):
            stage = next((s for s in self.tables["OpportunityStage"].values() if s["ApiName"] == rec["StageName"]), None)
            if stage:
                rec["IsClosed"], rec["IsWon"] = stage["IsClosed"], stage["IsWon"]
            if rec["StageName"] != old_stage:
                rec["LastStageChangeDate"] = stamp
                hid = self.data.ids.new(self.schema["OpportunityHistory"].key_prefix)
                self.tables["OpportunityHistory"][hid] = {
                    "Id": hid, "IsDeleted": False, "CreatedDate": stamp, "CreatedById": self.integration_user,
                    "SystemModstamp": stamp, "OpportunityId": rec["Id"], "StageName": rec["StageName"],
                    "Amount": rec.get("Amount"), "ExpectedRevenue": None, "CloseDate": rec.get("CloseDate"),
                    "Probability": rec.get("Probability"), "ForecastCategory": rec.get("ForecastCategory"),
                    "PrevAmount": None, "PrevCloseDate": None}
                self.index[hid] = "OpportunityHistory"

    def _new_version(self, rec: dict[str, Any], stamp: str) -> None:
        """A ContentVersion created on an existing document is its new latest version, as in Salesforce: the
        others are no longer latest, the document takes its title, type and size (and a new SystemModstamp)."""
        doc = self.tables["ContentDocument"].get(rec["ContentDocumentId"])
        if doc is None:
            return
        n = 0
        for v in self.tables["ContentVersion"].values():
            if v.get("ContentDocumentId") == doc["Id"] and v is not rec:
                v["IsLatest"] = False
                n += 1
        rec["IsLatest"] = True
        rec["VersionNumber"] = rec.get("VersionNumber") or str(n + 1)
        doc["LatestPublishedVersionId"] = rec["Id"]
        for k in ("Title", "FileType", "FileExtension", "ContentSize"):
            if rec.get(k) is not None:
                doc[k] = rec[k]
        doc["LastModifiedDate"] = doc["SystemModstamp"] = doc["ContentModifiedDate"] = stamp

    def add_custom_field(self, obj: str, name: str, type: str, label: str = "",  # noqa: A002 - Salesforce's word
                         picklist: Sequence[str] = ()) -> dict[str, Any]:
        """Add a customer's custom field (``name`` ends in ``__c``, no namespace) to ``obj``, as an admin does in
        Setup: describe lists it from now on, every record has it empty until updated. Returns its describe."""
        if not name.endswith("__c") or not name[:-3].replace("_", "").isalnum():
            raise ApiError(400, "INVALID_FIELD", f"a custom field's API name ends in __c: {name!r}")
        with self.lock:
            odef = self.object_def(obj)
            if odef.has(name):
                raise ApiError(400, "DUPLICATE_DEVELOPER_NAME", f"{odef.name} already has a field {name}")
            fdef = FieldDef(name, type, label, picklist=tuple(picklist))
            odef.fields.append(fdef)
            odef.__post_init__()                      # the field indexes
            for rec in self.tables[odef.name].values():
                rec.setdefault(fdef.name, None)
            return fdef.describe()

    def create(self, obj: str, rows: Sequence[Mapping[str, Any]], at: str | datetime | None = None,
               blobs: Sequence[bytes | None] | None = None) -> list[str]:
        """Create records (``Id`` and system fields are assigned); return their ids."""
        odef = self.object_def(obj)
        stamp = self._stamp(at)
        ids = []
        with self.lock:
            for n, row in enumerate(rows):
                values = self._fields_ok(odef, {k: v for k, v in row.items() if k != "Id"})
                rid = self.data.ids.new(odef.key_prefix)
                rec: dict[str, Any] = dict.fromkeys(odef.field_names())
                rec.update({"Id": rid, "IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp,
                            "SystemModstamp": stamp, "CreatedById": self.integration_user,
                            "LastModifiedById": self.integration_user})
                if odef.has("OwnerId"):
                    rec["OwnerId"] = self.integration_user
                rec = {k: v for k, v in rec.items() if odef.has(k)}
                rec.update(values)
                self.tables[odef.name][rid] = rec
                self._derive(odef.name, rec, stamp)
                data = blobs[n] if blobs and n < len(blobs) else None
                if data is not None:
                    self.data.blobs[rid] = data
                    if "ContentSize" in rec:
                        rec["ContentSize"] = len(data)
                    if "BodyLength" in rec:
                        rec["BodyLength"] = len(data)
                    if "Checksum" in rec:
                        rec["Checksum"] = hashlib.md5(data).hexdigest()  # noqa: S324 - Salesforce's checksum
                self.index[rid] = odef.name
                if odef.name == "ContentVersion" and rec.get("ContentDocumentId"):
                    self._new_version(rec, stamp)
                ids.append(rid)
        return ids

    def update(self, obj: str, rows: Sequence[Mapping[str, Any]], at: str | datetime | None = None) -> list[str]:
        """Update records given as ``{"Id": ..., field: value}``; bump LastModifiedDate/SystemModstamp."""
        odef = self.object_def(obj)
        stamp = self._stamp(at)
        ids = []
        with self.lock:
            for row in rows:
                rid = to18(str(row.get("Id", "")))
                rec = self.tables[odef.name].get(rid)
                if rec is None or rec.get("IsDeleted"):
                    raise ApiError(404, "ENTITY_IS_DELETED" if rec else "NOT_FOUND",
                                   f"entity is deleted or does not exist: {row.get('Id')}")
                old_stage = rec.get("StageName")
                rec.update(self._fields_ok(odef, {k: v for k, v in row.items() if k != "Id"}))
                self._derive(odef.name, rec, stamp, old_stage)
                for k in ("LastModifiedDate", "SystemModstamp"):
                    if k in rec:
                        rec[k] = stamp
                if "LastModifiedById" in rec:
                    rec["LastModifiedById"] = self.integration_user
                ids.append(rid)
        return ids

    def delete(self, obj: str, record_ids: Sequence[str], at: str | datetime | None = None) -> list[str]:
        """Move records to the recycle bin (IsDeleted = true, in the delete log)."""
        odef = self.object_def(obj)
        stamp = self._stamp(at)
        ids = []
        with self.lock:
            for raw in record_ids:
                rid = to18(raw)
                rec = self.tables[odef.name].get(rid)
                if rec is None or rec.get("IsDeleted"):
                    raise ApiError(404, "ENTITY_IS_DELETED" if rec else "NOT_FOUND",
                                   f"entity is deleted or does not exist: {raw}")
                rec["IsDeleted"] = True
                for k in ("LastModifiedDate", "SystemModstamp"):
                    if k in rec:
                        rec[k] = stamp
                self.data.deleted_log.setdefault(odef.name, []).append((rid, stamp))
                ids.append(rid)
                if odef.name == "ContentDocument":     # as Salesforce: its versions and links go with it
                    for child, field in (("ContentVersion", "ContentDocumentId"), ("ContentDocumentLink",
                                                                                   "ContentDocumentId")):
                        for crec in self.tables[child].values():
                            if crec.get(field) == rid and not crec.get("IsDeleted"):
                                crec["IsDeleted"] = True
                                for k in ("LastModifiedDate", "SystemModstamp"):
                                    if k in crec:
                                        crec[k] = stamp
                                self.data.deleted_log.setdefault(child, []).append((crec["Id"], stamp))
        return ids

    def undelete(self, obj: str, record_ids: Sequence[str], at: str | datetime | None = None) -> list[str]:
        """Restore records from the recycle bin."""
        odef = self.object_def(obj)
        stamp = self._stamp(at)
        with self.lock:
            out = []
            for raw in record_ids:
                rid = to18(raw)
                rec = self.tables[odef.name].get(rid)
                if rec is None or not rec.get("IsDeleted"):
                    raise ApiError(404, "NOT_FOUND", f"entity is not in the recycle bin: {raw}")
                rec["IsDeleted"] = False
                for k in ("LastModifiedDate", "SystemModstamp"):
                    if k in rec:
                        rec[k] = stamp
                out.append(rid)
            return out

    def mutate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{"creates": {obj: [rows]}, "updates": {obj: [rows with Id]}, "deletes": {obj: [ids]},
        "undeletes": {obj: [ids]}, "timestamp": optional}``; return the ids touched per kind and object."""
        at = payload.get("timestamp")
        out: dict[str, dict[str, list[str]]] = {"created": {}, "updated": {}, "deleted": {}, "undeleted": {}}
        with self.lock:
            for obj, rows in (payload.get("creates") or {}).items():
                blobs = [base64.b64decode(r["_blob_base64"]) if r.get("_blob_base64") is not None else None for r in rows]
                clean = [{k: v for k, v in r.items() if k != "_blob_base64"} for r in rows]
                out["created"][obj] = self.create(obj, clean, at, blobs)
            for obj, rows in (payload.get("updates") or {}).items():
                out["updated"][obj] = self.update(obj, rows, at)
            for obj, ids in (payload.get("deletes") or {}).items():
                out["deleted"][obj] = self.delete(obj, ids, at)
            for obj, ids in (payload.get("undeletes") or {}).items():
                out["undeleted"][obj] = self.undelete(obj, ids, at)
        return out

    # ---------------------------------------------------------------------------------- info
    def credentials(self, url: str = "") -> dict[str, Any]:
        username, (password, token) = next(iter(self.users.items()))
        return {"instance_url": self.instance_url or url, "token_url": f"{self.instance_url or url}/services/oauth2/token",
                "client_id": self.client_id, "client_secret": self.client_secret, "username": username,
                "password": password, "security_token": token,
                "jwt_note": "JWT bearer: iss = client_id, sub = an active user's Username; signature not verified"}

    def airflow_conn(self, url: str = "", auth: str = "client_credentials", api_version: str = "60.0") -> dict[str, Any]:
        """The ``apto_default`` connection (DESIGN.md contract) for this sandbox, as ``AIRFLOW_CONN_*`` JSON.

        ``auth``: ``client_credentials`` or ``password`` (JWT needs a private key; the sandbox accepts any).
        """
        base = self.instance_url or url
        if auth == "client_credentials":
            return {"conn_type": "apto", "host": base, "login": self.client_id, "password": self.client_secret,
                    "extra": {"auth": "client_credentials", "api_version": api_version}}
        if auth == "password":
            username, (password, token) = next(iter(self.users.items()))
            return {"conn_type": "apto", "host": base, "login": username, "password": password,
                    "extra": {"auth": "password", "client_id": self.client_id, "client_secret": self.client_secret,
                              "security_token": token, "api_version": api_version}}
        raise ValueError(f"auth must be client_credentials or password, not {auth!r}")

    def info(self, url: str = "") -> dict[str, Any]:
        return {"namespace": self.namespace, "scale": self.scale, "seed": self.seed, "org_id": self.data.org_id,
                "as_of": format_datetime(self.data.as_of), "counts": self.data.counts(),
                "deleted": {k: len(v) for k, v in self.data.deleted_log.items()},
                "record_types": {rt["Id"]: rt["Name"] for rt in self.data.record_types},
                "pipelines": self.data.pipelines, "hard_cases": self.data.hard_cases,
                "credentials": self.credentials(url)}


def _batch(size: int | None) -> int:
    if size is None:
        return 2000
    return max(200, min(2000, int(size)))


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict) or "sub" not in claims:
        return None
    return claims


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


__all__ = ["AptoOrg", "ApiError", "Fault", "is_id"]
