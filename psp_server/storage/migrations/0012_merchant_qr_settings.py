"""Per-merchant QR settings: the bare URL or an EMVCo payload (docs/emv.md)."""

from yoyo import step

from psp_server.storage.ddl import sql_step

__depends__ = {"0011_static_codes"}

steps = [step(sql_step("0012_merchant_qr_settings.sql"))]
