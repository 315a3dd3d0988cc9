-- scan2pay PSP, PostgreSQL only: every transaction that writes events
-- notifies the channel scan2pay_events when it commits, so that the relay
-- of whichever process holds the merchant (psp_server/partitions.py) wakes
-- at once. PostgreSQL folds a transaction's equal notifications into one.
CREATE FUNCTION scan2pay_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scan2pay_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION scan2pay_notify_events();
