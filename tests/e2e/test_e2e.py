"""The whole flow with every part its own OS process, against a real mosquitto:
psp-server, scan2pay-terminal with the PNG display, cashier-bridge checkout,
and a wallet that reads the QR off the terminal's frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker import Mosquitto
from tests.support.plain_http import http
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant, create_wallet
from tests.support.secure_shops import decode_qr

BIN = Path(sys.executable).parent
TERMINAL = "lane-1"


class Shop:
    """A PSP process with a merchant and a wallet, and a terminal process."""

    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        db = tmp_path / "psp.db"
        self.merchant = create_merchant(db, "Corner Shop")
        self.wallet = create_wallet(db, "EUR", "50.00")
        self.psp = PspProcess(db, mqtt=broker.url)
        self.frames = tmp_path / "frames"
        self.terminal = subprocess.Popen(
            [str(BIN / "scan2pay-terminal"), "--mqtt", broker.url,
             "--merchant", self.merchant["merchant_id"], "--terminal", TERMINAL,
             "--name", "Corner Shop", "--display", f"png:{self.frames}",
             "--psp-url", self.psp.public_url],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(
            lambda: (self.frames / "latest.png").exists(),
            "the terminal's first frame",
            timeout=20.0,
        )

    def wallet_pays_what_the_terminal_shows(self) -> tuple[str, dict[str, Any]]:
        urls = wait_until(
            lambda: decode_qr(self.frames / "latest.png"), "a QR on the terminal", timeout=20.0
        )
        (qr_url,) = urls
        status, info = http("GET", qr_url.replace("HTTP://", "http://"))
        assert status == 200
        assert info["status"] == "pending"
        status, payment = http(
            "POST",
            f"{self.psp.url}/v1/payments",
            {"code": qr_url.rsplit("/Q/", 1)[1]},
            self.wallet["token"],
        )
        assert status == 201, payment
        return qr_url, payment

    def close(self) -> None:
        self.terminal.terminate()
        self.terminal.wait(10)
        self.psp.stop()


@pytest.fixture
def shop(tmp_path: Path, broker: Mosquitto) -> Iterator[Shop]:
    shop = Shop(tmp_path, broker)
    yield shop
    shop.close()


def test_cashier_bridge_terminal_and_wallet_as_processes(shop: Shop, broker: Mosquitto) -> None:
    env = {
        **os.environ,
        "SCAN2PAY_PSP_URL": shop.psp.url,
        "SCAN2PAY_MERCHANT_KEY": shop.merchant["api_key"],
        "SCAN2PAY_MQTT": broker.url,
    }
    bridge = subprocess.Popen(
        [str(BIN / "cashier-bridge"), "checkout", "--order", "E2E-1", "--amount", "12.34",
         "--currency", "EUR", "--terminal", TERMINAL],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        qr_url, payment = shop.wallet_pays_what_the_terminal_shows()
        out, err = bridge.communicate(timeout=30)
    finally:
        if bridge.poll() is None:
            bridge.kill()
    assert bridge.returncode == 0, out + err
    assert payment["amount"] == 1234
    status, checkout = http(
        "GET",
        f"{shop.psp.url}/v1/checkouts/{payment['checkout_id']}",
        token=shop.merchant["api_key"],
    )
    assert (status, checkout["status"], checkout["qr_url"]) == (200, "paid", qr_url)
    assert checkout["order_id"] == "E2E-1"
    # The terminal's last frame is the paid screen: no QR on it any more.
    wait_until(lambda: decode_qr(shop.frames / "latest.png") == [], "the paid screen", timeout=20.0)
    assert shop.merchant["api_key"] not in out + err


def test_a_cashier_that_is_not_ours_needs_only_mqtt(shop: Shop, broker: Mosquitto) -> None:
    """Plain paho and plain JSON: no scan2pay code on the cashier's side."""
    merchant_id = shop.merchant["merchant_id"]
    events: list[dict[str, Any]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="foreign-backoffice")
    listener.on_message = lambda client, userdata, message: events.append(
        json.loads(message.payload)
    )
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe(f"scan2pay/v1/m/{merchant_id}/events", qos=1)
    listener.loop_start()
    cashier = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="foreign-till")
    cashier.connect("127.0.0.1", broker.port)
    cashier.loop_start()
    try:
        status, checkout = http(
            "POST",
            f"{shop.psp.url}/v1/checkouts",
            {"order_id": "FOREIGN-1", "amount": 995, "currency": "EUR", "terminal_id": TERMINAL},
            shop.merchant["api_key"],
        )
        assert status == 201
        command = {
            "type": "show_qr",
            "checkout_id": checkout["id"],
            "qr_url": checkout["qr_url"],
            "amount": 995,
            "currency": "EUR",
            "expires_at": checkout["expires_at"],
        }
        cashier.publish(
            f"scan2pay/v1/m/{merchant_id}/t/{TERMINAL}/display",
            json.dumps(command),
            qos=1,
            retain=True,
        ).wait_for_publish(10)
        qr_url, _ = shop.wallet_pays_what_the_terminal_shows()
        assert qr_url == checkout["qr_url"]
        paid = wait_until(
            lambda: [e for e in events if e["type"] == "checkout.paid"],
            "checkout.paid at a plain subscriber",
            timeout=20.0,
        )
        assert paid[0]["checkout"]["id"] == checkout["id"]
        assert paid[0]["checkout"]["status"] == "paid"
        # The PSP's event alone brings the paid screen: the cashier sent no status.
        wait_until(
            lambda: decode_qr(shop.frames / "latest.png") == [], "the paid screen", timeout=20.0
        )
    finally:
        for client in (listener, cashier):
            client.disconnect()
            client.loop_stop()


