-- Known before any download or mapping (issue 15): what the source said of a record when it landed. Staging
-- keeps an md5 of each staged record as the source gave it (its modification stamp, Salesforce SystemModstamp
-- or Link app updated_at, its file checksum or size, its enrichments), computed by PostgreSQL; the crosswalk
-- keeps '<mapping fingerprint>:<that md5>' of the version that landed ('' or NULL: map it again). A rerun
-- compares the two in its batch read and neither downloads, maps nor compares a record whose source did not
-- change under the same mapping.
ALTER TABLE crm_migration.staging ADD COLUMN IF NOT EXISTS source_hash text;
ALTER TABLE crm_migration.crosswalk ADD COLUMN IF NOT EXISTS source_hash text;
-- an open dead letter makes its record load again, whatever its hash: probed per batch
CREATE INDEX IF NOT EXISTS dead_letter_open_id_idx ON crm_migration.dead_letter (pair, source_object, source_id)
    WHERE resolved_at IS NULL;
