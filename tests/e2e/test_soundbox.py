"""The soundbox end to end, every part a real process: the example broker
over TLS with its ACL, ``psp-server serve``, and ``scan2pay-terminal``
paired with it and run with ``--audio wav:DIR``, which writes each
announcement as a WAV file with its words beside it.

- A real payment at the till makes exactly one WAV: speech of the
  expected length, not silence, saying the amount in its currency's minor
  units (EUR, JPY, KWD).
- The same signed event again (on either topic, retained), a forged one, an
  unsigned one and one on the display topic make no file; the refused are
  logged and counted.
- A restart says nothing again; a payment made while the terminal was off,
  or while the broker was down, is said once, as "Received earlier".
- A payment missed while the terminal was off and older than
  ``--speak-within`` is shown on the idle screen (read off the ``png:``
  display's frames) and makes no WAV; a restart does not show it again.

Each test's WAVs are copied to test-results/soundbox/e2e/TEST/.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scan2pay_common import jsonfields
from scan2pay_common.timefmt import from_rfc3339, now_ms
from scan2pay_common.topics import (
    display_topic,
    state_topic,
    terminal_events_topic,
)
from terminal.screens import RECEIVED_EARLIER, EarlierPayment, earlier_text
from tests.support.pairing import PairingWorld, Terminal, pairing_world
from tests.support.plain_http import http
from tests.support.polling import wait_until
from tests.support.process import create_wallet
from tests.support.screen_text import reads
from tests.support.secure_broker import Certs, Client, make_certs
from tests.support.sound import RESULTS, heard, require_espeak

pytestmark = pytest.mark.broker

LANE = "lane-1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def world(tmp_path: Path, certs: Certs) -> Iterator[PairingWorld]:
    require_espeak()
    with pairing_world(tmp_path / "world", certs) as made:
        yield made


class Till:
    """The paired terminal of the world's first merchant, its sounds, and
    a cashier that hears its state."""

    def __init__(self, world: PairingWorld, workdir: Path) -> None:
        self.world = world
        self.merchant = world.merchants[0]
        self.workdir = workdir
        self.sounds = workdir / "sounds"
        self.extra: list[str] = []  # more flags, from the next restart on
        self.cashier = world.cashier(self.merchant["merchant_id"])
        assert self.cashier.subscribe(state_topic(self.merchant["merchant_id"], LANE)) == 1
        self.terminal = Terminal(workdir, "pair", "--psp-url", world.psp.url, *self.flags())
        code = self.terminal.pairing_code()
        approved = world.cli(
            "approve", code, "--merchant", self.merchant["merchant_id"], "--terminal", LANE
        )
        assert approved.returncode == 0, approved.stderr
        self.online()

    def flags(self) -> list[str]:
        return [
            *("--audio", f"wav:{self.sounds}", "--sound-dir", str(self.workdir / "sound")),
            *("--late-after", "2"),
            *self.extra,
        ]

    def online(self) -> None:
        self.cashier.until_state(lambda s: s.online and s.screen == "idle", "online idle", 30)

    def restart(self) -> None:
        self.terminal.stop()
        self.terminal = Terminal(self.workdir, *self.flags(), config=self.terminal.config)

    def sell(
        self, amount: int, currency: str = "EUR", wallet_token: str | None = None
    ) -> dict[str, Any]:
        """A checkout for this till, paid by a wallet; the PSP's answer to it."""
        status, created = http(
            "POST",
            f"{self.world.psp.url}/v1/checkouts",
            {
                "order_id": f"S-{time.monotonic_ns()}",
                "amount": amount,
                "currency": currency,
                "terminal_id": LANE,
            },
            self.merchant["api_key"],
        )
        assert status == 201, created
        status, paid = http(
            "POST",
            f"{self.world.psp.url}/v1/payments",
            {"code": created["qr_url"].rsplit("/Q/", 1)[1]},
            wallet_token or self.world.wallet_token,
        )
        assert status == 201, paid
        return dict(created)

    def said(self, count: int, timeout: float = 20.0) -> list[str]:
        """The words of the first ``count`` announcements, once there are that many."""
        wait_until(
            lambda: len(heard(self.sounds)) >= count if self.sounds.exists() else False,
            lambda: f"{count} announcements; log:\n{self.terminal.log()[-3000:]}",
            timeout,
        )
        return [h.text for h in heard(self.sounds)]

    def paid_event(self, checkout_id: str) -> dict[str, Any]:
        """The PSP's signed checkout.paid event of ``checkout_id``, as published."""
        status, page = http(
            "GET", f"{self.world.psp.url}/v1/events?limit=1000", token=self.merchant["api_key"]
        )
        assert status == 200, page
        (event,) = [
            e
            for e in page["events"]
            if e["type"] == "checkout.paid" and e["checkout"]["id"] == checkout_id
        ]
        return dict(event)

    def shows(self, text: str) -> bool:
        """Whether the display's newest frame reads ``text``."""
        latest = self.terminal.frames / "latest.png"
        try:
            with Image.open(latest) as frame:
                return reads(frame.copy(), text)
        except OSError:  # none yet, or caught mid-write
            return False

    def close(self) -> None:
        self.terminal.stop()
        self.cashier.close()


