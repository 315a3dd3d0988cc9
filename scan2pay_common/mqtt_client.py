"""The one way every part opens an MQTT session: the broker and credentials
from an ``MqttTarget``, TLS for ``mqtts://``, and ``TCP_NODELAY`` on the socket."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

import aiomqtt

from .mqtt_url import NO_DELAY, MqttTarget

# A PEM file of the CA that signed the broker's certificate, for a broker
# whose certificate the system's trust store does not know (a private CA).
CA_ENV = "SCAN2PAY_MQTT_CA"


def tls_context(
    env: Mapping[str, str] | None = None, *, ca_file: str | None = None
) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name: against ``ca_file``
    (a part's own setting, like a paired terminal's), else the CA file in
    ``SCAN2PAY_MQTT_CA`` if set, else the system's trust store."""
    env = os.environ if env is None else env
    return ssl.create_default_context(cafile=ca_file or env.get(CA_ENV) or None)


def mqtt_client(
    target: MqttTarget, *, identifier: str, ca_file: str | None = None, **options: Any
) -> aiomqtt.Client:
    """An ``aiomqtt.Client`` for ``target``; ``options`` go to aiomqtt as they
    are (``will``, ``keepalive``, ``timeout``, ...). Use it as ``async with``."""
    if target.tls:
        options.setdefault("tls_context", tls_context(ca_file=ca_file))
    return aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        identifier=identifier,
        socket_options=NO_DELAY,
        **options,
    )
