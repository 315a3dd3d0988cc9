"""``psp-server serve --workers N``: N server processes accepting on one
listening socket, and a supervisor that keeps N of them running.

Pre-fork, as gunicorn does: the supervisor binds the socket, then forks each
worker while it has no event loop, no thread and no database connection, so
that a worker inherits the socket and nothing it could share by mistake. The
kernel hands each new connection to one of the workers waiting to accept.
The supervisor serves nothing: it waits for signals, passes SIGTERM and
SIGINT on to the workers as SIGTERM, and replaces a worker that dies.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A worker that dies is replaced after RESTART_DELAY; one that keeps dying
# within QUICK_DEATH of its start (a database that is away, a bad setting)
# waits twice as long each time, up to MAX_RESTART_DELAY, rather than spin.
RESTART_DELAY = 0.1
QUICK_DEATH = 1.0
MAX_RESTART_DELAY = 10.0
# After SIGTERM, how long the workers have before they are killed: aiohttp
# gives requests in flight up to 60 s to finish.
STOP_GRACE = 70.0
# The supervisor's own checks happen at least this often, should a
# SIGCHLD go missing.
POLL = 1.0

_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


@dataclass
class _Worker:
    number: int
    pid: int = 0  # 0: not running
    started: float = 0.0
    quick_deaths: int = 0
    start_at: float = 0.0


def supervise(
    count: int, work: Callable[[int], int], *, ended: Callable[[int], None] | None = None
) -> int:
    """Runs ``work(number)`` in ``count`` forked processes, numbered from 1,
    until SIGTERM or SIGINT; ``work``'s result is its process's exit code.
    ``ended(pid)`` hears of each worker that ended (its metrics no longer
    live). Returns 0 once every worker has stopped."""
    # Blocked, the signals wait for sigtimedwait below rather than interrupt
    # the supervisor at any point; a forked worker unblocks them.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    # The supervisor holds the only write end of this pipe: a worker reads
    # EOF from it when the supervisor is gone, even killed by SIGKILL.
    alive_r, alive_w = os.pipe()
    workers = [_Worker(number) for number in range(1, count + 1)]
    stop_by: float | None = None
    while True:
        _reap(workers, stopping=stop_by is not None, ended=ended)
        now = time.monotonic()
        if stop_by is None:
            for worker in workers:
                if not worker.pid and worker.start_at <= now:
                    _start(worker, work, alive_r, alive_w)
            due = [worker.start_at for worker in workers if not worker.pid]
        elif not any(worker.pid for worker in workers):
            log.info("every worker has stopped")
            return 0
        elif now >= stop_by:
            for worker in workers:
                if worker.pid:
                    log.error("worker %d (pid %d) is still running: killing it", *_name(worker))
                    os.kill(worker.pid, signal.SIGKILL)
            stop_by = math.inf
            due = []
        else:
            due = [stop_by]
        wait = min([POLL, *(at - time.monotonic() for at in due)])
        received = signal.sigtimedwait(_SIGNALS, max(wait, 0.0))
        if received is not None and received.si_signo != signal.SIGCHLD and stop_by is None:
            log.info("%s: stopping the workers", signal.Signals(received.si_signo).name)
            stop_by = time.monotonic() + STOP_GRACE
            for worker in workers:
                if worker.pid:
                    os.kill(worker.pid, signal.SIGTERM)


def _start(worker: _Worker, work: Callable[[int], int], alive_r: int, alive_w: int) -> None:
    try:
        pid = os.fork()
    except OSError as exc:  # out of memory or processes: try again later
        log.error("cannot start worker %d: %s", worker.number, exc)
        worker.start_at = time.monotonic() + MAX_RESTART_DELAY
        return
    if pid == 0:
        code = 1
        try:
            os.close(alive_w)
            _stop_with_supervisor(alive_r)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            code = work(worker.number)
        except Exception:
            log.exception("worker %d failed", worker.number)
        finally:
            # os._exit: the supervisor's atexit handlers and buffers are not
            # the worker's to run; its own log lines are flushed first.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    worker.pid, worker.started = pid, time.monotonic()
    log.info("worker %d started, pid %d", worker.number, pid)


def _stop_with_supervisor(alive_r: int) -> None:
    """A worker outliving its supervisor would hold the port and its
    database connections with no one to stop it: it stops itself (a
    SIGTERM, as the supervisor would send) when the supervisor is gone."""

    def watch() -> None:
        while os.read(alive_r, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _reap(workers: list[_Worker], *, stopping: bool, ended: Callable[[int], None] | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        worker = next((worker for worker in workers if worker.pid == pid), None)
        if worker is None:
            continue
        if ended is not None:
            ended(pid)
        how = _how_it_ended(status)
        if stopping:
            log.info("worker %d (pid %d) stopped: %s", *_name(worker), how)
            worker.pid = 0
            continue
        now = time.monotonic()
        lived = now - worker.started
        worker.quick_deaths = worker.quick_deaths + 1 if lived < QUICK_DEATH else 0
        delay = min(RESTART_DELAY * 2**worker.quick_deaths, MAX_RESTART_DELAY)
        worker.start_at = now + delay
        log.error(
            "worker %d (pid %d) %s after %.1f s; starting another in %.1f s",
            *_name(worker),
            how,
            lived,
            delay,
        )
        worker.pid = 0


def _name(worker: _Worker) -> tuple[int, int]:
    return worker.number, worker.pid


def _how_it_ended(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by signal {-code} ({signal.strsignal(-code)})"
    return f"exited with code {code}"
