"""The "events were written" signal, heard by more than one listener."""

from __future__ import annotations

import asyncio


class WakeEvent(asyncio.Event):
    """An ``asyncio.Event`` (the relay waits on it and clears it) whose
    ``set()`` also sets an event of each other listener's own, so that no
    listener clears a wake-up that another one has not seen yet."""

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[asyncio.Event] = []

    def add_listener(self, event: asyncio.Event) -> None:
        self._listeners.append(event)

    def remove_listener(self, event: asyncio.Event) -> None:
        if event in self._listeners:
            self._listeners.remove(event)

    def set(self) -> None:
        super().set()
        for event in self._listeners:
            event.set()
