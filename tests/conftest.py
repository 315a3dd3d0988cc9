from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.broker import Mosquitto
from tests.support.browser import BrowserSession, browser_session
from tests.support.mqtt import Subscriber
from tests.support.postgres import (
    PgServer,
    create_database,
    drop_database,
    fresh_database,
    running_server,
)
from tests.support.psp import Psp, start_psp, stop_psp
from tests.support.reaper import guard_this_process

# Fixtures more than one test module takes, kept with the other helpers.
pytest_plugins = [
    "tests.support.shops",
    "tests.support.documented_responses",
    "tests.support.prometheus",
]

# Property tests draw the same examples on every run, so that a run passes
# or fails by the code and not by chance (a failure seen once can be run
# again), and keep no example database between runs. HYPOTHESIS_PROFILE=random
# draws new examples each run, to hunt for new failures locally.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("random", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    # In the controller and in each xdist worker: whatever a process starts
    # dies with it, even when it is killed and runs no teardown.
    guard_this_process()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "mosquitto")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The PSP's ``--db``, once for each backend: a SQLite file, or a fresh
    database on the session's PostgreSQL server. Tests that take it (or the
    ``psp`` fixtures) run against both."""
    if request.param == "sqlite":
        yield str(tmp_path / "psp.db")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_psp_template")
    with fresh_database(server, template) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_psp_template(pg_server: PgServer) -> Iterator[str]:
    """A database with the PSP's schema, migrated once: each test's database
    is a copy (CREATE DATABASE ... TEMPLATE), which is faster than migrating
    each. Tests of the migrations themselves start from empty databases."""
    from psp_server.storage.postgres import migrate

    name = create_database(pg_server)
    migrate(pg_server.dsn(name))
    yield name
    drop_database(pg_server, name)


@pytest.fixture
async def psp(db: str) -> AsyncIterator[Psp]:
    """A PSP with no broker: for API tests that do not look at events."""
    server = await start_psp(db, sweep_interval=0.05)
    yield server
    await stop_psp(server)


@pytest.fixture
async def psp_with_broker(db: str, broker: Mosquitto) -> AsyncIterator[Psp]:
    server = await start_psp(db, mqtt_url=broker.url, sweep_interval=0.05)
    yield server
    await stop_psp(server)


@pytest.fixture
def subscribe(broker: Mosquitto) -> Iterator[Callable[..., Subscriber]]:
    """Makes plain paho subscribers on the test's broker, closed at teardown."""
    made: list[Subscriber] = []

    def make(topic: str, *, client_id: str | None = None, persistent: bool = False) -> Subscriber:
        subscriber = Subscriber(broker.port, topic, client_id=client_id, persistent=persistent)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session: a throwaway cluster (initdb
    costs about a second), or the server SCAN2PAY_TEST_PG_DSN names."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """The postgresql:// DSN of a new empty database, dropped after the test."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[BrowserSession]:
    """Headless Chromium (tests/support/browser.py); screenshots of the test's
    pages land in test-results/screenshots/, and a script error fails it."""
    async with browser_session(request.node.nodeid) as session:
        yield session
    assert not session.problems, "\n".join(session.problems)
