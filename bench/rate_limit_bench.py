"""What one rate-limit check costs on the payment path: ``RateLimiter.take``
on the table in a process's own memory (one process) and on the table the
workers share (``--workers N``: a POSIX record lock taken and dropped
around each update), in microseconds, the least of several rounds (the machine is shared: the
least is the round least disturbed).

Run from the repository root: ``.venv/bin/python bench/rate_limit_bench.py``.

Two loads: one client over and over (its bucket refused after the burst,
as under attack), and 10,000 clients in turn (each found in its group).
A payment costs the PSP about 2 ms of CPU (docs/scaling.md); a check must
stay a small fraction of that.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Run as a script, the repository root is not on sys.path; put it first so
# that the packages come from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psp_server.api.guards.bucket_table import BucketTable
from psp_server.api.guards.rate_limiter import RateLimiter
from psp_server.runtime.config import Rate

CHECKS = 100_000
ROUNDS = 7
CLIENTS = [f"tok:{n:032x}" for n in range(10_000)]


def per_check_us(limiter: RateLimiter, keys: list[str], checks: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        take = limiter.take
        count = len(keys)
        started = time.perf_counter()
        for n in range(checks):
            take(keys[n % count])
        times.append((time.perf_counter() - started) / checks * 1e6)
    return min(times)


def figures(checks: int = CHECKS, rounds: int = ROUNDS) -> dict[str, float]:
    """Microseconds per check: ``{where}:{one|many}`` for each table."""
    rate = Rate(600, 60.0)  # the default per token on payments
    tables = {"in process": BucketTable.in_process(), "shared": BucketTable.shared()}
    found = {}
    try:
        for where, table in tables.items():
            limiter = RateLimiter("pay/token", rate, table)
            found[f"{where}:one"] = per_check_us(limiter, CLIENTS[:1], checks, rounds)
            found[f"{where}:many"] = per_check_us(limiter, CLIENTS, checks, rounds)
    finally:
        for table in tables.values():
            table.close()
    return found


def main() -> None:
    found = figures()
    for where in ("in process", "shared"):
        print(
            f"{where:10} one client {found[f'{where}:one']:5.2f} us/check, "
            f"{len(CLIENTS):,} clients {found[f'{where}:many']:5.2f} us/check"
        )


if __name__ == "__main__":
    main()
