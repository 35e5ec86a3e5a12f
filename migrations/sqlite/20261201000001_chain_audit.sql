-- The chain audit's memory (SQLite; the PostgreSQL twin is migrations/postgres/): when each
-- settled payment was last checked against the chain, and how far the history of each payTo
-- token account has been read. Times are Unix milliseconds.

-- Set once the chain confirmed the payment as recorded, or a finding about it was written;
-- NULL: not yet checked (or settled too recently to judge).
ALTER TABLE payments ADD COLUMN audited_ms INTEGER;
CREATE INDEX payments_unaudited ON payments (final_ms, payment_key)
    WHERE state = 'settled' AND audited_ms IS NULL;

-- One row per (network, token account): `getSignaturesForAddress` is read newest first, so a
-- walk starts at the newest signature (`top_sig`) and pages down to `until_sig`, the newest
-- signature of the last complete walk. A walk cut short (too many new transfers for one pass)
-- keeps where it stopped in `before_sig` and resumes there.
CREATE TABLE audit_cursors (
    network    TEXT NOT NULL,
    account    TEXT NOT NULL,
    until_sig  TEXT,
    top_sig    TEXT,
    before_sig TEXT,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (network, account)
);
