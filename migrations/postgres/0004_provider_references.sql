-- The directory along the provider axis: a user's references as rows per provider (several per provider where a
-- provider has several, such as verification sessions), and linked accounts of any provider. Existing references and
-- links move over as they are; sealed tokens keep the context they were sealed under (`fractal_links/...`).

-- A replica of the earlier release may be refreshing a link (its row locked while it calls Fractal): the copy below
-- waits for its rotated token, and a refresh that starts later fails before it calls Fractal, so none is lost.
LOCK TABLE users, fractal_links IN ACCESS EXCLUSIVE MODE;

CREATE TABLE provider_refs (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    -- When it was stored (unix ms; 0 for those moved here): the newest are read first, the oldest dropped first.
    added_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, provider, reference)
);
CREATE INDEX provider_refs_by_reference ON provider_refs (provider, reference);

INSERT INTO provider_refs (user_id, provider, reference)
    SELECT user_id, 'SUMSUB', sumsub_applicant_id FROM users WHERE sumsub_applicant_id IS NOT NULL;
INSERT INTO provider_refs (user_id, provider, reference)
    SELECT user_id, 'SILA', sila_user_handle FROM users WHERE sila_user_handle IS NOT NULL;
INSERT INTO provider_refs (user_id, provider, reference)
    SELECT user_id, 'IDENT', ident_user_id FROM users WHERE ident_user_id IS NOT NULL;

CREATE TABLE provider_links (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    access_key_id TEXT,
    access_sealed BYTEA,
    access_renew_at BIGINT,
    refresh_key_id TEXT NOT NULL,
    refresh_sealed BYTEA NOT NULL,
    version BIGINT NOT NULL,
    linked_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider),
    UNIQUE (provider, subject)
);

INSERT INTO provider_links (user_id, provider, subject, scopes, access_key_id, access_sealed, access_renew_at,
    refresh_key_id, refresh_sealed, version, linked_at, updated_at)
    SELECT user_id, 'FRACTAL', fractal_uid, scopes, access_key_id, access_sealed, access_renew_at, refresh_key_id,
        refresh_sealed, version, linked_at, updated_at
    FROM fractal_links;

DROP TABLE fractal_links;
DROP INDEX users_by_ident;
ALTER TABLE users DROP COLUMN sumsub_applicant_id;
ALTER TABLE users DROP COLUMN sila_user_handle;
ALTER TABLE users DROP COLUMN ident_user_id;

-- A started link belongs to the provider it was started at; the states of the first linking provider are its.
ALTER TABLE link_states ADD COLUMN provider TEXT NOT NULL DEFAULT 'FRACTAL';
