"""The terminal as a systemd service that never restart-loops.

- The real daemon with a display that is not there (a panel on an I2C bus
  that does not exist) still tells systemd READY=1, reports
  ``display_error`` on its state topic and keeps serving MQTT; with a
  display that comes back it shows the current screen by itself.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scan2pay_common.messages import ShowStatus, display_command_to_json
from tests.support.broker import Mosquitto
from tests.support.terminal_process import (
    URL,
    States,
    TerminalProcess,
    decode,
    send,
    show_qr,
)


@pytest.fixture
def states(broker: Mosquitto) -> Iterator[States]:
    watcher = States(broker)
    yield watcher
    watcher.subscriber.close()


class NotifySocket:
    """systemd's end of ``$NOTIFY_SOCKET``: what the daemon tells it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.heard: list[str] = []

    def until(self, wanted: str, timeout: float = 10.0) -> None:
        """Waits for a datagram that starts with ``wanted``."""
        deadline = time.monotonic() + timeout
        while not any(said.startswith(wanted) for said in self.heard):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"systemd never heard {wanted!r}; heard {self.heard}")
            self.socket.settimeout(remaining)
            try:
                self.heard.append(self.socket.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_a_missing_panel_still_says_ready_reports_display_error_and_serves_mqtt(
    broker: Mosquitto, states: States, notify: NotifySocket, tmp_path: Path
) -> None:
    terminal = TerminalProcess(
        broker,
        tmp_path / "frames",
        *("--log-level", "DEBUG"),
        display="ssd1306:i2c:99:0x3C",  # no /dev/i2c-99: a panel on a bus that is not there
        env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"},
    )
    try:
        notify.until("READY=1")
        state = states.until("display_error")
        assert (state.online, state.checkout_id) == (True, None)
        assert state.displayed_at is not None
        notify.until("STATUS=display failing: ssd1306:i2c:99:0x3C")
        # It still takes commands in: the QR it should show is named.
        send(broker, show_qr("co_dark"))
        assert states.until("display_error").checkout_id == "co_dark"
        notify.until("WATCHDOG=1")
        assert terminal.process.poll() is None
        # Retried again and again, logged once: a journal line every few
        # seconds for a panel left unplugged would bury everything else.
        deadline = time.monotonic() + 10
        while terminal.log.read_text().count("display still failing") < 3:
            assert time.monotonic() < deadline, terminal.log.read_text()
            time.sleep(0.1)
        log = terminal.log.read_text()
        assert log.count("display failed") == 1, log
        assert "enable I2C with raspi-config" in log
    finally:
        assert terminal.stop() == 0, terminal.log.read_text()
    assert states.until("offline").online is False


def test_a_display_that_comes_back_shows_the_current_screen_by_itself(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.write_text("not a folder: the PNG display cannot open")
    terminal = TerminalProcess(broker, frames)
    try:
        assert states.until("display_error").online
        frames.unlink()  # the panel is plugged in
        assert states.until("idle").online
        assert decode(terminal.latest()) == []
        send(broker, show_qr("co_back"))
        assert states.until("qr").checkout_id == "co_back"
        assert decode(terminal.latest()) == [URL]

        # Unplugged in the middle of a checkout: the next frame fails...
        shutil.rmtree(frames)
        frames.write_text("gone")
        send(broker, display_command_to_json(ShowStatus("co_back", "paid")))
        assert states.until("display_error").checkout_id == "co_back"
        # ...and once it is back, the screen it should show is there.
        frames.unlink()
        assert states.until("paid").checkout_id == "co_back"
        assert decode(terminal.latest()) == []
        log = terminal.log.read_text()
        assert log.count("the display takes frames again") == 2, log
    finally:
        assert terminal.stop() == 0, terminal.log.read_text()
