-- scan2pay PSP: pairing a terminal with a code it shows (docs/pairing.md).

-- One pairing: started by a terminal, approved by a merchant, its settings
-- collected once by the device that started it. Neither secret is kept:
-- code_hash and device_secret_hash are SHA-256 hex digests. status:
--   pending    waiting for a merchant, until expires_at;
--   approving  a merchant's approval is making the broker account;
--   approved   the account exists; mqtt_password waits for the device,
--              until expires_at (renewed at approval);
--   delivered  the device has its settings; mqtt_password is gone;
--   revoked    unpaired: the account was dropped.
-- A pending pairing past expires_at is expired; nothing needs to mark it.
CREATE TABLE pairings (
    id                  TEXT PRIMARY KEY,
    code_hash           TEXT NOT NULL UNIQUE,
    device_secret_hash  TEXT NOT NULL,
    status              TEXT NOT NULL
        CHECK (status IN ('pending', 'approving', 'approved', 'delivered', 'revoked')),
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    merchant_id         TEXT REFERENCES merchants (id),
    terminal_id         TEXT,
    mqtt_password       TEXT,
    approved_at         BIGINT,
    delivered_at        BIGINT,
    revoked_at          BIGINT
);

-- Pending pairings by age, for purging those that were never approved.
CREATE INDEX pairings_pending_by_expiry ON pairings (expires_at) WHERE status = 'pending';

-- The terminals paired this way, one row per (merchant, terminal id): the
-- key is what keeps two pairings from taking one terminal id.
CREATE TABLE paired_terminals (
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    terminal_id  TEXT NOT NULL,
    pairing_id   TEXT NOT NULL UNIQUE REFERENCES pairings (id),
    paired_at    BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, terminal_id)
);
