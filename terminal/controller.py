"""Which screen the terminal shows, decided with no I/O.

The daemon feeds in what happens (a display command, a PSP event, a lookup's
answer, the clock, the broker coming and going) and gets back whether to
redraw and whether to ask the PSP about a bare URL, and reads
``needs_merchant_events``: whether the checkout on screen may have its
events on the merchant's topic alone. Tested by calling it.

    idle --show_qr / bare URL--> qr --status, event, or expiry--> outcome
    outcome --idle_after--> idle;  any --idle--> idle

Payments missed while the terminal was away, too old to say aloud, wait on
the idle screen ("Received earlier") until the next checkout leaves it.

An event or a lookup's answer moves only the checkout on screen. Which
inputs may be believed at all (display tickets, signatures, whose merchant
and terminal, a cashier's status for which checkout) is ``terminal.trust``'s,
which the daemon asks first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scan2pay_common.messages import (
    CheckoutEvent,
    CheckoutStatus,
    DisplayCommand,
    ShowIdle,
    ShowQr,
    ShowStatus,
)
from scan2pay_common.messages import Screen as ScreenKind
from scan2pay_common.static_codes import short_id
from scan2pay_common.statuses import STATUS_FOR_EVENT, is_final_status
from scan2pay_common.timefmt import from_rfc3339

from .screens import (
    EARLIER_KEPT,
    EarlierPayment,
    IdleScreen,
    Outcome,
    OutcomeScreen,
    QrScreen,
    Screen,
    View,
)

NO_CONNECTION = "No connection"
STICKER = "Sticker"
# How many checkouts that reached an outcome here are remembered, so that a
# checkout.created heard again after its "Paid" does not show it pending.
ENDED_KEPT = 64


@dataclass(frozen=True, slots=True)
class BareUrl:
    """A display payload that is just a QR URL under the PSP's public URL."""

    url: str


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What the PSP's ``GET /Q/{CODE}`` said about a QR URL: the one on
    screen when the cashier said "paid", or (without the PSP's key) a bare
    URL. ``merchant_id`` is None from a PSP that did not name the merchant's
    id; such an answer is no evidence (``terminal.trust``)."""

    url: str
    checkout_id: str
    amount: int
    currency: str
    expires_at: int
    status: CheckoutStatus
    merchant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Effects:
    redraw: bool = False
    lookup: str | None = None  # a URL to ask the PSP about


NOTHING = Effects()


def screen_kind(screen: Screen) -> ScreenKind:
    """The ``screen`` field of the terminal's state message."""
    if isinstance(screen, IdleScreen):
        return "idle"
    if isinstance(screen, QrScreen):
        return "qr"
    return screen.outcome


def screen_checkout(screen: Screen) -> str | None:
    return None if isinstance(screen, IdleScreen) else screen.checkout_id


class Controller:
    def __init__(
        self, merchant_name: str, *, idle_after_ms: int = 10_000, till: str | None = None
    ) -> None:
        self._idle = IdleScreen(merchant_name, till)
        self._idle_after_ms = idle_after_ms
        self._outcome_since: int | None = None
        self._untied = False
        self._ended: dict[str, None] = {}  # checkouts shown with an outcome, oldest first
        self.view = View(self._idle)

    # Inputs.

    @property
    def needs_merchant_events(self) -> bool:
        """Whether the checkout on screen (its QR, or its outcome, where a
        refund still shows) cannot be tied to this terminal. The PSP copies
        an event to a terminal's own events topic only when its checkout
        was created for that terminal, and only a display ticket verified
        for this terminal proves that; any other checkout's events may come
        on the merchant's topic alone."""
        return self._untied

    def on_command(
        self, command: DisplayCommand | BareUrl, now: int, *, tied: bool = False
    ) -> Effects:
        """``tied``: the command is a ``show_qr`` whose display ticket the
        daemon verified for this terminal."""
        if isinstance(command, ShowQr):
            expires_at = from_rfc3339(command.expires_at)
            if now >= expires_at:  # e.g. a stale retained command after a restart
                self.view = replace(self.view, screen=self._idle)
                return replace(self._outcome(command.checkout_id, "expired", now), redraw=True)
            return self._show(
                QrScreen(
                    checkout_id=command.checkout_id,
                    qr_url=command.qr_url,
                    amount=command.amount,
                    currency=command.currency,
                    expires_at=expires_at,
                    order_id=command.order_id,
                    qr_payload=command.qr_payload,
                ),
                now,
                untied=not tied,
            )
        if isinstance(command, BareUrl):
            if isinstance(self.view.screen, QrScreen) and self.view.screen.qr_url == command.url:
                return NOTHING
            effects = self._show(QrScreen(checkout_id=None, qr_url=command.url), now, untied=True)
            return replace(effects, lookup=command.url)
        if isinstance(command, ShowStatus):
            return self._outcome(command.checkout_id, command.status, now)
        if isinstance(command, ShowIdle):
            return self._show(self._idle, now)
        raise TypeError(f"not a display command: {command!r}")  # pragma: no cover

    def on_paid_hint(self, checkout_id: str) -> Effects:
        """A cashier's unsigned "paid" for a terminal that checks signatures:
        not believed, only a reason to ask the PSP about the QR on screen,
        and only if it is that checkout's (``on_lookup`` then shows what the
        PSP says)."""
        screen = self.view.screen
        if isinstance(screen, QrScreen) and screen.checkout_id == checkout_id:
            return Effects(lookup=screen.qr_url)
        return NOTHING

    def concerns(self, checkout_id: str) -> bool:
        """Whether an event about ``checkout_id`` could change the screen:
        the merchant's topic carries every lane's events, and the daemon
        checks a signature (the costly part) only for those that can."""
        screen = self.view.screen
        return not isinstance(screen, IdleScreen) and screen.checkout_id == checkout_id

    def on_event(self, event: CheckoutEvent, now: int) -> Effects:
        """A PSP event changes the screen only for the checkout on it: a paid
        event shows "paid" even if the cashier PC is gone, and a refund shows
        while that checkout is still on screen (its QR or its outcome)."""
        screen = self.view.screen
        if isinstance(screen, IdleScreen) or not self.concerns(event.checkout.id):
            return NOTHING
        if event.type == "checkout.created":
            return NOTHING  # a repeat: the checkout is on screen already
        if event.type == "checkout.refunded":
            refund = OutcomeScreen(
                event.checkout.id,
                "refunded",
                event.checkout.refunded_amount,
                event.checkout.currency,
            )
            return self._show(refund, now)
        if not isinstance(screen, QrScreen):
            return NOTHING  # the outcome is on screen already
        outcome = STATUS_FOR_EVENT[event.type]
        if not is_final_status(outcome):  # pragma: no cover - created returned above
            return NOTHING
        return self._outcome(event.checkout.id, outcome, now)

    def on_static_created(self, event: CheckoutEvent, now: int) -> Effects:
        """A checkout a customer just typed at this till's printed code,
        pending: the PSP's signed ``checkout.created``, which
        ``terminal.trust.static_created_problem`` has checked. The terminal
        shows its amount and QR, "Waiting for payment" (the customer is on
        its payment page already) and the sticker's short id, until its
        ``checkout.paid`` shows "Paid". Never over a cashier's QR: that sale
        comes first. A repeat, or one that lapsed or ended already, changes
        nothing."""
        checkout = event.checkout
        screen = self.view.screen
        if isinstance(screen, QrScreen) and not screen.typed:
            return NOTHING
        if checkout.id in self._ended or screen_checkout(screen) == checkout.id:
            return NOTHING
        expires_at = from_rfc3339(checkout.expires_at)
        if now >= expires_at:
            return NOTHING
        code_id = checkout.static_code_id
        typed = QrScreen(
            checkout_id=checkout.id,
            qr_url=checkout.qr_url,
            amount=checkout.amount,
            currency=checkout.currency,
            expires_at=expires_at,
            via=f"Sticker {short_id(code_id)}" if code_id is not None else STICKER,
        )
        # Made for this terminal (the signed event says so): its events come
        # on the terminal's own topic.
        return self._show(typed, now, untied=False)

    def on_static_payment(self, event: CheckoutEvent, now: int) -> Effects:
        """A checkout a customer typed at this till's printed code, paid: no
        ``show_qr`` ever named it, so the PSP's signed event, which
        ``terminal.trust.static_payment_problem`` has checked, is how the
        terminal hears of it. It shows "Paid" with the amount and the
        sticker's short id, unless a cashier's QR is on screen: that sale
        comes first, and the static one is the board's and the cashier's to
        see. A typed checkout's QR on screen, this one's or another
        customer's, gives way to it."""
        screen = self.view.screen
        if isinstance(screen, QrScreen) and not screen.typed:
            return NOTHING
        code_id = event.checkout.static_code_id
        paid = OutcomeScreen(
            event.checkout.id,
            "paid",
            event.checkout.amount,
            event.checkout.currency,
            via=None if code_id is None else f"Sticker {short_id(code_id)}",
        )
        if isinstance(self.view.screen, OutcomeScreen) and self.view.screen == paid:
            return NOTHING
        return self._show(paid, now)

    def on_received_earlier(self, payment: EarlierPayment, now: int) -> Effects:
        """A payment at this till that the terminal missed and that is too
        old to say (``terminal.soundbox``, which checked its signature and
        hands each over once). It joins the idle screen's "Received
        earlier", shown now if the terminal is idle, else when it next is:
        never over a cashier's QR nor a current outcome."""
        idle = self._idle
        if any(known.checkout_id == payment.checkout_id for known in idle.earlier):
            return NOTHING
        newest = sorted((payment, *idle.earlier), key=lambda p: p.paid_at, reverse=True)
        self._idle = replace(
            idle, earlier=tuple(newest[:EARLIER_KEPT]), earlier_count=idle.earlier_count + 1
        )
        if isinstance(self.view.screen, IdleScreen):
            return self._show(self._idle, now)
        return NOTHING

    def on_lookup(self, info: CodeInfo, now: int) -> Effects:
        """The PSP's answer about the QR on screen. Whose it is, and whether
        it may be believed, is ``terminal.trust.outcome_problem``'s to say
        before; here it is only matched to the screen."""
        screen = self.view.screen
        if not isinstance(screen, QrScreen) or screen.qr_url != info.url:
            return NOTHING  # the screen moved on while we asked
        if screen.checkout_id is not None and screen.checkout_id != info.checkout_id:
            return NOTHING  # not the checkout on screen
        # The QR on screen, now described: tied or not as it was.
        untied = self._untied
        if is_final_status(info.status):
            described = OutcomeScreen(info.checkout_id, info.status, info.amount, info.currency)
            return self._show(described, now, untied=untied)
        return self._show(
            replace(
                screen,
                checkout_id=info.checkout_id,
                amount=info.amount,
                currency=info.currency,
                expires_at=info.expires_at,
            ),
            now,
            untied=untied,
        )

    def on_tick(self, now: int) -> Effects:
        screen = self.view.screen
        if isinstance(screen, QrScreen) and screen.expires_at is not None:
            if now >= screen.expires_at and screen.checkout_id is not None:
                return self._outcome(screen.checkout_id, "expired", now)
            return Effects(redraw=True)  # the countdown moves
        if (
            isinstance(screen, OutcomeScreen)
            and self._outcome_since is not None
            and now - self._outcome_since >= self._idle_after_ms
        ):
            return self._show(self._idle, now)
        return NOTHING

    def on_connection(self, connected: bool) -> Effects:
        banner = None if connected else NO_CONNECTION
        if self.view.banner == banner:
            return NOTHING
        self.view = replace(self.view, banner=banner)
        return Effects(redraw=True)

    # Moves.

    def _outcome(self, checkout_id: str, outcome: Outcome, now: int) -> Effects:
        screen = self.view.screen
        amount = currency = None
        if not isinstance(screen, IdleScreen) and screen.checkout_id == checkout_id:
            if isinstance(screen, OutcomeScreen) and screen.outcome == outcome:
                return NOTHING
            amount, currency = screen.amount, screen.currency
        return self._show(OutcomeScreen(checkout_id, outcome, amount, currency), now)

    def _leave_idle(self, screen: Screen) -> None:
        """The next checkout (its QR, or a payment such as one at the
        printed code) takes the place of an idle screen that showed the
        earlier payments: they were seen, and are not shown again. Another
        outcome (a stale retained QR found expired) leaves them."""
        new_checkout = isinstance(screen, QrScreen) or (
            isinstance(screen, OutcomeScreen) and screen.outcome == "paid"
        )
        if new_checkout and self._idle.earlier:
            self._idle = replace(self._idle, earlier=(), earlier_count=0)

    def _show(self, screen: Screen, now: int, *, untied: bool | None = None) -> Effects:
        """``untied`` says whether ``screen``'s checkout is untied (see
        ``needs_merchant_events``); left out, the screen's checkout keeps what
        was known of it, and any other screen is not untied."""
        if untied is None:
            before = screen_checkout(self.view.screen)
            same = not isinstance(screen, IdleScreen) and screen_checkout(screen) == before
            untied = self._untied and same
        self._untied = untied
        if screen == self.view.screen:
            return NOTHING
        if isinstance(self.view.screen, IdleScreen) and not isinstance(screen, IdleScreen):
            self._leave_idle(screen)
        self._outcome_since = now if isinstance(screen, OutcomeScreen) else None
        if isinstance(screen, OutcomeScreen):
            self._ended[screen.checkout_id] = None
            while len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
        self.view = replace(self.view, screen=screen)
        return Effects(redraw=True)
