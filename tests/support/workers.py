"""The workers of ``psp-server serve --workers N`` as a test sees them from
outside: child processes of the supervisor in /proc, and their lines in
the log they share."""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from pathlib import Path

from tests.support.polling import wait_until
from tests.support.process import PspProcess

ACCESS = re.compile(r"worker=(\d+) pid=(\d+) \S+\.access (\{.*\})$", re.MULTILINE)
READY = re.compile(r"worker=\d+ pid=(\d+) psp_server ready, serving on ")


def workers_of(pid: int) -> set[int]:
    """The live child processes of ``pid``, from /proc (a zombie is not live)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class WorkerLog:
    """Follows a supervisor's log as it grows: which workers said they are
    ready, and how many requests each answered. It reads only what was
    added since its last look, as a load test's access log grows by
    megabytes while it is polled every few milliseconds."""

    def __init__(self, server: PspProcess) -> None:
        self.server = server
        self.ready: set[int] = set()
        self.answered: Counter[int] = Counter()  # requests, by worker pid
        self._offset = 0
        self._partial = b""

    def update(self) -> None:
        with self.server.log_path.open("rb") as log:
            log.seek(self._offset)
            added = log.read()
        self._offset += len(added)
        # A worker writes whole lines, but one may be read half written.
        text, _, self._partial = (self._partial + added).rpartition(b"\n")
        decoded = text.decode(errors="replace")
        self.ready.update(int(pid) for pid in READY.findall(decoded))
        self.answered.update(int(pid) for _, pid, _ in ACCESS.findall(decoded))

    def wait_for_workers(self, count: int, timeout: float = 10.0, gone: int = 0) -> set[int]:
        """The pids of ``count`` workers once each is running and has said it
        is ready (and ``gone`` is no longer among them: SIGKILL takes a
        moment)."""

        def found() -> set[int] | None:
            self.update()
            pids = workers_of(self.server.process.pid)
            return pids if len(pids) == count and pids <= self.ready and gone not in pids else None

        pids: set[int] = wait_until(found, timeout=timeout)
        return pids


def kill_whole_psp(server: PspProcess) -> set[int]:
    """SIGKILL to the supervisor and every worker, as a machine losing power
    would do; returns the workers' pids. The supervisor is stopped first, so
    that it neither replaces a worker killed before it nor lets one stop
    gracefully by telling it that the supervisor is gone."""
    supervisor = server.process.pid
    os.kill(supervisor, signal.SIGSTOP)
    pids = workers_of(supervisor)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    server.process.wait()
    return pids


def served(log: str, route: str = "/v1/checkouts") -> Counter[tuple[int, int]]:
    """Requests answered, per (worker number, pid), from the access log."""
    counts: Counter[tuple[int, int]] = Counter()
    for number, pid, line in ACCESS.findall(log):
        if json.loads(line)["route"] == route:
            counts[int(number), int(pid)] += 1
    return counts
