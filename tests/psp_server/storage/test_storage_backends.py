"""The database backend is chosen once, by the scheme of the configured URL,
and the app asks that one object for its storage, its partitions and its
wake-ups from other processes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

from psp_server.api.appkeys import BACKEND, PARTITION_LEASES, STORAGE
from psp_server.core.errors import ConfigError
from psp_server.runtime import config
from psp_server.storage import backends
from psp_server.storage.backends import BadDatabaseURL, choose
from psp_server.storage.partitions import AllPartitions, Partitions
from psp_server.storage.postgres import PostgresBackend
from psp_server.storage.postgres_processes import LeasedPartitions
from psp_server.storage.sqlite import SqliteBackend, SqliteStorage
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from tests.support.psp import start_psp, stop_psp

# Nothing listens here; choosing a backend connects to nothing.
PG_URL = "postgresql://scan2pay@127.0.0.1:1/psp"


def test_the_scheme_names_the_backend() -> None:
    assert type(choose("/var/lib/scan2pay/psp.db")) is SqliteBackend
    sqlite_url = choose("sqlite:///psp.db")
    assert isinstance(sqlite_url, SqliteBackend)
    assert sqlite_url.path == "psp.db"
    for url in (PG_URL, "postgres://scan2pay@127.0.0.1:1/psp"):
        chosen = choose(url)
        assert type(chosen) is PostgresBackend
        assert chosen.url == url
    assert "127.0.0.1" not in repr(choose("postgresql://u:secret@127.0.0.1:1/psp"))


def test_an_unknown_scheme_is_refused_with_the_known_ones() -> None:
    with pytest.raises(BadDatabaseURL) as caught:
        choose("mysql://root@127.0.0.1/psp")
    assert "mysql://" in str(caught.value)
    for scheme in ("sqlite://", "postgresql://", "postgres://"):
        assert scheme in str(caught.value)
    with pytest.raises(BadDatabaseURL, match="sqlite:///path"):
        choose("sqlite://relative.db")


def test_config_reports_a_bad_database_url_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({"db": "mysql://root@127.0.0.1/psp", "port": "x"}, env={})
    problems = {p.split(" ", 1)[0]: p for p in caught.value.problems}
    assert set(problems) == {"port", "db"}
    db = problems["db"]
    assert db.startswith("db (SCAN2PAY_DB): no database backend for mysql://")
    # The hint shows each backend's form, from the registry.
    assert f"expected {backends.forms()}" in db
    for kind in backends.kinds():
        assert kind.form in db
    assert config.load({"db": str(tmp_path / "ok.db")}, env={}).db == str(tmp_path / "ok.db")


def test_several_workers_need_a_backend_that_processes_share() -> None:
    assert [kind.name for kind in backends.kinds() if kind.shared] == ["PostgreSQL"]
    assert config.load({"db": PG_URL, "workers": "4"}, env={}).workers == 4
    with pytest.raises(ConfigError) as caught:
        config.load({"db": "psp.db", "workers": "4"}, env={})
    (problem,) = caught.value.problems
    assert problem.startswith(
        "workers (SCAN2PAY_WORKERS): SQLite has one writer; use PostgreSQL (a postgresql:// --db)"
    )


async def test_each_backend_brings_its_partitions_and_wake_source(tmp_path: Path) -> None:
    wake = asyncio.Event()
    single = choose(str(tmp_path / "psp.db"))
    assert isinstance(single.partitions(), AllPartitions)
    assert single.wake_source(wake) is None
    shared = choose(PG_URL)
    leases = shared.partitions()
    assert isinstance(leases, LeasedPartitions)
    await leases.close()  # it had not connected yet
    listening = shared.wake_source(wake)
    assert listening is not None
    listening.close()


class _Counted(SqliteBackend):
    """The SQLite backend, counting what the app asks of it."""

    made: ClassVar[list[_Counted]] = []

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.opened: list[SqliteStorage] = []
        self.clocks: list[Clock] = []
        self.leases: list[Partitions] = []
        self.wake_sources = 0
        _Counted.made.append(self)

    def open_storage(self, clock: Clock = SYSTEM_CLOCK) -> SqliteStorage:
        storage = super().open_storage(clock)
        self.clocks.append(clock)
        self.opened.append(storage)
        return storage

    def partitions(self) -> Partitions:
        leases = super().partitions()
        self.leases.append(leases)
        return leases

    def wake_source(self, wake: asyncio.Event) -> None:
        self.wake_sources += 1


async def test_the_app_chooses_its_backend_once_and_asks_it_for_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for scheme in SqliteBackend.schemes:
        monkeypatch.setitem(backends._registry(), scheme, _Counted)
    monkeypatch.setattr(_Counted, "made", [])
    db = str(tmp_path / "psp.db")
    psp = await start_psp(db, sweep_interval=3600)
    try:
        merchant = await psp.merchant()
        await psp.checkout(merchant)
        (backend,) = _Counted.made
        app = psp.server.app
        assert app[BACKEND] is backend
        assert backend.path == db
        assert backend.opened == [app[STORAGE]]
        assert backend.clocks == [psp.clock]  # the app's: its cache and rows go by it
        assert backend.leases == [app[PARTITION_LEASES]]
        assert backend.wake_sources == 1
    finally:
        await stop_psp(psp)
    assert len(_Counted.made) == 1
