"""PostgreSQL: a notification at each commit that wrote events (SQLite has
one process, which wakes its relay itself)."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0004_signing_keys"}

steps = [step(sql_step("0005_event_notify.sql", only="postgresql"))]
