"""Two merchants, A and B, on one PSP, and A's terminal ``lane-1``, every part
a real process on the example broker: what an attacker meets in a shop.

- mosquitto with examples/mosquitto's config, password file and ACL
  (``SecureMosquitto``), and the accounts ``psp-server`` makes: the PSP,
  each merchant's cashier, and A's lane-1;
- ``psp-server serve`` (``PspProcess``) with both merchants and a wallet,
  relaying its signed events to that broker as ``psp``;
- ``scan2pay-terminal`` for A's lane-1 on the PNG display, logged in over
  TLS as its own account, with the PSP's public key and URL, as a
  production terminal is.

The terminal's state messages are read as A's cashier reads them (its
account may), its screen by decoding the PNG it draws, and its log from its
stderr."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from psp_server.mqtt import accounts as mqtt_accounts
from scan2pay_common.messages import TerminalState
from scan2pay_common.mqtt_client import CA_ENV
from scan2pay_common.topics import display_topic, state_topic
from tests.support.commands import show_qr_of
from tests.support.plain_http import http
from tests.support.process import PspProcess, create_merchant, create_wallet, end_process
from tests.support.qr_decode import qr_codes
from tests.support.secure_broker import Certs, Client, SecureMosquitto

BIN = Path(sys.executable).parent
LANE = "lane-1"


def decode_qr(path: Path) -> list[str]:
    """What a phone reads off a frame the PNG display drew."""
    image = Image.open(path).convert("L")
    canvas = Image.new("L", (image.width + 40, image.height + 40), 0)
    canvas.paste(image, (20, 20))
    canvas = canvas.resize((canvas.width * 4, canvas.height * 4), Image.Resampling.NEAREST)
    return [result.text for result in qr_codes(canvas)]


def show_qr(created: dict[str, Any]) -> str:
    """The ``show_qr`` a cashier makes of a create's answer, as text."""
    return show_qr_of(created).decode()


@dataclass
class Shop:
    """A merchant: its id, its API key, and its cashier's MQTT login."""

    id: str
    api_key: str
    cashier: Client


