"""The whole flow's latency, hop by hop, with every part a real process.

Run from the repository root: ``.venv/bin/python bench/flow_bench.py``
(``--quick`` for fewer checkouts). It starts mosquitto, a ``psp-server``
(SQLite, durable commits, events relayed to the broker) and 16
``scan2pay-terminal`` daemons configured as in production (the PSP's public
key, so each ``show_qr`` carries a signed display ticket the terminal
verifies, and each ``checkout.paid`` event is verified too), with a ``noop``
128x64 display that renders every frame and discards it: the figures are
the software's, and the panel's bus time (bench/terminal_bench.py) adds to
them on real hardware.

Sixteen lanes run side by side, each a cashier and a wallet on its own
terminal, one checkout after another:

1. checkout to screen: the cashier's ``POST /v1/checkouts``, its ``show_qr``
   published to the terminal as the bridge does, until the terminal's state
   message says that QR is on its display;
2. pay to outcome: the wallet's ``POST /v1/payments`` until (a) the
   ``checkout.paid`` event reaches a merchant subscriber and (b) the
   terminal's state message says the paid screen is on its display.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from bench.common import cpu_seconds, machine_busy, rss_mb, summary, write_results
from bench.http_load import Connection
from psp_server.storage.sqlite import SqliteStorage
from scan2pay_common.messages import (
    CheckoutEvent,
    ShowQr,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.mqtt_client import mqtt_client
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import all_state_topics, display_topic, events_topic
from tests.support.broker import Mosquitto
from tests.support.process import NO_RATE_LIMITS, PspProcess

LANES = 16
# Checkouts started per second over all lanes: each lane pauses a random
# (exponential) time between its checkouts, so that the lanes do not march
# in step, as shops' customers do not. 16 per second is a checkout a second
# on every lane, some 30 times a busy shop's pace; the full run adds 100 per
# second, where the 16 daemons, which in a shop each have a Pi of their own,
# compete for this machine's 2 cores with everything else.
RATE = 16.0
BUSY_RATE = 100.0
WARM_UP = 2  # per lane, not counted: the first QR of a version fills caches
BIN = Path(sys.executable).parent


@dataclass
class Arrivals:
    """When each message of interest arrived, keyed by what it says; a lane
    waits on the key it needs."""

    seen: dict[tuple[str, ...], float] = field(default_factory=dict)
    waiters: dict[tuple[str, ...], asyncio.Future[float]] = field(default_factory=dict)

    def arrived(self, key: tuple[str, ...], at: float) -> None:
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)
        else:
            self.seen[key] = at

    async def wait(self, key: tuple[str, ...], within: float = 10.0) -> float:
        if key in self.seen:
            return self.seen.pop(key)
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[key] = waiter
        try:
            return await asyncio.wait_for(waiter, within)
        except TimeoutError:
            raise TimeoutError(f"no {key} within {within}s") from None


async def listen(client: aiomqtt.Client, arrivals: Arrivals) -> None:
    async for message in client.messages:
        at = time.perf_counter()
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            continue
        topic = str(message.topic)
        if topic.endswith("/state"):
            state = TerminalState.from_json(bytes(payload))
            if state.online:
                arrivals.arrived(("online", topic.split("/")[-2]), at)
            if state.checkout_id is not None:
                arrivals.arrived(("screen", state.screen, state.checkout_id), at)
        else:
            event = CheckoutEvent.from_json(bytes(payload))
            arrivals.arrived(("event", event.type, event.checkout.id), at)


@dataclass
class Lane:
    terminal_id: str
    wallet_token: str
    cashier: Connection
    wallet: Connection


async def one_checkout(
    lane: Lane,
    n: int,
    merchant_id: str,
    merchant_key: str,
    cashier: aiomqtt.Client,
    screens: Arrivals,
    events: Arrivals,
) -> dict[str, float]:
    started = time.perf_counter()
    status, body = await lane.cashier.request(
        "POST",
        "/v1/checkouts",
        token=merchant_key,
        body={
            "order_id": f"{lane.terminal_id}-{n}",
            "amount": 1250,
            "currency": "EUR",
            "terminal_id": lane.terminal_id,
        },
    )
    assert status == 201, body
    created = json.loads(body)
    answered = time.perf_counter()
    command = ShowQr(
        checkout_id=created["id"],
        qr_url=created["qr_url"],
        amount=created["amount"],
        currency=created["currency"],
        expires_at=created["expires_at"],
        order_id=created["order_id"],
        display_ticket=created["display_ticket"],
    )
    await cashier.publish(
        display_topic(merchant_id, lane.terminal_id),
        display_command_to_json(command),
        qos=1,
        retain=True,
    )
    on_screen = await screens.wait(("screen", "qr", created["id"]))

    paying = time.perf_counter()
    code = created["qr_url"].rsplit("/Q/", 1)[1]
    status, body = await lane.wallet.request(
        "POST", "/v1/payments", token=lane.wallet_token, body={"code": code}
    )
    assert status == 201, body
    paid_answer = time.perf_counter()
    event_at = await events.wait(("event", "checkout.paid", created["id"]))
    paid_screen = await screens.wait(("screen", "paid", created["id"]))
    return {
        "create_answer": (answered - started) * 1000,
        "checkout_to_screen": (on_screen - started) * 1000,
        "pay_answer": (paid_answer - paying) * 1000,
        "pay_to_event": (event_at - paying) * 1000,
        "pay_to_screen": (paid_screen - paying) * 1000,
    }


def start_terminals(
    broker_url: str, merchant_id: str, public_key: str
) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                str(BIN / "scan2pay-terminal"),
                *("--mqtt", broker_url, "--merchant", merchant_id),
                *("--terminal", f"lane-{n}", "--display", "noop,size=128x64,mode=1"),
                *("--psp-public-key", public_key, "--log-level", "WARNING"),
            ]
        )
        for n in range(1, LANES + 1)
    ]


async def drive(
    psp: PspProcess,
    broker: Mosquitto,
    merchant_id: str,
    merchant_key: str,
    tokens: list[str],
    per_lane: int,
    rate: float,
    meter: Meter,
) -> list[dict[str, float]]:
    host, port = psp.url.removeprefix("http://").rsplit(":", 1)
    target = MqttTarget.parse(broker.url)
    screens, events = Arrivals(), Arrivals()
    async with (
        mqtt_client(target, identifier="bench-cashier") as cashier,
        mqtt_client(target, identifier="bench-merchant") as merchant,
    ):
        cashier.pending_calls_threshold = 4 * LANES  # 16 lanes publish at once
        await cashier.subscribe(all_state_topics(merchant_id), qos=1)
        await merchant.subscribe(events_topic(merchant_id), qos=1)
        lanes = [
            Lane(
                f"lane-{n + 1}",
                tokens[n],
                await Connection.open(host, int(port)),
                await Connection.open(host, int(port)),
            )
            for n in range(LANES)
        ]
        listeners = [
            asyncio.create_task(listen(cashier, screens)),
            asyncio.create_task(listen(merchant, events)),
        ]
        await wait_all_idle(screens, lanes)

        async def run_lane(lane: Lane, first: int, count: int) -> list[dict[str, float]]:
            rows = []
            pause = random.Random(f"{lane.terminal_id}-{first}")  # noqa: S311 - seeded arrival times
            for n in range(first, first + count):
                await asyncio.sleep(pause.expovariate(rate / LANES))
                rows.append(
                    await one_checkout(lane, n, merchant_id, merchant_key, cashier, screens, events)
                )
            return rows

        try:
            # Not counted: each daemon's first frames load its fonts and fill
            # its caches.
            await asyncio.gather(*(run_lane(lane, 0, WARM_UP) for lane in lanes))
            meter.start()
            per_lane_rows = await asyncio.gather(
                *(run_lane(lane, WARM_UP, per_lane) for lane in lanes)
            )
            meter.stop()
        finally:
            for task in listeners:
                task.cancel()
            for lane in lanes:
                lane.cashier.close()
                lane.wallet.close()
    return [row for rows in per_lane_rows for row in rows]


async def wait_all_idle(screens: Arrivals, lanes: list[Lane]) -> None:
    """The terminals are up when each has said it is online."""
    for lane in lanes:
        await screens.wait(("online", lane.terminal_id), within=30)


class Meter:
    """CPU time of each part and the machine's load over the measured run."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.cpu: dict[str, float] = {}
        self.busy_percent = 0.0

    def start(self) -> None:
        self._cpu = {name: sum(map(cpu_seconds, pids)) for name, pids in self.parts.items()}
        self._own = time.process_time()
        self._busy = machine_busy()

    def stop(self) -> None:
        self.cpu = {
            name: sum(map(cpu_seconds, pids)) - self._cpu[name] for name, pids in self.parts.items()
        }
        self.cpu["cashiers, wallets and merchant"] = time.process_time() - self._own
        busy, total = machine_busy()
        self.busy_percent = 100 * (busy - self._busy[0]) / (total - self._busy[1])


