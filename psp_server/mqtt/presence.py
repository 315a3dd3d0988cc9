"""Which terminals are online, for the merchant's live board.

Terminals publish their state retained on ``.../m/{merchant}/t/{terminal}/state``
with a last will that says ``online: false`` (docs/mqtt.md). The PSP listens
to a merchant's states only while at least one of that merchant's boards is
open: the first ``watch`` subscribes, the broker answers with every retained
state (the current state of each terminal), and the last one to close
unsubscribes and forgets them. A PSP behind a million terminals so holds only
the states of the merchants someone is looking at.

``PresenceTable`` is the bookkeeping without I/O: it takes (topic, payload,
time) and says whose terminals changed. ``Presence`` is the MQTT session
around it: one connection, re-subscribing the watched merchants after each
reconnect, and a ``PresenceWatch`` per open board to read and wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

import aiomqtt

from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.clock import SYSTEM_CLOCK, Clock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import TerminalState
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
from scan2pay_common.topics import TerminalTopic, all_state_topics

log = logging.getLogger(__name__)

# Topic filters per SUBSCRIBE or UNSUBSCRIBE: after a reconnect every open
# board's merchant is subscribed again, in a few packets rather than one
# round trip each, and none so large that a broker's packet limit refuses it.
FILTERS_PER_PACKET = 64
# How many topics' last malformed payload is remembered, so that a retained
# one, sent again on every subscribe, is logged once rather than each time.
MALFORMED_REMEMBERED = 1024
# A half-open connection (a broker host gone without a FIN) is noticed within
# about 1.5 keepalives; the board should not say "online" for minutes on it.
KEEPALIVE_SECONDS = 15


@dataclass(frozen=True, slots=True)
class TerminalSeen:
    terminal_id: str
    online: bool
    screen: str
    checkout_id: str | None
    # When the PSP heard this state (ms since the epoch); the same state
    # heard again, or again after a reconnect, keeps the first time.
    since_ms: int


class PresenceError(Exception):
    """Something about terminals' presence that the PSP could not use."""


class MalformedState(PresenceError):
    """A message on a state topic that breaks the contract. ``repeated`` is
    True when the topic's previous malformed message had the same payload
    (a retained one, sent again on each subscribe): it was reported already."""

    def __init__(self, topic: str, reason: str, *, repeated: bool) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason
        self.repeated = repeated


def _same_state(seen: TerminalSeen, state: TerminalState) -> bool:
    return (seen.online, seen.screen, seen.checkout_id) == (
        state.online,
        state.screen,
        state.checkout_id,
    )


class PresenceTable:
    """The terminals of the watched merchants, from the messages on their
    state topics. No I/O: the caller feeds it messages and the time."""

    def __init__(self) -> None:
        self._terminals: dict[str, dict[str, TerminalSeen]] = {}
        # Bumped each time a merchant starts being watched: a merchant whose
        # boards all closed and one reopened must be subscribed again (for the
        # broker to resend the retained states), even if the UNSUBSCRIBE for
        # its last close was never sent.
        self._generations: dict[str, int] = {}
        self._generation = 0
        # What was heard in the previous session, for since_ms to survive a
        # reconnect when a terminal's state did not change meanwhile.
        self._earlier: dict[str, dict[str, TerminalSeen]] = {}
        self._malformed: OrderedDict[str, bytes] = OrderedDict()

    def watch(self, merchant_id: str) -> bool:
        """Starts keeping ``merchant_id``'s states; True if it was not kept."""
        if merchant_id in self._terminals:
            return False
        self._generation += 1
        self._generations[merchant_id] = self._generation
        self._terminals[merchant_id] = {}
        return True

    def forget(self, merchant_id: str) -> None:
        self._terminals.pop(merchant_id, None)
        self._generations.pop(merchant_id, None)
        self._earlier.pop(merchant_id, None)

    def watched(self) -> Mapping[str, int]:
        """The watched merchants and the generation of each one's watching."""
        return dict(self._generations)

    def generation(self, merchant_id: str) -> int | None:
        return self._generations.get(merchant_id)

    def new_session(self) -> None:
        """A new broker session begins: the broker will send each retained
        state again once re-subscribed, and a state cleared while the PSP was
        away must not linger, so everything heard before is dropped."""
        # A session that ended before its states came back keeps what the
        # one before it heard.
        self._earlier = {
            merchant_id: {**self._earlier.get(merchant_id, {}), **terminals}
            for merchant_id, terminals in self._terminals.items()
        }
        self._terminals = {merchant_id: {} for merchant_id in self._terminals}

    def terminals(self, merchant_id: str) -> list[TerminalSeen]:
        seen = self._terminals.get(merchant_id, {})
        return [seen[terminal_id] for terminal_id in sorted(seen)]

    def apply(self, topic: str, payload: bytes, now: int) -> str | None:
        """Takes one message and returns the merchant whose terminals changed,
        or None when nothing did (a repeat, or a merchant no longer watched:
        its messages may still be in flight as its last board closes). An
        empty payload (a retained state cleared) removes the terminal.
        Raises ``MalformedState`` for a topic or payload off the contract;
        the terminal's last good state stays."""
        try:
            parsed = TerminalTopic.parse(topic)
        except InvalidValue as exc:
            raise self._malformed_state(topic, payload, exc.message) from None
        if parsed.channel != "state":
            raise self._malformed_state(topic, payload, "not a state topic")
        terminals = self._terminals.get(parsed.merchant_id)
        if terminals is None:
            return None
        terminal_id = parsed.terminal_id
        if not payload:
            self._malformed.pop(topic, None)
            self._earlier.get(parsed.merchant_id, {}).pop(terminal_id, None)
            return parsed.merchant_id if terminals.pop(terminal_id, None) is not None else None
        try:
            state = TerminalState.from_json(payload)
        except InvalidValue as exc:
            raise self._malformed_state(topic, payload, exc.message) from None
        self._malformed.pop(topic, None)
        current = terminals.get(terminal_id)
        if current is not None and _same_state(current, state):
            return None
        earlier = self._earlier.get(parsed.merchant_id, {}).pop(terminal_id, None)
        since = earlier.since_ms if earlier is not None and _same_state(earlier, state) else now
        terminals[terminal_id] = TerminalSeen(
            terminal_id=terminal_id,
            online=state.online,
            screen=state.screen,
            checkout_id=state.checkout_id,
            since_ms=since,
        )
        return parsed.merchant_id

    def _malformed_state(self, topic: str, payload: bytes, reason: str) -> MalformedState:
        repeated = self._malformed.get(topic) == payload
        self._malformed[topic] = payload
        self._malformed.move_to_end(topic)
        while len(self._malformed) > MALFORMED_REMEMBERED:
            self._malformed.popitem(last=False)
        return MalformedState(topic, reason, repeated=repeated)


