"""How many terminals are online over all merchants, for ``/metrics``.

Presence (``presence.py``) keeps whole states, and only of the merchants
whose board is open. The census subscribes to every terminal's state topic
and keeps one thing per terminal online: a 64-bit digest of its topic, in a
set (about 60 bytes a terminal: 60 MB for a million). It says a number,
never which terminals: a national deployment would otherwise make millions
of series.

Each new session starts the count again: the broker sends every retained
state on subscribing, and a state cleared while the PSP was away must not
linger."""

from __future__ import annotations

import logging
import uuid

import aiomqtt

from scan2pay_common.aio import honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.errors import InvalidValue
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
from scan2pay_common.topics import every_state_topic

log = logging.getLogger(__name__)


class OnlineCount:
    """The terminals whose last state said online. No I/O: fed (topic,
    payload) pairs; a payload off the contract changes nothing."""

    def __init__(self) -> None:
        self._online: set[int] = set()

    def __len__(self) -> int:
        return len(self._online)

    def clear(self) -> None:
        self._online.clear()

    def apply(self, topic: str, payload: bytes) -> None:
        key = hash(topic)  # salted per process, which is all the set needs
        if not payload:  # a retained state cleared: the terminal is gone
            self._online.discard(key)
            return
        try:
            online = TerminalState.from_json(payload).online
        except InvalidValue:
            return  # presence logs malformed states; the census just skips them
        if online:
            self._online.add(key)
        else:
            self._online.discard(key)


class Census:
    """The count over one MQTT session; ``run()`` keeps it up, ``online``
    is the count, None while no session is up (the count would be stale)."""

    def __init__(self, target: MqttTarget) -> None:
        self._target = target
        self._count = OnlineCount()
        self._up = False
        self._mqtt5_first = Mqtt5First()
        self._link = Reconnecting(
            self._connect,
            name="terminal census",
            target=target,
            log=log,
            backoff=Backoff(initial=0.05, maximum=5.0),
            handles=(Exception,),
            on_drop=self._dropped,
        )

    @property
    def online(self) -> int | None:
        return len(self._count) if self._up else None

    async def run(self) -> None:
        await self._link.run(self._session)

    def _connect(self) -> aiomqtt.Client:
        return mqtt_client(
            self._target,
            identifier=f"scan2pay-psp-census-{uuid.uuid4().hex[:12]}",
            timeout=10,
            protocol=self._mqtt5_first.protocol,
        )

    async def _dropped(self, exc: Exception) -> Next:
        self._up = False
        if self._mqtt5_first.falls_back(exc):
            return AT_ONCE
        if isinstance(exc, aiomqtt.MqttError | OSError):
            return BACK_OFF
        log.exception("terminal census failed; starting over")
        return QUIETLY

    async def _session(self, client: aiomqtt.Client) -> None:
        self._count.clear()
        await client.subscribe(every_state_topic(), qos=1)
        # subscribe's wait can swallow a cancellation (Python 3.11's
        # wait_for): without this the loop below would outlive the app's
        # shutdown, as it once did with the broker just back.
        honour_cancellation()
        self._up = True
        try:
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    self._count.apply(str(message.topic), bytes(payload))
        finally:
            self._up = False
        raise aiomqtt.MqttError("the message stream ended")
