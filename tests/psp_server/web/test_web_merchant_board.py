"""The merchant's live board in headless Chromium: signing in from the
keyboard, checkouts appearing and turning paid without a reload, totals
per currency, cancelling from the board, and the terminals online or
offline as they report it over MQTT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from psp_server.web import board_stream
from scan2pay_common.messages import TerminalState
from scan2pay_common.topics import state_topic
from tests.support.broker import Mosquitto
from tests.support.browser import DESKTOP, BrowserSession, assert_accessible
from tests.support.mqtt import Publisher
from tests.support.proxy import CuttableProxy
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    # The storage reads are tested on both databases over HTTP
    # (test_merchant_session.py, test_board_storage.py); SQLite keeps these quick.
    server = await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.2)
    yield server
    await stop_psp(server)


@pytest.fixture
async def psp_on_each_database(db: str) -> AsyncIterator[Psp]:
    """For the test of the board's whole life, on both databases: their
    storages answer the board's reads with SQL of their own."""
    server = await start_psp(db, sweep_interval=0.2)
    yield server
    await stop_psp(server)


async def _signed_in_board(
    browser: BrowserSession,
    psp: Psp,
    merchant: Merchant,
    *,
    url: str = "",
    page: Any = None,
    **options: Any,
) -> Any:
    page = page or await browser.page(**options)
    await page.goto(f"{url or psp.url}/merchant")
    await page.get_by_label("Merchant key").fill(merchant.key)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator("#live[data-state=live]").wait_for()
    return page


def _row(page: Any, order_id: str) -> Any:
    return page.locator("#rows tr").filter(has=page.get_by_role("rowheader", name=order_id))


async def _cells(row: Any) -> list[str]:
    return [text.strip() for text in await row.locator("td, th").all_inner_texts()]


async def test_sign_in_by_keyboard_then_watch_checkouts_appear_and_turn_paid_on_the_qr_page(
    psp_on_each_database: Psp, browser: BrowserSession
) -> None:
    psp = psp_on_each_database
    merchant = await psp.merchant("Café Zoë")
    euros = await psp.wallet("EUR", 10_000)
    page = await browser.page(viewport=DESKTOP)
    await page.goto(f"{psp.url}/merchant")
    assert await page.title() == "Merchant sign-in"
    await assert_accessible(page)
    # The key field is the first stop; Enter submits the form.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "key"
    await page.keyboard.type(merchant.key)
    await page.keyboard.press("Enter")
    await page.locator("#live[data-state=live]").wait_for()
    assert await page.locator("h1").inner_text() == "Café Zoë"
    assert await page.locator("#live").inner_text() == "Live"
    assert await page.locator("#no-rows").is_visible()
    assert "without an MQTT broker" in await page.locator("#terminals-note").inner_text()
    # From here on, nothing may reload the page.
    await page.evaluate("window.boardMarker = 'still here'")

    made = await psp.checkout(merchant, order_id="A-1", amount=1234, terminal_id="lane-1")
    row = _row(page, "A-1")
    await row.wait_for()
    assert (await _cells(row))[1:5] == ["A-1", "lane-1", "€12.34", "Pending"]
    await assert_accessible(page)  # with a row and its Cancel button

    await psp.checkout(merchant, order_id="J-1", amount=1200, currency="JPY")
    await _row(page, "J-1").wait_for()
    # Newest first.
    assert await page.locator("#rows th").all_inner_texts() == ["J-1", "A-1"]

    # The customer scans and pays on the QR page, with the demo wallet, on a phone.
    phone = await browser.page()
    await phone.goto(made["qr_url"])
    await phone.get_by_role("button", name="Pay with the demo wallet").click()
    await phone.get_by_label("Demo wallet token").fill(euros.token)
    await phone.get_by_role("button", name="Save and pay").click()
    await phone.get_by_role("region", name="Receipt").wait_for()
    await page.locator(f"#rows tr[data-id='{made['id']}'][data-status=paid]").wait_for()
    assert (await _cells(row))[4] == "Paid"
    assert not await row.get_by_role("button").count()
    await page.get_by_text("Order A-1 paid").wait_for(state="attached")

    totals = page.locator("#totals-body tr")
    assert await totals.count() == 2
    assert await _cells(totals.nth(0)) == ["EUR", "€12.34 (1)", "0", "0", "0", "0"]
    assert await _cells(totals.nth(1)) == ["JPY", "0", "¥1,200 (1)", "0", "0", "0"]

    # A second payment in the same currency adds up, still without a reload.
    second = await psp.checkout(merchant, order_id="A-2", amount=766)
    await _row(page, "A-2").wait_for()
    assert (await psp.pay(euros, code_of(second)))[0] == 201
    await (
        page.locator("#totals-body tr[data-currency=EUR] td.paid")
        .filter(has_text="€20.00 (2)")
        .wait_for()
    )
    assert await page.evaluate("window.boardMarker") == "still here"
    await assert_accessible(page)


