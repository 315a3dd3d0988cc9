-- scan2pay PSP: merchant webhooks (docs/webhooks.md).
-- Times are BIGINT milliseconds since the epoch, as in 0001.

-- A merchant's endpoint. The secret is stored as given, not hashed: signing
-- a delivery (HMAC-SHA256) needs the secret itself.
-- last_position is the endpoint's cursor into `events`: the dispatcher has
-- made a delivery for every event of this merchant up to this position. It
-- starts at the newest position when the endpoint is registered, so an
-- endpoint receives only the events written after it.
CREATE TABLE webhook_endpoints (
    id             TEXT PRIMARY KEY,
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    url            TEXT NOT NULL,
    secret         TEXT NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    last_position  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT
);

CREATE INDEX webhook_endpoints_of_merchant ON webhook_endpoints (merchant_id, created_at);

-- One row per (endpoint, event): the delivery log. status is `pending`
-- until a 2xx answer (`delivered`) or until the retry window has passed
-- (`failed`). next_attempt_at is NULL when nothing is scheduled; a manual
-- redelivery sets it to now.
CREATE TABLE webhook_deliveries (
    endpoint_id       TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_position    BIGINT NOT NULL REFERENCES events (position),
    event_id          TEXT NOT NULL,
    seq               BIGINT NOT NULL,
    type              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    first_attempt_at  BIGINT,
    last_attempt_at   BIGINT,
    last_status_code  INTEGER,
    last_error        TEXT,
    next_attempt_at   BIGINT,
    delivered_at      BIGINT,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, event_position),
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_due_of_endpoint
    ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE next_attempt_at IS NOT NULL;
