"""The terminal's figures: frame render time, the daemon's resident memory
after many checkouts, the time from a display command to the state message
saying the frame is on the display, and the panel's bus time per frame.

Run from the repository root: ``.venv/bin/python bench/terminal_bench.py``
(``--quick`` for fewer checkouts). It starts a real mosquitto and a real
``scan2pay-terminal`` process with a ``noop`` display of 128x64 mono, which
renders every frame and discards it, so the figures are the daemon's own
cost; the bus time, printed separately, is the floor a real panel adds.

The daemon runs as production terminals do, with the PSP's public key
(``--psp-public-key``, docs/signing.md): a key made for the run signs each
``show_qr``'s display ticket, as the PSP's create does, and the
``checkout.paid`` event that puts "paid" on the screen, published on the
merchant's events topic as the PSP's relay does. A terminal with a key would
take a cashier's unsigned "paid" only as a hint to ask the PSP.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luma.core.interface.serial import noop as luma_noop

from bench.common import percentile, proc_status, rss_mb, run_alone
from bench.render_bench import CASES, first_frame_times_ms, frame_times_ms
from hardware.luma_panel import LumaConfig, LumaPanel
from hardware.registry import parse_spec
from scan2pay_common.jsonfields import dumps
from scan2pay_common.messages import (
    CheckoutEvent,
    CheckoutSnapshot,
    DisplayTicket,
    ShowQr,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import display_topic, state_topic, terminal_events_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Publisher, Subscriber

MERCHANT, TERMINAL = "mer_bench", "lane-1"


def threads(pid: int) -> int:
    return proc_status(pid, "Threads")


def signed_show_qr(key: SigningKey, n: int, expires_ms: int) -> tuple[ShowQr, CheckoutSnapshot]:
    """The cashier's ``show_qr`` for checkout ``n``, carrying the display
    ticket the PSP signs (psp_server.api.checkouts.display_ticket), and the
    checkout as the PSP's events will carry it once paid."""
    expires_at = to_rfc3339(expires_ms)
    checkout = CheckoutSnapshot(
        id=f"co_{n}",
        order_id=f"order-{n}",
        amount=1234,
        currency="EUR",
        status="paid",
        qr_url=f"HTTP://127.0.0.1:8080/Q/{n:032d}",
        expires_at=expires_at,
        terminal_id=TERMINAL,
        created_at=to_rfc3339(now_ms()),
    )
    ticket = DisplayTicket(
        checkout_id=checkout.id,
        merchant_id=MERCHANT,
        qr_url=checkout.qr_url,
        amount=checkout.amount,
        currency=checkout.currency,
        terminal_id=TERMINAL,
        expires_at=expires_at,
    )
    command = ShowQr(
        checkout.id,
        checkout.qr_url,
        checkout.amount,
        checkout.currency,
        expires_at,
        order_id=checkout.order_id,
        display_ticket=key.sign(ticket.to_dict()),
    )
    return command, checkout


def signed_paid_event(key: SigningKey, checkout: CheckoutSnapshot, seq: int) -> bytes:
    """The ``checkout.paid`` event as the PSP stores and publishes it."""
    event = CheckoutEvent(
        event_id=f"evt_bench_{seq}",
        seq=seq,
        type="checkout.paid",
        merchant_id=MERCHANT,
        checkout=checkout,
        created_at=to_rfc3339(now_ms()),
    )
    return dumps(key.sign(event.to_dict()))


