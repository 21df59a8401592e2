-- The directory: who a gateway user is at each provider, and their Fractal link (tokens encrypted).
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    sumsub_applicant_id TEXT,
    sila_user_handle TEXT,
    ident_user_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_by_ident ON users (ident_user_id);

CREATE TABLE fractal_links (
    user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    fractal_uid TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    access_key_id TEXT,
    access_sealed BYTEA,
    access_renew_at BIGINT,
    refresh_key_id TEXT NOT NULL,
    refresh_sealed BYTEA NOT NULL,
    version BIGINT NOT NULL,
    linked_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The `state` of Fractal authorizations under way: single use, bound to the user who started them.
CREATE TABLE link_states (
    nonce TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
