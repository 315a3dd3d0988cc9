"""A rate limit of N a minute allows N a minute with ``serve --workers 2``
on PostgreSQL: both workers serve the requests, from many fresh
connections, and one bucket table counts them all
(psp_server/api/guards/bucket_table.py). Each worker answers at least N
of them, so buckets per process would have let 2N through. And the table
is gone with the server, however it ends."""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_wallet
from tests.support.workers import WorkerLog, alive, kill_whole_psp, served

UNKNOWN_CODE = "A" * 32  # well formed, never issued: answered 404 when not limited
QR_PER_MINUTE = 10
PAY_PER_MINUTE = 6
PAIR_PER_MINUTE = 4
LIMITS = (
    *("--rate-qr-per-ip", f"{QR_PER_MINUTE}/60s", "--rate-qr-per-token", "off"),
    *("--rate-pay-per-ip", "off", "--rate-pay-per-token", f"{PAY_PER_MINUTE}/60s"),
    *("--rate-pair-per-ip", f"{PAIR_PER_MINUTE}/60s"),
)
MEMFD = "/memfd:scan2pay-rate-limits"


class Hammer:
    """Sends one request again and again, each on a new connection, from
    several threads, and counts the answers by status."""

    def __init__(self, url: str, method: str, path: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.method, self.path, self.headers = method, path, headers
        self.statuses: Counter[int] = Counter()
        self.retry_after: set[str | None] = set()
        self._lock = threading.Lock()

    def one(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            body = b'{"code":"' + UNKNOWN_CODE.encode() + b'"}' if self.method == "POST" else None
            connection.request(self.method, self.path, body, self.headers)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        with self._lock:
            self.statuses[response.status] += 1
            if response.status == 429:
                self.retry_after.add(response.getheader("Retry-After"))

    def round(self, threads: int = 8, each: int = 5) -> None:
        failures: list[BaseException] = []

        def run() -> None:
            try:
                for _ in range(each):
                    self.one()
            except BaseException as exc:  # noqa: BLE001 - asserted none once the threads end
                failures.append(exc)

        started = [threading.Thread(target=run) for _ in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join(30)
        assert not failures, failures


def per_worker(server: PspProcess, route: str) -> dict[int, int]:
    return {pid: n for (_, pid), n in served(server.log(), route).items()}


def hammer_until_each_worker_answered(
    server: PspProcess, pids: set[int], hammer: Hammer, route: str, at_least: int
) -> tuple[dict[int, int], float]:
    """Rounds of requests until every worker has answered ``at_least`` of
    them (the access log names the worker of each answer); returns the
    answers per worker and the seconds it took."""
    started = time.monotonic()
    for _ in range(20):
        hammer.round()
        # The access log is written as each answer goes: wait for all of them.
        total = sum(hammer.statuses.values())
        deadline = time.monotonic() + 5
        while sum(per_worker(server, route).values()) < total and time.monotonic() < deadline:
            time.sleep(0.01)
        answered = per_worker(server, route)
        if set(answered) == pids and min(answered.values()) >= at_least:
            return answered, time.monotonic() - started
    raise AssertionError(f"the workers did not each answer {at_least}: {answered}")


def test_a_limit_of_n_a_minute_lets_n_through_across_two_workers(
    pg_dsn: str, tmp_path: Path
) -> None:
    wallet = create_wallet(pg_dsn)
    server = PspProcess(pg_dsn, workers=2, extra=LIMITS, log_path=tmp_path / "psp.log")
    try:
        pids = WorkerLog(server).wait_for_workers(2)
        # Per address, on the public page.
        qr = Hammer(server.url, "GET", f"/Q/{UNKNOWN_CODE}", {"Accept": "application/json"})
        answered, took = hammer_until_each_worker_answered(
            server, pids, qr, "/Q/{code}", QR_PER_MINUTE
        )
        # One token every 6 s: sooner than that, none has come back.
        assert took < 60 / QR_PER_MINUTE, f"too slow to tell: {took:.1f} s"
        assert qr.statuses == {404: QR_PER_MINUTE, 429: sum(answered.values()) - QR_PER_MINUTE}
        # Whole seconds until the next token, at most one interval.
        assert qr.retry_after <= {str(s) for s in range(1, 7)}, qr.retry_after
        # Per token, on payments: the workers key a token alike.
        headers = {"Authorization": f"Bearer {wallet['token']}", "Content-Type": "application/json"}
        pay = Hammer(server.url, "POST", "/v1/payments", headers)
        answered, took = hammer_until_each_worker_answered(
            server, pids, pay, "/v1/payments", PAY_PER_MINUTE
        )
        assert took < 60 / PAY_PER_MINUTE, f"too slow to tell: {took:.1f} s"
        assert pay.statuses == {404: PAY_PER_MINUTE, 429: sum(answered.values()) - PAY_PER_MINUTE}
        assert pay.retry_after <= {str(s) for s in range(1, 11)}, pay.retry_after
        # Per address, on starting a pairing: the body is refused (no
        # device_secret_hash), but only once the limit let it through.
        pair = Hammer(server.url, "POST", "/v1/pairings", {"Content-Type": "application/json"})
        answered, took = hammer_until_each_worker_answered(
            server, pids, pair, "/v1/pairings", PAIR_PER_MINUTE
        )
        assert took < 60 / PAIR_PER_MINUTE, f"too slow to tell: {took:.1f} s"
        assert pair.statuses[429] == sum(answered.values()) - PAIR_PER_MINUTE, pair.statuses
        assert pair.statuses.total() == sum(answered.values())
    finally:
        code = server.stop()
    assert code == 0, server.log()


def _holders(inode: int) -> set[int]:
    """The processes that map or hold open the memfd ``inode``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            maps = (entry / "maps").read_text()
            fds = [(entry / "fd" / fd) for fd in os.listdir(entry / "fd")]
        except OSError:  # gone meanwhile
            continue
        if any(MEMFD in line and int(line.split()[4]) == inode for line in maps.splitlines()):
            found.add(int(entry.name))
            continue
        for fd in fds:
            try:
                if os.readlink(fd).startswith(MEMFD) and os.stat(fd).st_ino == inode:
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _table_inode(pid: int) -> int:
    lines = [line for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if MEMFD in line]
    assert lines, f"process {pid} maps no bucket table"
    assert all(line.endswith("(deleted)") for line in lines)  # no file system holds it
    return int(lines[0].split()[4])


@pytest.mark.parametrize("stop", ["sigterm", "sigkill to every process"])
def test_the_table_is_shared_by_the_workers_and_gone_with_the_server(
    pg_dsn: str, tmp_path: Path, stop: str
) -> None:
    server = PspProcess(pg_dsn, workers=2, extra=LIMITS, log_path=tmp_path / "psp.log")
    try:
        pids = WorkerLog(server).wait_for_workers(2)
        everyone = {server.process.pid, *pids}
        inodes = {_table_inode(pid) for pid in everyone}
        assert len(inodes) == 1, inodes  # one table, in the supervisor and each worker
        (inode,) = inodes
        assert _holders(inode) == everyone
    finally:
        if stop == "sigterm":
            assert server.stop() == 0, server.log()
        else:  # as a machine losing power: nobody cleans up
            kill_whole_psp(server)
            server.stop()
    # A process killed takes a moment to be gone.
    wait_until(lambda: not any(alive(pid) for pid in everyone), "every process gone")
    assert not _holders(inode)
