"""The checkout rules' decisions with everything they write, table by table,
called directly: no server, no database."""

from __future__ import annotations

import itertools
from typing import TypedDict

import pytest

from psp_server.core.effects import Account, AccountKind, NewEvent, Posting, Transfer, opening
from psp_server.core.errors import STATUS_OF_CODE, APIError, Refusal, Refused
from psp_server.core.machine import (
    CREATION_EVENTS,
    Action,
    Decision,
    Purse,
    Status,
    creation_events,
    decide,
    decide_order,
    decide_payment,
    decide_refund,
)
from tests.support.checkouts import MERCHANT, facts

IN_TIME = 10_000  # expires_at of a checkout not yet due
NOW = 5_000

PAID_EVENT = NewEvent("checkout.paid", Status.PAID)
CANCELLED_EVENT = NewEvent("checkout.cancelled", Status.CANCELLED)
EXPIRED_EVENT = NewEvent("checkout.expired", Status.EXPIRED)

# Every (status, action) in time: the status after, the refusal, the events.
IN_TIME_TABLE: dict[tuple[Status, Action], Decision] = {
    (Status.PENDING, Action.PAY): Decision(Status.PAID, events=(PAID_EVENT,)),
    (Status.PENDING, Action.CANCEL): Decision(Status.CANCELLED, events=(CANCELLED_EVENT,)),
    (Status.PENDING, Action.EXPIRE): Decision(Status.EXPIRED, events=(EXPIRED_EVENT,)),
    (Status.PAID, Action.PAY): Decision(None, Refusal.ALREADY_PAID),
    (Status.PAID, Action.CANCEL): Decision(None, Refusal.ALREADY_PAID),
    (Status.PAID, Action.EXPIRE): Decision(None),
    (Status.CANCELLED, Action.PAY): Decision(None, Refusal.CANCELLED),
    (Status.CANCELLED, Action.CANCEL): Decision(None),
    (Status.CANCELLED, Action.EXPIRE): Decision(None),
    (Status.EXPIRED, Action.PAY): Decision(None, Refusal.EXPIRED),
    (Status.EXPIRED, Action.CANCEL): Decision(None, Refusal.EXPIRED),
    (Status.EXPIRED, Action.EXPIRE): Decision(None),
}

# A pending checkout past its expires_at: whatever is asked, the lapse is
# recorded and announced; paying and cancelling are refused.
LAPSED_TABLE: dict[Action, Decision] = {
    Action.PAY: Decision(Status.EXPIRED, Refusal.EXPIRED, events=(EXPIRED_EVENT,)),
    Action.CANCEL: Decision(Status.EXPIRED, Refusal.EXPIRED, events=(EXPIRED_EVENT,)),
    Action.EXPIRE: Decision(Status.EXPIRED, events=(EXPIRED_EVENT,)),
}


def test_the_table_covers_every_pair() -> None:
    assert set(IN_TIME_TABLE) == set(itertools.product(Status, Action))


@pytest.mark.parametrize(("pair", "expected"), list(IN_TIME_TABLE.items()))
def test_in_time(pair: tuple[Status, Action], expected: Decision) -> None:
    status, action = pair
    assert decide(status, action, expires_at=IN_TIME, now=NOW) == expected


@pytest.mark.parametrize(("action", "expected"), list(LAPSED_TABLE.items()))
def test_lapsed(action: Action, expected: Decision) -> None:
    assert decide(Status.PENDING, action, expires_at=NOW, now=NOW) == expected


@pytest.mark.parametrize("status", [Status.PAID, Status.CANCELLED, Status.EXPIRED])
@pytest.mark.parametrize("action", list(Action))
def test_a_final_checkout_past_its_expiry_answers_as_in_time(
    status: Status, action: Action
) -> None:
    assert decide(status, action, expires_at=NOW, now=NOW + 1) == IN_TIME_TABLE[(status, action)]


# Paying: the checkout's rules, then the wallet's, then the money.


def pay(
    status: Status = Status.PENDING,
    *,
    currency: str = "EUR",
    balance: int = 5000,
    expires_at: int = IN_TIME,
) -> Decision:
    return decide_payment(
        facts(status, amount=1234, expires_at=expires_at),
        purse=Purse("wal_payer", currency, balance),
        payment_id="pay_1",
        now=NOW,
    )


