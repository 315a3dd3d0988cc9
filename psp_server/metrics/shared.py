"""``--workers N``: prometheus-client's multiprocess mode, in a folder of
this server's own.

Each worker writes its counters and histograms to memory-mapped files named
by its pid in the folder; a scrape, in whichever worker the kernel hands
it to, reads every file and adds them up. The supervisor makes the folder
before it forks a worker, marks a worker that died (its gauges no longer
count; its counters do, as what it served happened), and removes the
folder when it stops. A folder per run rather than a fixed one: a file left
by the run before would count again."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, values

ENV = "PROMETHEUS_MULTIPROC_DIR"


class SharedMetrics:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def make(cls) -> SharedMetrics:
        """A new folder, and this process (and the workers it forks) in
        multiprocess mode. Before any instrument is made: each chooses where
        its values live when it is made."""
        path = Path(tempfile.mkdtemp(prefix="scan2pay-metrics-"))
        os.environ[ENV] = str(path)
        # What prometheus-client does at import when the variable is already
        # set; psp-server imports it before it has parsed --workers.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # prometheus-client leaves it untyped
        return cls(path)

    def worker_ended(self, pid: int) -> None:
        multiprocess.mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]  # prometheus-client leaves it untyped

    def registry(self) -> CollectorRegistry:
        """A registry that reads every worker's files (one per scrape)."""
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.path))  # type: ignore[no-untyped-call]  # prometheus-client leaves it untyped
        return registry

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.environ.pop(ENV, None)


def current() -> SharedMetrics | None:
    """The folder this process's workers share, if it is a worker of one."""
    path = os.environ.get(ENV)
    return None if path is None else SharedMetrics(Path(path))
