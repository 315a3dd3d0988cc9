"""An EMV merchant's checkout, every part its own OS process against a real
mosquitto: ``psp-server merchant update --qr-format emv``, psp-server,
scan2pay-terminal on a 240x240 PNG display with the PSP's key, and
cashier-bridge checkout. The terminal's frame decodes back to the exact
``qr_payload`` the PSP answered, an independent parser reads it, and the
wallet pays from it. A terminal whose panel cannot show EMV payloads
refuses to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from brcode.utils.brcodeId import jsonFromBrcode  # Stark Bank's BR Code parser

from scan2pay import wallet
from scan2pay_common.emv import url_of_payload
from tests.support.broker import Mosquitto
from tests.support.plain_http import http
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant, create_wallet, end_process, run_cli
from tests.support.secure_shops import decode_qr

BIN = Path(sys.executable).parent
TERMINAL = "lane-1"


def test_an_emv_checkout_is_drawn_and_decoded_back_to_its_payload(
    tmp_path: Path, broker: Mosquitto
) -> None:
    db = tmp_path / "psp.db"
    merchant = create_merchant(db, "Café Müller")
    payer = create_wallet(db, "EUR", "50.00")
    updated = run_cli(
        "merchant", "update", merchant["merchant_id"], "--qr-format", "emv", "--mcc", "5814",
        "--country", "DE", "--city", "Berlin", "--json", "--db", str(db),
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["qr_format"] == "emv"
    keys = run_cli("keys", "show", "--db", str(db))
    assert keys.returncode == 0, keys.stderr
    public_key = next(w for w in keys.stdout.split() if w.startswith("ed25519:"))
    psp = PspProcess(db, mqtt=broker.url)
    frames = tmp_path / "frames"
    terminal = subprocess.Popen(
        [str(BIN / "scan2pay-terminal"), "--mqtt", broker.url,
         "--merchant", merchant["merchant_id"], "--terminal", TERMINAL, "--name", "Café Müller",
         "--display", f"png:{frames},size=240x240,mode=RGB", "--psp-url", psp.public_url,
         "--psp-public-key", public_key, "--qr-format", "emv"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    bridge = None
    try:
        wait_until(lambda: (frames / "latest.png").exists(), "the first frame", timeout=20.0)
        env = {
            **os.environ,
            "SCAN2PAY_PSP_URL": psp.url,
            "SCAN2PAY_MERCHANT_KEY": merchant["api_key"],
            "SCAN2PAY_MQTT": broker.url,
        }
        bridge = subprocess.Popen(
            [str(BIN / "cashier-bridge"), "checkout", "--order", "EMV-1", "--amount", "12.34",
             "--currency", "EUR", "--terminal", TERMINAL],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        (scanned,) = wait_until(
            lambda: decode_qr(frames / "latest.png"), "a QR on the terminal", timeout=20.0
        )
        # What the terminal drew is the exact payload the PSP answered.
        qr_url = url_of_payload(scanned)
        status, info = http("GET", qr_url.replace("HTTP://", "http://"))
        assert status == 200, info
        status, checkout = http(
            "GET", f"{psp.url}/v1/checkouts/{info['checkout_id']}", token=merchant["api_key"]
        )
        assert status == 200, checkout
        assert scanned == checkout["qr_payload"]
        assert checkout["qr_url"] == qr_url
        fields = jsonFromBrcode(scanned)
        assert (fields["01"], fields["54"], fields["59"], fields["62"]["07"]) == (
            "12",
            "12.34",
            "Cafe Muller",
            TERMINAL,
        )
        # The wallet pays from the payload, and the bridge sees it paid.
        code = wallet.scanned_url(scanned).rsplit("/Q/", 1)[1]
        status, payment = http("POST", f"{psp.url}/v1/payments", {"code": code}, payer["token"])
        assert status == 201, payment
        out, err = bridge.communicate(timeout=30)
        assert bridge.returncode == 0, out + err
        wait_until(lambda: decode_qr(frames / "latest.png") == [], "the paid screen", timeout=20.0)
    finally:
        if bridge is not None and bridge.poll() is None:
            bridge.kill()
            bridge.wait(10)
        end_process(terminal)
        psp.stop()


def test_a_terminal_whose_panel_cannot_show_emv_refuses_to_start(
    tmp_path: Path, broker: Mosquitto
) -> None:
    frames = tmp_path / "frames"
    terminal = subprocess.run(
        [str(BIN / "scan2pay-terminal"), "--mqtt", broker.url,
         "--merchant", "mer_aaaaaaaaaaaaaaaaaaaa", "--terminal", TERMINAL,
         "--display", f"png:{frames}", "--qr-format", "emv"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert terminal.returncode == 2, terminal
    assert "this 128x64 display cannot show an EMV payload" in terminal.stderr
    assert "the largest that fits is version 2" in terminal.stderr
    assert not (frames / "latest.png").exists()
