"""Reads words off a frame the terminal drew, without OCR: the renderer
draws text in its shipped fonts at whole-pixel positions, so a line drawn
alone in the same font, size and ink is found in the frame pixel for pixel.
For tests of what a screen says (tests/terminal/test_render.py) and of what
a running terminal shows (its ``png:`` display's frames)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from terminal import render


def reads(frame: Image.Image, text: str) -> bool:
    """Whether ``text`` is drawn whole somewhere in the frame, in one of the
    shipped fonts at some size and in one of the palette's inks: each
    candidate is drawn alone, cut to its ink, and looked for (a row's bytes
    found, then the rows below compared)."""
    palette = render.PALETTES[frame.mode]  # type: ignore[index]  # a frame's mode is a panel's
    page = frame.convert("L")
    data = page.tobytes()
    rows = [data[y * page.width : (y + 1) * page.width] for y in range(page.height)]
    inks = {palette.text, palette.dim, palette.paid}
    for bold in (False, True):
        for size in range(render.MIN_FONT, render.MAX_FONT + 1):
            left, top, right, bottom = render.ink_box(text, size, bold)
            width, height = right - left, bottom - top
            if width > page.width or height > page.height:
                break
            for ink in inks:
                alone = Image.new(frame.mode, (width, height), palette.background)
                draw = ImageDraw.Draw(alone)
                draw.text((-left, -top), text, fill=ink, font=render.font(size, bold))
                glyphs = alone.convert("L").tobytes()
                want = [glyphs[y * width : (y + 1) * width] for y in range(height)]
                if _found(rows, want):
                    return True
    return False


def _found(rows: list[bytes], want: list[bytes]) -> bool:
    for y in range(len(rows) - len(want) + 1):
        x = rows[y].find(want[0])
        while x >= 0:
            if all(rows[y + i][x : x + len(line)] == line for i, line in enumerate(want)):
                return True
            x = rows[y].find(want[0], x + 1)
    return False
