"""The PSP's view of which terminals are online (psp_server/mqtt/presence.py):
the table on its own, then Presence against a real mosquitto."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from psp_server.api.appkeys import PRESENCE
from psp_server.mqtt.presence import (
    MalformedState,
    Presence,
    PresenceTable,
    PresenceWatch,
    TerminalSeen,
    subscription_changes,
)
from scan2pay.embedded_broker import EmbeddedBroker
from scan2pay_common.clock import MovableClock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import Screen, TerminalState
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import state_topic
from tests.support.broker import Mosquitto
from tests.support.mqtt import Publisher
from tests.support.psp import start_psp, stop_psp

A, B, C = "mer_aaaaaaaaaaaaaaaaaaaa", "mer_bbbbbbbbbbbbbbbbbbbb", "mer_cccccccccccccccccccc"
CO = "co_0123456789abcdef0123"

Publish = Callable[[str, bytes], Awaitable[None]]


def state(online: bool = True, screen: Screen = "idle", checkout_id: str | None = None) -> bytes:
    return TerminalState(
        online=online,
        screen=screen,
        checkout_id=checkout_id,
        displayed_at="2025-11-24T16:00:00.000Z" if online else None,
    ).to_json()


OFFLINE = state(online=False, screen="offline")


# The table, without a broker.


def test_a_state_is_kept_per_terminal_sorted_with_the_time_it_was_heard() -> None:
    table = PresenceTable()
    assert table.watch(A) is True
    assert table.apply(state_topic(A, "till-2"), state(screen="qr", checkout_id=CO), 1000) == A
    assert table.apply(state_topic(A, "till-1"), state(), 1001) == A
    assert table.terminals(A) == [
        TerminalSeen("till-1", True, "idle", None, 1001),
        TerminalSeen("till-2", True, "qr", CO, 1000),
    ]
    assert table.terminals(B) == []


def test_the_same_state_again_changes_nothing_and_keeps_its_time() -> None:
    table = PresenceTable()
    table.watch(A)
    table.apply(state_topic(A, "till-1"), state(), 1000)
    assert table.apply(state_topic(A, "till-1"), state(), 2000) is None
    assert table.terminals(A)[0].since_ms == 1000
    assert table.apply(state_topic(A, "till-1"), OFFLINE, 3000) == A
    assert table.terminals(A) == [TerminalSeen("till-1", False, "offline", None, 3000)]


def test_a_cleared_retained_state_removes_the_terminal() -> None:
    table = PresenceTable()
    table.watch(A)
    table.apply(state_topic(A, "till-1"), state(), 1000)
    assert table.apply(state_topic(A, "till-1"), b"", 2000) == A
    assert table.terminals(A) == []
    assert table.apply(state_topic(A, "till-1"), b"", 3000) is None  # nothing to remove


def test_states_of_merchants_not_watched_are_not_kept() -> None:
    table = PresenceTable()
    table.watch(A)
    assert table.apply(state_topic(B, "till-1"), state(), 1000) is None
    table.apply(state_topic(A, "till-1"), state(), 1000)
    table.forget(A)
    assert table.apply(state_topic(A, "till-1"), OFFLINE, 2000) is None
    assert table.terminals(A) == []
    assert table.watched() == {}


def test_malformed_states_raise_once_and_leave_the_last_good_state() -> None:
    table = PresenceTable()
    table.watch(A)
    topic = state_topic(A, "till-1")
    table.apply(topic, state(), 1000)
    for payload in (b"not json", b"[]", b'{"online":true}', state()[:-1] + b',"x":1}'):
        with pytest.raises(MalformedState) as raised:
            table.apply(topic, payload, 2000)
        assert raised.value.topic == topic
        assert not raised.value.repeated
        with pytest.raises(MalformedState) as again:
            table.apply(topic, payload, 2001)
        assert again.value.repeated  # a retained one comes again on each subscribe
    assert table.terminals(A) == [TerminalSeen("till-1", True, "idle", None, 1000)]
    for bad_topic in (
        f"scan2pay/v1/m/{A}/t/till 1/state",
        f"scan2pay/v1/m/{A}/t/till-1/display",
        f"scan2pay/v1/m/{A}/t/till-1/state/x",
    ):
        with pytest.raises(MalformedState, match="till"):
            table.apply(bad_topic, state(), 3000)


def test_a_malformed_payload_after_a_good_one_is_reported_again() -> None:
    table = PresenceTable()
    table.watch(A)
    topic = state_topic(A, "till-1")
    for _ in range(2):
        with pytest.raises(MalformedState) as raised:
            table.apply(topic, b"garbage", 1000)
        assert not raised.value.repeated
        table.apply(topic, state(), 1000)


def test_a_new_session_drops_what_was_heard_but_keeps_the_time_of_an_unchanged_state() -> None:
    table = PresenceTable()
    table.watch(A)
    table.apply(state_topic(A, "till-1"), state(), 1000)
    table.apply(state_topic(A, "till-2"), state(), 1000)
    table.apply(state_topic(A, "till-3"), state(), 1000)
    table.new_session()
    assert table.terminals(A) == []
    table.new_session()  # a session that ended before the states came back
    assert table.apply(state_topic(A, "till-1"), state(), 5000) == A
    assert table.apply(state_topic(A, "till-2"), OFFLINE, 5000) == A
    # till-3's retained state was cleared while the PSP was away: it is gone.
    assert table.terminals(A) == [
        TerminalSeen("till-1", True, "idle", None, 1000),
        TerminalSeen("till-2", False, "offline", None, 5000),
    ]


def test_watching_anew_is_a_new_generation_that_needs_a_new_subscription() -> None:
    table = PresenceTable()
    assert table.watch(A)
    assert not table.watch(A)
    first = table.watched()
    assert subscription_changes(first, {}) == ([A], [])
    assert subscription_changes(first, first) == ([], [])
    table.forget(A)
    assert subscription_changes(table.watched(), first) == ([], [A])
    table.watch(A)
    table.watch(B)
    assert subscription_changes(table.watched(), first) == ([A, B], [])


async def test_a_change_while_the_board_was_busy_is_not_lost() -> None:
    presence = Presence(MqttTarget.parse("mqtt://127.0.0.1:1"))  # never run: no broker needed
    async with presence.watch(A) as watch, presence.watch(B) as other:
        presence._hear(state_topic(A, "till-1"), state())  # as a message would arrive
        presence._hear(state_topic(A, "till-1"), OFFLINE)
        await asyncio.wait_for(watch.changed(), 1)  # at once: both changes, one wake-up
        assert shown(watch) == [("till-1", False, "offline")]
        assert other.terminals() == []
        assert not other._changed.is_set()


# Presence on a real broker.


async def until(watch: PresenceWatch, check: Callable[[], object], what: str) -> None:
    """Waits on ``changed()`` until ``check()`` holds: every change wakes it."""
    deadline = time.monotonic() + 10
    while not check():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"not within 10s: {what}; terminals {watch.terminals()}")
        try:
            await asyncio.wait_for(watch.changed(), remaining)
        except TimeoutError:
            continue


def shown(watch: PresenceWatch) -> list[tuple[str, bool, str]]:
    return [(t.terminal_id, t.online, t.screen) for t in watch.terminals()]


@pytest.fixture
async def publisher(broker: Mosquitto) -> AsyncIterator[Publish]:
    """Publishes retained QoS 1 states from a thread, in order, each acknowledged."""
    client = Publisher(broker.port)

    async def publish(topic: str, payload: bytes) -> None:
        await asyncio.to_thread(client.publish, topic, payload)

    yield publish
    client.close()


class Recording(Presence):
    """Presence that notes every topic the broker sent it, on a clock the
    test moves."""

    def __init__(self, target: MqttTarget) -> None:
        self.clock = MovableClock()
        super().__init__(target, self.clock)
        self.heard: list[str] = []

    def _hear(self, topic: str, payload: bytes) -> None:
        self.heard.append(topic)
        super()._hear(topic, payload)


@pytest.fixture
async def presence(broker: Mosquitto) -> AsyncIterator[Recording]:
    presence = Recording(MqttTarget.parse(broker.url))
    task = asyncio.create_task(presence.run())
    yield presence
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class DroppingTerminal:
    """A terminal that registered its last will, then drops off the network
    without a DISCONNECT (its socket shut), so that the broker sends the will."""

    def __init__(self, port: int, merchant_id: str, terminal_id: str) -> None:
        topic = state_topic(merchant_id, terminal_id)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"will-{uuid.uuid4().hex[:10]}"
        )
        self._client.will_set(topic, OFFLINE, qos=1, retain=True)
        self._client.connect("127.0.0.1", port, keepalive=30)
        # No network thread: this one drives the client, and nothing reconnects it.
        info = self._client.publish(topic, state(), qos=1, retain=True)
        deadline = time.monotonic() + 10
        while not info.is_published():
            assert time.monotonic() < deadline, "the terminal's state was not acknowledged"
            self._client.loop(0.05)

    def drop(self) -> None:
        sock = self._client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.mark.broker
async def test_a_watch_sees_the_retained_state_that_was_there_before_it(
    presence: Recording, publisher: Publish
) -> None:
    presence.clock.advance(3_600_000)  # "since" is the PSP's time, not the system's
    await publisher(state_topic(A, "till-1"), state(screen="qr", checkout_id=CO))
    async with presence.watch(A) as watch:
        await until(watch, lambda: watch.connected and watch.terminals(), "the retained state")
        (seen,) = watch.terminals()
        assert (seen.terminal_id, seen.online, seen.screen, seen.checkout_id) == (
            "till-1",
            True,
            "qr",
            CO,
        )
        assert abs(seen.since_ms - presence.clock.now_ms()) < 10_000


@pytest.mark.broker
async def test_a_new_state_and_the_last_will_wake_the_watch(
    presence: Recording, broker: Mosquitto
) -> None:
    async with presence.watch(A) as watch:
        await until(watch, lambda: watch.connected, "the subscription")
        terminal = await asyncio.to_thread(DroppingTerminal, broker.port, A, "till-2")
        await until(watch, lambda: shown(watch) == [("till-2", True, "idle")], "online")
        terminal.drop()
        await until(watch, lambda: shown(watch) == [("till-2", False, "offline")], "the last will")


@pytest.mark.broker
async def test_two_merchants_are_kept_apart(presence: Recording, publisher: Publish) -> None:
    async with presence.watch(A) as watch_a, presence.watch(B) as watch_b:
        await until(watch_a, lambda: watch_a.connected, "A's subscription")
        await until(watch_b, lambda: watch_b.connected, "B's subscription")
        await publisher(state_topic(A, "till-1"), state())
        await publisher(state_topic(B, "till-9"), OFFLINE)
        await until(watch_b, lambda: shown(watch_b) == [("till-9", False, "offline")], "B's")
        # A's state went out first, on the same connection: it is in by now.
        assert shown(watch_a) == [("till-1", True, "idle")]


@pytest.mark.broker
async def test_two_boards_of_one_merchant_share_the_subscription(
    presence: Recording, publisher: Publish
) -> None:
    await publisher(state_topic(A, "till-1"), state())
    async with presence.watch(A) as first:
        await until(first, lambda: first.terminals(), "the first board's state")
        async with presence.watch(A) as second:
            assert shown(second) == [("till-1", True, "idle")]
        # The second board closing left the first one its terminals.
        await publisher(state_topic(A, "till-1"), OFFLINE)
        await until(first, lambda: shown(first) == [("till-1", False, "offline")], "offline")


@pytest.mark.broker
async def test_closing_the_last_watch_unsubscribes_and_reopening_subscribes_again(
    presence: Recording, publisher: Publish
) -> None:
    async with presence.watch(A) as watch:
        await publisher(state_topic(A, "till-1"), state())
        await until(watch, lambda: watch.terminals(), "A's state")
    async with presence.watch(C) as other:
        # The follower unsubscribes before it subscribes, so C acknowledged
        # means A is no longer subscribed at the broker.
        await until(other, lambda: other.connected, "C's subscription")
        heard_before = len(presence.heard)
        await publisher(state_topic(A, "till-1"), OFFLINE)
        await publisher(state_topic(C, "till-1"), state())
        await until(other, lambda: other.terminals(), "C's state, after A's")
        assert presence.heard[heard_before:] == [state_topic(C, "till-1")]
        assert presence._table.watched().keys() == {C}
    async with presence.watch(A) as watch:
        await until(
            watch, lambda: shown(watch) == [("till-1", False, "offline")], "A's retained state"
        )


@pytest.mark.broker
async def test_a_board_reopened_before_the_unsubscribe_gets_the_states_again(
    presence: Recording, publisher: Publish
) -> None:
    await publisher(state_topic(A, "till-1"), state())
    async with presence.watch(A) as watch:
        await until(watch, lambda: watch.connected and watch.terminals(), "the state")
    # No await between: the subscription is still there, the states forgotten.
    async with presence.watch(A) as watch:
        assert watch.terminals() == []
        assert not watch.connected
        await until(watch, lambda: watch.connected and watch.terminals(), "the state again")


@pytest.mark.broker
async def test_a_broker_restart_says_unknown_then_brings_the_states_back(
    presence: Recording, broker: Mosquitto, publisher: Publish
) -> None:
    await publisher(state_topic(A, "till-1"), state())
    async with presence.watch(A) as watch:
        await until(watch, lambda: watch.connected and watch.terminals(), "the state")
        (before,) = watch.terminals()
        await asyncio.to_thread(broker.stop)
        await until(watch, lambda: not watch.connected, "connected False")
        assert watch.terminals() == [before]  # the last known, for the board to grey out
        await asyncio.to_thread(broker.start)
        await until(watch, lambda: watch.connected, "connected again")
        await until(watch, lambda: watch.terminals() == [before], "the retained state again")


@pytest.mark.broker
async def test_malformed_states_are_logged_once_and_ignored(
    presence: Recording, publisher: Publish, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="psp_server.mqtt.presence")
    bad_topic = f"scan2pay/v1/m/{A}/t/till 1/state"
    await publisher(state_topic(A, "till-bad"), b"not json")
    await publisher(bad_topic, state())
    async with presence.watch(A) as watch:
        await publisher(state_topic(A, "till-1"), state())
        await until(watch, lambda: watch.terminals(), "the good state")
        await publisher(state_topic(A, "till-bad"), b"not json")
        await publisher(state_topic(A, "till-1"), OFFLINE)
        await until(watch, lambda: shown(watch) == [("till-1", False, "offline")], "offline")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert any(state_topic(A, "till-bad") in w for w in warnings)
    assert any(bad_topic in w for w in warnings)


async def test_presence_falls_back_to_mqtt_3_1_1_for_the_demos_embedded_broker() -> None:
    async with EmbeddedBroker() as embedded:
        target = embedded.target
        async with aiomqtt.Client(
            target.host, target.port, protocol=aiomqtt.ProtocolVersion.V311
        ) as terminal:
            await terminal.publish(state_topic(A, "till-1"), state(), qos=1, retain=True)
        presence = Presence(target)
        task = asyncio.create_task(presence.run())
        try:
            async with presence.watch(A) as watch:
                await until(watch, lambda: watch.connected and watch.terminals(), "the state")
                assert shown(watch) == [("till-1", True, "idle")]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_a_watch_refuses_an_invalid_merchant_id() -> None:
    presence = Presence(MqttTarget.parse("mqtt://127.0.0.1:1"))
    with pytest.raises(InvalidValue):
        presence.watch("mer/+")
    async with presence.watch(A) as watch:
        assert not watch.connected
        assert watch.terminals() == []


# In the PSP.


@pytest.mark.broker
async def test_the_psp_has_presence_with_a_broker_and_not_without(
    tmp_path: Path, broker: Mosquitto
) -> None:
    psp = await start_psp(str(tmp_path / "with.db"), mqtt_url=broker.url)
    try:
        presence = psp.server.app[PRESENCE]
        async with presence.watch(A) as watch:
            await until(watch, lambda: watch.connected, "the PSP's presence session")
    finally:
        await stop_psp(psp)
    psp = await start_psp(str(tmp_path / "without.db"))
    try:
        assert PRESENCE not in psp.server.app
    finally:
        await stop_psp(psp)
