"""The demo's simulated wallet: it reads the QR off the terminal's rendered
frame (not from memory), asks the PSP what it is for, and pays. The QR may
hold the payment URL or an EMV payload around it (docs/emv.md); anything
else, or a payload whose CRC fails, is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from PIL import Image

from scan2pay_common.emv import EmvError, payment_url

MARGIN = 16  # the panel's dark bezel around the frame
SCALE = 4  # a camera sees more pixels than the panel has


class WalletError(Exception):
    pass


def read_qr(image: Image.Image) -> str:
    """Decodes the one QR code in a rendered frame."""
    try:
        import zxingcpp
    except ImportError as exc:
        raise WalletError("the demo wallet needs zxing-cpp: pip install 'scan2pay[demo]'") from exc
    grey = image.convert("L")
    canvas = Image.new("L", (grey.width + 2 * MARGIN, grey.height + 2 * MARGIN), 0)
    canvas.paste(grey, (MARGIN, MARGIN))
    canvas = canvas.resize((canvas.width * SCALE, canvas.height * SCALE), Image.Resampling.NEAREST)
    found = [result.text for result in zxingcpp.read_barcodes(canvas)]
    if len(found) != 1:
        raise WalletError(f"expected one QR code on the terminal's screen, read {len(found)}")
    return found[0]


@dataclass(frozen=True)
class Payment:
    info: dict[str, Any]  # what GET /Q/{CODE} said
    payment: dict[str, Any]  # what POST /v1/payments answered


def scanned_url(scanned: str) -> str:
    """The payment URL of what the QR held: a URL, or an EMV payload's."""
    try:
        return payment_url(scanned)
    except EmvError as exc:
        raise WalletError(f"not a payment code: {exc.message}") from None


async def pay(http: aiohttp.ClientSession, psp_url: str, scanned: str, token: str) -> Payment:
    """Pays what the QR held (``scanned``: a URL or an EMV payload)."""
    qr_url = scanned_url(scanned)
    async with http.get(qr_url, headers={"Accept": "application/json"}) as response:
        info = await response.json()
        if response.status != 200:
            raise WalletError(f"the PSP does not know this code: {info}")
    code = qr_url.rsplit("/Q/", 1)[1]
    async with http.post(
        f"{psp_url}/v1/payments",
        json={"code": code},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        answer = await response.json()
        if response.status != 201:
            raise WalletError(f"payment refused: {answer}")
    return Payment(info, answer)