@pytest.fixture
def till(world: PairingWorld, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Till]:
    made = Till(world, tmp_path / "till")
    try:
        yield made
    finally:
        made.close()
        # What the daemon said, kept for a person to hear.
        kept = RESULTS / "e2e" / request.node.name
        shutil.rmtree(kept, ignore_errors=True)
        if made.sounds.exists():
            shutil.copytree(made.sounds, kept)


def test_a_payment_makes_one_wav_of_speech_and_fakes_or_repeats_make_none(
    world: PairingWorld, till: Till
) -> None:
    sold = till.sell(1234)
    assert till.said(1) == ["Received twelve euros thirty-four"]
    (first,) = heard(till.sounds)
    assert 1.5 < first.seconds < 8.0, first
    assert first.rms > 500, first  # speech, not silence (a silent file is 0)

    merchant_id = till.merchant["merchant_id"]
    event = till.paid_event(sold["id"])
    psp = Client(world.broker, "psp", world.passwords["psp"])
    try:
        # The real event again: on the terminal's topic, twice, once retained
        # (the merchant's topic is heard only while an untied QR shows).
        real = jsonfields.dumps(event)
        psp.publish(terminal_events_topic(merchant_id, LANE), real.decode())
        psp.publish(terminal_events_topic(merchant_id, LANE), real.decode())
        psp.publish(terminal_events_topic(merchant_id, LANE), real.decode(), retain=True)
        # A forged amount under the real signature; a new event with none.
        forged = {**event, "checkout": {**event["checkout"], "amount": 99900}}
        unsigned = {k: v for k, v in event.items() if k != "signature"}
        unsigned["event_id"] = "evt_" + "f" * 26
        psp.publish(terminal_events_topic(merchant_id, LANE), jsonfields.dumps(forged).decode())
        psp.publish(terminal_events_topic(merchant_id, LANE), jsonfields.dumps(unsigned).decode())
    finally:
        psp.close()
    # And one where the cashier may write: the display topic.
    till.cashier.publish(display_topic(merchant_id, LANE), json.dumps(unsigned))
    wait_until(
        lambda: "(3 refused so far)" in till.terminal.log(),
        lambda: f"three refusals; log:\n{till.terminal.log()[-3000:]}",
    )
    log = till.terminal.log()
    assert "not announced: a checkout.paid event on" in log
    assert "its signature is missing or not the PSP's" in log
    assert "not announced: an event on the display topic" in log

    # The sound thread takes one event after the other: once the next
    # payment is said, every repeat before it has been dropped.
    till.sell(500)
    assert till.said(2) == ["Received twelve euros thirty-four", "Received five euros"]
    time.sleep(0.5)
    assert len(heard(till.sounds)) == 2


def test_amounts_follow_their_currencys_minor_units(world: PairingWorld, till: Till) -> None:
    db = world.db
    jpy = create_wallet(db, "JPY", "100000")
    kwd = create_wallet(db, "KWD", "100.000")
    till.sell(1200, "JPY", jpy["token"])
    till.sell(1500, "KWD", kwd["token"])
    till.sell(205, "EUR")
    assert till.said(3) == [
        "Received one thousand, two hundred yen",
        "Received one Kuwaiti dinar five hundred",
        "Received two euros five",
    ]


def test_a_restart_says_nothing_again_and_a_missed_payment_once_as_earlier(
    world: PairingWorld, till: Till
) -> None:
    till.sell(1234)
    assert till.said(1) == ["Received twelve euros thirty-four"]
    till.restart()
    till.online()
    till.sell(100)  # said after anything the restart might have said again
    assert till.said(2) == ["Received twelve euros thirty-four", "Received one euro"]

    till.terminal.stop()
    till.sell(4200)  # while the terminal is off
    till.restart()
    till.online()
    assert till.said(3)[2] == "Received earlier: forty-two euros"
    till.restart()
    till.online()
    till.sell(700)
    assert till.said(4)[2:] == ["Received earlier: forty-two euros", "Received seven euros"]
    time.sleep(0.5)
    assert len(heard(till.sounds)) == 4
    assert "announced checkout.paid" in till.terminal.log()


