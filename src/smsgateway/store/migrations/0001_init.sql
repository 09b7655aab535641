-- Initial schema.
--
-- Portable on purpose, so a PostgreSQL store can follow: types are INTEGER, TEXT,
-- BLOB, REAL; timestamps are INTEGER Unix milliseconds; booleans are INTEGER 0/1.
-- (PostgreSQL: BLOB -> BYTEA, INTEGER ids -> BIGINT GENERATED ALWAYS AS IDENTITY.)
-- One statement per line group, ended by ';' at the end of a line: the runner
-- splits on complete statements.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- AUTOINCREMENT on users and apps: a deleted user's or app's id is never handed
-- out again, so an old token, log line or audit row can never name a newcomer.
CREATE TABLE apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX ix_apps_user ON apps(user_id);

-- No foreign key from messages to apps: message history outlives a deleted user.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    route_id INTEGER NOT NULL,
    link_id INTEGER,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT NOT NULL,
    mode TEXT NOT NULL,
    parts_total INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    transaction_id TEXT,
    task_id INTEGER NOT NULL DEFAULT 0,
    campaign TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    not_before INTEGER,
    validity_until INTEGER,
    next_attempt_at INTEGER,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead_letter INTEGER NOT NULL DEFAULT 0,
    UNIQUE (app_id, transaction_id)
);

-- The dispatcher's lookup: queued work per route in id (= time) order. Partial, so
-- the index holds only pending messages however large the history grows.
CREATE INDEX ix_messages_queued ON messages(route_id, id) WHERE status = 'queued';

-- task_id is handed out from MAX(task_id) + 1 at start-up, and clients quote it.
CREATE INDEX ix_messages_task ON messages(task_id);

CREATE TABLE parts (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    link_id INTEGER,
    smsc_id TEXT,
    state TEXT NOT NULL,
    error TEXT,
    short_message BLOB NOT NULL,
    data_coding INTEGER NOT NULL,
    esm_class INTEGER NOT NULL,
    tlvs BLOB,
    submitted_at INTEGER,
    done_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
);

-- Receipt matching. smsc_id first so a lookup by SMSC id alone (receipt arriving
-- on another bind of the same account) can use it too.
CREATE INDEX ix_parts_smsc ON parts(smsc_id, link_id);

-- Start-up recovery finds the parts that were in flight without scanning history.
CREATE INDEX ix_parts_sending ON parts(state) WHERE state = 'sending';

CREATE TABLE link_state (
    link_id INTEGER PRIMARY KEY,
    enabled INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response BLOB,
    in_progress INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX ix_idempotency_expiry ON idempotency(expires_at);

CREATE TABLE inbound (
    id TEXT PRIMARY KEY,
    link_id INTEGER,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    text TEXT NOT NULL,
    received_at INTEGER NOT NULL
);

CREATE INDEX ix_inbound_received ON inbound(received_at);
