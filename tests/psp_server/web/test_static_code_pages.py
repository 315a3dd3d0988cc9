"""Printed till codes in headless Chromium: a customer scans one on a phone,
types an amount and pays on the checkout's page, while the merchant's board
shows the payment at the till with the code's short id; the board's page of
codes makes, prints and revokes them; and over plain HTTP, its refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.board import csrf_field, request, sign_in
from tests.support.browser import DESKTOP, BrowserSession, assert_accessible
from tests.support.psp import Merchant, Psp, count_rows, start_psp, stop_psp

OPEN_EUR = {"currency": "EUR", "min": 100, "max": 5000}


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.2)
    yield server
    await stop_psp(server)


async def make_code(psp: Psp, shop: Merchant, **body: Any) -> dict[str, Any]:
    status, made = await psp.call(
        "POST", "/v1/terminals/till-1/static-codes", json=body, headers=shop.auth
    )
    assert status == 201, made
    return dict(made)


async def board(browser: BrowserSession, psp: Psp, shop: Merchant) -> Any:
    page = await browser.page(viewport=DESKTOP)
    await page.goto(f"{psp.url}/merchant")
    await page.get_by_label("Merchant key").fill(shop.key)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator("#live[data-state=live]").wait_for()
    return page


async def test_a_customer_types_an_amount_pays_and_the_board_shows_the_sticker(
    psp: Psp, browser: BrowserSession
) -> None:
    shop = await psp.merchant("Café Zoë")
    wallet = await psp.wallet("EUR", 10_000)
    made = await make_code(psp, shop, label="Counter 1", open_amount=OPEN_EUR)
    desk = await board(browser, psp, shop)

    phone = await browser.page()
    await phone.goto(made["url"])
    assert await phone.locator("#merchant").inner_text() == "Café Zoë"
    assert await phone.locator("#till-label").inner_text() == "Counter 1"
    assert await phone.locator("#short-id").inner_text() == made["short_id"]
    await assert_accessible(phone)
    await phone.get_by_label("Amount in EUR").fill("0.50")
    await phone.get_by_role("button", name="Continue to pay").click()
    await phone.get_by_role("alert").filter(has_text="min").wait_for()
    await assert_accessible(phone)
    await phone.get_by_label("Amount in EUR").fill("12.50")
    await phone.get_by_role("button", name="Continue to pay").click()
    await phone.wait_for_url("**/Q/*")
    assert await phone.locator("#amount").inner_text() == "€12.50"
    await phone.get_by_role("button", name="Pay with the demo wallet").click()
    await phone.get_by_label("Demo wallet token").fill(wallet.token)
    await phone.get_by_role("button", name="Save and pay").click()
    await phone.get_by_role("region", name="Receipt").wait_for()

    row = desk.locator("#rows tr[data-status=paid]")
    await row.wait_for()
    cells = [text.strip() for text in await row.locator("td, th").all_inner_texts()]
    assert cells[2:5] == [f"till-1 · static QR {made['short_id']}", "€12.50", "Paid"]
    await assert_accessible(desk)


async def test_the_tills_checkout_shows_on_the_sticker_and_nothing_yet_waits(
    psp: Psp, browser: BrowserSession
) -> None:
    shop = await psp.merchant("Café Zoë")
    made = await make_code(psp, shop, label="Counter 1")
    phone = await browser.page()
    await phone.goto(made["url"])
    assert await phone.locator("#status").inner_text() == "Nothing to pay at this till yet"
    await assert_accessible(phone)
    await psp.checkout(shop, order_id="A-7", amount=850, terminal_id="till-1")
    # The page asks again by itself and turns into the checkout's payment page.
    await phone.locator("#amount").filter(has_text="€8.50").wait_for(timeout=10_000)
    assert await phone.locator("#short-id").inner_text() == made["short_id"]
    assert await phone.get_by_role("button", name="Pay with the demo wallet").is_visible()


async def test_the_boards_page_makes_prints_and_revokes_codes(
    psp: Psp, browser: BrowserSession
) -> None:
    shop = await psp.merchant("Café Zoë")
    desk = await board(browser, psp, shop)
    await desk.get_by_role("link", name="Printed codes").click()
    await desk.locator("#no-codes").wait_for()
    await assert_accessible(desk)
    await desk.get_by_label("Terminal id").fill("till-1")
    await desk.get_by_label("Till label on the sticker").fill("Counter 1")
    await desk.get_by_label("Let customers type an amount in").fill("EUR")
    await desk.get_by_label("From", exact=True).fill("1")
    await desk.get_by_label("To", exact=True).fill("50")
    await desk.get_by_role("button", name="Make the code").click()
    row = desk.locator("#codes-body tr")
    await row.wait_for()
    cells = [text.strip() for text in await row.locator("td, th").all_inner_texts()]
    assert cells[:5] == ["till-1", "Counter 1", cells[2], "Typed, €1.00 to €50.00", "In use"]
    short_id = cells[2]
    await assert_accessible(desk)

    async with desk.expect_popup() as opened:
        await desk.get_by_role("link", name="SVG").click()
    sticker = await opened.value
    await sticker.wait_for_load_state()
    assert short_id in await sticker.content()
    await sticker.close()

    await desk.get_by_role("button", name=f"Revoke code {short_id} of till Counter 1").click()
    await desk.locator("#codes-body tr .status-cancelled").wait_for()
    assert not await desk.get_by_role("link", name="SVG").count()  # a revoked code has none


async def test_the_boards_page_refuses_without_changing_anything(psp: Psp) -> None:
    shop = await psp.merchant("Café Zoë")
    other = await psp.merchant("Other")
    theirs = await make_code(psp, other)
    signed = await sign_in(psp, shop.key)
    response, html = await request(psp, "GET", "/merchant/static-codes", headers=signed.headers)
    assert response.status == 200
    assert theirs["short_id"] not in html
    csrf = csrf_field(html)
    posted = {"csrf": csrf, "terminal": "till 1"}
    response, html = await request(
        psp, "POST", "/merchant/static-codes", headers=signed.headers, data=posted
    )
    assert response.status == 422
    assert 'role="alert"' in html
    response, html = await request(
        psp,
        "POST",
        "/merchant/static-codes",
        headers=signed.headers,
        data={"csrf": csrf, "terminal": "till-1", "currency": "EUR", "min": "9", "max": "1"},
    )
    assert response.status == 422
    response, _ = await request(
        psp, "POST", "/merchant/static-codes", data={"csrf": csrf, "terminal": "till-1"}
    )
    assert response.status == 401  # signed out
    response, _ = await request(
        psp,
        "POST",
        "/merchant/static-codes",
        headers=signed.headers,
        data={"terminal": "till-1"},
    )
    assert response.status == 403  # no CSRF token
    assert count_rows(psp, "static_codes") == 1
    response, _ = await request(
        psp,
        "POST",
        f"/merchant/static-codes/{theirs['id']}/revoke",
        headers=signed.headers,
        data={"csrf": csrf},
    )
    assert response.status == 404
    response, _ = await request(
        psp, "GET", f"/merchant/static-codes/{theirs['id']}/sticker.png", headers=signed.headers
    )
    assert response.status == 404
    _, listed = await psp.call("GET", "/v1/terminals/till-1/static-codes", headers=other.auth)
    assert listed["static_codes"][0]["revoked_at"] is None


async def test_the_boards_sticker_of_an_emv_merchants_code_encodes_its_payload(psp: Psp) -> None:
    import io

    from PIL import Image

    from tests.support.qr_decode import decode_both

    shop = await psp.merchant("Café Zoë")
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
    status, _ = await psp.call("PATCH", "/v1/merchant", json=settings, headers=shop.auth)
    assert status == 200
    made = await make_code(psp, shop, open_amount=OPEN_EUR)
    signed = await sign_in(psp, shop.key)
    async with psp.http.get(
        f"{psp.url}/merchant/static-codes/{made['id']}/sticker.png", headers=signed.headers
    ) as response:
        assert response.status == 200
        png = await response.read()
    assert decode_both(Image.open(io.BytesIO(png))) == made["qr_payload"]
