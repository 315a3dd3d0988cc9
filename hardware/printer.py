"""The printer interface: a sticker for a till's static QR code, printed on
the device's own terms (a receipt printer draws the QR with its own
command), with ``noop`` and ``dummy`` versions as ``hardware.base`` has for
displays.

``print_sticker`` blocks (a serial write at 9600 baud takes a second or
so): call it off any event loop. It raises ``DisplayError``, the hardware
layer's device failure, never a bare ``OSError``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

SCAN_TO_PAY = "Scan to pay"


@dataclass(frozen=True, slots=True)
class StickerSlip:
    """What a printed sticker says: ``qr_data`` is what its QR code holds (a
    static code's URL or an EMVCo payload); the words go around it."""

    qr_data: str
    merchant_name: str
    till_label: str
    short_id: str

    def __post_init__(self) -> None:
        empty = [
            name
            for name in ("qr_data", "merchant_name", "till_label", "short_id")
            if not getattr(self, name).strip()
        ]
        if empty:
            raise ValueError(f"a sticker needs {', '.join(empty)}")

    @property
    def lines(self) -> tuple[str, str, str, str]:
        """The words, top to bottom; the QR code goes after the second."""
        return (self.merchant_name, SCAN_TO_PAY, self.till_label, self.short_id)


class Printer(abc.ABC):
    name: str = "printer"

    @abc.abstractmethod
    def print_sticker(self, sticker: StickerSlip) -> None:
        """Prints the sticker; returns once the device has it."""

    def close(self) -> None:  # noqa: B027 - most printers have nothing to release
        """Releases the device."""


class NoopPrinter(Printer):
    """Accepts every sticker and prints nothing."""

    name = "noop"

    def print_sticker(self, sticker: StickerSlip) -> None:
        return None


class DummyPrinter(Printer):
    """Keeps every sticker it is given, in memory: for tests."""

    name = "dummy"

    def __init__(self) -> None:
        self.stickers: list[StickerSlip] = []

    def print_sticker(self, sticker: StickerSlip) -> None:
        self.stickers.append(sticker)
