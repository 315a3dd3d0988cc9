"""Pairing against real processes (docs/pairing.md): the example broker
(``SecureMosquitto``: examples/mosquitto's config and ACL, over TLS), a
``psp-server serve`` that makes terminal accounts in that broker's folder
and reloads it with SIGHUP, and ``scan2pay-terminal`` on the PNG display.

The terminal's screen is read as a merchant's phone reads it: the pairing
QR on the PNG it draws names the board's page with the code filled in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from psp_server.mqtt import accounts as mqtt_accounts
from tests.support.process import PspProcess, create_merchant, create_wallet, end_process, run_cli
from tests.support.secure_broker import Certs, Client, SecureMosquitto
from tests.support.secure_shops import decode_qr

BIN = Path(sys.executable).parent


@dataclass
class PairingWorld:
    broker: SecureMosquitto
    psp: PspProcess
    db: Path
    merchants: list[dict[str, str]]  # merchant_id, name, api_key
    wallet_token: str
    passwords: dict[str, str]  # the broker accounts made by hand: psp, the cashiers

    def pairing_flags(self) -> list[str]:
        """What psp-server terminal approve|revoke needs, as serve has it."""
        assert self.broker.process is not None
        return [
            *("--db", str(self.db), "--mosquitto-dir", str(self.broker.dir)),
            *("--terminal-mqtt", f"mqtts://127.0.0.1:{self.broker.tls_port}"),
            *("--terminal-mqtt-ca", str(self.broker.ca)),
            *("--mosquitto-reload", f"kill -HUP {self.broker.process.pid}"),
        ]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("terminal", *args, *self.pairing_flags())

    def cashier(self, merchant_id: str) -> Client:
        return Client(self.broker, merchant_id, self.passwords[merchant_id])

    def broker_files(self) -> tuple[str, str]:
        return (
            (self.broker.dir / mqtt_accounts.PASSWORD_FILE).read_text(),
            (self.broker.dir / mqtt_accounts.ACL_FILE).read_text(),
        )


@contextmanager
def pairing_world(
    workdir: Path, certs: Certs, *, extra: tuple[str, ...] = ()
) -> Iterator[PairingWorld]:
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "psp.db"
    merchants = [create_merchant(db, "Shop A"), create_merchant(db, "Shop B")]
    wallet = create_wallet(db, "EUR", "100.00")
    broker = SecureMosquitto(workdir / "mosquitto", certs)
    passwords = {
        account.username: mqtt_accounts.create_account(broker.dir, account)
        for account in (
            mqtt_accounts.psp_account(),
            *(mqtt_accounts.cashier_account(m["merchant_id"]) for m in merchants),
        )
    }
    with ExitStack() as stack:
        broker.start()
        stack.callback(broker.stop)
        assert broker.process is not None
        psp_login = mqtt_accounts.userinfo("psp", passwords["psp"])
        psp = PspProcess(
            db,
            mqtt=f"mqtt://{psp_login}@127.0.0.1:{broker.plain_port}",
            extra=(
                *("--terminal-mqtt", f"mqtts://127.0.0.1:{broker.tls_port}"),
                *("--terminal-mqtt-ca", str(broker.ca)),
                *("--mosquitto-dir", str(broker.dir)),
                *("--mosquitto-reload", f"kill -HUP {broker.process.pid}"),
                *extra,
            ),
        )
        stack.callback(psp.stop)
        yield PairingWorld(broker, psp, db, merchants, wallet["token"], passwords)


class Terminal:
    """``scan2pay-terminal`` as a shop owner runs it: ``pair`` on purpose, or
    the plain daemon with a config file that has no credentials."""

    def __init__(self, workdir: Path, *args: str, config: Path | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = config or workdir / "terminal.toml"
        self.frames = workdir / "frames"
        self.log_path = workdir / "terminal.log"
        self.started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCAN2PAY_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "scan2pay-terminal"),
                    *args,
                    *("--config", str(self.config), "--display", f"png:{self.frames}"),
                ],
                stdout=log,
                stderr=log,
                env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def on_screen(self) -> list[str]:
        latest = self.frames / "latest.png"
        if not latest.exists():
            return []
        try:
            return decode_qr(latest)
        except OSError:  # caught mid-write
            return []

    def pairing_code(self, *, other_than: str = "", timeout: float = 20.0) -> str:
        """The code in the pairing QR on screen, as a phone reads it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            for text in self.on_screen():
                parts = urlsplit(text)
                if parts.path.endswith("/merchant/pair"):
                    code = parse_qs(parts.query).get("code", [""])[0]
                    if code and code != other_than:
                        return code
            time.sleep(0.05)
        raise AssertionError(f"no pairing QR on screen; log:\n{self.log()}")

    def stop(self) -> int:
        return end_process(self.process)


def tables(db: Path) -> dict[str, list[Any]]:
    """The pairing tables' rows, to show that a refusal changed nothing."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return {
            name: sorted(conn.execute(f"SELECT * FROM {name}").fetchall())  # noqa: S608 - two fixed table names
            for name in ("pairings", "paired_terminals")
        }
    finally:
        conn.close()
