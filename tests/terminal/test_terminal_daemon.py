"""The terminal daemon in this process against a real mosquitto, with a
display that keeps its frames: commands in, frames and state messages out."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import pytest

from hardware.base import DummyDisplay, Frame
from hardware.errors import DisplayError
from scan2pay_common.clock import MovableClock
from scan2pay_common.jsonfields import dumps
from scan2pay_common.messages import (
    CheckoutEvent,
    CheckoutSnapshot,
    DisplayTicket,
    ShowQr,
    ShowStatus,
    TerminalState,
    display_command_to_json,
)
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import PublicKey, SigningKey
from scan2pay_common.timefmt import now_ms, to_rfc3339
from scan2pay_common.topics import events_topic, state_topic, terminal_events_topic
from terminal.clock import Clock
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from terminal.screens import QrScreen
from tests.support.broker import Mosquitto
from tests.support.mqtt import Publisher, Subscriber, publish
from tests.support.polling import until
from tests.support.psp import Psp

MERCHANT, TERMINAL = "mer_test", "lane-1"
URL = "HTTP://127.0.0.1:8080/Q/" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass
class Running:
    daemon: TerminalDaemon
    display: DummyDisplay
    stop: asyncio.Event
    task: asyncio.Task[bool]
    states: Subscriber
    broker: Mosquitto

    def send(self, payload: bytes | str) -> None:
        publish(self.broker.port, self.daemon.display_topic, payload)

    async def state(self, timeout: float = 10.0) -> TerminalState:
        (message,) = await asyncio.to_thread(self.states.wait_for, 1, timeout)
        return TerminalState.from_json(message.payload)

    async def until(self, check: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        def drawn() -> Frame | None:
            frame = self.display.last
            return frame if frame is not None and check(frame) else None

        found: Frame = await until(
            drawn, what=lambda: f"such a frame; last was {self.display.last}", timeout=timeout
        )
        return found


async def start(
    broker: Mosquitto,
    display: DummyDisplay | None = None,
    *,
    merchant_id: str = MERCHANT,
    psp_url: str | None = None,
    psp_public_keys: tuple[PublicKey, ...] = (),
    clock: Clock | None = None,
) -> Running:
    display = display or DummyDisplay(geometry=None)
    settings = TerminalConfig(
        mqtt=MqttTarget.parse(broker.url),
        merchant_id=merchant_id,
        terminal_id=TERMINAL,
        name="Café Test",
        psp_url=psp_url,
        psp_public_keys=psp_public_keys,
    )
    states = Subscriber(broker.port, state_topic(merchant_id, TERMINAL))
    daemon = TerminalDaemon(settings, display, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    return Running(daemon, display, stop, task, states, broker)


async def finish(running: Running) -> None:
    running.stop.set()
    done, _ = await asyncio.wait({running.task}, timeout=10)
    if not done:
        import io

        out = io.StringIO()
        for t in asyncio.all_tasks():
            print(t.get_name(), file=out)
            t.print_stack(limit=8, file=out)
        raise AssertionError(out.getvalue())
    running.states.close()


@pytest.fixture
async def terminal(broker: Mosquitto) -> AsyncIterator[Running]:
    running = await start(broker)
    yield running
    await finish(running)


def qr_command(checkout_id: str = "co_1", amount: int = 1234, expires_in: int = 300) -> ShowQr:
    return ShowQr(
        checkout_id=checkout_id,
        qr_url=URL,
        amount=amount,
        currency="EUR",
        expires_at=to_rfc3339(now_ms() + expires_in * 1000),
        order_id="A-1001",
    )


def show_qr(checkout_id: str = "co_1", amount: int = 1234, expires_in: int = 300) -> bytes:
    return display_command_to_json(qr_command(checkout_id, amount, expires_in))


async def test_idle_first_then_online(terminal: Running) -> None:
    state = await terminal.state()
    assert (state.online, state.screen, state.checkout_id) == (True, "idle", None)
    assert terminal.display.last is not None
    assert terminal.display.last.content.lines == ("Café Test", "Ready")


async def test_show_qr_then_paid_with_states_after_each_frame(terminal: Running) -> None:
    await terminal.state()  # idle
    terminal.send(show_qr())
    state = await terminal.state()
    assert (state.screen, state.checkout_id) == ("qr", "co_1")
    frame = terminal.display.last
    assert frame is not None
    assert frame.content.qr_url == URL
    assert frame.content.lines[0] == "€12.34"
    terminal.send(display_command_to_json(ShowStatus("co_1", "paid")))
    state = await terminal.state()
    assert (state.screen, state.checkout_id) == ("paid", "co_1")
    assert terminal.display.last is not None
    assert terminal.display.last.content.lines == ("Paid", "€12.34")


async def test_the_countdown_and_the_expiry_are_the_daemons_clocks(broker: Mosquitto) -> None:
    """Each tick reads the daemon's clock: moved on, the countdown follows
    at the next tick, and past ``expires_at`` the QR gives way to expired."""
    wall = MovableClock()
    running = await start(broker, clock=Clock(wall=wall, sync_state=lambda: True))
    try:
        await running.state()
        running.send(show_qr("co_late", expires_in=300))
        assert (await running.state()).screen == "qr"
        await running.until(lambda frame: frame.content.lines[-1] in ("5:00", "4:59"))
        wall.advance(240_000)
        await running.until(lambda frame: frame.content.lines[-1] in ("1:00", "0:59"))
        wall.advance(60_000)
        state = await running.state()
        assert (state.screen, state.checkout_id) == ("expired", "co_late")
    finally:
        await finish(running)


async def test_cancelled_expired_and_idle(terminal: Running) -> None:
    await terminal.state()
    for status in ("cancelled", "expired"):
        terminal.send(show_qr(f"co_{status}"))
        assert (await terminal.state()).screen == "qr"
        terminal.send(display_command_to_json(ShowStatus(f"co_{status}", status)))
        assert (await terminal.state()).screen == status
    terminal.send(b'{"type": "idle"}')
    assert (await terminal.state()).screen == "idle"


def paid_event(checkout_id: str, key: SigningKey | None = None) -> bytes:
    """The PSP's ``checkout.paid`` for a checkout made for this terminal,
    signed with ``key`` if given."""
    snapshot = CheckoutSnapshot(
        id=checkout_id,
        order_id="A-1001",
        amount=1234,
        currency="EUR",
        status="paid",
        qr_url=URL,
        expires_at=to_rfc3339(now_ms() + 300_000),
        terminal_id=TERMINAL,
        created_at=to_rfc3339(now_ms()),
    )
    event = CheckoutEvent(
        event_id=f"evt_{checkout_id}",
        seq=1,
        type="checkout.paid",
        merchant_id=MERCHANT,
        checkout=snapshot,
        created_at=to_rfc3339(now_ms()),
    )
    return dumps(key.sign(event.to_dict())) if key else event.to_json()


def ticketed_show_qr(key: SigningKey, checkout_id: str) -> bytes:
    """A ``show_qr`` with the display ticket the PSP signs for this terminal."""
    command = qr_command(checkout_id)
    ticket = DisplayTicket(
        checkout_id=command.checkout_id,
        merchant_id=MERCHANT,
        qr_url=command.qr_url,
        amount=command.amount,
        currency=command.currency,
        terminal_id=TERMINAL,
        expires_at=command.expires_at,
    )
    return display_command_to_json(replace(command, display_ticket=key.sign(ticket.to_dict())))


async def test_paid_event_shows_paid_without_the_cashier(terminal: Running) -> None:
    await terminal.state()
    terminal.send(show_qr("co_ev"))
    await terminal.state()
    publish(terminal.broker.port, events_topic(MERCHANT), paid_event("co_ev"), retain=False)
    state = await terminal.state()
    assert (state.screen, state.checkout_id) == ("paid", "co_ev")


async def test_a_ticketed_qr_hears_its_own_events_topic_and_not_the_merchants(
    broker: Mosquitto,
) -> None:
    key = SigningKey.generate()
    running = await start(broker, psp_public_keys=(key.public,))
    psp = Publisher(broker.port)
    try:
        await running.state()
        running.send(ticketed_show_qr(key, "co_mine"))
        assert (await running.state()).checkout_id == "co_mine"
        assert not running.daemon.merchant_events
        # Another lane's checkout goes to the merchant's topic only; one
        # connection, so it would reach a subscriber before the paid below.
        psp.publish(events_topic(MERCHANT), paid_event("co_other", key), retain=False)
        mine = paid_event("co_mine", key)
        psp.publish(terminal_events_topic(MERCHANT, TERMINAL), mine, retain=False)
        state = await running.state()
        assert (state.screen, state.checkout_id) == ("paid", "co_mine")
        assert running.daemon.events_heard == 1
    finally:
        psp.close()
        await finish(running)


async def test_a_terminal_without_keys_hears_the_merchants_topic_while_its_qr_is_shown(
    broker: Mosquitto,
) -> None:
    running = await start(broker)
    psp = Publisher(broker.port)
    try:
        await running.state()
        # A display ticket proves nothing to a terminal without the PSP's key.
        running.send(ticketed_show_qr(SigningKey.generate(), "co_untied"))
        assert (await running.state()).checkout_id == "co_untied"
        await until(lambda: running.daemon.merchant_events, what="merchant events heard")
        psp.publish(events_topic(MERCHANT), paid_event("co_untied"), retain=False)
        state = await running.state()
        assert (state.screen, state.checkout_id) == ("paid", "co_untied")

        running.send(b'{"type": "idle"}')
        assert (await running.state()).screen == "idle"
        await until(lambda: not running.daemon.merchant_events, what="merchant events unheard")
        heard = running.daemon.events_heard
        psp.publish(events_topic(MERCHANT), paid_event("co_next"), retain=False)
        # The marker: its own topic, after the other on the same connection.
        marker = paid_event("co_marker")
        psp.publish(terminal_events_topic(MERCHANT, TERMINAL), marker, retain=False)
        await until(lambda: running.daemon.events_heard > heard, what="one more event heard")
        await asyncio.sleep(0.2)  # the merchant's event, had it come, came first
        assert running.daemon.events_heard == heard + 1
    finally:
        psp.close()
        await finish(running)


async def test_a_reconnect_subscribes_to_the_merchants_topic_if_the_screen_needs_it(
    broker: Mosquitto,
) -> None:
    running = await start(broker)
    try:
        await running.state()
        running.send(show_qr("co_back"))
        await running.until(lambda f: f.content.qr_url == URL)
        await asyncio.to_thread(broker.stop)
        await running.until(lambda f: "No connection" in f.content.lines)
        await asyncio.to_thread(broker.start)
        await running.until(lambda f: "No connection" not in f.content.lines, 20)
        assert running.daemon.merchant_events
        publish(broker.port, events_topic(MERCHANT), paid_event("co_back"), retain=False)
        await running.until(lambda f: f.content.lines[:1] == ("Paid",))
    finally:
        await finish(running)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe\x00",
        b"not json",
        b"{}",
        b'{"type": "show_qr"}',
        b"[1,2]",
        b'{"type": "status", "checkout_id": "co_1", "status": "refunded"}',
        b'{"type": "show_qr", "checkout_id": "co_x", "qr_url": "u", "amount": -1, '
        b'"currency": "EUR", "expires_at": "2030-01-01T00:00:00Z"}',
        b"HTTP://evil.example/Q/ABC",
        b"{" * 10000,
    ],
)
async def test_garbage_leaves_the_screen_and_the_daemon_running(
    terminal: Running, garbage: bytes
) -> None:
    await terminal.state()
    terminal.send(show_qr())
    await terminal.state()
    frames = len(terminal.display.frames)
    terminal.send(garbage)
    publish(terminal.broker.port, events_topic(MERCHANT), garbage, retain=False)
    await asyncio.sleep(0.3)
    assert not terminal.task.done()
    assert terminal.display.last is not None
    assert terminal.display.last.content.qr_url == URL
    assert terminal.daemon.state is not None
    assert terminal.daemon.state.screen == "qr"
    # ...and it still obeys the next good command.
    terminal.send(b'{"type": "idle"}')
    assert (await terminal.state()).screen == "idle"
    assert len(terminal.display.frames) > frames


async def test_a_restarted_terminal_shows_the_retained_command(broker: Mosquitto) -> None:
    first = await start(broker)
    await first.state()
    first.send(show_qr("co_keep"))
    assert (await first.state()).screen == "qr"
    await finish(first)
    second = await start(broker)
    try:
        frame = await second.until(lambda f: f.content.qr_url == URL)
        assert frame.content.lines[0] == "€12.34"
        state = await second.state()
        while state.screen != "qr":  # the retained offline or idle may come first
            state = await second.state()
        assert state.checkout_id == "co_keep"
    finally:
        await finish(second)


async def test_clean_stop_says_offline(broker: Mosquitto) -> None:
    running = await start(broker)
    await running.state()
    watcher = Subscriber(broker.port, state_topic(MERCHANT, TERMINAL))
    try:
        (retained,) = await asyncio.to_thread(watcher.wait_for, 1)
        assert json.loads(retained.payload)["online"] is True
        await finish(running)
        (last,) = await asyncio.to_thread(watcher.wait_for, 1)
        assert json.loads(last.payload) == {
            "online": False,
            "screen": "offline",
            "checkout_id": None,
            "displayed_at": None,
        }
    finally:
        watcher.close()


async def test_broker_loss_shows_a_banner_keeps_the_qr_and_recovers(broker: Mosquitto) -> None:
    running = await start(broker)
    try:
        await running.state()
        running.send(show_qr("co_b"))
        await running.state()
        await asyncio.to_thread(broker.stop)
        frame = await running.until(lambda f: "No connection" in f.content.lines)
        assert frame.content.qr_url == URL
        await asyncio.to_thread(broker.start)
        frame = await running.until(lambda f: "No connection" not in f.content.lines, 20)
        assert frame.content.qr_url == URL
        # After the reconnect it obeys commands again.
        running.send(display_command_to_json(ShowStatus("co_b", "paid")))
        await running.until(lambda f: f.content.lines[:1] == ("Paid",), 10)
    finally:
        await finish(running)


class FlakyDisplay(DummyDisplay):
    """Fails its first ``failures`` frames the way an unplugged I2C bus does."""

    def __init__(self, failures: int) -> None:
        super().__init__(geometry=None)
        self.failures = failures

    def show(self, frame: Frame) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DisplayError("ssd1306@i2c-1:0x3c", "[Errno 5] Input/output error")
        super().show(frame)


async def test_a_failing_display_is_retried_and_recovers(broker: Mosquitto) -> None:
    running = await start(broker, FlakyDisplay(failures=3))
    try:
        # The fault is told first, on the state topic; then the screen it
        # could not show, once the display takes it.
        state = await running.state(20)
        assert (state.online, state.screen, state.checkout_id) == (True, "display_error", None)
        state = await running.state(20)
        assert state.screen == "idle"
        assert not running.task.done()
        running.send(show_qr("co_f"))
        assert (await running.state()).screen == "qr"
    finally:
        await finish(running)


async def test_a_bare_url_shows_the_qr_and_the_amount_from_the_psp(
    broker: Mosquitto, psp_with_broker: Psp
) -> None:
    from tests.support.psp import code_of

    psp = psp_with_broker
    shop = await psp.merchant()
    checkout = await psp.checkout(shop, amount=1200, currency="JPY")
    public_url = psp.server.settings.public_url
    running = await start(broker, psp_url=public_url, merchant_id=shop.id)
    try:
        await running.state()
        running.send(checkout["qr_url"])
        frame = await running.until(lambda f: f.content.lines[:1] == ("¥1,200",))
        assert frame.content.qr_url == checkout["qr_url"]
        state = await running.state()
        while state.checkout_id != checkout["id"]:
            state = await running.state()
        assert state.screen == "qr"
        # Now that the terminal knows the checkout, the wallet's payment shows.
        await psp.pay(await psp.wallet(currency="JPY", balance=5000), code_of(checkout))
        await running.until(lambda f: f.content.lines[:1] == ("Paid",))
    finally:
        await finish(running)


def test_the_lookup_fetches_only_http_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """urlopen would read a file: URL from the terminal's own disk."""
    import urllib.request

    from terminal import psp_lookup

    def fetch(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"fetched {args}")

    monkeypatch.setattr(urllib.request, "urlopen", fetch)
    for url in ("file:///etc/passwd", "ftp://psp.example/Q/" + "A" * 32, "/Q/" + "A" * 32):
        assert psp_lookup._lookup(url) is None


