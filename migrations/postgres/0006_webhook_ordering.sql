-- Webhook ordering that a replay cannot pass: equal event times are ordered by the event key (the provider's event
-- id or the body's digest), so the same delivery never applies twice and two equal-time ones always resolve alike.
-- Keys compare byte-wise (COLLATE "C"), as on SQLite. A row's key is taken from its inbox row where that is still
-- kept; an empty key (its inbox row is gone) is never replaced by an event of the same time.
ALTER TABLE verification_versions ADD COLUMN event_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE verification_versions
SET event_key = COALESCE((SELECT i.event_key FROM webhook_inbox i WHERE i.id = verification_versions.inbox_id), '');
-- The inbox rows that hold ordering state are kept as long as it (the purge looks them up by id).
CREATE INDEX verification_versions_inbox ON verification_versions (inbox_id);

-- The newest "something about this user changed" event applied per provider and user: an older one, or the same one
-- replayed, is stale.
CREATE TABLE user_change_versions (
    provider TEXT NOT NULL,
    user_id TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    event_key TEXT COLLATE "C" NOT NULL,
    inbox_id BIGINT NOT NULL,
    PRIMARY KEY (provider, user_id)
);
CREATE INDEX user_change_versions_inbox ON user_change_versions (inbox_id);
