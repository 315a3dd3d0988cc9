"""``render_sticker``: one layout, drawn in the format asked for."""

from __future__ import annotations

from typing import Literal, get_args

from . import raster
from .layout import SCAN_TO_PAY, layout
from .sticker import Sticker
from .svg import svg

StickerFormat = Literal["png", "svg", "pdf"]
FORMATS: tuple[str, ...] = get_args(StickerFormat)


def render_sticker(sticker: Sticker, fmt: StickerFormat) -> bytes:
    """The sticker as a file's bytes. ``ValueError`` for an unknown format,
    and (``layout.StickerTooDense``) for QR data too long to print legibly."""
    if fmt not in FORMATS:
        raise ValueError(f"sticker format {fmt!r} is not one of {', '.join(FORMATS)}")
    plan = layout(sticker)
    title = f"{SCAN_TO_PAY}: {sticker.merchant_name}, {sticker.till_label}"
    if fmt == "png":
        return raster.png(plan)
    if fmt == "pdf":
        return raster.pdf(plan, title)
    return svg(plan, title)
