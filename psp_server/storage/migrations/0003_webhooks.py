"""Merchant webhooks and their delivery log."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0002_ledger_idempotency_refunds"}

steps = [step(sql_step("0003_webhooks.sql"))]
