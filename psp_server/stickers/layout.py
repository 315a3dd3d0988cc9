"""Where everything goes on a sticker, in printer dots at 300 dpi: one
layout that the raster (PNG, PDF) and the vector (SVG) writers both draw.

The sticker is 60 x 90 mm, upright: the merchant's name and "Scan to pay"
above the QR code, the till's label and the short id below it. The QR code
keeps its quiet zone of four modules, and each module is a whole number of
dots, so that no module prints a dot wider than its neighbour. A line of
text that is too wide shrinks down to a floor, and below the floor is cut
short with an ellipsis: a long name never runs off the sticker.

Text is measured with DejaVu Sans, the font the terminal ships
(``terminal/fonts``), so the layout does not depend on the machine's fonts.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

import segno
from PIL import ImageFont

from .sticker import Sticker

DPI = 300
MM_PER_INCH = 25.4
WIDTH_MM, HEIGHT_MM = 60, 90
WIDTH = round(WIDTH_MM / MM_PER_INCH * DPI)  # 709 dots
HEIGHT = round(HEIGHT_MM / MM_PER_INCH * DPI)  # 1063 dots
MARGIN = 36  # dots, 3 mm: printers do not print to the edge
GAP = 14  # dots between blocks
QUIET_ZONE = 4  # modules, as ISO/IEC 18004 asks
# Q restores a code with a quarter of it scratched or stained; a sticker
# lives for years on a counter.
ERROR_CORRECTION = "q"
MIN_MODULE_DOTS = 4  # 0.34 mm: smaller modules smudge on a label printer
SCAN_TO_PAY = "Scan to pay"
ELLIPSIS = "\u2026"
FONT_FILES = {False: "DejaVuSans-scan2pay.ttf", True: "DejaVuSans-Bold-scan2pay.ttf"}


@dataclass(frozen=True, slots=True)
class TextStyle:
    bold: bool
    largest: int  # font size in dots
    smallest: int  # below this the text is cut short instead


NAME = TextStyle(bold=True, largest=68, smallest=36)
CALL = TextStyle(bold=True, largest=52, smallest=52)
LABEL = TextStyle(bold=True, largest=52, smallest=30)
SHORT_ID = TextStyle(bold=False, largest=44, smallest=28)


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line, centred on the sticker; ``baseline`` from the top edge."""

    text: str
    size: int
    bold: bool
    baseline: int
    width: int  # the text's advance width at ``size``, in dots


@dataclass(frozen=True, slots=True)
class Layout:
    width: int
    height: int
    qr: segno.QRCode
    qr_left: int  # the outer edge of the quiet zone
    qr_top: int
    module: int  # dots per module
    lines: tuple[TextLine, ...]

    @property
    def qr_side(self) -> int:
        """The QR code's side in dots, quiet zone included."""
        return self.module * _modules(self.qr)


class StickerTooDense(ValueError):
    """The QR data needs modules smaller than a printer prints cleanly."""


def layout(sticker: Sticker) -> Layout:
    qr = segno.make_qr(sticker.qr_data, error=ERROR_CORRECTION, boost_error=False)
    room = WIDTH - 2 * MARGIN
    above = [_fit(sticker.merchant_name, NAME, room), _fit(SCAN_TO_PAY, CALL, room)]
    below = [_fit(sticker.till_label, LABEL, room), _fit(sticker.short_id, SHORT_ID, room)]
    text_height = sum(_line_height(size, bold) for _, size, bold in above + below)
    modules = _modules(qr)
    qr_room = min(room, HEIGHT - 2 * MARGIN - text_height - 4 * GAP)
    module = qr_room // modules
    if module < MIN_MODULE_DOTS:
        raise StickerTooDense(
            f"the QR code (version {qr.version}, {modules} modules with its quiet zone) needs"
            f" {MIN_MODULE_DOTS} dots a module, {modules * MIN_MODULE_DOTS} in all;"
            f" the sticker has room for {qr_room}: shorten the URL or payload"
        )
    side = module * modules
    # The blocks, centred as a whole between top and bottom.
    top = (HEIGHT - (text_height + 4 * GAP + side)) // 2
    lines: list[TextLine] = []
    y = top
    for text, size, bold in above:
        lines.append(_line(text, size, bold, y))
        y += _line_height(size, bold) + GAP
    qr_top = y
    y += side + GAP
    for text, size, bold in below:
        lines.append(_line(text, size, bold, y))
        y += _line_height(size, bold) + GAP
    return Layout(WIDTH, HEIGHT, qr, (WIDTH - side) // 2, qr_top, module, tuple(lines))


def _modules(qr: segno.QRCode) -> int:
    """The symbol's side in modules, quiet zone included."""
    return int(qr.symbol_size(scale=1, border=QUIET_ZONE)[0])


def _fit(text: str, style: TextStyle, room: int) -> tuple[str, int, bool]:
    """The text, whitespace folded, at the largest size that fits ``room``;
    at the smallest size, cut short with an ellipsis if it still does not."""
    text = " ".join(text.split())
    for size in range(style.largest, style.smallest - 1, -2):
        if advance(text, size, style.bold) <= room:
            return text, size, style.bold
    size = style.smallest
    kept = len(text)
    while kept > 1 and advance(text[:kept].rstrip() + ELLIPSIS, size, style.bold) > room:
        kept -= 1
    return text[:kept].rstrip() + ELLIPSIS, size, style.bold


def _line(text: str, size: int, bold: bool, top: int) -> TextLine:
    ascent, _ = font(size, bold).getmetrics()
    return TextLine(text, size, bold, top + int(ascent), round(advance(text, size, bold)))


def _line_height(size: int, bold: bool) -> int:
    ascent, descent = font(size, bold).getmetrics()
    return int(ascent + descent)


def advance(text: str, size: int, bold: bool) -> float:
    return float(font(size, bold).getlength(text))


_resources = contextlib.ExitStack()
atexit.register(_resources.close)


@functools.cache
def font_path(bold: bool) -> Path:
    """The terminal's shipped font as a file (extracted once if zipped)."""
    return _resources.enter_context(as_file(files("terminal") / "fonts" / FONT_FILES[bold]))


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(bold)), size, layout_engine=ImageFont.Layout.BASIC)
