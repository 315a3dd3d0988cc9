"""The outbox relay: publishes committed events to MQTT and marks them sent.

Events leave in the order they were written, with QoS 1, and are marked
published only after the broker's PUBACK, so an event is delivered at least
once; a consumer drops a repeat by ``event_id``. While the broker is away the
events wait in the database and go out in order when it is back.

With several processes sharing one database, each relay publishes
the events of the merchants whose partitions its process holds
(``partitions.py``), so that a merchant's events leave from one relay, in
order, and each once per attempt.

Each event goes to its merchant's events topic and, when its checkout names
a terminal, the same bytes also to that terminal's events topic: a terminal
then hears its own checkouts without waking for every other lane's. It is
marked published only once the broker acknowledged both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from psp_server.core.errors import StorageUnavailable
from psp_server.core.records import OutboxEvent
from psp_server.storage import Storage
from psp_server.storage.partitions import REFRESH_SECONDS, AllPartitions, Partitions
from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.logtext import loggable
from scan2pay_common.mqtt_client import mqtt_client
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.reconnect import (
    AT_ONCE,
    BACK_OFF,
    QUIETLY,
    Mqtt5First,
    Next,
    Reconnecting,
)
from scan2pay_common.topics import events_topic, terminal_events_topic

log = logging.getLogger(__name__)

BATCH = 500
# Events written by another process (the CLI, a second server) do not wake
# this relay; it looks again at least this often.
POLL_SECONDS = 2.0


class OutboxRelay:
    def __init__(
        self,
        storage: Storage,
        target: MqttTarget,
        wake: asyncio.Event,
        partitions: Partitions | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock`` dates each event's ``published_at`` (the app's ``CLOCK``)."""
        self._storage = storage
        self._target = target
        self._wake = wake
        self._partitions = partitions or AllPartitions()
        self._clock = clock
        # MQTT 5, so that a broker refusing a publish (an ACL without the
        # relay's write rule) says so in its PUBACK; with 3.1.1 it would
        # acknowledge and drop the event, and we would mark it sent.
        self._mqtt5_first = Mqtt5First()
        # Apart from the broker's: the broker session stays up while the
        # database is away, and its reset must not cut the database's pauses.
        self._outage = Backoff(initial=0.05, maximum=5.0)
        self._link = Reconnecting(
            self._connect,
            name="relay",
            target=target,
            log=log,
            backoff=Backoff(initial=0.05, maximum=5.0),
            handles=(Exception,),
            on_drop=self._dropped,
        )

    @property
    def connected(self) -> bool:
        return self._link.up

    async def run(self) -> None:
        await self._link.run(self._session)

    def _connect(self) -> aiomqtt.Client:
        return mqtt_client(
            self._target,
            identifier=f"scan2pay-psp-{uuid.uuid4().hex[:12]}",
            timeout=10,
            protocol=self._mqtt5_first.protocol,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        await self._drain_forever(client, PublishRefusals.watch(client))

    async def _dropped(self, exc: Exception) -> Next:
        if self._mqtt5_first.falls_back(exc):
            log.warning(
                "broker %s does not speak MQTT 5; using 3.1.1, with which a broker "
                "that refuses a publish cannot tell the relay so",
                self._target,
            )
            return AT_ONCE
        if isinstance(exc, MqttConnectError):
            return BACK_OFF
        if isinstance(exc, PublishRefused):
            log.error("%s; the events wait in the outbox (check the broker's ACL)", exc)
            return QUIETLY
        if isinstance(exc, aiomqtt.MqttError):
            return BACK_OFF
        if isinstance(exc, StorageUnavailable):  # the storage logs the outage, once
            return Next.after(self._outage.next_delay())
        # A database hiccup must not end the relay: events wait.
        log.exception("relay failed; starting over")
        return QUIETLY

    async def _drain_forever(self, client: aiomqtt.Client, refusals: PublishRefusals) -> None:
        """Publishes what is unsent, in order, and marks each batch sent once
        the broker acknowledged it. The marking is a commit of its own and
        runs while the next batch goes out (one marking at a time, in
        order), so that an event written meanwhile waits for no fsync
        before it leaves; what was sent but not yet marked is remembered by
        its position, and sent again only by the next session (at least
        once, as ever)."""
        sent_upto = 0
        marking: asyncio.Task[None] | None = None
        try:
            while True:
                honour_cancellation()
                if marking is not None and marking.done():
                    marking.result()  # a failed marking ends the session
                self._wake.clear()
                held = await self._partitions.held()
                if held == []:  # other processes serve every merchant for now
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=REFRESH_SECONDS)
                    continue
                shared = held is not None
                # Shared with other processes: no cursor, as another
                # merchant's transaction may commit a lower position later.
                try:
                    events = await self._storage.unpublished_events(
                        limit=BATCH, after=0 if shared else sent_upto, partitions=held
                    )
                except StorageUnavailable:
                    await asyncio.sleep(self._outage.next_delay())
                    continue
                self._outage.reset()
                if not events:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), timeout=REFRESH_SECONDS if shared else POLL_SECONDS
                        )
                    continue
                # paho writes them in call order, so per-merchant (and
                # per-terminal) order holds while the PUBACKs are awaited together.
                refused_before = refusals.count
                await asyncio.gather(
                    *(
                        client.publish(topic, e.payload, qos=1)
                        for e in events
                        for topic in topics_of(e)
                    )
                )
                if refusals.count != refused_before:
                    raise PublishRefused(
                        f"the broker at {self._target} refused {refusals.count - refused_before} "
                        "event publish(es)"
                    )
                if shared:
                    # Marked before the partitions are looked at again: one
                    # that passes to another process passes with its events
                    # marked, and they are not sent twice.
                    await self._storage.mark_published(
                        [e.position for e in events], now=self._clock.now_ms()
                    )
                    continue
                sent_upto = events[-1].position
                marking = asyncio.create_task(self._mark(marking, [e.position for e in events]))
        finally:
            if marking is not None:
                # What the broker acknowledged is marked even as the session ends.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(marking)

    async def _mark(self, previous: asyncio.Task[None] | None, positions: list[int]) -> None:
        if previous is not None:
            await previous
        await self._storage.mark_published(positions, now=self._clock.now_ms())


def topics_of(event: OutboxEvent) -> list[str]:
    """Where an event goes: its merchant's topic, and the terminal's topic
    if its checkout was made for one. Read from the row, not the payload,
    which goes out as the storage wrote it, unread; an id no topic can hold
    (none the PSP writes) leaves the event to the merchant's topic alone."""
    topics = [events_topic(event.merchant_id)]
    if event.terminal_id is not None:
        try:
            topics.append(terminal_events_topic(event.merchant_id, event.terminal_id))
        except InvalidValue:
            log.warning(
                "event %s names a terminal no topic can hold: %s",
                event.event_id,
                loggable(event.terminal_id),
            )
    return topics


class PublishRefused(Exception):
    """The broker answered a publish with a failure reason code."""


class PublishRefusals:
    """Counts PUBACKs with a failure reason code. aiomqtt resolves a publish
    whatever its PUBACK says, so the count is taken from paho's callback,
    which aiomqtt keeps as ``_client``; ours runs first, then aiomqtt's."""

    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def watch(cls, client: aiomqtt.Client) -> PublishRefusals:
        refusals = cls()
        paho = client._client
        resolve: Any = paho.on_publish

        def on_publish(*args: Any) -> None:
            reason_code = args[3] if len(args) > 3 else None
            if reason_code is not None and getattr(reason_code, "is_failure", False):
                refusals.count += 1
            resolve(*args)

        paho.on_publish = on_publish
        return refusals
