"""What one sticker says, checked when it is made."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

# An EMVCo merchant-presented payload is at most 512 characters; a URL
# longer than that would print as modules too small to scan on 60 mm.
MAX_QR_DATA = 512
MAX_MERCHANT_NAME = 200
MAX_TILL_LABEL = 100
MAX_SHORT_ID = 32
NOT_XML = frozenset("\ufffe\uffff")


@dataclass(frozen=True)
class Sticker:
    """``payload``, when given, is what the QR encodes (an EMVCo string, say);
    otherwise the QR encodes ``url``."""

    url: str
    merchant_name: str
    till_label: str
    short_id: str
    payload: str | None = None

    def __post_init__(self) -> None:
        problems = [
            *_url_problems(self.url),
            *_text_problems("merchant_name", self.merchant_name, MAX_MERCHANT_NAME),
            *_text_problems("till_label", self.till_label, MAX_TILL_LABEL),
            *_text_problems("short_id", self.short_id, MAX_SHORT_ID),
        ]
        if self.payload is not None:
            problems += _text_problems("payload", self.payload, MAX_QR_DATA)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def qr_data(self) -> str:
        """What the QR code holds."""
        return self.payload if self.payload is not None else self.url


def _url_problems(url: object) -> list[str]:
    if not isinstance(url, str):
        return [f"url must be a string, not {type(url).__name__}"]
    if not url or len(url) > MAX_QR_DATA:
        return [f"url must have 1 to {MAX_QR_DATA} characters, not {len(url)}"]
    if not all("!" <= char <= "~" for char in url):
        return ["url must be printable ASCII without spaces (percent-encode the rest)"]
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ["url must be an absolute http or https URL"]
    return []


def _text_problems(name: str, text: object, limit: int) -> list[str]:
    if not isinstance(text, str):
        return [f"{name} must be a string, not {type(text).__name__}"]
    if not text.strip():
        return [f"{name} is empty"]
    if len(text) > limit:
        return [f"{name} has {len(text)} characters; at most {limit}"]
    # Control characters would be commands to a printer and are not allowed
    # in XML; surrogates and U+FFFE, U+FFFF are not text (nor XML) either.
    if any(unicodedata.category(char) in ("Cc", "Cs") or char in NOT_XML for char in text):
        return [f"{name} contains control characters or non-characters"]
    return []
