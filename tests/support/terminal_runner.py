"""``scan2pay-terminal``'s own ``main`` in a process of its own, with two
seams a test needs and a command line must not offer:

- ``--skew-ms N``: the daemon's wall clock is off by N ms (the machine's
  clock stays as it is), and the system is taken for not synchronised, as
  on a Pi that booted without NTP;
- ``--hang-on-usr1 SECONDS``: SIGUSR1 hangs the event loop (its thread, the
  main one) for that long, as a bug would; the handler first sends
  ``X-HUNG=1`` to ``$NOTIFY_SOCKET``, so that a test knows from when on
  nothing of the loop runs.

    python -m tests.support.terminal_runner [--skew-ms N] [--hang-on-usr1 S] -- ARGS...
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from scan2pay_common import sdnotify
from scan2pay_common.clock import MovableClock
from terminal import cli
from terminal.clock import Clock


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skew-ms", type=int, default=None)
    parser.add_argument("--hang-on-usr1", type=float, default=None)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    clock = None
    if options.skew_ms is not None:
        wall = MovableClock(offset_ms=options.skew_ms)
        clock = Clock(wall=wall, sync_state=lambda: False)
    if options.hang_on_usr1 is not None:
        seconds = options.hang_on_usr1

        def hang(signum: int, frame: FrameType | None) -> None:
            sdnotify.notify("X-HUNG=1")
            time.sleep(seconds)

        # Python runs a signal handler in the main thread, between two steps
        # of what it runs there: here, the event loop.
        signal.signal(signal.SIGUSR1, hang)
    return cli.main(args, clock=clock)


if __name__ == "__main__":
    sys.exit(main())
