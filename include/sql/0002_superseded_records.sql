-- 1. A source record whose mapping moves it to another Odoo model (a task closed after it was loaded as a
-- scheduled activity becomes a chatter message) replaces its old Odoo record: the old one is removed and
-- recorded in the manifest as 'deleted' with its values, so a rollback can create it again.
ALTER TABLE crm_migration.rollback_manifest DROP CONSTRAINT IF EXISTS rollback_manifest_action_check;
ALTER TABLE crm_migration.rollback_manifest
    ADD CONSTRAINT rollback_manifest_action_check CHECK (action IN ('created', 'updated', 'archived', 'deleted'));

-- 2. The chatter timeline reads staged records by (object, batch, id): the batch index carries the id, so
-- each probe is one index entry, whatever statistics the planner has right after staging.
CREATE INDEX IF NOT EXISTS staging_batch_id_idx ON crm_migration.staging (run_id, pair, source_object, batch_no, source_id);
DROP INDEX IF EXISTS crm_migration.staging_batch_idx;
