"""scan2pay_common.reconnect: one connection kept up, with a moved clock,
a recording sleep and a fixed jitter instead of a broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError

from scan2pay_common.backoff import Backoff
from scan2pay_common.reconnect import (
    AT_ONCE,
    BACK_OFF,
    QUIETLY,
    STOP,
    Mqtt5First,
    Next,
    OnDrop,
    Reconnecting,
    back_off,
)

LOGGER = "tests.reconnect"


class _Top(random.Random):
    """Draws the top of each range: a delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Enough(Exception):
    """Ends a test's run: not an error the link handles."""


@dataclass
class Client:
    number: int


@dataclass
class Broker:
    """What each connection attempt does, in order: an exception to raise
    on connecting, or None to connect. The clock moves only in ``sleep``
    and where a session moves it."""

    attempts: list[Exception | None]
    now: float = 0.0
    delays: list[float] = field(default_factory=list)
    connects: int = 0
    closed: int = 0

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Client]:
        self.connects += 1
        if not self.attempts:
            raise Enough
        failure = self.attempts.pop(0)
        if failure is not None:
            raise failure
        try:
            yield Client(self.connects)
        finally:
            self.closed += 1

    def connect(self) -> AbstractAsyncContextManager[Client]:
        return self._connection()

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now

    def link(
        self,
        *,
        backoff: Backoff | None = None,
        on_drop: OnDrop = back_off,
        handles: tuple[type[Exception], ...] = (aiomqtt.MqttError, OSError),
        prepare: Callable[[Client], Awaitable[None]] | None = None,
    ) -> Reconnecting[Client]:
        return Reconnecting(
            self.connect,
            name="tester",
            target="mqtt://broker.test:1883",
            log=logging.getLogger(LOGGER),
            backoff=backoff or Backoff(initial=0.1, maximum=1.0, rng=_Top()),
            handles=handles,
            on_drop=on_drop,
            prepare=prepare,
            healthy_after=5.0,
            sleep=self.sleep,
            clock=self.clock,
        )


REFUSED = OSError(111, "Connection refused")


def lost(broker: Broker, *, lasting: float) -> Callable[[Client], Awaitable[None]]:
    """A session that lasts ``lasting`` seconds of the broker's clock, then loses it."""

    async def session(client: Client) -> None:
        broker.now += lasting
        raise aiomqtt.MqttError("Disconnected during message iteration")

    return session


async def test_the_delay_grows_while_the_broker_cannot_be_reached() -> None:
    broker = Broker([REFUSED] * 6)
    with pytest.raises(Enough):
        await broker.link().run(lost(broker, lasting=0))
    assert broker.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


async def test_a_healthy_session_resets_the_backoff() -> None:
    broker = Broker([REFUSED, REFUSED, REFUSED, None, REFUSED])
    with pytest.raises(Enough):
        await broker.link().run(lost(broker, lasting=5.0))
    # Three failures, a session of 5 s, then from the start again.
    assert broker.delays == pytest.approx([0.1, 0.2, 0.4, 0.1, 0.2])


async def test_a_session_dropped_at_once_does_not_reset_the_backoff() -> None:
    # A broker that takes the connection and drops it (an ACL, a client id
    # taken over) must not be hammered with the initial delay each time.
    broker = Broker([None, None, None, None])
    with pytest.raises(Enough):
        await broker.link().run(lost(broker, lasting=0.5))
    assert broker.delays == pytest.approx([0.1, 0.2, 0.4, 0.8])


async def test_the_jitter_stays_in_the_upper_half_of_each_delay() -> None:
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for seed in range(20):
        broker = Broker([REFUSED] * len(ceilings))
        backoff = Backoff(initial=0.1, maximum=1.0, rng=random.Random(seed))  # noqa: S311 - a seeded jitter source for the test
        with pytest.raises(Enough):
            await broker.link(backoff=backoff).run(lost(broker, lasting=0))
        for delay, ceiling in zip(broker.delays, ceilings, strict=True):
            assert ceiling / 2 <= delay <= ceiling


async def test_the_session_gets_the_client_and_it_is_offered_while_up() -> None:
    broker = Broker([None])
    link = broker.link()
    seen: list[tuple[Client | None, bool]] = []

    async def session(client: Client) -> None:
        seen.append((link.client, link.up))
        assert await link.connected() is client

    await link.run(session)  # a session that returns ends the run
    assert seen == [(Client(1), True)]
    assert link.client is None
    assert not link.up
    assert (link.sessions, broker.closed, broker.delays) == (1, 1, [])


