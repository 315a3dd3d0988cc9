-- scan2pay PSP, PostgreSQL: the rows written before the column get the
-- terminal their payload names. A payload that is not JSON, or names no
-- terminal as a string, is left without one, as the relay treated it
-- before; PostgreSQL 15 has no IS JSON, so the cast's error is caught here.
CREATE FUNCTION pg_temp.scan2pay_terminal_of(payload TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    terminal JSONB;
BEGIN
    terminal := payload::jsonb #> '{checkout,terminal_id}';
    IF jsonb_typeof(terminal) = 'string' THEN
        RETURN terminal #>> '{}';
    END IF;
    RETURN NULL;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END
$$;

UPDATE events SET terminal_id = pg_temp.scan2pay_terminal_of(payload)
WHERE pg_temp.scan2pay_terminal_of(payload) IS NOT NULL;

DROP FUNCTION pg_temp.scan2pay_terminal_of(TEXT);