def daemon_figures(checkouts: int) -> dict[str, float]:
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "broker")
        broker.start()
        states = Subscriber(broker.port, state_topic(MERCHANT, TERMINAL))
        terminal = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "scan2pay-terminal"),
                "--mqtt",
                broker.url,
                "--merchant",
                MERCHANT,
                "--terminal",
                TERMINAL,
                "--display",
                "noop,size=128x64,mode=1",
                "--log-level",
                "WARNING",
                "--psp-public-key",
                key.public.text,
            ],
        )
        try:

            def wait(screen: str, checkout_id: str | None) -> None:
                while True:
                    (message,) = states.wait_for(1, 20)
                    state = TerminalState.from_json(message.payload)
                    if (state.screen, state.checkout_id) == (screen, checkout_id):
                        return

            wait("idle", None)
            cashier = Publisher(broker.port)
            started_rss = rss_mb(terminal.pid)
            to_screen: list[float] = []
            paid_to_screen: list[float] = []
            psp = Publisher(broker.port)
            topic = display_topic(MERCHANT, TERMINAL)
            events = terminal_events_topic(MERCHANT, TERMINAL)
            for n in range(checkouts):
                command, checkout = signed_show_qr(key, n, now_ms() + 300_000)
                paid = signed_paid_event(key, checkout, n + 1)
                start = time.perf_counter()
                cashier.publish(topic, display_command_to_json(command))
                wait("qr", checkout.id)
                to_screen.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                psp.publish(events, paid, retain=False)
                wait("paid", checkout.id)
                paid_to_screen.append((time.perf_counter() - start) * 1000)
            cashier.close()
            psp.close()
            return {
                "checkouts": checkouts,
                "command_to_state_ms_p50": statistics.median(to_screen),
                "command_to_state_ms_p99": percentile(to_screen, 0.99),
                "command_to_state_ms_max": max(to_screen),
                "paid_event_to_state_ms_p50": statistics.median(paid_to_screen),
                "paid_event_to_state_ms_p99": percentile(paid_to_screen, 0.99),
                "paid_event_to_state_ms_max": max(paid_to_screen),
                "rss_mb_at_start": started_rss,
                "rss_mb_after": rss_mb(terminal.pid),
                "threads_after": threads(terminal.pid),
            }
        finally:
            terminal.terminate()
            terminal.wait(10)
            states.close()
            broker.stop()


def bus_figures() -> dict[str, float]:
    figures = {}
    for label, spec in [
        ("ssd1306 128x64 I2C 400 kHz", "ssd1306:i2c:1:0x3C"),
        ("ssd1306 128x64 SPI 8 MHz", "ssd1306:spi:0:0"),
        ("st7789 240x240 SPI 8 MHz", "st7789:spi:0:0,width=240,height=240"),
    ]:
        config = parse_spec(spec)
        if not isinstance(config, LumaConfig):
            raise TypeError(f"{spec} is not a luma panel")
        panel = LumaPanel(config, serial_interface=luma_noop())
        figures[label] = panel.bus_seconds_per_frame() * 1000
    return figures


def render_figures() -> dict[str, dict[str, float]]:
    render = {}
    for label, geometry, _ in CASES:
        repeat, first = frame_times_ms(geometry), first_frame_times_ms(geometry)
        render[label] = {
            "repeat_median_ms": statistics.median(repeat),
            "repeat_p99_ms": percentile(repeat, 0.99),
            "first_median_ms": statistics.median(first),
            "first_p99_ms": percentile(first, 0.99),
        }
    return render


def measure(quick: bool) -> dict[str, Any]:
    return {
        "render": render_figures(),
        "daemon": daemon_figures(200 if quick else 1000),
        "bus_ms_per_frame": bus_figures(),
    }


def report(figures: dict[str, Any]) -> None:
    print("frame render and hand-off to the display, QR screen (ms)")
    print(f"  {'':<16} {'new checkout p50':>17} {'p99':>7} {'repeat p50':>11} {'p99':>7}   target")
    for label, _, target in CASES:
        f = figures["render"][label]
        print(
            f"  {label:<16} {f['first_median_ms']:17.2f} {f['first_p99_ms']:7.2f}"
            f" {f['repeat_median_ms']:11.2f} {f['repeat_p99_ms']:7.2f}   p99 <= {target:g}"
        )
    daemon = figures["daemon"]
    print(
        f"terminal daemon with the PSP's key, {daemon['checkouts']:.0f} checkouts"
        " (signed show_qr, then a signed checkout.paid event), noop 128x64:"
    )
    print(
        f"  command -> state 'on display'  p50 {daemon['command_to_state_ms_p50']:.2f} ms"
        f"  p99 {daemon['command_to_state_ms_p99']:.2f} ms"
        f"  max {daemon['command_to_state_ms_max']:.2f} ms (bus time excluded)"
    )
    print(
        f"  paid event -> state 'on display' p50 {daemon['paid_event_to_state_ms_p50']:.2f} ms"
        f"  p99 {daemon['paid_event_to_state_ms_p99']:.2f} ms"
        f"  max {daemon['paid_event_to_state_ms_max']:.2f} ms"
    )
    print(
        f"  resident memory                {daemon['rss_mb_at_start']:.1f} MB at start,"
        f" {daemon['rss_mb_after']:.1f} MB after (target <= 40 MB),"
        f" {daemon['threads_after']:.0f} threads"
    )
    print("panel bus time per full frame (the floor under time to screen):")
    for label, ms in figures["bus_ms_per_frame"].items():
        print(f"  {label:<30} {ms:7.2f} ms")


def main() -> int:
    return run_alone("terminal", measure, report, "200 checkouts instead of 1,000")


if __name__ == "__main__":
    raise SystemExit(main())
