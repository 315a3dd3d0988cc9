"""``scan2pay.wallet`` pays what a QR holds: a bare URL or an EMV payload
around it, against a real PSP; anything else is refused with the reason and
pays nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from scan2pay import wallet
from scan2pay_common import emv
from tests.support.psp import Psp, start_psp, stop_psp


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"))
    yield server
    await stop_psp(server)


async def _emv_checkout(psp: Psp) -> dict[str, object]:
    merchant = await psp.merchant("Café Zoë")
    settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
    status, body = await psp.call("PATCH", "/v1/merchant", json=settings, headers=merchant.auth)
    assert status == 200, body
    return await psp.checkout(merchant, amount=1234)


async def test_pays_an_emv_payload(psp: Psp) -> None:
    payer = await psp.wallet(balance=5000)
    checkout = await _emv_checkout(psp)
    payload = str(checkout["qr_payload"])
    paid = await wallet.pay(psp.http, psp.url, payload, payer.token)
    assert paid.payment["checkout_id"] == checkout["id"]
    assert paid.info["merchant"]["name"] == "Café Zoë"
    assert await psp.balance(payer) == 5000 - 1234


async def test_pays_a_bare_url(psp: Psp) -> None:
    payer = await psp.wallet(balance=5000)
    checkout = await psp.checkout(await psp.merchant(), amount=100)
    paid = await wallet.pay(psp.http, psp.url, str(checkout["qr_url"]), payer.token)
    assert paid.payment["amount"] == 100


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda p: p[:-1] + ("0" if p[-1] != "0" else "1"), "CRC mismatch"),
        (lambda p: p.replace("12.34", "00.01"), "CRC mismatch"),
        (lambda p: "WIFI:S:cafe;T:WPA;P:secret;;", "neither a payment URL nor an EMV payload"),
    ],
)
async def test_refuses_what_is_no_payment_code(
    psp: Psp, mangle: Callable[[str], str], reason: str
) -> None:
    payer = await psp.wallet(balance=5000)
    checkout = await _emv_checkout(psp)
    bad = mangle(str(checkout["qr_payload"]))
    with pytest.raises(wallet.WalletError, match=reason):
        await wallet.pay(psp.http, psp.url, bad, payer.token)
    assert await psp.balance(payer) == 5000


async def test_refuses_a_payload_of_an_unknown_scheme(psp: Psp) -> None:
    body = "00020101021126200016com.other.scheme5204581453039785802DE5901A6001B6304"
    payer = await psp.wallet(balance=5000)
    with pytest.raises(wallet.WalletError, match="no payment URL of a scheme"):
        await wallet.pay(psp.http, psp.url, body + emv.crc16(body), payer.token)
    assert await psp.balance(payer) == 5000
