"""The Ed25519 keys that sign events and display tickets."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0003_webhooks"}

steps = [step(sql_step("0004_signing_keys.sql"))]
