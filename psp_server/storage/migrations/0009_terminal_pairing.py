"""Pairing terminals with a code they show, instead of copying secrets."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0008_merchant_session_epoch"}

steps = [step(sql_step("0009_terminal_pairing.sql"))]
