"""The terminal's screen decisions, called directly: no broker, no display."""

from __future__ import annotations

import pytest

from scan2pay_common.messages import (
    STATUS_FOR_EVENT,
    CheckoutEvent,
    CheckoutSnapshot,
    EventType,
    ShowIdle,
    ShowQr,
    ShowStatus,
)
from scan2pay_common.timefmt import to_rfc3339
from terminal.controller import (
    NO_CONNECTION,
    BareUrl,
    CodeInfo,
    Controller,
    Effects,
    screen_checkout,
    screen_kind,
)
from terminal.screens import (
    EARLIER_KEPT,
    EarlierPayment,
    IdleScreen,
    Outcome,
    OutcomeScreen,
    QrScreen,
    Screen,
    View,
    content,
)

T0 = 1_800_000_000_000
URL = "HTTP://127.0.0.1:8080/Q/" + "A" * 32


def show_qr(checkout_id: str = "co_1", *, expires_in_ms: int = 300_000) -> ShowQr:
    return ShowQr(
        checkout_id=checkout_id,
        qr_url=URL,
        amount=1234,
        currency="EUR",
        expires_at=to_rfc3339(T0 + expires_in_ms),
        order_id="A-1",
    )


def shown(controller: Controller) -> Screen:
    """The screen now, read through a call: after ``assert
    controller.view.screen == X`` mypy holds the attribute to X's type, not
    knowing that a later call of the controller changes it."""
    return controller.view.screen


def event(kind: EventType, checkout_id: str = "co_1") -> CheckoutEvent:
    snapshot = CheckoutSnapshot(
        id=checkout_id,
        order_id="A-1",
        amount=1234,
        currency="EUR",
        status=STATUS_FOR_EVENT[kind],
        qr_url=URL,
        expires_at=to_rfc3339(T0 + 300_000),
        terminal_id="lane-1",
        created_at=to_rfc3339(T0),
    )
    return CheckoutEvent(
        event_id="evt_1",
        seq=1,
        type=kind,
        merchant_id="mer_1",
        checkout=snapshot,
        created_at=to_rfc3339(T0),
    )


def test_starts_idle_with_the_merchant_name() -> None:
    controller = Controller("Café")
    assert controller.view.screen == IdleScreen("Café")
    assert screen_kind(controller.view.screen) == "idle"


def test_show_qr_shows_the_qr_with_amount_and_expiry() -> None:
    controller = Controller("Café")
    assert controller.on_command(show_qr(), T0) == Effects(redraw=True)
    screen = controller.view.screen
    assert isinstance(screen, QrScreen)
    assert (screen.checkout_id, screen.qr_url, screen.amount, screen.currency) == (
        "co_1",
        URL,
        1234,
        "EUR",
    )
    assert screen.expires_at == T0 + 300_000
    assert (screen_kind(screen), screen_checkout(screen)) == ("qr", "co_1")


def test_the_same_command_twice_does_not_redraw() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_command(show_qr(), T0 + 10) == Effects()


def test_status_keeps_the_amount_of_the_checkout_on_screen() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_command(ShowStatus("co_1", "paid"), T0 + 5).redraw
    assert controller.view.screen == OutcomeScreen("co_1", "paid", 1234, "EUR")


def test_status_for_another_checkout_still_shows_but_without_an_amount() -> None:
    controller = Controller("Café")
    controller.on_command(ShowStatus("co_9", "cancelled"), T0)
    assert controller.view.screen == OutcomeScreen("co_9", "cancelled", None, None)


def test_paid_event_for_the_checkout_on_screen_shows_paid() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_event(event("checkout.paid"), T0 + 1).redraw
    assert controller.view.screen == OutcomeScreen("co_1", "paid", 1234, "EUR")
    # The cashier's later status for the same outcome changes nothing.
    assert controller.on_command(ShowStatus("co_1", "paid"), T0 + 2) == Effects()


def test_events_for_other_checkouts_are_ignored() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_event(event("checkout.paid", "co_other"), T0 + 1) == Effects()
    assert isinstance(controller.view.screen, QrScreen)
    idle = Controller("Café")
    assert idle.on_event(event("checkout.paid"), T0) == Effects()


def test_cancelled_and_expired_events() -> None:
    cases: list[tuple[EventType, Outcome]] = [
        ("checkout.cancelled", "cancelled"),
        ("checkout.expired", "expired"),
    ]
    for kind, outcome in cases:
        controller = Controller("Café")
        controller.on_command(show_qr(), T0)
        controller.on_event(event(kind), T0 + 1)
        assert controller.view.screen == OutcomeScreen("co_1", outcome, 1234, "EUR")


