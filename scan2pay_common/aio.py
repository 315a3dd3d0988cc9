"""asyncio helpers the long-running loops of every part share."""

from __future__ import annotations

import asyncio


def cancelling() -> bool:
    """Whether someone has asked the current task to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def honour_cancellation() -> None:
    """Raises CancelledError if the current task was asked to stop.

    Python 3.11's asyncio.wait_for (inside aiomqtt's publish) can swallow a
    cancellation that lands just as its inner wait finishes; the request is
    still counted, so a loop that calls this at the top of each turn stops as
    asked instead of waiting forever.
    """
    if cancelling():
        raise asyncio.CancelledError
