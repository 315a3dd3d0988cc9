"""The webhook dispatcher: delivers each merchant event to the merchant's
endpoints, at least once.

One loop turns new rows of ``events`` into deliveries (each endpoint has a
cursor, ``last_seq``, in its merchant's events) and starts a sender for
every endpoint that has deliveries due. A sender posts its endpoint's due
deliveries one at a time, in the order they are due (for new events: the
order they were written), and records each outcome before the next.
Endpoints do not wait for each other: a dead one ties up only its own
sender.

All state is in the database, so a restart resumes where it stopped: a
delivery whose outcome was not recorded (the server died mid-request) is
still due and goes out again, which the receiver's dedupe by ``event_id``
absorbs.

With several processes sharing one database, each dispatcher serves
the endpoints of the merchants whose partitions its process holds
(``psp_server/storage/partitions.py``), as its relay does, so that a delivery goes
out from one process. One in flight when its partition passes to another
process may be attempted again there: at least once, as ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import aiohttp
from aiohttp.abc import AbstractResolver

from psp_server.core.errors import StorageUnavailable
from psp_server.metrics import NO_METRICS, Metrics
from psp_server.storage.partitions import AllPartitions, Partitions
from psp_server.webhooks import failures, signing
from psp_server.webhooks.destinations import (
    DestinationPolicy,
    GuardedResolver,
    guarded_socket_factory,
)
from psp_server.webhooks.retry import RetryPolicy
from psp_server.webhooks.store import DueDelivery, Outcome, Scan, WebhookStore
from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.logtext import loggable

log = logging.getLogger(__name__)

# Events written by another process do not wake the dispatcher; it looks
# again at least this often.
POLL_SECONDS = 1.0
# Endpoints served at the same time; the rest wait for a free sender.
MAX_SENDERS = 64
# Deliveries a sender reads at once.
BATCH = 20
# After a sender failed on its own (the database, not the endpoint).
SENDER_PAUSE = 1.0
USER_AGENT = "scan2pay-webhooks/1"


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        policy: RetryPolicy,
        *,
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        poll: float = POLL_SECONDS,
        max_senders: int = MAX_SENDERS,
        partitions: Partitions | None = None,
        destinations: DestinationPolicy | None = None,
        resolver: AbstractResolver | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """``clock``: when deliveries are due, and the time their attempts
        and signatures carry (the app's ``CLOCK``); ``destinations``: where
        deliveries may connect (public addresses only by default);
        ``resolver``: what resolves endpoints' names before the policy sees
        the addresses (aiohttp's default resolver by default); ``metrics``
        counts each attempt's outcome."""
        self._store = store
        self._metrics = metrics
        self._partitions = partitions or AllPartitions()
        self._policy = policy
        self._timeout = timeout
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter of the retry backoff, nothing secret
        self._poll = poll
        self._outage = Backoff(initial=0.1, maximum=5.0)
        self._max_senders = max_senders
        self._wake = asyncio.Event()
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._destinations = destinations or DestinationPolicy()
        self._resolver = resolver

    @property
    def wake_event(self) -> asyncio.Event:
        """Set it when events were written or a redelivery was queued."""
        return self._wake

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        # No connection limit: a pool shared by every endpoint would let dead
        # endpoints starve the others. MAX_SENDERS bounds it instead.
        # Every address connected to passes the destination policy: those a
        # name resolves to in the resolver, any at all in the socket factory
        # (an address in the URL skips the resolver). No DNS cache of
        # aiohttp's own, which keeps an answer 10 s whatever its TTL: the
        # system's resolver caches by the TTL.
        connector = aiohttp.TCPConnector(
            limit=0,
            resolver=GuardedResolver(self._destinations, self._resolver),
            use_dns_cache=False,
            socket_factory=guarded_socket_factory(self._destinations),
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": USER_AGENT},
        ) as http:
            self._http = http
            try:
                await self._loop()
            finally:
                senders = list(self._senders.values())
                for task in senders:
                    task.cancel()
                await asyncio.gather(*senders, return_exceptions=True)
                self._http = None

    async def _loop(self) -> None:
        while True:
            honour_cancellation()
            self._wake.clear()
            delay = self._poll
            scan: Scan | None = None
            now = self._clock.now_ms()
            try:
                # Asked each round: partitions pass between processes.
                held = await self._partitions.held()
                # Now is read after that wait, which can be long (a lease
                # taken at start): the deliveries the scan makes are dated now.
                now = self._clock.now_ms()
                if held != []:  # [] while other processes serve every merchant
                    scan = await self._store.scan(now=now, partitions=held)
                self._outage.reset()
            except StorageUnavailable:  # the storage logs the outage, once
                delay = max(delay, self._outage.next_delay())
            except Exception:
                log.exception("webhook scan failed; trying again")
            if scan is not None:
                for endpoint_id in scan.due_endpoints:
                    if len(self._senders) >= self._max_senders:
                        break  # a sender that ends wakes this loop
                    if endpoint_id not in self._senders:
                        self._senders[endpoint_id] = asyncio.create_task(
                            self._serve(endpoint_id), name=f"webhook-sender-{endpoint_id}"
                        )
                if scan.more:
                    delay = 0.0
                elif scan.next_due_at is not None:
                    delay = min(delay, max(0.0, (scan.next_due_at - now) / 1000))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _serve(self, endpoint_id: str) -> None:
        try:
            while True:
                # Nothing once the merchant's partition has passed to another process.
                held = await self._partitions.held()
                batch = await self._store.due(
                    endpoint_id, now=self._clock.now_ms(), limit=BATCH, partitions=held
                )
                if not batch:
                    return
                for due in batch:
                    outcome = await self._attempt(due)
                    delivery = await self._store.record(due, outcome, self._policy, self._rng)
                    status = None if delivery is None else delivery.status
                    _log_outcome(due, outcome, status)
                    self._metrics.webhook_delivery(
                        "dropped" if status is None else _OUTCOMES.get(status, "other")
                    )
        except asyncio.CancelledError:
            raise
        except StorageUnavailable:  # the scan backs off until it is back
            await asyncio.sleep(SENDER_PAUSE)
        except Exception:
            log.exception("webhook sender for %s failed; it will start again", endpoint_id)
            await asyncio.sleep(SENDER_PAUSE)
        finally:
            self._senders.pop(endpoint_id, None)
            self._wake.set()

    async def _attempt(self, due: DueDelivery) -> Outcome:
        """One POST of the event's stored bytes, signed; never raises for
        what the endpoint or the network does."""
        http = self._http
        if http is None:
            raise RuntimeError("attempt outside run()")
        timestamp = self._clock.now_ms() // 1000  # whole seconds, as signing.sign takes
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(due.secret, timestamp, due.payload),
            "Scan2pay-Event-Id": due.event_id,
        }
        started = self._clock.now_ms()
        status: int | None = None
        error: str | None = None
        detail = ""  # for the operator's log only: it names addresses and ports
        try:
            async with http.post(
                due.url, data=due.payload, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
            error = failures.of_status(status)
        except TimeoutError as exc:
            error = failures.of_exception(exc)
            detail = f"no answer within {self._timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = failures.of_exception(exc)
            detail = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # Still an outcome: the delivery backs off instead of its sender
            # failing on the same delivery over and over.
            log.exception("webhook %s: %s: unexpected error", due.endpoint_id, due.event_id)
            error = failures.CONNECTION_FAILED
            detail = f"{type(exc).__name__}: {exc}"
        return Outcome(started, self._clock.now_ms(), status, error, detail)


# A delivery's status after an attempt, as scan2pay_webhook_deliveries_total
# counts it; None (the delivery no longer due: its endpoint was disabled
# meanwhile) is "dropped".
_OUTCOMES = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}


def _log_outcome(due: DueDelivery, outcome: Outcome, status: str | None) -> None:
    # The endpoint's id only: its URL may carry a token of the merchant's,
    # and the secret never goes anywhere near a log. The operator gets the
    # detail that the merchant does not (docs/webhooks.md); an error's text
    # may quote what the endpoint sent back.
    if outcome.status_code is not None:
        what = f"HTTP {outcome.status_code}"
    else:
        what = f"{outcome.error}: {loggable(outcome.detail)}"
    if outcome.delivered:
        log.info("webhook %s: %s delivered (%s)", due.endpoint_id, due.event_id, what)
        return
    # A refused destination is a merchant pointing the PSP at something it
    # must not reach (or an operator who forgot to allow a network).
    level = logging.WARNING if outcome.error == failures.BLOCKED_DESTINATION else logging.INFO
    log.log(
        level,
        "webhook %s: %s not delivered (%s); now %s",
        due.endpoint_id,
        due.event_id,
        what,
        status,
    )
