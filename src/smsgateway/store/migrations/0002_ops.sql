-- Operations: campaign counters and the content filters added through the admin API.
-- Same portable conventions as 0001 (INTEGER Unix milliseconds, INTEGER booleans).

-- One row per (campaign, link): SMS (parts) the SMSC answered for the campaign on
-- that link. total = sent + failed; a failure receipt moves one part from sent to
-- failed. Updated by batched deltas (core/campaigns.py), never row by row.
CREATE TABLE campaign_stats (
    campaign TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (campaign, link_id)
);

-- Filters from the admin API (filters in the settings file are not stored here).
CREATE TABLE filters (
    name TEXT PRIMARY KEY,
    active INTEGER NOT NULL,
    mode TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);
