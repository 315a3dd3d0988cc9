"""The terminal daemon: one MQTT session, a painter, a clock, in one TaskGroup.

- The MQTT session is one ``async with`` that subscribes to this terminal's
  display topic and its own events topic, and comes back with jittered
  backoff when the broker goes; retained messages give the current screen
  back after every reconnect. The PSP copies to a terminal's events topic
  the events of the checkouts created for that terminal, so the merchant's
  events topic, which wakes every lane for every checkout, is subscribed
  only while the checkout on screen cannot be tied to this terminal (a
  ``show_qr`` without a display ticket verified here, or a bare URL; see
  ``Controller.needs_merchant_events``). A task of the session follows that
  want, so that handling a message never waits for a SUBACK; events from
  either topic are handled alike, and one heard on both is a repeat the
  controller ignores.
- The painter draws the controller's current view off the event loop (the
  display's I/O blocks) and, once the frame is on the display, publishes the
  terminal's state. A display that cannot be opened or fails (a panel
  missing, miswired or unplugged) is reported on the state topic as
  ``display_error`` and opened again with capped, jittered backoff
  (``terminal.panel``); the daemon stays up and serves MQTT meanwhile. It
  draws in one thread of its own, always the same, which also opens and
  closes the display: frames are drawn one at a time anyway, a close never
  runs beside a frame, and no pool grows threads (up to cores + 4 for
  ``asyncio.to_thread``), each with its stack and its malloc arena, on a Pi
  Zero with 512 MB in all.
- The soundbox (``terminal.soundbox``) hears every event of this
  terminal's checkouts, from either events topic and from the PSP's
  catch-up after each connection, and says the real payments aloud, each
  once, in a thread of its own: the display never waits for speech. A
  missed payment too old to say is shown on the idle screen instead.
- The ticker moves the countdown and the timeouts.
- The clock keeper asks the system now and then whether its clock is
  synchronised and, while it is not, the PSP for its time
  (``terminal.clock``): every ``now`` of the daemon is that clock's.
- systemd hears READY=1 as soon as the event loop runs (not after the
  first frame: a missing panel must not keep the service from starting),
  WATCHDOG=1 from a task of the event loop, so that a loop that hangs stops
  them, and STATUS= lines about the display.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import aiomqtt

from hardware.base import Display
from hardware.errors import HardwareError
from scan2pay_common import sdnotify
from scan2pay_common.aio import cancelling, honour_cancellation
from scan2pay_common.backoff import Backoff
from scan2pay_common.errors import InvalidValue
from scan2pay_common.jsonfields import load_object
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import (
    CheckoutEvent,
    ShowQr,
    ShowStatus,
    TerminalState,
    parse_display_command,
)
from scan2pay_common.messages import Screen as ScreenKind
from scan2pay_common.mqtt_client import CA_ENV, mqtt_client, tls_context
from scan2pay_common.reconnect import BACK_OFF, STOP, Next, Reconnecting
from scan2pay_common.timefmt import to_rfc3339
from scan2pay_common.topics import (
    display_topic,
    events_topic,
    state_topic,
    terminal_events_topic,
)

from .clock import Clock
from .config import TerminalConfig, is_bare_qr_url
from .controller import BareUrl, Controller, Effects, screen_checkout, screen_kind
from .panel import Panel
from .psp_lookup import lookup
from .psp_time import learn_psp_time
from .revocation import refused_login, was_unpaired
from .screens import EarlierPayment, OutcomeScreen
from .soundbox import Soundbox
from .trust import (
    Identity,
    SignedEvent,
    outcome_problem,
    qr_problem,
    static_created_problem,
    static_payment_problem,
)

log = logging.getLogger(__name__)

OFFLINE = TerminalState(online=False, screen="offline", checkout_id=None, displayed_at=None)

# How often the clock keeper asks the system whether its clock is
# synchronised, and (while it is not) the PSP for its time.
SYNC_CHECK_SECONDS = 60.0
PSP_TIME_SECONDS = 300.0


def _terminal_of(document: dict[str, Any]) -> object:
    """The terminal an event's checkout names, read without checking it."""
    checkout = document.get("checkout")
    return checkout.get("terminal_id") if isinstance(checkout, dict) else None


