"""MigrationStateHook: the state database (crosswalk, runs, watermarks, staging, audit, manifest, dead letters).

Every write API is batch-shaped: one statement per batch, rows passed as one JSON document and
expanded server-side with ``jsonb_to_recordset``. "Record one loaded batch" (crosswalk + audit +
rollback manifest + dead letters) is a single statement in a single transaction, retried as a whole
on a deadlock or serialization failure, so two workers recording overlapping batches leave exactly
one crosswalk row per key and nothing half-written.

Works with psycopg2 and psycopg 3 (whichever ``PostgresHook`` picks).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any, NamedTuple, TypedDict

from airflow.providers.postgres.hooks.postgres import PostgresHook

from crm_migration.errors import StateDBError

SCHEMA = "crm_migration"
_LOCK_KEY = 0x43524D4D  # advisory lock id for schema migrations ("CRMM")
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


class Link(TypedDict, total=False):
    """One crosswalk row: a source id bound to an Odoo id, with what was last written to it."""

    source_id: str
    odoo_id: int
    content_hash: str | None
    written: Mapping[str, Any] | None  # merged into the stored values (only the fields written now)
    source_hash: str                   # the source version that landed ('' forgets it; absent: kept as is)
    source_object: str                 # optional on every row type: the batch's source object by default
    odoo_model: str                    # optional on every row type: the batch's model by default


class Bound(NamedTuple):
    """What the crosswalk knows of one source record."""

    odoo_id: int
    content_hash: str | None
    written: dict[str, Any]
    odoo_model: str | None = None


class AuditRow(TypedDict, total=False):
    source_id: str | None
    odoo_id: int | None
    action: str  # create | update | skip | archive | error | adopt | conflict | unlink | restore | schema
    changes: Mapping[str, Any] | None
    message: str | None
    source_object: str
    odoo_model: str


class ManifestRow(TypedDict, total=False):
    source_id: str | None
    odoo_id: int
    action: str  # created | updated | archived | deleted
    prior_values: Mapping[str, Any] | None
    new_values: Mapping[str, Any] | None
    source_object: str
    odoo_model: str


class DeadLetter(TypedDict, total=False):
    source_id: str
    field: str | None
    reason: str
    record: Mapping[str, Any] | None
    source_object: str


def _json(rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), default=str, ensure_ascii=False, separators=(",", ":"))


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def migration_files() -> list[tuple[str, str, str]]:
    """Return ``(version, name, sql)`` for every ``include/sql/NNNN_name.sql``, in order."""
    folder = resources.files("crm_migration") / "sql"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            version, _, rest = entry.name.partition("_")
            out.append((version, rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    if not out:
        raise StateDBError(f"no schema migrations found in {folder}")
    return out


# --- statements (one per batch) -------------------------------------------------------------------

_RECORD_BATCH = f"""
WITH cw AS (
    INSERT INTO {SCHEMA}.crosswalk AS c
           (pair, source_object, source_id, odoo_model, odoo_id, content_hash, written, run_id, source_hash)
    SELECT %(pair)s, COALESCE(t.source_object, %(obj)s), t.source_id, COALESCE(t.odoo_model, %(model)s), t.odoo_id,
           t.content_hash, t.written, %(run)s, t.source_hash
    FROM jsonb_to_recordset(%(links)s::jsonb)
         AS t(source_object text, source_id text, odoo_model text, odoo_id bigint, content_hash text, written jsonb,
              source_hash text)
    ORDER BY 2, t.source_id
    ON CONFLICT (pair, source_object, source_id) DO UPDATE
       SET content_hash = CASE WHEN c.odoo_model = EXCLUDED.odoo_model
                               THEN COALESCE(EXCLUDED.content_hash, c.content_hash) ELSE EXCLUDED.content_hash END,
           source_hash = COALESCE(EXCLUDED.source_hash, c.source_hash),
           written = CASE WHEN c.odoo_model = EXCLUDED.odoo_model THEN COALESCE(c.written, '{{}}'::jsonb) ELSE '{{}}'::jsonb END
                     || COALESCE(EXCLUDED.written, '{{}}'::jsonb),
           odoo_id = EXCLUDED.odoo_id, odoo_model = EXCLUDED.odoo_model, run_id = EXCLUDED.run_id, updated_at = now()
    RETURNING 1
), au AS (
    INSERT INTO {SCHEMA}.audit_log (run_id, pair, source_object, source_id, odoo_model, odoo_id, action, changes, message)
    SELECT %(run)s, %(pair)s, COALESCE(t.source_object, %(obj)s), t.source_id, COALESCE(t.odoo_model, %(model)s),
           t.odoo_id, t.action, t.changes, t.message
    FROM jsonb_to_recordset(%(audit)s::jsonb)
         AS t(source_object text, source_id text, odoo_model text, odoo_id bigint, action text, changes jsonb,
              message text)
    RETURNING 1
), mf AS (
    INSERT INTO {SCHEMA}.rollback_manifest AS m
           (run_id, pair, source_object, source_id, odoo_model, odoo_id, action, prior_values, new_values)
    SELECT %(run)s, %(pair)s, COALESCE(t.source_object, %(obj)s), t.source_id, COALESCE(t.odoo_model, %(model)s),
           t.odoo_id, t.action, t.prior_values, t.new_values
    FROM jsonb_to_recordset(%(manifest)s::jsonb)
         AS t(source_object text, source_id text, odoo_model text, odoo_id bigint, action text, prior_values jsonb,
              new_values jsonb)
    ORDER BY 5, t.odoo_id
    ON CONFLICT (run_id, odoo_model, odoo_id) DO UPDATE
       SET new_values = COALESCE(m.new_values, '{{}}'::jsonb) || COALESCE(EXCLUDED.new_values, '{{}}'::jsonb),
           prior_values = COALESCE(EXCLUDED.prior_values, '{{}}'::jsonb) || COALESCE(m.prior_values, '{{}}'::jsonb),
           action = CASE WHEN m.action = 'created' THEN m.action      -- created and removed by one run: gone
                         WHEN EXCLUDED.action = 'deleted' THEN EXCLUDED.action ELSE m.action END,
           recorded_at = now()
    RETURNING 1
), dl AS (
    INSERT INTO {SCHEMA}.dead_letter AS d (run_id, pair, source_object, source_id, odoo_model, field, reason, record)
    SELECT %(run)s, %(pair)s, COALESCE(t.source_object, %(obj)s), t.source_id, %(model)s, t.field, t.reason, t.record
    FROM jsonb_to_recordset(%(dead)s::jsonb)
         AS t(source_object text, source_id text, field text, reason text, record jsonb)
    ORDER BY 3, t.source_id
    ON CONFLICT (run_id, pair, source_object, source_id) DO UPDATE
       SET field = EXCLUDED.field, reason = EXCLUDED.reason, record = EXCLUDED.record,
           attempts = d.attempts + 1, updated_at = now(), resolved_at = NULL, resolved_run_id = NULL,
           resolution = NULL
    RETURNING 1
), st AS (
    UPDATE {SCHEMA}.crosswalk c SET source_hash = t.source_hash
    FROM jsonb_to_recordset(%(stamps)s::jsonb) AS t(source_object text, source_id text, source_hash text)
    WHERE c.pair = %(pair)s AND c.source_object = COALESCE(t.source_object, %(obj)s) AND c.source_id = t.source_id
      AND c.source_hash IS DISTINCT FROM t.source_hash
    RETURNING 1
), done AS (
    SELECT COALESCE(t.source_object, %(obj)s) AS obj, t.source_id
    FROM jsonb_to_recordset(%(links)s::jsonb) AS t(source_object text, source_id text)
), pd AS (
    DELETE FROM {SCHEMA}.pending
    WHERE pair = %(pair)s
      AND (source_object, source_id) IN (
          SELECT obj, source_id FROM done
          UNION ALL
          SELECT COALESCE(t.source_object, %(obj)s), t.source_id
          FROM jsonb_to_recordset(%(dead)s::jsonb) AS t(source_object text, source_id text))
    RETURNING 1
), rs AS (
    UPDATE {SCHEMA}.dead_letter SET resolved_at = now(), resolved_run_id = %(run)s, resolution = 'landed'
    WHERE pair = %(pair)s AND resolved_at IS NULL AND (source_object, source_id) IN (SELECT obj, source_id FROM done)
    RETURNING 1
)
SELECT (SELECT count(*) FROM cw), (SELECT count(*) FROM au), (SELECT count(*) FROM mf),
       (SELECT count(*) FROM dl), (SELECT count(*) FROM rs), (SELECT count(*) FROM pd), (SELECT count(*) FROM st)