async def test_cancel_a_pending_checkout_from_the_board_on_a_phone(
    psp: Psp, browser: BrowserSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_stream, "SESSION_CHECK_SECONDS", 0.2)
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, order_id="A-7", amount=990)
    other = await psp.checkout(merchant, order_id="A-8", amount=100)
    page = await _signed_in_board(browser, psp, merchant)  # the phone's viewport
    await page.evaluate("window.boardMarker = 'still here'")
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)

    button = page.get_by_role("button", name="Cancel order A-7")
    await button.focus()
    await page.keyboard.press("Enter")
    await page.locator(f"#rows tr[data-id='{checkout['id']}'][data-status=cancelled]").wait_for()
    # The real form's fields went with it, its token among them.
    assert len(posts) == 1
    assert posts[0].url.endswith(f"/merchant/checkouts/{checkout['id']}/cancel")
    assert "csrf=" in (posts[0].post_data or "")
    # The focus stays in the row, on its new status.
    assert await page.evaluate("document.activeElement.textContent") == "Cancelled"
    status, body = await psp.call("GET", f"/v1/checkouts/{checkout['id']}", headers=merchant.auth)
    assert (status, body["status"]) == (200, "cancelled")
    await page.locator("#totals-body td.cancelled").filter(has_text="€9.90 (1)").wait_for()
    # The other one is untouched and can still be cancelled.
    assert await page.get_by_role("button", name="Cancel order A-8").is_enabled()
    _, still = await psp.call("GET", f"/v1/checkouts/{other['id']}", headers=merchant.auth)
    assert still["status"] == "pending"
    assert await page.evaluate("window.boardMarker") == "still here"
    await assert_accessible(page)

    # Revoking the key signs the open board out, without a reload.
    await psp.storage.replace_secret("merchant", merchant.id, revoke=True)
    await page.locator("#live[data-state=off]").wait_for()
    assert "session has ended" in await page.get_by_role("alert").inner_text()
    assert await page.get_by_role("button", name="Cancel order A-8").is_disabled()
    assert await page.evaluate("window.boardMarker") == "still here"


async def _words(locator: Any) -> str:
    return " ".join((await locator.text_content()).split())


def _state(online: bool) -> bytes:
    return TerminalState(
        online=online,
        screen="idle" if online else "offline",
        checkout_id=None,
        displayed_at=None,
    ).to_json()


async def test_terminals_turn_online_and_offline_as_they_report(
    tmp_path: Path, broker: Mosquitto, browser: BrowserSession
) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"), mqtt_url=broker.url)
    publisher = Publisher(broker.port)
    try:
        merchant = await psp.merchant()
        page = await _signed_in_board(browser, psp, merchant, viewport=DESKTOP)
        await page.get_by_text("No terminal has reported its state yet.").wait_for()
        await page.evaluate("window.boardMarker = 'still here'")
        topic = state_topic(merchant.id, "lane-1")
        publisher.publish(topic, _state(True))
        lane = page.locator("#terminals li[data-terminal=lane-1]")
        await page.locator("#terminals li[data-terminal=lane-1][data-online=true]").wait_for()
        assert (await _words(lane)).startswith("lane-1 Online idle, since ")
        assert await page.locator("#terminals-note").is_hidden()
        await assert_accessible(page)
        publisher.publish(topic, _state(False))
        await page.locator("#terminals li[data-terminal=lane-1][data-online=false]").wait_for()
        assert (await _words(lane)).startswith("lane-1 Offline since ")
        assert await page.evaluate("window.boardMarker") == "still here"

        # Signing out (the page's own form, with its token) ends the session.
        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_label("Merchant key").wait_for()
        await page.goto(f"{psp.url}/merchant")
        assert await page.title() == "Merchant sign-in"
    finally:
        publisher.close()
        await stop_psp(psp)


