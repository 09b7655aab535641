-- Android devices and their messages (issue 12, device channel).
--
-- A device belongs to a project (an integer id; the projects table is another
-- feature's). Secrets are never stored as given: the one-time link code and the
-- device token as keyed hashes, the webhook signing key encrypted under the master
-- key (the gateway must compute HMACs with it).

-- Codes are short (the app's sign-in takes a few digits), so two links may share a
-- code over time; the service never hands out one that is live twice.
CREATE TABLE device_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL,
    page_hash TEXT NOT NULL UNIQUE,
    code_enc BLOB NOT NULL,
    project_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE INDEX ix_device_links_project ON device_links(project_id);

CREATE INDEX ix_device_links_code ON device_links(code_hash);

-- AUTOINCREMENT: a retired device's id (and so its channel id) never comes back.
CREATE TABLE devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    push_token TEXT,
    sim_cards TEXT NOT NULL DEFAULT '[]',
    signing_key_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- One active device per project: the store retires the old one in the same unit
-- that adds the new one, and this index refuses a second all the same.
CREATE UNIQUE INDEX ix_devices_active ON devices(project_id) WHERE revoked_at IS NULL;

-- What the phone last said of each message it was given (the app's states).
CREATE TABLE device_messages (
    message_id TEXT PRIMARY KEY,
    device_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    handed_at INTEGER,
    updated_at INTEGER NOT NULL
);

CREATE INDEX ix_device_messages_device ON device_messages(device_id);