async def test_a_bare_url_with_the_psp_unreachable_shows_the_qr_alone(broker: Mosquitto) -> None:
    from tests.support.broker import free_port

    psp_url = f"HTTP://127.0.0.1:{free_port()}"
    running = await start(broker, psp_url=psp_url)
    try:
        await running.state()
        url = psp_url + "/Q/" + "B" * 32
        running.send(url)
        frame = await running.until(lambda f: f.content.qr_url == url)
        assert frame.content.lines == ("Scan to pay",)
        assert (await running.state()).screen == "qr"
    finally:
        await finish(running)


class GatedDisplay(DummyDisplay):
    """Blocks in show() until released, as a slow bus would."""

    def __init__(self) -> None:
        super().__init__(geometry=None)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def show(self, frame: Frame) -> None:
        self.entered.set()
        self.gate.wait(10)
        super().show(frame)


async def test_a_blocking_display_does_not_block_the_event_loop(broker: Mosquitto) -> None:
    display = GatedDisplay()
    running = await start(broker, display)
    try:
        await asyncio.to_thread(display.entered.wait, 10)  # the idle frame is stuck on the bus
        running.send(show_qr("co_gate"))
        # The loop still takes messages in while the display thread blocks.
        await until(
            lambda: isinstance(running.daemon.controller.view.screen, QrScreen),
            what="the QR screen in the view",
            timeout=5,
        )
        assert display.frames == []
        display.gate.set()
        frame = await running.until(lambda f: f.content.qr_url == URL)
        assert frame.content.lines[0] == "€12.34"
    finally:
        display.gate.set()
        await finish(running)