async def test_connected_waits_for_a_connection() -> None:
    broker = Broker([REFUSED, REFUSED, None])
    link = broker.link()
    release = asyncio.Event()

    async def session(client: Client) -> None:
        await release.wait()

    runner = asyncio.create_task(link.run(session))
    client = await asyncio.wait_for(link.connected(), 5)
    assert client == Client(3)
    release.set()
    await runner


@pytest.mark.parametrize("in_session", [True, False])
async def test_cancelling_stops_it_cleanly(in_session: bool) -> None:
    broker = Broker([None] if in_session else [REFUSED])
    forever = asyncio.Event()
    sleeping = asyncio.Event()
    entered = asyncio.Event()

    async def sleep(delay: float) -> None:
        sleeping.set()
        await forever.wait()

    async def session(client: Client) -> None:
        entered.set()
        await forever.wait()

    link = Reconnecting(
        broker.connect, name="tester", target="t", log=logging.getLogger(LOGGER), sleep=sleep
    )
    runner = asyncio.create_task(link.run(session))
    await asyncio.wait_for((entered if in_session else sleeping).wait(), 5)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert link.client is None
    assert broker.closed == (1 if in_session else 0)
    assert broker.connects == 1


async def test_a_pending_cancellation_is_honoured_before_connecting_again() -> None:
    # Python 3.11's wait_for (in aiomqtt) can swallow a cancellation; the
    # link must still stop at the top of its next turn.
    broker = Broker([REFUSED, None])

    async def swallowing_sleep(delay: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)

    link = Reconnecting(
        broker.connect,
        name="tester",
        target="t",
        log=logging.getLogger(LOGGER),
        sleep=swallowing_sleep,
    )
    with pytest.raises(asyncio.CancelledError):
        await link.run(lost(broker, lasting=0))
    assert broker.connects == 1


