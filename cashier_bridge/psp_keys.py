"""The PSP's public keys (``GET /v1/keys``) as a session keeps them: fetched
once, and again only when an event does not verify with them.

An event that does not verify is either forged or signed with a key the PSP
made after the keys were fetched (``psp-server keys rotate``). Fetching the
keys once more tells which. So that forged events cannot make the bridge ask
the PSP for each of them, the keys are fetched again at most once every
``REFETCH_INTERVAL_MS``, and never twice at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from scan2pay_common.clock import SYSTEM_CLOCK, Clock, Deadline
from scan2pay_common.signing import PublicKey, verify_json

from .errors import BridgeError

log = logging.getLogger(__name__)

REFETCH_INTERVAL_MS = 10_000

Verdict = Literal["verified", "refetch", "refused"]
Fetch = Callable[[], Awaitable[tuple[PublicKey, ...] | None]]


class PspKeys:
    def __init__(
        self,
        keys: tuple[PublicKey, ...] | None,
        fetch: Fetch,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock`` times the pause between refetches; a ``Deadline`` also
        on the monotonic clock, so that the wall clock set back does not
        lengthen it."""
        # None: a PSP without /v1/keys, which signs nothing; its events are
        # taken as the hints they are (the flow confirms each at the PSP).
        self.keys = keys
        self._fetch = fetch
        self._clock = clock
        self._next_refetch: Deadline | None = None  # None: none yet
        self._refetching: asyncio.Task[None] | None = None
        self.refetches = 0

    def verdict(self, payload: bytes) -> Verdict:
        """Whether the signed ``payload`` is the PSP's by the keys held now,
        or whether fetching them again may tell."""
        if self.keys is None or verify_json(payload, self.keys):
            return "verified"
        if self._refetching is not None or self._may_refetch():
            return "refetch"
        return "refused"

    def _may_refetch(self) -> bool:
        return self._next_refetch is None or self._next_refetch.passed(self._clock)

    async def verified_after_refetch(self, payload: bytes) -> bool:
        """``payload`` checked again once the keys are fetched anew (or by
        the fetch already under way)."""
        if self._refetching is None and self._may_refetch():
            self._next_refetch = Deadline.after(REFETCH_INTERVAL_MS, self._clock)
            self._refetching = asyncio.create_task(self._refetch(), name="psp-keys-refetch")
        if self._refetching is not None:
            # Shielded: one waiter cancelled must not cancel the others' fetch.
            await asyncio.shield(self._refetching)
        return self.keys is None or verify_json(payload, self.keys)

    async def _refetch(self) -> None:
        try:
            keys = await self._fetch()
        except BridgeError as exc:
            log.warning("the PSP's keys could not be fetched again: %s", exc.code)
        else:
            self.refetches += 1
            if keys is None:
                # A PSP that no longer lists keys does not make its events
                # trustworthy: keep verifying with the keys it listed before.
                log.warning("the PSP no longer lists signing keys; keeping the ones it did")
            else:
                self.keys = keys
        finally:
            self._refetching = None

    async def close(self) -> None:
        task, self._refetching = self._refetching, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
