-- The payment ledger (PostgreSQL). The SQLite twin is migrations/sqlite/, same tables and
-- columns; only the types and identity syntax differ. Times are Unix milliseconds.

-- One row per payment (the SHA-256 of its transaction message), walked through its state
-- machine: claimed -> verified -> upstream_ok | upstream_failed -> settle_submitted ->
-- settled | expired | failed. `attempt` is the claim token of the request now working on it:
-- every write names it, so a late write from an earlier attempt never overwrites a newer one.
CREATE TABLE payments (
    payment_key     TEXT PRIMARY KEY,
    attempt         TEXT NOT NULL,
    state           TEXT NOT NULL,
    pid_alias       TEXT,
    idem_alias      TEXT,
    payer           TEXT NOT NULL,
    pay_to          TEXT NOT NULL,
    asset           TEXT NOT NULL,
    network         TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    route           TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    facilitator     TEXT,
    instance        TEXT NOT NULL,
    signature       TEXT,
    settle_request  TEXT,
    answer_status   BIGINT,
    answer_headers  TEXT,
    answer_body     BYTEA,
    receipt         TEXT,
    reason          TEXT,
    created_ms      BIGINT NOT NULL,
    claimed_ms      BIGINT NOT NULL,
    verified_ms     BIGINT,
    upstream_ms     BIGINT,
    submitted_ms    BIGINT,
    final_ms        BIGINT,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX payments_state ON payments (state, updated_ms);
CREATE INDEX payments_payer ON payments (payer, created_ms);
CREATE INDEX payments_created ON payments (created_ms);
CREATE INDEX payments_final ON payments (final_ms) WHERE state = 'settled';
CREATE INDEX payments_pid ON payments (pid_alias) WHERE pid_alias IS NOT NULL;
CREATE INDEX payments_idem ON payments (idem_alias) WHERE idem_alias IS NOT NULL;
CREATE INDEX payments_signature ON payments (signature) WHERE signature IS NOT NULL;

-- Append-only: every transition of a payment, when, by which instance.
CREATE TABLE payment_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_key TEXT NOT NULL,
    event       TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    instance    TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX payment_events_key ON payment_events (payment_key, id);

-- Gateway instances and when each was last seen alive: the reconciler finishes the payments
-- of an instance that stopped heartbeating (killed mid-payment).
CREATE TABLE instances (
    instance   TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL
);

-- Named leases (the reconciler, the chain audit): one holder at a time, until `until_ms`.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);

-- What the chain audit found: a settled payment the chain does not confirm as recorded, or a
-- transfer into pay_to with no ledger row. One row per (kind, signature).
CREATE TABLE audit_findings (
    kind        TEXT NOT NULL,
    signature   TEXT NOT NULL,
    payment_key TEXT,
    amount      BIGINT,
    detail      TEXT NOT NULL,
    found_ms    BIGINT NOT NULL,
    PRIMARY KEY (kind, signature)
);
