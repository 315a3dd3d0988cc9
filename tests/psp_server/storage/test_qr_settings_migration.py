"""Migration 0012 on a database an older release left: its merchants keep
bare URLs, and their settings can then be set, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from psp_server.core.qr import QrSettings
from psp_server.storage import open_storage, postgres, sqlite
from tests.support.db import at_migration, connect, is_postgresql
from tests.support.postgres import PgServer, create_database, drop_database


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "old.db")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = create_database(server)
    try:
        yield server.dsn(name)
    finally:
        drop_database(server, name)


async def test_older_merchants_keep_bare_urls_until_they_choose(old_db: str) -> None:
    at_migration(old_db, "0010_event_terminal_id")
    with connect(old_db) as conn:
        conn.execute(
            "INSERT INTO merchants (id, name, api_key_hash, last_event_seq, created_at)"
            " VALUES ('mer_a', 'A', 'ha', 0, 1)"
        )
    if is_postgresql(old_db):
        postgres.migrate(old_db)
    else:
        sqlite.migrate(old_db)
    with connect(old_db) as conn:
        row = conn.execute(
            "SELECT qr_format, mcc, country, city, emv_profile, emv_gui FROM merchants"
        ).fetchone()
    assert tuple(row) == ("url", None, None, None, "scan2pay", None)
    storage = open_storage(old_db)
    try:
        found = await storage.merchant_with_key_hash("mer_a")
        assert found is not None
        assert found[0].qr == QrSettings()
        wanted = QrSettings("emv", "5814", "DE", "Berlin", "pix", "br.gov.bcb.pix")
        updated = await storage.update_qr_settings("mer_a", wanted)
        assert updated is not None
        assert updated.qr == wanted
        assert await storage.update_qr_settings("mer_nobody", wanted) is None
    finally:
        await storage.close()