def subscription_changes(
    wanted: Mapping[str, int], subscribed: Mapping[str, int]
) -> tuple[list[str], list[str]]:
    """(merchants to subscribe, merchants to unsubscribe), each sorted: a
    merchant is subscribed again when its watching began anew since its
    subscription (``wanted`` and ``subscribed`` map merchants to generations)."""
    subscribe = sorted(m for m, generation in wanted.items() if subscribed.get(m) != generation)
    unsubscribe = sorted(m for m in subscribed if m not in wanted)
    return subscribe, unsubscribe


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _refused(code: object) -> bool:
    """A SUBACK's code, an int granted QoS (3.1.1) or a ReasonCode (5)."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


class PresenceWatch:
    """One open board's view of its merchant's terminals."""

    __slots__ = ("_changed", "_presence", "merchant_id")

    def __init__(self, presence: Presence, merchant_id: str) -> None:
        self._presence = presence
        self.merchant_id = merchant_id
        self._changed = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether the PSP has a broker session and the broker acknowledged
        this merchant's subscription in it; while False, ``terminals()`` is
        what was last heard and the board should call the status unknown."""
        return self._presence._is_ready(self.merchant_id)

    def terminals(self) -> list[TerminalSeen]:
        """The merchant's terminals, sorted by terminal id."""
        return self._presence._table.terminals(self.merchant_id)

    async def changed(self) -> None:
        """Returns once the terminals or ``connected`` changed since the last
        return (or since the watch opened): a change made while the caller
        was busy is not lost."""
        await self._changed.wait()
        self._changed.clear()

    def _wake(self) -> None:
        self._changed.set()


