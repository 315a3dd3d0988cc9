"""A payment at a till's printed code, from the scan to "Paid" on the
terminal, with every part a real process.

Run from the repository root: ``.venv/bin/python bench/static_bench.py``
(``--quick`` for fewer payments). It starts mosquitto, a ``psp-server``
(SQLite, events relayed to the broker) and one ``scan2pay-terminal`` with
the PSP's public key and a ``noop`` 128x64 display that renders every frame
and discards it. One customer after another at the till's printed code:

1. scan: ``GET /S/{CODE}`` (JSON, as a wallet reads it);
2. type: ``POST /S/{CODE}/checkouts`` with the amount;
3. pay: ``POST /v1/payments`` with the new checkout's code;
4. until the terminal's state message says "paid" for that checkout: the
   PSP's signed event reached it on its own topic, it verified the event
   and drew the frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import run_alone, summary
from scan2pay_common.messages import TerminalState
from scan2pay_common.topics import state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.plain_http import http
from tests.support.process import (
    NO_RATE_LIMITS,
    PspProcess,
    create_merchant,
    create_wallet,
    end_process,
    run_cli,
)

BIN = Path(sys.executable).parent
TERMINAL = "lane-1"
PAYMENTS = 200
QUICK_PAYMENTS = 30
NO_STATIC_LIMITS = ("--rate-static-per-ip", "off", "--rate-static-per-code", "off")


def _until_paid(states: Subscriber, checkout_id: str) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        (message,) = states.wait_for(1, deadline - time.monotonic())
        state = TerminalState.from_json(message.payload)
        if state.screen == "paid" and state.checkout_id == checkout_id:
            return
    raise RuntimeError(f"the terminal never showed {checkout_id} paid")


def measure(quick: bool) -> dict[str, Any]:
    count = QUICK_PAYMENTS if quick else PAYMENTS
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        db = work / "psp.db"
        merchant = create_merchant(db, "Bench Shop")
        wallet = create_wallet(db, "EUR", str(count * 20))
        key = run_cli("keys", "show", "--db", str(db)).stdout.strip().splitlines()[-1]
        psp = PspProcess(db, mqtt=broker.url, extra=(*NO_RATE_LIMITS, *NO_STATIC_LIMITS))
        states = Subscriber(broker.port, state_topic(merchant["merchant_id"], TERMINAL))
        terminal = subprocess.Popen(
            [str(BIN / "scan2pay-terminal"), "--mqtt", broker.url,
             "--merchant", merchant["merchant_id"], "--terminal", TERMINAL,
             "--display", "noop,size=128x64,mode=1", "--psp-public-key", key,
             "--idle-after", "3600"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            states.wait_for(1, 20.0)  # its first state: it is subscribed
            made = json.loads(
                run_cli(
                    "static-code", "create", "--merchant", merchant["merchant_id"],
                    "--terminal", TERMINAL, "--currency", "EUR", "--min", "0.01",
                    "--max", "20.00", "--public-url", psp.public_url, "--db", str(db), "--json",
                ).stdout
            )  # fmt: skip
            scanned = made["url"].replace("HTTP://", "http://")
            totals: list[float] = []
            for n in range(count):
                started = time.perf_counter()
                status, _ = http("GET", scanned)
                assert status == 200
                status, checkout = http("POST", f"{scanned}/checkouts", {"amount": 100 + n})
                assert status == 201, checkout
                status, _ = http(
                    "POST", f"{psp.url}/v1/payments", {"code": checkout["code"]}, wallet["token"]
                )
                assert status == 201
                _until_paid(states, checkout["id"])
                totals.append((time.perf_counter() - started) * 1000)
        finally:
            end_process(terminal)
            states.close()
            psp.stop()
            broker.stop()
    return {"payments": count, "scan_to_paid_screen": summary(totals)}


def report(figures: dict[str, Any]) -> None:
    shown = figures["scan_to_paid_screen"]
    print(
        f"static open-amount payment, scan to Paid on the terminal, {figures['payments']} payments:"
        f" p50 {shown['p50_ms']:.1f} ms, p99 {shown['p99_ms']:.1f} ms, max {shown['max_ms']:.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(run_alone("static", measure, report, f"{QUICK_PAYMENTS} payments, not {PAYMENTS}"))
