"""A real Prometheus server for tests (Debian's ``prometheus``): it scrapes
one target every ``SCRAPE_INTERVAL`` on loopback, keeps its data in a
temporary folder, and answers PromQL on its HTTP API (``query``). Like
every process a test starts, it dies with the run (tests/support/reaper.py:
it inherits the run's token)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import free_port
from tests.support.process import end_process

INSTALL_HINT = (
    "Prometheus is not installed; the metrics tests scrape the PSP with a real one. "
    "Install it with `sudo apt-get install prometheus` (scripts/ensure-system-deps does "
    "this when run as root)."
)
SCRAPE_INTERVAL = "1s"
START_TIMEOUT = 20.0
START_ATTEMPTS = 3


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


class Prometheus:
    """Scrapes ``target`` (an http://host:port/path URL) from ``start()`` to ``stop()``."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.workdir = workdir
        self.target = urllib.parse.urlsplit(target)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(  # YAML reads JSON
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "scrape_timeout": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": [
                        {
                            "job_name": "psp",
                            "metrics_path": self.target.path,
                            "static_configs": [{"targets": [self.target.netloc]}],
                        }
                    ],
                }
            )
        )
        binary = prometheus_binary()
        # The port is probed free, then taken by Prometheus: another process
        # may take it meanwhile, and then the start is tried again.
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            with (self.workdir / "prometheus.log").open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=log,
                    cwd=self.workdir,
                )
            if self._ready():
                return
            self.stop()
        raise RuntimeError(f"prometheus did not start: {self.log[-2000:]}")

    def _ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process)
            self.process = None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (``/api/v1/query``)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            body = json.loads(answer.read())
        if body.get("status") != "success":
            raise AssertionError(f"prometheus refused {promql!r}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value a query gives, or None when it gives none."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) != 1:
            raise AssertionError(f"{promql!r} gave {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def scrapes(self) -> int:
        """How many scrapes of the target have succeeded so far (``up`` samples)."""
        return int(self.value('count_over_time(up{job="psp"}[1h])') or 0)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    """Starts a Prometheus that scrapes the URL it is given; each is
    stopped when the test ends."""
    started: list[Prometheus] = []

    def scrape(target: str) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus-{len(started)}", target)
        started.append(server)
        server.start()
        return server

    yield scrape
    for server in started:
        server.stop()
