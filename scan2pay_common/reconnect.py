"""One MQTT connection kept up: connect, hand the client to a session, and
after a drop wait a jittered backoff and connect again.

Every long-lived part (the PSP's relay and presence, the terminal, the
cashier bridge) keeps a connection like this; ``Reconnecting`` is the one
loop they share, so that they back off, reset and log alike:

- the backoff resets after a healthy session (one that lasted
  ``healthy_after`` seconds), not merely on connecting: a broker that takes
  the connection and drops it at once (an ACL, a client id taken over) is
  retried with growing delays rather than in a tight loop;
- each change of state is logged once: connected, lost, and a failure to
  connect again only when its reason differs from the last one logged. A
  broker away overnight costs the log a line, not one per attempt.

A caller gives a ``connect`` factory (called for each attempt, so that an
attempt can change the client id or the protocol) and a ``session`` coroutine
that uses the connected client until the connection fails; ``on_drop`` says
what to do about an error: back off (the default), go on at once, wait a
delay of the caller's, or stop. For a part that publishes on a long-lived
connection, ``client`` is the connected client (None while down) and
``connected()`` waits for one; a ``prepare`` coroutine (subscribing, say)
runs on each new client before it is offered, so that whoever waits for the
connection finds it ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from .aio import honour_cancellation
from .backoff import Backoff
from .logtext import loggable

C = TypeVar("C")

# A session that lasted this long was healthy: the next drop starts the
# backoff again from its initial delay.
HEALTHY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class Next:
    """What ``Reconnecting`` does after an error: stop, or connect again
    after ``delay`` seconds (None: the backoff's next jittered delay).
    ``log_drop``: whether the error is logged as the broker's; False when
    the caller said what happened itself."""

    stop: bool = False
    delay: float | None = None
    log_drop: bool = True

    def __post_init__(self) -> None:
        if self.delay is not None and not self.delay >= 0:
            raise ValueError(f"a reconnect delay must be 0 or more, not {self.delay!r}")
        if self.stop and (self.delay is not None or self.log_drop):
            raise ValueError("a stop has no delay and logs nothing")

    @staticmethod
    def after(delay: float) -> Next:
        """Connect again after ``delay`` seconds, the caller's own, saying nothing."""
        return Next(delay=delay, log_drop=False)


BACK_OFF = Next()  # the broker's fault: logged once, the jittered backoff's delay
QUIETLY = Next(log_drop=False)  # the backoff's delay; the caller logged the error
AT_ONCE = Next(delay=0.0, log_drop=False)  # e.g. the caller changed the protocol
STOP = Next(stop=True, log_drop=False)

OnDrop = Callable[[Exception], Awaitable[Next]]
# What a part's loop treats as a lost or unreachable broker by default.
BROKER_ERRORS: tuple[type[Exception], ...] = (aiomqtt.MqttError, OSError)


async def back_off(exc: Exception) -> Next:
    """The default ``on_drop``: every handled error is the broker's."""
    return BACK_OFF


class Reconnecting(Generic[C]):
    """Keeps one connection made by ``connect`` up for ``session`` (see
    ``run``). ``name`` and ``target`` say whose connection to where in log
    lines (an ``MqttTarget`` shows no password). Errors of a ``handles``
    type end a session or an attempt and go to ``on_drop``, called inside
    the ``except`` (so it may ``log.exception``); any other propagates.
    ``prepare`` is awaited with each new client before the client is
    offered (``client``, ``connected()``), counted in ``sessions`` and given
    to the session; its errors are handled as the session's.
    ``sleep``, ``clock`` and the backoff's ``rng`` are there for tests."""

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[C]],
        *,
        name: str,
        target: object,
        log: logging.Logger,
        backoff: Backoff | None = None,
        handles: tuple[type[Exception], ...] = BROKER_ERRORS,
        on_drop: OnDrop = back_off,
        prepare: Callable[[C], Awaitable[object]] | None = None,
        healthy_after: float = HEALTHY_AFTER,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._name = name
        self._target = target
        self._log = log
        self._backoff = backoff or Backoff()
        self._handles = handles
        self._on_drop = on_drop
        self._prepare = prepare
        self._healthy_after = healthy_after
        self._sleep = sleep
        self._clock = clock
        self._client: C | None = None
        self._up = asyncio.Event()
        # The reason of the last failure to connect that was logged; None
        # while connected, so the first failure after a session is logged.
        self._said: str | None = None
        self.sessions = 0  # connections made (and prepared) so far

    @property
    def client(self) -> C | None:
        """The connected client, or None while there is none."""
        return self._client

    @property
    def up(self) -> bool:
        return self._client is not None

    async def connected(self) -> C:
        """The connected client, once there is one."""
        while self._client is None:
            await self._up.wait()
        return self._client

    async def run(self, session: Callable[[C], Awaitable[None]]) -> None:
        """Connects, awaits ``session(client)`` and, when the connection or
        the session fails, waits and connects again, until ``on_drop``
        says stop (then returns), ``session`` returns (its work is done),
        or the task is cancelled."""
        while True:
            # aiomqtt's waits can swallow a cancellation (Python 3.11's
            # wait_for); the request is still counted, so stop here.
            honour_cancellation()
            started: float | None = None
            try:
                async with self._connect() as client:
                    # The connection's and the prepare step's waits can
                    # swallow it too; a session would then outlive its task.
                    honour_cancellation()
                    started = self._clock()
                    if self._prepare is not None:
                        await self._prepare(client)
                        honour_cancellation()
                    self._connected(client)
                    try:
                        await session(client)
                    finally:
                        self._down()
                return
            except self._handles as exc:
                if started is not None and self._clock() - started >= self._healthy_after:
                    self._backoff.reset()
                then = await self._on_drop(exc)
                if then.stop:
                    return
                delay = self._backoff.next_delay() if then.delay is None else then.delay
                if then.log_drop:
                    self._log_drop(exc, delay, had_session=started is not None)
            await self._sleep(delay)

    def _connected(self, client: C) -> None:
        self.sessions += 1
        self._said = None
        self._client = client
        self._up.set()
        self._log.info("%s connected to %s", self._name, self._target)

    def _down(self) -> None:
        self._client = None
        self._up.clear()

    def _log_drop(self, exc: Exception, delay: float, *, had_session: bool) -> None:
        reason = loggable(f"{exc}" or type(exc).__name__)
        if had_session:
            self._log.warning(
                "%s lost the broker at %s: %s; reconnecting in %.2fs",
                self._name,
                self._target,
                reason,
                delay,
            )
            self._said = reason
        elif reason != self._said:
            # Never connected: likely a setting; after a session: the broker's outage.
            level = logging.WARNING if self.sessions == 0 else logging.INFO
            self._log.log(
                level,
                "%s cannot reach the broker at %s: %s; retrying in %.2fs, and with "
                "backoff until it can (said again only if the reason changes)",
                self._name,
                self._target,
                reason,
                delay,
            )
            self._said = reason
        else:
            self._log.debug("%s: still %s; retrying in %.2fs", self._name, reason, delay)


