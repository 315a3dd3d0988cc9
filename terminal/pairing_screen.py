"""The pairing screen (docs/pairing.md): the code the merchant enters, a QR
of the board's pairing page with the code filled in, how long the code
lasts, and what is wrong if something is ("No connection to the PSP").

Pure, like ``screens`` and ``render``: a screen and a time give the words
(``content``) and the pixels (``render``). The code matters most: on a
small panel the QR goes first, and the code is drawn in groups on lines
of their own where one line would be too small to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from hardware.base import Content, Geometry
from terminal.render import (
    PALETTES,
    Line,
    Placed,
    QrPlan,
    Rect,
    Tiers,
    _banner_bar,
    _draw_lines,
    _fit,
    _full,
    _options,
    _qr_tile,
    plan_qr,
)
from terminal.screens import countdown_text

TITLE = "Pairing code"


@dataclass(frozen=True, slots=True)
class PairingScreen:
    code: str | None = None  # grouped, ABCD-EFGH-JK; None until the PSP gave one
    url: str | None = None  # the board's pairing page with the code filled in
    expires_at: int | None = None  # ms since the epoch
    message: str | None = None


def content(screen: PairingScreen, now: int) -> Content:
    """The screen as words, for displays that draw by command."""
    lines = [TITLE, screen.code] if screen.code else ["Pairing"]
    countdown = countdown_text(screen.expires_at, now) if screen.code else None
    lines += [line for line in (countdown, screen.message) if line]
    return Content(qr_url=screen.url if screen.code else None, lines=tuple(lines), kind="pairing")


def _tiers(screen: PairingScreen, now: int) -> Tiers:
    if not screen.code:
        return (_options([Line("Pairing", bold=True)]),)
    whole = Line(screen.code, bold=True)
    stacked = [Line(group, bold=True) for group in screen.code.split("-")]
    title = Line(TITLE, weight=0.55, ink="dim", truncate=True)
    countdown = countdown_text(screen.expires_at, now)
    timer = Line(countdown, weight=0.55) if countdown else None
    return (
        _options(
            [title, whole, timer],
            [whole, timer],
            [title, *stacked, timer],
            [*stacked, timer],
            [whole],
            stacked,
        ),
    )


def _qr_beside(url: str, area: Rect) -> tuple[QrPlan, Rect, Rect] | None:
    """The QR in a square of the area (left on landscape panels, on top
    otherwise) and the rest for the code; None when no compliant QR fits."""
    landscape = area.w > area.h
    box = (min(area.h, area.w // 2), area.h) if landscape else (area.w, min(area.w, area.h // 2))
    plan = plan_qr(url, box) if min(box) > 0 else None
    if plan is None or not plan.compliant:
        return None
    lit_w, lit_h = plan.size
    if landscape:
        lit = Rect(area.x, area.y + (area.h - lit_h) // 2, lit_w, lit_h)
        return plan, lit, Rect(area.x + lit_w, area.y, area.w - lit_w, area.h)
    lit = Rect(area.x + (area.w - lit_w) // 2, area.y, lit_w, lit_h)
    return plan, lit, Rect(area.x, area.y + lit_h, area.w, area.h - lit_h)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the screen's parts go: the QR (its plan and lit area), if it
    fits beside the words, the words, and the banner's area left over."""

    qr: tuple[QrPlan, Rect] | None
    words: tuple[Placed, ...]
    area: Rect


def layout(screen: PairingScreen, geometry: Geometry, now: int) -> Layout:
    """The QR beside the code where both fit; else the code alone, which is
    what the merchant needs. The banner, if any, is kept below both."""
    area = Rect(0, 0, geometry.width, geometry.height)
    if screen.message:
        area = _banner_area(screen.message, area)
    tiers = _tiers(screen, now)
    if screen.code and screen.url:
        beside = _qr_beside(screen.url, area)
        if beside is not None:
            plan, lit, text = beside
            placed = _fit(tiers, text.inset(1))
            if placed:
                return Layout((plan, lit), placed, area)
    return Layout(None, _fit(tiers, area.inset(1)), area)


def _banner_area(message: str, area: Rect) -> Rect:
    """What ``_banner_bar`` leaves above the banner, found by drawing it on
    a scratch image of the same size."""
    scratch = Image.new("1", (area.w, area.h))
    return _banner_bar(ImageDraw.Draw(scratch), message, area, PALETTES["1"])


def render(screen: PairingScreen, geometry: Geometry, now: int) -> Image.Image:
    """The screen as an image of exactly the geometry's size and mode."""
    palette = PALETTES[geometry.mode]
    image = Image.new(geometry.mode, geometry.size, palette.background)
    draw = ImageDraw.Draw(image)
    if screen.message:
        _banner_bar(draw, screen.message, _full(image), palette)
    laid = layout(screen, geometry, now)
    if laid.qr is not None and screen.url:
        plan, lit = laid.qr
        image.paste(_qr_tile(screen.url, plan, image.mode), (lit.x, lit.y))
    _draw_lines(draw, laid.words, palette)
    return image
