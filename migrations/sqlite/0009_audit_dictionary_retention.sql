-- Retention also forgets the audit dictionaries' rows no retained record uses (src/audit/dictionaries.rs): each row
-- keeps `last_seq`, at or past the last record using it less `LAST_SEQ_SLACK`, and the head an `epoch` the purge
-- moves when it removes rows, so that every replica's writer forgets the ids it cached.
-- A row added without a `last_seq` (by a gateway from before this migration, still running) is never removed.
ALTER TABLE audit_callers ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE audit_operations ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE audit_field_lists ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE audit_users ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 9223372036854775807;
-- The rows of records already written: the last record using each (0 for a row none uses).
UPDATE audit_callers SET last_seq = 0;
UPDATE audit_operations SET last_seq = 0;
UPDATE audit_field_lists SET last_seq = 0;
UPDATE audit_users SET last_seq = 0;
UPDATE audit_callers SET last_seq = m.last FROM
    (SELECT caller, MAX(seq) AS last FROM audit_records GROUP BY caller) AS m WHERE m.caller = audit_callers.id;
UPDATE audit_operations SET last_seq = m.last FROM
    (SELECT operation, MAX(seq) AS last FROM audit_records GROUP BY operation) AS m
    WHERE m.operation = audit_operations.id;
UPDATE audit_field_lists SET last_seq = m.last FROM
    (SELECT fields, MAX(seq) AS last FROM audit_records GROUP BY fields) AS m WHERE m.fields = audit_field_lists.id;
UPDATE audit_users SET last_seq = m.last FROM
    (SELECT subject, MAX(seq) AS last FROM audit_subjects GROUP BY subject) AS m WHERE m.subject = audit_users.id;
CREATE INDEX audit_callers_by_last_seq ON audit_callers (last_seq);
CREATE INDEX audit_operations_by_last_seq ON audit_operations (last_seq);
CREATE INDEX audit_field_lists_by_last_seq ON audit_field_lists (last_seq);
CREATE INDEX audit_users_by_last_seq ON audit_users (last_seq);
ALTER TABLE audit_head ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
