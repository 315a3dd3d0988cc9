"""The soundbox in the daemon, fed messages as its MQTT session hands
them over (``handle_message``), with a PSP key made for the test, the
``wav`` output and the real espeak-ng: what is said, once, and what is
refused and counted. tests/e2e/test_soundbox.py runs it against real
processes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hardware.audio import Clip
from hardware.base import DummyDisplay, NoopDisplay
from scan2pay_common.clock import MovableClock
from scan2pay_common.jsonfields import dumps, load_object
from scan2pay_common.messages import (
    CheckoutEvent,
    CheckoutSnapshot,
    DisplayTicket,
    EventType,
    ShowQr,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import from_rfc3339, now_ms, to_rfc3339
from scan2pay_common.topics import (
    display_topic,
    events_topic,
    state_topic,
    terminal_events_topic,
)
from terminal.clock import Clock
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from terminal.screens import EarlierPayment, IdleScreen
from terminal.soundbox import Soundbox
from terminal.trust import Identity
from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber, publish
from tests.support.polling import until
from tests.support.sound import heard, require_espeak

MERCHANT, LANE = "mer_" + "a" * 28, "lane-1"
KEY = SigningKey.generate()


def checkout(n: int, amount: int = 1234, *, terminal: str | None = LANE) -> CheckoutSnapshot:
    return CheckoutSnapshot(
        id=f"co_{n:028d}",
        order_id=f"order-{n}",
        amount=amount,
        currency="EUR",
        status="paid",
        qr_url=f"HTTP://127.0.0.1:8080/Q/{n:032d}",
        expires_at=to_rfc3339(now_ms() + 300_000),
        terminal_id=terminal,
        created_at=to_rfc3339(now_ms()),
    )


def event(
    seq: int,
    sold: CheckoutSnapshot,
    *,
    kind: EventType = "checkout.paid",
    age_s: float = 0,
    key: SigningKey | None = KEY,
) -> bytes:
    made = CheckoutEvent(
        event_id=f"evt_{seq:026d}",
        seq=seq,
        type=kind,
        merchant_id=MERCHANT,
        checkout=sold,
        created_at=to_rfc3339(now_ms() - int(age_s * 1000)),
    )
    return dumps(made.to_dict() if key is None else key.sign(made.to_dict()))


class Box:
    def __init__(self, daemon: TerminalDaemon, sounds: Path) -> None:
        self.daemon = daemon
        self.sounds = sounds

    async def hear(self, topic: str, payload: bytes) -> None:
        self.daemon.handle_message(topic, payload)
        await self.daemon.soundbox.idle()

    def said(self) -> list[str]:
        return [h.text for h in heard(self.sounds)] if self.sounds.exists() else []


def config(tmp_path: Path, **changes: Any) -> TerminalConfig:
    made = TerminalConfig(
        mqtt=MqttTarget.parse("mqtt://127.0.0.1:1"),
        merchant_id=MERCHANT,
        terminal_id=LANE,
        display="noop",
        psp_public_keys=(KEY.public,),
        audio=f"wav:{tmp_path / 'sounds'}",
        sound_dir=str(tmp_path / "sound"),
        chime=False,
    )
    return replace(made, **changes)


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    require_espeak()
    daemon = TerminalDaemon(config(tmp_path), NoopDisplay())
    yield Box(daemon, tmp_path / "sounds")
    await daemon.soundbox.close()


MINE = terminal_events_topic(MERCHANT, LANE)
MERCHANTS = events_topic(MERCHANT)


async def test_an_event_heard_on_both_topics_and_again_is_said_once(box: Box) -> None:
    paid = event(1, checkout(1))
    await box.hear(MERCHANTS, paid)
    await box.hear(MINE, paid)
    await box.hear(MINE, paid)
    assert box.said() == ["Received twelve euros thirty-four"]
    assert box.daemon.soundbox.refused == 0


async def test_each_refund_says_what_it_added(box: Box) -> None:
    sold = checkout(2, 1000)
    await box.hear(MINE, event(1, sold))
    await box.hear(MINE, event(2, replace(sold, refunded_amount=300), kind="checkout.refunded"))
    await box.hear(MINE, event(3, replace(sold, refunded_amount=500), kind="checkout.refunded"))
    assert box.said() == ["Received ten euros", "Refunded three euros", "Refunded two euros"]


async def test_a_late_payment_is_said_as_earlier_and_an_old_one_not_at_all(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "terminal.soundbox")
    await box.hear(MINE, event(1, checkout(3, 500), age_s=60))
    await box.hear(MINE, event(2, checkout(4, 700), age_s=3600))
    assert box.said() == ["Received earlier: five euros"]
    assert "is too old to announce: shown, not said" in caplog.text


async def test_fakes_are_refused_and_counted_other_lanes_are_left_alone(box: Box) -> None:
    real = event(1, checkout(5))
    tampered = real.replace(b'"amount":1234', b'"amount":9999')
    assert tampered != real
    await box.hear(MINE, tampered)
    await box.hear(MINE, event(2, checkout(6), key=None))
    await box.hear(MINE, event(3, checkout(7), key=SigningKey.generate()))
    await box.hear(display_topic(MERCHANT, LANE), event(4, checkout(8)))
    # Another lane's payment, heard on the merchant's topic: not this till's.
    await box.hear(MERCHANTS, event(5, checkout(9, terminal="lane-2")))
    assert box.said() == []
    assert box.daemon.soundbox.refused == 4


async def test_a_terminal_without_the_psps_key_says_nothing(tmp_path: Path) -> None:
    require_espeak()
    daemon = TerminalDaemon(config(tmp_path, psp_public_keys=()), NoopDisplay())
    try:
        daemon.handle_message(MINE, event(1, checkout(10)))
        await daemon.soundbox.idle()
        assert not (tmp_path / "sounds").exists()
        assert daemon.soundbox.refused == 1
    finally:
        await daemon.soundbox.close()


async def test_a_record_that_cannot_be_kept_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_espeak()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    broken = config(
        tmp_path,
        sound_dir=str(blocker),
        psp_url="http://127.0.0.1:1",
        pairing_id="pair_" + "0" * 32,
        device_secret="s" * 43,
    )
    daemon = TerminalDaemon(broken, NoopDisplay())
    try:
        daemon.handle_message(MINE, event(1, checkout(11)))
        await daemon.soundbox.idle()
        await daemon.soundbox.catch_up(now_ms())
    finally:
        await daemon.soundbox.close()
    assert "announcement of evt_" in caplog.text
    assert "not catching up: cannot open" in caplog.text
    assert not (tmp_path / "sounds").exists() or not list((tmp_path / "sounds").iterdir())


@pytest.mark.broker
async def test_the_screen_moves_on_while_a_payment_is_being_said(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The speaker holds the sound thread (here: until the test lets go);
    the next checkout's QR is drawn and reported meanwhile."""
    require_espeak()
    speaking, let_go = threading.Event(), threading.Event()

    def slow_speaker(clip: Clip) -> None:
        speaking.set()
        let_go.wait(20)

    settings = config(tmp_path, mqtt=MqttTarget.parse(broker.url))
    me = Identity(MERCHANT, LANE, (KEY.public,))
    daemon = TerminalDaemon(
        settings,
        DummyDisplay(geometry=None),
        soundbox=Soundbox(settings, me, Clock(), on_clip=slow_speaker),
    )
    states = Subscriber(broker.port, state_topic(MERCHANT, LANE))
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    try:

        async def screen() -> tuple[str, str | None]:
            (message,) = await asyncio.to_thread(states.wait_for, 1, 10)
            state = TerminalState.from_json(message.payload)
            return state.screen, state.checkout_id

        assert await screen() == ("idle", None)
        publish(broker.port, MINE, event(1, checkout(12)), retain=False)
        assert await asyncio.to_thread(speaking.wait, 10)
        publish(broker.port, display_topic(MERCHANT, LANE), ticketed_qr(checkout(13)))
        assert await screen() == ("qr", checkout(13).id)
        assert heard(tmp_path / "sounds") == []  # still being said
        let_go.set()
        said = tmp_path / "sounds" / "announcement-000001.wav"
        await until(lambda: said.exists(), what="the announcement after the screen")
    finally:
        let_go.set()
        stop.set()
        await asyncio.wait_for(running, 10)
        states.close()