def test_a_payment_moves_the_amount_from_the_wallet_to_the_merchant() -> None:
    transfer = Transfer(
        "pay_1", "EUR", 1234, Account.wallet("wal_payer"), Account.merchant(MERCHANT)
    )
    assert pay() == Decision(Status.PAID, events=(PAID_EVENT,), transfers=(transfer,))
    assert pay(balance=1234).transfers == (transfer,)  # exactly enough
    assert transfer.postings == (
        Posting(Account(AccountKind.WALLET, "wal_payer"), "EUR", -1234),
        Posting(Account(AccountKind.MERCHANT, MERCHANT), "EUR", 1234),
    )
    assert [p.account.name for p in transfer.postings] == [
        "wallet:wal_payer",
        f"merchant:{MERCHANT}",
    ]


class Asked(TypedDict, total=False):
    """What a row of a payment table changes of ``pay``'s accepted payment."""

    status: Status
    currency: str
    balance: int
    expires_at: int


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (Asked(balance=1233), Decision(None, Refusal.INSUFFICIENT_FUNDS)),
        (Asked(currency="JPY"), Decision(None, Refusal.CURRENCY_MISMATCH)),
        (Asked(currency="JPY", balance=0), Decision(None, Refusal.CURRENCY_MISMATCH)),
        (Asked(status=Status.PAID, balance=0), Decision(None, Refusal.ALREADY_PAID)),
        (Asked(status=Status.CANCELLED), Decision(None, Refusal.CANCELLED)),
        (Asked(status=Status.EXPIRED), Decision(None, Refusal.EXPIRED)),
        (
            Asked(expires_at=NOW, balance=0),
            Decision(Status.EXPIRED, Refusal.EXPIRED, events=(EXPIRED_EVENT,)),
        ),
    ],
)
def test_a_refused_payment_moves_no_money(asked: Asked, expected: Decision) -> None:
    assert pay(**asked) == expected


def test_no_refused_decision_can_move_money() -> None:
    transfer = Transfer("pay_1", "EUR", 1, Account.wallet("w"), Account.merchant("m"))
    with pytest.raises(ValueError, match="moves no money"):
        Decision(None, Refusal.EXPIRED, transfers=(transfer,))
    with pytest.raises(ValueError, match="moves no money"):
        Decision(None, Refusal.NOT_PAID, refunded_amount=1)


# Refunds.


def refund(
    status: Status = Status.PAID,
    *,
    refunded: int = 0,
    amount: int = 100,
    payer: str | None = "wal_p",
) -> Decision:
    return decide_refund(
        facts(status, amount=1234, refunded_amount=refunded),
        amount=amount,
        refund_id="re_1",
        payer=payer,
    )


def test_a_refund_moves_money_back_and_announces_the_new_total() -> None:
    back = Transfer("re_1", "EUR", 234, Account.merchant(MERCHANT), Account.wallet("wal_p"))
    assert refund(refunded=1000, amount=234) == Decision(
        None,
        events=(NewEvent("checkout.refunded", Status.PAID, 1234),),
        transfers=(back,),
        refunded_amount=1234,
    )
    assert refund(amount=1).refunded_amount == 1
    assert refund(amount=1).accepted


@pytest.mark.parametrize(
    ("status", "refunded", "amount", "refusal"),
    [
        (Status.PENDING, 0, 100, Refusal.NOT_PAID),
        (Status.CANCELLED, 0, 100, Refusal.NOT_PAID),
        (Status.EXPIRED, 0, 100, Refusal.NOT_PAID),
        (Status.CANCELLED, 0, 10**9, Refusal.NOT_PAID),  # the status speaks first
        (Status.PAID, 0, 0, Refusal.INVALID_AMOUNT),
        (Status.PAID, 0, -5, Refusal.INVALID_AMOUNT),
        (Status.PAID, 0, 1235, Refusal.REFUND_EXCEEDS_PAYMENT),
        (Status.PAID, 1000, 235, Refusal.REFUND_EXCEEDS_PAYMENT),
        (Status.PAID, 1234, 1, Refusal.REFUND_EXCEEDS_PAYMENT),
    ],
)
def test_refused_refunds(status: Status, refunded: int, amount: int, refusal: Refusal) -> None:
    assert refund(status, refunded=refunded, amount=amount, payer=None) == Decision(None, refusal)


def test_a_paid_checkout_without_its_payment_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="no payment"):
        refund(payer=None)