class Screens:
    """The terminal's state messages, in order, as A's cashier receives them."""

    def __init__(self, client: Client, merchant_id: str) -> None:
        self._client = client
        self.seen: list[TerminalState] = []
        client.subscribe(state_topic(merchant_id, LANE))

    def _drain(self, wait: float) -> None:
        try:
            message = self._client.next(timeout=wait)
        except queue.Empty:
            return
        while True:
            if message.payload:
                self.seen.append(TerminalState.from_json(message.payload))
            try:
                message = self._client.messages.get_nowait()
            except queue.Empty:
                return

    def until(
        self, check: Callable[[TerminalState], bool], what: str, timeout: float = 15.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not any(check(state) for state in self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the terminal never showed {what}; it showed {self.seen}")
            self._drain(min(remaining, 0.05))

    def showing(self, checkout_id: str, screen: str = "qr") -> None:
        """Waits until the terminal says it shows ``checkout_id`` on ``screen``."""
        self.until(
            lambda s: s.online and (s.screen, s.checkout_id) == (screen, checkout_id),
            f"{screen} for {checkout_id}",
        )

    def since(self, mark: int) -> list[TerminalState]:
        self._drain(0.0)
        return self.seen[mark:]

    @property
    def now(self) -> TerminalState:
        self._drain(0.0)
        return self.seen[-1]


class TerminalProcess:
    """``scan2pay-terminal`` as an operator runs it in production."""

    def __init__(self, workdir: Path, args: list[str], ca: Path) -> None:
        self.frames = workdir / "frames"
        self.log_path = workdir / "terminal.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "scan2pay-terminal"), *args, "--display", f"png:{self.frames}"],
                stdout=log,
                stderr=log,
                env={**os.environ, CA_ENV: str(ca)},
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged(self, text: str) -> bool:
        return text in self.log()

    def qr_on_screen(self) -> list[str]:
        return decode_qr(self.frames / "latest.png")

    def stop(self) -> None:
        end_process(self.process)


@dataclass
class TwoShops:
    psp: PspProcess
    broker: SecureMosquitto
    a: Shop
    b: Shop
    wallet_token: str
    terminal: TerminalProcess  # A's lane-1
    screens: Screens

    @property
    def display(self) -> str:
        """A's lane-1 display topic: the one the attacker may write."""
        return display_topic(self.a.id, LANE)

    def checkout(self, shop: Shop, order_id: str, **fields: Any) -> dict[str, Any]:
        """A checkout of ``shop`` for 12.34 EUR, made for its terminal
        ``lane-1`` unless ``fields`` say otherwise."""
        body = {
            "order_id": order_id,
            "amount": 1234,
            "currency": "EUR",
            "terminal_id": LANE,
            **fields,
        }
        status, created = http("POST", f"{self.psp.url}/v1/checkouts", body, shop.api_key)
        assert status == 201, created
        answer: dict[str, Any] = created
        return answer

    def status_of(self, shop: Shop, checkout_id: str) -> str:
        status, checkout = http(
            "GET", f"{self.psp.url}/v1/checkouts/{checkout_id}", token=shop.api_key
        )
        assert status == 200, checkout
        return str(checkout["status"])

    def pay(self, qr_url: str) -> dict[str, Any]:
        """A wallet pays the code of ``qr_url``, as a customer's phone does."""
        status, payment = http(
            "POST",
            f"{self.psp.url}/v1/payments",
            {"code": qr_url.rsplit("/Q/", 1)[1]},
            self.wallet_token,
        )
        assert status == 201, payment
        answer: dict[str, Any] = payment
        return answer

    def on_screen(self, created: dict[str, Any]) -> None:
        """A's cashier shows ``created`` on lane-1; back once it is there."""
        self.a.cashier.publish(self.display, show_qr(created), retain=True)
        self.screens.showing(created["id"])
        assert self.terminal.qr_on_screen() == [created["qr_url"]]


@contextmanager
def two_shops(workdir: Path, certs: Certs) -> Iterator[TwoShops]:
    db = workdir / "psp.db"
    merchant_a = create_merchant(db, "Shop A")
    merchant_b = create_merchant(db, "Shop B")
    wallet = create_wallet(db, "EUR", "100.00")
    a_id, b_id = merchant_a["merchant_id"], merchant_b["merchant_id"]
    broker = SecureMosquitto(workdir / "mosquitto", certs)
    passwords = {
        account.username: mqtt_accounts.create_account(broker.dir, account)
        for account in (
            mqtt_accounts.psp_account(),
            mqtt_accounts.cashier_account(a_id),
            mqtt_accounts.cashier_account(b_id),
            mqtt_accounts.terminal_account(a_id, LANE),
        )
    }
    with ExitStack() as stack:
        broker.start()
        stack.callback(broker.stop)
        psp_login = mqtt_accounts.userinfo("psp", passwords["psp"])
        psp = PspProcess(db, mqtt=f"mqtt://{psp_login}@127.0.0.1:{broker.plain_port}")
        stack.callback(psp.stop)
        status, keys = http("GET", f"{psp.url}/v1/keys")
        assert status == 200, keys
        shops = []
        for merchant in (merchant_a, merchant_b):
            cashier = Client(broker, merchant["merchant_id"], passwords[merchant["merchant_id"]])
            stack.callback(cashier.close)
            shops.append(Shop(merchant["merchant_id"], merchant["api_key"], cashier))
        a, b = shops
        screens = Screens(a.cashier, a_id)
        terminal_login = mqtt_accounts.userinfo(
            mqtt_accounts.terminal_username(a_id, LANE),
            passwords[mqtt_accounts.terminal_username(a_id, LANE)],
        )
        terminal = TerminalProcess(
            workdir,
            [
                *("--mqtt", f"mqtts://{terminal_login}@127.0.0.1:{broker.tls_port}"),
                *("--merchant", a_id, "--terminal", LANE, "--name", "Shop A"),
                *("--psp-url", psp.public_url, "--idle-after", "60"),
                *("--psp-public-key", keys["keys"][0]["public_key"]),
            ],
            broker.ca,
        )
        stack.callback(terminal.stop)
        screens.until(lambda s: s.online and s.screen == "idle", "its idle screen")
        yield TwoShops(psp, broker, a, b, wallet["token"], terminal, screens)
