-- scan2pay PSP: the Ed25519 keys that sign events and display tickets (docs/signing.md).

-- kid is derived from the public key (scan2pay_common.signing.key_id).
-- private_key and public_key are the raw 32 bytes. Exactly one key is
-- active: the one that signs. Keys that were rotated out stay, inactive,
-- and are still served by GET /v1/keys so that what they signed verifies.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_key  {bytes} NOT NULL,
    public_key   {bytes} NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;