def test_scan2pay_demo_runs_the_whole_flow_and_prints_each_hop() -> None:
    result = subprocess.run(
        [str(BIN / "scan2pay"), "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for needle in (
        "read the QR off the terminal's frame",
        "shows Paid",
        "outcome: paid",
        "latency of each hop",
        "checkout -> QR on the terminal's display",
        "PSP answers -> terminal shows Paid",
    ):
        assert needle in out, out


def test_scan2pay_demo_uses_a_real_broker_when_told(broker: Mosquitto) -> None:
    result = subprocess.run(
        [str(BIN / "scan2pay"), "demo", "--mqtt", broker.url, "--no-draw"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"broker    {broker.url}\n" in result.stdout
    assert "(embedded)" not in result.stdout
    assert "outcome: paid" in result.stdout


def test_scan2pay_demo_serve_keeps_running_until_interrupted() -> None:
    import signal

    demo = subprocess.Popen(
        [str(BIN / "scan2pay"), "demo", "--serve", "--no-draw"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Everything keeps running" in line:
                break
        psp_url = next(line.split()[1] for line in lines if line.strip().startswith("PSP "))
        # The PSP it printed answers while the demo waits.
        status, health = http("GET", f"{psp_url}/healthz")
        assert (status, health["mqtt"]) == (200, "connected")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(20) == 0
    finally:
        if demo.poll() is None:
            demo.kill()


def test_a_cashier_bridge_killed_and_run_again_ends_on_the_same_checkout(
    shop: Shop, broker: Mosquitto
) -> None:
    import signal

    env = {
        **os.environ,
        "SCAN2PAY_PSP_URL": shop.psp.url,
        "SCAN2PAY_MERCHANT_KEY": shop.merchant["api_key"],
        "SCAN2PAY_MQTT": broker.url,
    }
    args = [
        str(BIN / "cashier-bridge"),
        "checkout",
        "--order",
        "AGAIN-1",
        "--amount",
        "3.00",
        "--currency",
        "EUR",
        "--terminal",
        TERMINAL,
        "--json",
    ]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    for line in first.stdout:
        if json.loads(line)["step"] == "shown":
            break
    first.send_signal(signal.SIGKILL)  # no chance to cancel: the PC lost power
    first.wait(10)
    second = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    try:
        _, payment = shop.wallet_pays_what_the_terminal_shows()
        out, _ = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
    steps = [json.loads(line) for line in out.splitlines()]
    created = next(s for s in steps if s["step"] == "created")
    assert created["data"]["new"] is False  # the same checkout, not a second one
    assert created["data"]["checkout_id"] == payment["checkout_id"]
    assert second.returncode == 0
