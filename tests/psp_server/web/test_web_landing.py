"""The landing page (``/pay``) in headless Chromium: a person pastes the
EMV payload a banking app or a scanner app gave them, and lands on the
checkout's payment page; a code of another service is refused on the
page, with and without scripts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.browser import BrowserSession, assert_accessible
from tests.support.psp import Psp, code_of, start_psp, stop_psp

EMV_SETTINGS = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"))
    yield server
    await stop_psp(server)


async def test_paste_an_emv_payload_and_land_on_the_payment_page(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant("Café Müller")
    status, body = await psp.call("PATCH", "/v1/merchant", json=EMV_SETTINGS, headers=merchant.auth)
    assert status == 200, body
    checkout = await psp.checkout(merchant, amount=1234, terminal_id="lane-1")
    page = await browser.page()
    await page.goto(f"{psp.url}/pay")
    assert await page.title() == "Pay with a payment code"
    await assert_accessible(page)
    field = page.get_by_label("Payment link or code")
    # Pasted, as from a banking app's "copy code": the whole text at once.
    await field.fill(checkout["qr_payload"])
    await page.get_by_role("button", name="Continue to pay").click()
    await page.wait_for_url(f"{psp.url}/Q/{code_of(checkout)}")
    assert await page.locator("h1").inner_text() == "Café Müller"
    assert await page.locator("#amount").inner_text() == "€12.34"
    assert await page.get_by_role("status").inner_text() == "Waiting for payment"
    await assert_accessible(page)


async def test_a_code_of_another_service_is_refused_on_the_page(
    psp: Psp, browser: BrowserSession
) -> None:
    merchant = await psp.merchant()
    checkout = await psp.checkout(merchant)
    foreign = checkout["qr_url"].replace("127.0.0.1", "localhost")
    for scripts in (True, False):
        page = await browser.page(java_script_enabled=scripts)
        await page.goto(f"{psp.url}/pay")
        # From the keyboard alone: Tab to the field, type, Enter on the button.
        await page.keyboard.press("Tab")
        await page.keyboard.type(foreign)
        await page.keyboard.press("Tab")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert page.url == f"{psp.url}/pay"
        alert = page.get_by_role("alert")
        assert await alert.inner_text() == (
            "This code is for another payment service (localhost), not this one:"
            " pay it with that service's app."
        )
        assert await page.get_by_label("Payment link or code").input_value() == foreign
        assert await page.title() == "Payment code not accepted"
        if scripts:  # axe-core is a script
            await assert_accessible(page)
        # Corrected in place, it goes on.
        await page.get_by_label("Payment link or code").fill(checkout["qr_url"])
        await page.get_by_role("button", name="Continue to pay").click()
        await page.wait_for_url(checkout["qr_url"].replace("HTTP://127.0.0.1", "http://127.0.0.1"))
