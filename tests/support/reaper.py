"""No test run leaves a process behind, even when pytest (or an xdist
worker) is SIGKILLed and runs no teardown.

Each pytest process calls ``guard_this_process()`` once. It marks its own
environment with a token that every process it starts inherits (a server's
workers too), and starts a guard process holding the read end of a pipe.
The pipe closes when the pytest process ends, whichever way it ends; the
guard then kills:

* every process whose environment carries the token (psp-server and its
  workers, mosquitto, PostgreSQL's postmaster, the browser driver), and
  every process below those;
* every descendant of the pytest process it saw while watching: PostgreSQL's
  backends and Chromium's helpers rewrite the memory that /proc shows as
  their environment (to set their titles), so the token alone misses them
  once their parent is gone.

This file runs as the guard too (``python reaper.py PID TOKEN``), so it
imports nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

TOKEN_ENV = "SCAN2PAY_TEST_RUN"  # noqa: S105 - a variable's name, no secret
# How often the guard notes the watched process's descendants.
WATCH_SECONDS = 1.0
# How long the guard keeps killing what it finds (processes still forking).
CLEANUP_SECONDS = 5.0

_guards: list[subprocess.Popen[bytes]] = []  # held for the life of the process


def guard_this_process() -> None:
    """Marks this process's children with a token of its own and starts the
    guard that kills them all once this process has ended."""
    if _guards:
        return
    token = f"s2p-{uuid.uuid4().hex}"
    inherited = os.environ.get(TOKEN_ENV)
    # Nested: an xdist worker's children carry the controller's token too,
    # so the controller's guard reaches them if the controller dies first.
    os.environ[TOKEN_ENV] = f"{inherited}:{token}" if inherited else token
    guard_env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    _guards.append(
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(os.getpid()), token],
            stdin=subprocess.PIPE,
            env=guard_env,
            # Out of the terminal's process group: a Ctrl-C reaches pytest,
            # whose teardown runs, and the guard stays to check after it.
            start_new_session=True,
            close_fds=True,
        )
    )


# The guard's side.


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _descendants(root: int) -> list[int]:
    found: list[int] = []
    todo = _children(root)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += _children(pid)
    return found


def _carries(pid: int, token: bytes) -> bool:
    try:
        return token in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _targets(known: dict[int, int], token: bytes) -> set[int]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                table[int(entry.name)] = stat
    roots = {pid for pid, started in known.items() if pid in table and table[pid][2] == started}
    roots |= {pid for pid in table if _carries(pid, token)}
    below: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        below.setdefault(ppid, []).append(pid)
    targets, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in targets:
            targets.add(pid)
            todo += below.get(pid, [])
    targets.discard(os.getpid())
    return targets


def _guard(watched: int, token: str) -> None:
    known: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], WATCH_SECONDS)
        if ready and not os.read(sys.stdin.fileno(), 1):
            break  # the pytest process has ended
        for pid in _descendants(watched):
            stat = _stat(pid)
            if stat is not None:
                known[pid] = stat[2]
    deadline = time.monotonic() + CLEANUP_SECONDS
    while time.monotonic() < deadline:
        targets = _targets(known, token.encode())
        if not targets:
            return
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is pytest's to handle
    _guard(int(sys.argv[1]), sys.argv[2])
