"""Webhook endpoints keep their place in their merchant's events by seq."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0005_event_notify"}

steps = [step(sql_step("0006_webhook_seq_cursor.sql"))]
