"""The one way every part opens an MQTT session: the broker and credentials
from an ``MqttTarget``, and ``TCP_NODELAY`` on the socket."""

from __future__ import annotations

from typing import Any

import aiomqtt

from .mqtt_url import NO_DELAY, MqttTarget


def mqtt_client(target: MqttTarget, *, identifier: str, **options: Any) -> aiomqtt.Client:
    """An ``aiomqtt.Client`` for ``target``; ``options`` go to aiomqtt as they
    are (``will``, ``keepalive``, ``timeout``, ...). Use it as ``async with``."""
    return aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        identifier=identifier,
        socket_options=NO_DELAY,
        **options,
    )
