"""What the terminal believes: pure checks, no I/O (docs/signing.md).

A terminal holds the PSP's public key(s) (``Identity.keys``; production
terminals must) or believes its topics unchecked, as before signing. With a
key:

- A QR is shown only from a ``show_qr`` with a display ticket the PSP
  signed for this terminal of this merchant (terminal ids are unique only
  within a merchant), not expired, whose checkout, URL, amount, currency
  and expiry are the command's. Anyone who can publish on the display topic
  can send a command; only the PSP can make a ticket. A bare QR URL has no
  ticket: it is bound to no merchant and no terminal, and is never shown.
- An outcome ("Paid" above all) is shown only for the checkout on screen,
  and only on evidence bound to this merchant and terminal: an event the
  PSP signed that names both, or the PSP's own answer about that very
  checkout, naming this merchant. A cashier's ``status`` is unsigned: its
  ``cancelled`` and ``expired`` are believed (they let no goods leave), its
  ``paid`` is only a reason to ask the PSP.

Without a key the terminal believes its display topic, as before signing
(a cashier's ``status`` shows for whatever checkout it names, so that a
terminal restarted after the sale still shows its outcome); events and the
PSP's answers still count only for the checkout on screen and this merchant.

Each check answers None when all is well, or why not (for the log).

The signed envelope (``alg``, ``kid``, the canonical bytes) and the Ed25519
check itself are ``scan2pay_common.signing``'s (an event is checked over the
bytes received, cut of their signature member), the same as the PSP's and
the cashier bridge's: libsodium, through PyNaCl.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent, DisplayTicket, ShowQr, ShowStatus
from scan2pay_common.signing import PublicKey, verify, verify_received
from scan2pay_common.timefmt import from_rfc3339

from .controller import BareUrl, CodeInfo
from .screens import IdleScreen, OutcomeScreen, QrScreen, Screen

_MUST_MATCH = ("checkout_id", "qr_url", "qr_payload", "amount", "currency", "expires_at")


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose terminal this is, and the PSP's keys it believes (none: it
    believes its topics unchecked)."""

    merchant_id: str
    terminal_id: str
    keys: tuple[PublicKey, ...] = ()


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """A PSP event as it arrived: ``payload``, the bytes received, and
    ``event``, read from them once. Its signature is checked over those
    very bytes (``signing.verify_received``), not over a copy made again."""

    payload: bytes
    event: CheckoutEvent


# What may change the outcome of the checkout on screen: a PSP event, the
# PSP's answer to GET /Q/{CODE}, or a cashier's status command.
Evidence = SignedEvent | CodeInfo | ShowStatus


def qr_problem(command: ShowQr | BareUrl, me: Identity, now: int) -> str | None:
    """Whether a QR may be shown: with keys, only from a display ticket for
    this merchant and terminal; never from a bare URL."""
    if not me.keys:
        return None
    if isinstance(command, BareUrl):
        return "a bare QR URL has no display ticket: it is bound to no merchant or terminal"
    return ticket_problem(command, me.keys, me.merchant_id, me.terminal_id, now)


def ticket_problem(
    command: ShowQr, keys: Sequence[PublicKey], merchant_id: str, terminal_id: str, now: int
) -> str | None:
    raw = command.display_ticket
    if raw is None:
        return "it has no display ticket"
    if not verify(raw, keys):
        return "its display ticket is not signed by the PSP"
    try:
        ticket = DisplayTicket.from_dict(raw)
    except InvalidValue as exc:
        return f"its display ticket is off-contract: {exc.message}"
    if ticket.merchant_id != merchant_id:
        return f"its display ticket is merchant {ticket.merchant_id}'s"
    if ticket.terminal_id != terminal_id:
        return f"its display ticket is for terminal {ticket.terminal_id!r}"
    if now >= from_rfc3339(ticket.expires_at):
        return "its display ticket has expired"
    for name in _MUST_MATCH:
        if getattr(ticket, name) != getattr(command, name):
            return f"its {name} is not the display ticket's"
    return None


