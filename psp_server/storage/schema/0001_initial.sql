-- scan2pay PSP: the first schema.
-- Money is BIGINT minor units; times are BIGINT milliseconds since the epoch.

CREATE TABLE merchants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    api_key_hash    TEXT NOT NULL UNIQUE,
    last_event_seq  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

CREATE TABLE merchant_balances (
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    currency     TEXT NOT NULL,
    balance      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, currency)
);

CREATE TABLE wallets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    currency    TEXT NOT NULL,
    balance     BIGINT NOT NULL CHECK (balance >= 0),
    created_at  BIGINT NOT NULL
);

CREATE TABLE checkouts (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    order_id      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    amount        BIGINT NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    description   TEXT,
    terminal_id   TEXT,
    code          TEXT NOT NULL UNIQUE,
    qr_url        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'cancelled', 'expired')),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);

CREATE INDEX checkouts_pending_by_expiry ON checkouts (expires_at) WHERE status = 'pending';

CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    checkout_id  TEXT NOT NULL UNIQUE REFERENCES checkouts (id),
    wallet_id    TEXT NOT NULL REFERENCES wallets (id),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- The transactional outbox: written in the same transaction as the status
-- change it announces; the relay publishes in `position` order.
CREATE TABLE events (
    position      {serial_key},
    event_id      TEXT NOT NULL UNIQUE,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    seq           BIGINT NOT NULL,
    type          TEXT NOT NULL,
    checkout_id   TEXT NOT NULL REFERENCES checkouts (id),
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    published_at  BIGINT,
    UNIQUE (merchant_id, seq)
);

CREATE INDEX events_unpublished ON events (position) WHERE published_at IS NULL;
