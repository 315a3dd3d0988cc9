"""A plain paho-mqtt subscriber, as any merchant's code would use, collecting
what arrives so that tests can wait for it."""

from __future__ import annotations

import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from scan2pay_common.mqtt_url import NO_DELAY


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    def __init__(
        self,
        port: int,
        topic: str,
        *,
        client_id: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.topic = topic
        self.messages: queue.Queue[Received] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:10]}",
            clean_session=not persistent,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # paho annotates int, takes float seconds
        self._client.connect("127.0.0.1", port, keepalive=10)
        _no_delay(self._client)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"could not subscribe to {topic}")

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        rc: object,
        properties: object = None,
    ) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {len(got)} of {count} messages on {self.topic}")
            try:
                got.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def drain(self, quiet: float = 0.5) -> list[Received]:
        """Everything that arrives until ``quiet`` seconds pass with nothing new."""
        got: list[Received] = []
        while True:
            try:
                got.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return got

    def close(self) -> None:
        # Disconnect first: the network thread then ends at once instead of
        # finishing its one-second wait.
        self._client.disconnect()
        self._client.loop_stop()


def publish(port: int, topic: str, payload: bytes | str, *, retain: bool = True) -> None:
    """One QoS 1 message, as a cashier PC in any language would send it."""
    import paho.mqtt.publish as single

    single.single(topic, payload, qos=1, retain=retain, hostname="127.0.0.1", port=port)


class Publisher:
    """One connection for many QoS 1 publishes, each waited for (PUBACK)."""

    def __init__(self, port: int) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:10]}"
        )
        self._client.connect("127.0.0.1", port, keepalive=30)
        _no_delay(self._client)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = True) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _no_delay(client: mqtt.Client) -> None:
    """paho leaves Nagle on; see scan2pay_common.mqtt_url.NO_DELAY."""
    sock = client.socket()
    # paho types it as any object with recv and send; a TCP connection's is a
    # socket (an ssl.SSLSocket for mqtts).
    if isinstance(sock, socket.socket):
        for level, option, value in NO_DELAY:
            sock.setsockopt(level, option, value)
