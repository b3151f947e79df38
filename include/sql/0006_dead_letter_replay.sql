-- Dead letters can be replayed after a fix (the delta DAG's Param replay_dead_letters): the replay re-reads
-- the records from the source by id, maps and loads them. A dead letter is resolved when its record lands
-- (any later load of it: a replay, a delta, a full run) or when the source no longer has it; resolved_run_id
-- names the run that resolved it, resolution says how ('landed' | 'gone from the source'), replayed_by the last
-- replay that tried it. Open dead letters (resolved_at IS NULL) are what the reconciliation and the on-call view
-- count as needing action.
ALTER TABLE crm_migration.dead_letter ADD COLUMN IF NOT EXISTS resolved_run_id text;
ALTER TABLE crm_migration.dead_letter ADD COLUMN IF NOT EXISTS resolution text;
ALTER TABLE crm_migration.dead_letter ADD COLUMN IF NOT EXISTS replayed_by text;
CREATE INDEX IF NOT EXISTS dead_letter_open_idx ON crm_migration.dead_letter (pair, source_object)
    WHERE resolved_at IS NULL;
