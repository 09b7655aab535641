-- Channels and attempts (issue 11): who a message belongs to, the per-owner
-- idempotency key, and one row per try of a channel.

-- The tenant a message belongs to: 'app:<id>' (native sends), 'oauth:<client_id>',
-- 'project:<id>', 'numbers:<user_id>'. Reads for a tenant filter on it.
ALTER TABLE messages ADD COLUMN owner TEXT NOT NULL DEFAULT '';

UPDATE messages SET owner = 'app:' || app_id;

CREATE INDEX ix_messages_owner ON messages(owner, id);

-- A send's idempotency key, unique per owner (native sends use transaction_id).
ALTER TABLE messages ADD COLUMN idem_key TEXT;

CREATE UNIQUE INDEX ux_messages_idem ON messages(owner, idem_key) WHERE idem_key IS NOT NULL;

-- The sender's TON when the caller chose it (NULL: chosen from the address).
ALTER TABLE messages ADD COLUMN source_ton INTEGER;

-- Every try of a channel for a message: which link (or pool, list member, device)
-- took it, refused it, did not answer in time, or was down. attempt counts from 1.
-- WITHOUT ROWID: one b-tree to write per attempt instead of a table and its key index.
CREATE TABLE attempts (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    channel_kind TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (message_id, attempt)
) WITHOUT ROWID;
