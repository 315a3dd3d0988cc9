"""An MQTT broker inside the process (amqtt), so that the demo needs nothing
installed. Production and the tests use mosquitto."""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import TYPE_CHECKING

from scan2pay_common.mqtt_url import MqttTarget

if TYPE_CHECKING:
    from amqtt.broker import Broker  # imported when used: the demo extra installs it


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port(host)
        self._broker: Broker | None = None

    @property
    def target(self) -> MqttTarget:
        return MqttTarget(self.host, self.port)

    async def __aenter__(self) -> EmbeddedBroker:
        try:
            from amqtt.broker import Broker
        except ImportError as exc:
            raise RuntimeError(
                "the embedded broker needs amqtt: pip install 'scan2pay[demo]', "
                "or give --mqtt mqtt://host:port of a running broker"
            ) from exc
        # amqtt logs every connection at INFO; the demo prints its own story
        # (and warns of every MQTT 5 client it turns away: it speaks 3.1.1).
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await broker.start()
        self._broker = broker
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
