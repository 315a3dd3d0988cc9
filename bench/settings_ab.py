"""``make bench-settings``: what the PSP's operations settings cost, side by side.

The same commit, the same load as ``bench/psp_bench.py`` (64 clients,
create then pay), run with different ``psp-server serve`` flags in turn,
A B C A B C ..., so that the machine's drift falls on every side alike:

* ``plain``: no metrics, text logs (``--metrics off``);
* ``metrics``: ``GET /metrics`` counting (the default);
* ``metrics+json``: and every log line a JSON object (``--log-format json``).

Each run is on SQLite (one process) and on PostgreSQL with two workers,
whose metrics are added up through shared files. It prints the median of
each figure and the ratio to ``plain``: for throughput above 1 is better,
for CPU below.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.psp_bench import hello_world_rate, run
from tests.support.postgres import PgCluster

SIDES: dict[str, tuple[str, ...]] = {
    "plain": ("--metrics", "off"),
    "metrics": ("--metrics", "on"),
    "metrics+json": ("--metrics", "on", "--log-format", "json"),
}
FIGURES = (
    ("SQLite checkouts/s", "sqlite", "checkouts_per_second"),
    ("SQLite PSP CPU ms/checkout", "sqlite", "psp_cpu_ms_per_checkout"),
    ("PostgreSQL 2 workers checkouts/s", "pg2", "checkouts_per_second"),
    ("PostgreSQL 2 workers PSP CPU ms/checkout", "pg2", "psp_cpu_ms_per_checkout"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    found: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    speeds: list[float] = []
    with PgCluster(durable=True) as cluster:
        for round_number in range(args.rounds):
            speeds.append(asyncio.run(hello_world_rate()))
            for side, flags in SIDES.items():
                runs = {
                    "sqlite": asyncio.run(run(args.seconds, 64, settings=flags)),
                    "pg2": asyncio.run(
                        run(args.seconds, 64, pg=cluster, workers=2, settings=flags)
                    ),
                }
                for _, where, key in FIGURES:
                    found[side].setdefault(f"{where}:{key}", []).append(runs[where][key])
                print(
                    f"round {round_number + 1} {side:13}"
                    f" SQLite {runs['sqlite']['checkouts_per_second']:6.0f}/s"
                    f" PG2 {runs['pg2']['checkouts_per_second']:6.0f}/s",
                    flush=True,
                )
    print()
    print(
        f"{args.rounds} alternating rounds of {args.seconds:.0f} s a side;"
        " machine speed (hello-world aiohttp) "
        + ", ".join(f"{s:,.0f}" for s in speeds)
        + " requests/s"
    )
    header = f"{'':42}" + "".join(f"{side:>14}" for side in SIDES)
    print(header + "   ratios to plain")
    for label, where, key in FIGURES:
        medians = {side: statistics.median(found[side][f"{where}:{key}"]) for side in SIDES}
        ratios = "  ".join(
            f"{side} {medians[side] / medians['plain']:.3f}" for side in SIDES if side != "plain"
        )
        print(f"{label:42}" + "".join(f"{medians[s]:14.3f}" for s in SIDES) + "   " + ratios)


if __name__ == "__main__":
    main()
