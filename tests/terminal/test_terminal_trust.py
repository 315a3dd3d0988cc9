"""The terminal's rule of belief (terminal/trust.py), called directly: which
display commands may put a QR on screen, and which evidence may turn the
checkout on screen to "Paid". Real Ed25519 signatures, no broker, no PSP.

The two merchants here have a terminal of the same name, as real ones do:
terminal ids are unique only within a merchant."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import pytest

from scan2pay_common.jsonfields import dumps
from scan2pay_common.messages import (
    STATUS_FOR_EVENT,
    CheckoutEvent,
    CheckoutSnapshot,
    CheckoutStatus,
    DisplayTicket,
    EventType,
    ShowQr,
    ShowStatus,
)
from scan2pay_common.signing import SigningKey
from scan2pay_common.timefmt import to_rfc3339
from terminal.controller import BareUrl, CodeInfo
from terminal.screens import IdleScreen, OutcomeScreen, QrScreen, Screen
from terminal.trust import (
    Identity,
    SignedEvent,
    outcome_problem,
    qr_problem,
    static_created_problem,
    static_payment_problem,
)

T0 = 1_800_000_000_000
A, B = "mer_aaaaaaaaaaaaaaaaaaaa", "mer_bbbbbbbbbbbbbbbbbbbb"
LANE = "lane-1"
PSP = SigningKey.generate()
ATTACKER = SigningKey.generate()
KEYED = Identity(A, LANE, (PSP.public,))
UNKEYED = Identity(A, LANE)
X, Y = "co_x_on_screen", "co_y_elsewhere"
URL_X = "HTTPS://PAY.EXAMPLE/Q/" + "X" * 32
URL_Y = "HTTPS://PAY.EXAMPLE/Q/" + "Y" * 32
ON_SCREEN = QrScreen(X, URL_X, 1234, "EUR", T0 + 300_000)


def show_qr(
    checkout_id: str = X,
    qr_url: str = URL_X,
    *,
    merchant_id: str = A,
    terminal_id: str | None = LANE,
    key: SigningKey = PSP,
) -> ShowQr:
    """A cashier's ``show_qr`` with the ticket the PSP signs (psp_server.api.checkouts)."""
    expires_at = to_rfc3339(T0 + 300_000)
    ticket = DisplayTicket(
        checkout_id=checkout_id,
        merchant_id=merchant_id,
        qr_url=qr_url,
        amount=1234,
        currency="EUR",
        terminal_id=terminal_id,
        expires_at=expires_at,
    )
    return ShowQr(
        checkout_id, qr_url, 1234, "EUR", expires_at, display_ticket=key.sign(ticket.to_dict())
    )


def paid_event(
    checkout_id: str = X,
    *,
    merchant_id: str = A,
    terminal_id: str | None = LANE,
    key: SigningKey | None = PSP,
) -> SignedEvent:
    """A ``checkout.paid`` event as the PSP publishes it (signed unless key is None)."""
    snapshot = CheckoutSnapshot(
        id=checkout_id,
        order_id="A-1",
        amount=1234,
        currency="EUR",
        status="paid",
        qr_url=URL_X,
        expires_at=to_rfc3339(T0 + 300_000),
        terminal_id=terminal_id,
        created_at=to_rfc3339(T0),
    )
    event = CheckoutEvent(
        event_id="evt_1",
        seq=1,
        type="checkout.paid",
        merchant_id=merchant_id,
        checkout=snapshot,
        created_at=to_rfc3339(T0 + 1000),
    )
    payload = dumps(key.sign(event.to_dict())) if key else event.to_json()
    return SignedEvent(payload, CheckoutEvent.from_json(payload))


def reserialised(evidence: SignedEvent) -> SignedEvent:
    """The same event as JSON of another form (spaces after the separators)."""
    payload = json.dumps(orjson.loads(evidence.payload)).encode()
    return SignedEvent(payload, CheckoutEvent.from_json(payload))


def answer(
    checkout_id: str = X,
    *,
    url: str = URL_X,
    merchant_id: str | None = A,
    status: CheckoutStatus = "paid",
) -> CodeInfo:
    """What the PSP's ``GET /Q/{CODE}`` says, as terminal.psp_lookup reads it."""
    return CodeInfo(url, checkout_id, 1234, "EUR", T0 + 300_000, status, merchant_id)


# Which QR may be shown.


def test_a_qr_shows_only_from_a_ticket_for_this_merchant_and_terminal() -> None:
    assert qr_problem(show_qr(), KEYED, T0) is None
    refused: dict[str, tuple[ShowQr | BareUrl, str]] = {
        "another merchant's ticket for its own lane-1": (
            show_qr(Y, URL_Y, merchant_id=B),
            f"merchant {B}'s",
        ),
        "this merchant's ticket for another lane": (
            show_qr(terminal_id="lane-2"),
            "for terminal 'lane-2'",
        ),
        "a ticket for no terminal": (show_qr(terminal_id=None), "for terminal None"),
        "a ticket signed by another key": (show_qr(key=ATTACKER), "not signed by the PSP"),
        "no ticket": (replace(show_qr(), display_ticket=None), "has no display ticket"),
        "a bare URL": (BareUrl(URL_X), "bound to no merchant or terminal"),
    }
    for what, (command, reason) in refused.items():
        problem = qr_problem(command, KEYED, T0)
        assert problem is not None, what
        assert reason in problem, (what, problem)