# CONNACK codes of a broker that does not take MQTT 5: 3.1.1's "unacceptable
# protocol version" and 5's "unsupported protocol version".
_NO_MQTT5 = (1, 0x84)


def speaks_no_mqtt5(exc: MqttConnectError) -> bool:
    """Whether a refused CONNECT says the broker takes only MQTT 3.1.1."""
    rc = getattr(exc.rc, "value", exc.rc)  # a ReasonCode or an int
    return rc in _NO_MQTT5


class Mqtt5First:
    """The protocol to connect with: MQTT 5 first, and 3.1.1 from the first
    CONNECT a broker refuses for speaking only that (the demo's embedded
    broker does). A part's ``connect`` asks for ``protocol``; its
    ``on_drop`` asks ``falls_back`` first, and goes on at once when it
    does."""

    def __init__(self) -> None:
        self.protocol = aiomqtt.ProtocolVersion.V5

    def falls_back(self, exc: Exception) -> bool:
        """Whether ``exc`` is a broker refusing MQTT 5 while we asked for
        it; ``protocol`` is then 3.1.1, for every connection after."""
        if (
            isinstance(exc, MqttConnectError)
            and self.protocol is aiomqtt.ProtocolVersion.V5
            and speaks_no_mqtt5(exc)
        ):
            self.protocol = aiomqtt.ProtocolVersion.V311
            return True
        return False
