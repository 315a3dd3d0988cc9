"""The values a display setting takes (numbers, GPIO pins, sizes, choices),
each parsed the one way both display forms share: the compact ``--display``
value (``registry``) and luma.examples' flags and keys (``luma_form``).

Each parser takes text and returns the value, or raises ``ValueError`` whose
message says what was expected; the caller names the setting.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SIZE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")
ROTATIONS = (0, 1, 2, 3)  # quarter turns clockwise, as luma counts them
MODES = ("1", "L", "RGB")


def integer(text: str) -> int:
    """Decimal or 0x-hex, as luma's own flags are written."""
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 10)  # int("08", 0) refuses a leading zero
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None


def int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = integer(text)
        if not low <= value <= high:
            raise ValueError(f"must be {low}..{high}")
        return value

    return parse


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def one_of_ints(*accepted: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = integer(text)
        if value not in accepted:
            raise ValueError(f"must be one of {', '.join(map(str, accepted))}")
        return value

    return parse


rotation = one_of_ints(*ROTATIONS)
i2c_port = int_range(0, 255)
i2c_address = int_range(0x03, 0x77)  # the 7-bit addresses a device may have
spi_number = int_range(0, 255)


def spi_speed(text: str) -> int:
    from . import luma_panel

    value = integer(text)
    if value not in luma_panel.SPI_SPEEDS_HZ:
        raise ValueError(f"luma's SPI clocks are {', '.join(map(str, luma_panel.SPI_SPEEDS_HZ))}")
    return value


def gpio(text: str) -> int:
    """A BCM GPIO number, as luma and RPi.GPIO count pins."""
    return int_range(0, 63)(text)


def gpio_or_none(text: str) -> int | None:
    """A pin, or ``none`` for a line that is not wired."""
    return None if text.lower() == "none" else gpio(text)


def choice(*accepted: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in accepted:
            raise ValueError(f"must be one of {', '.join(accepted)}")
        return text

    return parse


def size(text: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError("a size is WIDTHxHEIGHT, e.g. 128x64")
    return int(match.group(1)), int(match.group(2))
