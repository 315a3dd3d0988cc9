"""The terminal as a systemd service that never restart-loops.

- Its unit passes ``systemd-analyze verify``, waits for the network and for
  the clock, and is locked down.
- The real daemon with a display that is not there (a panel on an I2C bus
  that does not exist) still tells systemd READY=1, reports
  ``display_error`` on its state topic and keeps serving MQTT; with a
  display that comes back it shows the current screen by itself.
- It runs with memory that is both writable and executable refused, as
  ``MemoryDenyWriteExecute=yes`` runs it: Python, Pillow's PNG and drawing,
  and the Ed25519 check through ctypes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from scan2pay_common.messages import DisplayTicket, ShowQr, ShowStatus, display_command_to_json
from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import now_ms, to_rfc3339
from tests.support.broker import Mosquitto
from tests.support.notify_socket import NotifySocket
from tests.support.polling import wait_until
from tests.support.systemd_unit import unit_settings, verify_unit
from tests.support.terminal_process import (
    BIN,
    MERCHANT,
    REPO,
    TERMINAL,
    URL,
    States,
    TerminalProcess,
    decode,
    send,
    show_qr,
)

UNIT = REPO / "deploy" / "systemd" / "scan2pay-terminal.service"
PROGRAM = "/opt/scan2pay/.venv/bin/scan2pay-terminal"


@pytest.fixture
def states(broker: Mosquitto) -> Iterator[States]:
    watcher = States(broker)
    yield watcher
    watcher.subscriber.close()


def words(settings: dict[str, list[str]], key: str) -> set[str]:
    return {word for value in settings.get(key, []) for word in value.split()}


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    verify_unit(UNIT, PROGRAM, tmp_path)


def test_the_unit_waits_for_network_and_time_and_is_locked_down() -> None:
    unit = unit_settings(UNIT.read_text())
    assert {"network-online.target", "systemd-time-wait-sync.service"} <= words(unit, "Wants")
    assert {"network-online.target", "time-sync.target"} <= words(unit, "After")
    # systemd.special(7): order after time-sync.target, do not pull it in.
    assert "time-sync.target" not in words(unit, "Wants")
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # a bad configuration
    assert unit["ExecStart"] == [f"{PROGRAM} --config /etc/scan2pay/terminal.toml"]
    assert (unit["User"], unit["Group"]) == (["scan2pay"], ["scan2pay"])
    assert words(unit, "SupplementaryGroups") == {"i2c", "spi", "gpio", "dialout", "audio"}
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "DevicePolicy": "closed",
        "StateDirectory": "scan2pay",
        "ConfigurationDirectory": "scan2pay",
    }.items():
        assert unit.get(key) == [value], key
    assert words(unit, "RestrictAddressFamilies") == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert words(unit, "ReadWritePaths") == {"/var/lib/scan2pay", "/etc/scan2pay"}
    allowed = {value.split()[0] for value in unit["DeviceAllow"]}
    assert {
        *("char-i2c", "char-spi", "char-gpiochip", "char-ttyAMA", "char-ttyS"),
        *("char-ttyUSB", "char-usb", "char-alsa"),
    } <= allowed


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
        wait_until(
            lambda: terminal.log.read_text().count("display still failing") >= 3,
            lambda: f"three 'display still failing' lines: {terminal.log.read_text()}",
            every=0.1,
        )
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


def ticketed_show_qr(key: SigningKey, checkout_id: str) -> bytes:
    """A ``show_qr`` with the display ticket the PSP (``key``) signs."""
    command = ShowQr(
        checkout_id=checkout_id,
        qr_url=URL,
        amount=1234,
        currency="EUR",
        expires_at=to_rfc3339(now_ms() + 300_000),
    )
    ticket = DisplayTicket(
        checkout_id=checkout_id,
        merchant_id=MERCHANT,
        qr_url=URL,
        amount=command.amount,
        currency=command.currency,
        terminal_id=TERMINAL,
        expires_at=command.expires_at,
    )
    return display_command_to_json(replace(command, display_ticket=key.sign(ticket.to_dict())))


def test_the_daemon_runs_with_writable_executable_memory_refused(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    under_mdwe = (sys.executable, "-m", "tests.support.deny_write_execute")
    # The refusal is real: a mapping both writable and executable fails.
    probe = subprocess.run(
        [
            *under_mdwe,
            sys.executable,
            "-c",
            "import mmap as m; m.mmap(-1, 4096, prot=m.PROT_READ | m.PROT_WRITE | m.PROT_EXEC)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert probe.returncode == 1, probe.stderr
    assert "PermissionError" in probe.stderr
    key = SigningKey.generate()
    terminal = TerminalProcess(
        broker,
        tmp_path / "frames",
        *("--psp-public-key", key.public.text),
        program=(*under_mdwe, str(BIN / "scan2pay-terminal")),
    )
    try:
        states.until("idle")
        send(broker, ticketed_show_qr(key, "co_mdwe"))  # its ticket checked by libcrypto
        assert states.until("qr").checkout_id == "co_mdwe"
        assert decode(terminal.latest()) == [URL]
    finally:
        assert terminal.stop() == 0, terminal.log.read_text()
