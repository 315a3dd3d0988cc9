"""One MQTT session for one checkout, and what it has heard.

It subscribes to the merchant's events and the terminal's state before the
checkout exists, so that nothing is missed. Should the broker go away
mid-checkout it reconnects by itself with backoff; the terminal's state is
retained, so it is back at once, and an event published during the gap is
what the flow's polling of the PSP is for (this session is not persistent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import aiomqtt

from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.errors import InvalidValue
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import (
    CheckoutEvent,
    DisplayCommand,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.mqtt_client import mqtt_client
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import PublicKey, verify_json
from scan2pay_common.topics import display_topic, events_topic, state_topic

from .errors import BrokerUnreachable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Events of other checkouts are kept this long (in checkouts), in case one of
# them is ours and arrived before the PSP's answer to the create did.
EVENTS_KEPT = 256


class TerminalLink:
    def __init__(
        self,
        target: MqttTarget,
        merchant_id: str,
        terminal_id: str,
        *,
        timeout: float = 5.0,
        public_keys: tuple[PublicKey, ...] | None = None,
    ) -> None:
        self.target = target
        # The PSP's keys: an event that does not verify against one of them
        # is dropped (None: a PSP that signs nothing; events are only hints).
        self.public_keys = public_keys
        self.merchant_id = merchant_id
        self.terminal_id = terminal_id
        self.display_topic = display_topic(merchant_id, terminal_id)
        self.state_topic = state_topic(merchant_id, terminal_id)
        self.events_topic = events_topic(merchant_id)
        self.state: TerminalState | None = None  # the terminal's latest state
        self.state_at: float | None = None  # time.monotonic() when it arrived
        self._timeout = timeout
        # Each checkout's distinct events (by event_id), in arrival order.
        self._events: OrderedDict[str, list[CheckoutEvent]] = OrderedDict()
        self._event_ids: OrderedDict[str, None] = OrderedDict()
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # Lifetime.

    async def __aenter__(self) -> TerminalLink:
        """Connected and subscribed; BrokerUnreachable if the first attempt fails."""
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(first), name=f"mqtt-{self.terminal_id}")
        try:
            await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                self._task.result()  # the session ended at once: raises what ended it
                raise BrokerUnreachable(f"the broker at {self.target} closed the session")
            first.result()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, first: asyncio.Future[None]) -> None:
        """The session, kept up; ``first`` tells how the first attempt went."""
        backoff = Backoff(initial=0.1, maximum=2.0)
        target = self.target
        while True:
            honour_cancellation()
            try:
                async with mqtt_client(
                    target,
                    identifier=f"scan2pay-cashier-{uuid.uuid4().hex[:12]}",
                    keepalive=15,
                    timeout=self._timeout,
                ) as client:
                    # One SUBSCRIBE for both: one round trip before the create.
                    await client.subscribe([(self.events_topic, 1), (self.state_topic, 1)])
                    self._client = client
                    self._up.set()
                    backoff.reset()
                    if first.done():
                        log.info("back on the broker at %s", target)
                    else:
                        log.debug("connected to %s", target)
                        first.set_result(None)
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, str):
                            payload = payload.encode()
                        if isinstance(payload, bytes | bytearray):
                            self._handle(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                self._client = None  # before the wait: a publish waits for the next one
                self._up.clear()
                if not first.done():
                    first.set_exception(
                        BrokerUnreachable(f"the broker at {target} cannot be reached: {exc}")
                    )
                    return
                delay = backoff.next_delay()
                log.warning("broker %s: %s; reconnecting in %.2f s", target, exc, delay)
                await asyncio.sleep(delay)
            finally:
                self._client = None
                self._up.clear()

    # What arrives.

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic == self.state_topic:
            if not payload:
                return  # a cleared retained message
            try:
                self.state = TerminalState.from_json(payload)
            except InvalidValue as exc:
                log.warning(
                    "ignored a state payload of %s: %s", self.terminal_id, loggable(exc.message)
                )
                return
            self.state_at = time.monotonic()
            log.debug("state of %s: %s", self.terminal_id, self.state)
        elif topic == self.events_topic:
            try:
                event = CheckoutEvent.from_json(payload)
            except InvalidValue as exc:
                log.warning("ignored an event payload: %s", loggable(exc.message))
                return
            if self.public_keys is not None and not verify_json(payload, self.public_keys):
                log.warning(
                    "ignored a %s event for %s: its signature is missing or not the PSP's",
                    event.type,
                    event.checkout.id,
                )
                return
            if event.merchant_id != self.merchant_id or event.event_id in self._event_ids:
                return  # not ours, or a repeat delivery (events come at least once)
            self._event_ids[event.event_id] = None
            self._events.setdefault(event.checkout.id, []).append(event)
            for kept in (self._event_ids, self._events):
                while len(kept) > EVENTS_KEPT:
                    kept.popitem(last=False)
        else:
            return
        self._pulse()

    def _pulse(self) -> None:
        """Wakes every waiter of ``until``: something new arrived."""
        self._changed.set()
        self._changed = asyncio.Event()

    def events_for(self, checkout_id: str) -> list[CheckoutEvent]:
        """The checkout's events so far, each once. There should be one; a
        second (a forged or buggy one) is kept rather than hidden."""
        return list(self._events.get(checkout_id, ()))

    async def until(self, check: Callable[[], T | None], deadline: float) -> T | None:
        """The first non-None ``check()``, tried now and after each message;
        None once time.monotonic() reaches ``deadline``."""
        while True:
            found = check()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    # What goes out.

    async def publish_display(self, command: DisplayCommand, *, deadline: float) -> bool:
        """Publishes ``command`` retained with QoS 1, waiting through a
        reconnect if need be; False if it was not acknowledged before
        time.monotonic() reaches ``deadline``."""
        payload = display_command_to_json(command)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            client = self._client
            if client is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._up.wait()
                continue
            try:
                await client.publish(
                    self.display_topic, payload, qos=1, retain=True, timeout=remaining
                )
            except aiomqtt.MqttError as exc:
                log.info("display command not acknowledged (%s); trying again", exc)
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                continue
            # aiomqtt's publish waits in wait_for, which on 3.11 can swallow
            # a cancellation that lands as the PUBACK does.
            honour_cancellation()
            return True
