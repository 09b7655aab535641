-- OTP projects (issue 12): projects, their API keys, OTP verifications, and which
-- messages a project sent (for its stats). The messages themselves are ordinary
-- message rows (owner 'project:<id>').

-- AUTOINCREMENT: a deleted project's id is never handed out again, so an old key,
-- device or log line can never name a newcomer.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- JSON: OTP settings, template, sender, channel, test numbers (core/otp/projects.py).
    settings TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- key_id is the public part of the key (looked up by it); key_hash is an HMAC of the
-- whole key under a server key, compared in constant time. The key itself is not kept.
CREATE TABLE project_api_keys (
    key_id TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX ix_project_api_keys_project ON project_api_keys(project_id);

-- code_hash: HMAC of the code bound to the verification; seed: random, from which
-- the code is derived again (under a server key) when it is resent.
CREATE TABLE otp_verifications (
    id TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    seed TEXT NOT NULL,
    code_length INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts_left INTEGER NOT NULL,
    sends INTEGER NOT NULL,
    is_test INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    verified_at INTEGER,
    updated_at INTEGER NOT NULL
);

-- The resend lookup: a project's pending verification for a number.
CREATE INDEX ix_otp_pending ON otp_verifications(project_id, destination) WHERE status = 'pending';

CREATE INDEX ix_otp_project_created ON otp_verifications(project_id, created_at);

CREATE TABLE project_messages (
    message_id TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    verification_id TEXT,
    created_at INTEGER NOT NULL
);

CREATE INDEX ix_project_messages_project ON project_messages(project_id, created_at);