def outcome_problem(evidence: Evidence, screen: Screen, me: Identity) -> str | None:
    """Whether ``evidence`` may move the checkout on ``screen`` to an
    outcome: "Paid" above all, but also cancelled, expired or refunded.

    - Only the checkout on screen: evidence about any other, or with
      nothing on screen, changes nothing.
    - An event: it is this merchant's; with keys, the PSP signed it and its
      checkout was made for this terminal.
    - The PSP's answer about a code: it names this merchant and the checkout
      on screen. Without keys a bare URL's QR is on screen with no checkout
      id, and the answer about that very URL is what names its checkout.
    - A cashier's status: with keys, ``paid`` is unsigned and so no
      evidence (``Controller.on_paid_hint`` makes it a question to the PSP
      about the QR on screen). Without keys it is believed, whichever
      checkout it names.
    """
    if isinstance(evidence, ShowStatus) and not me.keys:
        return None
    if isinstance(screen, IdleScreen):
        return "no checkout is on screen"
    if isinstance(evidence, CodeInfo):
        return _answer_problem(evidence, screen, me)
    about = (
        evidence.event.checkout.id if isinstance(evidence, SignedEvent) else evidence.checkout_id
    )
    if about != screen.checkout_id:
        return f"it is about {about}, not the checkout on screen"
    if isinstance(evidence, SignedEvent):
        return _event_problem(evidence, me)
    if me.keys and evidence.status == "paid":
        return "a cashier's paid is unsigned: only the PSP's word shows paid"
    return None


def static_payment_problem(evidence: SignedEvent, me: Identity) -> str | None:
    """Whether an event may show the payment of a checkout a customer typed
    at this till's printed code, which was never on screen: a
    ``checkout.paid`` of a static checkout, made for this very terminal
    (checked with or without keys: nothing on screen ties it here), of this
    merchant, and with keys signed by the PSP."""
    event = evidence.event
    if event.type != "checkout.paid" or event.checkout.source != "static":
        return "it is not the payment of a checkout typed in at a printed till code"
    if event.checkout.terminal_id != me.terminal_id:
        return f"its checkout is for terminal {event.checkout.terminal_id!r}"
    return _event_problem(evidence, me)


def static_created_problem(evidence: SignedEvent, me: Identity) -> str | None:
    """Whether an event may show, pending, a checkout a customer just typed
    at this till's printed code: a ``checkout.created`` of a static
    checkout, made for this very terminal, of this merchant, signed by the
    PSP. Only with the PSP's key: the event's QR is drawn, and an unsigned
    one could put anyone's code on this screen."""
    event = evidence.event
    if event.type != "checkout.created" or event.checkout.source != "static":
        return "it is not a checkout typed in at a printed till code"
    if not me.keys:
        return "this terminal has no PSP key to check the event with"
    if event.checkout.terminal_id != me.terminal_id:
        return f"its checkout is for terminal {event.checkout.terminal_id!r}"
    return _event_problem(evidence, me)


def _event_problem(evidence: SignedEvent, me: Identity) -> str | None:
    event = evidence.event
    if event.merchant_id != me.merchant_id:
        return f"it is merchant {event.merchant_id}'s"
    if not me.keys:
        return None
    if not verify_received(evidence.payload, event.signature, me.keys):
        return "its signature is missing or not the PSP's"
    if event.checkout.terminal_id != me.terminal_id:
        return f"its checkout is for terminal {event.checkout.terminal_id!r}"
    return None


def _answer_problem(info: CodeInfo, screen: QrScreen | OutcomeScreen, me: Identity) -> str | None:
    if info.merchant_id != me.merchant_id:
        if info.merchant_id is None:
            return "it names no merchant"
        return f"it is merchant {info.merchant_id}'s"
    if screen.checkout_id is None:
        # A bare URL's QR, which only a terminal without keys shows.
        if me.keys:
            return "no checkout of a display ticket is on screen"
        if not isinstance(screen, QrScreen) or screen.qr_url != info.url:
            return "it is about another QR than the one on screen"
        return None
    if info.checkout_id != screen.checkout_id:
        return f"it is about {info.checkout_id}, not the checkout on screen"
    return None


def announce_problem(evidence: SignedEvent, me: Identity) -> str | None:
    """Whether the soundbox may say ``evidence`` aloud (docs/terminal.md,
    "Sound"): only an event the PSP signed, checked here with its key, of
    this merchant's checkout made for this terminal. A terminal without
    the PSP's key says nothing: a fake "payment received" is what
    soundboxes are known to be fooled by."""
    event = evidence.event
    if not me.keys:
        return "this terminal has no PSP key to check events with"
    if not verify_received(evidence.payload, event.signature, me.keys):
        return "its signature is missing or not the PSP's"
    if event.merchant_id != me.merchant_id:
        return f"it is merchant {event.merchant_id}'s"
    if event.checkout.terminal_id != me.terminal_id:
        return f"its checkout is for terminal {event.checkout.terminal_id!r}"
    return None
