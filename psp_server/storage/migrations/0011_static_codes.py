"""Static till codes: printed codes that point at a till, and the checkouts
customers make at them."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0010_event_terminal_id"}

steps = [step(sql_step("0011_static_codes.sql"))]