def test_ticks_move_the_countdown_then_expire_then_go_idle() -> None:
    controller = Controller("Café", idle_after_ms=10_000)
    controller.on_command(show_qr(expires_in_ms=3_000), T0)
    assert controller.on_tick(T0 + 1_000) == Effects(redraw=True)
    assert controller.on_tick(T0 + 3_000).redraw
    assert controller.view.screen == OutcomeScreen("co_1", "expired", 1234, "EUR")
    assert controller.on_tick(T0 + 12_999) == Effects()
    assert controller.on_tick(T0 + 13_000).redraw
    assert shown(controller) == IdleScreen("Café")
    assert controller.on_tick(T0 + 20_000) == Effects()


def test_a_stale_retained_qr_shows_expired_at_once() -> None:
    controller = Controller("Café")
    assert controller.on_command(show_qr(expires_in_ms=-1), T0).redraw
    assert controller.view.screen == OutcomeScreen("co_1", "expired", None, None)


def test_idle_command() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_command(ShowIdle(), T0 + 1).redraw
    assert controller.view.screen == IdleScreen("Café")


def test_bare_url_shows_the_qr_alone_and_asks_the_psp() -> None:
    controller = Controller("Café")
    assert controller.on_command(BareUrl(URL), T0) == Effects(redraw=True, lookup=URL)
    assert controller.view.screen == QrScreen(checkout_id=None, qr_url=URL)
    # The same URL again neither redraws nor asks again.
    assert controller.on_command(BareUrl(URL), T0 + 1) == Effects()
    info = CodeInfo(URL, "co_7", 500, "JPY", T0 + 60_000, "pending")
    assert controller.on_lookup(info, T0 + 2).redraw
    assert controller.view.screen == QrScreen("co_7", URL, 500, "JPY", T0 + 60_000)
    # Now the checkout is known, its event shows paid.
    controller.on_event(event("checkout.paid", "co_7"), T0 + 3)
    assert shown(controller) == OutcomeScreen("co_7", "paid", 500, "JPY")


def test_a_late_lookup_answer_for_a_screen_gone_is_ignored() -> None:
    controller = Controller("Café")
    controller.on_command(BareUrl(URL), T0)
    controller.on_command(ShowIdle(), T0 + 1)
    info = CodeInfo(URL, "co_7", 500, "JPY", T0 + 60_000, "pending")
    assert controller.on_lookup(info, T0 + 2) == Effects()
    assert controller.view.screen == IdleScreen("Café")


def test_lookup_of_a_paid_code_shows_paid() -> None:
    controller = Controller("Café")
    controller.on_command(BareUrl(URL), T0)
    controller.on_lookup(CodeInfo(URL, "co_7", 500, "JPY", T0 + 60_000, "paid"), T0 + 1)
    assert controller.view.screen == OutcomeScreen("co_7", "paid", 500, "JPY")


def test_connection_loss_adds_a_banner_and_keeps_the_screen() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_connection(False).redraw
    assert controller.view.banner == NO_CONNECTION
    assert isinstance(controller.view.screen, QrScreen)
    assert controller.on_connection(False) == Effects()
    assert controller.on_connection(True).redraw
    assert controller.view.banner is None


def refund_event(checkout_id: str = "co_1", refunded: int = 500) -> CheckoutEvent:
    paid = event("checkout.paid", checkout_id)
    snapshot = CheckoutSnapshot(**{**paid.checkout.to_dict(), "refunded_amount": refunded})
    return CheckoutEvent(
        event_id="evt_r",
        seq=2,
        type="checkout.refunded",
        merchant_id="mer_1",
        checkout=snapshot,
        created_at=to_rfc3339(T0),
    )


def test_a_refund_shows_while_its_checkout_is_on_screen() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    controller.on_event(event("checkout.paid"), T0 + 1)
    assert controller.on_event(refund_event(refunded=500), T0 + 2).redraw
    assert controller.view.screen == OutcomeScreen("co_1", "refunded", 500, "EUR")
    assert screen_kind(controller.view.screen) == "refunded"


def test_a_refund_for_a_checkout_no_longer_on_screen_changes_nothing() -> None:
    controller = Controller("Café")
    assert controller.on_event(refund_event(), T0) == Effects()
    controller.on_command(show_qr("co_2"), T0)
    assert controller.on_event(refund_event("co_1"), T0 + 1) == Effects()


