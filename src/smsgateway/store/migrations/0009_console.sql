-- Operator console sessions (issue 14). The cookie carries a random id; only its
-- SHA-256 is stored, so a database leak opens no session. Times are Unix ms.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);

CREATE INDEX ix_console_sessions_expiry ON console_sessions(expires_at);

-- The admin message search by destination ("did my SMS to X arrive?"). Time ranges
-- need no index of their own: ids are UUIDv7, so id order is time order and a time
-- bound is an id bound on the primary key.
CREATE INDEX ix_messages_destination ON messages(destination, id);
