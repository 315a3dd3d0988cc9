-- scan2pay PSP: static till codes (docs/static-qr.md).

-- A printed code that points at a till, for years: the code is the random
-- part of its URL ({public_url}/S/{code}), kept as it is, as a checkout's
-- one-time code is (a sticker shows it to anyone at the counter). A revoked
-- code keeps its row, so that a scan of it says "revoked" rather than
-- "unknown". open_currency, open_min and open_max are all set, or none.
CREATE TABLE static_codes (
    id             TEXT PRIMARY KEY,
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    terminal_id    TEXT NOT NULL,
    label          TEXT NOT NULL,
    code           TEXT NOT NULL UNIQUE,
    url            TEXT NOT NULL,
    open_currency  TEXT,
    open_min       BIGINT,
    open_max       BIGINT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    CHECK ((open_currency IS NULL) = (open_min IS NULL) AND (open_min IS NULL) = (open_max IS NULL))
);

CREATE INDEX static_codes_by_terminal ON static_codes (merchant_id, terminal_id, created_at);

-- The static code a customer typed a checkout's amount at; NULL for a
-- checkout a cashier made.
ALTER TABLE checkouts ADD COLUMN static_code_id TEXT REFERENCES static_codes (id);

-- A scan asks for the till's newest pending checkout that a cashier made.
CREATE INDEX checkouts_pending_by_terminal ON checkouts (merchant_id, terminal_id, created_at)
    WHERE status = 'pending' AND static_code_id IS NULL;
