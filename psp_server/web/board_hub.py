"""The merchant boards open in this process: each one's wake-up, poked
when one of its merchant's checkouts is created here, and the way to end
them all when the server shuts down (an open event stream would otherwise
hold aiohttp's shutdown for its whole timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class BoardHub:
    def __init__(self) -> None:
        self._pokes: dict[str, set[asyncio.Event]] = {}
        self.closing = False

    def __len__(self) -> int:
        return sum(len(pokes) for pokes in self._pokes.values())

    def created(self, merchant_id: str) -> None:
        """On ``POST /v1/checkouts``' path: one dict lookup when none of the
        merchant's boards is open here. A new checkout writes no event, so
        without this a board would see it only at its next poll."""
        pokes = self._pokes.get(merchant_id)
        if pokes:
            for poke in pokes:
                poke.set()

    @contextlib.contextmanager
    def open(self, merchant_id: str, poke: asyncio.Event) -> Iterator[None]:
        """While it lasts, ``poke`` is set for the merchant's new checkouts
        and at shutdown."""
        self._pokes.setdefault(merchant_id, set()).add(poke)
        if self.closing:
            poke.set()
        try:
            yield
        finally:
            pokes = self._pokes.get(merchant_id)
            if pokes is not None:
                pokes.discard(poke)
                if not pokes:
                    del self._pokes[merchant_id]

    def close_all(self) -> None:
        self.closing = True
        for pokes in self._pokes.values():
            for poke in pokes:
                poke.set()
