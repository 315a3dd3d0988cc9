"""An EMV merchant's checkout whose amount no EMV payload holds: refused
before anything is made."""

from __future__ import annotations

from pathlib import Path

from scan2pay_common import emv
from tests.support.psp import start_psp, stop_psp


async def test_an_amount_no_payload_holds_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    big = await start_psp(str(tmp_path / "big.db"), max_amount=10**15)
    try:
        merchant = await big.merchant()
        settings = {"qr_format": "emv", "mcc": "5814", "country": "DE", "city": "Berlin"}
        status, _ = await big.call("PATCH", "/v1/merchant", json=settings, headers=merchant.auth)
        assert status == 200
        order = {"order_id": "BIG-1", "amount": 10**14, "currency": "EUR"}
        status, body = await big.call("POST", "/v1/checkouts", json=order, headers=merchant.auth)
        assert (status, body["error"]["code"]) == (422, "amount_too_large")
        assert "13 characters" in body["error"]["message"]
        again = {**order, "amount": 10**12 - 1}  # 9999999999.99: 13 characters, fits
        status, body = await big.call("POST", "/v1/checkouts", json=again, headers=merchant.auth)
        assert status == 201, body
        assert emv.parse_payload(body["qr_payload"]).amount == "9999999999.99"
    finally:
        await stop_psp(big)
