"""A display emulator that draws each frame in the terminal with half blocks.

Each character cell holds two pixels, one above the other (``▀`` top lit,
``▄`` bottom lit, ``█`` both, space neither); terminal cells are about twice
as tall as wide, so pixels come out square and a QR code on screen scans.

The colours are explicit: lit pixels white, unlit black, from the 256-colour
palette's colour cube (231 and 16) rather than the 16 ANSI colours, which
terminal themes remap (a light theme's "black" may be grey). So the QR has
the contrast a phone needs whatever the developer's theme. On a terminal
each frame overwrites the last; otherwise (a pipe, a log) frames follow one
another. The terminal needs as many columns as the display is wide.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TextIO

from PIL import Image

from .base import Display, Frame, Geometry
from .errors import DisplayError
from .imaging import fit

DEFAULT_GEOMETRY = Geometry(128, 64, "1")

WHITE_ON_BLACK = "\x1b[38;5;231;48;5;16m"
RESET = "\x1b[0m"
HOME = "\x1b[H"
CLEAR_SCREEN = "\x1b[2J"
CLEAR_BELOW = "\x1b[J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"

# (top lit, bottom lit) -> cell
CELLS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
PIXELS = {cell: pair for pair, cell in CELLS.items()}
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def image_to_text(image: Image.Image) -> str:
    """The image as coloured half-block rows, each ended by a newline. Pixels
    at 128 and above are lit; an odd last row gets an unlit row below it."""
    image = image.convert("L")
    width, height = image.size
    pixels = image.tobytes()  # one byte a pixel, row by row

    def lit(x: int, y: int) -> bool:
        return y < height and pixels[y * width + x] >= 128

    rows = []
    for top in range(0, height, 2):
        cells = "".join(CELLS[lit(x, top), lit(x, top + 1)] for x in range(width))
        rows.append(f"{WHITE_ON_BLACK}{cells}{RESET}\n")
    return "".join(rows)


def text_to_image(text: str, height: int | None = None) -> Image.Image:
    """The inverse of ``image_to_text``: a mode "1" image. ``height`` drops the
    padding row of an image of odd height."""
    rows = [row for row in _ESCAPE.sub("", text).split("\n") if row]
    width = max((len(row) for row in rows), default=0)
    image = Image.new("1", (width, 2 * len(rows)))
    for row_number, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {row_number} is {len(row)} cells wide, not {width}")
        for x, cell in enumerate(row):
            if cell not in PIXELS:
                raise ValueError(f"{cell!r} at row {row_number}, column {x} is not a half block")
            top, bottom = PIXELS[cell]
            image.putpixel((x, 2 * row_number), int(top))
            image.putpixel((x, 2 * row_number + 1), int(bottom))
    if height is not None:
        image = image.crop((0, 0, width, height))
    return image


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    geometry: Geometry = DEFAULT_GEOMETRY

    def open(self) -> ConsoleDisplay:
        return ConsoleDisplay(self.geometry)


class ConsoleDisplay(Display):
    name = "console"

    def __init__(self, geometry: Geometry = DEFAULT_GEOMETRY, stream: TextIO | None = None) -> None:
        self._geometry = Geometry(geometry.width, geometry.height, "1")
        self._stream = stream if stream is not None else sys.stdout
        self._is_terminal = self._stream.isatty()
        self._first = True

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    def show(self, frame: Frame) -> None:
        if frame.image is None:
            raise ValueError("console is a pixel display: the frame needs an image")
        text = image_to_text(fit(frame.image, self._geometry.size, "1"))
        if not self._is_terminal:
            output = text + "\n"
        elif self._first:
            output = HIDE_CURSOR + CLEAR_SCREEN + HOME + text + CLEAR_BELOW
        else:
            output = HOME + text + CLEAR_BELOW
        self._write(output)
        self._first = False

    def close(self) -> None:
        if self._is_terminal and not self._first:
            self._write(SHOW_CURSOR)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError as error:  # a closed pipe, a gone terminal
            raise DisplayError(self.name, f"cannot write to the console: {error}") from error
