"""Frame render time for a QR screen at 128x64 mono and 320x240 colour:
median and p99 over 200 renders, of the repeat frame and of the first frame
of a new checkout.

Run from the repository root: ``.venv/bin/python bench/render_bench.py``.
Targets on the development machine, for the p99 of the first frame (the one
on the checkout-to-screen path): 5 ms at 128x64, 20 ms at 320x240.

Repeat frame: each render, after warm-up, gets a new ``now``, a second on
from the last, so the countdown text changes every frame as it does on the
terminal: the QR tile and the fonts come from the renderer's caches, the
words are laid out afresh.

First frame: each render shows a URL not seen before in this process (the
default form, with a new 32-character base32 token), so the QR symbol is
made, planned and drawn too; fonts are warm, as on a running terminal.
"""

from __future__ import annotations

import itertools
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


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_fresh = itertools.count(1)


def new_checkout_url() -> str:
    """A URL of the default form that this process has not shown before."""
    n = next(_fresh) * 0x9E3779B97F4A7C15 % (1 << 160)  # spread the bits
    token = "".join(_BASE32[(n >> (5 * k)) & 31] for k in range(32))
    return URL[: -len(token)] + token


def first_frame_times_ms(geometry: Geometry) -> list[float]:
    render(View(QrScreen("chk_bench", URL, 1234, "EUR", NOW + 3_600_000, "order-1")), geometry, NOW)
    times = []
    for _ in range(RENDERS):
        url = new_checkout_url()
        view = View(QrScreen("chk_bench", url, 1234, "EUR", NOW + 3_600_000, "order-1"))
        start = time.perf_counter()
        render(view, geometry, NOW)
        times.append((time.perf_counter() - start) * 1000)
    return times


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


def main() -> int:
    slow = False
    print(f"QR screen, {RENDERS} renders each        median     p99   target (first-frame p99)")
    for name, geometry, target in CASES:
        repeat = frame_times_ms(geometry)
        first = first_frame_times_ms(geometry)
        worst = p99(first)
        verdict = "ok" if worst <= target else "SLOW"
        slow |= worst > target
        print(f"  {name}, repeat frame     {statistics.median(repeat):7.2f} {p99(repeat):7.2f}")
        print(
            f"  {name}, first frame      {statistics.median(first):7.2f} {worst:7.2f}"
            f"   <= {target:g} ms {verdict}"
        )
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
