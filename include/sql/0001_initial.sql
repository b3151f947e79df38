-- crm_migration state schema, version 1.
-- Applied by MigrationStateHook.migrate() inside one transaction under an advisory lock;
-- every statement is idempotent so a half-applied history can be re-run.

CREATE SCHEMA IF NOT EXISTS crm_migration;

-- One row per Airflow run of a pair's DAG (plan, migrate, delta, rollback).
CREATE TABLE IF NOT EXISTS crm_migration.runs (
    run_id        text        PRIMARY KEY,
    pair          text        NOT NULL,
    dag_id        text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('plan', 'migrate', 'delta', 'rollback')),
    mode          text,
    params        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL DEFAULT 'running',
    approved_by   text,
    approved_at   timestamptz,
    stats         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- Source id <-> Odoo id, one row per (pair, source object, source id).
CREATE TABLE IF NOT EXISTS crm_migration.crosswalk (
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    source_id     text        NOT NULL,
    odoo_model    text        NOT NULL,
    odoo_id       bigint      NOT NULL,
    content_hash  text,                    -- hash of the values last written (skip when unchanged)
    written       jsonb,                   -- the values last written: changed-field and conflict detection
    run_id        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pair, source_object, source_id)
);
CREATE INDEX IF NOT EXISTS crosswalk_odoo_idx ON crm_migration.crosswalk (odoo_model, odoo_id);

-- Source records a load attempt is about to create in Odoo and has not recorded yet. A row found
-- here by the next attempt means "may have landed before a crash": only those are looked up in Odoo
-- by x_migration_key, so the common path costs no extra Odoo call.
CREATE TABLE IF NOT EXISTS crm_migration.pending (
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    source_id     text        NOT NULL,
    run_id        text,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pair, source_object, source_id)
);

-- How far each stream of a pair has been synced: the end of the last proven window.
CREATE TABLE IF NOT EXISTS crm_migration.watermarks (
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    value         timestamptz NOT NULL,
    run_id        text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pair, source_object)
);

-- Extracted source records, by run and batch; tasks on any worker read them from here.
CREATE TABLE IF NOT EXISTS crm_migration.staging (
    run_id        text        NOT NULL,
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    source_id     text        NOT NULL,
    batch_no      integer     NOT NULL,
    record        jsonb       NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    extracted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, pair, source_object, source_id)
);
CREATE INDEX IF NOT EXISTS staging_batch_idx ON crm_migration.staging (run_id, pair, source_object, batch_no);

-- Every create / update / skip / archive / error / rollback the tool did, append-only.
CREATE TABLE IF NOT EXISTS crm_migration.audit_log (
    id            bigserial   PRIMARY KEY,
    run_id        text        NOT NULL,
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    source_id     text,
    odoo_model    text,
    odoo_id       bigint,
    action        text        NOT NULL CHECK (action IN ('create', 'update', 'skip', 'archive', 'error',
                                                       'adopt', 'conflict', 'unlink', 'restore', 'schema')),
    changes       jsonb,
    message       text,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS audit_log_run_idx ON crm_migration.audit_log (run_id, source_object);

-- What each run created, and the prior values of what it changed: the input of a rollback.
CREATE TABLE IF NOT EXISTS crm_migration.rollback_manifest (
    run_id         text        NOT NULL,
    pair           text        NOT NULL,
    source_object  text        NOT NULL,
    source_id      text,
    odoo_model     text        NOT NULL,
    odoo_id        bigint      NOT NULL,
    action         text        NOT NULL CHECK (action IN ('created', 'updated', 'archived')),
    prior_values   jsonb,
    new_values     jsonb,
    seq            bigserial,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    rolled_back_at timestamptz,
    PRIMARY KEY (run_id, odoo_model, odoo_id)
);

-- Records that could not land, with the reason; the rest of their batch did.
CREATE TABLE IF NOT EXISTS crm_migration.dead_letter (
    run_id        text        NOT NULL,
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    source_id     text        NOT NULL,
    odoo_model    text,
    field         text,
    reason        text        NOT NULL,
    record        jsonb,
    attempts      integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    PRIMARY KEY (run_id, pair, source_object, source_id)
);
