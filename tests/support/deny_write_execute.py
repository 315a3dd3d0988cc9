"""Runs a program with memory that is both writable and executable refused,
as systemd's ``MemoryDenyWriteExecute=yes`` runs a service: Linux's
``PR_SET_MDWE`` (6.3 and later), which execve keeps.

    python -m tests.support.deny_write_execute PROGRAM ARGS...

systemd (252, Bookworm's) refuses the same with a seccomp filter: an mmap
asking for write and execute together, and an mprotect adding execute. The
kernel's flag refuses both too.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
EXIT_UNSUPPORTED = 97


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        print(
            f"prctl(PR_SET_MDWE) failed: {os.strerror(error)}; it needs Linux 6.3 or later",
            file=sys.stderr,
        )
        return EXIT_UNSUPPORTED
    os.execv(sys.argv[1], sys.argv[1:])  # noqa: S606 - the test's own program, no shell


if __name__ == "__main__":
    sys.exit(main())