def test_a_ticket_edited_to_name_this_merchant_no_longer_verifies() -> None:
    theirs = show_qr(Y, URL_Y, merchant_id=B)
    assert theirs.display_ticket is not None
    edited = replace(theirs, display_ticket={**theirs.display_ticket, "merchant_id": A})
    assert qr_problem(edited, KEYED, T0) == "its display ticket is not signed by the PSP"


def test_without_keys_every_qr_is_believed() -> None:
    """As before signing, and as the terminal warns at start."""
    commands: list[ShowQr | BareUrl] = [show_qr(merchant_id=B), BareUrl(URL_Y)]
    for command in commands:
        assert qr_problem(command, UNKEYED, T0) is None


# Which evidence may show "Paid".


def test_paid_from_a_signed_event_naming_this_merchant_and_terminal() -> None:
    assert outcome_problem(paid_event(), ON_SCREEN, KEYED) is None
    refused: dict[str, tuple[SignedEvent, str]] = {
        "unsigned": (paid_event(key=None), "signature is missing or not the PSP's"),
        "signed by another key": (
            paid_event(key=ATTACKER),
            "signature is missing or not the PSP's",
        ),
        "another merchant's": (paid_event(merchant_id=B), f"merchant {B}'s"),
        "for another of this merchant's terminals": (
            paid_event(terminal_id="lane-2"),
            "for terminal 'lane-2'",
        ),
        "for no terminal": (paid_event(terminal_id=None), "for terminal None"),
        "another checkout's": (paid_event(Y), "not the checkout on screen"),
        # The PSP's own event, its content intact, but not the bytes it
        # published: the signature is checked over the bytes received.
        "re-serialised on its way": (
            reserialised(paid_event()),
            "signature is missing or not the PSP's",
        ),
    }
    for what, (evidence, reason) in refused.items():
        problem = outcome_problem(evidence, ON_SCREEN, KEYED)
        assert problem is not None, what
        assert reason in problem, (what, problem)


def test_paid_from_the_psps_answer_about_the_checkout_on_screen_of_this_merchant() -> None:
    assert outcome_problem(answer(), ON_SCREEN, KEYED) is None
    refused: dict[str, tuple[CodeInfo, str]] = {
        # B's checkout Y, paid, looked up through a URL an attacker put forward.
        "another checkout's": (answer(Y, url=URL_Y), f"about {Y}, not the checkout on screen"),
        "another merchant's": (answer(merchant_id=B), f"merchant {B}'s"),
        "naming no merchant (a PSP from before)": (answer(merchant_id=None), "names no merchant"),
    }
    for what, (info, reason) in refused.items():
        problem = outcome_problem(info, ON_SCREEN, KEYED)
        assert problem is not None, what
        assert reason in problem, (what, problem)


def test_a_cashiers_paid_is_no_evidence_with_keys() -> None:
    problem = outcome_problem(ShowStatus(X, "paid"), ON_SCREEN, KEYED)
    assert problem is not None
    assert "unsigned" in problem
    # Cancelled and expired let no goods leave: the cashier's word does,
    # for the checkout on screen only.
    for status in ("cancelled", "expired"):
        assert outcome_problem(ShowStatus(X, status), ON_SCREEN, KEYED) is None
        problem = outcome_problem(ShowStatus(Y, status), ON_SCREEN, KEYED)
        assert problem is not None
        assert "not the checkout on screen" in problem


@pytest.mark.parametrize(
    "evidence",
    [paid_event(), answer(), ShowStatus(X, "paid")],
    ids=["signed event", "psp answer", "cashier status"],
)
def test_nothing_shows_paid_with_no_checkout_on_screen(evidence: Any) -> None:
    idle = IdleScreen("Shop")
    assert outcome_problem(evidence, idle, KEYED) == "no checkout is on screen"


def test_with_keys_a_bare_urls_qr_is_never_paid() -> None:
    """Bare URLs are refused with keys; should one be on screen all the
    same, no answer about it counts: it is bound to nothing."""
    bare = QrScreen(None, URL_Y)
    problem = outcome_problem(answer(Y, url=URL_Y), bare, KEYED)
    assert problem == "no checkout of a display ticket is on screen"


def test_a_refund_or_outcome_still_on_screen_takes_only_its_own_checkouts_evidence() -> None:
    paid = OutcomeScreen(X, "paid", 1234, "EUR")
    assert outcome_problem(paid_event(), paid, KEYED) is None
    assert outcome_problem(paid_event(Y), paid, KEYED) is not None


