-- scan2pay PSP: the terminal an event's checkout was made for, if any (the
-- checkout's terminal_id, as in the signed payload), written with the event.
-- The relay publishes the event to that terminal's events topic too; with
-- the column it need not parse every payload to find it.
ALTER TABLE events ADD COLUMN terminal_id TEXT;