def test_a_payment_during_a_broker_outage_is_said_once_when_it_is_back(
    world: PairingWorld, till: Till
) -> None:
    till.sell(1000)
    assert till.said(1) == ["Received ten euros"]
    world.broker.stop()
    till.sell(2500)  # the PSP takes it; nobody hears of it now
    time.sleep(2.5)  # longer than --late-after
    assert len(heard(till.sounds)) == 1
    world.broker.start()
    assert till.said(2, timeout=40) == ["Received ten euros", "Received earlier: twenty-five euros"]
    # The PSP's relay back on the broker too: the next payment is heard live.
    wait_until(lambda: http("GET", f"{world.psp.url}/healthz")[1].get("mqtt") == "connected")
    till.sell(300)
    assert till.said(3)[2] == "Received three euros"
    time.sleep(0.5)
    assert len(heard(till.sounds)) == 3


def test_a_payment_typed_at_the_tills_printed_code_is_said_once_and_its_creation_not(
    world: PairingWorld, till: Till
) -> None:
    psp = world.psp.url
    status, made = http(
        "POST",
        f"{psp}/v1/terminals/{LANE}/static-codes",
        {"label": "Counter 1", "open_amount": {"currency": "EUR", "min": 100, "max": 5000}},
        till.merchant["api_key"],
    )
    assert status == 201, made
    scanned = made["url"].replace("HTTP://", "http://")
    status, checkout = http("POST", f"{scanned}/checkouts", {"amount": 1250})
    assert status == 201, checkout
    # The PSP's signed checkout.created has reached the terminal: it shows
    # the typed checkout, pending. It is no payment, and says nothing.
    till.cashier.until_state(
        lambda s: s.screen == "qr" and s.checkout_id == checkout["id"], "the typed checkout", 20
    )
    status, paid = http(
        "POST", f"{psp}/v1/payments", {"code": checkout["code"]}, world.wallet_token
    )
    assert status == 201, paid
    assert till.said(1) == ["Received twelve euros fifty"]
    (said,) = heard(till.sounds)
    assert 1.5 < said.seconds < 8.0, said
    assert said.rms > 500, said
    till.cashier.until_state(
        lambda s: s.screen == "paid" and s.checkout_id == checkout["id"], "Paid", 20
    )
    # The sound thread takes the till's events in order: the created event
    # came before the payment that was said, and made no file.
    status, page = http("GET", f"{psp}/v1/events?limit=1000", token=till.merchant["api_key"])
    assert status == 200, page
    kinds = [e["type"] for e in page["events"] if e["checkout"]["id"] == checkout["id"]]
    assert kinds == ["checkout.created", "checkout.paid"]
    time.sleep(0.5)
    assert len(heard(till.sounds)) == 1
    assert "not announced" not in till.terminal.log()


def test_a_missed_payment_too_old_to_say_is_shown_and_makes_no_wav(
    world: PairingWorld, till: Till
) -> None:
    till.extra = ["--speak-within", "3"]
    till.restart()
    till.online()
    till.sell(1000)
    assert till.said(1) == ["Received ten euros"]

    till.terminal.stop()
    sold = till.sell(4200)  # while the terminal is off
    time.sleep(3.5)  # longer than --speak-within
    till.restart()
    till.online()
    made = from_rfc3339(till.paid_event(sold["id"])["created_at"])
    line = earlier_text(EarlierPayment(sold["id"], 4200, "EUR", made), now_ms())
    wait_until(
        lambda: till.shows(line) and till.shows(RECEIVED_EARLIER),
        lambda: f"{line!r} on screen; log:\n{till.terminal.log()[-3000:]}",
        20,
    )
    assert "is too old to announce: shown, not said" in till.terminal.log()
    # Said after anything the old payment could have made: it made nothing.
    till.sell(700)
    assert till.said(2) == ["Received ten euros", "Received seven euros"]
    time.sleep(0.5)
    assert len(heard(till.sounds)) == 2
    assert till.shows(line)  # a payment the cashier did not show leaves the idle screen

    # Shown once: after a restart, and its catch-up, the idle screen is plain.
    till.restart()
    till.online()
    till.sell(300)
    assert till.said(3)[2] == "Received three euros"
    assert not till.shows(RECEIVED_EARLIER)
    assert not till.shows(line)
