"""Each event row names the terminal its checkout was made for, so that the
relay routes it without reading its payload; older rows get it from theirs."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0009_terminal_pairing"}

steps = [
    step(sql_step("0010_event_terminal_id.sql")),
    step(sql_step("0010_event_terminal_id_sqlite.sql", only="sqlite")),
    step(sql_step("0010_event_terminal_id_postgresql.sql", only="postgresql")),
]