def test_only_the_checkout_on_screen_concerns_the_terminal() -> None:
    controller = Controller("Shop")
    assert not controller.concerns("co_1")  # idle: no event matters
    controller.on_command(show_qr("co_1"), T0)
    assert controller.concerns("co_1")
    assert not controller.concerns("co_2")  # another lane's checkout
    controller.on_event(event("checkout.paid", "co_1"), T0 + 1000)
    assert controller.concerns("co_1")  # its outcome is on screen: a refund still shows


# Whether the screen needs the merchant's events topic.


def test_a_tied_show_qr_needs_no_merchant_events() -> None:
    controller = Controller("Shop")
    assert not controller.needs_merchant_events  # idle
    controller.on_command(show_qr(), T0, tied=True)
    assert not controller.needs_merchant_events
    controller.on_event(event("checkout.paid"), T0 + 1)
    assert not controller.needs_merchant_events


def test_an_untied_show_qr_needs_merchant_events_until_its_checkout_leaves() -> None:
    controller = Controller("Shop", idle_after_ms=10_000)
    controller.on_command(show_qr(), T0)
    assert controller.needs_merchant_events
    # Its outcome still shows a refund: the checkout has not left the screen.
    controller.on_event(event("checkout.paid"), T0 + 1)
    assert controller.needs_merchant_events
    controller.on_event(refund_event(), T0 + 2)
    assert controller.needs_merchant_events
    controller.on_tick(T0 + 2 + 10_000)
    assert controller.view.screen == IdleScreen("Shop")
    assert not controller.needs_merchant_events


def test_another_checkout_or_idle_ends_the_need() -> None:
    for leave in (ShowIdle(), ShowStatus("co_9", "cancelled")):
        controller = Controller("Shop")
        controller.on_command(show_qr(), T0)
        controller.on_command(leave, T0 + 1)
        assert not controller.needs_merchant_events, leave
    controller = Controller("Shop")
    controller.on_command(show_qr("co_1"), T0)
    controller.on_command(show_qr("co_2"), T0 + 1, tied=True)
    assert not controller.needs_merchant_events
    controller.on_command(show_qr("co_3"), T0 + 2)
    assert controller.needs_merchant_events


def test_the_cashiers_status_for_the_untied_checkout_keeps_the_need() -> None:
    controller = Controller("Shop")
    controller.on_command(show_qr(), T0)
    controller.on_command(ShowStatus("co_1", "paid"), T0 + 1)
    assert controller.needs_merchant_events


def test_a_bare_url_needs_merchant_events_through_its_lookup() -> None:
    controller = Controller("Shop")
    controller.on_command(BareUrl(URL), T0)
    assert controller.needs_merchant_events
    controller.on_lookup(CodeInfo(URL, "co_7", 500, "JPY", T0 + 60_000, "pending"), T0 + 1)
    assert controller.needs_merchant_events
    controller.on_event(event("checkout.paid", "co_7"), T0 + 2)
    assert controller.view.screen == OutcomeScreen("co_7", "paid", 500, "JPY")
    assert controller.needs_merchant_events
    controller.on_command(ShowIdle(), T0 + 3)
    assert not controller.needs_merchant_events


def test_a_stale_untied_show_qr_needs_no_merchant_events() -> None:
    controller = Controller("Shop")
    controller.on_command(show_qr(expires_in_ms=-1), T0)
    assert controller.view.screen == OutcomeScreen("co_1", "expired", None, None)
    assert not controller.needs_merchant_events


def test_an_event_heard_on_both_topics_counts_once() -> None:
    """While the daemon switches, the PSP's copy on this terminal's topic
    and the merchant's can both arrive: the repeat changes nothing."""
    controller = Controller("Shop")
    controller.on_command(show_qr(), T0)
    assert controller.on_event(event("checkout.paid"), T0 + 1).redraw
    assert controller.on_event(event("checkout.paid"), T0 + 2) == Effects()
    assert controller.view.screen == OutcomeScreen("co_1", "paid", 1234, "EUR")
    assert controller.on_event(refund_event(), T0 + 3).redraw
    assert controller.on_event(refund_event(), T0 + 4) == Effects()
    assert controller.view.screen == OutcomeScreen("co_1", "refunded", 500, "EUR")