def ticketed_qr(sold: CheckoutSnapshot) -> bytes:
    """The cashier's show_qr with the display ticket the PSP signs."""
    ticket = DisplayTicket(
        checkout_id=sold.id,
        merchant_id=MERCHANT,
        qr_url=sold.qr_url,
        amount=sold.amount,
        currency=sold.currency,
        terminal_id=LANE,
        expires_at=sold.expires_at,
    )
    command = ShowQr(
        sold.id,
        sold.qr_url,
        sold.amount,
        sold.currency,
        sold.expires_at,
        order_id=sold.order_id,
        display_ticket=KEY.sign(ticket.to_dict()),
    )
    return display_command_to_json(command)


async def test_a_payment_too_old_to_say_is_shown_once_on_the_idle_screen(
    tmp_path: Path,
) -> None:
    """The daemon's clock is moved two hours on: events made "now" are then
    two hours old, past speak_within, and are shown instead of said."""
    require_espeak()
    wall = MovableClock()
    daemon = TerminalDaemon(config(tmp_path), NoopDisplay(), clock=Clock(wall=wall))
    box = Box(daemon, tmp_path / "sounds")
    try:
        old, sold = event(1, checkout(20, 4250)), checkout(20, 4250)
        forged = event(2, checkout(21, 9900), key=SigningKey.generate())
        unsigned = event(3, checkout(22, 9900), key=None)
        refund = event(4, replace(sold, refunded_amount=250), kind="checkout.refunded")
        wall.advance(2 * 3600_000)
        for payload in (old, old, forged, unsigned, refund):
            await box.hear(MINE, payload)
        await box.hear(MERCHANTS, old)
        assert box.said() == []
        screen = daemon.controller.view.screen
        assert isinstance(screen, IdleScreen)
        made = CheckoutEvent.from_dict(load_object(old, what="event")).created_at
        assert screen.earlier == (EarlierPayment(sold.id, 4250, "EUR", from_rfc3339(made)),)
        assert screen.earlier_count == 1
        assert daemon.soundbox.refused == 2
        # Heard again after a restart: the record knows it was shown.
        await daemon.soundbox.close()
        again = TerminalDaemon(config(tmp_path), NoopDisplay(), clock=Clock(wall=wall))
        daemon = again
        await Box(again, tmp_path / "sounds").hear(MINE, old)
        assert again.controller.view.screen == IdleScreen(again.config.name)
    finally:
        await daemon.soundbox.close()


async def test_a_late_payment_still_within_speak_within_is_said_not_shown(box: Box) -> None:
    await box.hear(MINE, event(1, checkout(23, 500), age_s=120))
    assert box.said() == ["Received earlier: five euros"]
    assert box.daemon.controller.view.screen == IdleScreen(box.daemon.config.name)
