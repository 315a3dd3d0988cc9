"""Until the system clock is synchronised the terminal judges by the PSP's
time, which it learns from the ``Date`` header of the PSP's ``/healthz``.

The end-to-end test runs the real daemon with its wall clock an hour off
(``tests/support/terminal_runner.py`` hands in the clock; the machine's
clock is left alone) against a real psp-server and mosquitto, on a Nextion
display whose serial line is a loopback TCP port, so that the countdown is
read as the text the daemon sends."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware.nextion import END
from scan2pay_common.timefmt import from_rfc3339, now_ms
from terminal.clock import NEGLIGIBLE_MS, Clock
from terminal.timesync import system_clock_synced
from tests.support.broker import Mosquitto
from tests.support.commands import show_qr_of
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant
from tests.support.terminal_process import RUNNER, TERMINAL, States, TerminalProcess, send

NOON = 1_764_000_000_000  # 2025-11-24T16:00:00Z
NOON_DATE = "Mon, 24 Nov 2025 16:00:00 GMT"


class Wall:
    """A wall clock that stands still between the test's moves."""

    def __init__(self, now: int) -> None:
        self.ms = now

    def now_ms(self) -> int:
        return self.ms


def test_the_psp_date_sets_the_time_of_a_clock_not_known_to_be_synchronised() -> None:
    wall = Wall(NOON - 3_600_000)  # an hour behind
    clock = Clock(wall=wall, sync_state=lambda: None)
    assert clock.now_ms() == wall.ms  # nothing learned yet
    # Asked at wall time t, answered 200 ms later: the Date's second is
    # taken at its middle, against the middle of the round trip.
    offset = clock.learn(NOON_DATE, wall.ms, wall.ms + 200)
    assert offset == 3_600_000 + 500 - 100
    wall.ms += 200
    assert clock.now_ms() == NOON + 600
    # Once the system says its clock is synchronised, it is the clock.
    clock.check_sync()
    assert clock.now_ms() == NOON + 600
    synced = Clock(wall=wall, sync_state=lambda: True)
    synced.check_sync()
    synced.learn(NOON_DATE, wall.ms, wall.ms)
    assert synced.now_ms() == wall.ms


def test_an_offset_within_what_a_date_can_tell_is_not_applied() -> None:
    wall = Wall(NOON + 700)
    clock = Clock(wall=wall, sync_state=lambda: None)
    assert clock.learn(NOON_DATE, wall.ms, wall.ms) == -200
    assert abs(-200) < NEGLIGIBLE_MS
    assert clock.now_ms() == wall.ms


@pytest.mark.parametrize(
    ("date", "sent", "received"),
    [
        (None, NOON, NOON),
        ("yesterday", NOON, NOON),
        ("Thu, 01 Jan 1970 00:00:00 GMT", NOON, NOON),  # no PSP answers from then
        (NOON_DATE, NOON, NOON + 30_000),  # too slow an answer to time anything
        (NOON_DATE, NOON, NOON - 1),
    ],
)
def test_an_answer_that_tells_no_time_changes_nothing(
    date: str | None, sent: int, received: int
) -> None:
    wall = Wall(NOON - 3_600_000)
    clock = Clock(wall=wall, sync_state=lambda: None)
    clock.learn(NOON_DATE, wall.ms, wall.ms)
    before = clock.now_ms()
    assert clock.learn(date, sent, received) is None
    assert clock.now_ms() == before


def test_timesyncd_s_flag_says_synchronised(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    assert system_clock_synced(flag) is True


class NextionWire:
    """The serial line of a Nextion the daemon drives as
    ``nextion:socket://127.0.0.1:PORT``: what it sends, read as the texts
    of the Nextion's components."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            with connection:
                while chunk := connection.recv(65536):
                    with self._lock:
                        self.received += chunk

    def texts(self) -> dict[str, str]:
        """Each component's latest text."""
        with self._lock:
            instructions = bytes(self.received).split(END)
        texts = {}
        for instruction in instructions:
            found = re.fullmatch(rb'(\w+)\.txt="(.*)"', instruction)
            if found:
                texts[found.group(1).decode()] = found.group(2).decode("iso-8859-1")
        return texts

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def nextion() -> Iterator[NextionWire]:
    wire = NextionWire()
    yield wire
    wire.close()


def http_json(url: str, *, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
        url, data=None if body is None else json.dumps(body).encode()
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server on loopback
        return json.loads(response.read())


def seconds_of(countdown: str) -> int:
    minutes, seconds = countdown.split(":")
    return int(minutes) * 60 + int(seconds)


@pytest.mark.parametrize("skew_ms", [3_600_000, -3_600_000], ids=["an hour fast", "an hour slow"])
def test_a_terminal_with_a_wrong_clock_shows_a_fresh_ticket_with_the_right_countdown(
    broker: Mosquitto, nextion: NextionWire, tmp_path: Path, skew_ms: int
) -> None:
    db = tmp_path / "psp.db"
    merchant = create_merchant(db)
    shop = merchant["merchant_id"]
    psp = PspProcess(db)
    states = States(broker, shop)
    terminal = None
    try:
        keys = http_json(f"{psp.url}/v1/keys")
        terminal = TerminalProcess(
            broker,
            tmp_path / "frames",
            *("--psp-url", psp.public_url),
            *("--psp-public-key", keys["keys"][0]["public_key"]),
            merchant=shop,
            program=(*RUNNER, "--skew-ms", str(skew_ms), "--"),
            display=f"nextion:socket://127.0.0.1:{nextion.port}",
        )
        states.until("idle")
        wait_until(
            lambda: "using the PSP's time" in terminal.log.read_text(),
            "the PSP's time",
            timeout=20,
            every=0.05,
        )
        created = http_json(
            f"{psp.url}/v1/checkouts",
            body={"order_id": "SKEW-1", "amount": 1234, "currency": "EUR", "terminal_id": TERMINAL},
            token=merchant["api_key"],
        )
        send(broker, show_qr_of(created), shop)
        # An hour fast, the ticket would look expired; an hour slow, the
        # countdown would show an hour too much.
        assert states.until("qr").checkout_id == created["id"]

        def countdown() -> str | None:
            shown = nextion.texts().get("t2", "")
            return shown if re.fullmatch(r"\d+:\d\d", shown) else None

        shown = seconds_of(wait_until(countdown, "a countdown", timeout=20, every=0.05))
        left = (from_rfc3339(created["expires_at"]) - now_ms()) / 1000
        assert abs(shown - left) <= 3, (shown, left, nextion.texts())
    finally:
        if terminal is not None:
            assert terminal.stop() == 0, terminal.log.read_text()
        psp.stop()
        states.subscriber.close()
