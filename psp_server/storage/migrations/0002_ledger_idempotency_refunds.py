"""A double-entry ledger, refunds and idempotency keys."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0001_initial"}

steps = [step(sql_step("0002_ledger_idempotency_refunds.sql"))]
