-- The audit trail: one record per operation that returned (or was denied) personal data, per mutation and per
-- applied webhook. Append-only through the code (`src/audit/`); each record carries the hash of the one before it.
CREATE TABLE audit_records (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT,
    caller_kind TEXT NOT NULL,
    caller TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subjects TEXT NOT NULL,
    fields TEXT NOT NULL,
    operation_name TEXT,
    operation_type TEXT NOT NULL,
    document_hash TEXT NOT NULL,
    purpose TEXT,
    cause TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_records_by_at ON audit_records (at);
CREATE INDEX audit_records_by_caller ON audit_records (caller, seq);

-- Whose data each record is about, to read one person's trail.
CREATE TABLE audit_subjects (
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- The head of the chain (the last record), locked by the writer that appends: one chain across every replica.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'genesis');

-- Where the remaining chain starts after retention removed older records: the last removed record.
CREATE TABLE audit_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL
);
