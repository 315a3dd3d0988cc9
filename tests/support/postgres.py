"""Real PostgreSQL servers for tests: a throwaway cluster on an ephemeral
loopback port with all its state in one temporary folder, and a fresh
database per test on it (or on the server SCAN2PAY_TEST_PG_DSN names)."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.support.process import end_process

DSN_ENV = "SCAN2PAY_TEST_PG_DSN"
BINDIR_ENV = "SCAN2PAY_PG_BINDIR"
START_TIMEOUT = 20.0
START_ATTEMPTS = 5
SERVER_BINARIES = ("initdb", "postgres")
INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, postgres) are not installed; the tests start "
    "a real server. Install them with `sudo apt-get install postgresql` (make test does "
    f"this when run as root), or set {DSN_ENV} to a database on an existing server in "
    "which the tests may CREATE DATABASE."
)
# How postgres says that another process took the port between our probe and its bind.
PORT_TAKEN = re.compile(r"could not bind|could not create any TCP/IP sockets")


class PgNotInstalled(RuntimeError):
    pass


def find_bindir() -> Path:
    """The folder holding initdb and postgres: SCAN2PAY_PG_BINDIR when set
    (and then only it), else Debian's newest /usr/lib/postgresql/<major>/bin,
    else what pg_config says."""
    override = os.environ.get(BINDIR_ENV)
    if override:
        candidates = [Path(override)]
        where = f"{BINDIR_ENV}={override}"
    else:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
        candidates += _pg_config_bindir()
        where = "/usr/lib/postgresql/*/bin or `pg_config --bindir`"
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES):
            return bindir
    raise PgNotInstalled(f"No initdb and postgres in {where}. {INSTALL_HINT}")


def _major(bindir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def _pg_config_bindir() -> list[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return []
    done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    return [Path(done.stdout.strip())] if done.returncode == 0 and done.stdout.strip() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One postgres server from initdb to removal. Listens on 127.0.0.1 only,
    trusts every local connection, and keeps its data, socket and log in a
    temporary folder. Unless durable, commits do not wait for the disk: tests
    need the server's semantics, not its crash safety."""

    def __init__(self, *, durable: bool = False, bindir: Path | None = None) -> None:
        self.durable = durable
        self.bindir = bindir
        self.workdir: Path | None = None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        # initdb and postgres refuse to run as root; root runs them as the
        # user Debian's package creates for this.
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise PgNotInstalled(
                    f"Running as root, and there is no `postgres` user to run the server. "
                    f"{INSTALL_HINT}"
                ) from None
            self.user = account.pw_name
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{quote(self.user, safe='')}@127.0.0.1:{self.port}/{quote(dbname)}"

    @property
    def log(self) -> Path:
        assert self.workdir is not None, "the cluster is not started"
        return self.workdir / "postgres.log"

    def start(self) -> None:
        bindir = self.bindir or find_bindir()
        self.workdir = Path(tempfile.mkdtemp(prefix="scan2pay-pg-"))
        if self._run_as:
            os.chown(self.workdir, self._run_as["user"], self._run_as["group"])
        atexit.register(self.stop)  # a session that dies early leaves no server behind
        try:
            self._initdb(bindir)
            self._launch(bindir)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.process is not None:
            _shut_down(self.process)
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir)
            self.workdir = None

    def halt(self) -> None:
        """Shuts the server down (fast shutdown, as an operator's restart
        does) and keeps its data and port for ``resume``."""
        assert self.process is not None, "the cluster is not running"
        _shut_down(self.process)
        self.process = None

    def resume(self) -> None:
        """Starts the halted server again on the same port and data."""
        assert self.process is None, "the cluster is not halted"
        assert self.workdir is not None, "the cluster was never started"
        self._launch(self.bindir or find_bindir(), port=self.port)

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self, bindir: Path) -> None:
        assert self.workdir is not None
        command = [
            str(bindir / "initdb"),
            *("--pgdata", str(self.workdir / "data"), "--username", self.user),
            *("--auth", "trust", "--encoding", "UTF8", "--locale", "C.UTF-8"),
            # The cluster lives for one session; `durable` is about commits.
            "--no-sync",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False, **self._run_as)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")

    def _launch(self, bindir: Path, port: int | None = None) -> None:
        assert self.workdir is not None
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = port or free_port()
            logged = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [str(bindir / "postgres"), *self._options()],
                    stdout=log,
                    stderr=log,
                    # Keeps the terminal's Ctrl-C from shutting the server down
                    # under the session's teardown.
                    start_new_session=True,
                    **self._run_as,
                )
            if self._wait_ready():
                return
            self.process = None
            with self.log.open("rb") as log:
                log.seek(logged)
                said = log.read().decode(errors="replace")
            if not (PORT_TAKEN.search(said) and attempt < START_ATTEMPTS and port is None):
                raise RuntimeError(f"postgres did not start on port {self.port}:\n{said[-4000:]}")

    def _options(self) -> list[str]:
        assert self.workdir is not None
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.workdir),
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = ["-D", str(self.workdir / "data")]
        for name, value in settings.items():
            options += ["-c", f"{name}={value}"]
        return options

    def _wait_ready(self) -> bool:
        """True once the postmaster says it accepts connections (the status
        line of postmaster.pid, as `pg_ctl -w` reads it); False if it exited.
        Raises with the log when it neither does within START_TIMEOUT."""
        assert self.process is not None
        assert self.workdir is not None
        pidfile = self.workdir / "data" / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(FileNotFoundError):
                lines = pidfile.read_text().splitlines()
                mine = len(lines) >= 8 and lines[0] == str(self.process.pid)
                if mine and lines[7].strip() == "ready":
                    return True
            time.sleep(0.01)
        _shut_down(self.process)
        self.process = None
        raise RuntimeError(
            f"postgres did not accept connections on port {self.port} within "
            f"{START_TIMEOUT:.0f}s:\n{self.log.read_text(errors='replace')[-4000:]}"
        )


