"""Whether this terminal's panel can show the QR codes its merchant makes.

A terminal whose merchant's codes are EMV payloads (``qr_format = "emv"``,
docs/emv.md) checks at start that the longest payload it may get fits its
panel at ``render.EMV_MIN_SCALE`` pixels a module with a compliant quiet
zone, and refuses to start where it cannot, naming the largest QR version
that would fit: a till that cannot be scanned is better found at install
than at the first customer.

The longest payload is built, not guessed: the PSP's URL (this terminal's
``psp_url``, else the PSP's default one) with a code, in the scan2pay
template with the longest identifier a merchant may set (32 characters, or
what the template's 99 leave), a merchant name and city as long as the
standard allows, an amount of 12 characters, the 23-character reference and
this terminal's id as its label.
"""

from __future__ import annotations

from dataclasses import dataclass

from scan2pay_common import emv

from .render import EMV_MIN_SCALE, MIN_BORDER, layout_qr

DEFAULT_PSP_URL = "HTTP://127.0.0.1:8080"
_CODE = "A" * 32  # a checkout's code: 20 random bytes in base32
_MAX_GUI = 32  # what PATCH /v1/merchant takes as emv_gui


def longest_payload(psp_url: str | None, terminal_id: str) -> str:
    """The longest EMV payload a checkout for this terminal may carry (see
    the module docstring); ``EmvError`` when the URL leaves no room for one."""
    base = (psp_url or DEFAULT_PSP_URL).rstrip("/")
    url = f"{base}/Q/{_CODE}"
    room = emv.MAX_VALUE - 2 * 4 - len(url)  # the template less two ids and lengths
    gui = "W" * max(1, min(_MAX_GUI, room))
    merchant = emv.MerchantInfo("W" * emv.MAX_NAME, "5999", "DE", "W" * emv.MAX_CITY, gui=gui)
    return emv.dynamic_payload(
        url,
        merchant,
        amount=99_999_999_999,  # 999999999.99: 12 characters, past any till's
        currency="EUR",
        reference="A" * 23,
        terminal_label=terminal_id[: emv.MAX_LABEL],
    )


def largest_version(width: int, height: int, scale: int = EMV_MIN_SCALE) -> int:
    """The largest QR version whose symbol and a 2-module quiet zone fit the
    panel at ``scale`` pixels a module; 0 when not even version 1 does."""
    modules = min(width, height) // scale - 2 * MIN_BORDER
    return max(0, min(40, (modules - 17) // 4))


@dataclass(frozen=True, slots=True)
class EmvFit:
    """How an EMV payload is drawn on a panel, or why it cannot be."""

    width: int
    height: int
    length: int  # characters of the payload
    version: int | None  # the version drawn; None if it does not fit
    scale: int | None
    needed: int | None  # the version the payload needs at level L

    @property
    def fits(self) -> bool:
        return self.version is not None

    def problem(self) -> str | None:
        if self.fits:
            return None
        largest = largest_version(self.width, self.height)
        needs = f"QR version {self.needed} at least" if self.needed is not None else "no QR version"
        fits = f"version {largest}" if largest else "not even version 1"
        short_side = (
            f"at least {(17 + 4 * self.needed + 2 * MIN_BORDER) * EMV_MIN_SCALE} pixels"
            " on its short side"
            if self.needed is not None
            else "larger"
        )
        return (
            f'qr_format = "emv": this {self.width}x{self.height} display cannot show an EMV'
            f" payload. One of {self.length} characters needs {needs}; at"
            f" {EMV_MIN_SCALE} pixels a module with a {MIN_BORDER}-module quiet zone the"
            f" largest that fits is {fits}. Use a display {short_side}, or"
            ' qr_format = "url" with a merchant whose QR codes are URLs (docs/emv.md)'
        )


def emv_fit(width: int, height: int, payload: str) -> EmvFit:
    from .render import symbol_version

    layout = layout_qr(payload, width, height, EMV_MIN_SCALE)
    needed = symbol_version(payload, "L")
    if layout is None or not layout.plan.compliant or layout.plan.scale < EMV_MIN_SCALE:
        return EmvFit(width, height, len(payload), None, None, needed)
    return EmvFit(width, height, len(payload), layout.plan.version, layout.plan.scale, needed)
