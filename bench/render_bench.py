"""Frame render time for a QR screen: median and p99 over 200 renders, after
warm-up, at 128x64 mono and 320x240 colour.

Run from the repository root: ``.venv/bin/python bench/render_bench.py``.
Targets on the development machine: 5 ms at 128x64, 20 ms at 320x240.

Each render gets a new ``now``, a second on from the last, so the countdown
text changes every frame as it does on the terminal: the QR tile and the
fonts come from the renderer's caches, the words are laid out afresh. A
second line times the first frame of each new checkout (a URL not seen
before: the QR is planned and drawn too).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

# Run as a script, the repository root is not on sys.path; put it first so
# that the packages come from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import Geometry
from terminal.render import render
from terminal.screens import QrScreen, View

URL = "HTTP://127.0.0.1:8080/Q/" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
NOW = 1_700_000_000_000
WARM_UP = 20
RENDERS = 200
CASES = [
    ("128x64 mono", Geometry(128, 64, "1"), 5.0),
    ("320x240 RGB", Geometry(320, 240, "RGB"), 20.0),
]


def frame_times_ms(geometry: Geometry) -> list[float]:
    view = View(QrScreen("chk_bench", URL, 1234, "EUR", NOW + 3_600_000, "order-1"))
    for i in range(WARM_UP):
        render(view, geometry, NOW + i * 1000)
    times = []
    for i in range(RENDERS):
        start = time.perf_counter()
        render(view, geometry, NOW + (WARM_UP + i) * 1000)
        times.append((time.perf_counter() - start) * 1000)
    return times


def first_frame_times_ms(geometry: Geometry) -> list[float]:
    times = []
    for i in range(RENDERS):
        url = URL[:-6] + f"{i:06d}".translate(str.maketrans("0123456789", "ABCDEFGHIJ"))
        view = View(QrScreen("chk_bench", url, 1234, "EUR", NOW + 3_600_000, "order-1"))
        start = time.perf_counter()
        render(view, geometry, NOW)
        times.append((time.perf_counter() - start) * 1000)
    return times


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


def main() -> int:
    slow = False
    for name, geometry, target in CASES:
        times = frame_times_ms(geometry)
        median, worst = statistics.median(times), p99(times)
        verdict = "ok" if worst <= target else "SLOW"
        slow |= worst > target
        print(
            f"{name}: median {median:.2f} ms, p99 {worst:.2f} ms (target {target:g} ms) {verdict}"
        )
        first = statistics.median(first_frame_times_ms(geometry))
        print(f"{name}, first frame of a new checkout: median {first:.2f} ms")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
