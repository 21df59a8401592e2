-- Signed checkpoints of the audit chain: the head (sequence and hash) at a time, signed with an Ed25519 key kept
-- outside the database (`src/audit/checkpoint.rs`); `kyc-gateway audit verify --key` checks the records against each.
CREATE TABLE audit_signed_checkpoints (
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
