"""The benchmarks still run (make bench is not part of make test, so this
keeps it from rotting): each part, briefly, with real processes. The
figures are not judged here; bench/run.py compares them with the targets."""

from __future__ import annotations

import asyncio

from bench import flow_bench, psp_bench, rate_limit_bench, static_bench, terminal_bench


def test_the_flow_bench_times_every_hop() -> None:
    figures = flow_bench.run(checkouts=32, rate=64.0)
    assert figures["checkouts"] == 32
    for hop in flow_bench.LABELS:
        assert 0 < figures[hop]["p50_ms"] <= figures[hop]["p99_ms"] <= figures[hop]["max_ms"]
    assert figures["cpu_ms_per_checkout"]["psp"] > 0
    assert 10 < figures["terminal_rss_mb_max"] < 200


def test_the_psp_bench_completes_checkouts() -> None:
    figures = asyncio.run(psp_bench.run(1.0, 4))
    assert figures["checkouts"] > 0
    assert figures["psp_cpu_ms_per_checkout"] > 0
    assert figures["lone_create_ms_p50"] > 0


def test_the_terminal_bench_measures_a_daemon() -> None:
    figures = terminal_bench.daemon_figures(5)
    assert figures["checkouts"] == 5
    assert 10 < figures["rss_mb_after"] < 200
    assert figures["paid_event_to_state_ms_p50"] > 0


def test_the_rate_limit_bench_times_both_tables() -> None:
    figures = rate_limit_bench.figures(checks=2000, rounds=1)
    assert set(figures) == {"in process:one", "in process:many", "shared:one", "shared:many"}
    assert all(us > 0 for us in figures.values())


def test_the_static_bench_times_payments_at_a_printed_code() -> None:
    figures = static_bench.measure(quick=True)
    assert figures["payments"] == static_bench.QUICK_PAYMENTS
    shown = figures["scan_to_paid_screen"]
    assert 0 < shown["p50_ms"] <= shown["p99_ms"] <= shown["max_ms"]
