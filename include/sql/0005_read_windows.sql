-- Watermarks that mean "read and landed". Each extraction of a run reads one window per object: from the
-- object's watermark (a delta never later than its data_interval_start; a full run from the beginning) to the
-- window's end (a scheduled delta: data_interval_end; a full run or a sync now: the moment the extraction
-- began). The first extraction of (run, object) fixes the window, so a cleared and rerun task reads the same one;
-- read_at is the last time it was read. When every object of the run has landed, the run's set_watermarks task
-- marks its windows landed and moves each object's watermark to its window's end, once.
CREATE TABLE IF NOT EXISTS crm_migration.read_windows (
    run_id        text        NOT NULL,
    pair          text        NOT NULL,
    source_object text        NOT NULL,
    kind          text        NOT NULL,                  -- full | sample | delta | sync_now
    start_at      timestamptz,                           -- NULL: from the beginning
    end_at        timestamptz NOT NULL,
    watermark     timestamptz,                           -- the object's watermark when the window was opened
    warning       text,                                  -- e.g. deletions older than the source keeps
    records       integer,
    opened_at     timestamptz NOT NULL DEFAULT now(),
    read_at       timestamptz NOT NULL DEFAULT now(),
    landed_at     timestamptz,
    PRIMARY KEY (run_id, pair, source_object)
);
CREATE INDEX IF NOT EXISTS read_windows_object_idx ON crm_migration.read_windows (pair, source_object, landed_at);
