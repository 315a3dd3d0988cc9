"""Draws one terminal screen as pixels for one display geometry.

``render(view, geometry, now)`` is a pure function: the same view, geometry and
time give the same bytes. Its only I/O is loading the two fonts shipped in
``terminal/fonts`` (once; never the machine's own fonts). Fonts, QR symbols and
text layouts are cached, so a screen that only changes its countdown costs a
few text draws.

The QR code
-----------
* Always a full QR code: ``segno.make_qr(url, error=level, boost_error=False)``
  (never Micro QR, which phone scanners do not read; ``boost_error=False`` so
  that the level is the one chosen here).
* Dark modules are dark; light modules and the quiet zone are lit (1 on a
  mode "1" panel, white otherwise). Around that lit area the screen is dark,
  like the bezel, so the quiet zone is always inside the frame itself.
* The plan (``plan_qr``): for each level H, Q, M, L the symbol has n modules a
  side; the module size is the largest whole number of pixels s with
  ``(n + 2*2) * s`` inside the box's short side. The plan keeps the largest s
  of any level, then the highest level at that s. Big modules are what lets a
  phone read the code at arm's length, so error correction is raised only with
  room that would not buy a bigger module. The quiet zone is 4 modules where it
  fits at that s, else what fits, never under 2 (``QrPlan.border``).

The 128x32 compromise
---------------------
The default public URL gives ``HTTP://127.0.0.1:8080/Q/`` + 32 base32 characters:
56 alphanumeric characters, version 3 (29 modules) at L and M. With the
2-module quiet zone that is 33 px, and a 128x32 panel has 32. When no level
fits with a compliant quiet zone anywhere on the panel, and only then,
``plan_qr`` accepts a quiet zone of 1 module on the short axis (never 0) and
marks the plan ``compliant=False``. On 128x32 that is 1 px per module, 29 px
tall, with 1 lit row above and 2 below, and 4 lit modules left and right; the
level is the highest that gives 29 modules (M for the default URL, L for a
longer one). Decoders find a QR by its finder patterns, which carry their own
1-module light separator; with 1 more lit row zxing-cpp and zbar both read it,
natively and through a camera-like blur (see tests/terminal/test_render.py). It is a
departure from the standard's quiet zone, accepted because the alternative is
no code at all. The compliant fix is a shorter URL: 47 alphanumeric characters
or fewer fit version 2 (25 modules), which fits 128x32 with a 3-module quiet
zone and gives 128x64 2 px per module. A URL too long even for the reduced
zone (version 4 and up on 128x32) is not drawn: the screen says so in words.

Layouts
-------
One rule for every size, so that rotated and odd panels need no special case:
a strip for words is kept along the panel's long axis (a quarter of the width
beside the QR on landscape panels; an eighth of the height below it on square
and portrait ones), and the QR is planned in what is left. On landscape panels
the QR sits left and the words right (128x64, 128x32, 320x240, 200x96); on
square and portrait panels the QR sits on top (128x128, 240x240, 64x128,
240x320). If no compliant QR fits beside the strip, the QR takes the whole
panel (QR first) and words go in whatever is left, if anything. The cost of
the strip is one module size on 240x240 (6 px instead of 7, so that the amount
stays readable); on the other listed sizes it costs nothing or only a level.

The words beside the QR are, by priority: the banner, the amount, the
countdown, "Scan to pay"; lines are dropped from the least important up until
the rest fit at a legible size. Where only one line fits, the banner and the
amount take turns every two seconds (of ``now``). The banner is drawn only in
the word area, never over the QR or its quiet zone; on other screens it is a
bar along the bottom.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Literal

import segno
from PIL import Image, ImageDraw, ImageFont

from hardware.base import ColourMode, Geometry
from terminal import qr_encode
from terminal.screens import (
    OUTCOME_TEXT,
    RECEIVED_EARLIER,
    WAITING,
    IdleScreen,
    OutcomeScreen,
    QrScreen,
    View,
    amount_text,
    countdown_text,
    earlier_summary,
    earlier_text,
)

ErrorLevel = Literal["H", "Q", "M", "L"]
LEVELS: tuple[ErrorLevel, ...] = ("H", "Q", "M", "L")  # highest first
MIN_BORDER = 2  # quiet zone, in modules, that every compliant plan keeps
FULL_BORDER = 4  # the standard's quiet zone, kept where it fits
REDUCED_BORDER = 1  # the floor when nothing compliant fits (128x32)
# An EMV payload (docs/emv.md) makes a symbol of 49 to 61 modules a side
# where a URL makes 29 to 37. At one pixel a module, a 128x64 OLED would draw
# it in some 10 mm: modules of 0.17 mm packed more than twice as densely as
# the URL's, past what phone cameras at a counter resolve. EMV payloads are
# drawn at 2 pixels a module or more; a panel that cannot is refused at start
# (terminal/qr_fit.py).
EMV_MIN_SCALE = 2

MIN_FONT = 8  # pixels; DejaVu Sans is still legible at 8 px on a mono panel
MAX_FONT = 64
COMFORTABLE_FONT = 14  # a size read at a glance: no need to drop lines to grow past it
ALTERNATE_MS = 2000  # banner and amount take turns when only one line fits
EARLIER_LISTED = 3  # missed payments listed on the idle screen; "+N more" counts the rest

FONT_FILES = {False: "DejaVuSans-scan2pay.ttf", True: "DejaVuSans-Bold-scan2pay.ttf"}

Ink = int | tuple[int, int, int]


# --- geometry ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def size(self) -> tuple[int, int]:
        return (self.w, self.h)

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """For Image.crop and paste, which stop short of the right and bottom."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """For ImageDraw, whose rectangles include their last pixel."""
        return (self.x, self.y, self.x + self.w - 1, self.y + self.h - 1)

    def inset(self, by: int) -> Rect:
        return Rect(self.x + by, self.y + by, max(0, self.w - 2 * by), max(0, self.h - 2 * by))


# --- the QR plan ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QrPlan:
    """How a URL is drawn: ``version`` and ``error`` level of the symbol,
    ``scale`` pixels per module, ``border`` the quiet zone in whole modules
    on its narrowest side, and ``size`` the lit area (symbol + quiet zone) in
    pixels. ``compliant`` is False only for the reduced quiet zone."""

    version: int
    error: ErrorLevel
    scale: int
    border: int
    modules: int
    size: tuple[int, int]

    @property
    def compliant(self) -> bool:
        return self.border >= MIN_BORDER

    @property
    def offset(self) -> tuple[int, int]:
        """Where the symbol starts inside the lit area: centred, any odd
        pixel going below / right."""
        side = self.modules * self.scale
        return ((self.size[0] - side) // 2, (self.size[1] - side) // 2)


@functools.lru_cache(maxsize=64)
def qr_symbol(url: str, error: ErrorLevel) -> segno.QRCode | None:
    """The smallest full QR symbol for the URL at this level; None if none holds it.
    The symbol of ``segno.make_qr(url, error=error, boost_error=False)``, its
    mask chosen fast (terminal/qr_encode.py)."""
    qr = qr_encode.make_symbol(url, error)
    if qr is not None and qr.is_micro:  # phones do not read Micro QR
        raise RuntimeError(f"a Micro QR symbol for {url!r}")
    return qr


@functools.lru_cache(maxsize=256)
def symbol_version(url: str, error: ErrorLevel) -> int | None:
    """The version ``qr_symbol`` gives, from segno's data analysis alone: the
    version depends on the data, so no symbol is made."""
    return qr_encode.symbol_version(url, error)


@functools.lru_cache(maxsize=256)
def plan_qr(url: str, box: tuple[int, int]) -> QrPlan | None:
    """The largest module size that fits the box with a quiet zone of at least
    2 modules, then the highest level at that size (see the module docstring).
    Only when no level fits that way: the same with a 1-module quiet zone.
    None when not even that fits."""
    for min_border in (MIN_BORDER, REDUCED_BORDER):
        plans = [p for level in LEVELS if (p := _plan_level(url, level, box, min_border))]
        if plans:
            # max() keeps the first of equals, and LEVELS runs from H down.
            return max(plans, key=lambda plan: plan.scale)
    return None


def _plan_level(
    url: str, level: ErrorLevel, box: tuple[int, int], min_border: int
) -> QrPlan | None:
    version = symbol_version(url, level)
    if version is None:
        return None
    modules = 17 + 4 * version  # the size of a full QR symbol of this version
    scale = min(box) // (modules + 2 * min_border)
    if scale < 1:
        return None
    # Lit area: 4 modules of quiet zone where the box has room, else the box.
    full = (modules + 2 * FULL_BORDER) * scale
    size = (min(box[0], full), min(box[1], full))
    border = (min(size) - modules * scale) // 2 // scale
    return QrPlan(version, level, scale, min(border, FULL_BORDER), modules, size)


@dataclass(frozen=True, slots=True)
class QrLayout:
    """Where a QR screen puts things: ``box`` the area the plan was made
    for, ``lit`` the symbol plus its quiet zone, ``text`` what is left for
    words (None if too small for any)."""

    plan: QrPlan
    box: Rect
    lit: Rect
    text: Rect | None


def word_strip(width: int, height: int) -> int:
    """Room kept for words along the panel's long axis (see Layouts)."""
    return max(MIN_FONT + 4, width // 4 if width > height else height // 8)


@functools.lru_cache(maxsize=64)
def layout_qr(url: str, width: int, height: int, min_scale: int = 1) -> QrLayout | None:
    """The QR beside a word strip; QR first (the whole panel) when nothing
    compliant fits beside the strip, or nothing of ``min_scale`` pixels a
    module (EMV payloads); None when no QR fits at all."""
    landscape = width > height
    strip = word_strip(width, height)
    box = Rect(0, 0, width - strip, height) if landscape else Rect(0, 0, width, height - strip)
    plan = plan_qr(url, box.size) if min(box.size) > 0 else None
    if plan is None or not plan.compliant or plan.scale < min_scale:
        box = Rect(0, 0, width, height)
        plan = plan_qr(url, box.size)
    if plan is None:
        return None
    lit_w, lit_h = plan.size
    if landscape:
        lit = Rect(0, (height - lit_h) // 2, lit_w, lit_h)
        text = Rect(lit_w, 0, width - lit_w, height)
    else:
        lit = Rect((width - lit_w) // 2, 0, lit_w, lit_h)
        text = Rect(0, lit_h, width, height - lit_h)
    roomy = text.w >= 2 * MIN_FONT and text.h >= MIN_FONT + 2
    return QrLayout(plan, box, lit, text if roomy else None)


# --- colours ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Palette:
    background: Ink
    lit: Ink  # the QR's light modules and quiet zone
    dark: Ink  # the QR's dark modules
    text: Ink
    dim: Ink
    banner_fill: Ink
    banner_text: Ink
    paid: Ink
    cancelled: Ink
    expired: Ink
    refunded: Ink


def _grey_palette(white: int) -> Palette:
    return Palette(0, white, 0, white, white, white, 0, white, white, white, white)


PALETTES: dict[ColourMode, Palette] = {
    "1": _grey_palette(1),
    "L": _grey_palette(255),
    "RGB": Palette(
        background=(0, 0, 0),
        lit=(255, 255, 255),
        dark=(0, 0, 0),
        text=(255, 255, 255),
        dim=(190, 190, 190),
        banner_fill=(255, 196, 0),
        banner_text=(0, 0, 0),
        paid=(40, 200, 90),
        cancelled=(235, 70, 60),
        expired=(255, 170, 0),
        refunded=(80, 160, 255),
    ),
}

InkRole = Literal["text", "dim", "paid", "cancelled", "expired", "refunded"]


def _ink(palette: Palette, role: InkRole) -> Ink:
    ink: Ink = getattr(palette, role)
    return ink


# --- fonts ------------------------------------------------------------------

_resources = contextlib.ExitStack()
atexit.register(_resources.close)


@functools.cache
def font_path(bold: bool) -> Path:
    """The shipped font as a file (extracted once if the package is zipped)."""
    resource = files("terminal") / "fonts" / FONT_FILES[bold]
    return _resources.enter_context(as_file(resource))


@functools.lru_cache(maxsize=128)
def font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    # The basic layout engine draws the same with or without libraqm installed.
    return ImageFont.truetype(str(font_path(bold)), size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=4096)
def ink_box(text: str, size: int, bold: bool) -> tuple[int, int, int, int]:
    """The text's inked pixels relative to its origin: (left, top, right, bottom)."""
    left, top, right, bottom = font(size, bold).getbbox(text)
    return (int(left), int(top), int(right), int(bottom))


def clear_caches() -> None:
    """Forgets fonts, symbols and layouts (tests use it to watch font loading)."""
    for cached in (font, ink_box, qr_symbol, symbol_version, plan_qr, layout_qr, _qr_tile, _fit):
        cached.cache_clear()


# --- lines of text ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """A line of words. ``weight`` is its size relative to the block's
    largest line; a ``banner`` line is drawn reversed across the area;
    only a ``truncate`` line may be cut short with an ellipsis (names may,
    amounts never)."""

    text: str
    weight: float = 1.0
    bold: bool = False
    ink: InkRole = "text"
    banner: bool = False
    truncate: bool = False


@dataclass(frozen=True, slots=True)
class Placed:
    line: Line
    text: str  # the line's text, shortened if it had to be
    size: int
    origin: tuple[int, int]  # for ImageDraw.text
    bar: Rect | None  # a banner's reversed bar


Option = tuple[Line, ...]


def _line_size(line: Line, base: int, width: int) -> int:
    """The line's size at this base; a line that may be shortened first
    shrinks towards MIN_FONT to fit the width whole."""
    size = max(MIN_FONT, round(base * line.weight))
    while line.truncate and size > MIN_FONT and _line_extent(line, size)[0] > width:
        size -= 1
    return size


def _pad(size: int) -> int:
    """Room around a banner's words inside its bar."""
    return max(1, size // 6)


def _line_extent(line: Line, size: int) -> tuple[int, int]:
    left, top, right, bottom = ink_box(line.text, size, line.bold)
    pad = 2 * _pad(size) if line.banner else 0
    return (right - left + pad, bottom - top + pad)


def _gap(base: int) -> int:
    return max(1, base // 5)


def _fits(option: Option, base: int, area: Rect) -> bool:
    total = _gap(base) * (len(option) - 1)
    for line in option:
        width, height = _line_extent(line, _line_size(line, base, area.w))
        if width > area.w and not line.truncate:
            return False
        total += height
    return total <= area.h


def _largest_base(option: Option, area: Rect) -> int | None:
    """The largest base size at which every line fits (binary search: sizes
    fit from MIN_FONT up to some limit)."""
    low, high = MIN_FONT, max(MIN_FONT, min(MAX_FONT, area.h))
    if not _fits(option, low, area):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(option, middle, area):
            low = middle
        else:
            high = middle - 1
    return low


Tiers = tuple[tuple[Option, ...], ...]


@functools.lru_cache(maxsize=512)
def _fit(tiers: Tiers, area: Rect) -> tuple[Placed, ...]:
    """Lays out one option of the first tier that has one that fits.

    Tiers run from what must be said (the amount) to what may stand in for
    it; options within a tier run from the most complete down, and the first
    that fits at three quarters of the largest size any of them reaches (or
    at a comfortable size) wins, so that a line is dropped only when that
    buys a clearly bigger text where text is small. Nothing if nothing fits."""
    for options in tiers:
        sized = [(base, opt) for opt in options if (base := _largest_base(opt, area))]
        if sized:
            floor = min(COMFORTABLE_FONT, (3 * max(base for base, _ in sized) + 3) // 4)
            base, option = next((base, opt) for base, opt in sized if base >= floor)
            return _place(option, base, area)
    return ()


def _shorten(line: Line, size: int, width: int) -> str:
    text = line.text
    while text and ink_box(text + "…", size, line.bold)[2] > width:
        text = text[:-1].rstrip()
    return text + "…" if text != line.text else text


def _place(option: Option, base: int, area: Rect) -> tuple[Placed, ...]:
    """Stacks the lines, centred both ways in the area."""
    sizes = [_line_size(line, base, area.w) for line in option]
    heights = [_line_extent(line, size)[1] for line, size in zip(option, sizes, strict=True)]
    y = area.y + (area.h - sum(heights) - _gap(base) * (len(option) - 1)) // 2
    placed = []
    for line, size, height in zip(option, sizes, heights, strict=True):
        placed.append(_place_line(line, size, area, y, height))
        y += height + _gap(base)
    return tuple(placed)


def _place_line(line: Line, size: int, area: Rect, y: int, height: int) -> Placed:
    pad = _pad(size) if line.banner else 0
    text = line.text
    if _line_extent(line, size)[0] > area.w:
        text = _shorten(line, size, area.w - 2 * pad)
    left, top, right, _ = ink_box(text, size, line.bold)
    x = area.x + (area.w - (right - left)) // 2
    bar = Rect(area.x, y, area.w, height) if line.banner else None
    return Placed(line, text, size, (x - left, y + pad - top), bar)


def _draw_lines(draw: ImageDraw.ImageDraw, placed: Sequence[Placed], palette: Palette) -> None:
    for item in placed:
        fill = _ink(palette, item.line.ink)
        if item.bar is not None:
            draw.rectangle(item.bar.corners, fill=palette.banner_fill)
            fill = palette.banner_text
        draw.text(item.origin, item.text, fill=fill, font=font(item.size, item.line.bold))


def _banner_line(text: str) -> Line:
    return Line(text, weight=0.7, banner=True, truncate=True)


# --- the QR screen ----------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _qr_tile(url: str, plan: QrPlan, mode: ColourMode) -> Image.Image:
    """The lit area with the symbol in it, in the panel's mode. Never handed
    out: render pastes it, so the cached image is never changed."""
    qr = qr_symbol(url, plan.error)
    if qr is None or qr.version != plan.version:  # the plan was made from this symbol
        raise RuntimeError(f"the QR symbol for {url!r} does not fit its plan")
    side = plan.modules
    pixels = bytes(0 if dark else 255 for row in qr.matrix for dark in row)
    symbol = Image.frombytes("L", (side, side), pixels)
    symbol = symbol.resize((side * plan.scale, side * plan.scale), Image.Resampling.NEAREST)
    tile = Image.new("L", plan.size, 255)
    tile.paste(symbol, plan.offset)
    if mode == "L":
        return tile
    if mode == "1":
        return tile.convert("1", dither=Image.Dither.NONE)  # 0 and 255 only: exact
    return _to_rgb(tile, PALETTES[mode])


def _to_rgb(tile: Image.Image, palette: Palette) -> Image.Image:
    image = Image.new("RGB", tile.size, palette.dark)
    image.paste(palette.lit, (0, 0, *tile.size), tile)
    return image


def _qr_tiers(screen: QrScreen, banner: str | None, now: int, missing: Line | None) -> Tiers:
    """The words beside the QR: with the amount if at all possible; the
    banner with them where it fits, else taking turns with them."""
    amount = amount_text(screen.amount, screen.currency)
    countdown = countdown_text(screen.expires_at, now)
    big = Line(amount, bold=True) if amount else None
    timer = Line(countdown, weight=0.7) if countdown else None
    scan = Line(WAITING if screen.typed else "Scan to pay", weight=0.5, ink="dim")
    both = Line(f"{amount}  {countdown}", bold=True) if amount and countdown else None
    flag = _banner_line(banner) if banner else None
    # A typed checkout's sticker id, for the merchant to compare.
    via = Line(screen.via, weight=0.5, ink="dim", truncate=True) if screen.via else None
    words: list[list[Line | None]] = [
        [big, missing, scan, via, timer],
        [big, missing, via, timer],
        [big, missing, scan, timer],
        [big, missing, timer],
        [both, missing],
        [big, missing],
    ]
    lesser: list[list[Line | None]] = [[missing or timer], [via], [scan]]
    if flag is None:
        return (_options(*words), _options(*lesser))
    flagged = _options(*([flag, *option] for option in words))
    turn = (now // ALTERNATE_MS) % 2 == 0
    alone = (_options([flag]), _options(*words)) if turn else (_options(*words), _options([flag]))
    return (flagged, *alone, _options(*lesser))


def _options(*candidates: Sequence[Line | None]) -> tuple[Option, ...]:
    """Drops the missing lines, and the candidates that end up empty or repeated."""
    options: list[Option] = []
    for candidate in candidates:
        option = tuple(line for line in candidate if line is not None)
        if option and option not in options:
            options.append(option)
    return tuple(options)


def _draw_qr_screen(
    image: Image.Image, screen: QrScreen, banner: str | None, now: int, palette: Palette
) -> None:
    draw = ImageDraw.Draw(image)
    min_scale = EMV_MIN_SCALE if screen.qr_payload is not None else 1
    layout = layout_qr(screen.encoded, image.width, image.height, min_scale)
    if layout is None:
        # No QR fits this panel: say so rather than draw one that cannot scan.
        missing = Line("Code does not fit", weight=0.6, truncate=True)
        tiers = _qr_tiers(screen, banner, now, missing)
        _draw_lines(draw, _fit(tiers, _full(image).inset(1)), palette)
        return
    image.paste(_qr_tile(screen.encoded, layout.plan, image.mode), (layout.lit.x, layout.lit.y))
    if layout.text is not None:
        tiers = _qr_tiers(screen, banner, now, None)
        _draw_lines(draw, _fit(tiers, layout.text.inset(1)), palette)


def _full(image: Image.Image) -> Rect:
    return Rect(0, 0, image.width, image.height)


# --- idle and outcome screens ----------------------------------------------


def wrap_evenly(text: str, lines: int) -> tuple[str, ...] | None:
    """The words on exactly this many lines, the longest line as short as
    it can be (names are a few words: trying every break is cheap)."""
    words = text.split()
    if len(words) < lines:
        return None
    best: tuple[str, ...] | None = None
    for cuts in itertools.combinations(range(1, len(words)), lines - 1):
        bounds = (0, *cuts, len(words))
        candidate = tuple(" ".join(words[a:b]) for a, b in itertools.pairwise(bounds))
        if best is None or max(map(len, candidate)) < max(map(len, best)):
            best = candidate
    return best


def _idle_tiers(screen: IdleScreen) -> Tiers:
    """The name whole on one to three lines, and failing that cut short."""
    name = " ".join(screen.merchant_name.split()) or "scan2pay"
    ready = Line("Ready", weight=0.6, ink="dim")
    # The till's printed code, for the merchant to compare with the sticker;
    # it gives way before the name does.
    till = Line(screen.till, weight=0.5, ink="dim", truncate=True) if screen.till else None
    wrapped = [wrap_evenly(name, count) for count in (1, 2, 3)]
    names = [[Line(part, bold=True) for part in parts] for parts in wrapped if parts]
    with_till = [[*lines, ready, till] for lines in names] if till else []
    whole = [[*lines, ready] for lines in names]
    cut = Line(name, bold=True, truncate=True)
    return (_options(*with_till, *whole), _options([cut, ready, till], [cut, ready], [cut]))


def _earlier_tiers(screen: IdleScreen, now: int) -> Tiers:
    """The idle screen with missed payments: the name, "Received earlier"
    and the newest payments (amount and time), as many as fit up to
    EARLIER_LISTED, with "+N more"; where no list fits, one line for them
    all ("Earlier (3): €12.34 08:14") under the name, or alone. The name
    gives way before the payments do: they are what is new; "Ready" and
    the till's code make room for them."""
    name = " ".join(screen.merchant_name.split()) or "scan2pay"
    wrapped = [wrap_evenly(name, count) for count in (1, 2, 3)]
    names = [[Line(part, bold=True) for part in parts] for parts in wrapped if parts]
    # "Earlier" where "Received earlier" is too wide (64 px).
    headers = [
        Line(text, weight=0.6, bold=True, ink="paid") for text in (RECEIVED_EARLIER, "Earlier")
    ]
    lists: list[list[Line | None]] = []
    for listed in range(min(EARLIER_LISTED, len(screen.earlier)), 0, -1):
        rest = screen.earlier_count - listed
        more = Line(f"+{rest} more", weight=0.5, ink="dim") if rest else None
        newest = screen.earlier[:listed]
        items = [Line(earlier_text(payment, now), weight=0.6) for payment in newest]
        lists += [[*lines, head, *items, more] for head in headers for lines in names]
    summary = Line(earlier_summary(screen, now) or "", weight=0.6, ink="paid")
    cut = Line(name, bold=True, truncate=True)
    return (
        _options(*lists, *([*lines, summary] for lines in names)),
        _options([cut, summary], [summary]),
        _idle_tiers(screen)[1],
    )


def _draw_idle(
    draw: ImageDraw.ImageDraw, screen: IdleScreen, area: Rect, palette: Palette, now: int
) -> None:
    tiers = _earlier_tiers(screen, now) if screen.earlier else _idle_tiers(screen)
    _draw_lines(draw, _fit(tiers, area.inset(1)), palette)


def _draw_outcome(
    draw: ImageDraw.ImageDraw, screen: OutcomeScreen, area: Rect, palette: Palette
) -> None:
    icon, words = _split_for_icon(area)
    if icon.w >= MIN_FONT:
        draw_mark(draw, screen.outcome, icon, _ink(palette, screen.outcome))
    title = Line(OUTCOME_TEXT[screen.outcome], bold=True, ink=screen.outcome)
    amount = amount_text(screen.amount, screen.currency)
    money = Line(amount, weight=0.8) if amount else None
    via = Line(screen.via, weight=0.5, ink="dim", truncate=True) if screen.via else None
    # Paid without its word still says paid (the tick); the others need theirs.
    fallback = [money] if screen.outcome == "paid" else [title]
    tiers = (_options([title, money, via], [title, money]), _options(fallback))
    _draw_lines(draw, _fit(tiers, words.inset(1)), palette)


def _split_for_icon(area: Rect) -> tuple[Rect, Rect]:
    """A square for the mark and the rest for words: side by side on wide
    areas, the mark on top otherwise."""
    if area.w >= 2 * area.h:
        side = min(area.h, area.w // 3)
        return Rect(area.x, area.y, side, side), Rect(area.x + side, area.y, area.w - side, area.h)
    side = min(area.w, area.h // 2)
    icon = Rect(area.x + (area.w - side) // 2, area.y, side, side)
    return icon, Rect(area.x, area.y + side, area.w, area.h - side)


def draw_mark(draw: ImageDraw.ImageDraw, outcome: str, box: Rect, ink: Ink) -> None:
    """A tick (paid), a cross (cancelled), a clock (expired) or a turning-back
    arrow (refunded), drawn, so
    that it needs no glyph and scales to any panel."""
    inner = box.inset(max(1, box.w // 8))
    x, y, side = inner.x, inner.y, min(inner.w, inner.h)
    stroke = max(2, side // 7)

    def at(fx: float, fy: float) -> tuple[float, float]:
        return (x + fx * side, y + fy * side)

    if outcome == "paid":
        draw.line([at(0.08, 0.55), at(0.38, 0.85), at(0.92, 0.2)], fill=ink, width=stroke)
    elif outcome == "refunded":
        # An arrow that comes back: a U-turn with its head pointing left.
        draw.line([at(0.85, 0.2), at(0.85, 0.6), at(0.25, 0.6)], fill=ink, width=stroke)
        draw.line([at(0.42, 0.42), at(0.22, 0.6), at(0.42, 0.78)], fill=ink, width=stroke)
    elif outcome == "cancelled":
        draw.line([at(0.15, 0.15), at(0.85, 0.85)], fill=ink, width=stroke)
        draw.line([at(0.85, 0.15), at(0.15, 0.85)], fill=ink, width=stroke)
    else:
        ring = max(1, stroke * 2 // 3)
        draw.ellipse((x, y, x + side - 1, y + side - 1), outline=ink, width=ring)
        draw.line([at(0.5, 0.2), at(0.5, 0.5), at(0.72, 0.62)], fill=ink, width=ring)


def _banner_bar(draw: ImageDraw.ImageDraw, banner: str, area: Rect, palette: Palette) -> Rect:
    """Draws the banner along the bottom; returns the area left above it."""
    line = Line(banner, banner=True, truncate=True)
    size = _line_size(line, max(MIN_FONT, min(area.h // 6, 20)), area.w)
    height = min(area.h, _line_extent(line, size)[1])
    bar = Rect(area.x, area.y + area.h - height, area.w, height)
    _draw_lines(draw, (_place_line(line, size, bar, bar.y, height),), palette)
    return Rect(area.x, area.y, area.w, area.h - height - 1)


# --- the entry point --------------------------------------------------------


def render(view: View, geometry: Geometry, now: int) -> Image.Image:
    """The screen as an image of exactly the geometry's size and mode."""
    palette = PALETTES[geometry.mode]
    image = Image.new(geometry.mode, geometry.size, palette.background)
    screen = view.screen
    if isinstance(screen, QrScreen):
        _draw_qr_screen(image, screen, view.banner, now, palette)
        return image
    draw = ImageDraw.Draw(image)
    area = _full(image)
    if view.banner:
        area = _banner_bar(draw, view.banner, area, palette)
    if isinstance(screen, IdleScreen):
        _draw_idle(draw, screen, area, palette, now)
    else:
        _draw_outcome(draw, screen, area, palette)
    return image
