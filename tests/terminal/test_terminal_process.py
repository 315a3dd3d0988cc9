"""``scan2pay-terminal`` as a separate process with the PNG display, against a
real mosquitto: every command gives the right frame and state message."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scan2pay_common.messages import ShowStatus, display_command_to_json
from tests.support.broker import Mosquitto
from tests.support.terminal_process import (
    BIN,
    RUNNER,
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


def test_each_command_gives_its_frame_and_state(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    terminal = TerminalProcess(broker, tmp_path / "frames")
    try:
        idle = states.until("idle")
        assert idle.online
        assert idle.displayed_at is not None
        assert decode(terminal.latest()) == []

        send(broker, show_qr("co_p1"))
        state = states.until("qr")
        assert state.checkout_id == "co_p1"
        assert decode(terminal.latest()) == [URL]

        for status in ("paid", "cancelled", "expired"):
            send(broker, show_qr(f"co_{status}"))
            states.until("qr")
            qr_frame = terminal.latest().tobytes()
            send(broker, display_command_to_json(ShowStatus(f"co_{status}", status)))
            state = states.until(status)
            assert state.checkout_id == f"co_{status}"
            outcome = terminal.latest()
            assert outcome.tobytes() != qr_frame
            assert decode(outcome) == []

        send(broker, b'{"type": "idle"}')
        states.until("idle")

        send(broker, b"\x00 garbage {")
        send(broker, show_qr("co_after"))
        assert states.until("qr").checkout_id == "co_after"
        assert terminal.process.poll() is None
    finally:
        assert terminal.stop() == 0, terminal.log.read_text()
    offline = states.until("offline")
    assert offline.online is False


def test_a_restarted_terminal_shows_the_retained_qr(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    first = TerminalProcess(broker, tmp_path / "one")
    try:
        states.until("idle")
        send(broker, show_qr("co_r"))
        states.until("qr")
    finally:
        first.stop()
    states.until("offline")
    second = TerminalProcess(broker, tmp_path / "two")
    try:
        assert states.until("qr").checkout_id == "co_r"
        assert decode(second.latest()) == [URL]
    finally:
        second.stop()


def test_a_killed_terminal_is_reported_offline_by_its_last_will(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    terminal = TerminalProcess(broker, tmp_path / "frames")
    states.until("idle")
    terminal.stop(signal.SIGKILL)
    offline = states.until("offline", timeout=40)  # keepalive 15 s x 1.5
    assert json.loads(offline.to_json()) == {
        "online": False,
        "screen": "offline",
        "checkout_id": None,
        "displayed_at": None,
    }


def test_bad_configuration_is_reported_all_at_once(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text('mqtt = "http://nope"\nterminal = "lane/1"\ncolour = "red"\n')
    result = subprocess.run(
        [
            str(BIN / "scan2pay-terminal"),
            "--config",
            str(config),
            "--display",
            "warp9:x",
            "--idle-after",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    for needle in (
        "unknown key 'colour'",
        "mqtt (--mqtt, SCAN2PAY_MQTT)",
        "merchant (--merchant, SCAN2PAY_MERCHANT): missing",
        "terminal (--terminal",
        "display (--display",
        "idle_after",
    ):
        assert needle in result.stderr, result.stderr


def test_a_bare_url_gives_the_qr_frame_and_the_checkout_from_the_psp(
    broker: Mosquitto, tmp_path: Path
) -> None:
    from tests.support.process import PspProcess, create_merchant

    db = tmp_path / "psp.db"
    merchant = create_merchant(db)
    shop = merchant["merchant_id"]
    psp = PspProcess(db)
    # The terminal believes the PSP's answer only if it names its merchant.
    states = States(broker, shop)
    terminal = TerminalProcess(
        broker, tmp_path / "frames", "--psp-url", psp.public_url, merchant=shop
    )
    try:
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
            f"{psp.url}/v1/checkouts",
            method="POST",
            data=json.dumps({"order_id": "BARE-1", "amount": 1500, "currency": "KWD"}).encode(),
            headers={"Authorization": f"Bearer {merchant['api_key']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server on loopback
            checkout = json.loads(response.read())
        states.until("idle")
        send(broker, checkout["qr_url"], shop)  # a plain string, no JSON
        state = states.until("qr")
        while state.checkout_id != checkout["id"]:  # known once the PSP has answered
            state = states.until("qr")
        assert decode(terminal.latest()) == [checkout["qr_url"]]
    finally:
        terminal.stop()
        psp.stop()
        states.subscriber.close()


def test_systemd_hears_ready_watchdog_and_stopping(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(10)
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
        terminal = TerminalProcess(broker, tmp_path / "frames", env=env)
        try:
            heard: set[str] = set()
            while not {"READY=1", "WATCHDOG=1"} <= heard:
                heard.add(listener.recv(256).decode())
            states.until("idle")
        finally:
            assert terminal.stop() == 0
        while "STOPPING=1" not in heard:
            heard.add(listener.recv(256).decode())


def test_a_hung_event_loop_stops_the_watchdog_pings(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    """The pings come from a task of the event loop, not from a thread of
    their own: a loop that hangs stops them, and systemd (WatchdogSec) kills
    and restarts the daemon."""
    hang = 3.0
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(10)
        terminal = TerminalProcess(
            broker,
            tmp_path / "frames",
            program=(*RUNNER, "--hang-on-usr1", str(hang), "--"),
            # A ping every 0.1 s.
            env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"},
        )
        try:
            heard: set[bytes] = set()
            while not {b"READY=1", b"WATCHDOG=1"} <= heard:
                heard.add(listener.recv(256))
            states.until("idle")
            terminal.process.send_signal(signal.SIGUSR1)
            # Datagrams keep their order: whatever came before this was sent
            # before the loop hung.
            while listener.recv(256) != b"X-HUNG=1":
                pass
            hung_at = time.monotonic()
            # Nothing from the loop while it hangs (a child it started, or a
            # thread, may still say something of its own: not a ping).
            heard_while_hung = datagrams_until(listener, hung_at + hang - 0.5)
            assert b"WATCHDOG=1" not in heard_while_hung, heard_while_hung
            # The loop runs again, and so do the pings.
            listener.settimeout(5)
            while listener.recv(256) != b"WATCHDOG=1":
                pass
            assert time.monotonic() - hung_at >= hang - 0.5
        finally:
            assert terminal.stop() == 0, terminal.log.read_text()


def test_a_terminal_killed_mid_checkout_comes_back_on_the_right_screen(
    broker: Mosquitto, states: States, tmp_path: Path
) -> None:
    terminal = TerminalProcess(broker, tmp_path / "one")
    states.until("idle")
    send(broker, show_qr("co_mid"))
    states.until("qr")
    terminal.stop(signal.SIGKILL)
    states.until("offline")
    # While it is gone the customer pays and the cashier says so.
    send(broker, display_command_to_json(ShowStatus("co_mid", "paid")))
    started = time.monotonic()
    again = TerminalProcess(broker, tmp_path / "two")
    try:
        state = states.until("paid")
        seconds = time.monotonic() - started
        print(f"\nrestarted terminal on the paid screen {seconds:.2f} s after its start")
        assert state.checkout_id == "co_mid"
        assert seconds < 2.0
    finally:
        again.stop()


def datagrams_until(listener: socket.socket, deadline: float) -> list[bytes]:
    """What arrives until ``deadline`` (on the monotonic clock)."""
    heard: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        listener.settimeout(left)
        try:
            heard.append(listener.recv(256))
        except TimeoutError:
            break
    return heard
