-- Linking with PKCE and a bound on open states: a started authorization keeps its PKCE code verifier (states started
-- before this have none, and complete without one), and the states are found by user (the bound) and by expiry (the
-- background purge). Existing states are kept as they are.
ALTER TABLE link_states ADD COLUMN code_verifier TEXT;
CREATE INDEX link_states_by_user ON link_states (user_id, expires_at);
CREATE INDEX link_states_by_expiry ON link_states (expires_at);
