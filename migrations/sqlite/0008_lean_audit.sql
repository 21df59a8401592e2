-- The lean audit trail (src/audit/layout.rs): repeated values in dictionaries referenced by integer id (callers,
-- operations, field lists, users), hashes and ids as bytes, and no stored `prev_hash` (it is the previous record's
-- hash, or the retention checkpoint's): a 4-byte `link` (its first bytes) tells a moved record from an altered one.
-- Existing records are converted as they are: every record's logical content, and so its hash, is unchanged.
CREATE TABLE audit_callers (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    caller TEXT NOT NULL,
    issuer TEXT NOT NULL,
    UNIQUE (caller, issuer, kind)
);
CREATE TABLE audit_operations (
    id INTEGER PRIMARY KEY,
    name TEXT,
    operation_type TEXT NOT NULL,
    document_hash TEXT NOT NULL
);
CREATE INDEX audit_operations_by_document ON audit_operations (document_hash);
-- A record's fields as a JSON list whose subjects are positions in the record's subjects (or user ids).
CREATE TABLE audit_field_lists (
    id INTEGER PRIMARY KEY,
    fields TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_users (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE
);

INSERT INTO audit_callers (kind, caller, issuer) SELECT DISTINCT caller_kind, caller, issuer FROM audit_records;
INSERT INTO audit_operations (name, operation_type, document_hash)
    SELECT DISTINCT operation_name, operation_type, document_hash FROM audit_records;
INSERT INTO audit_field_lists (fields) SELECT DISTINCT fields FROM audit_records;
INSERT INTO audit_users (user_id) SELECT DISTINCT j.value FROM audit_records r, json_each(r.subjects) j;

-- Ids (made with unhex: `||` would make text): a tag byte, then 16 bytes of a lowercase UUID (2), the bytes of lowercase hex (1), or UTF-8 text (0).
CREATE TABLE audit_records_lean (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    request_id BLOB NOT NULL,
    trace_id BLOB,
    caller INTEGER NOT NULL,
    operation INTEGER NOT NULL,
    fields INTEGER NOT NULL,
    subjects TEXT NOT NULL,
    purpose TEXT,
    cause TEXT,
    hash BLOB NOT NULL,
    link BLOB
);
INSERT INTO audit_records_lean
    (seq, at, request_id, trace_id, caller, operation, fields, subjects, purpose, cause, hash, link)
SELECT
    r.seq,
    r.at,
    CASE
        WHEN length(r.request_id) = 36 AND r.request_id = lower(r.request_id) AND substr(r.request_id, 9, 1) = '-'
            AND substr(r.request_id, 14, 1) = '-' AND substr(r.request_id, 19, 1) = '-'
            AND substr(r.request_id, 24, 1) = '-' AND length(replace(r.request_id, '-', '')) = 32
            AND unhex(replace(r.request_id, '-', '')) IS NOT NULL
            THEN unhex('02' || replace(r.request_id, '-', ''))
        WHEN length(r.request_id) % 2 = 0 AND r.request_id = lower(r.request_id) AND unhex(r.request_id) IS NOT NULL
            THEN unhex('01' || r.request_id)
        ELSE unhex('00' || hex(r.request_id))
    END,
    CASE
        WHEN r.trace_id IS NULL THEN NULL
        WHEN length(r.trace_id) = 36 AND r.trace_id = lower(r.trace_id) AND substr(r.trace_id, 9, 1) = '-'
            AND substr(r.trace_id, 14, 1) = '-' AND substr(r.trace_id, 19, 1) = '-'
            AND substr(r.trace_id, 24, 1) = '-' AND length(replace(r.trace_id, '-', '')) = 32
            AND unhex(replace(r.trace_id, '-', '')) IS NOT NULL
            THEN unhex('02' || replace(r.trace_id, '-', ''))
        WHEN length(r.trace_id) % 2 = 0 AND r.trace_id = lower(r.trace_id) AND unhex(r.trace_id) IS NOT NULL
            THEN unhex('01' || r.trace_id)
        ELSE unhex('00' || hex(r.trace_id))
    END,
    c.id,
    o.id,
    f.id,
    COALESCE((SELECT group_concat(u.id, ',' ORDER BY j.key) FROM json_each(r.subjects) j
              JOIN audit_users u ON u.user_id = j.value), ''),
    r.purpose,
    r.cause,
    unhex(r.hash),
    unhex(substr(r.prev_hash, 1, 8))
FROM audit_records r
JOIN audit_callers c ON c.kind = r.caller_kind AND c.caller = r.caller AND c.issuer = r.issuer
JOIN audit_operations o ON o.operation_type = r.operation_type AND o.document_hash = r.document_hash
    AND o.name IS r.operation_name
JOIN audit_field_lists f ON f.fields = r.fields;

DROP TABLE audit_records;
DROP TABLE audit_subjects;
ALTER TABLE audit_records_lean RENAME TO audit_records;
CREATE INDEX audit_records_by_at ON audit_records (at);
CREATE INDEX audit_records_by_caller ON audit_records (caller);

-- Whose data each record is about (audit_users ids), to read one person's trail.
CREATE TABLE audit_subjects (
    subject INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
INSERT INTO audit_subjects (subject, seq)
    SELECT DISTINCT CAST(j.value AS INTEGER), r.seq FROM audit_records r, json_each('[' || r.subjects || ']') j;
