"""The code a terminal shows while it waits to be paired (docs/pairing.md).

Ten symbols of an alphabet without look-alikes, read aloud in groups:
``ABCD-EFGH-JK``. The alphabet is Crockford's base 32 less 0, 1 (and with
them O, I, L, which Crockford already drops) and U: 8 digits and 22
letters, 30 symbols, so ten of them carry 10 * log2(30) = 49 bits. A code
lives ten minutes, is used once and its guesses are rate-limited, so 49
bits leave a guesser no chance (docs/pairing.md, "Why the code is safe").
"""

from __future__ import annotations

import math
import secrets

from .errors import InvalidValue

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
GROUPS = (4, 4, 2)
BITS = LENGTH * math.log2(len(ALPHABET))
# What a person may type between the groups, or a QR scanner hand over.
_SEPARATORS = str.maketrans("", "", " -\t")
_LOOK_ALIKES = set("01OILU")


def new_code() -> str:
    """A fresh code, ungrouped: ``secrets`` draws each symbol uniformly."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    """``ABCDEFGHJK`` as people read it: ``ABCD-EFGH-JK``."""
    parts, at = [], 0
    for size in GROUPS:
        parts.append(code[at : at + size])
        at += size
    return "-".join(parts)


def parse_code(text: object) -> str:
    """What a person typed (any case, with or without the dashes and spaces)
    as the code, ungrouped; InvalidValue saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise InvalidValue("invalid_pairing_code", "the pairing code must be text")
    code = text.translate(_SEPARATORS).upper()
    if not code:
        raise InvalidValue("invalid_pairing_code", "enter the pairing code the terminal shows")
    if len(code) > 4 * LENGTH:
        raise InvalidValue("invalid_pairing_code", "that is far too long for a pairing code")
    strange = sorted(set(code) - set(ALPHABET))
    if strange:
        shown = ", ".join(repr(c) for c in strange[:5])
        why = (
            " (codes never use 0, 1, O, I, L or U: look again at the screen)"
            if set(strange) & _LOOK_ALIKES
            else ""
        )
        raise InvalidValue("invalid_pairing_code", f"a pairing code has no {shown}{why}")
    if len(code) != LENGTH:
        raise InvalidValue(
            "invalid_pairing_code",
            f"a pairing code has {LENGTH} letters and digits, like ABCD-EFGH-JK;"
            f" this has {len(code)}",
        )
    return code
