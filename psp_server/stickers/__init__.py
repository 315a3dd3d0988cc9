"""Stickers to print for a till's static QR code: the QR at print resolution
with its quiet zone, the merchant's name, the till's label, the short id
the terminal also shows, and "Scan to pay".

``Sticker`` says what goes on one (and checks it); ``render_sticker`` draws
it as PNG, SVG or PDF, all from one layout (``layout``), so the formats
cannot drift apart. The HTTP routes and the board call ``render_sticker``.
"""

from .render import StickerFormat, render_sticker
from .sticker import Sticker

__all__ = ["Sticker", "StickerFormat", "render_sticker"]
