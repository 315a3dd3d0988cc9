"""Shared parts of the cashier-bridge tests (no tests here): a real terminal
daemon in this process, the bridge's CLI as a process, a collector of steps,
and a TCP proxy that loses the PSP's answer to the first create."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cashier_bridge.model import BridgeConfig, Step
from hardware.base import DummyDisplay
from scan2pay_common.messages import TerminalState, parse_display_command
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.topics import display_topic, state_topic
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.polling import until
from tests.support.psp import Merchant, Psp

BIN = Path(sys.executable).parent
TERMINAL = "lane-1"


def bridge_config(psp: Psp, merchant: Merchant, mqtt_url: str, **overrides: Any) -> BridgeConfig:
    """Short timeouts: every test that waits, waits for a reason."""
    config = BridgeConfig(
        psp_url=psp.url,
        merchant_key=merchant.key,
        mqtt=MqttTarget.parse(mqtt_url),
        terminal_id=TERMINAL,
        screen_timeout=3.0,
        psp_timeout=3.0,
        poll_interval=5.0,
        mqtt_timeout=3.0,
    )
    return replace(config, **overrides)


def code_of_url(qr_url: str) -> str:
    return qr_url.rsplit("/Q/", 1)[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Steps:
    """Collects a flow's steps (pass ``add`` as on_step) and waits for one."""

    seen: list[Step] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, step: Step) -> None:
        self.seen.append(step)
        self._arrived.set()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.seen]

    def first(self, name: str) -> Step:
        return next(s for s in self.seen if s.name == name)

    async def wait_for(self, name: str, timeout: float = 10.0) -> Step:
        async with asyncio.timeout(timeout):
            while True:
                for step in self.seen:
                    if step.name == name:
                        return step
                self._arrived.clear()
                await self._arrived.wait()


# A real terminal.


@dataclass
class Terminal:
    daemon: TerminalDaemon
    display: DummyDisplay

    async def until_screen(
        self, screen: str, checkout_id: str | None = None, timeout: float = 10.0
    ) -> TerminalState:
        """What the terminal has really drawn (its own state), not what was asked."""

        def drawn() -> TerminalState | None:
            state = self.daemon.state
            if state is None or state.screen != screen:
                return None
            return state if checkout_id in (None, state.checkout_id) else None

        shown: TerminalState = await until(
            drawn, what=f"{screen} for {checkout_id or 'any checkout'}", timeout=timeout
        )
        return shown


@contextlib.asynccontextmanager
async def running_terminal(
    broker: Mosquitto, merchant_id: str, terminal_id: str = TERMINAL, **config: Any
) -> AsyncIterator[Terminal]:
    """The terminal daemon in this loop, online (its state published) before
    the test goes on. ``config``: more TerminalConfig fields (its PSP keys)."""
    states = Subscriber(broker.port, state_topic(merchant_id, terminal_id))
    display = DummyDisplay(geometry=None)
    daemon = TerminalDaemon(
        TerminalConfig(
            mqtt=MqttTarget.parse(broker.url),
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            name="Bridge Test",
            idle_after=600.0,  # an outcome stays on screen for the test to see
            **config,
        ),
        display,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        while True:
            (message,) = await asyncio.to_thread(states.wait_for, 1, 10.0)
            if TerminalState.from_json(message.payload).online:
                break
        yield Terminal(daemon, display)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        states.close()


def retained_display(
    broker: Mosquitto, merchant_id: str, terminal_id: str = TERMINAL, *, timeout: float = 5.0
) -> str | None:
    """The ``type`` of the display command the broker keeps for the
    terminal; None if it keeps none (nothing came within ``timeout``)."""
    subscriber = Subscriber(broker.port, display_topic(merchant_id, terminal_id))
    try:
        (message,) = subscriber.wait_for(1, timeout)
    except TimeoutError:
        return None
    finally:
        subscriber.close()
    assert message.retain
    return parse_display_command(message.payload).type


# The CLI as a process.


def bridge_env(**extra: str) -> dict[str, str]:
    """This environment without any SCAN2PAY_ setting of the machine's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAN2PAY_")}
    return {**env, **extra}


class BridgeProcess:
    """``cashier-bridge`` with its output read as it comes (both pipes are
    drained all along, so that DEBUG logging cannot fill one and block it)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.stderr = bytearray()
        self._new_line = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> BridgeProcess:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "cashier-bridge"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._new_line.set()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.stderr += chunk

    @property
    def steps(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    async def wait_for_step(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for step in self.steps:
                    if step["step"] == name:
                        return step
                if self.process.returncode is not None:
                    raise AssertionError(f"exited without {name}: {self.output()}")
                self._new_line.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self._new_line.wait()

    async def until_line(self, prefix: str = "", timeout: float = 10.0) -> str:
        """The first line of output that starts with ``prefix``; fails with
        all the output if the process ends first."""

        def printed() -> str | None:
            line = next((line for line in self.lines if line.startswith(prefix)), None)
            if line is None and self.process.returncode is not None:
                raise AssertionError(f"exited without a line {prefix!r}: {self.output()}")
            return line

        found: str = await until(printed, what=f"a line {prefix!r}", timeout=timeout, every=0.02)
        return found

    async def finish(self, timeout: float = 20.0) -> int:
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"cashier-bridge did not end: {self.output()}") from None
        return code

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.stderr.decode(errors="replace")


# A proxy that loses one answer.


class AnswerDroppingProxy:
    """Forwards TCP to the PSP. The first ``POST /v1/checkouts`` reaches the
    PSP, but its connection is cut as the answer comes back: the checkout
    exists and the client does not know it, which is what a retry is for."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AnswerDroppingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        drop_answer = asyncio.Event()

        async def to_psp() -> None:
            while data := await reader.read(65536):
                if not self.dropped and b"POST /v1/checkouts " in data:
                    self.dropped += 1
                    drop_answer.set()
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if drop_answer.is_set():
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()

        # When either side is done, so is the other.
        pumps = [asyncio.create_task(to_psp()), asyncio.create_task(to_client())]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for stream in (writer, up_writer):
            stream.transport.abort()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
