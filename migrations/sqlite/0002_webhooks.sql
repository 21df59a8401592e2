-- The webhook inbox: every provider event answered 2xx is here before the answer leaves, and is processed after,
-- by whichever replica claims it. A redelivery (same provider and event key) is the same row.
CREATE TABLE webhook_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    event_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    processed_at INTEGER,
    UNIQUE (provider, event_key)
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (status, next_attempt_at);

-- The newest event applied per provider, user and level (or ident application): an older one never replaces it.
CREATE TABLE verification_versions (
    provider TEXT NOT NULL,
    user_id TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    provider_status TEXT NOT NULL,
    inbox_id INTEGER NOT NULL,
    PRIMARY KEY (provider, user_id, ordering_key)
);
