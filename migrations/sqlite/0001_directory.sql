-- The directory: who a gateway user is at each provider, and their Fractal link (tokens encrypted).
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    sumsub_applicant_id TEXT,
    sila_user_handle TEXT,
    ident_user_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_by_ident ON users (ident_user_id);

CREATE TABLE fractal_links (
    user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    fractal_uid TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    access_key_id TEXT,
    access_sealed BLOB,
    access_renew_at INTEGER,
    refresh_key_id TEXT NOT NULL,
    refresh_sealed BLOB NOT NULL,
    version INTEGER NOT NULL,
    linked_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The `state` of Fractal authorizations under way: single use, bound to the user who started them.
CREATE TABLE link_states (
    nonce TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
