"""Bringing a frame's image to what a pixel display takes.

The renderer draws at the display's geometry, so this is usually a no-op. It
exists for the mismatches (a frame rendered before a rotation change, an
emulator told another size): those are scaled nearest-neighbour, so QR
modules stay square and sharp, and centred on black. Colour is reduced by a
threshold, never dithered: dithering speckles a QR code.
"""

from __future__ import annotations

from PIL import Image, ImageOps


def fit(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """``image`` at ``size`` in Pillow mode ``mode`` ("1", "L" or "RGB")."""
    if image.size != size:
        scaled = ImageOps.contain(image, size, method=Image.Resampling.NEAREST)
        canvas = Image.new(scaled.mode, size)
        canvas.paste(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
        image = canvas
    if image.mode == mode:
        return image
    if mode == "1":
        # Pixels at 128 and above are lit; below, unlit.
        return image.convert("L").convert("1", dither=Image.Dither.NONE)
    return image.convert(mode)
