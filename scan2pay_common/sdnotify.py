"""systemd's notify protocol: one datagram to $NOTIFY_SOCKET. The terminal
tells systemd it is ready and pets its watchdog; psp-server tells it it
is ready to serve (both units are ``Type=notify``).

Written out rather than taken from a package: it is one sendto() on a Unix
socket, and the small packages that wrap it are unmaintained.
"""

from __future__ import annotations

import asyncio
import os
import socket


def notify(state: str) -> bool:
    """Sends ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1`` or ``STATUS=...``.
    Returns False when not run by systemd (no socket), which is no error."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # the abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd set (WatchdogSec), in seconds."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2_000_000


async def watchdog_forever() -> None:
    """Pets systemd's watchdog from the event loop, for as long as the task
    runs: a loop that hangs stops the pings, and systemd restarts it. Not
    run by systemd, or without WatchdogSec: returns at once."""
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
