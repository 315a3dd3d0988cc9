"""What the PSP, the terminal and the cashier bridge agree on about static
till codes (docs/static-qr.md): the path a printed code opens, the words a
checkout's ``source`` is written in, and the short id a sticker carries
beside its QR.

The short id is made from the static code's id, not from its code: the
code is what pays, and nothing a person reads aloud or a terminal shows
should give part of it away. The id's last characters are its random part
(``psp_server.core.credentials.new_id``), so two stickers of one till
differ there.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from .errors import InvalidValue

# A printed code opens {public_url}/S/{CODE}; a checkout's own, /Q/{CODE}.
STATIC_PATH = "/S/"

Source = Literal["dynamic", "static"]
SOURCES: tuple[Source, ...] = get_args(Source)

SHORT_ID_LENGTH = 6
_STATIC_CODE_ID = re.compile(r"sc_[0-9a-f]{28}")


def check_static_code_id(value: object) -> str:
    if not isinstance(value, str) or not _STATIC_CODE_ID.fullmatch(value):
        raise InvalidValue("invalid_static_code_id", "not a static code id like sc_0123...")
    return value


def short_id(static_code_id: str) -> str:
    """Six upper-case hex digits of the id's random part: what a merchant
    compares between a sticker, the terminal and the board."""
    return check_static_code_id(static_code_id)[-SHORT_ID_LENGTH:].upper()
