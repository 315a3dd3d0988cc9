-- scan2pay PSP: a double-entry ledger, refunds and idempotency keys.

-- Every movement of money as two or more entries that sum to zero per
-- currency within their transaction. Balances are derived from here; the
-- balance columns of wallets and merchant_balances are caches, written in
-- the same transaction as the entries.
-- Accounts: 'wallet:{wallet_id}', 'merchant:{merchant_id}', 'funding:{currency}'.
-- A positive amount is money the account holds.
CREATE TABLE ledger_entries (
    id              {serial_key},
    transaction_id  TEXT NOT NULL,
    account         TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount <> 0),
    created_at      BIGINT NOT NULL
);

CREATE INDEX ledger_entries_by_account ON ledger_entries (account, currency);
CREATE INDEX ledger_entries_by_transaction ON ledger_entries (transaction_id);

-- The ledger of a database made before it: each wallet is funded with what
-- it holds plus what it paid, and each payment moves its amount, so that
-- the derived balances equal the cached ones from the start.
WITH opening AS (
    SELECT w.id, w.currency, w.created_at,
           w.balance + COALESCE((SELECT SUM(p.amount) FROM payments p WHERE p.wallet_id = w.id), 0)
               AS amount
    FROM wallets w
)
INSERT INTO ledger_entries (transaction_id, account, currency, amount, created_at)
SELECT 'open_' || id, 'funding:' || currency, currency, -amount, created_at
FROM opening WHERE amount > 0
UNION ALL
SELECT 'open_' || id, 'wallet:' || id, currency, amount, created_at
FROM opening WHERE amount > 0;

INSERT INTO ledger_entries (transaction_id, account, currency, amount, created_at)
SELECT p.id, 'wallet:' || p.wallet_id, p.currency, -p.amount, p.created_at
FROM payments p
UNION ALL
SELECT p.id, 'merchant:' || c.merchant_id, p.currency, p.amount, p.created_at
FROM payments p JOIN checkouts c ON c.id = p.checkout_id;

-- What went back to the paying wallet. A checkout's refunds never add up to
-- more than its payment; checkouts.refunded_amount caches their sum.
CREATE TABLE refunds (
    id           TEXT PRIMARY KEY,
    checkout_id  TEXT NOT NULL REFERENCES checkouts (id),
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE INDEX refunds_by_checkout ON refunds (checkout_id);

-- No CHECK here: SQLite verifies one added by ALTER TABLE with a query
-- whose empty result yoyo prints on stdout, into the CLI's --json output.
-- The refund's guarded UPDATE keeps it within 0..amount instead.
ALTER TABLE checkouts ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0;

-- The first answer to each Idempotency-Key, stored in the transaction of the
-- work it describes and replayed for the same request. Rows older than the
-- retention (24 hours at least) may be purged by created_at.
CREATE TABLE idempotency_keys (
    principal     TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          {bytes} NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (principal, endpoint, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
