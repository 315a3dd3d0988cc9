"""The folder every worker of ``--workers N`` writes to: a worker that
ended still counts in the counters, and no longer in the gauges once the
supervisor has marked it (``SharedMetrics.worker_ended``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from psp_server.metrics import SharedMetrics
from psp_server.metrics.shared import ENV

# A worker's life in short: it counts, samples its gauges, and ends.
WORKER = """
from psp_server.metrics import PrometheusMetrics
metrics = PrometheusMetrics.for_this_process(broker=True)
metrics.checkout_created()
metrics.sample(mqtt_connected=True, terminals_online=7)
"""


def run_worker(folder: Path) -> int:
    worker = subprocess.Popen([sys.executable, "-c", WORKER], env={**os.environ, ENV: str(folder)})
    assert worker.wait(timeout=30) == 0
    return worker.pid


def test_an_ended_worker_counts_in_counters_and_not_in_gauges(tmp_path: Path) -> None:
    shared = SharedMetrics(tmp_path)
    pids = [run_worker(tmp_path), run_worker(tmp_path)]
    registry = shared.registry()
    assert registry.get_sample_value("scan2pay_checkouts_created_total") == 2
    assert registry.get_sample_value("scan2pay_terminals_online") == 7
    assert registry.get_sample_value("scan2pay_mqtt_connected") == 1
    for pid in pids:
        shared.worker_ended(pid)
    registry = shared.registry()
    assert registry.get_sample_value("scan2pay_checkouts_created_total") == 2
    assert registry.get_sample_value("scan2pay_terminals_online") is None
    assert registry.get_sample_value("scan2pay_mqtt_connected") is None


def test_the_folder_is_the_servers_own_and_goes_with_it() -> None:
    before = os.environ.get(ENV)
    shared = SharedMetrics.make()
    try:
        assert shared.path.is_dir()
        assert shared.path.name.startswith("scan2pay-metrics-")
        assert os.environ[ENV] == str(shared.path)
    finally:
        shared.remove()
        # This test's process is a test runner, not a supervisor: back to
        # the values of one process, as it was.
        from prometheus_client import values

        values.ValueClass = values.MutexValue
        if before is not None:
            os.environ[ENV] = before
    assert not shared.path.exists()
    assert ENV not in os.environ or before is not None
