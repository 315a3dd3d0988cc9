"""The first schema: merchants, wallets, checkouts, payments, the outbox."""

from yoyo import step

from psp_server.storage.ddl import sql_step

steps = [step(sql_step("0001_initial.sql"))]
