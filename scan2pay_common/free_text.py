"""The one rule for free text that people will read: checkout descriptions,
merchant and wallet names, labels. The terminal draws such text on a panel
and the board shows it to staff, so it may hold any letters, marks, digits,
symbols and spaces of any script, and none of what changes how the rest is
shown or read:

* control characters: C0 (newline, escape, ...), DEL and C1;
* line and paragraph separators (U+2028, U+2029), which break lines like
  a newline does;
* bidirectional embeddings, overrides and isolates (U+202A to U+202E,
  U+2066 to U+2069), which reorder what follows them ("Trojan Source");
* noncharacters (U+FDD0 to U+FDEF, and the last two code points of every
  plane), which Unicode reserves for a program's own use;
* lone surrogates, which no UTF-8 can carry.
"""

from __future__ import annotations

import re

from .errors import InvalidValue

# A checkout's description: what a receipt line or a panel's line can hold.
DESCRIPTION_MAX = 200

_PLANE_ENDS = "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef"
    "\ud800-\udfff" + _PLANE_ENDS + "]"
)


def text_problem(text: str) -> str | None:
    """What is wrong with ``text`` by the rule above, or None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return (
        f"U+{ord(found.group()):04X} at position {found.start()}: no control characters, "
        "line separators, bidirectional overrides, noncharacters or lone surrogates"
    )


def check_free_text(value: object, *, field: str, code: str, maximum: int) -> str:
    """``value`` if it is a string of at most ``maximum`` characters that
    keeps the rule; an InvalidValue naming the field otherwise."""
    if not isinstance(value, str):
        raise InvalidValue(code, f"{field} must be a string", field=field)
    if len(value) > maximum:
        raise InvalidValue(code, f"{field} must be at most {maximum} characters", field=field)
    problem = text_problem(value)
    if problem is not None:
        raise InvalidValue(code, f"{field} must be plain text: {problem}", field=field)
    return value
