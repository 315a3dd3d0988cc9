"""The session's one MQTT connection (BrokerLink), and each checkout's view
of one terminal through it (TerminalLink).

The connection subscribes to the merchant's events and to every terminal's
state when it is made, so that nothing a checkout needs is missed, and stays
up for the session's life. Should the broker go away it reconnects by itself
with backoff and subscribes again (scan2pay_common.reconnect, as every part
does); the terminals' states are retained, so they are back at once,
and an event published during the gap is what the flow's polling of the PSP
is for (the MQTT session is not persistent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

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
from scan2pay_common.reconnect import BACK_OFF, STOP, Next, Reconnecting
from scan2pay_common.topics import (
    TerminalTopic,
    all_state_topics,
    display_topic,
    events_topic,
    state_topic,
)

from .errors import BrokerUnreachable
from .psp_keys import PspKeys
from .static_payments import StaticPayment, static_payment_of

log = logging.getLogger(__name__)

T = TypeVar("T")

# Events of other checkouts are kept this long (in checkouts), in case one of
# them is ours and arrived before the PSP's answer to the create did.
EVENTS_KEPT = 256


class BrokerLink:
    def __init__(
        self,
        target: MqttTarget,
        merchant_id: str,
        *,
        timeout: float = 5.0,
        keys: PspKeys | None = None,
    ) -> None:
        self.target = target
        # The PSP's keys: an event that does not verify against them is
        # dropped (None: a PSP that signs nothing; events are only hints).
        self.keys = keys
        self.merchant_id = merchant_id
        self.events_topic = events_topic(merchant_id)
        # Each terminal's latest state, and time.monotonic() when it came.
        self.states: dict[str, tuple[TerminalState, float]] = {}
        self._timeout = timeout
        # Each checkout's distinct events (by event_id), in arrival order.
        self._events: OrderedDict[str, list[CheckoutEvent]] = OrderedDict()
        self._event_ids: OrderedDict[str, None] = OrderedDict()
        # The static payments heard (static_payments.py), the newest
        # EVENTS_KEPT of them, and how many were ever heard.
        self._static: deque[StaticPayment] = deque(maxlen=EVENTS_KEPT)
        self.static_heard = 0
        self._changed = asyncio.Event()
        self._link: Reconnecting[aiomqtt.Client] = Reconnecting(
            self._connect,
            name="cashier bridge",
            target=target,
            log=log,
            backoff=Backoff(initial=0.1, maximum=2.0),
            handles=(aiomqtt.MqttError,),
            on_drop=self._dropped,
            prepare=self._subscribe,
        )
        # Why the first attempt failed: the caller's error, not a retry.
        self._unreachable: BrokerUnreachable | None = None
        self._first_session = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rechecks: set[asyncio.Task[None]] = set()

    # Lifetime.

    async def __aenter__(self) -> BrokerLink:
        """Connected and subscribed; BrokerUnreachable if the first attempt fails."""
        self._task = asyncio.create_task(
            self._link.run(self._receive), name=f"mqtt-{self.merchant_id}"
        )
        first = asyncio.create_task(self._first_session.wait())
        try:
            await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                self._task.result()  # an error the link does not handle: raised here
                raise self._unreachable or BrokerUnreachable(
                    f"the broker at {self.target} closed the session"
                )
        except BaseException:
            await self.close()
            raise
        finally:
            first.cancel()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def alive(self) -> bool:
        """Connected, or reconnecting: the session's task still runs."""
        return self._task is not None and not self._task.done()

    async def wait_up(self, deadline: float) -> bool:
        """Whether the connection is up, or comes back before
        time.monotonic() reaches ``deadline``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._link.connected()
        return self._link.up

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._rechecks) if t is not None]
        self._task = None
        self._rechecks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # The connection, kept up by scan2pay_common.reconnect.

    def _connect(self) -> aiomqtt.Client:
        return mqtt_client(
            self.target,
            identifier=f"scan2pay-cashier-{uuid.uuid4().hex[:12]}",
            keepalive=15,
            timeout=self._timeout,
        )

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        # One SUBSCRIBE for both: one round trip before the first create.
        await client.subscribe([(self.events_topic, 1), (all_state_topics(self.merchant_id), 1)])

    async def _dropped(self, exc: Exception) -> Next:
        if self._link.sessions == 0:
            # Never connected (and subscribed): likely a setting, and a
            # checkout is waiting to be told, before it creates anything.
            self._unreachable = BrokerUnreachable(
                f"the broker at {self.target} cannot be reached: {exc}"
            )
            return STOP
        return BACK_OFF

    async def _receive(self, client: aiomqtt.Client) -> None:
        self._first_session.set()
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode()
            if isinstance(payload, bytes | bytearray):
                self._handle(str(message.topic), bytes(payload))

    # What arrives.

    def state_topic_of(self, terminal_id: str) -> str:
        return state_topic(self.merchant_id, terminal_id)

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic == self.events_topic:
            self._handle_event(payload)
            return
        try:
            where = TerminalTopic.parse(topic)
        except InvalidValue:
            return  # nothing this link subscribed to
        if where.channel != "state" or where.merchant_id != self.merchant_id:
            return
        if not payload:
            return  # a cleared retained message
        try:
            state = TerminalState.from_json(payload)
        except InvalidValue as exc:
            log.warning(
                "ignored a state payload of %s: %s", where.terminal_id, loggable(exc.message)
            )
            return
        self.states[where.terminal_id] = (state, time.monotonic())
        log.debug("state of %s: %s", where.terminal_id, state)
        self._pulse()

    def _handle_event(self, payload: bytes) -> None:
        try:
            event = CheckoutEvent.from_json(payload)
        except InvalidValue as exc:
            log.warning("ignored an event payload: %s", loggable(exc.message))
            return
        if event.merchant_id != self.merchant_id:
            return
        verdict = "verified" if self.keys is None else self.keys.verdict(payload)
        if verdict == "verified":
            self._keep(event)
        elif verdict == "refetch":
            self._spawn(self._recheck(payload, event))
        else:
            self._drop(event)

    async def _recheck(self, payload: bytes, event: CheckoutEvent) -> None:
        """An event that may be signed with a key the PSP made since its
        keys were fetched: kept if it verifies once they are fetched anew."""
        if self.keys is not None and await self.keys.verified_after_refetch(payload):
            self._keep(event)
        else:
            self._drop(event)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="mqtt-event-recheck")
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    def _drop(self, event: CheckoutEvent) -> None:
        log.warning(
            "ignored a %s event for %s: its signature is missing or not the PSP's",
            event.type,
            event.checkout.id,
        )

    def _keep(self, event: CheckoutEvent) -> None:
        if event.event_id in self._event_ids:
            return  # a repeat delivery (events come at least once)
        self._event_ids[event.event_id] = None
        self._events.setdefault(event.checkout.id, []).append(event)
        payment = static_payment_of(event)
        if payment is not None:
            self._static.append(payment)
            self.static_heard += 1
        for kept in (self._event_ids, self._events):
            while len(kept) > EVENTS_KEPT:
                kept.popitem(last=False)
        self._pulse()

    def _pulse(self) -> None:
        """Wakes every waiter of ``until``: something new arrived."""
        self._changed.set()
        self._changed = asyncio.Event()

    def static_payments_since(self, heard: int) -> list[StaticPayment]:
        """The static payments heard after the first ``heard`` of them (as
        many as are still kept)."""
        missed = self.static_heard - heard
        if missed <= 0:
            return []
        return list(self._static)[-min(missed, len(self._static)) :]

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

    async def publish_display(
        self, topic: str, command: DisplayCommand, *, deadline: float
    ) -> bool:
        """Publishes ``command`` retained with QoS 1, waiting through a
        reconnect if need be; False if it was not acknowledged before
        time.monotonic() reaches ``deadline``."""
        payload = display_command_to_json(command)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            client = self._link.client
            if client is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._link.connected()
                continue
            try:
                await client.publish(topic, payload, qos=1, retain=True, timeout=remaining)
            except aiomqtt.MqttError as exc:
                log.info("display command not acknowledged (%s); trying again", exc)
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                continue
            # aiomqtt's publish waits in wait_for, which on 3.11 can swallow
            # a cancellation that lands as the PUBACK does.
            honour_cancellation()
            return True


class TerminalLink:
    """One checkout's terminal, seen through the session's BrokerLink."""

    def __init__(self, broker: BrokerLink, terminal_id: str) -> None:
        self.broker = broker
        self.terminal_id = terminal_id
        self.display_topic = display_topic(broker.merchant_id, terminal_id)

    @property
    def state(self) -> TerminalState | None:
        """The terminal's latest state."""
        found = self.broker.states.get(self.terminal_id)
        return None if found is None else found[0]

    @property
    def state_at(self) -> float | None:
        """time.monotonic() when the latest state arrived."""
        found = self.broker.states.get(self.terminal_id)
        return None if found is None else found[1]

    def events_for(self, checkout_id: str) -> list[CheckoutEvent]:
        return self.broker.events_for(checkout_id)

    async def until(self, check: Callable[[], T | None], deadline: float) -> T | None:
        return await self.broker.until(check, deadline)

    async def publish_display(self, command: DisplayCommand, *, deadline: float) -> bool:
        return await self.broker.publish_display(self.display_topic, command, deadline=deadline)
