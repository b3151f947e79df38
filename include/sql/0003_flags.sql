-- Repair and flag: a value Odoo can hold but that is not what it should be (a malformed email kept as
-- written, a stage outside its pipeline matched by name, an unknown country left empty, a file missing in
-- the source) lands with its record; the audit log says which record, which field and why ('flag').
ALTER TABLE crm_migration.audit_log DROP CONSTRAINT IF EXISTS audit_log_action_check;
ALTER TABLE crm_migration.audit_log
    ADD CONSTRAINT audit_log_action_check CHECK (action IN ('create', 'update', 'skip', 'archive', 'error',
                                                           'adopt', 'conflict', 'unlink', 'restore', 'schema',
                                                           'flag'));
