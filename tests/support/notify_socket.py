"""systemd's end of ``$NOTIFY_SOCKET``, for the tests of the services that
tell systemd they are ready (the terminal, psp-server)."""

from __future__ import annotations

import socket
import time
from pathlib import Path


class NotifySocket:
    """systemd's end of ``$NOTIFY_SOCKET``: what the daemon tells it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.heard: list[str] = []

    def until(self, wanted: str, timeout: float = 10.0) -> None:
        """Waits for a datagram that starts with ``wanted``."""
        deadline = time.monotonic() + timeout
        while not any(said.startswith(wanted) for said in self.heard):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"systemd never heard {wanted!r}; heard {self.heard}")
            self.socket.settimeout(remaining)
            try:
                self.heard.append(self.socket.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self.socket.close()
