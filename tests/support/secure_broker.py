"""examples/mosquitto/ as a real broker for tests: the example's config with
its paths moved to a temporary folder and its listeners to ephemeral
loopback ports, a CA and server certificate made with ``openssl``, and a paho
client that logs in over TLS and records SUBACK codes."""

from __future__ import annotations

import getpass
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import TerminalState
from tests.support.broker import free_port, mosquitto_binary, wait_for_port
from tests.support.mqtt import Received, _no_delay
from tests.support.process import end_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mosquitto"
DEPLOYED_DIR = "/etc/mosquitto/scan2pay/"
# What mosquitto answers in a SUBACK for a subscription the ACL refuses.
SUBACK_FAILURE = 0x80


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    """A CA, and a server certificate it signs for 127.0.0.1 and localhost,
    as examples/mosquitto/README.md makes them."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    ca_extensions = [
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    ]
    run("req", "-x509", *ec, *ca_extensions, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=scan2pay test CA")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2",
        "-extfile", "server.ext")  # fmt: skip
    return Certs(directory / "ca.crt", directory / "server.crt", directory / "server.key")


class SecureMosquitto:
    """The example broker: ``dir`` plays /etc/mosquitto/scan2pay/ (passwd,
    acl, certs/); ``tls_port`` plays 8883 and ``plain_port`` 1883."""

    def __init__(self, workdir: Path, certs: Certs) -> None:
        self.binary = mosquitto_binary()
        self.dir = workdir
        self.ca = certs.ca
        self.tls_port = free_port()
        self.plain_port = free_port()
        self.log = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        (workdir / "certs").mkdir(parents=True, exist_ok=True)
        shutil.copy(certs.cert, workdir / "certs" / "server.crt")
        shutil.copy(certs.key, workdir / "certs" / "server.key")
        shutil.copy(EXAMPLE / "acl", workdir / "acl")
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(self.adapt((EXAMPLE / "mosquitto.conf").read_text()))

    def adapt(self, text: str) -> str:
        for old, new in [
            (DEPLOYED_DIR, f"{self.dir}/"),
            ("\nlistener 8883\n", f"\nlistener {self.tls_port} 127.0.0.1\n"),
            ("\nlistener 1883 127.0.0.1\n", f"\nlistener {self.plain_port} 127.0.0.1\n"),
        ]:
            assert old in text, f"examples/mosquitto/mosquitto.conf no longer has {old!r}"
            text = text.replace(old, new)
        return text + (
            # Started as root, mosquitto would become a user that cannot read
            # our folder; stay who we are.
            f"\nuser {getpass.getuser()}\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=log
            )
        try:
            wait_for_port(self.tls_port)
            wait_for_port(self.plain_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None

    def reload(self) -> None:
        """What an operator does after adding accounts: SIGHUP."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None


class Refused(Exception):
    """The broker refused the connection (CONNACK with a failure code)."""


class Client:
    """A paho MQTT 3.1.1 client, like a cashier PC's: logs in, over TLS
    verifying ``ca`` unless ``tls`` is False, and collects what arrives."""

    def __init__(
        self,
        broker: SecureMosquitto,
        username: str | None,
        password: str | None,
        *,
        tls: bool = True,
        ca: Path | None = None,
        client_id: str | None = None,
    ) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self._connected = threading.Event()
        self._connack: ReasonCode | None = None
        self._subacks: dict[int, list[int]] = {}
        self._suback = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(ca_certs=str(ca or broker.ca))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = lambda c, u, msg: self.messages.put(
            Received(msg.topic, bytes(msg.payload), bool(msg.retain))
        )
        self._client.connect(
            "127.0.0.1", broker.tls_port if tls else broker.plain_port, keepalive=10
        )
        _no_delay(self._client)
        self._client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise TimeoutError("no CONNACK")
        if self._connack is None or self._connack.is_failure:
            self.close()
            raise Refused(str(self._connack))

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: ReasonCode,
        properties: object = None,
    ) -> None:
        self._connack = reason_code
        if reason_code.is_failure:
            client.disconnect()  # no reconnect attempts: the test wants the refusal
        self._connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: object = None,
    ) -> None:
        with self._suback:
            self._subacks[mid] = [code.value for code in reason_codes]
            self._suback.notify_all()

    def subscribe(self, topic: str) -> int:
        """The SUBACK's code: the granted QoS (1), or 0x80 if refused."""
        result, mid = self._client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        with self._suback:
            if not self._suback.wait_for(lambda: mid in self._subacks, 10):
                raise TimeoutError(f"no SUBACK for {topic}")
            (code,) = self._subacks.pop(mid)
        return code

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """QoS 1, waiting for the PUBACK. A refused publish gets its PUBACK
        too (MQTT 3.1.1 has no way to say no): the broker drops it."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def next(self, timeout: float = 5.0) -> Received:
        return self.messages.get(timeout=timeout)

    def states_until(
        self, wanted: Callable[[TerminalState], bool], timeout: float, *, skip_invalid: bool = False
    ) -> list[TerminalState]:
        """The terminal states heard until one was ``wanted``, or until
        ``timeout`` seconds passed (then every state heard). An empty payload
        (a retained state cleared) is skipped; so is one that is no terminal
        state, with ``skip_invalid`` (what an earlier test left retained)."""
        seen: list[TerminalState] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.next(timeout=left).payload
            except queue.Empty:
                break
            if not payload:
                continue
            try:
                seen.append(TerminalState.from_json(payload))
            except InvalidValue:
                if skip_invalid:
                    continue
                raise
            if wanted(seen[-1]):
                return seen
        return seen

    def until_state(
        self, wanted: Callable[[TerminalState], bool], what: str, timeout: float = 20.0
    ) -> TerminalState:
        """The first terminal state heard that is ``wanted``."""
        seen = self.states_until(wanted, timeout)
        if not seen or not wanted(seen[-1]):
            raise AssertionError(f"no {what} state; saw {seen}")
        return seen[-1]

    def until(self, payload: str, timeout: float = 5.0) -> list[Received]:
        """Every message up to and including the first with ``payload``."""
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while not got or got[-1].payload != payload.encode():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{payload!r} did not arrive; got {got}")
            try:
                got.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
