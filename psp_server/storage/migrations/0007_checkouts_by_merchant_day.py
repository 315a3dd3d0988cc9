"""The merchant's checkouts by creation time, for the merchant's board."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0006_webhook_seq_cursor"}

steps = [step(sql_step("0007_checkouts_by_merchant_day.sql"))]