class Presence:
    """Terminals' presence over one MQTT session; ``run()`` keeps it up.
    ``clock`` dates when each terminal was heard (the app's ``CLOCK``)."""

    def __init__(self, target: MqttTarget, clock: Clock = SYSTEM_CLOCK) -> None:
        self._target = target
        self._clock = clock
        self._table = PresenceTable()
        self._watches: dict[str, set[PresenceWatch]] = {}
        # Wakes the session's subscription follower when watching changes.
        self._watching_changed = asyncio.Event()
        self._session_up = False
        # Merchants whose subscription this session's broker acknowledged.
        self._ready: set[str] = set()
        # MQTT 5 first, as the relay does; the demo's embedded broker
        # speaks 3.1.1 only.
        self._mqtt5_first = Mqtt5First()
        self._link = Reconnecting(
            self._connect,
            name="presence",
            target=target,
            log=log,
            backoff=Backoff(initial=0.05, maximum=5.0),
            handles=(Exception,),
            on_drop=self._dropped,
        )

    def watch(self, merchant_id: str) -> contextlib.AbstractAsyncContextManager[PresenceWatch]:
        """A view of ``merchant_id``'s terminals for as long as the ``async
        with`` lasts. Raises ``InvalidValue`` for an invalid merchant id."""
        check_merchant_id(merchant_id)
        return self._watching(merchant_id)

    @contextlib.asynccontextmanager
    async def _watching(self, merchant_id: str) -> AsyncIterator[PresenceWatch]:
        watch = PresenceWatch(self, merchant_id)
        watches = self._watches.setdefault(merchant_id, set())
        watches.add(watch)
        if self._table.watch(merchant_id):
            self._watching_changed.set()
        try:
            yield watch
        finally:
            watches.discard(watch)
            if not watches:
                del self._watches[merchant_id]
                self._table.forget(merchant_id)
                self._ready.discard(merchant_id)
                self._watching_changed.set()

    def _is_ready(self, merchant_id: str) -> bool:
        return self._session_up and merchant_id in self._ready

    def _wake(self, merchant_id: str) -> None:
        for watch in self._watches.get(merchant_id, ()):
            watch._wake()

    def _wake_all(self) -> None:
        for merchant_id in self._watches:
            self._wake(merchant_id)

    async def run(self) -> None:
        """Keeps a session with the broker until cancelled, reconnecting with
        jittered exponential backoff. Nothing that arrives ends it."""
        await self._link.run(self._session)

    def _connect(self) -> aiomqtt.Client:
        return mqtt_client(
            self._target,
            identifier=f"scan2pay-psp-presence-{uuid.uuid4().hex[:12]}",
            keepalive=KEEPALIVE_SECONDS,
            timeout=10,
            protocol=self._mqtt5_first.protocol,
        )

    async def _dropped(self, exc: Exception) -> Next:
        if self._mqtt5_first.falls_back(exc):
            log.info("broker %s does not speak MQTT 5; presence uses 3.1.1", self._target)
            return AT_ONCE
        if isinstance(exc, aiomqtt.MqttError | OSError):
            return BACK_OFF
        log.exception("presence failed; starting over")
        return QUIETLY

    async def _session(self, client: aiomqtt.Client) -> None:
        self._table.new_session()
        self._session_up = True
        self._wake_all()
        tasks = [
            asyncio.create_task(self._follow_watches(client), name="presence-subscriptions"),
            asyncio.create_task(self._read(client), name="presence-messages"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise aiomqtt.MqttError("the message stream ended")
        finally:
            self._session_up = False
            self._ready.clear()
            self._wake_all()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow_watches(self, client: aiomqtt.Client) -> None:
        """Keeps the session's subscriptions to the watched merchants. What
        is wanted is read again after each acknowledgement: boards open and
        close meanwhile."""
        subscribed: dict[str, int] = {}
        while True:
            # aiomqtt's waits can swallow a cancellation (Python 3.11's
            # wait_for); without this the follower would then wait for the
            # next board forever and the session could not end.
            honour_cancellation()
            self._watching_changed.clear()
            wanted = self._table.watched()
            subscribe, unsubscribe = subscription_changes(wanted, subscribed)
            if not subscribe and not unsubscribe:
                await self._watching_changed.wait()
                continue
            for chunk in _chunks(unsubscribe, FILTERS_PER_PACKET):
                await client.unsubscribe([all_state_topics(m) for m in chunk])
                honour_cancellation()
                for merchant_id in chunk:
                    subscribed.pop(merchant_id, None)
            for chunk in _chunks(subscribe, FILTERS_PER_PACKET):
                codes = await client.subscribe([(all_state_topics(m), 1) for m in chunk])
                honour_cancellation()
                for merchant_id, code in zip(chunk, codes, strict=True):
                    subscribed[merchant_id] = wanted[merchant_id]
                    if _refused(code):
                        log.error(
                            "the broker at %s refused the subscription to %s; check the ACL "
                            "(the PSP's account reads scan2pay/v1/m/+/t/+/state)",
                            self._target,
                            all_state_topics(merchant_id),
                        )
                    elif self._table.generation(merchant_id) == wanted[merchant_id]:
                        self._ready.add(merchant_id)
                        self._wake(merchant_id)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode()
            if not isinstance(payload, bytes | bytearray):
                continue  # paho hands over bytes; nothing else reaches here
            self._hear(str(message.topic), bytes(payload))

    def _hear(self, topic: str, payload: bytes) -> None:
        try:
            merchant_id = self._table.apply(topic, payload, self._clock.now_ms())
        except MalformedState as exc:
            if not exc.repeated:
                log.warning(
                    "ignored a terminal state on %s: %s", loggable(exc.topic), loggable(exc.reason)
                )
            return
        if merchant_id is not None:
            self._wake(merchant_id)