def _looks_like_an_event(payload: bytes) -> bool:
    """A payment event where no event belongs: told apart to be counted."""
    try:
        document = load_object(payload, what="payload")
    except InvalidValue:
        return False
    return document.get("type") in ("checkout.paid", "checkout.refunded")


def _checkout_of(document: dict[str, Any]) -> str:
    """The checkout id an event names, read without checking the rest: the
    merchant's events topic carries every lane's events, and checking one
    in full (and its signature) is worth it only for the checkout on this
    terminal's screen. None named: "" (the full check then says what is
    wrong)."""
    checkout = document.get("checkout")
    return str(checkout.get("id", "")) if isinstance(checkout, dict) else ""


def _is_static(document: dict[str, Any]) -> bool:
    """Whether an event is the creation or the payment of a checkout typed
    in at a printed till code, which no show_qr named (its other events
    concern the screen only while it is on it)."""
    checkout = document.get("checkout")
    return (
        document.get("type") in ("checkout.created", "checkout.paid")
        and isinstance(checkout, dict)
        and checkout.get("source") == "static"
    )


class TerminalDaemon:
    """``display``: an open display, what opens one (then opened in the
    painter's thread, and opened again after a failure), or a ``Panel`` the
    caller holds. ``painter``: the thread that draws, when the caller owns
    it and the panel (``terminal.service``, which draws the pairing screen
    too); the daemon then leaves both open when it ends. ``clock``: the
    daemon's idea of now (``terminal.clock``)."""

    def __init__(
        self,
        config: TerminalConfig,
        display: Display | Callable[[], Display] | Panel,
        *,
        clock: Clock | None = None,
        painter: ThreadPoolExecutor | None = None,
        soundbox: Soundbox | None = None,
    ) -> None:
        self.config = config
        self.panel = display if isinstance(display, Panel) else Panel(display)
        self.clock = clock or Clock()
        self._own_painter = painter is None
        if painter is not None:
            self._painter = painter
        # Set when the broker refuses this terminal's account and the PSP
        # says it was unpaired (docs/pairing.md): the daemon ends.
        self.unpaired = asyncio.Event()
        self.controller = Controller(
            config.name, idle_after_ms=int(config.idle_after * 1000), till=config.till
        )
        self.identity = Identity(config.merchant_id, config.terminal_id, config.psp_public_keys)
        for key in self.identity.keys:
            key.prepare()
        self.display_topic = display_topic(config.merchant_id, config.terminal_id)
        self.events_topic = events_topic(config.merchant_id)
        self.terminal_events_topic = terminal_events_topic(config.merchant_id, config.terminal_id)
        self.state_topic = state_topic(config.merchant_id, config.terminal_id)
        self.state: TerminalState | None = None  # what is really on the display
        self.frames = 0
        self.display_fault: str | None = None  # why the display takes no frame now
        self.events_heard = 0  # event messages handled, from either events topic
        # Whether this session's broker holds the merchant events subscription.
        self.merchant_events = False
        self._merchant_events_changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._dirty.set()  # the first frame: idle
        self._client: aiomqtt.Client | None = None
        self._lookups: set[asyncio.Task[None]] = set()
        self.me = config.terminal_id
        self._catch_up: asyncio.Task[None] | None = None
        self.soundbox = soundbox or Soundbox(config, self.identity, self.clock)
        self.soundbox.shows_earlier_with(self._received_earlier)
        if self.soundbox.on and not self.identity.keys:
            log.warning("--audio is set but there is no PSP key: no payment will be announced")

    async def run(self, stop: asyncio.Event) -> bool:
        """Runs until ``stop`` is set (False) or the terminal was unpaired (True)."""
        if not self._own_painter:
            return await self._run(stop)
        # The one thread that touches the display: every frame, then close.
        self._painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="painter")
        try:
            return await self._run(stop)
        finally:
            self._painter.shutdown(wait=False)

    async def _run(self, stop: asyncio.Event) -> bool:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._paint_forever(), name="painter"),
                group.create_task(self._tick_forever(), name="ticker"),
                group.create_task(self._keep_time_forever(), name="clock"),
                group.create_task(self._mqtt_forever(), name="mqtt"),
                group.create_task(sdnotify.watchdog_forever(), name="watchdog"),
                group.create_task(self.soundbox.warm(), name="sound warm-up"),
            ]
            sdnotify.notify("READY=1")
            ends = [
                group.create_task(stop.wait(), name="stop"),
                group.create_task(self.unpaired.wait(), name="unpaired"),
            ]
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                sdnotify.notify("STOPPING=1")
            for task in tasks + ends:
                task.cancel()
        for task in list(self._lookups):
            task.cancel()
        await self.soundbox.close()
        if self._own_painter:
            await self._off_loop(self.panel.close)
        return not stop.is_set()

    # Inputs -> the controller.

    def _apply(self, effects: Effects) -> None:
        if effects.redraw:
            self._dirty.set()
        if effects.lookup is not None:
            task = asyncio.create_task(self._lookup(effects.lookup))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
        if self.controller.needs_merchant_events != self.merchant_events:
            self._merchant_events_changed.set()

    async def _lookup(self, url: str) -> None:
        info = await lookup(self._lookup_url(url))
        if info is None:
            return
        info = replace(info, url=url)
        problem = outcome_problem(info, self.controller.view.screen, self.identity)
        if problem is not None:
            log.warning("ignored the PSP's answer about %s: %s", info.checkout_id, problem)
            return
        log.info("the PSP says %s is %s", info.checkout_id, info.status)
        self._apply(self.controller.on_lookup(info, self.clock.now_ms()))

    def _lookup_url(self, qr_url: str) -> str:
        """Where to ask about a QR URL: {psp_url}/Q/{CODE} when the PSP's
        URL is configured, else the QR URL itself."""
        psp_url = self.config.psp_url
        if psp_url is None or "/Q/" not in qr_url:
            return qr_url
        return f"{psp_url.rstrip('/')}/Q/{qr_url.rsplit('/Q/', 1)[1]}"

    def handle_message(self, topic: str, payload: bytes) -> None:
        """Anything malformed, or not to be believed (``terminal.trust``),
        is logged and ignored: the screen stays."""
        now = self.clock.now_ms()
        if topic == self.display_topic:
            if not payload:
                return  # a cleared retained message
            self._handle_display(payload, now)
        elif topic in (self.terminal_events_topic, self.events_topic):
            self.events_heard += 1
            # Read once: the id to filter on, the event and its signature
            # (checked over ``payload`` itself) all come from this one parse.
            try:
                document = load_object(payload, what="event")
                named = _checkout_of(document)
                typed_here = topic == self.terminal_events_topic and _is_static(document)
                on_screen = not named or typed_here or self.controller.concerns(named)
                # The soundbox hears every event of this terminal's checkouts.
                for_sound = self.soundbox.on and (
                    topic == self.terminal_events_topic or _terminal_of(document) == self.me
                )
                if not on_screen and not for_sound:
                    return  # another lane's checkout: no need to check it
                event = CheckoutEvent.from_dict(document)
            except InvalidValue as exc:
                log.warning("ignored an event payload: %s", loggable(exc.message))
                return
            if for_sound:
                self.soundbox.consider(payload, event, via=topic)
            if not on_screen:
                return
            evidence = SignedEvent(payload, event)
            if typed_here and event.type == "checkout.created":
                self._handle_static_created(evidence, now)
                return
            # A typed checkout's payment shows with its sticker's id, whether
            # its created event put it on screen or none was heard.
            if typed_here and event.type == "checkout.paid":
                self._handle_static_payment(evidence, now)
                return
            problem = outcome_problem(evidence, self.controller.view.screen, self.identity)
            if problem is not None:
                log.warning(
                    "ignored a %s event for %s: %s",
                    event.type,
                    event.checkout.id,
                    loggable(problem),
                )
                return
            self._apply(self.controller.on_event(event, now))

    def _handle_static_created(self, evidence: SignedEvent, now: int) -> None:
        problem = static_created_problem(evidence, self.identity)
        if problem is not None:
            # Its QR would have been drawn: a refusal is worth a warning.
            log.warning(
                "ignored a %s event for %s: %s",
                evidence.event.type,
                evidence.event.checkout.id,
                loggable(problem),
            )
            return
        self._apply(self.controller.on_static_created(evidence.event, now))

    def _received_earlier(self, payment: EarlierPayment) -> None:
        self._apply(self.controller.on_received_earlier(payment, self.clock.now_ms()))

    def _handle_static_payment(self, evidence: SignedEvent, now: int) -> None:
        problem = static_payment_problem(evidence, self.identity)
        if problem is not None:
            log.info(
                "ignored a %s event for %s: %s",
                evidence.event.type,
                evidence.event.checkout.id,
                loggable(problem),
            )
            return
        self._apply(self.controller.on_static_payment(evidence.event, now))

    def _handle_display(self, payload: bytes, now: int) -> None:
        text = payload.decode("utf-8", errors="replace")
        if is_bare_qr_url(text, self.config.psp_url):
            bare = BareUrl(text.strip())
            problem = qr_problem(bare, self.identity, now)
            if problem is not None:
                log.warning("ignored a bare QR URL: %s", loggable(problem))
                return
            self._apply(self.controller.on_command(bare, now))
            return
        try:
            command = parse_display_command(payload)
        except InvalidValue as exc:
            log.warning("ignored a display payload: %s", loggable(exc.message))
            if self.soundbox.on and _looks_like_an_event(payload):
                self.soundbox.refuse("an event on the display topic", "no events come there")
            return
        if isinstance(command, ShowQr):
            problem = qr_problem(command, self.identity, now)
            if problem is not None:
                shown = loggable(problem)  # it may quote the ticket
                log.warning("ignored a show_qr for %s: %s", command.checkout_id, shown)
                return
            tied = bool(self.identity.keys)  # its ticket names this terminal
            self._apply(self.controller.on_command(command, now, tied=tied))
            return
        if isinstance(command, ShowStatus):
            self._handle_status(command, now)
            return
        self._apply(self.controller.on_command(command, now))

    def _handle_status(self, command: ShowStatus, now: int) -> None:
        screen = self.controller.view.screen
        problem = outcome_problem(command, screen, self.identity)
        if problem is None:
            self._apply(self.controller.on_command(command, now))
            return
        if isinstance(screen, OutcomeScreen) and screen.checkout_id == command.checkout_id:
            # The usual end of a sale: the PSP's event showed the outcome first.
            log.debug("the outcome of %s shows already", command.checkout_id)
            return
        if self.identity.keys and command.status == "paid":
            # Unsigned: at most a reason to ask the PSP about the QR on screen.
            effects = self.controller.on_paid_hint(command.checkout_id)
            if effects.lookup is not None:
                log.info("asking the PSP about %s: the cashier says paid", command.checkout_id)
                self._apply(effects)
                return
        log.warning(
            "ignored a %s status for %s: %s",
            command.status,
            command.checkout_id,
            loggable(problem),
        )

    # The MQTT session.

    async def _mqtt_forever(self) -> None:
        link = Reconnecting(
            self._connect,
            name="terminal",
            target=self.config.mqtt,
            log=log,
            backoff=Backoff(initial=0.1, maximum=10.0),
            handles=(aiomqtt.MqttError,),
            on_drop=self._dropped,
        )
        await link.run(self._session)

    def _connect(self) -> aiomqtt.Client:
        return mqtt_client(
            self.config.mqtt,
            identifier=client_id(self.config),
            ca_file=self.config.mqtt_ca,
            will=aiomqtt.Will(self.state_topic, OFFLINE.to_json(), qos=1, retain=True),
            keepalive=15,
            timeout=5,
            **self._tls_options(),
        )

    async def _dropped(self, exc: Exception) -> Next:
        self._apply(self.controller.on_connection(False))
        refused = isinstance(exc, aiomqtt.MqttError) and refused_login(exc)
        if refused and await was_unpaired(self.config):
            log.warning("the broker refuses this terminal and the PSP unpaired it")
            self.unpaired.set()
            return STOP
        return BACK_OFF

    def _tls_options(self) -> dict[str, ssl.SSLContext]:
        """The configured CA's context for mqtts://; without one the
        client's default (the system's CAs, or SCAN2PAY_MQTT_CA)."""
        ca = self.config.mqtt_ca
        if not self.config.mqtt.tls or ca is None:
            return {}
        return {"tls_context": tls_context({CA_ENV: ca})}

    async def _session(self, client: aiomqtt.Client) -> None:
        try:
            await self._subscribed_session(client)
        finally:
            self._client = None
            await self._say_offline(client)

    async def _subscribed_session(self, client: aiomqtt.Client) -> None:
        merchant_events = self.controller.needs_merchant_events
        topics = [self.display_topic, self.terminal_events_topic]
        topics += [self.events_topic] if merchant_events else []
        await client.subscribe([(topic, 1) for topic in topics])
        self.merchant_events = merchant_events
        follower = asyncio.create_task(self._follow_screen(client), name="merchant events")
        try:
            self._client = client
            self._apply(self.controller.on_connection(True))
            # What was paid at this till while the terminal was not listening.
            listening = self.clock.now_ms()  # the broker has the subscriptions
            self._catch_up = asyncio.create_task(self.soundbox.catch_up(listening), name="catch-up")
            if self.state is not None:
                await self._publish_state(self.state)
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, str):
                    payload = payload.encode()
                if not isinstance(payload, bytes | bytearray):
                    continue
                self.handle_message(str(message.topic), bytes(payload))
        finally:
            follower.cancel()
            if self._catch_up is not None:
                self._catch_up.cancel()
            self.merchant_events = False  # a clean session: the next starts with none

    async def _follow_screen(self, client: aiomqtt.Client) -> None:
        """Subscribes to the merchant's events topic while the controller
        needs it, and unsubscribes when it no longer does. The want is read
        again after each SUBACK, since the screen may have moved meanwhile."""
        while True:
            wanted = self.controller.needs_merchant_events
            if wanted == self.merchant_events:
                self._merchant_events_changed.clear()
                await self._merchant_events_changed.wait()
                continue
            try:
                if wanted:
                    await client.subscribe(self.events_topic, qos=1)
                else:
                    await client.unsubscribe(self.events_topic)
            except aiomqtt.MqttError as exc:
                # A broken connection ends the session by itself; otherwise try again.
                log.info("merchant events subscription not changed (%s)", exc)
                await asyncio.sleep(1)
                continue
            self.merchant_events = wanted

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """On a clean stop the broker sends no last will; say it ourselves."""
        if not cancelling():
            return
        with contextlib.suppress(aiomqtt.MqttError, asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(
                client.publish(self.state_topic, OFFLINE.to_json(), qos=1, retain=True), 2
            )

    async def _publish_state(self, state: TerminalState) -> None:
        client = self._client
        if client is None:
            return  # published again on reconnect
        try:
            await client.publish(self.state_topic, state.to_json(), qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            log.info("state not published (%s); it goes out on reconnect", exc)

    # The painter, the ticker and the clock keeper.

    async def _paint_forever(self) -> None:
        # Capped: a panel plugged in (or I2C enabled) shows within seconds.
        backoff = Backoff(initial=0.2, maximum=10.0)
        while True:
            honour_cancellation()
            await self._dirty.wait()
            self._dirty.clear()
            view = self.controller.view
            checkout_id = screen_checkout(view.screen)
            try:
                await self._off_loop(self.panel.show, view, self.clock.now_ms())
            # Not HardwareError alone: a driver's own error (rpi-lgpio's
            # "GPIO busy") ending the daemon would have systemd restart it
            # onto the same screen and the same error, for ever.
            except Exception as exc:  # noqa: BLE001 - every display fault is ridden out, reported
                delay = backoff.next_delay()
                self._display_failed(_fault(exc), delay)
                await self._note_state("display_error", checkout_id)
                self._dirty.set()
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if self.display_fault is not None:
                log.info("the display takes frames again")
                sdnotify.notify("STATUS=display working")
                self.display_fault = None
            self.frames += 1
            await self._note_state(screen_kind(view.screen), checkout_id)

    def _display_failed(self, fault: str, delay: float) -> None:
        """Logs a fault once, and again only when it changes: a panel left
        unplugged would otherwise fill the journal every few seconds."""
        if fault != self.display_fault:
            log.warning("display failed: %s; retrying with backoff", loggable(fault))
            sdnotify.notify(f"STATUS=display failing: {loggable(fault, 200)}")
        else:
            log.debug("display still failing; next try in %.2fs", delay)
        self.display_fault = fault

    async def _note_state(self, kind: ScreenKind, checkout_id: str | None) -> None:
        """Publishes the terminal's state when it changed."""
        if self.state is not None and (self.state.screen, self.state.checkout_id) == (
            kind,
            checkout_id,
        ):
            return
        self.state = TerminalState(
            online=True,
            screen=kind,
            checkout_id=checkout_id,
            displayed_at=to_rfc3339(self.clock.now_ms()),
        )
        await self._publish_state(self.state)

    async def _off_loop(self, call: Callable[..., None], *args: object) -> None:
        """Runs a blocking display call in the painter's thread."""
        await asyncio.get_running_loop().run_in_executor(self._painter, call, *args)

    async def _tick_forever(self) -> None:
        while True:
            now = self.clock.now_ms()
            # Wake on the second boundary so the countdown steps evenly.
            await asyncio.sleep((1000 - now % 1000) / 1000)
            self._apply(self.controller.on_tick(self.clock.now_ms()))

    async def _keep_time_forever(self) -> None:
        """While the system clock is not known to be synchronised, asks the
        PSP for its time: at once, then every few minutes, and sooner again
        while the PSP cannot be reached."""
        psp_url = self.config.psp_url
        backoff = Backoff(initial=5.0, maximum=PSP_TIME_SECONDS)
        asked_at: float | None = None  # loop time of the last answer that told the time
        loop = asyncio.get_running_loop()
        while True:
            synced = await asyncio.to_thread(self.clock.check_sync)
            wait = SYNC_CHECK_SECONDS
            due = asked_at is None or loop.time() - asked_at >= PSP_TIME_SECONDS
            if not synced and psp_url is not None and due:
                if await learn_psp_time(psp_url, self.clock):
                    asked_at = loop.time()
                    backoff.reset()
                else:
                    wait = min(wait, backoff.next_delay())
            await asyncio.sleep(wait)


def client_id(config: TerminalConfig) -> str:
    """The terminal's MQTT client id: the same at every connection, so that
    a reconnect takes over the terminal's own session at once, and holding
    a digest of its broker password, so that no other account can know it.
    A broker disconnects a client when another connects with its id; with a
    guessable id, any account could throw the terminal off the broker again
    and again and fire its last will ("offline")."""
    base = f"scan2pay-terminal-{config.merchant_id}-{config.terminal_id}"
    password = config.mqtt.password
    if not password:
        return base  # a broker without passwords protects nothing anyway
    tag = hmac.new(password.encode(), base.encode(), hashlib.sha256).hexdigest()[:20]
    return f"{base}-{tag}"


def _fault(exc: Exception) -> str:
    """What a display fault says: the hardware layer's own words, or the
    kind of error for anything else."""
    return str(exc) if isinstance(exc, HardwareError) else f"{type(exc).__name__}: {exc}"
