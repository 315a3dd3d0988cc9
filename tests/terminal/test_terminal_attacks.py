"""The attacks on a terminal found against live processes, played again
against real ones (tests/support/secure_shops.py): the example broker with
its ACL, a PSP with two merchants A and B and real PSP-issued tickets, and
A's lane-1 as the terminal daemon on the PNG display, holding the PSP's key.

The attacker may write A's lane-1 display topic: here with A's cashier
account, the one the ACL lets write there. It is also merchant B, who makes
and pays checkouts of its own. The terminal must show a QR only from a
ticket for A's lane-1, and "Paid" only for the checkout on screen, on
evidence bound to A and lane-1 (docs/signing.md).

Each attack waits for one of two endings: the terminal's log saying it
ignored the attacker's message, or the terminal's state (or screen) moving
to what the attacker wanted; the daemon decides each message as it reads
it, so once the log line is there nothing later can come of that message."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scan2pay_common.messages import TerminalState
from tests.support.polling import wait_until
from tests.support.secure_broker import Certs, make_certs
from tests.support.secure_shops import LANE, TwoShops, show_qr, two_shops

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def shops(tmp_path: Path, certs: Certs) -> Iterator[TwoShops]:
    with two_shops(tmp_path, certs) as world:
        yield world


def ignored_or(
    shops: TwoShops, log_line: str, took: Callable[[TerminalState], bool], mark: int
) -> None:
    """Waits until the terminal logs ``log_line`` or, since ``mark``, says
    it shows a state ``took`` accepts (the attack worked)."""
    wait_until(
        lambda: shops.terminal.logged(log_line) or any(map(took, shops.screens.since(mark))),
        f"the terminal to log {log_line!r} or to fall for the attack",
        timeout=15.0,
    )


def assert_no_paid(shops: TwoShops, pending: dict[str, object], mark: int) -> None:
    paid = [state for state in shops.screens.since(mark) if state.screen == "paid"]
    assert paid == [], (
        f"the terminal showed Paid ({paid}) while {pending['id']} is "
        f"{shops.status_of(shops.a, str(pending['id']))}\n{shops.terminal.log()}"
    )


def assert_still_showing(shops: TwoShops, created: dict[str, object], mark: int) -> None:
    """Nothing moved since ``mark``: the terminal says it shows ``created``'s
    QR, and a phone reads that QR off its screen."""
    moved = shops.screens.since(mark)
    assert moved == [], f"the terminal moved to {moved}\n{shops.terminal.log()}"
    now = shops.screens.now
    assert (now.screen, now.checkout_id) == ("qr", created["id"]), now
    assert shops.terminal.qr_on_screen() == [created["qr_url"]]


def test_another_merchants_ticket_does_not_put_its_qr_on_the_terminal(shops: TwoShops) -> None:
    """Attack 1: B's genuine ticket, for a B checkout made for B's own
    "lane-1", published on A's lane-1. Before display tickets named their
    merchant, A's lane-1 showed B's QR and B's amount, and A's customer
    paid B."""
    x = shops.checkout(shops.a, "A-1")
    shops.on_screen(x)
    theirs = shops.checkout(shops.b, "B-1", amount=9999)  # for B's own lane-1
    assert theirs["display_ticket"]["terminal_id"] == LANE
    mark = len(shops.screens.seen)

    shops.a.cashier.publish(shops.display, show_qr(theirs), retain=True)
    ignored_or(
        shops,
        f"ignored a show_qr for {theirs['id']}: its display ticket is merchant {shops.b.id}'s",
        lambda state: state.checkout_id == theirs["id"],
        mark,
    )
    assert_still_showing(shops, x, mark)
    # The customer pays what the screen shows: A's sale, A's money.
    (on_screen,) = shops.terminal.qr_on_screen()
    payment = shops.pay(on_screen)
    assert (payment["checkout_id"], payment["amount"]) == (x["id"], 1234)
    assert shops.status_of(shops.b, theirs["id"]) == "pending"
    # The PSP's signed event, bound to A's lane-1, shows it paid.
    shops.screens.showing(x["id"], "paid")


def test_a_paid_checkouts_bare_url_does_not_show_paid(shops: TwoShops) -> None:
    """Attack 2, bare URL: B pays its own checkout Y of the same amount and
    publishes Y's QR URL as a plain string on A's lane-1. The terminal used
    to ask the PSP about Y and show "Paid €12.34" while X was pending."""
    x = shops.checkout(shops.a, "A-2")
    shops.on_screen(x)
    y = shops.checkout(shops.b, "B-2", terminal_id=None)
    shops.pay(y["qr_url"])
    mark = len(shops.screens.seen)

    shops.a.cashier.publish(shops.display, y["qr_url"], retain=True)
    ignored_or(
        shops,
        "ignored a bare QR URL: a bare QR URL has no display ticket",
        lambda state: state.screen == "paid",
        mark,
    )
    assert_no_paid(shops, x, mark)
    assert_still_showing(shops, x, mark)
    assert shops.status_of(shops.a, x["id"]) == "pending"
    shops.pay(x["qr_url"])
    shops.screens.showing(x["id"], "paid")


def test_a_paid_checkouts_ticket_and_a_status_do_not_show_paid(shops: TwoShops) -> None:
    """Attack 2, ticket and status: B pays its own checkout Y (made for its
    own lane-1), publishes Y's genuine ticket on A's lane-1, then a cashier's
    "status paid". The terminal used to show Y, ask the PSP, and show Paid
    while X was pending. A "paid" naming X itself only makes the terminal
    ask the PSP about X, which says pending."""
    x = shops.checkout(shops.a, "A-3")
    shops.on_screen(x)
    y = shops.checkout(shops.b, "B-3")  # for B's own lane-1
    shops.pay(y["qr_url"])
    mark = len(shops.screens.seen)

    shops.a.cashier.publish(shops.display, show_qr(y), retain=True)
    shops.a.cashier.publish(
        shops.display,
        json.dumps({"type": "status", "checkout_id": y["id"], "status": "paid"}),
        retain=True,
    )
    ignored_or(
        shops,
        f"ignored a paid status for {y['id']}: it is about {y['id']}, not the checkout on screen",
        lambda state: state.screen == "paid",
        mark,
    )
    assert_no_paid(shops, x, mark)
    assert shops.terminal.logged(f"ignored a show_qr for {y['id']}: its display ticket is merchant")
    shops.a.cashier.publish(
        shops.display,
        json.dumps({"type": "status", "checkout_id": x["id"], "status": "paid"}),
        retain=True,
    )
    ignored_or(
        shops, f"the PSP says {x['id']} is pending", lambda state: state.screen == "paid", mark
    )
    assert_no_paid(shops, x, mark)
    assert_still_showing(shops, x, mark)
    assert shops.status_of(shops.a, x["id"]) == "pending"
    shops.pay(x["qr_url"])
    shops.screens.showing(x["id"], "paid")
