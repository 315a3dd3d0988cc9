"""A pseudo-terminal standing in for a serial device: the code under test
opens ``path``; the test reads what arrives at the other end."""

from __future__ import annotations

import contextlib
import os
import select


class Pty:
    """A pseudo-terminal: the display opens ``path``; the test reads what
    arrives at the other end, ``master``."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def received(self) -> bytes:
        """Everything written so far (``show`` returns once it is written)."""
        chunks = []
        while select.select([self.master], [], [], 0.05)[0]:
            chunks.append(os.read(self.master, 65536))
        return b"".join(chunks)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
