-- scan2pay PSP: each webhook endpoint's cursor becomes its merchant's event
-- seq. On PostgreSQL events.position is not committed in order (another
-- merchant's transaction may commit a higher position first), so a cursor
-- moved to the highest visible position could pass over an event still to
-- be committed. A merchant's seq has no gaps and is committed in order (its
-- events are written with the merchant's row locked).
ALTER TABLE webhook_endpoints RENAME COLUMN last_position TO last_seq;

-- The old cursor said "every event up to this position"; the new one is the
-- highest seq of the merchant's events among those.
UPDATE webhook_endpoints SET last_seq = COALESCE(
    (SELECT MAX(events.seq) FROM events
     WHERE events.merchant_id = webhook_endpoints.merchant_id
       AND events.position <= webhook_endpoints.last_seq),
    0
);
