-- Rollback judged against the tool's own history. A rollback checks every record against the last value
-- the tool wrote to it across all runs of the pair (a later run's write, a later run's rollback writing a
-- prior value back, a record created again in place of one a run had removed), so it reads the manifest
-- by record, whatever the run: the index below. A record created again by a rollback is a new Odoo id;
-- recreated_id on the row of the run that had removed it leads from the old id to the new one, so the
-- rollback of the run that first created the record removes the record that stands in for it now.
ALTER TABLE crm_migration.rollback_manifest ADD COLUMN IF NOT EXISTS recreated_id bigint;
CREATE INDEX IF NOT EXISTS rollback_manifest_record_idx ON crm_migration.rollback_manifest (pair, odoo_model, odoo_id);
