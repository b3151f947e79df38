-- A file a run replaces (an ir.attachment's datas): its bytes before the run, read before the write, so that the
-- run's rollback can put them back (the manifest keeps only 'sha1:<hex>' of a file). One row per run and field; the
-- first read of a run wins (a retried batch reads the run's own bytes). Kept until the run is rolled back or the
-- state DB is dropped after the cutover.
CREATE TABLE IF NOT EXISTS crm_migration.prior_files (
    run_id      text   NOT NULL,
    pair        text   NOT NULL,
    odoo_model  text   NOT NULL,
    odoo_id     bigint NOT NULL,
    field       text   NOT NULL,
    checksum    text   NOT NULL,           -- 'sha1:<hex>' as the manifest's prior_values holds it
    data        bytea  NOT NULL,
    kept_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, odoo_model, odoo_id, field)
);
