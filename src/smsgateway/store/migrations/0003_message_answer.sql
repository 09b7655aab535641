-- The answer a send got, kept on its message row: a repeated transaction_id gets
-- exactly this answer back. It is written in the same statement that records the
-- submit outcome (no separate idempotency row per send: one index fewer to feed).
-- NULL when the message has no transaction_id, or its answer is not committed yet.
ALTER TABLE messages ADD COLUMN answer BLOB;
