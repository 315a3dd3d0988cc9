"""``scan2pay-terminal test-pattern``: two frames on the configured display,
to check the panel, its contrast and its rotation when installing it.

1. The pattern: a border on the outermost pixels (a panel whose size or
   offset is wrong cuts it off), a solid square in the top-left corner and
   brackets in the other three (a panel mounted turned shows the square in
   another corner: set ``rotate``), "TOP" and the size the screens are
   drawn at, and a contrast strip: on a black-and-white panel a
   checkerboard of single pixels and of pairs (grey smudges mean a panel
   or a contrast that blurs a QR code's modules), on a grey or colour one a
   ramp of sixteen greys (and colour bars on a colour one).
2. A sample QR, drawn as the daemon draws a checkout's (``terminal.render``)
   for a code under the configured ``psp_url`` that no checkout has: a
   phone that reads it opens the PSP's page saying the code is unknown.

Displays that draw by command get the same two frames in words: the
Nextion shows them, an ESC/POS printer prints the sample QR's slip.

Each frame stays ``--hold`` seconds (closing a luma panel blanks it). Stop
the daemon first: both would draw on the one panel.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from PIL import Image, ImageDraw

from hardware.base import Content, Display, Frame, Geometry
from hardware.errors import HardwareError
from scan2pay_common.timefmt import now_ms

from .cli import EXIT_DISPLAY, add_settings, report_config_error, settings_given
from .config import ConfigError, load_display
from .screens import QrScreen, View, content

HOLD_SECONDS = 5.0
# The PSP's own default public URL (psp-server serve), when none is set.
DEFAULT_PSP_URL = "HTTP://127.0.0.1:8080"
# 32 characters, as the PSP's codes are, so that the symbol has a real
# checkout's size; no checkout has it.
SAMPLE_CODE = "TESTPATTERN" + "A" * 21
SAMPLE_AMOUNT, SAMPLE_CURRENCY = 1234, "EUR"
COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))
MODE_WORDS = {"1": "mono", "L": "grey", "RGB": "colour"}
FRAMES = ("the test pattern", "a sample QR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal test-pattern",
        description="Draws a test pattern, then a sample QR, on the configured display.",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=HOLD_SECONDS,
        help=f"seconds each frame stays on the display (default {HOLD_SECONDS:g})",
    )
    add_settings(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    from hardware.registry import open_display, parse_spec

    args = build_parser().parse_args(argv)
    try:
        settings = load_display(
            settings_given(args), config_file=args.config, check_display=parse_spec
        )
    except ConfigError as exc:
        return report_config_error(exc)
    try:
        display = open_display(settings.display)
    except HardwareError as exc:
        print(f"scan2pay-terminal: cannot open the display: {exc}", file=sys.stderr)
        return EXIT_DISPLAY
    try:
        shown = frames(display, sample_url(settings.psp_url), now_ms())
        for number, (frame, what) in enumerate(zip(shown, FRAMES, strict=True), start=1):
            display.show(frame)
            print(f"frame {number} of {len(shown)} on {display.name}: {what}", flush=True)
            time.sleep(max(0.0, args.hold))
    except HardwareError as exc:
        print(f"scan2pay-terminal: the display failed: {exc}", file=sys.stderr)
        return EXIT_DISPLAY
    finally:
        display.close()
    return 0


def sample_url(psp_url: str | None) -> str:
    return f"{(psp_url or DEFAULT_PSP_URL).rstrip('/')}/Q/{SAMPLE_CODE}"


def frames(display: Display, url: str, now: int) -> list[Frame]:
    """The pattern, then the sample QR, for this display."""
    from .render import render

    geometry = display.geometry
    view = View(
        QrScreen(None, url, SAMPLE_AMOUNT, SAMPLE_CURRENCY, expires_at=now + 300_000),
        banner="Test",
    )
    words = Content(lines=("Test pattern", display.name, "TOP"), kind="test")
    if geometry is None:
        return [Frame(words), Frame(content(view, now))]
    return [
        Frame(words, pattern(geometry)),
        Frame(content(view, now), render(view, geometry, now)),
    ]


def pattern(geometry: Geometry) -> Image.Image:
    """The test pattern at the display's geometry (after its rotation)."""
    from .render import PALETTES

    palette = PALETTES[geometry.mode]
    lit = palette.lit
    width, height = geometry.size
    image = Image.new(geometry.mode, geometry.size, palette.background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=lit)
    mark = max(3, min(width, height) // 8)
    near, far_x, far_y = 2, width - 3, height - 3
    draw.rectangle((near, near, near + mark - 1, near + mark - 1), fill=lit)
    for x, y, dx, dy in ((far_x, near, -1, 1), (far_x, far_y, -1, -1), (near, far_y, 1, -1)):
        draw.line((x, y, x + dx * (mark - 1), y), fill=lit)
        draw.line((x, y, x, y + dy * (mark - 1)), fill=lit)
    strip = max(4, height // 6)
    left, right = near + mark + 1, far_x - mark - 1
    if right - left >= 8:
        _contrast(image, (left, far_y - strip + 1, right, far_y))
    lines = ("TOP", f"{width}x{height} {MODE_WORDS[geometry.mode]}", "scan2pay test")
    _words(draw, lines, (near + 2, near + mark + 1, far_x - 2, far_y - strip - 1), lit)
    return image


def _contrast(image: Image.Image, box: tuple[int, int, int, int]) -> None:
    left, top, right, bottom = box
    pixels = image.load()
    if pixels is None:  # never for an image made in memory
        return
    span = right - left + 1
    if image.mode == "1":
        # Single pixels on the left half, pairs on the right.
        for x in range(left, right + 1):
            cell = 1 if x < left + span // 2 else 2
            for y in range(top, bottom + 1):
                pixels[x, y] = 255 * (((x - left) // cell + (y - top) // cell) % 2)
        return
    ramp_bottom = bottom if image.mode == "L" else (top + bottom) // 2
    for x in range(left, right + 1):
        grey = 255 * ((x - left) * 16 // span) // 15
        ink = grey if image.mode == "L" else (grey, grey, grey)
        for y in range(top, ramp_bottom + 1):
            pixels[x, y] = ink
        if image.mode == "RGB":
            colour = COLOURS[(x - left) * len(COLOURS) // span]
            for y in range(ramp_bottom + 1, bottom + 1):
                pixels[x, y] = colour


def _words(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    box: tuple[int, int, int, int],
    ink: int | tuple[int, int, int],
) -> None:
    """As many of ``lines`` as fit in ``box``, centred, at the largest size
    that fits; the first line bold. Fewer lines rather than unreadable ones."""
    from .render import MIN_FONT, font, ink_box

    left, top, right, bottom = box
    width, height = right - left + 1, bottom - top + 1
    for count in range(len(lines), 0, -1):
        shown = lines[:count]
        for size in range(min(48, height), MIN_FONT - 1, -1):
            boxes = [ink_box(text, size, i == 0) for i, text in enumerate(shown)]
            gap = max(1, size // 4)
            total = sum(b[3] - b[1] for b in boxes) + gap * (count - 1)
            if total <= height and all(b[2] - b[0] <= width for b in boxes):
                y = top + (height - total) // 2
                for i, (text, (x0, y0, x1, y1)) in enumerate(zip(shown, boxes, strict=True)):
                    x = left + (width - (x1 - x0)) // 2
                    draw.text((x - x0, y - y0), text, fill=ink, font=font(size, i == 0))
                    y += y1 - y0 + gap
                return
