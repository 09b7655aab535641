-- OAuth clients of the gateway's own token endpoint (issue 11, tokens).
-- The secret is stored only as a keyed hash (HMAC-SHA256 under a master-key subkey);
-- scopes are space-separated scope tokens, as in a token's `scope` claim.
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
