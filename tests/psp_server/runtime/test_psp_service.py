"""psp-server as a systemd service (deploy/psp/psp-server.service, with the
example deploy/psp/psp.env): the unit passes ``systemd-analyze verify`` and
is locked down, the example settings load, psp-server tells a real
``$NOTIFY_SOCKET`` it is ready and stopping, it serves a payment with
writable and executable memory refused (``MemoryDenyWriteExecute=yes``),
and ``psp-server backup`` copies a database while it serves."""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from psp_server.runtime import config
from tests.support.notify_socket import NotifySocket
from tests.support.process import REPO, PspProcess, create_merchant, create_wallet, run_cli
from tests.support.systemd_unit import unit_settings, verify_unit

UNIT = REPO / "deploy" / "psp" / "psp-server.service"
ENV_FILE = REPO / "deploy" / "psp" / "psp.env"
PROGRAM = "/opt/scan2pay/.venv/bin/psp-server"


def http(
    method: str, url: str, body: dict[str, Any] | None = None, bearer: str | None = None
) -> tuple[int, dict[str, Any]]:
    """One JSON request: the status and the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test made
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({} if bearer is None else {"Authorization": f"Bearer {bearer}"}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a loopback URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    verify_unit(UNIT, PROGRAM, tmp_path)


def test_the_unit_notifies_restarts_and_is_locked_down() -> None:
    unit = unit_settings(UNIT.read_text())
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # a bad configuration
    assert unit["ExecStart"] == [f"{PROGRAM} serve"]
    assert unit["EnvironmentFile"] == ["/etc/scan2pay/psp.env"]
    assert unit["KillMode"] == ["mixed"]  # the supervisor stops its workers
    assert (unit["User"], unit["Group"]) == (["scan2pay-psp"], ["scan2pay-psp"])
    for key, value in {
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "RestrictSUIDSGID": "yes",
        "MemoryDenyWriteExecute": "yes",
        "StateDirectory": "scan2pay-psp",
        "ReadWritePaths": "/var/lib/scan2pay-psp",
        "UMask": "0077",
    }.items():
        assert unit.get(key) == [value], key
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines, as systemd's EnvironmentFile reads them (no quotes here)."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_the_example_environment_names_only_settings_and_loads() -> None:
    env = env_file(ENV_FILE)
    known = {var for var, _ in config.FIELDS.values()}
    assert set(env) <= known, set(env) - known
    settings = config.load({}, env)
    assert settings.log_format == "json"
    assert [str(network) for network in settings.trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    assert settings.db == "/var/lib/scan2pay-psp/psp.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    # The unit's data folder is where the example puts the database.
    assert settings.db.startswith(unit_settings(UNIT.read_text())["ReadWritePaths"][0] + "/")


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))  # psp-server inherits it
    yield listener
    listener.close()


def test_psp_server_tells_systemd_it_is_ready_and_then_stopping(
    notify: NotifySocket, tmp_path: Path
) -> None:
    server = PspProcess(tmp_path / "psp.db")
    try:
        notify.until("READY=1")
        # Ready means serving: the socket answers at once.
        assert http("GET", server.url + "/healthz")[0] == 200
        assert notify.heard == ["READY=1"]
    finally:
        assert server.stop() == 0
    notify.until("STOPPING=1")


def test_psp_server_serves_a_payment_with_writable_executable_memory_refused(
    tmp_path: Path,
) -> None:
    under_mdwe = (sys.executable, str(REPO / "tests" / "support" / "deny_write_execute.py"))
    db = tmp_path / "psp.db"
    merchant, wallet = create_merchant(db), create_wallet(db)
    server = PspProcess(db, program=(*under_mdwe, str(Path(sys.executable).parent / "psp-server")))
    try:
        status, created = http(
            "POST",
            server.url + "/v1/checkouts",
            {"order_id": "MDWE-1", "amount": 100, "currency": "EUR"},
            merchant["api_key"],
        )
        assert status == 201, created
        assert created["display_ticket"]  # signed with Ed25519
        code = created["qr_url"].rsplit("/", 1)[1]
        status, paid = http("POST", server.url + "/v1/payments", {"code": code}, wallet["token"])
        assert status == 201, paid
    finally:
        assert server.stop() == 0, server.log()


def test_backup_copies_the_database_while_the_server_runs(tmp_path: Path) -> None:
    db = tmp_path / "psp.db"
    merchant = create_merchant(db)
    server = PspProcess(db)
    try:
        status, created = http(
            "POST",
            server.url + "/v1/checkouts",
            {"order_id": "BACKUP-1", "amount": 100, "currency": "EUR"},
            merchant["api_key"],
        )
        assert status == 201, created
        copy = tmp_path / "backup" / "psp-copy.db"
        copy.parent.mkdir()
        result = run_cli("backup", "--db", str(db), "--to", str(copy))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert not (copy.parent / "psp-copy.db.partial").exists()
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("SELECT order_id FROM checkouts").fetchall() == [("BACKUP-1",)]
        # The copy is a database the PSP takes as it is.
        migrated = run_cli("migrate", "--db", str(copy))
        assert migrated.returncode == 0, migrated.stderr
        # A backup never overwrites a file.
        again = run_cli("backup", "--db", str(db), "--to", str(copy))
        assert again.returncode == 3
        assert "exists" in again.stderr
    finally:
        assert server.stop() == 0


def test_backup_of_postgresql_names_pg_dump(tmp_path: Path) -> None:
    result = run_cli(
        "backup", "--db", "postgresql://scan2pay@127.0.0.1:1/none", "--to", str(tmp_path / "x")
    )
    assert result.returncode == 3
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "x").exists()