def test_without_keys_answers_and_events_still_bind_the_merchant_and_checkout() -> None:
    bare: Screen = QrScreen(None, URL_Y)
    # The answer about the bare URL on screen is what names its checkout...
    assert outcome_problem(answer(Y, url=URL_Y), bare, UNKEYED) is None
    # ...if it is this merchant's, and about that very URL.
    assert outcome_problem(answer(Y, url=URL_Y, merchant_id=B), bare, UNKEYED) is not None
    assert outcome_problem(answer(X, url=URL_X), bare, UNKEYED) is not None
    assert outcome_problem(answer(Y, url=URL_Y), ON_SCREEN, UNKEYED) is not None
    assert outcome_problem(paid_event(key=None), ON_SCREEN, UNKEYED) is None
    assert outcome_problem(paid_event(merchant_id=B, key=None), ON_SCREEN, UNKEYED) is not None
    # The cashier's status is believed, as before signing.
    assert outcome_problem(ShowStatus(Y, "paid"), ON_SCREEN, UNKEYED) is None


def _payload(url: str, amount: int = 1234) -> str:
    from scan2pay_common import emv

    merchant = emv.MerchantInfo("Shop", "5814", "DE", "Berlin")
    return emv.dynamic_payload(url, merchant, amount=amount, currency="EUR")


def test_an_emv_payload_shows_only_as_the_ticket_signed_it() -> None:
    expires_at = to_rfc3339(T0 + 300_000)
    payload = _payload(URL_X)

    def command(signed: str | None, sent: str | None) -> ShowQr:
        ticket = DisplayTicket(X, A, URL_X, 1234, "EUR", LANE, expires_at, qr_payload=signed)
        return ShowQr(
            X, URL_X, 1234, "EUR", expires_at, display_ticket=PSP.sign(ticket.to_dict()),
            qr_payload=sent,
        )  # fmt: skip

    assert qr_problem(command(payload, payload), KEYED, T0) is None
    # A payload the PSP did not sign: another amount inside, or none signed.
    other = _payload(URL_X, amount=1)
    for signed, sent in ((payload, other), (None, payload), (payload, None)):
        problem = qr_problem(command(signed, sent), KEYED, T0)
        assert problem is not None
        assert "its qr_payload is not the display ticket's" in problem


def static_paid_event(
    *,
    merchant_id: str = A,
    terminal_id: str | None = LANE,
    key: SigningKey | None = PSP,
    kind: EventType = "checkout.paid",
) -> SignedEvent:
    """A checkout a customer typed at a printed till code, as the PSP
    announces it (signed unless key is None)."""
    snapshot = CheckoutSnapshot(
        id="co_typed",
        order_id="static-co_typed",
        amount=1250,
        currency="EUR",
        status=STATUS_FOR_EVENT[kind],
        qr_url=URL_X,
        expires_at=to_rfc3339(T0 + 300_000),
        terminal_id=terminal_id,
        created_at=to_rfc3339(T0),
        source="static",
        static_code_id=STICKER,
    )
    event = CheckoutEvent(
        event_id="evt_2",
        seq=2,
        type=kind,
        merchant_id=merchant_id,
        checkout=snapshot,
        created_at=to_rfc3339(T0 + 1000),
    )
    payload = dumps(key.sign(event.to_dict())) if key else event.to_json()
    return SignedEvent(payload, CheckoutEvent.from_json(payload))


STICKER = "sc_019ab52e4f1c9f8e7d6c5b4a3928"


def test_a_static_payment_shows_only_signed_for_this_merchant_and_terminal() -> None:
    me = Identity(A, LANE, (PSP.public,))
    assert static_payment_problem(static_paid_event(), me) is None
    assert static_payment_problem(static_paid_event(merchant_id=B), me) is not None
    assert static_payment_problem(static_paid_event(terminal_id="lane-2"), me) is not None
    assert static_payment_problem(static_paid_event(key=None), me) is not None
    assert static_payment_problem(static_paid_event(key=ATTACKER), me) is not None
    assert static_payment_problem(static_paid_event(kind="checkout.expired"), me) is not None
    # A cashier's checkout (no static source) never shows this way.
    assert static_payment_problem(paid_event(), me) is not None
    # Without keys the terminal still must be this one: nothing on screen ties it here.
    unkeyed = Identity(A, LANE)
    assert static_payment_problem(static_paid_event(key=None), unkeyed) is None
    assert static_payment_problem(static_paid_event(terminal_id=None), unkeyed) is not None


def test_a_typed_checkout_shows_pending_only_signed_for_this_merchant_and_terminal() -> None:
    me = Identity(A, LANE, (PSP.public,))
    created: EventType = "checkout.created"
    assert static_created_problem(static_paid_event(kind=created), me) is None
    assert static_created_problem(static_paid_event(kind=created, merchant_id=B), me) is not None
    assert (
        static_created_problem(static_paid_event(kind=created, terminal_id="lane-2"), me)
        is not None
    )
    assert static_created_problem(static_paid_event(kind=created, key=None), me) is not None
    assert static_created_problem(static_paid_event(kind=created, key=ATTACKER), me) is not None
    # Only a created event: its payment is static_payment_problem's.
    assert static_created_problem(static_paid_event(), me) is not None
    # Without the PSP's key nothing is drawn from an event: its QR could be anyone's.
    unkeyed = Identity(A, LANE)
    assert static_created_problem(static_paid_event(kind=created, key=None), unkeyed) is not None