def run(checkouts: int, rate: float) -> dict[str, Any]:
    per_lane = -(-checkouts // LANES)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "flow.db"

        async def setup() -> tuple[str, str, str, list[str]]:
            storage = await asyncio.to_thread(SqliteStorage, str(db))
            merchant, key = await storage.create_merchant("Bench Shop")
            tokens = [(await storage.create_wallet(f"w{n}", "EUR", 10**9))[1] for n in range(LANES)]
            public = storage.signing_key.public.text
            await storage.close()
            return merchant.id, key, public, tokens

        merchant_id, key, public_key, tokens = asyncio.run(setup())
        broker = Mosquitto(Path(folder) / "broker")
        broker.start()
        psp = PspProcess(db, mqtt=broker.url, extra=NO_RATE_LIMITS)
        terminals = start_terminals(broker.url, merchant_id, public_key)
        try:
            meter = Meter(
                {
                    "psp": [psp.process.pid],
                    "terminals": [t.pid for t in terminals],
                    "broker": [broker.process.pid] if broker.process else [],
                }
            )
            rows = asyncio.run(drive(psp, broker, merchant_id, key, tokens, per_lane, rate, meter))
            rss = [rss_mb(t.pid) for t in terminals]
        finally:
            for terminal in terminals:
                terminal.terminate()
            for terminal in terminals:
                terminal.wait(10)
            psp.stop()
            broker.stop()
    figures: dict[str, Any] = {
        "lanes": LANES,
        "offered_checkouts_per_second": rate,
        "checkouts": len(rows),
        "machine_busy_percent": meter.busy_percent,
        "cpu_ms_per_checkout": {
            name: 1000 * seconds / len(rows) for name, seconds in meter.cpu.items()
        },
        "terminal_rss_mb_max": max(rss),
    }
    for hop in (
        "create_answer",
        "checkout_to_screen",
        "pay_answer",
        "pay_to_event",
        "pay_to_screen",
    ):
        figures[hop] = summary([row[hop] for row in rows])
    return figures


LABELS = {
    "create_answer": "cashier's POST /v1/checkouts answered",
    "checkout_to_screen": "checkout to QR on the terminal's display",
    "pay_answer": "wallet's POST /v1/payments answered",
    "pay_to_event": "pay to checkout.paid at the merchant",
    "pay_to_screen": "pay to paid screen on the terminal",
}
TARGETED = ("checkout_to_screen", "pay_to_event", "pay_to_screen")


def measure(quick: bool, checkouts: int | None = None, rate: float = RATE) -> dict[str, Any]:
    figures = run(checkouts or (256 if quick else 1024), rate)
    if not quick and checkouts is None:
        figures["busier"] = run(1024, BUSY_RATE)
    return figures


def report(figures: dict[str, Any]) -> None:
    _report(figures)
    if "busier" in figures:
        _report(figures["busier"])


def _report(figures: dict[str, Any]) -> None:
    print(
        f"flow, {figures['checkouts']} checkouts over {figures['lanes']} terminals side by side,"
        f" {figures['offered_checkouts_per_second']:g} started per second (real processes,"
        " signed tickets and events, noop 128x64 display; machine"
        f" {figures['machine_busy_percent']:.0f}% busy):"
    )
    print(f"  {'hop (ms)':<44} {'p50':>7} {'p99':>7} {'max':>7}   target")
    for hop, label in LABELS.items():
        f = figures[hop]
        target = "p99 <= 15" if hop in TARGETED else ""
        print(f"  {label:<44} {f['p50_ms']:7.2f} {f['p99_ms']:7.2f} {f['max_ms']:7.2f}   {target}")
    shares = ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms_per_checkout"].items())
    print(f"  CPU ms per checkout: {shares}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="256 checkouts, one rate")
    parser.add_argument("--checkouts", type=int, default=None)
    parser.add_argument("--rate", type=float, default=RATE, help="checkouts started per second")
    args = parser.parse_args()
    figures = measure(args.quick, args.checkouts, args.rate)
    report(figures)
    print(f"written {write_results('flow', figures)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
