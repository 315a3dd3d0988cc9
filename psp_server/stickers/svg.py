"""A sticker as SVG: the QR code as segno's path, the words as real text
elements (escaped), on a page that is the sticker's size in millimetres.

The text names DejaVu Sans, the font the layout was measured with, and
carries its measured width (``textLength``): a viewer that substitutes
another font squeezes it to the same width rather than running it off the
sticker.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from .layout import DPI, MM_PER_INCH, QUIET_ZONE, Layout

FONT_FAMILY = "'DejaVu Sans', Verdana, sans-serif"


def svg(plan: Layout, title: str) -> bytes:
    width_mm = plan.width / DPI * MM_PER_INCH
    height_mm = plan.height / DPI * MM_PER_INCH
    qr = plan.qr.svg_inline(scale=plan.module, border=QUIET_ZONE, dark="#000", light="#fff")
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_mm:.2f}mm"'
        f' height="{height_mm:.2f}mm" viewBox="0 0 {plan.width} {plan.height}">\n',
        f"<title>{escape(title)}</title>\n",
        f'<rect width="{plan.width}" height="{plan.height}" fill="#fff"/>\n',
        f'<g transform="translate({plan.qr_left} {plan.qr_top})">{qr}</g>\n',
    ]
    for line in plan.lines:
        weight = "bold" if line.bold else "normal"
        parts.append(
            f'<text x="{plan.width // 2}" y="{line.baseline}" text-anchor="middle"'
            f' font-family={quoteattr(FONT_FAMILY)} font-size="{line.size}"'
            f' font-weight="{weight}" textLength="{line.width}"'
            f' lengthAdjust="spacingAndGlyphs" fill="#000">{escape(line.text)}</text>\n'
        )
    parts.append("</svg>\n")
    return "".join(parts).encode("utf-8")