async def test_a_dropped_stream_says_reconnecting_then_catches_up(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    made = await psp.checkout(merchant, order_id="A-1")
    async with CuttableProxy(psp.url) as proxy:
        page = await _signed_in_board(browser, psp, merchant, url=proxy.url, viewport=DESKTOP)
        await _row(page, "A-1").wait_for()
        await page.evaluate("window.boardMarker = 'still here'")
        # The network drops the stream, and the PSP stays out of reach a while.
        proxy.cut(refuse=True)
        await page.locator("#live[data-state=reconnecting]").wait_for()
        assert await page.locator("#live").inner_text() == "Reconnecting…"
        # Meanwhile the checkout is paid: the board hears nothing of it...
        assert (await psp.pay(wallet, code_of(made)))[0] == 201
        # ...until the browser is back in: the fresh snapshot has it paid.
        proxy.refusing = False
        await page.locator("#live[data-state=live]").wait_for(timeout=20_000)
        await page.locator(f"#rows tr[data-id='{made['id']}'][data-status=paid]").wait_for()
        assert await page.evaluate("window.boardMarker") == "still here"


def _zone_an_hour_before_midnight(now: datetime) -> tuple[str, int]:
    """A fixed-offset zone whose clock says 23:xx at ``now``, and its next
    midnight (epoch ms): less than an hour ahead, as the PSP accepts a
    board's day that starts at most an hour in its future."""
    offset = (23 - now.hour) % 24
    if offset > 14:  # UTC-12 .. UTC+14 are the zones there are
        offset -= 24
    # The Etc zones' signs are POSIX's: Etc/GMT-4 is four hours ahead of UTC.
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    local = now + timedelta(hours=offset)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=UTC)
    return zone, int((midnight - timedelta(hours=offset)).timestamp() * 1000)


def test_the_zone_an_hour_before_midnight() -> None:
    at = datetime(2026, 11, 24, 19, 13, 2, tzinfo=UTC)
    assert _zone_an_hour_before_midnight(at) == ("Etc/GMT-4", 1795550400000)  # 20:00 UTC
    assert _zone_an_hour_before_midnight(at.replace(hour=23)) == ("Etc/GMT", 1795564800000)
    # 08:13 UTC is 23:13 at UTC-9 (UTC+15, the same hour, is no zone).
    assert _zone_an_hour_before_midnight(at.replace(hour=8)) == ("Etc/GMT+9", 1795510800000)


async def test_the_board_turns_to_a_new_day_at_the_browsers_midnight(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    await psp.checkout(merchant, order_id="LATE-1", amount=500)
    zone, midnight = _zone_an_hour_before_midnight(datetime.now(UTC))
    page = await browser.page(viewport=DESKTOP, timezone_id=zone)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/merchant/stream" in r.url else None)
    # The browser's clock (only its own; the PSP's is real) starts ten
    # minutes before its midnight, and runs on by itself.
    await page.clock.install(time=(midnight - 10 * 60_000) / 1000)
    page = await _signed_in_board(browser, psp, merchant, page=page)
    await _row(page, "LATE-1").wait_for()
    assert await page.locator("#totals-body tr[data-currency=EUR] td.pending").inner_text() == (
        "€5.00 (1)"
    )
    assert len(streams) == 1
    await page.evaluate("window.boardMarker = 'still here'")

    # Past midnight, at the board's next look at the clock (once a minute).
    await page.clock.fast_forward(11 * 60_000)
    await page.locator("#no-rows").wait_for()
    # The board empties its rows itself; its totals only come with a
    # snapshot, so "nothing yet" there is the new day's stream answering.
    await page.locator("#no-totals").wait_for()
    assert await page.locator("#live").get_attribute("data-state") == "live"
    assert await page.locator("#rows tr").count() == 0
    assert await page.locator("#totals-body tr").count() == 0
    # The new stream asked for the day from the browser's midnight, in the
    # same page: nothing was reloaded.
    assert [parse_qs(urlsplit(url).query)["since"] for url in streams] == [
        [str(midnight - 86_400_000)],
        [str(midnight)],
    ]
    assert await page.evaluate("window.boardMarker") == "still here"
    await assert_accessible(page)
