"""What the landing page (``/pay``, docs/web.md) makes of the text a person
pastes or a phone's scanner app hands over: this PSP's payment URL
(``{public_url}/Q/{CODE}`` or ``/S/{CODE}``), as it is or inside an EMV
payload (docs/emv.md), becomes the page to go on to; anything else is
refused with the reason, and nothing is looked up or written.

Only this PSP's own URLs are followed: the page never sends a person on to
an address that a pasted text chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from psp_server.core.payloads import check_code
from scan2pay_common import emv
from scan2pay_common.errors import InvalidValue

# A payload is at most emv.MAX_PAYLOAD characters, and our URLs far fewer:
# anything longer is not a code of ours, and is not read further.
MAX_TEXT = 1024
# The kinds of page a code opens: a checkout's, a till's printed code's.
Kind = Literal["Q", "S"]
_KINDS: tuple[Kind, ...] = ("Q", "S")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN_HOST = 64  # characters of another service's host named in a refusal


@dataclass(frozen=True, slots=True)
class Destination:
    """The page to go on to: ``kind`` ``Q`` (a checkout) or ``S`` (a till's
    printed code), and its code, checked and upper case."""

    kind: Kind
    code: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidValue("invalid_kind", "a destination is a /Q/ or an /S/ page")
        if check_code(self.code) != self.code:
            raise InvalidValue("invalid_code", "a destination's code is checked and upper case")

    @property
    def path(self) -> str:
        """Relative to the application's root: ``Q/{CODE}``."""
        return f"{self.kind}/{self.code}"


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    """Scheme, host and port, compared without case (``HTTP://PAY.EXAMPLE``
    is ``http://pay.example``) and with the scheme's default port filled in."""
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _refused(code: str, message: str) -> InvalidValue:
    return InvalidValue(code, message, field="code")


def destination_of(text: str, public_url: str) -> Destination:
    """Where ``text`` (a payment URL or an EMV payload) sends a person, or
    ``InvalidValue`` saying why it sends them nowhere: empty, too long, an
    EMV payload that does not hold (CRC, structure, a scheme no profile
    knows), not a URL, another service's URL, or no code of ours in it."""
    text = text.strip()
    if not text:
        raise _refused(
            "missing_code", "paste the payment link or the text of the payment code first"
        )
    if len(text) > MAX_TEXT:
        raise _refused(
            "code_too_long",
            f"that is {len(text)} characters; a payment code has at most {MAX_TEXT}",
        )
    try:
        url = emv.payment_url(text)
    except emv.EmvError as exc:
        raise _refused(
            exc.code, f"this is not a payment code this service can read: {exc.message}"
        ) from None
    try:
        parts = urlsplit(url)
        origin = _origin(parts)
    except ValueError:  # a port that is not a number, a malformed address
        raise _refused("invalid_url", "this link is not a well-formed web address") from None
    ours = urlsplit(public_url)
    if origin != _origin(ours):
        host = (parts.hostname or "an unnamed host")[:_SHOWN_HOST]
        raise _refused(
            "foreign_code",
            f"this code is for another payment service ({host}), not this one:"
            " pay it with that service's app",
        )
    return _on_our_site(parts, ours.path.rstrip("/"))


def _on_our_site(parts: SplitResult, root: str) -> Destination:
    """The code in a URL of this PSP's origin: ``{root}/Q/{CODE}`` or
    ``{root}/S/{CODE}``, nothing after it. The path is compared without case,
    as the public URL is written in upper case for the QR's sake."""
    not_ours = _refused("not_a_payment_link", "this link leads to no payment on this service")
    if parts.query or parts.fragment:
        raise not_ours
    path = parts.path
    if not path.upper().startswith(root.upper() + "/"):
        raise not_ours
    kind, _, code = path[len(root) + 1 :].partition("/")
    kind = kind.upper()
    if kind not in _KINDS or not code or "/" in code:
        raise not_ours
    try:
        checked = check_code(code)
    except InvalidValue:
        raise _refused(
            "malformed_code", "the payment code in this link is cut short or mistyped"
        ) from None
    return Destination("Q" if kind == "Q" else "S", checked)