async def test_a_refund_at_the_psp_shows_on_the_terminal(
    broker: Mosquitto, psp_with_broker: Psp
) -> None:
    from tests.support.psp import code_of

    psp = psp_with_broker
    shop = await psp.merchant()
    running = await start(broker, merchant_id=shop.id)
    try:
        await running.state()
        checkout = await psp.checkout(shop, amount=1234)
        running.send(
            display_command_to_json(
                ShowQr(
                    checkout_id=checkout["id"],
                    qr_url=checkout["qr_url"],
                    amount=1234,
                    currency="EUR",
                    expires_at=checkout["expires_at"],
                )
            )
        )
        await running.until(lambda f: f.content.qr_url == checkout["qr_url"])
        await psp.pay(await psp.wallet(), code_of(checkout))
        await running.until(lambda f: f.content.lines[:1] == ("Paid",))
        status, _ = await psp.call(
            "POST",
            f"/v1/checkouts/{checkout['id']}/refunds",
            json={"amount": 500},
            headers=shop.auth,
        )
        assert status == 201
        frame = await running.until(lambda f: f.content.lines[:1] == ("Refunded",))
        assert frame.content.lines[1] == "€5.00"
        state = await running.state()
        while state.screen != "refunded":
            state = await running.state()
        assert state.checkout_id == checkout["id"]
    finally:
        await finish(running)