"""

_RECORD_ROLLBACK = f"""
WITH mf AS (
    UPDATE {SCHEMA}.rollback_manifest m SET rolled_back_at = now(), recreated_id = COALESCE(t.new_id, m.recreated_id)
    FROM (SELECT DISTINCT d.id, mv.new_id FROM unnest(%(done)s::bigint[]) AS d(id)
          LEFT JOIN jsonb_to_recordset(%(moved)s::jsonb) AS mv(old_id bigint, new_id bigint) ON mv.old_id = d.id) t
    WHERE m.run_id = %(run)s AND m.odoo_model = %(model)s AND m.odoo_id = t.id AND m.rolled_back_at IS NULL
    RETURNING 1
), fg AS (
    DELETE FROM {SCHEMA}.crosswalk WHERE odoo_model = %(model)s AND odoo_id = ANY(%(forget)s::bigint[])
    RETURNING pair, source_object, source_id
), rs AS (
    UPDATE {SCHEMA}.crosswalk c SET content_hash = NULL, source_hash = NULL, updated_at = now(),
           written = COALESCE(c.written, '{{}}'::jsonb) || t.prior
    FROM jsonb_to_recordset(%(restored)s::jsonb) AS t(odoo_id bigint, prior jsonb)
    WHERE c.odoo_model = %(model)s AND c.odoo_id = t.odoo_id
    RETURNING c.pair, c.source_object, c.source_id
), ro AS (
    -- a dead letter this run closed by landing its record: what it landed is undone, so it is open again
    UPDATE {SCHEMA}.dead_letter d SET resolved_at = NULL, resolved_run_id = NULL, resolution = NULL, updated_at = now()
    FROM (SELECT * FROM fg UNION SELECT * FROM rs) u
    WHERE d.pair = u.pair AND d.source_object = u.source_object AND d.source_id = u.source_id
      AND d.resolved_run_id = %(run)s AND d.resolution = 'landed'
    RETURNING 1
), rc AS (
    INSERT INTO {SCHEMA}.crosswalk AS c (pair, source_object, source_id, odoo_model, odoo_id, content_hash, written, run_id)
    SELECT %(pair)s, t.source_object, t.source_id, %(model)s, t.odoo_id, NULL, t.written, %(run)s
    FROM jsonb_to_recordset(%(recreated)s::jsonb) AS t(source_object text, source_id text, odoo_id bigint, written jsonb)
    ORDER BY t.source_object, t.source_id
    ON CONFLICT (pair, source_object, source_id) DO UPDATE
       SET odoo_model = EXCLUDED.odoo_model, odoo_id = EXCLUDED.odoo_id, content_hash = NULL, source_hash = NULL,
           written = EXCLUDED.written, run_id = EXCLUDED.run_id, updated_at = now()
    RETURNING 1
), au AS (
    INSERT INTO {SCHEMA}.audit_log (run_id, pair, source_object, source_id, odoo_model, odoo_id, action, changes, message)
    SELECT %(run)s, %(pair)s, t.source_object, t.source_id, %(model)s, t.odoo_id, t.action, t.changes, t.message
    FROM jsonb_to_recordset(%(audit)s::jsonb)
         AS t(source_object text, source_id text, odoo_id bigint, action text, changes jsonb, message text)
    RETURNING 1
)
SELECT (SELECT count(*) FROM mf), (SELECT count(*) FROM fg), (SELECT count(*) FROM rs), (SELECT count(*) FROM au),
       (SELECT count(*) FROM rc), (SELECT count(*) FROM ro)
"""

_LOOKUP = f"""
SELECT source_id, odoo_id, content_hash, written, odoo_model FROM {SCHEMA}.crosswalk
WHERE pair = %s AND source_object = %s AND source_id = ANY(%s)
"""

_LOOKUP_AND_CLAIM = f"""
WITH ids AS (SELECT DISTINCT unnest(%(ids)s::text[]) AS sid),
cw AS (
    SELECT source_id, odoo_id, content_hash, written, odoo_model FROM {SCHEMA}.crosswalk
    WHERE pair = %(pair)s AND source_object = %(obj)s AND source_id = ANY(%(ids)s::text[])
), new_ids AS (
    SELECT sid FROM ids WHERE sid NOT IN (SELECT source_id FROM cw)
), claimed AS (
    INSERT INTO {SCHEMA}.pending (pair, source_object, source_id, run_id)
    SELECT %(pair)s, %(obj)s, sid, %(run)s FROM new_ids ORDER BY sid
    ON CONFLICT (pair, source_object, source_id) DO NOTHING
    RETURNING source_id
)
SELECT source_id, odoo_id, content_hash, written, odoo_model FROM cw
UNION ALL
SELECT sid, NULL, NULL, NULL, NULL FROM new_ids WHERE sid NOT IN (SELECT source_id FROM claimed)
"""

_STAGE = f"""
INSERT INTO {SCHEMA}.staging AS s (run_id, pair, source_object, source_id, batch_no, record, deleted, source_hash)
SELECT %(run)s, %(pair)s, %(obj)s, t.source_id, COALESCE(t.batch_no, %(batch)s), t.record, COALESCE(t.deleted, false),
       md5((t.record - %(volatile)s::text[])::text)
FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(source_id text, batch_no integer, record jsonb, deleted boolean)
ORDER BY t.source_id
ON CONFLICT (run_id, pair, source_object, source_id) DO UPDATE
   SET record = EXCLUDED.record, deleted = EXCLUDED.deleted, batch_no = EXCLUDED.batch_no, extracted_at = now(),
       source_hash = EXCLUDED.source_hash
