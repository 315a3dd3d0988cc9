"""The status and event words, defined once in scan2pay_common.statuses."""

from __future__ import annotations

from enum import StrEnum

import pytest

from scan2pay_common import statuses
from scan2pay_common.statuses import (
    CHECKOUT_STATUSES,
    EVENT_FOR_STATUS,
    EVENT_TYPES,
    FINAL_STATUSES,
    STATUS_FOR_EVENT,
    Event,
    Status,
    is_checkout_status,
    is_final_status,
    same_words,
)


def test_the_wire_words_are_unchanged() -> None:
    assert [s.value for s in Status] == ["pending", "paid", "cancelled", "expired"]
    assert [e.value for e in Event] == [
        "checkout.paid",
        "checkout.cancelled",
        "checkout.expired",
        "checkout.refunded",
        "checkout.created",
    ]
    assert FINAL_STATUSES == ("paid", "cancelled", "expired")


def test_the_literal_types_and_the_enums_hold_the_same_words() -> None:
    assert same_words(CHECKOUT_STATUSES, Status)
    assert same_words(EVENT_TYPES, Event)


def test_a_word_missing_from_either_form_is_caught() -> None:
    class Fewer(StrEnum):
        PENDING = "pending"
        PAID = "paid"

    assert not same_words(CHECKOUT_STATUSES, Fewer)
    assert not same_words(("paid", "pending", "cancelled", "expired"), Status)  # order too


def test_a_member_is_its_word() -> None:
    word: str = Status.PAID
    assert word == "paid"
    assert hash(Status.PAID) == hash("paid")
    assert EVENT_FOR_STATUS[Status.PAID] == Event.PAID.value
    assert STATUS_FOR_EVENT[Event.REFUNDED] == Status.PAID.value


def test_every_final_status_is_announced_and_every_event_carries_one() -> None:
    assert {STATUS_FOR_EVENT[EVENT_FOR_STATUS[s]] for s in FINAL_STATUSES} == set(FINAL_STATUSES)
    # Every event but the creation of a typed checkout carries a final status.
    finals = {e: s for e, s in STATUS_FOR_EVENT.items() if e != Event.CREATED}
    assert set(finals.values()) <= set(FINAL_STATUSES)
    assert STATUS_FOR_EVENT[Event.CREATED] == Status.PENDING.value


@pytest.mark.parametrize(
    ("word", "known", "final"),
    [
        ("pending", True, False),
        ("paid", True, True),
        ("refunded", False, False),
        ("", False, False),
    ],
)
def test_guards(word: str, known: bool, final: bool) -> None:
    assert is_checkout_status(word) is known
    assert is_final_status(word) is final


def test_the_tables_are_checked_when_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(statuses.EVENT_FOR_STATUS, "pending", "checkout.paid")
    with pytest.raises(RuntimeError, match="EVENT_FOR_STATUS"):
        statuses._check_tables()
