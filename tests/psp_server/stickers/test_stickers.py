"""Stickers in each format, read back as a phone and a printer would: the QR
decoded by two decoders to the exact URL or payload, the words found, the
page the size of the sticker. PDFs are drawn by poppler, SVGs by Chromium."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from PIL import Image

from psp_server.stickers import Sticker, render_sticker
from psp_server.stickers.layout import MARGIN, QUIET_ZONE, StickerTooDense, layout
from tests.support.browser import BrowserSession
from tests.support.qr_decode import decode_both, pdf_images, pdf_page_points, pdf_to_image, qr_codes

SVG_NS = "{http://www.w3.org/2000/svg}"
URL = "HTTP://127.0.0.1:8080/S/KZ3Q7DXW2M5RB8YT4NHF6JCVPA"
# An EMVCo merchant-presented payload, as a string the QR must carry verbatim.
EMV = (
    "000201010211"
    "26580014BR.GOV.BCB.PIX0136https://pay.example/S/KZ3Q7DXW2M5RB8YT"
    "52045814530397858025DE5913Cafe Lindner6006Berlin"
    "62140510KZ3Q7DXW2M6304B7F1"
)
STICKER = Sticker(URL, 'Café <Zürich> & "Co"', "Till 1 & 2", "K7Q2-9M")
EMV_STICKER = Sticker(URL, "Café Lindner", "Counter", "K7Q2-9M", payload=EMV)
WORDS = ['Café <Zürich> & "Co"', "Scan to pay", "Till 1 & 2", "K7Q2-9M"]
MM_PER_POINT = 25.4 / 72


def png_image(sticker: Sticker) -> Image.Image:
    return Image.open(io.BytesIO(render_sticker(sticker, "png")))


@pytest.mark.parametrize(("sticker", "data"), [(STICKER, URL), (EMV_STICKER, EMV)])
def test_the_png_decodes_to_the_exact_data(sticker: Sticker, data: str) -> None:
    assert decode_both(png_image(sticker)) == data


def test_the_png_is_sixty_by_ninety_millimetres_at_300_dpi() -> None:
    image = png_image(STICKER)
    assert image.size == (709, 1063)  # 60.03 x 90.00 mm
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_the_png_keeps_a_quiet_zone_of_four_modules() -> None:
    image = png_image(STICKER).convert("L")
    (found,) = qr_codes(image)
    left, top = found.position.top_left.x, found.position.top_left.y
    right, bottom = found.position.bottom_right.x, found.position.bottom_right.y
    # The finder pattern's top row is seven dark modules: the module's size.
    run = 0
    while image.getpixel((left + run, top)) == 0:
        run += 1
    module, rest = divmod(run, 7)
    assert rest == 0, f"finder row of {run} dots"
    assert module >= 4
    side = right - left  # zxing's corners are the symbol's outer edges
    assert side % module == 0
    assert (side // module - 17) % 4 == 0  # a QR has 17 + 4 x version modules
    zone = QUIET_ZONE * module
    band = image.crop((left - zone, top - zone, right + zone, bottom + zone))
    inner = (zone, zone, zone + side, zone + side)
    for x in range(band.width):
        for y in range(band.height):
            if not (inner[0] <= x < inner[2] and inner[1] <= y < inner[3]):
                assert band.getpixel((x, y)) == 255, f"a dark dot in the quiet zone at {x},{y}"


@pytest.mark.parametrize(("sticker", "data"), [(STICKER, URL), (EMV_STICKER, EMV)])
def test_the_pdf_is_the_png_on_a_sticker_sized_page(sticker: Sticker, data: str) -> None:
    pdf = render_sticker(sticker, "pdf")
    millimetres = tuple(points * MM_PER_POINT for points in pdf_page_points(pdf))
    assert millimetres == pytest.approx((60.03, 90.0), abs=0.01)
    assert decode_both(pdf_to_image(pdf, 300)) == data
    # The page is one image: the PNG's pixels made black and white, at 300
    # dpi, compressed losslessly (CCITT, not JPEG).
    (row,), (image,) = pdf_images(pdf)
    page, _, kind, width, height, colour, _, bits, encoding, *_, x_ppi, y_ppi, _, _ = row.split()
    assert (page, kind, width, height, colour, bits, encoding) == (
        "1",
        "image",
        "709",
        "1063",
        "gray",
        "1",
        "ccitt",
    )
    assert (x_ppi, y_ppi) == ("300", "300")
    bilevel = png_image(sticker).convert("1", dither=Image.Dither.NONE)
    assert image.convert("1").tobytes() == bilevel.tobytes()


def svg_root(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted


def svg_texts(svg: bytes) -> list[str]:
    root = svg_root(svg)
    return [element.text or "" for element in root.iter(f"{SVG_NS}text")]


def test_the_svg_has_the_words_as_escaped_text_elements() -> None:
    svg = render_sticker(STICKER, "svg")
    assert svg_texts(svg) == WORDS  # the parser unescapes what the writer escaped
    assert b"&lt;Z\xc3\xbcrich&gt; &amp;" in svg
    root = svg_root(svg)
    assert (root.get("width"), root.get("height")) == ("60.03mm", "90.00mm")


async def svg_in_chromium(browser: BrowserSession, svg: bytes) -> Any:
    # 300 dpi in CSS pixels of 1/96 inch: the screenshot has the PNG's size.
    page = await browser.page(viewport={"width": 227, "height": 341}, device_scale_factor=300 / 96)
    document = svg.decode().split("?>", 1)[1]
    await page.set_content(f"<!doctype html><body style='margin:0'>{document}</body>")
    return page


@pytest.mark.parametrize(("sticker", "data"), [(STICKER, URL), (EMV_STICKER, EMV)])
async def test_the_svg_drawn_by_chromium_decodes_to_the_exact_data(
    browser: BrowserSession, sticker: Sticker, data: str
) -> None:
    page = await svg_in_chromium(browser, render_sticker(sticker, "svg"))
    shot = Image.open(io.BytesIO(await page.locator("svg").first.screenshot()))
    assert decode_both(shot.convert("L")) == data
    texts = await page.locator("svg > text").all_text_contents()
    assert texts == svg_texts(render_sticker(sticker, "svg"))


LONG_NAME = "Konditorei und Kaffeehaus Zur Goldenen Brezel am Marktplatz " * 3
MEDIUM_NAME = "Bäckerei Müller-Lüdenscheidt"


def test_a_longer_name_shrinks_and_a_very_long_one_is_cut_short() -> None:
    short, medium, long = (
        layout(Sticker(URL, name, "Till 1", "K7Q2-9M")).lines[0]
        for name in ("Café", MEDIUM_NAME, LONG_NAME)
    )
    assert short.text == "Café"
    assert medium.text == MEDIUM_NAME
    assert medium.size < short.size
    assert long.text.endswith("…")
    assert LONG_NAME.startswith(long.text[:-1])
    assert long.size <= medium.size
    for line in (short, medium, long):
        assert line.width <= 709 - 2 * MARGIN


@pytest.mark.parametrize("name", [MEDIUM_NAME, LONG_NAME])
def test_no_format_puts_ink_in_the_margins_for_a_long_name(name: str) -> None:
    sticker = Sticker(URL, name, "Selbstbedienungskasse im Obergeschoss links " * 2, "K7Q2-9M")
    drawn = png_image(sticker).convert("L")
    printed = pdf_to_image(render_sticker(sticker, "pdf"), 300)
    for image in (drawn, printed):
        right = image.width - MARGIN
        for box in ((0, 0, MARGIN, image.height), (right, 0, image.width, image.height)):
            assert image.crop(box).getextrema() == (255, 255), f"ink in the margin {box}"
        assert decode_both(image) == URL


async def test_a_long_name_stays_inside_the_svg_in_chromium(browser: BrowserSession) -> None:
    sticker = Sticker(URL, LONG_NAME, "Selbstbedienungskasse im Obergeschoss links " * 2, "K7Q2")
    page = await svg_in_chromium(browser, render_sticker(sticker, "svg"))
    boxes = await page.eval_on_selector_all(
        "svg > text", "texts => texts.map(t => { const b = t.getBBox(); return [b.x, b.width]; })"
    )
    for x, width in boxes:
        assert x >= MARGIN - 1, (x, width)
        assert x + width <= 709 - MARGIN + 1, (x, width)


def test_the_longest_emv_payload_still_prints_with_modules_of_four_dots() -> None:
    payload = "0002010102112652" + "X" * (512 - 16)
    sticker = Sticker(URL, "Café", "Till 1", "K7Q2", payload=payload)
    assert layout(sticker).module >= 4
    assert decode_both(png_image(sticker)) == payload


def test_a_payload_too_dense_for_the_sticker_is_refused() -> None:
    # Not from Sticker (which bounds the data at 512): the layout's own check.
    dense = Sticker.__new__(Sticker)
    for name, value in {
        "url": URL,
        "merchant_name": "Café",
        "till_label": "Till 1",
        "short_id": "K7Q2",
        "payload": "\u00e9" * 1600,
    }.items():
        object.__setattr__(dense, name, value)
    with pytest.raises(StickerTooDense, match="dots a module"):
        layout(dense)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "pay.example/S/X"}, "absolute http or https"),
        ({"url": "ftp://pay.example/S/X"}, "absolute http or https"),
        ({"url": "https://pay.example/S/a b"}, "printable ASCII"),
        ({"url": "https://pay.example/" + "A" * 500}, "1 to 512"),
        ({"merchant_name": "  "}, "merchant_name is empty"),
        ({"merchant_name": "Café\x1b[2J"}, "merchant_name contains control"),
        ({"till_label": "Till\n1"}, "till_label contains control"),
        ({"short_id": "K7\uffff"}, "short_id contains control characters or non-characters"),
        ({"payload": "0002\ud800"}, "payload contains control"),
        ({"short_id": "K" * 33}, "short_id has 33 characters"),
        ({"payload": ""}, "payload is empty"),
        ({"payload": "0" * 513}, "payload has 513"),
    ],
)
def test_a_sticker_checks_itself(fields: dict[str, str], problem: str) -> None:
    given = {"url": URL, "merchant_name": "Café", "till_label": "Till 1", "short_id": "K7Q2"}
    with pytest.raises(ValueError, match=problem):
        Sticker(**{**given, **fields})


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of png, svg, pdf"):
        render_sticker(STICKER, "gif")  # type: ignore[arg-type]  # what a route may pass


def test_the_same_sticker_renders_the_same_png_and_svg() -> None:
    assert render_sticker(STICKER, "png") == render_sticker(STICKER, "png")
    assert render_sticker(STICKER, "svg") == render_sticker(STICKER, "svg")