async def swallow_a_cancellation() -> None:
    """What Python 3.11's wait_for inside aiomqtt can do: the task is asked
    to stop, and the wait ends without raising."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0)


@pytest.mark.parametrize("where", ["connecting", "preparing"])
async def test_a_cancellation_swallowed_on_the_way_in_never_starts_the_session(
    where: str,
) -> None:
    # Seen once: the broker had just come back, the app shut down while
    # the census connected, and its session then outlived the app's
    # shutdown, waiting for messages forever.
    broker = Broker([None])
    sessions: list[Client] = []

    @contextlib.asynccontextmanager
    async def connection() -> AsyncIterator[Client]:
        async with broker.connect() as client:
            if where == "connecting":
                await swallow_a_cancellation()
            yield client

    async def prepare(client: Client) -> None:
        if where == "preparing":
            await swallow_a_cancellation()

    async def forever(client: Client) -> None:
        sessions.append(client)
        await asyncio.Event().wait()

    link = Reconnecting(
        connection, name="tester", target="t", log=logging.getLogger(LOGGER), prepare=prepare
    )
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(link.run(forever), 5)
    assert sessions == []
    assert broker.closed == 1


async def test_a_client_is_offered_only_once_prepared() -> None:
    broker = Broker([None])
    seen: list[str] = []
    subscribed = asyncio.Event()

    async def prepare(client: Client) -> None:
        seen.append(f"prepare {client.number}: offered={link.up}, sessions={link.sessions}")
        await subscribed.wait()  # e.g. a SUBSCRIBE's round trip
        seen.append("prepared")

    async def waiter() -> None:
        await link.connected()
        seen.append("offered")

    async def session(client: Client) -> None:
        seen.append(f"session {client.number}: sessions={link.sessions}")
        await waiting  # the session lasts until the waiter has its client

    link = broker.link(prepare=prepare)
    waiting = asyncio.create_task(waiter())
    runner = asyncio.create_task(link.run(session))
    await asyncio.sleep(0.01)
    assert seen == ["prepare 1: offered=False, sessions=0"]
    subscribed.set()
    await asyncio.wait_for(runner, 5)
    assert seen[1:] == ["prepared", "session 1: sessions=1", "offered"]


async def test_a_failed_prepare_is_a_failed_session() -> None:
    # The connection is made but never ready: it counts as no session, so a
    # caller can still tell that it never had one, and is retried alike.
    broker = Broker([None, None])
    refused = aiomqtt.MqttError("SUBSCRIBE refused")
    prepared: list[int] = []
    errors: list[tuple[Exception, int]] = []

    async def prepare(client: Client) -> None:
        prepared.append(client.number)
        if client.number == 1:
            raise refused

    async def on_drop(exc: Exception) -> Next:
        errors.append((exc, link.sessions))
        return BACK_OFF

    sessions: list[int] = []

    async def session(client: Client) -> None:
        sessions.append(client.number)

    link = broker.link(on_drop=on_drop, prepare=prepare)
    await link.run(session)
    assert errors == [(refused, 0)]
    assert (prepared, sessions, link.sessions) == ([1, 2], [2], 1)
    assert broker.delays == pytest.approx([0.1])
    assert broker.closed == 2  # the unready connection was closed too


async def test_each_drop_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    timeout = aiomqtt.MqttError("Operation timed out")
    attempts: list[Exception | None] = [REFUSED] * 4
    attempts += [timeout] * 3 + [None] + [REFUSED] * 5
    broker = Broker(attempts)
    with pytest.raises(Enough):
        await broker.link().run(lost(broker, lasting=10.0))
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG]
    assert [level for level, _ in said] == [
        logging.WARNING,  # cannot reach: refused (never connected yet: a setting, likely)
        logging.WARNING,  # cannot reach: timed out
        logging.INFO,  # connected
        logging.WARNING,  # lost
        logging.INFO,  # cannot reach again: refused (an outage, after a session)
    ]
    assert "Connection refused" in said[0][1]
    assert "timed out" in said[1][1]
    assert said[2][1] == "tester connected to mqtt://broker.test:1883"
    assert "tester lost the broker at mqtt://broker.test:1883" in said[3][1]
    assert "Connection refused" in said[4][1]
    repeats = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(repeats) == 3 + 2 + 4


async def test_a_reason_from_outside_is_logged_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    broker = Broker([aiomqtt.MqttError("refused\nFORGED 12:00 connected to evil")])
    with pytest.raises(Enough):
        await broker.link().run(lost(broker, lasting=0))
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert "refused\\nFORGED" in record.getMessage()


async def test_on_drop_decides_what_comes_next(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    answers = [AT_ONCE, Next.after(7.5), QUIETLY, BACK_OFF, STOP]
    errors: list[Exception] = []

    async def on_drop(exc: Exception) -> Next:
        errors.append(exc)
        return answers.pop(0)

    broker = Broker([REFUSED] * 5)
    await broker.link(on_drop=on_drop).run(lost(broker, lasting=0))  # returns on STOP
    assert errors == [REFUSED] * 5
    # At once, the caller's own delay, then the backoff's (first, second).
    assert broker.delays == pytest.approx([0.0, 7.5, 0.1, 0.2])
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # BACK_OFF's alone


async def test_errors_it_does_not_handle_go_through() -> None:
    broker = Broker([None])

    async def session(client: Client) -> None:
        raise KeyError("a bug")

    link = broker.link(handles=(aiomqtt.MqttError,))
    with pytest.raises(KeyError):
        await link.run(session)
    assert link.client is None
    assert broker.closed == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: Next(delay=-1.0),
        lambda: Next(delay=float("nan")),
        lambda: Next(stop=True, delay=1.0, log_drop=False),
        lambda: Next(stop=True),
    ],
)
def test_a_next_step_that_cannot_be_is_refused(make: Callable[[], Next]) -> None:
    with pytest.raises(ValueError, match=r"stop|delay"):
        make()


def test_mqtt5_first_falls_back_to_3_1_1_once_a_broker_refuses_5() -> None:
    v5, v311 = aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311
    protocols = Mqtt5First()
    first = protocols.protocol
    # Not authorised, or no broker at all: not the protocol's fault.
    others = [protocols.falls_back(MqttConnectError(5)), protocols.falls_back(OSError("refused"))]
    after_others = protocols.protocol
    fell = protocols.falls_back(MqttConnectError(1))  # 3.1.1's unacceptable protocol version
    after_fall = protocols.protocol
    # Already on 3.1.1: the same refusal again is the broker's fault.
    again = protocols.falls_back(MqttConnectError(0x84))
    assert (first, others, after_others) == (v5, [False, False], v5)
    assert (fell, after_fall, again, protocols.protocol) == (True, v311, False, v311)