def _shut_down(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is postgres's fast shutdown: it ends open sessions instead of
    # waiting for them, which a test that leaked a connection would make us do.
    end_process(process, signal.SIGINT, timeout=20)


@dataclass(frozen=True)
class PgServer:
    """A server the tests may make databases on: `admin_dsn` is a database
    to connect to for CREATE and DROP DATABASE. `cluster` is the PgCluster
    behind it, or None for the server SCAN2PAY_TEST_PG_DSN names."""

    admin_dsn: str
    cluster: PgCluster | None = None

    def dsn(self, dbname: str) -> str:
        return with_dbname(self.admin_dsn, dbname)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """The server SCAN2PAY_TEST_PG_DSN names, or a PgCluster for as long as
    the block runs."""
    existing = os.environ.get(DSN_ENV)
    if existing:
        yield PgServer(existing)
        return
    with PgCluster() as cluster:
        yield PgServer(cluster.dsn(), cluster)


def with_dbname(dsn: str, dbname: str) -> str:
    """`dsn` (a URL or key=value conninfo) pointing at `dbname`, as a
    postgresql:// URL: the form the PSP's --db tells from a SQLite path."""
    params = conninfo_to_dict(dsn)
    params.pop("dbname", None)
    user = params.pop("user", None)
    password = params.pop("password", None)
    userinfo = ""
    if user is not None:
        userinfo = quote(str(user), safe="")
        if password is not None:
            userinfo += ":" + quote(str(password), safe="")
        userinfo += "@"
    host = str(params.get("host", ""))
    port = str(params.get("port", ""))
    netloc = ""
    # A socket folder or a list of hosts stays in the query, where libpq takes it too.
    if host and not host.startswith("/") and "," not in host + port:
        netloc = f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
        params.pop("host")
        params.pop("port", None)
    query = urlencode({k: str(v) for k, v in params.items()}, quote_via=quote)
    return f"postgresql://{userinfo}{netloc}/{quote(dbname, safe='')}" + (
        f"?{query}" if query else ""
    )


def create_database(server: PgServer, template: str | None = None) -> str:
    """Makes a database with a name no other test uses, empty or a copy of
    ``template``; returns its name."""
    name = f"t_{secrets.token_hex(8)}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        admin.execute(statement)
    return name


def drop_database(server: PgServer, name: str) -> None:
    """Drops it even if a test left connections open to it."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        if admin.info.server_version >= 130000:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            return
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def fresh_database(server: PgServer, template: str | None = None) -> Iterator[str]:
    """The DSN of a new database on `server`, empty or a copy of
    ``template``, dropped when the block ends."""
    name = create_database(server, template)
    try:
        yield server.dsn(name)
    finally:
        drop_database(server, name)