"""

#: a staged row whose source version is the one that landed under the same mapping: ``(unchanged)``. An open
#: dead letter, a deletion, or a crosswalk entry without a source hash (a rollback wrote it back, a flagged
#: row) is not unchanged.
_UNCHANGED = f"""(s.source_hash IS NOT NULL AND NOT s.deleted AND c.source_hash = %(fp)s || ':' || s.source_hash
     AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.dead_letter d WHERE d.pair = s.pair AND d.source_object = c.source_object
                     AND d.source_id = s.source_id AND d.resolved_at IS NULL))"""


class MigrationStateHook(PostgresHook):
    """Read and write the migration state in PostgreSQL (schema ``crm_migration``).

    :param postgres_conn_id: connection id of the state database (default ``crm_migration_state``).
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "crm_migration_state"
    conn_type = "postgres"
    hook_name = "CRM migration state (PostgreSQL)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("postgres_conn_id", self.default_conn_name)
        super().__init__(*args, **kwargs)
        self._state_conn: Any = None
        self.round_trips = 0  # statements + commits sent, for benchmarks

    # --- connection and transactions ------------------------------------------------------------

    @property
    def state_conn(self) -> Any:
        """One cached connection per hook instance (a hook is not shared between threads).

        It runs in autocommit mode: every write API is one statement, atomic on its own, so a
        batch costs one round trip instead of three (BEGIN, statement, COMMIT).
        """
        if self._state_conn is None or getattr(self._state_conn, "closed", False):
            self._state_conn = self.get_conn()
            self._state_conn.autocommit = True
        return self._state_conn

    def close(self) -> None:
        if self._state_conn is not None:
            self._state_conn.close()
            self._state_conn = None

    def _execute(self, cur: Any, sql: str, params: Any = None) -> None:
        cur.execute(sql, params)
        self.round_trips += 1

    def run_in_transaction(self, fn: Any, *, atomic: bool = False, retries: int = 5) -> Any:
        """Run ``fn(cursor)``; retried as a whole on a deadlock or serialization failure.

        :param atomic: wrap several statements in one transaction (committed on success, rolled back
            on error). Without it each statement commits on its own, which is right for the
            single-statement operations of this hook.
        """
        last: BaseException | None = None
        for attempt in range(retries + 1):
            conn = self.state_conn
            if atomic:
                conn.autocommit = False
            cur = conn.cursor()
            try:
                result = fn(cur)
                if atomic:
                    conn.commit()
                    self.round_trips += 1
                return result
            except Exception as exc:
                if atomic:
                    conn.rollback()
                last = exc
                if _sqlstate(exc) in _RETRY_SQLSTATES and attempt < retries:
                    self.log.info("state DB %s, retrying (%d/%d)", _sqlstate(exc), attempt + 1, retries)
                    time.sleep(0.05 * (2**attempt))
                    continue
                raise
            finally:
                cur.close()
                if atomic:
                    conn.autocommit = True
        raise StateDBError(f"state DB operation failed after {retries} retries: {last}")

    # --- schema ---------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Create or upgrade the state schema; return the versions applied now (empty when current).

        Safe to run concurrently and repeatedly: an advisory lock serialises callers and each
        migration is recorded in ``crm_migration.schema_migrations`` with its checksum.
        """
        files = migration_files()

        def apply(cur: Any) -> list[str]:
            self._execute(cur, "SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            self._execute(cur, f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            self._execute(cur, f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (
                version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            self._execute(cur, f"SELECT version, checksum FROM {SCHEMA}.schema_migrations")
            done = dict(cur.fetchall())
            applied = []
            for version, name, sql in files:
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        self.log.warning("state schema migration %s_%s changed since it was applied; "
                                         "migrations are append-only, add a new one instead", version, name)
                    continue
                self._execute(cur, sql)
                self._execute(cur, f"INSERT INTO {SCHEMA}.schema_migrations (version, name, checksum) "
                                   "VALUES (%s, %s, %s)", (version, name, checksum))
                applied.append(f"{version}_{name}")
            return applied

        applied = self.run_in_transaction(apply, atomic=True)
        if applied:
            self.log.info("state schema: applied %s", ", ".join(applied))
        else:
            self.log.info("state schema is current (%s)", files[-1][0])
        return applied

    def schema_version(self) -> str | None:
        def q(cur: Any) -> str | None:
            self._execute(cur, "SELECT to_regclass(%s)", (f"{SCHEMA}.schema_migrations",))
            if cur.fetchone()[0] is None:
                return None
            self._execute(cur, f"SELECT max(version) FROM {SCHEMA}.schema_migrations")
            return cur.fetchone()[0]

        return self.run_in_transaction(q)

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, run_id: str, *, pair: str, dag_id: str, kind: str, mode: str | None = None,
                  params: Mapping[str, Any] | None = None, mapping_sha256: str | None = None) -> dict[str, Any]:
        """Register a run (idempotent: a retried task finds the row it wrote before).

        :param mapping_sha256: the sha256 of the mapping file the run runs with (kept from the first attempt).
        """
        def q(cur: Any) -> dict[str, Any]:
            self._execute(cur, f"""
                INSERT INTO {SCHEMA}.runs (run_id, pair, dag_id, kind, mode, params, mapping_sha256)
                VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)
                ON CONFLICT (run_id) DO UPDATE SET status = CASE WHEN {SCHEMA}.runs.status = 'running'
                    THEN 'running' ELSE {SCHEMA}.runs.status END,
                    mapping_sha256 = COALESCE({SCHEMA}.runs.mapping_sha256, EXCLUDED.mapping_sha256)
                RETURNING run_id, pair, dag_id, kind, mode, params, status, approved_by, started_at, mapping_sha256""",
                (run_id, pair, dag_id, kind, mode, json.dumps(dict(params or {}), default=str), mapping_sha256))
            return self._row(cur)

        return self.run_in_transaction(q)

    def approve_run(self, run_id: str, approved_by: str) -> None:
        def q(cur: Any) -> None:
            self._execute(cur, f"UPDATE {SCHEMA}.runs SET approved_by = %s, approved_at = now() WHERE run_id = %s",
                          (approved_by, run_id))
            if cur.rowcount != 1:
                raise StateDBError(f"run {run_id!r} is not registered in the state DB")

        self.run_in_transaction(q)

    # --- approvals and the confirmation of the mapping in force -------------------------------------

    def record_approval(self, *, run_id: str, pair: str, what: str, decision: str, decided_by: str, how: str,
                        task_id: str | None = None, decided_by_id: str | None = None, report: str | None = None,
                        mapping_sha256: str | None = None) -> dict[str, Any]:
        """Record one decision at an approval step (``how``: ``person`` or ``approved_by``), in one statement; an
        approval also becomes the run's ``approved_by`` (``<who> (<what>)``) when the run is registered."""
        def q(cur: Any) -> dict[str, Any]:
            self._execute(cur, f"""
                WITH a AS (
                    INSERT INTO {SCHEMA}.approvals (run_id, pair, task_id, what, decision, decided_by, decided_by_id,
                                                    how, report, mapping_sha256)
                    VALUES (%(run)s, %(pair)s, %(task)s, %(what)s, %(decision)s, %(by)s, %(by_id)s, %(how)s,
                            %(report)s, %(sha)s)
                    RETURNING *
                ), r AS (
                    UPDATE {SCHEMA}.runs SET approved_by = %(by)s || ' (' || %(what)s || ')', approved_at = now()
                    WHERE run_id = %(run)s AND %(decision)s = 'approved'
                    RETURNING 1
                )
                SELECT a.*, (SELECT count(*) FROM r) AS run_updated FROM a""",
                {"run": run_id, "pair": pair, "task": task_id, "what": what, "decision": decision, "by": decided_by,
                 "by_id": decided_by_id, "how": how, "report": report, "sha": mapping_sha256})
            return self._row(cur)

        return self.run_in_transaction(q)

    def approvals(self, run_id: str) -> list[dict[str, Any]]:
        """The decisions taken at the run's approval steps, oldest first."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"SELECT * FROM {SCHEMA}.approvals WHERE run_id = %s ORDER BY decided_at, id",
                          (run_id,))
            return self._rows(cur)

        return self.run_in_transaction(q)

    def confirm_mapping(self, *, pair: str, mapping_sha256: str, mapping_file: str, mapping_text: str,
                        confirmed_by: str, how: str, confirmed_by_id: str | None = None, run_id: str | None = None,
                        report: str | None = None) -> dict[str, Any]:
        """Record that ``confirmed_by`` confirmed the mapping file whose bytes hash to ``mapping_sha256`` (with a
        snapshot of it); ``how``: ``person`` (the plan's confirm step) or ``approved_by`` (a scripted run)."""
        def q(cur: Any) -> dict[str, Any]:
            self._execute(cur, f"""
                INSERT INTO {SCHEMA}.mapping_confirmations (pair, mapping_sha256, mapping_file, mapping_text,
                                                            confirmed_by, confirmed_by_id, how, run_id, report)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
                (pair, mapping_sha256, mapping_file, mapping_text, confirmed_by, confirmed_by_id, how, run_id,
                 report))
            return self._row(cur)

        return self.run_in_transaction(q)

    def mapping_confirmation(self, pair: str, mapping_sha256: str) -> dict[str, Any] | None:
        """The latest confirmation of that mapping (who, when, how, snapshot), or None."""
        def q(cur: Any) -> dict[str, Any] | None:
            self._execute(cur, f"SELECT * FROM {SCHEMA}.mapping_confirmations WHERE pair = %s AND mapping_sha256 = %s "
                               "ORDER BY confirmed_at DESC, id DESC LIMIT 1", (pair, mapping_sha256))
            return self._row(cur)

        return self.run_in_transaction(q)

    def approved_sample(self, pair: str, mapping_sha256: str) -> dict[str, Any] | None:
        """The latest sample run of ``pair`` that ran with that mapping and whose diff was approved: ``run_id``,
        ``report`` (its diff report), ``decided_by``, ``how``, ``decided_at``; or None."""
        def q(cur: Any) -> dict[str, Any] | None:
            self._execute(cur, f"""
                SELECT r.run_id, r.stats->>'report' AS report, a.decided_by, a.how, a.decided_at
                FROM {SCHEMA}.runs r JOIN {SCHEMA}.approvals a
                  ON a.run_id = r.run_id AND a.what = 'sample_diff' AND a.decision = 'approved'
                WHERE r.pair = %s AND r.kind = 'migrate' AND r.mode = 'sample' AND r.mapping_sha256 = %s
                ORDER BY r.started_at DESC, a.decided_at DESC LIMIT 1""", (pair, mapping_sha256))
            return self._row(cur)

        return self.run_in_transaction(q)

    def previous_run_mapping(self, pair: str, run_id: str) -> dict[str, Any] | None:
        """The migrate run of ``pair`` before ``run_id`` (the latest other one that recorded its mapping) with its
        mapping's confirmed snapshot: ``run_id``, ``mode``, ``mapping_sha256``, ``mapping_text`` (None when that
        mapping was never confirmed); or None."""
        def q(cur: Any) -> dict[str, Any] | None:
            self._execute(cur, f"""
                SELECT r.run_id, r.mode, r.mapping_sha256,
                       (SELECT c.mapping_text FROM {SCHEMA}.mapping_confirmations c
                        WHERE c.pair = r.pair AND c.mapping_sha256 = r.mapping_sha256
                        ORDER BY c.confirmed_at DESC LIMIT 1) AS mapping_text
                FROM {SCHEMA}.runs r
                WHERE r.pair = %(pair)s AND r.kind = 'migrate' AND r.run_id <> %(run)s AND r.mapping_sha256 IS NOT NULL
                  AND r.started_at <= COALESCE((SELECT started_at FROM {SCHEMA}.runs WHERE run_id = %(run)s), now())
                ORDER BY r.started_at DESC LIMIT 1""", {"pair": pair, "run": run_id})
            return self._row(cur)

        return self.run_in_transaction(q)

    def manifest_counts(self, run_id: str) -> dict[str, int]:
        """``{action: records}`` of the run's manifest rows not rolled back yet (what its rollback would undo)."""
        def q(cur: Any) -> dict[str, int]:
            self._execute(cur, f"SELECT action, count(*) FROM {SCHEMA}.rollback_manifest WHERE run_id = %s "
                               "AND rolled_back_at IS NULL GROUP BY action", (run_id,))
            return {a: int(n) for a, n in cur.fetchall()}

        return self.run_in_transaction(q)

    def finish_run(self, run_id: str, *, status: str, stats: Mapping[str, Any] | None = None) -> None:
        def q(cur: Any) -> None:
            self._execute(cur, f"""UPDATE {SCHEMA}.runs SET status = %s, finished_at = now(),
                                   stats = stats || %s::jsonb WHERE run_id = %s""",
                          (status, json.dumps(dict(stats or {}), default=str), run_id))

        self.run_in_transaction(q)

    def update_run_stats(self, run_id: str, stats: Mapping[str, Any]) -> None:
        """Merge ``stats`` into the run's stats (what later tasks of the run read back)."""
        def q(cur: Any) -> None:
            self._execute(cur, f"UPDATE {SCHEMA}.runs SET stats = stats || %s::jsonb WHERE run_id = %s",
                          (json.dumps(dict(stats), default=str), run_id))

        self.run_in_transaction(q)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        def q(cur: Any) -> dict[str, Any] | None:
            self._execute(cur, f"SELECT * FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,))
            return self._row(cur)

        return self.run_in_transaction(q)

    # --- crosswalk ------------------------------------------------------------------------------

    def lookup(self, pair: str, source_object: str, source_ids: Collection[str]) -> dict[str, Bound]:
        """Return ``{source_id: Bound}`` for the ids already bound (one query)."""
        if not source_ids:
            return {}

        def q(cur: Any) -> dict[str, Bound]:
            self._execute(cur, _LOOKUP, (pair, source_object, list(source_ids)))
            return {sid: Bound(oid, h, _as_obj(w) or {}, m) for sid, oid, h, w, m in cur.fetchall()}

        return self.run_in_transaction(q)

    def lookup_and_claim(self, pair: str, source_object: str, source_ids: Collection[str], *,
                         run_id: str) -> tuple[dict[str, Bound], set[str]]:
        """Look up the crosswalk and claim the unknown ids for creation, in one statement.

        :return: ``(bound, maybe_landed)``: what the crosswalk knows, and the unknown ids that an
            earlier attempt had already claimed without recording them: those may have landed in
            Odoo before a crash and must be looked up there by key before anything is created.
        """
        if not source_ids:
            return {}, set()

        def q(cur: Any) -> tuple[dict[str, Bound], set[str]]:
            self._execute(cur, _LOOKUP_AND_CLAIM, {"pair": pair, "obj": source_object, "run": run_id,
                                                   "ids": list(source_ids)})
            bound, maybe = {}, set()
            for sid, oid, h, w, m in cur.fetchall():
                if oid is None:
                    maybe.add(sid)
                else:
                    bound[sid] = Bound(oid, h, _as_obj(w) or {}, m)
            return bound, maybe

        return self.run_in_transaction(q)

    def odoo_ids(self, pair: str, source_object: str, source_ids: Collection[str]) -> dict[str, int]:
        """Return ``{source_id: odoo_id}`` for the ids already bound."""
        return {k: v.odoo_id for k, v in self.lookup(pair, source_object, source_ids).items()}

    def record_batch(self, *, run_id: str, pair: str, source_object: str, odoo_model: str,
                     links: Sequence[Link] = (), audit: Sequence[AuditRow] = (),
                     manifest: Sequence[ManifestRow] = (), dead_letters: Sequence[DeadLetter] = (),
                     stamps: Sequence[Mapping[str, Any]] = ()) -> dict[str, int]:
        """Record one loaded batch atomically: crosswalk + audit + rollback manifest + dead letters.

        One statement (one round trip); all of it lands or none of it does. Duplicate keys within
        the batch keep the last row. Returns the row counts written per table.

        :param stamps: ``{source_id, source_hash, source_object?}`` of records found unchanged in Odoo: only
            their crosswalk ``source_hash`` is set (the source version now known to be the one Odoo holds).
        """
        dedup_links = list({(lk.get("source_object"), lk["source_id"]): lk for lk in links}.values())
        dedup_manifest = list({(m.get("odoo_model"), m["odoo_id"]): m for m in manifest}.values())
        dedup_dead = list({(d.get("source_object"), d["source_id"]): d for d in dead_letters}.values())
        params = {
            "run": run_id, "pair": pair, "obj": source_object, "model": odoo_model,
            "links": _json(dedup_links), "audit": _json(audit),
            "manifest": _json(dedup_manifest), "dead": _json(dedup_dead), "stamps": _json(stamps),
        }

        def q(cur: Any) -> dict[str, int]:
            self._execute(cur, _RECORD_BATCH, params)
            cw, au, mf, dl, rs, pd, st = cur.fetchone()
            return {"crosswalk": cw, "audit": au, "manifest": mf, "dead_letter": dl, "resolved": rs, "pending": pd,
                    "stamped": st}

        return self.run_in_transaction(q)

    # --- staging --------------------------------------------------------------------------------

    def stage(self, *, run_id: str, pair: str, source_object: str, batch_no: int,
              rows: Sequence[Mapping[str, Any]], volatile: Sequence[str] = ()) -> int:
        """Store one extracted batch (``rows`` of ``{source_id, record, deleted?, batch_no?}``; a row's own
        ``batch_no`` wins over the argument); idempotent. Each row's ``source_hash`` is an md5 of its record
        but the ``volatile`` keys (a file's signed URL): what a rerun compares with the crosswalk."""
        if not rows:
            return 0
        params = {"run": run_id, "pair": pair, "obj": source_object, "batch": batch_no, "rows": _json(rows),
                  "volatile": list(volatile)}

        def q(cur: Any) -> int:
            self._execute(cur, _STAGE, params)
            return cur.rowcount

        return self.run_in_transaction(q)

    def landed_as_listed(self, *, run_id: str, pair: str, source_object: str, scope: str, fields: Sequence[str],
                         listed: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The ids of ``listed`` (``{source id: the record as an id-only listing gives it}``: its key, modification
        stamp and parents' fields) whose record staged by the run that last wrote its crosswalk row is still the
        source's: it holds the listed values (``@>``) and every one of ``fields`` (the stream's, as read now). The
        load then tells, as for any staged row, whether that version landed under the mapping in force (nothing
        to do) or maps again (a flag a later run may clear, a dead letter, a new mapping). One statement per 5,000
        ids (index probes per id); nothing written."""
        out: list[str] = []
        items = list(listed.items())
        for i in range(0, len(items), 5000):
            chunk = dict(items[i:i + 5000])

            def q(cur: Any, chunk: dict[str, Any] = chunk) -> list[str]:
                self._execute(cur, f"""SELECT l.source_id
                    FROM jsonb_each(%(listed)s::jsonb) AS l(source_id, probe)
                    JOIN {SCHEMA}.crosswalk c ON c.pair = %(pair)s AND c.source_object = %(scope)s
                                             AND c.source_id = l.source_id
                    JOIN {SCHEMA}.staging s ON s.run_id = c.run_id AND s.pair = c.pair AND s.source_object = %(obj)s
                                           AND s.source_id = l.source_id
                    WHERE c.run_id IS DISTINCT FROM %(run)s AND NOT s.deleted AND s.record @> l.probe
                      AND s.source_hash IS NOT NULL AND s.record ?& %(fields)s::text[]""",
                              {"listed": json.dumps(chunk, default=str, ensure_ascii=False), "pair": pair, "scope": scope, "obj": source_object,
                               "run": run_id, "fields": [f.split(".")[0] for f in fields]})
                return [r[0] for r in cur.fetchall()]

            out += self.run_in_transaction(q)
        return out

    def stage_landed(self, *, run_id: str, pair: str, source_object: str, scope: str, source_ids: Sequence[str],
                     first_batch: int, batch_size: int) -> list[dict[str, int]]:
        """Stage for ``run_id`` the records of ``source_ids`` as the run that last wrote their crosswalk row staged
        them (found by :meth:`landed_as_listed`: the source did not change since), in batches of ``batch_size``
        numbered from ``first_batch``, inside the database (no record leaves it). Returns ``[{batch_no, count}]``."""
        if not source_ids:
            return []

        def q(cur: Any) -> list[dict[str, int]]:
            self._execute(cur, f"""WITH copied AS (
                INSERT INTO {SCHEMA}.staging AS t (run_id, pair, source_object, source_id, batch_no, record, deleted,
                                                   source_hash)
                SELECT %(run)s, s.pair, s.source_object, s.source_id,
                       %(first)s + (row_number() OVER (ORDER BY s.source_id) - 1)::int / %(size)s, s.record, false,
                       s.source_hash
                FROM unnest(%(ids)s::text[]) AS l(source_id)
                JOIN {SCHEMA}.crosswalk c ON c.pair = %(pair)s AND c.source_object = %(scope)s
                                         AND c.source_id = l.source_id
                JOIN {SCHEMA}.staging s ON s.run_id = c.run_id AND s.pair = c.pair AND s.source_object = %(obj)s
                                       AND s.source_id = l.source_id
                ORDER BY s.source_id
                ON CONFLICT (run_id, pair, source_object, source_id) DO UPDATE
                   SET record = EXCLUDED.record, deleted = false, batch_no = EXCLUDED.batch_no, extracted_at = now(),
                       source_hash = EXCLUDED.source_hash
                RETURNING t.batch_no)
                SELECT batch_no, count(*) FROM copied GROUP BY batch_no ORDER BY batch_no""",
                          {"run": run_id, "pair": pair, "obj": source_object, "scope": scope,
                           "ids": sorted(source_ids), "first": first_batch, "size": batch_size})
            return [{"batch_no": b, "count": n} for b, n in cur.fetchall()]

        return self.run_in_transaction(q)

    def renumber_batches(self, *, run_id: str, pair: str, source_object: str, levels: Mapping[str, int],
                         batch_size: int) -> list[dict[str, int]]:
        """Number the run's staged batches of ``source_object`` again, parents first: every staged row (deleted or
        not) ordered by its level in ``levels`` (``{source id: level}``; a row not in it: level 0), then by source
        id, cut into batches of ``batch_size`` numbered from 0. A pure function of the staged ids and ``levels``
        (a rerun numbers them the same). Returns ``[{batch_no, count}]``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids = sorted(levels)

        def q(cur: Any) -> list[dict[str, int]]:
            self._execute(cur, f"""WITH ranked AS (
                SELECT s.source_id, (row_number() OVER (ORDER BY COALESCE(l.level, 0), s.source_id) - 1)::int
                                    / %(size)s AS batch_no
                FROM {SCHEMA}.staging s
                LEFT JOIN unnest(%(ids)s::text[], %(levels)s::int[]) AS l(source_id, level) ON l.source_id = s.source_id
                WHERE s.run_id = %(run)s AND s.pair = %(pair)s AND s.source_object = %(obj)s
            ), moved AS (
                UPDATE {SCHEMA}.staging s SET batch_no = r.batch_no FROM ranked r
                WHERE s.run_id = %(run)s AND s.pair = %(pair)s AND s.source_object = %(obj)s
                  AND s.source_id = r.source_id AND s.batch_no IS DISTINCT FROM r.batch_no
                RETURNING 1)
            SELECT batch_no, count(*), (SELECT count(*) FROM moved) FROM ranked GROUP BY batch_no ORDER BY batch_no""",
                          {"run": run_id, "pair": pair, "obj": source_object, "size": batch_size, "ids": ids,
                           "levels": [int(levels[i]) for i in ids]})
            return [{"batch_no": b, "count": n} for b, n, _moved in cur.fetchall()]

        return self.run_in_transaction(q)

    def staged_batches(self, *, run_id: str, pair: str, source_object: str) -> list[dict[str, int]]:
        """Return ``[{batch_no, count}]`` of what is staged for this run and object, in order."""
        def q(cur: Any) -> list[dict[str, int]]:
            self._execute(cur, f"""SELECT batch_no, count(*) FROM {SCHEMA}.staging
                                   WHERE run_id = %s AND pair = %s AND source_object = %s
                                   GROUP BY batch_no ORDER BY batch_no""", (run_id, pair, source_object))
            return [{"batch_no": b, "count": c} for b, c in cur.fetchall()]

        return self.run_in_transaction(q)

    def read_batch(self, *, run_id: str, pair: str, source_object: str, batch_no: int,
                   known: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Return the staged rows of one batch as ``{source_id, record, deleted, source_hash, unchanged}``, by
        source id.

        :param known: ``(crosswalk scope, mapping fingerprint)``: a row whose source version is the one that
            landed under that mapping is ``unchanged`` and comes without its record (nothing to map or fetch).
            ``source_hash`` is then ``<fingerprint>:<md5 of the staged record>``, what the load records.
        """
        scope, fp = known or ("", "")

        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"""SELECT s.source_id, CASE WHEN u THEN NULL ELSE s.record END, s.deleted,
                                          s.source_hash, u
                                   FROM {SCHEMA}.staging s
                                   LEFT JOIN LATERAL (      -- one index probe per staged row (LIMIT: not flattened)
                                       SELECT c.source_object, c.source_hash FROM {SCHEMA}.crosswalk c
                                       WHERE c.pair = s.pair AND c.source_object = %(scope)s
                                         AND c.source_id = s.source_id AND %(known)s LIMIT 1) c ON true
                                   CROSS JOIN LATERAL (SELECT COALESCE({_UNCHANGED}, false) AS u) k
                                   WHERE s.run_id = %(run)s AND s.pair = %(pair)s AND s.source_object = %(obj)s
                                     AND s.batch_no = %(batch)s
                                   ORDER BY s.source_id""",
                          {"scope": scope, "fp": fp, "known": known is not None, "run": run_id, "pair": pair,
                           "obj": source_object, "batch": batch_no})
            return [{"source_id": s, "record": _as_obj(r) if r is not None else None, "deleted": d,
                     "source_hash": f"{fp}:{h}" if known and h else None, "unchanged": bool(u)}
                    for s, r, d, h, u in cur.fetchall()]

        return self.run_in_transaction(q)

    def staged_children(self, *, pair: str, source_object: str, match: str, parent_ids: Collection[str],
                        run_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """``{parent id: [records]}`` of the staged ``source_object`` records whose ``match`` field names one of
        ``parent_ids`` (a contact's links): with ``run_id``, those staged in that run (a full read: all of
        them); without, each record's latest staged version over every run of the pair, deleted ones left out
        (a delta window holds only what changed). One query for the whole batch of parents."""
        wanted = sorted({str(p) for p in parent_ids})
        if not wanted:
            return {}
        if run_id is not None:
            sql = f"""SELECT record FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s AND source_object = %s
                      AND NOT deleted AND record->>%s = ANY(%s) ORDER BY source_id"""
            params: tuple[Any, ...] = (run_id, pair, source_object, match, wanted)
        else:
            sql = f"""SELECT record FROM (
                        SELECT DISTINCT ON (s.source_id) s.source_id, s.record, s.deleted FROM {SCHEMA}.staging s
                        WHERE s.pair = %s AND s.source_object = %s AND s.source_id IN (
                            SELECT source_id FROM {SCHEMA}.staging
                            WHERE pair = %s AND source_object = %s AND record->>%s = ANY(%s))
                        ORDER BY s.source_id, s.extracted_at DESC) latest
                      WHERE NOT deleted ORDER BY source_id"""
            params = (pair, source_object, pair, source_object, match, wanted)

        def q(cur: Any) -> dict[str, list[dict[str, Any]]]:
            self._execute(cur, sql, params)
            out: dict[str, list[dict[str, Any]]] = {}
            for (record,) in cur.fetchall():
                rec = _as_obj(record)
                out.setdefault(str(rec.get(match)), []).append(rec)
            return out

        return self.run_in_transaction(q)

    def staged_parents(self, *, run_id: str, pair: str, source_object: str, match: str) -> set[str]:
        """The ``match`` values (parent ids) of the ``source_object`` records staged in ``run_id``; a record
        staged as deleted (only its id is known) names the parent of its latest live version of any run."""
        def q(cur: Any) -> set[str]:
            self._execute(cur, f"""SELECT DISTINCT COALESCE(s.record->>%(m)s, (
                                       SELECT p.record->>%(m)s FROM {SCHEMA}.staging p
                                       WHERE p.pair = s.pair AND p.source_object = s.source_object
                                         AND p.source_id = s.source_id AND NOT p.deleted
                                       ORDER BY p.extracted_at DESC LIMIT 1))
                                   FROM {SCHEMA}.staging s
                                   WHERE s.run_id = %(run)s AND s.pair = %(pair)s AND s.source_object = %(obj)s""",
                          {"m": match, "run": run_id, "pair": pair, "obj": source_object})
            return {str(v) for (v,) in cur.fetchall() if v is not None}

        return self.run_in_transaction(q)

    def latest_staged(self, *, pair: str, source_object: str, source_ids: Collection[str],
                      exclude_run: str | None = None) -> dict[str, dict[str, Any]]:
        """``{source id: record}``: each record's latest staged version over the runs of the pair (but
        ``exclude_run``), when that version is not a deletion."""
        wanted = sorted({str(s) for s in source_ids})
        if not wanted:
            return {}

        def q(cur: Any) -> dict[str, dict[str, Any]]:
            self._execute(cur, f"""SELECT source_id, record FROM (
                                     SELECT DISTINCT ON (source_id) source_id, record, deleted FROM {SCHEMA}.staging
                                     WHERE pair = %s AND source_object = %s AND source_id = ANY(%s)
                                       AND run_id IS DISTINCT FROM %s
                                     ORDER BY source_id, extracted_at DESC) latest
                                   WHERE NOT deleted""", (pair, source_object, wanted, exclude_run))
            return {str(sid): _as_obj(rec) for sid, rec in cur.fetchall()}

        return self.run_in_transaction(q)

    def read_timeline_batch(self, *, run_id: str, pair: str, timeline: str, batch_no: int,
                            known: Mapping[str, tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        """Return one batch of a timeline, oldest first: ``{object, source_id, record, deleted, source_hash,
        unchanged}``.

        A timeline's staged rows are pointers ``{o: object, b: batch, id: source id, d: sort date, p: the record
        it is posted on}`` to the staged records of its member objects; the records are joined in, in date
        order (ties: object, id).

        :param known: ``{object: (crosswalk scope, mapping fingerprint)}``: as :meth:`read_batch`, a row whose
            source version landed under that mapping is ``unchanged``; it comes without its record only when
            every row posted on the same record is unchanged too (a new message among them is created in date
            order, which may move them: they are mapped).
        """
        fps = {o: {"scope": scope, "fp": fp} for o, (scope, fp) in (known or {}).items()}

        def q(cur: Any) -> list[dict[str, Any]]:
            # one index probe per pointer, on (object, batch, id): right after staging the table has no
            # statistics, and a join planned from them degenerates into scans of whole batches
            self._execute(cur, f"""
                SELECT o, source_id, CASE WHEN bool_and(u) OVER (PARTITION BY grp) THEN NULL ELSE record END,
                       deleted, source_hash, fp, u
                FROM (
                    SELECT p.record->>'o' AS o, s.source_id, s.record, s.deleted, s.source_hash,
                           COALESCE(NULLIF(p.record->>'p', ''), s.source_id) AS grp, k.fp,
                           COALESCE(s.source_hash IS NOT NULL AND NOT s.deleted
                                    AND c.source_hash = k.fp || ':' || s.source_hash
                                    AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.dead_letter d
                                                    WHERE d.pair = p.pair AND d.source_object = k.scope
                                                      AND d.source_id = s.source_id AND d.resolved_at IS NULL),
                                    false) AS u,
                           p.record->>'d' AS d
                    FROM {SCHEMA}.staging p
                    CROSS JOIN LATERAL (
                        SELECT source_id, record, deleted, source_hash FROM {SCHEMA}.staging s
                        WHERE s.run_id = p.run_id AND s.pair = p.pair
                          AND s.source_object = p.record->>'o' AND s.batch_no = (p.record->>'b')::integer
                          AND s.source_id = p.record->>'id'
                        LIMIT 1) s
                    LEFT JOIN LATERAL (
                        SELECT t.scope, t.fp FROM jsonb_to_record(%(known)s::jsonb -> (p.record->>'o'))
                                                  AS t(scope text, fp text)) k ON true
                    LEFT JOIN LATERAL (
                        SELECT c.source_hash FROM {SCHEMA}.crosswalk c
                        WHERE c.pair = p.pair AND c.source_object = k.scope AND c.source_id = s.source_id
                        LIMIT 1) c ON true
                    WHERE p.run_id = %(run)s AND p.pair = %(pair)s AND p.source_object = %(tl)s
                      AND p.batch_no = %(batch)s) rows
                ORDER BY d, o, source_id""",
                          {"known": json.dumps(fps), "run": run_id, "pair": pair, "tl": timeline, "batch": batch_no})
            return [{"object": o, "source_id": sid, "record": _as_obj(r) if r is not None else None, "deleted": d,
                     "source_hash": f"{fp}:{h}" if fp and h else None, "unchanged": bool(u)}
                    for o, sid, r, d, h, fp, u in cur.fetchall()]

        return self.run_in_transaction(q)

    def clear_staging(self, *, run_id: str, pair: str, source_object: str | None = None) -> int:
        def q(cur: Any) -> int:
            sql = f"DELETE FROM {SCHEMA}.staging WHERE run_id = %s AND pair = %s"
            args: tuple[Any, ...] = (run_id, pair)
            if source_object:
                sql += " AND source_object = %s"
                args += (source_object,)
            self._execute(cur, sql, args)
            return cur.rowcount

        return self.run_in_transaction(q)

    # --- watermarks -----------------------------------------------------------------------------

    def get_watermark(self, pair: str, source_object: str) -> datetime | None:
        def q(cur: Any) -> datetime | None:
            self._execute(cur, f"SELECT value FROM {SCHEMA}.watermarks WHERE pair = %s AND source_object = %s",
                          (pair, source_object))
            row = cur.fetchone()
            return row[0] if row else None

        return self.run_in_transaction(q)

    def set_watermark(self, pair: str, source_object: str, value: datetime, *, run_id: str | None = None) -> None:
        """Move the watermark forward (never back: a late retry of an older window cannot rewind it)."""
        def q(cur: Any) -> None:
            self._execute(cur, f"""
                INSERT INTO {SCHEMA}.watermarks AS w (pair, source_object, value, run_id) VALUES (%s, %s, %s, %s)
                ON CONFLICT (pair, source_object) DO UPDATE
                   SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, updated_at = now()
                   WHERE w.value < EXCLUDED.value""",
                (pair, source_object, value, run_id))

        self.run_in_transaction(q)

    def watermarks(self, pair: str) -> dict[str, dict[str, Any]]:
        """``{object: {value, run_id, updated_at}}`` of the pair's watermarks."""
        def q(cur: Any) -> dict[str, dict[str, Any]]:
            self._execute(cur, f"SELECT source_object, value, run_id, updated_at FROM {SCHEMA}.watermarks "
                               "WHERE pair = %s", (pair,))
            return {r["source_object"]: r for r in self._rows(cur)}

        return self.run_in_transaction(q)

    # --- read windows: what each run read of each object, and whether it landed -----------------

    def open_window(self, *, run_id: str, pair: str, source_object: str, kind: str, start: datetime | None,
                    end: datetime, watermark: datetime | None) -> dict[str, Any]:
        """Fix the window ``(run, object)`` reads, the first time it is asked; a rerun of the extraction gets the
        same window back (and its ``read_at`` moves to now). Returns ``{kind, start_at, end_at, watermark,
        opened_at, read_at}``."""
        def q(cur: Any) -> dict[str, Any]:
            self._execute(cur, f"""
                INSERT INTO {SCHEMA}.read_windows AS r (run_id, pair, source_object, kind, start_at, end_at, watermark)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (run_id, pair, source_object) DO UPDATE SET read_at = now()
                RETURNING kind, start_at, end_at, watermark, opened_at, read_at""",
                (run_id, pair, source_object, kind, start, end, watermark))
            return self._row(cur) or {}

        return self.run_in_transaction(q)

    def note_window(self, *, run_id: str, pair: str, source_object: str, records: int,
                    warning: str | None = None) -> None:
        """What the extraction of the window found: its record count and a warning (or none)."""
        def q(cur: Any) -> None:
            self._execute(cur, f"UPDATE {SCHEMA}.read_windows SET records = %s, warning = %s "
                               "WHERE run_id = %s AND pair = %s AND source_object = %s",
                          (records, warning, run_id, pair, source_object))

        self.run_in_transaction(q)

    def read_windows(self, run_id: str, pair: str) -> list[dict[str, Any]]:
        """The windows ``run_id`` read, by object."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"SELECT * FROM {SCHEMA}.read_windows WHERE run_id = %s AND pair = %s "
                               "ORDER BY opened_at, source_object", (run_id, pair))
            return self._rows(cur)

        return self.run_in_transaction(q)

    def land_windows(self, *, run_id: str, pair: str, source_objects: Collection[str]) -> list[dict[str, Any]]:
        """Mark the run's windows of ``source_objects`` landed and move each object's watermark to its window's
        end, forward only, in one statement (a rerun moves nothing more). A sample's window moves none.

        :return: per object ``{source_object, kind, end_at, before, moved}`` (``before``: the watermark until
            now; ``moved``: whether this call moved it).
        """
        if not source_objects:
            return []

        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"""
                WITH w AS (
                    UPDATE {SCHEMA}.read_windows SET landed_at = COALESCE(landed_at, now())
                    WHERE run_id = %(run)s AND pair = %(pair)s AND source_object = ANY(%(objs)s)
                    RETURNING source_object, kind, end_at
                ), prev AS (
                    SELECT source_object, value FROM {SCHEMA}.watermarks
                    WHERE pair = %(pair)s AND source_object = ANY(%(objs)s)
                ), mv AS (
                    INSERT INTO {SCHEMA}.watermarks AS m (pair, source_object, value, run_id)
                    SELECT %(pair)s, source_object, end_at, %(run)s FROM w WHERE kind <> 'sample' ORDER BY 2
                    ON CONFLICT (pair, source_object) DO UPDATE
                       SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, updated_at = now()
                       WHERE m.value < EXCLUDED.value
                    RETURNING source_object
                )
                SELECT w.source_object, w.kind, w.end_at, prev.value AS before, mv.source_object IS NOT NULL AS moved
                FROM w LEFT JOIN prev USING (source_object) LEFT JOIN mv USING (source_object)
                ORDER BY w.source_object""", {"run": run_id, "pair": pair, "objs": list(source_objects)})
            return self._rows(cur)

        return self.run_in_transaction(q)

    def newer_reads(self, *, run_id: str, pair: str, source_object: str, key_object: str,
                    source_ids: Collection[str]) -> dict[str, str]:
        """``{source id: run id}`` of the records of ``source_ids`` that a run which read ``source_object`` *after*
        ``run_id`` did has already written to Odoo: ``run_id``'s staged version is older than what Odoo holds (a
        source read returns the records as they are then), so loading it now would put an old value back.

        :param key_object: the crosswalk's source object of ``source_object`` (its key object).
        """
        if not source_ids:
            return {}

        def q(cur: Any) -> dict[str, str]:
            self._execute(cur, f"""
                SELECT c.source_id, c.run_id FROM {SCHEMA}.crosswalk c
                JOIN {SCHEMA}.read_windows me
                  ON me.run_id = %(run)s AND me.pair = c.pair AND me.source_object = %(obj)s
                JOIN {SCHEMA}.read_windows o
                  ON o.run_id = c.run_id AND o.pair = c.pair AND o.source_object = %(obj)s
                WHERE c.pair = %(pair)s AND c.source_object = %(key)s AND c.source_id = ANY(%(ids)s)
                  AND c.run_id <> %(run)s AND o.read_at > me.read_at""",
                {"run": run_id, "pair": pair, "obj": source_object, "key": key_object, "ids": list(source_ids)})
            return dict(cur.fetchall())

        return self.run_in_transaction(q)

    def record_rollback(self, *, run_id: str, pair: str, odoo_model: str, unlinked: Sequence[int] = (),
                        restored: Mapping[int, Mapping[str, Any]] | None = None,
                        gone: Sequence[int] = (), recreated: Mapping[int, Mapping[str, Any]] | None = None,
                        audit: Sequence[Mapping[str, Any]] = (), done: Sequence[int] | None = None) -> dict[str, int]:
        """Record what a rollback did to one model, in one statement.

        Marks the run's manifest rows rolled back; forgets the crosswalk rows of the records unlinked
        (or already gone), so a later run creates them again; for restored records puts the prior
        values back into ``written`` and clears the hash, so a later run compares afresh; binds the
        source records of ``recreated`` (``{old id: {odoo_id, source_object, source_id, written}}``:
        records the run had removed, created again) to their new ids, and notes the new id on the run's
        manifest row (``recreated_id``: the rollback of the run that first created the record finds it); opens
        again the dead letters the run had closed by landing a record it unlinks or restores now.

        :param done: the manifest ids of the rows undone, when they differ from the ids above (a record
            created again by an earlier rollback is unlinked or restored under its new id).
        """
        restored = restored or {}
        recreated = recreated or {}
        params = {
            "run": run_id, "pair": pair, "model": odoo_model,
            "recreated": _json(recreated.values()),
            "moved": _json({"old_id": int(k), "new_id": int(v["odoo_id"])} for k, v in recreated.items()),
            "done": [int(i) for i in (done if done is not None else [*unlinked, *gone, *restored, *recreated])],
            "forget": [int(i) for i in [*unlinked, *gone]],
            "restored": _json({"odoo_id": int(k), "prior": v} for k, v in restored.items()),
            "audit": _json(audit),
        }

        def q(cur: Any) -> dict[str, int]:
            self._execute(cur, _RECORD_ROLLBACK, params)
            done, forgot, rest, au, rc, ro = cur.fetchone()
            return {"manifest": done, "crosswalk_removed": forgot, "crosswalk_restored": rest, "audit": au,
                    "crosswalk_recreated": rc, "dead_letters_reopened": ro}

        return self.run_in_transaction(q)

    # --- reads for rollback and reports -----------------------------------------------------------

    def keep_prior_files(self, *, run_id: str, pair: str, odoo_model: str,
                         files: Mapping[int, Mapping[str, str]]) -> int:
        """Keep the bytes of files a run is about to replace (``{odoo id: {field: base64}}``), read before its
        write: its rollback puts them back. The first kept for a run, record and field wins."""
        import base64

        rows = [{"odoo_id": int(oid), "field": field, "b64": b64,
                 "checksum": "sha1:" + hashlib.sha1(base64.b64decode(b64)).hexdigest()}
                for oid, per in files.items() for field, b64 in per.items() if b64]
        if not rows:
            return 0

        def q(cur: Any) -> int:
            self._execute(cur, f"""
                INSERT INTO {SCHEMA}.prior_files (run_id, pair, odoo_model, odoo_id, field, checksum, data)
                SELECT %(run)s, %(pair)s, %(model)s, t.odoo_id, t.field, t.checksum, decode(t.b64, 'base64')
                FROM jsonb_to_recordset(%(rows)s::jsonb) AS t(odoo_id bigint, field text, b64 text, checksum text)
                ON CONFLICT DO NOTHING""", {"run": run_id, "pair": pair, "model": odoo_model, "rows": _json(rows)})
            return cur.rowcount

        return self.run_in_transaction(q)

    def prior_files(self, run_id: str, odoo_model: str, odoo_ids: Collection[int]) -> dict[tuple[int, str], dict]:
        """``{(odoo id, field): {"checksum", "base64"}}``: the files :meth:`keep_prior_files` kept for the run."""
        import base64

        if not odoo_ids:
            return {}

        def q(cur: Any) -> dict[tuple[int, str], dict]:
            self._execute(cur, f"SELECT odoo_id, field, checksum, data FROM {SCHEMA}.prior_files WHERE run_id = %s "
                               "AND odoo_model = %s AND odoo_id = ANY(%s)", (run_id, odoo_model,
                                                                          [int(i) for i in odoo_ids]))
            return {(oid, f): {"checksum": c, "base64": base64.b64encode(bytes(d)).decode()}
                    for oid, f, c, d in cur.fetchall()}

        return self.run_in_transaction(q)

    def iter_manifest(self, run_id: str, *, pending_only: bool = True) -> list[dict[str, Any]]:
        """Return the manifest rows of a run, newest first (the order a rollback undoes them)."""
        def q(cur: Any) -> list[dict[str, Any]]:
            sql = f"SELECT * FROM {SCHEMA}.rollback_manifest WHERE run_id = %s"
            if pending_only:
                sql += " AND rolled_back_at IS NULL"
            self._execute(cur, sql + " ORDER BY seq DESC", (run_id,))
            return self._rows(cur)

        return self.run_in_transaction(q)

    def record_history(self, pair: str, odoo_model: str, odoo_ids: Collection[int], *,
                       other_than: str | None = None) -> list[dict[str, Any]]:
        """Every manifest row of ``pair`` on these records, whatever the run, rolled back or not, and on the
        records created again in their place (followed through ``recreated_id``), in ``seq`` order.

        What a rollback judges a record by: the tool's own writes to it, run after run.

        :param other_than: leave out the rows of this run (the caller has them).
        """
        if not odoo_ids:
            return []

        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"""
                WITH RECURSIVE ids(id) AS (
                    SELECT unnest(%(ids)s::bigint[])
                    UNION
                    SELECT m.recreated_id FROM {SCHEMA}.rollback_manifest m JOIN ids ON m.odoo_id = ids.id
                    WHERE m.pair = %(pair)s AND m.odoo_model = %(model)s AND m.recreated_id IS NOT NULL
                )
                SELECT m.run_id, m.odoo_model, m.odoo_id, m.action, m.prior_values, m.new_values, m.seq,
                       m.recorded_at, m.rolled_back_at, m.recreated_id,
                       EXISTS (SELECT 1 FROM {SCHEMA}.prior_files p WHERE p.run_id = m.run_id
                               AND p.odoo_model = m.odoo_model AND p.odoo_id = m.odoo_id) AS files_kept
                FROM {SCHEMA}.rollback_manifest m
                WHERE m.pair = %(pair)s AND m.odoo_model = %(model)s AND m.odoo_id IN (SELECT id FROM ids)
                  AND m.run_id IS DISTINCT FROM %(other)s
                ORDER BY m.seq""", {"pair": pair, "model": odoo_model, "other": other_than,
                                     "ids": [int(i) for i in odoo_ids]})
            return self._rows(cur)

        return self.run_in_transaction(q)

    def runs(self, *, pair: str | None = None, run_ids: Collection[str] | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        """The registered runs, newest first (``pair`` and ``run_ids`` filter; ``limit`` rows at most)."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"SELECT run_id, pair, dag_id, kind, mode, params, status, approved_by, approved_at, "
                               f"stats, started_at, finished_at FROM {SCHEMA}.runs "
                               "WHERE (%(pair)s::text IS NULL OR pair = %(pair)s) "
                               "AND (%(ids)s::text[] IS NULL OR run_id = ANY(%(ids)s::text[])) "
                               "ORDER BY started_at DESC, run_id DESC LIMIT %(limit)s",
                          {"pair": pair, "ids": list(run_ids) if run_ids is not None else None, "limit": limit})
            return self._rows(cur)

        return self.run_in_transaction(q)

    def run_counts(self, run_ids: Collection[str]) -> list[dict[str, Any]]:
        """Per run and source object, what the audit, the staging and the dead letters say, in one query:
        ``staged`` (source records read, not deleted), ``deleted_in_source``, ``created``, ``updated``,
        ``adopted``, ``skipped``, ``archived``, ``conflicts``, ``flags``, ``errors``, ``unlinked``,
        ``restored`` (rollbacks), ``dead_letters`` and ``open_dead_letters``. Rows by run id, then object."""
        from crm_migration.mapping.spec import PairSpec

        if not run_ids:
            return []
        actions = ("create", "update", "adopt", "skip", "archive", "conflict", "flag", "error", "unlink", "restore")
        names = ("created", "updated", "adopted", "skipped", "archived", "conflicts", "flags", "errors",
                 "unlinked", "restored")
        counted = ", ".join(f"count(*) FILTER (WHERE action = '{a}') AS {n}" for a, n in zip(actions, names, strict=True))
        cols = ", ".join(f"COALESCE({c}, 0) AS {c}" for c in ("staged", "deleted_in_source", *names, "dead_letters",
                                                               "open_dead_letters"))

        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"""
                WITH s AS (SELECT run_id, source_object, count(*) FILTER (WHERE NOT deleted) AS staged,
                                  count(*) FILTER (WHERE deleted) AS deleted_in_source
                           FROM {SCHEMA}.staging WHERE run_id = ANY(%(ids)s) AND source_object <> %(timeline)s
                           GROUP BY run_id, source_object),
                     a AS (SELECT run_id, source_object, {counted}
                           FROM {SCHEMA}.audit_log WHERE run_id = ANY(%(ids)s) GROUP BY run_id, source_object),
                     d AS (SELECT run_id, source_object, count(*) AS dead_letters,
                                  count(*) FILTER (WHERE resolved_at IS NULL) AS open_dead_letters
                           FROM {SCHEMA}.dead_letter WHERE run_id = ANY(%(ids)s) GROUP BY run_id, source_object)
                SELECT run_id, source_object, {cols}
                FROM s FULL JOIN a USING (run_id, source_object) FULL JOIN d USING (run_id, source_object)
                ORDER BY run_id, source_object""", {"ids": list(run_ids), "timeline": PairSpec.TIMELINE})
            return self._rows(cur)

        return self.run_in_transaction(q)

    def dead_letters(self, *, run_id: str | None = None, pair: str | None = None,
                     unresolved_only: bool = True) -> list[dict[str, Any]]:
        def q(cur: Any) -> list[dict[str, Any]]:
            where, args = ["true"], []
            if run_id:
                where.append("run_id = %s")
                args.append(run_id)
            if pair:
                where.append("pair = %s")
                args.append(pair)
            if unresolved_only:
                where.append("resolved_at IS NULL")
            self._execute(cur, f"SELECT * FROM {SCHEMA}.dead_letter WHERE {' AND '.join(where)} "
                               "ORDER BY source_object, source_id", args)
            return self._rows(cur)

        return self.run_in_transaction(q)

    # --- dead letters: replay and resolution ----------------------------------------------------

    def open_dead_letter_ids(self, pair: str, source_object: str, *, run_id: str | None = None) -> list[str]:
        """The source ids of ``source_object`` (a crosswalk scope) with an open dead letter, in id order; with
        ``run_id``, only those that run dead-lettered."""
        def q(cur: Any) -> list[str]:
            sql = (f"SELECT DISTINCT source_id FROM {SCHEMA}.dead_letter WHERE pair = %s AND source_object = %s "
                   "AND resolved_at IS NULL")
            args: list[Any] = [pair, source_object]
            if run_id:
                sql += " AND run_id = %s"
                args.append(run_id)
            self._execute(cur, sql + " ORDER BY source_id", args)
            return [r[0] for r in cur.fetchall()]

        return self.run_in_transaction(q)

    def note_replayed(self, pair: str, source_object: str, source_ids: Collection[str], *, run_id: str) -> int:
        """Record that run ``run_id`` replays the open dead letters of ``source_ids`` (``replayed_by``)."""
        if not source_ids:
            return 0

        def q(cur: Any) -> int:
            self._execute(cur, f"UPDATE {SCHEMA}.dead_letter SET replayed_by = %s WHERE pair = %s AND source_object = %s"
                               " AND source_id = ANY(%s) AND resolved_at IS NULL",
                          (run_id, pair, source_object, list(source_ids)))
            return cur.rowcount

        return self.run_in_transaction(q)

    def resolve_dead_letters(self, pair: str, source_object: str, source_ids: Collection[str], *, run_id: str,
                             resolution: str) -> int:
        """Close the open dead letters of ``source_ids`` (e.g. ``gone from the source``); return how many."""
        if not source_ids:
            return 0

        def q(cur: Any) -> int:
            self._execute(cur, f"UPDATE {SCHEMA}.dead_letter SET resolved_at = now(), resolved_run_id = %s, "
                               "resolution = %s WHERE pair = %s AND source_object = %s AND source_id = ANY(%s) "
                               "AND resolved_at IS NULL",
                          (run_id, resolution, pair, source_object, list(source_ids)))
            return cur.rowcount

        return self.run_in_transaction(q)

    def dead_letter_tally(self, pair: str, *, run_id: str | None = None) -> dict[str, dict[str, int]]:
        """``{source object: {open, resolved, replayed}}``: distinct records with dead letters of the pair (of
        ``run_id`` only, when given); ``replayed``: resolved by a replay or a later load."""
        def q(cur: Any) -> dict[str, dict[str, int]]:
            sql = (f"SELECT source_object, count(DISTINCT source_id) FILTER (WHERE resolved_at IS NULL), "
                   "count(DISTINCT source_id) FILTER (WHERE resolved_at IS NOT NULL), "
                   "count(DISTINCT source_id) FILTER (WHERE replayed_by IS NOT NULL) "
                   f"FROM {SCHEMA}.dead_letter WHERE pair = %s")
            args: list[Any] = [pair]
            if run_id:
                sql += " AND run_id = %s"
                args.append(run_id)
            self._execute(cur, sql + " GROUP BY source_object ORDER BY source_object", args)
            return {o: {"open": a, "resolved": b, "replayed": c} for o, a, b, c in cur.fetchall()}

        return self.run_in_transaction(q)

    # --- completeness and conflicts -------------------------------------------------------------

    def crosswalk_ids(self, pair: str, source_object: str, odoo_model: str) -> set[str]:
        """The source ids the crosswalk binds to records of ``odoo_model`` (ids only)."""
        def q(cur: Any) -> set[str]:
            self._execute(cur, f"SELECT source_id FROM {SCHEMA}.crosswalk WHERE pair = %s AND source_object = %s "
                               "AND odoo_model = %s", (pair, source_object, odoo_model))
            return {r[0] for r in cur.fetchall()}

        return self.run_in_transaction(q)

    def conflicts(self, run_id: str, *, limit: int = 5000) -> list[dict[str, Any]]:
        """The conflicts run ``run_id``'s loads met (a record edited in Odoo since the tool wrote it):
        ``source_object, source_id, odoo_model, odoo_id, changes, message``; ``limit`` rows at most."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"SELECT source_object, source_id, odoo_model, odoo_id, changes, message "
                               f"FROM {SCHEMA}.audit_log WHERE run_id = %s AND action = 'conflict' "
                               "ORDER BY source_object, source_id, id LIMIT %s", (run_id, limit))
            return [{**r, "changes": _as_obj(r["changes"])} for r in self._rows(cur)]

        return self.run_in_transaction(q)

    def rewind_watermarks(self, run_id: str) -> list[dict[str, Any]]:
        """Run ``run_id`` is rolled back: each watermark it moved (still where its window put it) goes back to
        where it was before the run (removed when it had none), so the next delta reads that span again; its
        windows are no longer landed. Returns ``{pair, source_object, from, to}`` per watermark moved back."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"""
                WITH back AS (
                    SELECT r.pair, r.source_object, r.end_at, r.watermark,
                           (SELECT o.run_id FROM {SCHEMA}.read_windows o WHERE o.pair = r.pair
                              AND o.source_object = r.source_object AND o.end_at = r.watermark
                              AND o.landed_at IS NOT NULL ORDER BY o.landed_at DESC LIMIT 1) AS before_run
                    FROM {SCHEMA}.read_windows r
                    JOIN {SCHEMA}.watermarks w ON w.pair = r.pair AND w.source_object = r.source_object
                                              AND w.value = r.end_at
                    WHERE r.run_id = %(run)s AND r.landed_at IS NOT NULL AND r.kind <> 'sample'
                ), upd AS (
                    UPDATE {SCHEMA}.watermarks w SET value = b.watermark, run_id = b.before_run, updated_at = now()
                    FROM back b WHERE w.pair = b.pair AND w.source_object = b.source_object AND b.watermark IS NOT NULL
                    RETURNING 1
                ), del AS (
                    DELETE FROM {SCHEMA}.watermarks w USING back b
                    WHERE w.pair = b.pair AND w.source_object = b.source_object AND b.watermark IS NULL
                    RETURNING 1
                ), un AS (
                    UPDATE {SCHEMA}.read_windows SET landed_at = NULL WHERE run_id = %(run)s RETURNING 1
                )
                SELECT pair, source_object, end_at AS "from", watermark AS "to",
                       (SELECT count(*) FROM upd) + (SELECT count(*) FROM del) + (SELECT count(*) FROM un) AS n
                FROM back ORDER BY pair, source_object""", {"run": run_id})
            return [{k: v for k, v in r.items() if k != "n"} for r in self._rows(cur)]

        return self.run_in_transaction(q)

    def run_audit(self, *, run_id: str, pair: str, source_object: str,
                  source_ids: Collection[str]) -> list[tuple[str, str, str | None]]:
        """``(source_id, action, message)`` of run ``run_id``'s audit rows of ``source_object`` about ``source_ids``
        (what the run already did and reported about those records)."""
        if not source_ids:
            return []

        def q(cur: Any) -> list[tuple[str, str, str | None]]:
            self._execute(cur, f"SELECT source_id, action, message FROM {SCHEMA}.audit_log WHERE run_id = %s "
                               "AND pair = %s AND source_object = %s AND source_id = ANY(%s)",
                          (run_id, pair, source_object, sorted(source_ids)))
            return [(r[0], r[1], r[2]) for r in cur.fetchall()]

        return self.run_in_transaction(q)

    def flags(self, run_id: str, *, limit: int = 5000) -> list[dict[str, Any]]:
        """The values a run landed but flagged (repair and flag): ``source_object, source_id, odoo_id, field,
        message``, by object and source id; ``limit`` rows at most (a report shows a readable slice)."""
        def q(cur: Any) -> list[dict[str, Any]]:
            self._execute(cur, f"SELECT source_object, source_id, odoo_model, odoo_id, changes->>'field' AS field, "
                               f"message FROM {SCHEMA}.audit_log WHERE run_id = %s AND action = 'flag' "
                               "ORDER BY source_object, source_id, id LIMIT %s", (run_id, limit))
            return self._rows(cur)

        return self.run_in_transaction(q)

    def count(self, table: str, **where: Any) -> int:
        """Count rows of a state table matching equality filters (for reports and tests)."""
        if table not in {"runs", "crosswalk", "watermarks", "staging", "audit_log", "rollback_manifest",
                         "dead_letter", "pending", "read_windows", "approvals", "mapping_confirmations"}:
            raise StateDBError(f"unknown state table {table!r}")
        cols = list(where)

        def q(cur: Any) -> int:
            clause = " AND ".join(f"{c} = %s" for c in cols) or "true"
            self._execute(cur, f"SELECT count(*) FROM {SCHEMA}.{table} WHERE {clause}", [where[c] for c in cols])
            return cur.fetchone()[0]

        return self.run_in_transaction(q)

    @staticmethod
    def _rows(cur: Any) -> list[dict[str, Any]]:
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @classmethod
    def _row(cls, cur: Any) -> dict[str, Any] | None:
        rows = cls._rows(cur)
        return rows[0] if rows else None


def _as_obj(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