# Creating: an order id used before.


def test_an_order_repeated_with_the_same_request_is_a_retry_and_another_a_conflict() -> None:
    assert decide_order("fp-1", "fp-1") is None
    assert decide_order("fp-1", "fp-2") is Refusal.ORDER_CONFLICT


# The effects check themselves.


def test_transfers_and_events_refuse_what_cannot_be() -> None:
    with pytest.raises(ValueError, match="positive"):
        Transfer("t", "EUR", 0, Account.wallet("w"), Account.merchant("m"))
    with pytest.raises(ValueError, match="to itself"):
        Transfer("t", "EUR", 1, Account.wallet("w"), Account.wallet("w"))
    with pytest.raises(ValueError, match="nonzero"):
        Posting(Account.wallet("w"), "EUR", 0)
    with pytest.raises(ValueError, match="cannot carry"):
        NewEvent("checkout.paid", Status.CANCELLED)
    with pytest.raises(ValueError, match="refunded"):
        NewEvent("checkout.refunded", Status.PAID, 0)
    with pytest.raises(ValueError, match="cannot carry"):
        NewEvent("checkout.created", Status.PAID)
    with pytest.raises(ValueError, match="owner"):
        Account.merchant("")


def test_an_opening_balance_comes_from_the_funding_account() -> None:
    (made,) = opening("fund_1", "wal_1", "JPY", 500)
    assert [(p.account.name, p.amount) for p in made.postings] == [
        ("funding:JPY", -500),
        ("wallet:wal_1", 500),
    ]
    assert opening("fund_2", "wal_2", "JPY", 0) == ()  # an empty wallet moves nothing


# The refusals, as the API answers them: codes and statuses are the wire's.

WIRE = {
    Refusal.ALREADY_PAID: ("already_paid", 409),
    Refusal.CANCELLED: ("cancelled", 410),
    Refusal.EXPIRED: ("expired", 410),
    Refusal.CURRENCY_MISMATCH: ("currency_mismatch", 422),
    Refusal.INSUFFICIENT_FUNDS: ("insufficient_funds", 402),
    Refusal.NOT_PAID: ("not_paid", 409),
    Refusal.INVALID_AMOUNT: ("invalid_amount", 422),
    Refusal.REFUND_EXCEEDS_PAYMENT: ("refund_exceeds_payment", 422),
    Refusal.ORDER_CONFLICT: ("order_conflict", 409),
    Refusal.NOT_FOUND: ("not_found", 404),
    Refusal.UNKNOWN_CODE: ("unknown_code", 404),
    Refusal.STATIC_CODE_NOT_FOUND: ("static_code_not_found", 404),
    Refusal.STATIC_CODE_REVOKED: ("static_code_revoked", 410),
    Refusal.OPEN_AMOUNT_NOT_ALLOWED: ("open_amount_not_allowed", 409),
    Refusal.TILL_HAS_CHECKOUT: ("till_has_checkout", 409),
    Refusal.AMOUNT_OUT_OF_RANGE: ("amount_out_of_range", 422),
    Refusal.REQUEST_IN_PROGRESS: ("request_in_progress", 409),
    Refusal.IDEMPOTENCY_MISMATCH: ("idempotency_mismatch", 422),
}


def test_every_refusal_has_its_wire_code_and_status() -> None:
    assert set(WIRE) == set(Refusal)
    for refusal, (code, status) in WIRE.items():
        assert (refusal.code, refusal.status) == (code, status)
        assert refusal == code
        assert STATUS_OF_CODE[code] == status
        assert refusal.message


def test_a_refusal_becomes_the_api_error_and_the_exception() -> None:
    error = Refusal.INSUFFICIENT_FUNDS.error()
    assert isinstance(error, APIError)
    assert (error.code, error.status, error.message) == (
        "insufficient_funds",
        402,
        "the wallet's balance is too low",
    )
    refused = Refused(Refusal.EXPIRED)
    assert (refused.refusal, refused.code, str(refused)) == (Refusal.EXPIRED, "expired", "expired")


def test_only_a_typed_checkout_is_announced_when_it_is_made() -> None:
    assert creation_events("dynamic") == ()
    assert creation_events("static") == (NewEvent("checkout.created", Status.PENDING),)
    assert set(CREATION_EVENTS) == {"dynamic", "static"}
