"""A per-merchant session epoch: signing out of the board ends its sessions."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0007_checkouts_by_merchant_day"}

steps = [step(sql_step("0008_merchant_session_epoch.sql"))]
