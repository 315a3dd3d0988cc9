"""``psp-server serve --workers N``: N processes on one port and one
PostgreSQL database, under a supervisor that replaces a worker that dies
(psp_server/runtime/workers.py)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from psp_server.core.errors import ConfigError
from psp_server.runtime import config
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant, run_cli
from tests.support.workers import WorkerLog, alive, served, workers_of


class Client:
    """Creates checkouts, a new connection for each, so that both workers
    take connections; a request whose connection breaks is sent again. Its
    answers are counted by status and by whether the request was sent again:
    a checkout stored by a worker killed before it answered is answered
    ``200`` when sent again (the same ``order_id`` and body, docs/api.md)."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.key = key
        self.connection_errors = 0
        self.answers: Counter[tuple[int, bool]] = Counter()
        self._lock = threading.Lock()

    def create_checkout(self, order_id: str) -> None:
        body = json.dumps({"order_id": order_id, "amount": 100, "currency": "EUR"})
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        for attempt in range(3):
            connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                connection.request("POST", "/v1/checkouts", body, headers)
                response = connection.getresponse()
                response.read()
            except (ConnectionError, http.client.IncompleteRead):
                # In flight on a worker that was killed: the connection
                # went with it.
                with self._lock:
                    self.connection_errors += 1
                continue
            finally:
                connection.close()
            with self._lock:
                self.answers[response.status, attempt > 0] += 1
            return
        raise AssertionError(f"{order_id}: three connections in a row broke")

    def run(self, threads: int, each: int) -> None:
        def one(thread: int) -> None:
            for n in range(each):
                self.create_checkout(f"T{thread}-{n}")

        self.run_until(threads, one)

    def run_until(self, threads: int, body: Callable[[int], None]) -> None:
        failures: list[BaseException] = []

        def guarded(thread: int) -> None:
            try:
                body(thread)
            except BaseException as exc:  # noqa: BLE001 - collected, and asserted none once the threads end
                failures.append(exc)

        started = [threading.Thread(target=guarded, args=(t,)) for t in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join(60)
        assert not failures, failures


@pytest.fixture
def shop(pg_dsn: str) -> dict[str, str]:
    return create_merchant(pg_dsn)


def start(pg_dsn: str, tmp_path: Path, workers: int = 2) -> PspProcess:
    return PspProcess(pg_dsn, workers=workers, log_path=tmp_path / "psp.log")


def test_two_workers_share_the_port_and_both_serve(
    pg_dsn: str, shop: dict[str, str], tmp_path: Path
) -> None:
    server = start(pg_dsn, tmp_path)
    try:
        pids = WorkerLog(server).wait_for_workers(2)
        # The supervisor forks with no thread but its own, and starts none.
        assert os.listdir(f"/proc/{server.process.pid}/task") == [str(server.process.pid)]
        client = Client(server.url, shop["api_key"])
        client.run(threads=16, each=15)
        assert client.answers == {(201, False): 240}
        assert client.connection_errors == 0
        assert workers_of(server.process.pid) == pids
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert server.process.stdout is not None
    assert server.process.stdout.read() == b""  # the one listening line, read at start
    counts = served(server.log())
    assert sum(counts.values()) == 240
    assert {number for number, _ in counts} == {1, 2}, counts
    assert {pid for _, pid in counts} == pids


def test_a_killed_worker_is_replaced_while_the_other_serves(
    pg_dsn: str, shop: dict[str, str], tmp_path: Path
) -> None:
    server = start(pg_dsn, tmp_path)
    stop = threading.Event()
    replaced: set[int] = set()
    by_survivor: list[int] = []  # its requests answered, at the kill and at the end
    try:
        victim, survivor = sorted(WorkerLog(server).wait_for_workers(2))
        client = Client(server.url, shop["api_key"])
        client.run(threads=4, each=5)  # both workers warm

        def answered_by(pid: int) -> int:
            return sum(n for (_, by), n in served(server.log()).items() if by == pid)

        def load(thread: int) -> None:
            n = 0
            while not stop.is_set():
                client.create_checkout(f"K{thread}-{n}")
                n += 1

        def kill_and_watch() -> None:
            try:
                time.sleep(0.3)
                os.kill(victim, signal.SIGKILL)
                by_survivor.append(answered_by(survivor))
                replaced.update(
                    WorkerLog(server).wait_for_workers(2, timeout=5, gone=victim) - {survivor}
                )
                # The load goes on until the replacement has answered too.
                wait_until(lambda: any(answered_by(pid) for pid in replaced))
                by_survivor.append(answered_by(survivor))
            finally:
                stop.set()

        watcher = threading.Thread(target=kill_and_watch)
        watcher.start()
        client.run_until(6, load)
        watcher.join()
    finally:
        stop.set()
        code = server.stop()
    log = server.log()
    assert code == 0, log
    assert len(by_survivor) == 2, (by_survivor, log)
    assert by_survivor[1] > by_survivor[0], (by_survivor, log)
    assert set(client.answers) <= {(201, False), (201, True), (200, True)}, client.answers
    # At most the request each thread had in flight on the killed worker.
    assert client.connection_errors <= 6
    assert len(replaced) == 1
    assert victim not in replaced
    assert not alive(victim)
    assert re.search(rf"worker \d \(pid {victim}\) was killed by signal 9", log), log


def test_sigterm_stops_every_worker_and_the_supervisor_exits_0(pg_dsn: str, tmp_path: Path) -> None:
    server = start(pg_dsn, tmp_path, workers=3)
    pids = WorkerLog(server).wait_for_workers(3)
    server.process.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.log()
    assert not any(alive(pid) for pid in pids)
    log = server.log()
    assert "SIGTERM: stopping the workers" in log
    assert "every worker has stopped" in log
    assert log.count("shutting down") == 3
    server.stop()


def test_workers_stop_when_the_supervisor_is_killed(pg_dsn: str, tmp_path: Path) -> None:
    server = start(pg_dsn, tmp_path)
    pids = WorkerLog(server).wait_for_workers(2)
    server.stop(signal.SIGKILL)
    # Nobody would stop them otherwise, and they would hold the port.
    wait_until(lambda: not any(alive(pid) for pid in pids))
    assert server.log().count("shutting down") == 2


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "psp.db"
    for args, env in (
        (("--workers", "2"), {}),
        ((), {"SCAN2PAY_WORKERS": "4"}),
    ):
        result = run_cli("serve", "--port", "0", "--db", str(db), *args, env=env)
        assert result.returncode == 2, result.stderr
        assert "workers (SCAN2PAY_WORKERS): SQLite has one writer" in result.stderr
        assert "PostgreSQL" in result.stderr
    assert not db.exists()


def test_the_workers_setting() -> None:
    pg = "postgresql://scan2pay@127.0.0.1:5432/psp"
    assert config.load({}, env={}).workers == 1
    assert config.load({"workers": "3", "db": pg}, env={}).workers == 3
    assert config.load({"db": pg}, env={"SCAN2PAY_WORKERS": "2"}).workers == 2
    assert config.load({"workers": "1"}, env={}).workers == 1  # SQLite, one worker: fine
    with pytest.raises(ConfigError) as caught:
        config.load({"workers": "0", "port": "x", "db": pg}, env={})
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == ["port", "workers"]
    for bad in ("two", "65", "-1"):
        with pytest.raises(ConfigError):
            config.load({"workers": bad, "db": pg}, env={})


SUPERVISED = """
import logging, sys
from psp_server.runtime import workers
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
print("ready", flush=True)
sys.exit(workers.supervise(1, lambda number: 3))
"""


def test_a_worker_that_keeps_dying_at_start_is_restarted_ever_more_slowly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    time.sleep(2.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    delays = [float(d) for d in re.findall(r"exited with code 3 .* another in ([\d.]+) s", err)]
    # 0.2 + 0.4 + 0.8 s fit in two seconds, with each worker's own start.
    assert delays[:3] == [0.2, 0.4, 0.8], err
    assert len(delays) <= 5, err
