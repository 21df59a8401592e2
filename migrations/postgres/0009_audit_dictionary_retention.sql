-- Retention also forgets the audit dictionaries' rows no retained record uses (src/audit/chain.rs, `purge`): each row
-- keeps `last_seq`, a record place at or past every record using it less `layout::LAST_SEQ_SLACK`, and the head an
-- `epoch` the purge bumps when it removes rows, so that every replica's writer drops the ids it cached.
-- Rows of records already written count as used up to the head.
ALTER TABLE audit_callers ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_operations ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_field_lists ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_users ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE audit_callers SET last_seq = (SELECT seq FROM audit_head WHERE id = 1);
UPDATE audit_operations SET last_seq = (SELECT seq FROM audit_head WHERE id = 1);
UPDATE audit_field_lists SET last_seq = (SELECT seq FROM audit_head WHERE id = 1);
UPDATE audit_users SET last_seq = (SELECT seq FROM audit_head WHERE id = 1);
CREATE INDEX audit_callers_by_last_seq ON audit_callers (last_seq);
CREATE INDEX audit_operations_by_last_seq ON audit_operations (last_seq);
CREATE INDEX audit_field_lists_by_last_seq ON audit_field_lists (last_seq);
CREATE INDEX audit_users_by_last_seq ON audit_users (last_seq);
ALTER TABLE audit_head ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
