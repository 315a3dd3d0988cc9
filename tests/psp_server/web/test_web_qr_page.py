"""The QR landing page in headless Chromium: what a person sees after
scanning with a plain camera app, and the demo wallet that pays from it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scan2pay_common.timefmt import from_rfc3339
from tests.support.browser import BrowserSession, assert_accessible
from tests.support.psp import Psp, code_of, start_psp, stop_psp

TOKEN_KEY = "scan2pay.wallet_token"  # noqa: S105 - the browser storage key's name, not a token


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    # The pages do not depend on the database; SQLite keeps these tests quick.
    server = await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.2)
    yield server
    await stop_psp(server)


async def _status(psp: Psp, checkout: dict[str, Any]) -> str:
    code, info = await psp.call(
        "GET", f"/Q/{code_of(checkout)}", headers={"Accept": "application/json"}
    )
    assert code == 200, info
    return str(info["status"])


async def test_a_scanned_code_shows_who_how_much_and_the_time_left(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant("Café Zoë")
    checkout = await psp.checkout(merchant, amount=123456, expires_in=300)
    page = await browser.page()
    response = await page.goto(checkout["qr_url"])
    assert response.status == 200
    assert await page.locator("h1").inner_text() == "Café Zoë"
    assert await page.locator("#amount").inner_text() == "€1,234.56"
    assert await page.get_by_role("status").inner_text() == "Waiting for payment"
    countdown = page.locator("#countdown")
    first = await countdown.inner_text()
    assert re.fullmatch(r"4:5\d|5:00", first), first
    # It counts down live, without a reload.
    await page.wait_for_function(
        "first => document.getElementById('countdown').textContent !== first", arg=first
    )
    assert await page.title() == "Waiting for payment: €1,234.56 to Café Zoë"
    await assert_accessible(page)


async def test_pay_with_the_demo_wallet_and_see_the_receipt(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant("Demo Café")
    wallet = await psp.wallet(balance=5000)
    checkout = await psp.checkout(merchant, amount=1234)
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    await page.get_by_role("button", name="Pay with the demo wallet").click()
    # The first time, the wallet asks for its token.
    token_field = page.get_by_label("Demo wallet token")
    await token_field.fill(wallet.token)
    await assert_accessible(page)
    await page.get_by_role("button", name="Save and pay").click()
    receipt = page.get_by_role("region", name="Receipt")
    await receipt.wait_for()
    assert await page.get_by_role("status").inner_text() == "Paid"
    assert await page.locator("#receipt-merchant").inner_text() == "Demo Café"
    assert await page.locator("#receipt-amount").inner_text() == "€12.34"
    payment_id = await page.locator("#receipt-payment").inner_text()
    assert payment_id.startswith("pay_"), payment_id
    await assert_accessible(page)
    # The PSP agrees, and the wallet paid once.
    assert await _status(psp, checkout) == "paid"
    assert await psp.balance(wallet) == 5000 - 1234
    # The receipt stays on a reload; the token stays in the browser.
    await page.reload()
    await receipt.wait_for()
    assert await page.locator("#receipt-payment").inner_text() == payment_id
    assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") == wallet.token

    # The next code pays at once: the token is not asked for again.
    second = await psp.checkout(merchant, order_id="A-1002", amount=250)
    await page.goto(second["qr_url"])
    await page.get_by_role("button", name="Pay with the demo wallet").click()
    await receipt.wait_for()
    assert await page.locator("#receipt-amount").inner_text() == "€2.50"
    assert await _status(psp, second) == "paid"


async def test_the_wallet_can_be_used_from_the_keyboard_alone(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    checkout = await psp.checkout(merchant)
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    # The pay button is the first thing Tab reaches.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "pay"
    await page.keyboard.press("Enter")
    # The token field takes the focus; Enter submits it.
    assert await page.evaluate("document.activeElement.id") == "token"
    await page.keyboard.type(wallet.token)
    await page.keyboard.press("Enter")
    await page.get_by_role("region", name="Receipt").wait_for()
    # The receipt takes the focus, so that a screen reader reads it next.
    assert await page.evaluate("document.activeElement.id") == "receipt"
    assert await _status(psp, checkout) == "paid"


async def test_a_refused_token_is_forgotten_and_asked_for_again(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet(balance=100)
    checkout = await psp.checkout(merchant, amount=1234)
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    await page.evaluate(f"localStorage.setItem('{TOKEN_KEY}', 'wt_not_a_real_token')")
    await page.get_by_role("button", name="Pay with the demo wallet").click()
    alert = page.get_by_role("alert")
    await alert.filter(has_text="did not accept").wait_for()
    assert await page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") is None
    assert await page.get_by_label("Demo wallet token").is_visible()
    # A real token with too little money: the PSP's reason, and nothing paid.
    await page.get_by_label("Demo wallet token").fill(wallet.token)
    await page.get_by_role("button", name="Save and pay").click()
    await alert.filter(has_text="Not paid").wait_for()
    assert "balance is too low" in await alert.inner_text()
    assert await _status(psp, checkout) == "pending"
    assert await psp.balance(wallet) == 100


async def test_a_code_paid_elsewhere_turns_paid_without_a_reload_by_hand(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    wallet = await psp.wallet()
    checkout = await psp.checkout(merchant)
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    status, _ = await psp.pay(wallet, code_of(checkout))
    assert status == 201
    await page.locator("main[data-status=paid]").wait_for()
    assert await page.get_by_role("status").inner_text() == "Paid"
    assert not await page.get_by_role("button", name="Pay with the demo wallet").count()


async def test_an_expired_code_shows_the_expired_page(psp: Psp, browser: BrowserSession) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant, expires_in=60)
    # A second left by the PSP's clock, which the page counts down from.
    psp.clock.advance_to(from_rfc3339(checkout["expires_at"]) - 1000)
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    assert await page.get_by_role("status").inner_text() == "Waiting for payment"
    # The countdown reaches zero and the page becomes the expired one.
    await page.locator("main[data-status=expired]").wait_for()
    assert await page.get_by_role("status").inner_text() == "This code has expired"
    assert "new code" in await page.locator("#advice").inner_text()
    assert not await page.get_by_role("button", name="Pay with the demo wallet").count()
    await assert_accessible(page)


async def test_cancelled_and_unknown_codes_have_pages_of_their_own(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant)
    status, _ = await psp.call(
        "POST", f"/v1/checkouts/{checkout['id']}/cancel", headers=merchant.auth
    )
    assert status == 200
    page = await browser.page()
    await page.goto(checkout["qr_url"])
    assert await page.get_by_role("status").inner_text() == "This checkout was cancelled"
    await assert_accessible(page)

    unknown = await browser.page()
    response = await unknown.goto(f"{psp.url}/Q/{'B' * 32}")
    assert response.status == 404
    assert await unknown.locator("h1").inner_text() == "Unknown code"
    await assert_accessible(unknown)


async def test_an_emv_merchants_page_offers_its_payload_to_copy(
    psp: Psp, browser: BrowserSession
) -> None:
    from scan2pay_common.emv import url_of_payload

    merchant = await psp.merchant("Café Zoë")
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Köln"}
    status, body = await psp.call("PATCH", "/v1/merchant", json=settings, headers=merchant.auth)
    assert status == 200, body
    checkout = await psp.checkout(merchant, amount=1234, terminal_id="lane-1")
    payload = checkout["qr_payload"]
    page = await browser.page()
    # A wallet that scanned the payload opens the URL inside it.
    response = await page.goto(url_of_payload(payload))
    assert response.status == 200
    field = page.get_by_label("Payment code to copy into an app that reads EMV QR codes")
    assert await field.input_value() == payload
    await assert_accessible(page)
    # A merchant on bare URLs offers none.
    plain = await psp.checkout(await psp.merchant("Plain"), amount=100)
    await page.goto(plain["qr_url"])
    assert await page.locator("#qr-payload").count() == 0
