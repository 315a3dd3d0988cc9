"""An ESC/POS receipt printer over a serial port (or ``socket://host:9100``),
printing the QR code natively with ``GS ( k``.

Paper is not a screen, so it does not print every frame:

* a frame with a QR URL it has not printed yet prints a slip: the lines
  (first one double size), the QR code, then feed and cut. The same URL
  again (the countdown ticking, a banner coming and going) prints nothing.
  Countdown lines such as "4:59" are left out: on paper they are stale at once.
* the first frame without a QR after a printed QR is the checkout's outcome:
  its lines print as one receipt line ("Paid €12.34"), then feed and cut.
* every other frame (idle, a repeated outcome) prints nothing.

As a printer (``hardware.printer``) it prints a sticker for a till's
static QR code: centred, the merchant's name (double size), "Scan to
pay", the QR code, the till's label (bold) and the short id, then feed
and cut. The QR data goes to the printer as it is (UTF-8), not as a URL:
an EMVCo payload is not one.

Text is encoded in the printer's code page (default ``cp437``, selected with
``ESC t`` on every slip), with unencodable characters replaced as
``hardware.charset`` describes (``€12.34`` -> ``EUR 12.34`` in cp437; choose
``cp858`` or ``cp1252`` for a real euro sign if the printer has them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .base import Display, Frame, Geometry
from .charset import ascii_url, encode_text
from .printer import Printer, StickerSlip
from .serial_link import SerialLink

ESC = b"\x1b"
GS = b"\x1d"
LF = b"\n"
INIT = ESC + b"@"
CENTRE = ESC + b"a\x01"
DOUBLE_SIZE = GS + b"!\x11"
NORMAL_SIZE = GS + b"!\x00"
BOLD_ON = ESC + b"E\x01"
BOLD_OFF = ESC + b"E\x00"
FEED_LINES = 4  # clears the cutter, which sits above the print head
CUTS = {"partial": GS + b"V\x01", "full": GS + b"V\x00", "none": b""}
Cut = Literal["partial", "full", "none"]

# ESC t n: Epson's code page numbers.
CODE_PAGES: dict[str, int] = {
    "cp437": 0,
    "cp850": 2,
    "cp860": 3,
    "cp863": 4,
    "cp865": 5,
    "cp1252": 16,
    "cp866": 17,
    "cp852": 18,
    "cp858": 19,
}
ERROR_CORRECTION: dict[str, int] = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_MAX_BYTES = 7089  # GS ( k function 180's limit
DEFAULT_BAUD = 9600
_COUNTDOWN = re.compile(r"\d+:\d\d")


@dataclass(frozen=True, slots=True)
class EscPosConfig:
    port: str
    baud: int = DEFAULT_BAUD
    charset: str = "cp437"
    module: int = 6  # QR module size in dots (1..16)
    ecc: str = "M"
    cut: Cut = "partial"

    def open(self) -> EscPosDisplay:
        return EscPosDisplay(self)

    def open_printer(self) -> EscPosPrinter:
        return EscPosPrinter(self)


def qr_commands(url: str, module: int, ecc: str) -> bytes:
    return qr_data_commands(ascii_url(url), module, ecc)


def qr_data_commands(data: bytes, module: int, ecc: str) -> bytes:
    """``GS ( k``: select model 2, set the module size and error correction,
    store ``data`` in the printer's symbol buffer, print it."""
    if len(data) > QR_MAX_BYTES:
        raise ValueError(f"a QR code holds at most {QR_MAX_BYTES} bytes; the data has {len(data)}")
    store_length = len(data) + 3  # pL pH count cn, fn and m as well as the data
    return b"".join(
        [
            _gs_k(b"1A", b"2\x00"),  # function 165: model 2
            _gs_k(b"1C", bytes([module])),  # function 167: module size
            _gs_k(b"1E", bytes([ERROR_CORRECTION[ecc]])),  # function 169
            GS + b"(k" + store_length.to_bytes(2, "little") + b"1P0" + data,  # function 180
            _gs_k(b"1Q", b"0"),  # function 181: print
        ]
    )


def _gs_k(cn_fn: bytes, parameters: bytes) -> bytes:
    return GS + b"(k" + (len(cn_fn) + len(parameters)).to_bytes(2, "little") + cn_fn + parameters


def qr_slip(frame: Frame, url: str, config: EscPosConfig) -> bytes:
    lines = [line for line in frame.content.lines if not _COUNTDOWN.fullmatch(line.strip())]
    text = b""
    for index, line in enumerate(lines):
        encoded = encode_text(line, config.charset) + LF
        text += DOUBLE_SIZE + encoded + NORMAL_SIZE if index == 0 else encoded
    qr = qr_commands(url, config.module, config.ecc)
    return _slip(config, text + qr + LF)


def outcome_slip(frame: Frame, config: EscPosConfig) -> bytes:
    line = " ".join(frame.content.lines)
    return _slip(config, BOLD_ON + encode_text(line, config.charset) + LF + BOLD_OFF)


def sticker_slip(sticker: StickerSlip, config: EscPosConfig) -> bytes:
    name, call, label, short_id = (encode_text(line, config.charset) for line in sticker.lines)
    qr = qr_data_commands(sticker.qr_data.encode("utf-8"), config.module, config.ecc)
    return _slip(
        config,
        DOUBLE_SIZE + name + LF + NORMAL_SIZE
        + call + LF
        + qr + LF
        + BOLD_ON + label + LF + BOLD_OFF
        + short_id + LF,
    )  # fmt: skip


def _slip(config: EscPosConfig, body: bytes) -> bytes:
    code_page = ESC + b"t" + bytes([CODE_PAGES[config.charset]])
    feed = ESC + b"d" + bytes([FEED_LINES])
    return INIT + code_page + CENTRE + body + feed + CUTS[config.cut]


class EscPosDisplay(Display):
    """Content-only: ``geometry`` is None and ``frame.image`` is ignored."""

    def __init__(self, config: EscPosConfig) -> None:
        self.config = config
        self.name = f"escpos:{config.port}"
        self._link = SerialLink(config.port, baudrate=config.baud, name=self.name)
        self._printed_url: str | None = None
        self._awaiting_outcome = False

    @property
    def geometry(self) -> Geometry | None:
        return None

    def show(self, frame: Frame) -> None:
        url = frame.content.qr_url
        if url:
            if url != self._printed_url:
                self._link.write(qr_slip(frame, url, self.config))
                self._printed_url = url
                self._awaiting_outcome = True
        elif self._awaiting_outcome and frame.content.kind != "idle":
            # The outcome of the printed QR; an idle screen straight after a
            # QR (the cashier moved on) is no outcome and prints nothing.
            self._link.write(outcome_slip(frame, self.config))
            self._awaiting_outcome = False
        elif frame.content.kind == "idle":
            self._awaiting_outcome = False

    def close(self) -> None:
        self._link.close()


class EscPosPrinter(Printer):
    def __init__(self, config: EscPosConfig) -> None:
        self.config = config
        self.name = f"escpos:{config.port}"
        self._link = SerialLink(config.port, baudrate=config.baud, name=self.name)

    def print_sticker(self, sticker: StickerSlip) -> None:
        self._link.write(sticker_slip(sticker, self.config))

    def close(self) -> None:
        self._link.close()
