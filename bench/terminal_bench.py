"""The terminal's figures: frame render time, the daemon's resident memory
after many checkouts, the time from a display command to the state message
saying the frame is on the display, and the panel's bus time per frame.

Run from the repository root: ``.venv/bin/python bench/terminal_bench.py``
(``--quick`` for fewer checkouts). It starts a real mosquitto and a real
``scan2pay-terminal`` process with a ``noop`` display of 128x64 mono, which
renders every frame and discards it, so the figures are the daemon's own
cost; the bus time, printed separately, is the floor a real panel adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luma.core.interface.serial import noop as luma_noop

from bench.render_bench import CASES, frame_times_ms
from hardware.luma_panel import LumaPanel
from hardware.registry import parse_spec
from scan2pay_common.messages import (
    ShowQr,
    ShowStatus,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import display_topic, state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Publisher, Subscriber

MERCHANT, TERMINAL = "mer_bench", "lane-1"
RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def daemon_figures(checkouts: int) -> dict[str, float]:
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
            topic = display_topic(MERCHANT, TERMINAL)
            for n in range(checkouts):
                checkout_id = f"co_{n}"
                url = f"HTTP://127.0.0.1:8080/Q/{n:032d}"
                command = ShowQr(checkout_id, url, 1234, "EUR", to_rfc3339(now_ms() + 300_000))
                start = time.perf_counter()
                cashier.publish(topic, display_command_to_json(command))
                wait("qr", checkout_id)
                to_screen.append((time.perf_counter() - start) * 1000)
                cashier.publish(topic, display_command_to_json(ShowStatus(checkout_id, "paid")))
                wait("paid", checkout_id)
            cashier.close()
            return {
                "checkouts": checkouts,
                "command_to_state_ms_p50": statistics.median(to_screen),
                "command_to_state_ms_p99": percentile(to_screen, 0.99),
                "command_to_state_ms_max": max(to_screen),
                "rss_mb_at_start": started_rss,
                "rss_mb_after": rss_mb(terminal.pid),
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
        panel = LumaPanel(parse_spec(spec), serial_interface=luma_noop())  # type: ignore[arg-type]
        figures[label] = panel.bus_seconds_per_frame() * 1000
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100 checkouts instead of 1,000")
    args = parser.parse_args()
    report: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": _machine()}

    print("frame render (QR screen)          median     p99   target")
    render: dict[str, dict[str, float]] = {}
    for label, geometry, target in CASES:
        times = frame_times_ms(geometry)
        render[label] = {"median_ms": statistics.median(times), "p99_ms": percentile(times, 0.99)}
        print(
            f"  {label:<30} {render[label]['median_ms']:7.2f} {render[label]['p99_ms']:7.2f}"
            f"  <= {target:.0f} ms"
        )
    report["render"] = render

    daemon = daemon_figures(100 if args.quick else 1000)
    report["daemon"] = daemon
    print(f"terminal daemon, {daemon['checkouts']} checkouts (show_qr then paid), noop 128x64:")
    print(
        f"  command -> state 'on display'  p50 {daemon['command_to_state_ms_p50']:.2f} ms"
        f"  p99 {daemon['command_to_state_ms_p99']:.2f} ms"
        f"  max {daemon['command_to_state_ms_max']:.2f} ms (bus time excluded)"
    )
    print(
        f"  resident memory                {daemon['rss_mb_at_start']:.1f} MB at start,"
        f" {daemon['rss_mb_after']:.1f} MB after (target <= 40 MB)"
    )

    bus = bus_figures()
    report["bus_ms_per_frame"] = bus
    print("panel bus time per full frame (the floor under time to screen):")
    for label, ms in bus.items():
        print(f"  {label:<30} {ms:7.2f} ms")

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"terminal-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    raise SystemExit(main())
