-- Prepaid credits (PostgreSQL; the SQLite twin is migrations/sqlite/). 1 credit = 1 atomic
-- unit of the asset. A balance never goes negative (the CHECK, and every debit is a
-- conditional update); every movement is a row.

-- Credits a settled payment grants to its payer (a top-up pack), applied exactly once, in the
-- same transaction that marks the payment settled.
ALTER TABLE payments ADD COLUMN credits_granted BIGINT;

CREATE TABLE credit_accounts (
    wallet     TEXT PRIMARY KEY,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    updated_ms BIGINT NOT NULL
);

-- topup (+, a settled payment), reserve (-, before an upstream call), void (+, the call failed:
-- the reservation comes back), spend (0: the reservation became final).
CREATE TABLE credit_movements (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    balance     BIGINT NOT NULL,
    reference   TEXT NOT NULL,
    route       TEXT,
    at_ms       BIGINT NOT NULL,
    instance    TEXT NOT NULL
);
CREATE INDEX credit_movements_wallet ON credit_movements (wallet, id);
-- One top-up per payment, one reservation per call, and one outcome per reservation: a spend
-- and a void of the same call can never both land (whichever comes first wins).
CREATE UNIQUE INDEX credit_topup_once ON credit_movements (reference) WHERE kind = 'topup';
CREATE UNIQUE INDEX credit_reserve_once ON credit_movements (reference) WHERE kind = 'reserve';
CREATE UNIQUE INDEX credit_outcome_once ON credit_movements (reference) WHERE kind IN ('spend', 'void');
