"""``make bench``: every figure, a table of the targets, and one JSON file.

Runs, one after another so that they do not share the two cores:
bench/terminal_bench.py (frame render, the daemon's memory, the panel's bus
time), bench/flow_bench.py (every hop of the flow with 16 terminals) and
bench/psp_bench.py (the PSP's throughput) and bench/sound_bench.py (the
soundbox: the wallet's answer to the first audio sample, cached and
uncached, and the cache's size). Each prints its own table; this
adds the targets with a verdict, and writes everything to
bench/results/bench-<time>.json. ``--quick`` (``make bench QUICK=1``) runs
each for less time and finishes in under a minute.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import flow_bench, psp_bench, sound_bench, terminal_bench
from bench.common import machine, write_results


def targets(figures: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, target, met) for each target of the issue."""
    flow, psp, term, sound = figures["flow"], figures["psp"], figures["terminal"], figures["sound"]
    render = term["render"]
    rows = [
        ("checkout to screen p99, ms", flow["checkout_to_screen"]["p99_ms"], "<= 15", 15),
        ("pay to checkout.paid event p99, ms", flow["pay_to_event"]["p99_ms"], "<= 15", 15),
        ("pay to paid screen p99, ms", flow["pay_to_screen"]["p99_ms"], "<= 15", 15),
        (
            "frame render 128x64, new checkout, p99 ms",
            render["128x64 mono"]["first_p99_ms"],
            "<= 5",
            5,
        ),
        (
            "frame render 320x240, new checkout, p99 ms",
            render["320x240 RGB"]["first_p99_ms"],
            "<= 20",
            20,
        ),
        (
            "pay answer to first audio sample p99, uncached, ms",
            sound["uncached"]["p99_ms"],
            "<= 150",
            150,
        ),
        (
            "pay answer to first audio sample p99, cached, ms",
            sound["cached"]["p99_ms"],
            "<= 150",
            150,
        ),
        (
            "terminal daemon memory after its checkouts, MB",
            term["daemon"]["rss_mb_after"],
            "<= 40",
            40,
        ),
    ]
    checked = [(what, value, target, value <= limit) for what, value, target, limit in rows]
    rate = psp["checkouts_per_second"]
    checked.append(("PSP completed checkouts per second", rate, ">= 2,000", rate >= 2000))
    return checked


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short run, under a minute")
    args = parser.parse_args()
    started = time.monotonic()
    print(f"scan2pay benchmarks on {machine()}\n")
    figures: dict[str, Any] = {"quick": args.quick}
    parts = (
        ("terminal", terminal_bench),
        ("flow", flow_bench),
        ("psp", psp_bench),
        ("sound", sound_bench),
    )
    for name, part in parts:
        figures[name] = part.measure(args.quick)
        part.report(figures[name])
        print()
    print("targets:")
    for what, value, target, met in targets(figures):
        print(f"  {what:<48} {value:9.2f}  {target:<9} {'met' if met else 'MISSED'}")
    figures["targets"] = [
        {"what": what, "measured": value, "target": target, "met": met}
        for what, value, target, met in targets(figures)
    ]
    figures["seconds"] = time.monotonic() - started
    print(f"\n{figures['seconds']:.0f} s; written {write_results('bench', figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
