"""The outbox relay: publishes committed events to MQTT and marks them sent.

Events leave in the order they were written, with QoS 1, and are marked
published only after the broker's PUBACK, so an event is delivered at least
once; a consumer drops a repeat by ``event_id``. While the broker is away the
events wait in the database and go out in order when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import aiomqtt

from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.mqtt_client import mqtt_client
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.timefmt import now_ms
from scan2pay_common.topics import events_topic

from .storage import Storage

log = logging.getLogger(__name__)

BATCH = 500
# Events written by another process (the CLI, a second server) do not wake
# this relay; it looks again at least this often.
POLL_SECONDS = 2.0


class OutboxRelay:
    def __init__(self, storage: Storage, target: MqttTarget, wake: asyncio.Event) -> None:
        self._storage = storage
        self._target = target
        self._wake = wake
        self.connected = False

    async def run(self) -> None:
        backoff = Backoff(initial=0.05, maximum=5.0)
        while True:
            honour_cancellation()
            try:
                async with mqtt_client(
                    self._target,
                    identifier=f"scan2pay-psp-{uuid.uuid4().hex[:12]}",
                    timeout=10,
                ) as client:
                    self.connected = True
                    backoff.reset()
                    log.info("relay connected to %s", self._target)
                    await self._drain_forever(client)
            except aiomqtt.MqttError as exc:
                delay = backoff.next_delay()
                if self.connected:
                    log.warning("relay lost the broker at %s: %s", self._target, exc)
                else:
                    log.info(
                        "broker %s unreachable (%s); retrying in %.2fs", self._target, exc, delay
                    )
                self.connected = False
                await asyncio.sleep(delay)
            except Exception:
                # A database hiccup must not end the relay: events wait.
                log.exception("relay failed; starting over")
                self.connected = False
                await asyncio.sleep(backoff.next_delay())
            finally:
                self.connected = False

    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        while True:
            honour_cancellation()
            self._wake.clear()
            events = await self._storage.unpublished_events(limit=BATCH)
            if not events:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
                continue
            # paho writes them in call order, so per-merchant order holds
            # while the PUBACKs are awaited together.
            await asyncio.gather(
                *(client.publish(events_topic(e.merchant_id), e.payload, qos=1) for e in events)
            )
            await self._storage.mark_published([e.position for e in events], now=now_ms())
