"""``run_checkout``: one checkout, from the cashier's order to its confirmed outcome.

    merchant (PSP, once a session) -> MQTT subscribed (once a session)
        -> created -> sent -> shown
        not shown in time, or the terminal is offline:
            terminal_offline -> cancel at the PSP -> idle -> TerminalOffline
    shown -> event (or a poll) -> GET confirms -> paid / cancelled / expired
             -> status on the terminal -> CheckoutResult

Cancelling the task that runs it (Ctrl-C, a local API cancel, a shutdown)
cancels the checkout at the PSP, clears the terminal and emits "interrupted"
before the CancelledError goes on.

Nothing is announced on the word of an MQTT event alone: an event only makes
the flow ask the PSP at once, and the outcome is what ``GET
/v1/checkouts/{id}`` says. An event whose signature does not verify against
the PSP's keys (``GET /v1/keys``, fetched again once should it not: the PSP
may have rotated its key) is dropped before that. The PSP is also asked
every ``poll_interval`` and just after the checkout expires, so that a lost
event or a broker that went away cannot leave the cashier waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from scan2pay_common.backoff import Backoff
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import CheckoutEvent, CheckoutSnapshot, ShowIdle, ShowQr, ShowStatus
from scan2pay_common.money import format_major
from scan2pay_common.statuses import FINAL_STATUSES
from scan2pay_common.timefmt import from_rfc3339, now_ms

from .errors import BridgeError, KeyRejected, PspRefused, PspUnreachable, TerminalOffline
from .model import BridgeConfig, CheckoutOrder, CheckoutResult, Outcome, Step
from .orders import check_order
from .psp_client import Created, PspClient, RetryNotice
from .session import BridgeSession
from .terminal_link import TerminalLink

log = logging.getLogger(__name__)

# The PSP says "expired" from its expires_at on; ask a moment after it.
EXPIRY_MARGIN = 0.05
# How long past the checkout's expiry a silent PSP is waited for before the
# flow gives up with PspUnreachable (before expiry it could still be paid).
UNREACHABLE_GRACE = 30.0

Verdict = Literal["shown", "offline", "event"]


async def run_checkout(
    config: BridgeConfig, order: CheckoutOrder, on_step: Callable[[Step], None]
) -> CheckoutResult:
    """Runs one checkout to its outcome in a session of its own; ``on_step``
    hears each step as it happens. Raises BadInput before contacting anything
    if the order breaks the PSP's rules, and the other BridgeErrors as
    docs/cashier.md says."""
    check_order(order)
    async with BridgeSession(config) as session:
        return await checkout_in(session, order, on_step)


async def checkout_in(
    session: BridgeSession, order: CheckoutOrder, on_step: Callable[[Step], None]
) -> CheckoutResult:
    """Runs one checkout to its outcome on the session's PSP client, broker
    link, merchant and keys, as ``run_checkout`` does."""
    check_order(order)
    try:
        return await _Checkout(session, order, on_step).run()
    except KeyRejected:
        session.forget_merchant()
        raise


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class _Checkout:
    def __init__(
        self, session: BridgeSession, order: CheckoutOrder, on_step: Callable[[Step], None]
    ) -> None:
        self.session = session
        self.config = session.config
        self.order = order
        self.on_step = on_step
        self.steps: list[Step] = []
        self.started = time.monotonic()
        self.creating: asyncio.Task[Created] | None = None
        self.checkout: CheckoutSnapshot | None = None
        self.display_ticket: dict[str, Any] | None = None
        self.qr_payload: str | None = None  # an EMV merchant's (docs/emv.md)
        self.qr_sent = False
        self.undone = False

    def emit(self, name: str, message: str, **data: Any) -> None:
        step = Step(name=name, message=message, at=time.monotonic(), data=data)
        self.steps.append(step)
        log.debug("step %s: %s", name, loggable(message))  # it may quote the PSP
        try:
            self.on_step(step)
        except Exception:
            # A broken printer (a closed stdout) must not strand a payment.
            log.exception("on_step failed for step %s", name)

    def _publish_deadline(self) -> float:
        return time.monotonic() + self.config.mqtt_timeout

    def _retried(self, notice: RetryNotice) -> None:
        self.emit(
            "retry",
            f"no answer from the PSP to {notice.request} ({notice.reason}); "
            f"attempt {notice.next_attempt} of {notice.attempts} in {notice.delay:.2f} s",
            request=notice.request,
            attempt=notice.next_attempt,
            attempts=notice.attempts,
            delay_ms=_ms(notice.delay),
            reason=notice.reason,
        )

    # The whole flow.

    async def run(self) -> CheckoutResult:
        try:
            return await self._connected_run()
        except asyncio.CancelledError:
            if not self.undone:
                self.emit("interrupted", "interrupted before a checkout was created")
            raise

    async def _connected_run(self) -> CheckoutResult:
        config, order = self.config, self.order
        psp = self.session.psp.notifying(self._retried)
        merchant, broker = await self.session.connected(psp)
        link = TerminalLink(broker, order.terminal_id)
        self.emit(
            "connected",
            f"connected to the PSP at {config.psp_url} as {merchant.name} "
            f"({merchant.id}) and to the broker at {config.mqtt}",
            merchant_id=merchant.id,
            merchant_name=merchant.name,
            psp_url=config.psp_url,
            mqtt=str(config.mqtt),
            terminal_id=order.terminal_id,
            latency_ms=_ms(time.monotonic() - self.started),
        )
        try:
            return await self._checkout(psp, link)
        except asyncio.CancelledError:
            # A fresh task: this one is being cancelled, and its pending
            # cancellation would cut the clean-up short.
            await asyncio.create_task(self._undo(psp, link))
            raise

    async def _checkout(self, psp: PspClient, link: TerminalLink) -> CheckoutResult:
        created = await self._create(psp)
        checkout = created.checkout
        if checkout.status != "pending":
            # The order's checkout was made before and has ended: nothing to
            # show, only to tell. The terminal is left alone; it may be on
            # to another sale.
            return await self._finish(link, checkout, via="create")
        verdict = await self._show(link, checkout)
        if verdict == "offline":
            return await self._terminal_offline(psp, link, checkout)
        final, via = await self._await_outcome(psp, link, checkout)
        return await self._finish(link, final, via=via)

    # Steps.

    async def _create(self, psp: PspClient) -> Created:
        order = self.order
        # Shielded: a create that reached the PSP must be waited for on
        # Ctrl-C, so that its checkout can be cancelled and not left pending.
        self.creating = asyncio.create_task(psp.create_checkout(order))
        created = await asyncio.shield(self.creating)
        checkout = self.checkout = created.checkout
        self.display_ticket = created.display_ticket
        self.qr_payload = created.qr_payload
        amount = f"{format_major(checkout.amount, checkout.currency)} {checkout.currency}"
        if created.new:
            message = f"created {checkout.id} for {amount} (order {checkout.order_id})"
        else:
            message = (
                f"found {checkout.id} for {amount}: order {checkout.order_id} already had it "
                f"({checkout.status})"
            )
        self.emit(
            "created",
            f"{message} in {created.elapsed_ms:.1f} ms",
            checkout_id=checkout.id,
            order_id=checkout.order_id,
            amount=checkout.amount,
            currency=checkout.currency,
            status=checkout.status,
            qr_url=checkout.qr_url,
            expires_at=checkout.expires_at,
            new=created.new,
            attempts=created.attempts,
            latency_ms=round(created.elapsed_ms, 1),
        )
        return created

    async def _show(self, link: TerminalLink, checkout: CheckoutSnapshot) -> Verdict:
        config, terminal = self.config, self.order.terminal_id
        command = ShowQr(
            checkout_id=checkout.id,
            qr_url=checkout.qr_url,
            amount=checkout.amount,
            currency=checkout.currency,
            expires_at=checkout.expires_at,
            order_id=checkout.order_id,
            display_ticket=self.display_ticket,
            qr_payload=self.qr_payload,
        )
        sent_at = time.monotonic()
        deadline = sent_at + config.screen_timeout
        self.qr_sent = True  # set first: an interrupted publish may still land
        if not await link.publish_display(command, deadline=deadline):
            self.emit(
                "terminal_offline",
                f"the QR could not be sent to {terminal}: the broker did not acknowledge it",
                terminal_id=terminal,
                checkout_id=checkout.id,
                reason="broker",
                waited_ms=_ms(time.monotonic() - sent_at),
            )
            return "offline"
        self.emit(
            "sent",
            f"QR sent to {terminal}",
            terminal_id=terminal,
            checkout_id=checkout.id,
            topic=link.display_topic,
            latency_ms=_ms(time.monotonic() - sent_at),
        )

        def verdict() -> Verdict | None:
            if link.events_for(checkout.id):
                return "event"  # it ended before we heard it was shown
            state = link.state
            if state is None:
                return None
            if not state.online:
                return "offline"
            # An outcome screen of this checkout counts: the QR was shown
            # and the state moved on before we looked.
            if state.checkout_id == checkout.id and state.screen in ("qr", *FINAL_STATUSES):
                return "shown"
            return None

        found = await link.until(verdict, deadline)
        if found == "shown":
            state_at = link.state_at or time.monotonic()
            latency = max(0.0, state_at - sent_at)
            self.emit(
                "shown",
                f"on screen at {terminal} after {latency * 1000:.1f} ms",
                terminal_id=terminal,
                checkout_id=checkout.id,
                latency_ms=_ms(latency),
                displayed_at=link.state.displayed_at if link.state else None,
            )
            return "shown"
        if found == "event":
            return "event"
        waited = time.monotonic() - sent_at
        if found == "offline":
            message, reason = f"{terminal} is offline (its last will says so)", "offline"
        else:
            message = f"{terminal} did not show the QR within {config.screen_timeout:g} s"
            reason = "timeout"
        self.emit(
            "terminal_offline",
            message,
            terminal_id=terminal,
            checkout_id=checkout.id,
            reason=reason,
            waited_ms=_ms(waited),
        )
        return "offline"

    async def _terminal_offline(
        self, psp: PspClient, link: TerminalLink, checkout: CheckoutSnapshot
    ) -> CheckoutResult:
        terminal = self.order.terminal_id
        final = await self._cancel_at_psp(psp, checkout.id)
        if final is not None and final.status == "paid":
            # Scanned and paid after all (the terminal's state was lost on
            # the way): the money moved, so that is the outcome.
            return await self._finish(link, final, via="cancel")
        await link.publish_display(ShowIdle(), deadline=self._publish_deadline())
        if final is None:
            undone = f"the PSP could not be reached to cancel {checkout.id}"
        else:
            undone = f"{checkout.id} is {final.status} at the PSP"
        raise TerminalOffline(f"terminal {terminal} did not show the QR; {undone}")

    async def _await_outcome(
        self, psp: PspClient, link: TerminalLink, checkout: CheckoutSnapshot
    ) -> tuple[CheckoutSnapshot, str]:
        config = self.config
        expires = time.monotonic() + (from_rfc3339(checkout.expires_at) - now_ms()) / 1000
        expiry_asked = False
        next_ask = time.monotonic() + config.poll_interval
        handled = 0  # events of this checkout already told
        backoff = Backoff(initial=0.2, maximum=config.poll_interval)

        def new_events() -> list[CheckoutEvent] | None:
            return link.events_for(checkout.id)[handled:] or None

        while True:
            wake = next_ask if expiry_asked else min(next_ask, expires + EXPIRY_MARGIN)
            events = await link.until(new_events, wake)
            for event in events or ():
                handled += 1
                self.emit(
                    "event",
                    f"{event.type} event received (seq {event.seq})",
                    type=event.type,
                    event_id=event.event_id,
                    seq=event.seq,
                    checkout_id=checkout.id,
                )
            if time.monotonic() >= expires + EXPIRY_MARGIN:
                expiry_asked = True
            try:
                current = await psp.get_checkout(checkout.id, attempts=1)
            except PspUnreachable as exc:
                if time.monotonic() > expires + UNREACHABLE_GRACE:
                    raise PspUnreachable(
                        f"{exc.message}; {checkout.id} expired over "
                        f"{UNREACHABLE_GRACE:g} s ago and its outcome is unknown"
                    ) from None
                delay = backoff.next_delay()
                log.warning("%s; asking again in %.2f s", loggable(exc.message), delay)
                next_ask = time.monotonic() + delay
                continue
            backoff.reset()
            if current.status in FINAL_STATUSES:
                return current, "event" if handled else "poll"
            if events:
                log.warning(
                    "an event for %s says it ended, but the PSP says %s; waiting on",
                    checkout.id,
                    current.status,
                )
            next_ask = time.monotonic() + config.poll_interval

    async def _finish(
        self, link: TerminalLink, checkout: CheckoutSnapshot, *, via: str
    ) -> CheckoutResult:
        status = checkout.status
        if status == "pending":  # the callers pass a checkout that ended
            raise BridgeError(f"checkout {checkout.id} has not ended")
        outcome: Outcome = status
        self.emit(
            outcome,
            f"{outcome} (confirmed)",
            checkout_id=checkout.id,
            order_id=checkout.order_id,
            amount=checkout.amount,
            currency=checkout.currency,
            via=via,
            total_ms=_ms(time.monotonic() - self.started),
        )
        if self.qr_sent and not await link.publish_display(
            ShowStatus(checkout.id, outcome), deadline=self._publish_deadline()
        ):
            log.warning("the outcome of %s did not reach the broker", checkout.id)
        return CheckoutResult(
            checkout_id=checkout.id,
            outcome=outcome,
            checkout=checkout.to_dict(),
            steps=tuple(self.steps),
        )

    # Undoing.

    async def _cancel_at_psp(self, psp: PspClient, checkout_id: str) -> CheckoutSnapshot | None:
        """The checkout after a cancel: cancelled, or what it already was
        (paid, expired); None if the PSP could not be asked."""
        try:
            return await psp.cancel_checkout(checkout_id)
        except PspRefused as exc:
            if exc.psp_code not in ("already_paid", "expired"):
                log.warning("cancelling %s: %s", checkout_id, loggable(exc.message))
                return None
        except PspUnreachable as exc:
            log.warning("cancelling %s: %s", checkout_id, loggable(exc.message))
            return None
        try:
            return await psp.get_checkout(checkout_id)
        except BridgeError as exc:
            log.warning(
                "reading %s after its cancel was refused: %s", checkout_id, loggable(exc.message)
            )
            return None

    async def _undo(self, psp: PspClient, link: TerminalLink) -> None:
        self.undone = True
        checkout = self.checkout
        if checkout is None and self.creating is not None:
            try:
                async with asyncio.timeout(self.config.psp_timeout):
                    checkout = (await self.creating).checkout
            except (BridgeError, TimeoutError):
                checkout = None
        if checkout is None:
            self.emit("interrupted", "interrupted before a checkout was created")
            return
        if checkout.status in FINAL_STATUSES:
            final: CheckoutSnapshot | None = checkout
        else:
            final = await self._cancel_at_psp(psp, checkout.id)
        status = final.status if final is not None else None
        display = None
        if self.qr_sent or status == "paid":
            command = ShowStatus(checkout.id, "paid") if status == "paid" else ShowIdle()
            if await link.publish_display(command, deadline=self._publish_deadline()):
                display = command.type
        terminal = self.order.terminal_id
        if status == "paid":
            message = f"interrupted, but {checkout.id} was already paid"
        elif status == "cancelled":
            message = f"interrupted: cancelled {checkout.id} at the PSP"
        elif status is not None:
            message = f"interrupted: {checkout.id} was already {status}"
        else:
            message = (
                f"interrupted: could not reach the PSP to cancel {checkout.id}; "
                f"it expires at {checkout.expires_at}"
            )
        if display == "idle":
            message += f"; {terminal} cleared"
        self.emit(
            "interrupted",
            message,
            checkout_id=checkout.id,
            status=status,
            terminal_id=terminal,
            display=display,
        )
