"""A printed till code with every part its own OS process, against a real
mosquitto: psp-server, its ``static-code`` commands, and scan2pay-terminal
with the PSP's key. A customer scans the sticker, types an amount, pays,
and the terminal, which never had a show_qr for it, shows "Paid"; timed
from the scan to the terminal's state saying so."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scan2pay_common import jsonfields
from scan2pay_common.messages import TerminalState
from scan2pay_common.topics import state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.plain_http import http
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant, create_wallet, run_cli
from tests.support.qr_decode import decode_both
from tests.support.secure_shops import decode_qr

BIN = Path(sys.executable).parent
TERMINAL = "lane-1"


def shown_code(frames: Path) -> str | None:
    """What a phone reads off the terminal's newest frame (its PNG display
    keeps the newest as latest.png), or None where no one QR reads."""
    try:
        read = decode_qr(frames / "latest.png")
    except OSError:  # not written yet
        return None
    return read[0] if len(read) == 1 else None


class Till:
    """A PSP process with a merchant, a wallet and a printed code for the
    till, and the till's terminal process, which checks the PSP's signatures."""

    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        self.db = tmp_path / "psp.db"
        self.merchant = create_merchant(self.db, "Corner Shop")
        self.wallet = create_wallet(self.db, "EUR", "50.00")
        keys = run_cli("keys", "show", "--db", str(self.db))
        assert keys.returncode == 0, keys.stderr
        public_key = keys.stdout.strip().splitlines()[-1]
        self.psp = PspProcess(self.db, mqtt=broker.url)
        self.frames = tmp_path / "frames"
        self.log_path = tmp_path / "terminal.log"
        self._log = self.log_path.open("ab")
        self.states = Subscriber(broker.port, state_topic(self.merchant["merchant_id"], TERMINAL))
        self.history: list[TerminalState] = []  # every state until_state read
        self.terminal = subprocess.Popen(
            [str(BIN / "scan2pay-terminal"), "--mqtt", broker.url,
             "--merchant", self.merchant["merchant_id"], "--terminal", TERMINAL,
             "--name", "Corner Shop", "--display", f"png:{self.frames}",
             "--psp-url", self.psp.public_url, "--psp-public-key", public_key,
             "--till", "Counter 1"],
            stderr=self._log,
        )  # fmt: skip
        self.until_state("idle")

    def static_code(self, *args: str) -> Any:
        done = run_cli(
            "static-code", *args, "--merchant", self.merchant["merchant_id"],
            "--db", str(self.db), "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def until_state(self, screen: str, checkout_id: str | None = None) -> TerminalState:
        deadline = time.monotonic() + 20.0
        seen: list[TerminalState] = []
        while time.monotonic() < deadline:
            try:
                (message,) = self.states.wait_for(1, deadline - time.monotonic())
            except TimeoutError:
                break
            state = TerminalState.from_json(message.payload)
            seen.append(state)
            self.history.append(state)
            if state.screen == screen and checkout_id in (None, state.checkout_id):
                return state
        raise AssertionError(f"no {screen!r} state for {checkout_id}; saw {seen}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.terminal.terminate()
        self.terminal.wait(10)
        self._log.close()
        self.states.close()
        self.psp.stop()


@pytest.fixture
def till(tmp_path: Path, broker: Mosquitto) -> Iterator[Till]:
    made = Till(tmp_path, broker)
    yield made
    made.close()


def test_a_typed_amount_at_a_printed_code_is_paid_and_the_terminal_shows_it(
    till: Till,
) -> None:
    made = till.static_code(
        "create", "--terminal", TERMINAL, "--label", "Counter 1", "--currency", "EUR",
        "--min", "1.00", "--max", "50.00", "--public-url", till.psp.public_url,
    )  # fmt: skip
    assert made["url"] == f"{till.psp.public_url}/S/{made['code']}"
    assert made["open_amount"] == {"currency": "EUR", "min": 100, "max": 5000}
    scanned = made["url"].replace("HTTP://", "http://")

    started = time.perf_counter()
    status, shown = http("GET", scanned)
    assert status == 200
    assert shown["merchant"] == {"name": "Corner Shop"}
    assert shown["terminal"] == {"id": TERMINAL, "label": "Counter 1"}
    assert shown["open_amount"] == made["open_amount"]
    status, checkout = http("POST", f"{scanned}/checkouts", {"amount": 1250})
    assert status == 201, checkout
    # The PSP's signed checkout.created puts the typed checkout on the
    # terminal while it is pending: its QR, the amount, the sticker's id.
    till.until_state("qr", checkout["id"])
    typed_ms = (time.perf_counter() - started) * 1000
    wait_until(
        lambda: shown_code(till.frames) == checkout["qr_url"], "the typed QR drawn", every=0.1
    )
    status, payment = http(
        "POST", f"{till.psp.url}/v1/payments", {"code": checkout["code"]}, till.wallet["token"]
    )
    assert status == 201, payment
    till.until_state("paid", checkout["id"])
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(
        f"\nstatic open-amount payment: scan to the typed checkout on the terminal"
        f" {typed_ms:.0f} ms, scan to Paid {elapsed_ms:.0f} ms"
    )

    status, read = http(
        "GET", f"{till.psp.url}/v1/checkouts/{checkout['id']}", token=till.merchant["api_key"]
    )
    assert status == 200
    assert (read["status"], read["source"], read["static_code_id"]) == (
        "paid",
        "static",
        made["id"],
    )
    assert read["terminal_id"] == TERMINAL
    # The sticker's id and the till are in the commands' listing.
    (listed,) = till.static_code("list", "--terminal", TERMINAL)
    assert (listed["id"], listed["short_id"], listed["revoked_at"]) == (
        made["id"],
        made["short_id"],
        None,
    )


def test_a_revoked_code_makes_nothing_and_says_so(till: Till) -> None:
    made = till.static_code(
        "create", "--terminal", TERMINAL, "--currency", "EUR", "--min", "1", "--max", "5",
        "--public-url", till.psp.public_url,
    )  # fmt: skip
    revoked = till.static_code("revoke", made["id"])
    assert revoked["revoked_at"] is not None
    scanned = made["url"].replace("HTTP://", "http://")
    status, body = http("GET", scanned)
    assert (status, body["error"]["code"]) == (410, "static_code_revoked")
    status, body = http("POST", f"{scanned}/checkouts", {"amount": 100})
    assert (status, body["error"]["code"]) == (410, "static_code_revoked")
    # Another merchant cannot revoke it, or list it.
    other = create_merchant(till.db, "Other Shop")
    done = run_cli(
        "static-code", "revoke", made["id"], "--merchant", other["merchant_id"],
        "--db", str(till.db),
    )  # fmt: skip
    assert done.returncode == 2
    assert "no static code" in done.stderr
    wait_until(lambda: till.psp.process.poll() is None, "the PSP still serving", timeout=1.0)


def pay_typed(till: Till, terminal: str, amount: int) -> dict[str, Any]:
    made = till.static_code(
        "create", "--terminal", terminal, "--currency", "EUR", "--min", "1", "--max", "50",
        "--public-url", till.psp.public_url,
    )  # fmt: skip
    scanned = made["url"].replace("HTTP://", "http://")
    status, checkout = http("POST", f"{scanned}/checkouts", {"amount": amount})
    assert status == 201, checkout
    status, payment = http(
        "POST", f"{till.psp.url}/v1/payments", {"code": checkout["code"]}, till.wallet["token"]
    )
    assert status == 201, payment
    return {**checkout, "short_id": made["short_id"], "static_code_id": made["id"]}


def test_the_cashier_bridge_reports_a_static_payment_at_its_till(
    till: Till, broker: Mosquitto
) -> None:
    env = {
        **os.environ,
        "SCAN2PAY_PSP_URL": till.psp.url,
        "SCAN2PAY_MERCHANT_KEY": till.merchant["api_key"],
        "SCAN2PAY_MQTT": broker.url,
    }
    watch = subprocess.Popen(
        [str(BIN / "cashier-bridge"), "watch", "--terminal", TERMINAL, "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    serve = subprocess.Popen(
        [str(BIN / "cashier-bridge"), "serve", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        assert serve.stdout is not None
        assert json.loads(watch.stdout.readline())["step"] == "watching"
        bridge_url = serve.stdout.readline().split()[-1]
        stream = urllib.request.urlopen(f"{bridge_url}/tills/{TERMINAL}/events", timeout=20)  # noqa: S310 - the test's own bridge on loopback
        assert stream.readline() == b": keep-alive\n"  # subscribed: the stream is open

        pay_typed(till, "lane-2", 300)  # another till's: neither reports it
        paid = pay_typed(till, TERMINAL, 1250)

        reported = json.loads(watch.stdout.readline())
        assert reported["step"] == "static_payment"
        assert reported["data"] == {
            "checkout_id": paid["id"],
            "terminal_id": TERMINAL,
            "amount": 1250,
            "currency": "EUR",
            "source": "static",
            "static_code_id": paid["static_code_id"],
            "short_id": paid["short_id"],
            "paid_at": reported["data"]["paid_at"],
        }
        assert paid["short_id"] in reported["message"]
        lines: list[bytes] = []
        while not lines or lines[-1] != b"\n":
            line = stream.readline()
            if line != b": keep-alive\n" and (lines or line != b"\n"):
                lines.append(line)
        assert lines[1] == b"event: static_payment\n"
        assert json.loads(lines[2].removeprefix(b"data: ")) == reported["data"]
        stream.close()
    finally:
        for process in (watch, serve):
            process.terminate()
            process.wait(10)
    assert watch.returncode == 0
    assert till.merchant["api_key"] not in (watch.stderr.read() if watch.stderr else "")


def test_an_emv_merchants_printed_code_carries_its_static_payload(till: Till) -> None:
    from brcode.utils.brcodeId import jsonFromBrcode  # Stark Bank's BR Code parser

    updated = run_cli(
        "merchant", "update", till.merchant["merchant_id"], "--qr-format", "emv",
        "--mcc", "5814", "--country", "DE", "--city", "Berlin", "--db", str(till.db),
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    made = till.static_code(
        "create", "--terminal", TERMINAL, "--currency", "EUR", "--min", "1", "--max", "50",
        "--public-url", till.psp.public_url,
    )  # fmt: skip
    fields = jsonFromBrcode(made["qr_payload"])
    assert (fields["01"], fields["53"], fields["26"]["01"]) == ("11", "978", made["url"])
    assert "54" not in fields
    (listed,) = till.static_code("list", "--terminal", TERMINAL)
    assert listed["qr_payload"] == made["qr_payload"]

    # The server answers the same (it reads another process's settings
    # within a second), and its sticker encodes it.
    def answered() -> Any:
        status, page = http(
            "GET",
            f"{till.psp.url}/v1/terminals/{TERMINAL}/static-codes",
            token=till.merchant["api_key"],
        )
        assert status == 200
        return page["static_codes"][0].get("qr_payload") == made["qr_payload"]

    wait_until(answered, "the server's answer with the payload", timeout=5.0, every=0.1)
    request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
        f"{till.psp.url}/v1/static-codes/{made['id']}/sticker.png",
        headers={"Authorization": f"Bearer {till.merchant['api_key']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        png = response.read()
    with Image.open(io.BytesIO(png)) as image:
        assert decode_both(image) == made["qr_payload"]


def test_a_forged_created_event_draws_nothing(till: Till, broker: Mosquitto) -> None:
    """Only the PSP's signed checkout.created puts a typed checkout, and its
    QR, on the terminal: an unsigned one, or one signed with another key, on
    the terminal's own events topic draws nothing."""
    from scan2pay_common.messages import CheckoutEvent, CheckoutSnapshot
    from scan2pay_common.signing import SigningKey
    from scan2pay_common.timefmt import to_rfc3339
    from scan2pay_common.topics import terminal_events_topic
    from tests.support.mqtt import publish

    made = till.static_code(
        "create", "--terminal", TERMINAL, "--currency", "EUR", "--min", "1", "--max", "50",
        "--public-url", till.psp.public_url,
    )  # fmt: skip
    now = int(time.time() * 1000)
    forged = CheckoutEvent(
        event_id="evt_" + "f" * 28,
        seq=1,
        type="checkout.created",
        merchant_id=till.merchant["merchant_id"],
        checkout=CheckoutSnapshot(
            id="co_" + "f" * 28,
            order_id="static-forged",
            amount=100,
            currency="EUR",
            status="pending",
            qr_url="HTTPS://PAY.ELSEWHERE.EXAMPLE/Q/" + "A" * 32,
            expires_at=to_rfc3339(now + 300_000),
            terminal_id=TERMINAL,
            created_at=to_rfc3339(now),
            source="static",
            static_code_id=made["id"],
        ),
        created_at=to_rfc3339(now),
    )
    topic = terminal_events_topic(till.merchant["merchant_id"], TERMINAL)
    publish(broker.port, topic, forged.to_json(), retain=False)
    signed_by_another = jsonfields.dumps(SigningKey.generate().sign(forged.to_dict()))
    publish(broker.port, topic, signed_by_another, retain=False)
    refused = "ignored a checkout.created event for co_" + "f" * 28 + ": its signature is missing"
    wait_until(
        lambda: till.log().count(refused) == 2,
        "the forged events refused",
        timeout=10.0,
        every=0.1,
    )
    # The real one that follows is the first checkout the terminal shows.
    scanned = made["url"].replace("HTTP://", "http://")
    status, checkout = http("POST", f"{scanned}/checkouts", {"amount": 300})
    assert status == 201, checkout
    till.until_state("qr", checkout["id"])
    assert [s.checkout_id for s in till.history if s.screen == "qr"] == [checkout["id"]]
