"""What the benchmarks share: percentiles, process figures from /proc, the
machine's description and where the JSON results go."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99 and max, in the unit the values are in (ms throughout)."""
    return {
        "p50_ms": statistics.median(values),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values),
    }


def proc_status(pid: int, field: str) -> int:
    """A number from /proc/PID/status, like VmRSS (in kB) or Threads."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def rss_mb(pid: int) -> float:
    return proc_status(pid, "VmRSS") / 1024


def run_alone(
    name: str,
    measure: Callable[[bool], dict[str, Any]],
    report: Callable[[dict[str, Any]], None],
    quick_help: str,
) -> int:
    """``main`` of a benchmark run by itself: ``--quick``, its table, its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help=quick_help)
    figures = measure(parser.parse_args().quick)
    report(figures)
    print(f"written {write_results(name, figures)}")
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and every live process below it (a PSP's
    workers, a PostgreSQL server's backends), each counted once, with the
    time of children they have already waited for."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        total += ticks / os.sysconf("SC_CLK_TCK")
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot; the difference of two
    readings tells how loaded the machine was in between."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()},"
        f" Linux {platform.release()}, Python {platform.python_version()}"
    )


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    report = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), **figures}
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
