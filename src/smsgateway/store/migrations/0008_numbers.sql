-- Virtual numbers (document 002, issue 13): number users, operators, numbers and
-- their assignments, the SMS received for assigned numbers, the webhook outbox and
-- its attempts, and inbound parts waiting for the rest of their message.
-- Portable conventions as 0001: INTEGER Unix milliseconds, INTEGER booleans.

-- A number user. `key_hash` is the keyed hash of the API key (never the key);
-- `webhook_secret_enc` is the signing secret encrypted under the master key (it must
-- sign, so it cannot be hashed). numbers_taken / last_number_at: the user's summary.
CREATE TABLE number_users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    manager_id INTEGER,
    active INTEGER NOT NULL DEFAULT 1,
    approved INTEGER NOT NULL DEFAULT 1,
    webhook_url TEXT NOT NULL DEFAULT '',
    number_format TEXT NOT NULL DEFAULT 'full',
    key_hash TEXT NOT NULL UNIQUE,
    webhook_secret_enc BLOB NOT NULL,
    numbers_taken INTEGER NOT NULL DEFAULT 0,
    otps_received INTEGER NOT NULL DEFAULT 0,
    last_number_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE number_operators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country_id INTEGER NOT NULL,
    -- Comma-separated leading digits of E.164 numbers (no "+"): numbers imported
    -- without an operator_id take the operator whose prefix matches longest.
    prefixes TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (country_id, name)
);

-- One row per virtual number (E.164). state: free | assigned | quarantined.
-- times_assigned / otps_received / last_assigned_at: the number's summary.
CREATE TABLE numbers (
    phone_number TEXT PRIMARY KEY,
    country_id INTEGER NOT NULL,
    operator_id INTEGER,
    channel TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    user_id INTEGER,
    assigned_at INTEGER,
    assigned_until INTEGER,
    quarantined_until INTEGER,
    times_assigned INTEGER NOT NULL DEFAULT 0,
    otps_received INTEGER NOT NULL DEFAULT 0,
    last_assigned_at INTEGER,
    created_at INTEGER NOT NULL
);

-- get-number reads free numbers of a country by operator, least recently used first.
CREATE INDEX ix_numbers_pick ON numbers(country_id, state, operator_id, last_assigned_at);
CREATE INDEX ix_numbers_user ON numbers(user_id, state);
CREATE INDEX ix_numbers_until ON numbers(state, assigned_until);
CREATE INDEX ix_numbers_quarantine ON numbers(state, quarantined_until);

-- The system's summary: one row.
CREATE TABLE numbers_summary (
    id INTEGER PRIMARY KEY,
    assignments INTEGER NOT NULL DEFAULT 0,
    releases INTEGER NOT NULL DEFAULT 0,
    otps_received INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
);

INSERT INTO numbers_summary (id) VALUES (1);

-- SMS received for a number while it was assigned (the polling fallback reads these).
-- id is the inbound row's id; otp_code is NULL when no code was found.
CREATE TABLE number_sms (
    id TEXT PRIMARY KEY,
    phone_number TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    otp_code TEXT,
    provider TEXT NOT NULL,
    sms_text TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    event_id TEXT
);

CREATE INDEX ix_number_sms_user ON number_sms(user_id, phone_number, received_at);

-- The transactional outbox: written in the same unit as the SMS that caused it.
-- body is the exact JSON sent; state: pending | delivered | failed. Retries run
-- until window_start + numbers.webhook_retry_s (redeliver restarts the window).
CREATE TABLE webhook_outbox (
    event_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT NOT NULL DEFAULT ''
);

CREATE INDEX ix_webhook_outbox_due ON webhook_outbox(state, next_attempt_at);

-- Every delivery attempt. outcome: delivered | http_error | timeout | connect_error
-- | refused_url | no_url.
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER,
    error TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL
);

CREATE INDEX ix_webhook_attempts_event ON webhook_attempts(event_id, id);

-- Parts of concatenated inbound SMS until the set is complete (kept in the store so
-- a restart between parts loses none: each part was acknowledged to the SMSC).
CREATE TABLE inbound_parts (
    channel_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    reference INTEGER NOT NULL,
    total INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, source, destination, reference, total, seq)
);

CREATE INDEX ix_inbound_parts_received ON inbound_parts(received_at);

-- Sets completed recently: a part the SMSC sends again after its set was joined (its
-- resp was lost) is recognised here and dropped instead of starting a new set.
CREATE TABLE inbound_sets_done (
    channel_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    reference INTEGER NOT NULL,
    total INTEGER NOT NULL,
    done_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, source, destination, reference, total)
);

CREATE INDEX ix_inbound_sets_done_at ON inbound_sets_done(done_at);
