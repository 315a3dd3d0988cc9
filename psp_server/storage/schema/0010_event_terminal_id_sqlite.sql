-- scan2pay PSP, SQLite: the rows written before the column get the terminal
-- their payload names. A payload that is not JSON, or names no terminal as
-- a string, is left without one, as the relay treated it before.
UPDATE events
SET terminal_id = json_extract(payload, '$.checkout.terminal_id')
-- CASE, for json_type to read only what json_valid passed.
WHERE CASE WHEN json_valid(payload) THEN json_type(payload, '$.checkout.terminal_id') = 'text' END;
