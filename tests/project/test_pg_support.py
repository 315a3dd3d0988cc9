"""The PostgreSQL test infrastructure itself (tests/support/postgres.py and
the pg_server and pg_dsn fixtures), against real postgres processes."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import postgres
from tests.support.postgres import PgCluster, PgNotInstalled, PgServer, fresh_database

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def cluster(pg_server: PgServer) -> Iterator[PgCluster]:
    """The session's cluster; a cluster of our own when the session uses the
    server SCAN2PAY_TEST_PG_DSN names, since these tests are about PgCluster."""
    if pg_server.cluster is not None:
        yield pg_server.cluster
        return
    with PgCluster() as own:
        yield own


def database_exists(server: PgServer, dsn: str) -> bool:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(server.admin_dsn) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


def setting(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
        assert row is not None
        return str(row[0])


async def test_fresh_database_is_empty_and_round_trips_a_table(pg_dsn: str) -> None:
    assert pg_dsn.startswith("postgresql://")
    with psycopg.connect(pg_dsn) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE money (id bigint PRIMARY KEY, amount bigint, note text)")
        conn.execute("INSERT INTO money VALUES (1, 1234, 'Café')")
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        cursor = await conn.execute("SELECT amount, note FROM money WHERE id = 1")
        assert await cursor.fetchone() == (1234, "Café")


def test_pg_dsn_databases_are_distinct_and_dropped_after(
    pytester: pytest.Pytester, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An inner session runs the real fixtures on this session's server,
    # through SCAN2PAY_TEST_PG_DSN, and says which databases its tests got.
    monkeypatch.setenv(postgres.DSN_ENV, pg_server.admin_dsn)
    seen = pytester.path / "seen.jsonl"
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest("from tests.conftest import pg_dsn, pg_server  # noqa: F401\n")
    pytester.makepyfile(
        f"""
        import json, psycopg

        def record(pg_dsn):
            with psycopg.connect(pg_dsn) as conn:
                name = conn.execute("SELECT current_database()").fetchone()[0]
                conn.execute("CREATE TABLE mine (id int)")
            with open({str(seen)!r}, "a") as out:
                out.write(json.dumps([pg_dsn, name]) + "\\n")

        def test_one(pg_dsn):
            record(pg_dsn)

        def test_two(pg_dsn):
            record(pg_dsn)
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    got = [json.loads(line) for line in seen.read_text().splitlines()]
    assert len(got) == 2
    (first_dsn, first), (second_dsn, second) = got
    assert first != second  # the second test's CREATE TABLE did not meet the first's
    assert first.startswith("t_")
    assert second.startswith("t_")
    assert first_dsn == pg_server.dsn(first)
    assert second_dsn == pg_server.dsn(second)
    assert not database_exists(pg_server, first_dsn)
    assert not database_exists(pg_server, second_dsn)


def test_fresh_database_is_dropped_with_connections_left_open(pg_server: PgServer) -> None:
    with fresh_database(pg_server) as dsn:
        leaked = psycopg.connect(dsn)
        assert database_exists(pg_server, dsn)
    assert not database_exists(pg_server, dsn)
    with pytest.raises(psycopg.OperationalError):
        leaked.execute("SELECT 1")
    leaked.close()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, as the kernel lists them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_cluster_listens_on_127_0_0_1_only(cluster: PgCluster) -> None:
    assert setting(cluster.dsn(), "listen_addresses") == "127.0.0.1"
    assert listening_addresses(cluster.port) == {"0100007F"}  # 127.0.0.1, little-endian
    # Still the loopback interface, but not the address the server bound.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", cluster.port), 2).close()


def test_test_cluster_does_not_wait_for_the_disk(cluster: PgCluster) -> None:
    for name in ("fsync", "synchronous_commit", "full_page_writes"):
        assert setting(cluster.dsn(), name) == "off", name
    assert setting(cluster.dsn(), "max_connections") == "200"


def test_durable_cluster_fsyncs_and_leaves_nothing_behind() -> None:
    with PgCluster(durable=True) as durable:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            assert setting(durable.dsn(), name) == "on", name
        workdir, port = durable.workdir, durable.port
        assert workdir is not None
        assert (workdir / "data" / "PG_VERSION").exists()
    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 2).close()


def test_missing_binaries_fail_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(postgres.BINDIR_ENV, str(tmp_path))
    monkeypatch.delenv(postgres.DSN_ENV, raising=False)
    with (
        pytest.raises(PgNotInstalled) as failure,
        postgres.running_server(),
    ):
        pass
    message = str(failure.value)
    assert "sudo apt-get install postgresql" in message
    assert "SCAN2PAY_TEST_PG_DSN" in message
    assert str(tmp_path) in message


def test_start_takes_another_port_when_its_port_was_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        probe = postgres.free_port
        monkeypatch.setattr(postgres, "free_port", lambda: next(ports, None) or probe())
        with PgCluster() as cluster:
            assert cluster.port != taken
            assert setting(cluster.dsn(), "port") == str(cluster.port)
            assert "could not bind" in cluster.log.read_text()


def test_failed_start_reports_the_server_log_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(prefix: str) -> str:
        made.append(mkdtemp(prefix=prefix))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    broken = PgCluster()
    options = broken._options
    monkeypatch.setattr(broken, "_options", lambda: [*options(), "-c", "no_such_setting=1"])
    with pytest.raises(RuntimeError, match="postgres did not start") as failure:
        broken.start()
    assert "no_such_setting" in str(failure.value)  # the server's own words
    assert broken.process is None
    assert len(made) == 1
    assert not Path(made[0]).exists()