def static_paid(checkout_id: str = "co_typed") -> CheckoutEvent:
    paid = event("checkout.paid", checkout_id)
    snapshot = CheckoutSnapshot(
        **{
            **paid.checkout.to_dict(),
            "amount": 1250,
            "source": "static",
            "static_code_id": "sc_019ab52e4f1c9f8e7d6c5b4a3928",
        }
    )
    return CheckoutEvent(**{**paid.to_dict(), "checkout": snapshot})


def test_a_static_payment_shows_paid_with_the_stickers_short_id() -> None:
    controller = Controller("Café")
    assert controller.on_static_payment(static_paid(), T0) == Effects(redraw=True)
    assert shown(controller) == OutcomeScreen("co_typed", "paid", 1250, "EUR", via="Sticker 4A3928")
    assert controller.on_static_payment(static_paid(), T0 + 1) == Effects()  # a repeat
    # It goes back to idle as any outcome does.
    controller.on_tick(T0 + 10_000)
    assert shown(controller) == IdleScreen("Café")
    # Over another outcome too: the next payment is news.
    controller.on_static_payment(static_paid("co_a"), T0 + 20_000)
    controller.on_static_payment(static_paid("co_b"), T0 + 20_001)
    assert screen_checkout(shown(controller)) == "co_b"


def test_a_static_payment_never_covers_a_cashiers_qr() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_static_payment(static_paid(), T0) == Effects()
    assert isinstance(shown(controller), QrScreen)


def test_the_idle_screen_names_the_tills_printed_code_when_told() -> None:
    from terminal.config import ConfigError, load

    config = load(
        {"merchant": "mer_1", "terminal": "lane-1", "till": " Counter 1 · 4A3928 "}, env={}
    )
    assert config.till == "Counter 1 · 4A3928"
    controller = Controller("Café", till=config.till)
    assert controller.view.screen == IdleScreen("Café", "Counter 1 · 4A3928")
    assert content(View(controller.view.screen), T0).lines == (
        "Café",
        "Ready",
        "Counter 1 · 4A3928",
    )
    assert load({"merchant": "mer_1", "terminal": "lane-1"}, env={}).till is None
    for bad in ("x" * 41, "a\u202eb"):
        with pytest.raises(ConfigError, match="till"):
            load({"merchant": "mer_1", "terminal": "lane-1", "till": bad}, env={})


def static_created(checkout_id: str = "co_typed", *, expires_in_ms: int = 300_000) -> CheckoutEvent:
    paid = static_paid(checkout_id)
    snapshot = CheckoutSnapshot(
        **{
            **paid.checkout.to_dict(),
            "status": "pending",
            "expires_at": to_rfc3339(T0 + expires_in_ms),
        }
    )
    return CheckoutEvent(**{**paid.to_dict(), "type": "checkout.created", "checkout": snapshot})


def test_a_typed_checkout_shows_waiting_with_its_sticker_then_paid() -> None:
    from terminal.screens import WAITING, View, content

    controller = Controller("Café")
    assert controller.on_static_created(static_created(), T0) == Effects(redraw=True)
    waiting = shown(controller)
    assert isinstance(waiting, QrScreen)
    assert waiting.typed
    assert (waiting.checkout_id, waiting.amount, waiting.via) == (
        "co_typed",
        1250,
        "Sticker 4A3928",
    )
    assert waiting.encoded == URL
    assert not controller.needs_merchant_events  # made for this terminal: its own topic
    assert content(View(waiting), T0).lines == ("€12.50", WAITING, "Sticker 4A3928", "5:00")
    assert controller.on_static_created(static_created(), T0 + 1) == Effects()  # a repeat
    assert controller.on_static_payment(static_paid(), T0 + 2) == Effects(redraw=True)
    assert shown(controller) == OutcomeScreen("co_typed", "paid", 1250, "EUR", via="Sticker 4A3928")
    # Heard again after its "Paid", even once the screen went idle: never pending again.
    assert controller.on_static_created(static_created(), T0 + 3) == Effects()
    controller.on_tick(T0 + 20_000)
    assert controller.on_static_created(static_created(), T0 + 20_001) == Effects()
    assert shown(controller) == IdleScreen("Café")


