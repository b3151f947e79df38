-- Approvals and the confirmation of the mapping in force.
-- Every decision at an approval step (a person's in Airflow's Human-in-the-loop UI, or the approved_by Param of a
-- scripted run) is one row of approvals: which run and step, what was approved (mapping, sample_diff, full_run,
-- rollback), who, how, when, and the report the step pointed at. runs.approved_by keeps the last approval of a
-- run for the on-call view.
CREATE TABLE IF NOT EXISTS crm_migration.approvals (
    id             bigserial   PRIMARY KEY,
    run_id         text        NOT NULL,
    pair           text        NOT NULL,
    task_id        text,
    what           text        NOT NULL,              -- mapping | sample_diff | full_run | rollback
    decision       text        NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by     text        NOT NULL,              -- the responder's name, or the approved_by Param's value
    decided_by_id  text,                              -- the responder's Airflow user id (none for approved_by)
    how            text        NOT NULL CHECK (how IN ('person', 'approved_by')),
    report         text,                              -- the report URI the step pointed at
    mapping_sha256 text,                              -- the mapping in force when the decision was taken
    decided_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS approvals_run_idx ON crm_migration.approvals (run_id);
CREATE INDEX IF NOT EXISTS approvals_what_idx ON crm_migration.approvals (pair, what, mapping_sha256, decided_at);

-- A mapping file confirmed by a person (the plan's confirm_mapping step) or by a scripted run's approved_by:
-- who, when, the sha256 of the file's bytes and a snapshot of it (what the next run compares its mapping with).
-- _migrate refuses to start when the mapping in force has no row here.
CREATE TABLE IF NOT EXISTS crm_migration.mapping_confirmations (
    id             bigserial   PRIMARY KEY,
    pair           text        NOT NULL,
    mapping_sha256 text        NOT NULL,
    mapping_file   text        NOT NULL,              -- where it was read (pairs/<pair>.yaml or a path)
    mapping_text   text        NOT NULL,              -- the snapshot
    confirmed_by   text        NOT NULL,
    confirmed_by_id text,
    how            text        NOT NULL CHECK (how IN ('person', 'approved_by')),
    run_id         text,                              -- the plan (or migrate) run that confirmed it
    report         text,                              -- the plan report the step pointed at
    confirmed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mapping_confirmations_idx ON crm_migration.mapping_confirmations (pair, mapping_sha256, confirmed_at);

-- The mapping each run ran with (its sha256): a full run finds the approved sample diff of the same mapping, and
-- the next run's report names the fields changed since the previous run's mapping.
ALTER TABLE crm_migration.runs ADD COLUMN IF NOT EXISTS mapping_sha256 text;
