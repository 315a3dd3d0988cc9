"""The checkout rules, called directly: no server, no database."""

from __future__ import annotations

import itertools

import pytest

from psp_server.core.errors import Refusal
from psp_server.core.machine import (
    FINAL_STATUSES,
    REFUND_REFUSALS,
    REFUSALS,
    TRANSITIONS,
    Action,
    Decision,
    Purse,
    Status,
    decide,
    decide_payment,
    decide_refund,
    effective_status,
)
from tests.support.checkouts import facts

LATER = 10_000
NOW = 5_000


def outcome(decision: Decision) -> tuple[Status | None, Refusal | None]:
    """The status and refusal a decision gives (tests/psp_server/core/test_checkout_effects.py
    checks what it writes besides)."""
    return decision.new_status, decision.refusal


def test_only_pending_moves() -> None:
    assert {source for source, _ in TRANSITIONS} == {Status.PENDING}
    assert TRANSITIONS[(Status.PENDING, Action.PAY)] is Status.PAID
    assert TRANSITIONS[(Status.PENDING, Action.CANCEL)] is Status.CANCELLED
    assert TRANSITIONS[(Status.PENDING, Action.EXPIRE)] is Status.EXPIRED


def test_no_pair_is_both_a_transition_and_a_refusal() -> None:
    assert not set(TRANSITIONS) & set(REFUSALS)


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("action", list(Action))
def test_final_states_never_move(status: Status, action: Action) -> None:
    decision = decide(status, action, expires_at=LATER, now=NOW)
    assert decision.new_status is None


def test_pending_in_time_accepts_each_action() -> None:
    for action, target in [
        (Action.PAY, Status.PAID),
        (Action.CANCEL, Status.CANCELLED),
        (Action.EXPIRE, Status.EXPIRED),
    ]:
        assert outcome(decide(Status.PENDING, action, expires_at=LATER, now=NOW)) == (target, None)


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        (Status.PAID, Action.PAY, "already_paid"),
        (Status.CANCELLED, Action.PAY, "cancelled"),
        (Status.EXPIRED, Action.PAY, "expired"),
        (Status.PAID, Action.CANCEL, "already_paid"),
        (Status.EXPIRED, Action.CANCEL, "expired"),
    ],
)
def test_refusals(status: Status, action: Action, code: str) -> None:
    decision = decide(status, action, expires_at=LATER, now=NOW)
    assert outcome(decision) == (None, code)
    assert not decision.accepted


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Status.CANCELLED, Action.CANCEL),
        (Status.PAID, Action.EXPIRE),
        (Status.CANCELLED, Action.EXPIRE),
        (Status.EXPIRED, Action.EXPIRE),
    ],
)
def test_harmless_repeats_change_nothing_and_are_not_errors(status: Status, action: Action) -> None:
    assert decide(status, action, expires_at=LATER, now=NOW) == Decision(None, None)
    assert not decide(status, action, expires_at=LATER, now=NOW).changes_checkout


def test_expiry_is_at_expires_at_not_after() -> None:
    assert effective_status(Status.PENDING, expires_at=NOW, now=NOW - 1) is Status.PENDING
    assert effective_status(Status.PENDING, expires_at=NOW, now=NOW) is Status.EXPIRED
    assert effective_status(Status.PAID, expires_at=NOW, now=NOW + 1) is Status.PAID


def test_paying_a_lapsed_checkout_is_refused_and_records_the_expiry() -> None:
    decision = decide(Status.PENDING, Action.PAY, expires_at=NOW, now=NOW + 1)
    assert outcome(decision) == (Status.EXPIRED, "expired")
    assert not decision.accepted


def test_cancelling_a_lapsed_checkout_records_the_expiry() -> None:
    assert outcome(decide(Status.PENDING, Action.CANCEL, expires_at=NOW, now=NOW)) == (
        Status.EXPIRED,
        "expired",
    )


def test_sweeper_expires_a_lapsed_checkout() -> None:
    assert outcome(decide(Status.PENDING, Action.EXPIRE, expires_at=NOW, now=NOW)) == (
        Status.EXPIRED,
        None,
    )


def pay(
    status: Status = Status.PENDING,
    *,
    currency: str = "EUR",
    balance: int = 5000,
    amount: int = 1234,
    now: int = NOW,
) -> tuple[Status | None, Refusal | None]:
    return outcome(
        decide_payment(
            facts(status, amount=amount, expires_at=LATER),
            purse=Purse("wal_1", currency, balance),
            payment_id="pay_1",
            now=now,
        )
    )


def test_payment_accepted_with_enough_funds_in_the_right_currency() -> None:
    assert pay() == (Status.PAID, None)
    assert pay(balance=1234) == (Status.PAID, None)  # exactly enough


def test_payment_refusals_in_the_order_a_wallet_user_can_act_on() -> None:
    assert pay(balance=1233) == (None, "insufficient_funds")
    assert pay(currency="JPY") == (None, "currency_mismatch")
    # The checkout's own state speaks before the wallet's problems do.
    assert pay(Status.PAID, currency="JPY", balance=0) == (None, "already_paid")
    assert pay(now=LATER, balance=0) == (Status.EXPIRED, "expired")


def test_every_status_action_pair_has_one_answer() -> None:
    for status, action in itertools.product(Status, Action):
        decision = decide(status, action, expires_at=LATER, now=NOW)
        if (status, action) in TRANSITIONS:
            assert decision.accepted
        else:
            assert decision.refusal == REFUSALS.get((status, action))


# Refunds.


def refund(status: Status = Status.PAID, *, refunded: int = 0, amount: int = 100) -> Refusal | None:
    checkout = facts(status, amount=1234, refunded_amount=refunded)
    return decide_refund(checkout, amount=amount, refund_id="re_1", payer="wal_1").refusal


def test_only_a_paid_checkout_can_be_refunded() -> None:
    assert set(REFUND_REFUSALS) | {Status.PAID} == set(Status)
    assert Status.PAID not in REFUND_REFUSALS
    for status in (Status.PENDING, Status.CANCELLED, Status.EXPIRED):
        assert refund(status) == "not_paid"


def test_refunds_up_to_what_was_paid_and_not_yet_refunded() -> None:
    assert refund(amount=1234) is None  # all of it
    assert refund(amount=1) is None
    assert refund(refunded=1000, amount=234) is None  # exactly the rest
    assert refund(refunded=1000, amount=235) == "refund_exceeds_payment"
    assert refund(refunded=1234, amount=1) == "refund_exceeds_payment"
    assert refund(amount=1235) == "refund_exceeds_payment"


def test_refund_status_speaks_before_the_amount() -> None:
    assert refund(Status.CANCELLED, amount=10**9) == "not_paid"


def test_refund_of_nothing_is_refused() -> None:
    assert refund(amount=0) == "invalid_amount"
    assert refund(amount=-5) == "invalid_amount"


def test_every_status_has_one_refund_answer() -> None:
    for status in Status:
        answer = refund(status, amount=1)
        assert answer == REFUND_REFUSALS.get(status)