def test_a_typed_checkout_never_covers_a_cashiers_qr_and_lapses_as_any() -> None:
    controller = Controller("Café")
    controller.on_command(show_qr(), T0)
    assert controller.on_static_created(static_created(), T0) == Effects()
    assert shown(controller) == controller.view.screen
    assert screen_checkout(shown(controller)) == "co_1"
    # Another customer's typed checkout takes over a typed one's screen.
    other = Controller("Café")
    other.on_static_created(static_created("co_a"), T0)
    assert other.on_static_created(static_created("co_b"), T0 + 1).redraw
    assert screen_checkout(shown(other)) == "co_b"
    # co_a paid meanwhile: its "Paid" shows, a payment is news.
    assert other.on_static_payment(static_paid("co_a"), T0 + 2).redraw
    assert shown(other) == OutcomeScreen("co_a", "paid", 1250, "EUR", via="Sticker 4A3928")
    # One that lapsed already is not shown; one on screen expires as any QR.
    late = Controller("Café")
    assert late.on_static_created(static_created(expires_in_ms=-1), T0) == Effects()
    late.on_static_created(static_created(expires_in_ms=1000), T0)
    late.on_tick(T0 + 1000)
    assert shown(late) == OutcomeScreen("co_typed", "expired", 1250, "EUR")


# --- payments missed while away, too old to say -------------------------------


def earlier(n: int, *, minutes_before: int = 60) -> EarlierPayment:
    return EarlierPayment(f"co_old{n}", 100 * n, "EUR", T0 - minutes_before * 60_000)


def test_a_missed_payment_waits_on_the_idle_screen_until_the_next_checkout() -> None:
    controller = Controller("Café", till="Counter 1")
    assert controller.on_received_earlier(earlier(1, minutes_before=90), T0) == Effects(redraw=True)
    assert controller.on_received_earlier(earlier(2, minutes_before=30), T0 + 1).redraw
    assert shown(controller) == IdleScreen(
        "Café", "Counter 1", (earlier(2, minutes_before=30), earlier(1, minutes_before=90)), 2
    )
    # The soundbox hands each over once; a repeat would change nothing anyway.
    assert controller.on_received_earlier(earlier(1, minutes_before=90), T0 + 2) == Effects()
    lines = content(View(shown(controller)), T0).lines
    assert lines[:4] == ("Café", "Ready", "Counter 1", "Received earlier")
    assert len(lines) == 6
    # A "show idle" keeps them; the next checkout's QR takes their place for good.
    assert controller.on_command(ShowIdle(), T0 + 3) == Effects()
    controller.on_command(show_qr(), T0 + 4)
    controller.on_command(ShowIdle(), T0 + 5)
    assert shown(controller) == IdleScreen("Café", "Counter 1")


def test_a_missed_payment_never_covers_a_qr_nor_an_outcome() -> None:
    controller = Controller("Café", idle_after_ms=10_000)
    controller.on_command(show_qr(), T0)
    assert controller.on_received_earlier(earlier(1), T0 + 1) == Effects()
    assert isinstance(shown(controller), QrScreen)
    controller.on_event(event("checkout.paid"), T0 + 2)
    assert controller.on_received_earlier(earlier(2), T0 + 3) == Effects()
    assert shown(controller) == OutcomeScreen("co_1", "paid", 1234, "EUR")
    assert controller.on_tick(T0 + 9_999) == Effects()
    # Idle again after the outcome's time: now they show.
    assert controller.on_tick(T0 + 10_002).redraw
    screen = shown(controller)
    assert isinstance(screen, IdleScreen)
    assert {payment.checkout_id for payment in screen.earlier} == {"co_old1", "co_old2"}
    # A stale retained QR found expired is no new checkout: they stay.
    controller.on_command(show_qr("co_2", expires_in_ms=-1), T0 + 20_000)
    assert shown(controller) == OutcomeScreen("co_2", "expired", None, None)
    controller.on_tick(T0 + 30_000)
    assert shown(controller) == screen
    # A payment at the printed code is the next checkout: they were seen.
    controller.on_static_payment(static_paid(), T0 + 31_000)
    controller.on_tick(T0 + 41_000)
    assert shown(controller) == IdleScreen("Café")


def test_an_idle_screen_keeps_the_newest_missed_payments_and_counts_them_all() -> None:
    controller = Controller("Café")
    for n in range(1, EARLIER_KEPT + 4):
        controller.on_received_earlier(earlier(n, minutes_before=200 - n), T0)
    screen = shown(controller)
    assert isinstance(screen, IdleScreen)
    assert screen.earlier_count == EARLIER_KEPT + 3
    assert [p.checkout_id for p in screen.earlier] == [
        f"co_old{n}" for n in range(EARLIER_KEPT + 3, 3, -1)
    ]
    lines = content(View(screen), T0).lines
    assert lines[-1] == "+3 more"
    with pytest.raises(ValueError, match="earlier"):
        IdleScreen("Café", earlier=screen.earlier, earlier_count=1)
