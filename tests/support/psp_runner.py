"""``psp-server``'s own ``main`` in a process of its own, with a seam a test
needs and a command line must not offer:

- ``--clock-file PATH``: the server's clock is the system's moved by the
  milliseconds in PATH (tests/support/file_clock.py), which the test
  writes to step over an expiry instead of waiting for it.

This module lives in tests/, which no installation of the PSP contains:
the ``psp-server`` command has no way to move its clock.

    python -m tests.support.psp_runner --clock-file PATH -- ARGS...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from psp_server.runtime import cli
from tests.support.file_clock import FileClock


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clock-file", type=Path, required=True)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    return cli.main(args, clock=FileClock(options.clock_file))


if __name__ == "__main__":
    sys.exit(main())
