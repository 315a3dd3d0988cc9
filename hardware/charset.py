"""Text for devices with an 8-bit character set: a Nextion's font encoding, a
receipt printer's code page.

A character the set cannot encode is replaced by something a person still
reads correctly, never silently dropped:

* a currency sign by its ISO 4217 code, spaced from the number:
  ``€12.34`` -> ``EUR 12.34``, ``₹99`` -> ``INR 99``. (``¥`` is JPY because
  that is the sign ``scan2pay_common.money`` uses for JPY.)
* typographic punctuation by its ASCII look-alike (curly quotes by straight
  ones, an ellipsis by ``...``);
* a letter by its base letter (``é`` -> ``e``, ``ß`` -> ``ss``);
* anything else by ``?``.

Control characters become spaces: on these devices they are commands.
"""

from __future__ import annotations

import codecs
import unicodedata
from urllib.parse import quote

CURRENCY_CODES: dict[str, str] = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₪": "ILS",
    "₦": "NGN",
    "₱": "PHP",
    "₺": "TRY",
    "₴": "UAH",
    "₫": "VND",
    "฿": "THB",
}

LOOK_ALIKES: dict[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u00b7": ".",
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
}


def check_encoding(name: str) -> str:
    """``name`` if Python knows the encoding, else ``LookupError``."""
    codecs.lookup(name)
    return name


def fit_charset(text: str, encoding: str, *, avoid: bytes = b"") -> str:
    """``text`` with every character ``encoding`` cannot carry replaced (see the
    module docstring). A character whose encoding contains a byte of ``avoid``
    counts as one it cannot carry (a Nextion reads 0xFF as an end marker)."""

    def fits(chars: str) -> bool:
        try:
            encoded = chars.encode(encoding)
        except UnicodeEncodeError:
            return False
        return not any(byte in avoid for byte in encoded)

    out: list[str] = []
    for index, char in enumerate(text):
        if unicodedata.category(char).startswith("C"):
            out.append(" ")
        elif fits(char):
            out.append(char)
        elif char in CURRENCY_CODES:
            before = " " if index > 0 and text[index - 1].isdigit() else ""
            after = " " if text[index + 1 : index + 2].isdigit() else ""
            out.append(before + CURRENCY_CODES[char] + after)
        else:
            look_alike = LOOK_ALIKES.get(char) or _base_letters(char)
            out.append(look_alike if look_alike and fits(look_alike) else "?")
    return "".join(out)


def encode_text(text: str, encoding: str, *, avoid: bytes = b"") -> bytes:
    return fit_charset(text, encoding, avoid=avoid).encode(encoding)


def ascii_url(url: str) -> bytes:
    """The URL as ASCII bytes for a QR code. A URL is never transliterated (that
    would send the customer elsewhere); characters outside ASCII are
    percent-encoded as UTF-8, the standard mapping of an IRI to a URI."""
    return quote(url, safe="".join(chr(c) for c in range(0x21, 0x7F))).encode("ascii")


def _base_letters(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
