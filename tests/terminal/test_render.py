"""The renderer: every layout's QR reads back with two decoders, its geometry
follows the rules (checked on the pixels), and the text screens are drawn,
deterministic and use only the shipped fonts. No device, no network."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops, ImageFilter, ImageFont
from pyzbar import pyzbar

from hardware.base import Geometry
from scan2pay_common.money import SIGNS
from terminal import render as render_module
from terminal.render import (
    FULL_BORDER,
    LEVELS,
    MIN_BORDER,
    PALETTES,
    QrLayout,
    layout_qr,
    plan_qr,
    qr_symbol,
    render,
)
from terminal.screens import (
    EarlierPayment,
    IdleScreen,
    OutcomeScreen,
    QrScreen,
    View,
    earlier_summary,
    earlier_text,
    paid_at_text,
)
from tests.support.panels import GEOMETRIES
from tests.support.qr_decode import qr_codes
from tests.support.screen_text import reads

FONTS = Path(render_module.__file__).parent / "fonts"
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
NOW = 1_700_000_000_000


def checkout_code(seed: int) -> str:
    rng = random.Random(seed)  # noqa: S311 - seeded test data, nothing secret
    return "".join(rng.choice(BASE32) for _ in range(32))


# The longest URL the default configuration makes, and a realistic longer one.
DEFAULT_URL = "HTTP://127.0.0.1:8080/Q/" + checkout_code(1)
LONG_URL = "HTTPS://PAY.EXAMPLE-MERCHANT.COM/Q/" + checkout_code(2)
URLS = {"default": DEFAULT_URL, "long": LONG_URL}


# What each layout gives the default URL: (pixels per module, level, quiet
# zone in modules). 128x32 is the documented reduced quiet zone; 240x240 pays
# one module size for its line of text (see terminal/render.py).
EXPECTED_DEFAULT = {
    "128x64": (1, "H", 4),
    "128x32": (1, "M", 1),
    "128x128": (3, "Q", 2),
    "240x240": (6, "M", 3),
    "320x240": (7, "M", 2),
    "64x128": (1, "H", 4),
    "240x320": (7, "M", 2),
    "200x96": (2, "H", 4),
}


def qr_view(url: str, banner: str | None = None) -> View:
    screen = QrScreen("chk_1", url, 1234, "EUR", NOW + 299_500, "order-1")
    return View(screen, banner)


def the_layout(geometry: Geometry, url: str) -> QrLayout:
    layout = layout_qr(url, geometry.width, geometry.height)
    assert layout is not None
    return layout


# --- decoding ---------------------------------------------------------------


def in_bezel(image: Image.Image, margin: int) -> Image.Image:
    """The frame on a black surround, as the panel sits in its dark bezel:
    any quiet zone the decoders find is the frame's own."""
    grey = image.convert("L")
    canvas = Image.new("L", (grey.width + 2 * margin, grey.height + 2 * margin), 0)
    canvas.paste(grey, (margin, margin))
    return canvas


def zxing_read(image: Image.Image) -> list[str]:
    return [result.text for result in qr_codes(image)]


def zbar_read(image: Image.Image) -> list[str]:
    symbols = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [symbol.data.decode("ascii") for symbol in symbols]


DECODERS: dict[str, Callable[[Image.Image], list[str]]] = {
    "zxing-cpp": zxing_read,
    "zbar": zbar_read,
}


def additive_noise(image: Image.Image, amplitude: int, seed: int) -> Image.Image:
    """Zero-mean noise of +-amplitude from a seeded RNG (the sum of two
    uniform draws, added and taken away, so it runs at C speed)."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data, nothing secret

    def uniform() -> Image.Image:
        raw = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
        return raw.point(lambda v: v * amplitude // 255)

    return ImageChops.subtract(ImageChops.add(image, uniform()), uniform())


def camera(image: Image.Image, resample: Image.Resampling, blur: float, noise: int) -> Image.Image:
    """A camera's view: 4x the size, out of focus, noisy."""
    framed = in_bezel(image, 8)
    big = framed.resize((framed.width * 4, framed.height * 4), resample)
    return additive_noise(big.filter(ImageFilter.GaussianBlur(blur)), noise, seed=7)


# Blur is in camera pixels (4 to a panel pixel), noise in grey levels (+-).
# Measured limits, over seeds 1-5: zbar misses the 6-7 px/module codes from
# noise +-16 up whatever the blur (a cliff in zbar's edge detector, not in the
# code), and the reduced-quiet-zone 128x32 code with zbar from a bilinear
# blur of 1.25; everything reads at the settings below.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "nearest-blur-noise": lambda image: camera(image, Image.Resampling.NEAREST, 1.5, 12),
    "bilinear-blur-noise": lambda image: camera(image, Image.Resampling.BILINEAR, 1.0, 12),
}


def native(frame: Image.Image, decoder: str, scale: int) -> Image.Image:
    """The frame pixel for pixel, in its bezel. zbar's edge detector cannot
    resolve 1-pixel elements (a 1 px/module code mostly fails, any code), so
    at 1 px/module zbar is handed each pixel as a 2x2 block: the same
    picture, nothing added. zxing-cpp always reads the frame 1:1."""
    framed = in_bezel(frame, 16)
    if decoder == "zbar" and scale == 1:
        return framed.resize((framed.width * 2, framed.height * 2), Image.Resampling.NEAREST)
    return framed


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("url_name", URLS)
@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_qr_decodes_at_native_size(geometry_name: str, url_name: str, decoder: str) -> None:
    geometry, url = GEOMETRIES[geometry_name], URLS[url_name]
    frame = render(qr_view(url), geometry, NOW)
    scale = the_layout(geometry, url).plan.scale
    assert DECODERS[decoder](native(frame, decoder, scale)) == [url]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("url_name", URLS)
@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_qr_decodes_through_a_camera(
    geometry_name: str, url_name: str, decoder: str, transform: str
) -> None:
    geometry, url = GEOMETRIES[geometry_name], URLS[url_name]
    frame = render(qr_view(url), geometry, NOW)
    assert DECODERS[decoder](TRANSFORMS[transform](frame)) == [url]


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_qr_with_a_banner_decodes_and_is_untouched(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    plain = render(qr_view(DEFAULT_URL), geometry, NOW)
    flagged = render(qr_view(DEFAULT_URL, "No connection"), geometry, NOW)
    lit = the_layout(geometry, DEFAULT_URL).lit
    assert flagged.crop(lit.bounds).tobytes() == plain.crop(lit.bounds).tobytes()
    assert flagged.tobytes() != plain.tobytes()  # the banner is drawn, beside
    scale = the_layout(geometry, DEFAULT_URL).plan.scale
    for name, read in DECODERS.items():
        assert read(native(flagged, name, scale)) == [DEFAULT_URL]


# --- the QR's geometry, read off the pixels ----------------------------------


def modules_at(url: str, level: str) -> int | None:
    try:
        qr = segno.make_qr(url, error=level, boost_error=False)
    except segno.DataOverflowError:
        return None
    return int(qr.symbol_size(border=0)[0])


def best_plan_by_search(url: str, box: tuple[int, int]) -> tuple[int, str, int]:
    """(scale, level, quiet zone floor) by trying every scale and level: the
    largest scale first, then the highest level; a 1-module quiet zone only
    where nothing fits with 2."""
    for floor in (MIN_BORDER, 1):
        fits = [
            (scale, -rank, level)
            for rank, level in enumerate(LEVELS)
            if (n := modules_at(url, level))
            for scale in range(1, min(box) + 1)
            if (n + 2 * floor) * scale <= min(box)
        ]
        if fits:
            scale, _, level = max(fits)
            return scale, level, floor
    raise AssertionError("nothing fits")


@pytest.mark.parametrize("url_name", URLS)
@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_plan_is_the_largest_module_then_the_highest_level(
    geometry_name: str, url_name: str
) -> None:
    geometry, url = GEOMETRIES[geometry_name], URLS[url_name]
    layout = the_layout(geometry, url)
    scale, level, floor = best_plan_by_search(url, layout.box.size)
    assert (layout.plan.scale, layout.plan.error) == (scale, level)
    assert layout.plan.border >= floor
    assert layout.plan.compliant == (geometry_name != "128x32")
    n = modules_at(url, level)
    assert n is not None
    if (n + 2 * FULL_BORDER) * scale <= min(layout.box.size):
        assert layout.plan.border == FULL_BORDER


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_default_url_plans_are_the_documented_ones(geometry_name: str) -> None:
    plan = the_layout(GEOMETRIES[geometry_name], DEFAULT_URL).plan
    assert (plan.scale, plan.error, plan.border) == EXPECTED_DEFAULT[geometry_name]


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_layout_box_is_the_panel_less_a_word_strip(geometry_name: str) -> None:
    """The QR is planned for the panel less the word strip along its long
    axis, or for the whole panel when nothing compliant fits beside it."""
    geometry = GEOMETRIES[geometry_name]
    layout = the_layout(geometry, DEFAULT_URL)
    width, height = geometry.size
    strip = render_module.word_strip(width, height)
    beside = (width - strip, height) if width > height else (width, height - strip)
    assert layout.box.size in (beside, (width, height))
    if layout.box.size == (width, height):
        planned = plan_qr(DEFAULT_URL, beside)
        assert planned is None or not planned.compliant


def find_symbol(frame: Image.Image) -> tuple[int, int, int, int, str]:
    """The symbol's pixel box (left, top, right, bottom; exclusive) and level,
    from zxing-cpp's reading of the frame, not from the renderer."""
    margin = 16
    (result,) = qr_codes(in_bezel(frame, margin))
    position = result.position
    xs = [position.top_left.x, position.top_right.x, position.bottom_left.x]
    ys = [position.top_left.y, position.top_right.y, position.bottom_left.y]
    return (
        min(xs) - margin,
        min(ys) - margin,
        max(xs) - margin,
        max(ys) - margin,
        result.ec_level,
    )


def lit_run(frame: Image.Image, lit: int, start: int, step: int, axis: str, span: range) -> int:
    """How many whole lit rows (axis "y") or columns ("x") run from start."""
    count, at = 0, start
    limit = frame.height if axis == "y" else frame.width
    while 0 <= at < limit:
        pixels = [frame.getpixel((i, at) if axis == "y" else (at, i)) for i in span]
        if any(pixel != lit for pixel in pixels):
            break
        count, at = count + 1, at + step
    return count


@pytest.mark.parametrize("url_name", URLS)
@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_pixels_show_the_planned_modules_and_quiet_zone(geometry_name: str, url_name: str) -> None:
    geometry, url = GEOMETRIES[geometry_name], URLS[url_name]
    frame = render(qr_view(url), geometry, NOW).convert("L")
    plan = the_layout(geometry, url).plan
    left, top, right, bottom, level = find_symbol(frame)
    assert level == plan.error  # the level in the symbol is the planned one
    n = modules_at(url, level)
    assert n is not None
    assert right - left == bottom - top == n * plan.scale

    # Every module is a plan.scale square of one colour, matching segno's matrix.
    qr = segno.make_qr(url, error=level, boost_error=False)
    expected = Image.frombytes("L", (n, n), bytes(0 if d else 255 for r in qr.matrix for d in r))
    expected = expected.resize((n * plan.scale, n * plan.scale), Image.Resampling.NEAREST)
    assert frame.crop((left, top, right, bottom)).tobytes() == expected.tobytes()

    # The quiet zone is lit, on every side, at least the plan's border.
    lit = 255
    across, down = range(left, right), range(top, bottom)
    quiet = {
        "top": lit_run(frame, lit, top - 1, -1, "y", across),
        "bottom": lit_run(frame, lit, bottom, 1, "y", across),
        "left": lit_run(frame, lit, left - 1, -1, "x", down),
        "right": lit_run(frame, lit, right, 1, "x", down),
    }
    modules = {side: run // plan.scale for side, run in quiet.items()}
    assert min(modules.values()) == plan.border
    if geometry_name == "128x32":
        # The documented compromise: 1 lit row above, 2 below, 4 modules aside.
        assert quiet == {"top": 1, "bottom": 2, "left": 4, "right": 4}
    else:
        assert min(modules.values()) >= MIN_BORDER


def test_the_reduced_quiet_zone_is_only_for_what_fits_nothing_else() -> None:
    assert plan_qr(DEFAULT_URL, (128, 64)) is not None
    assert all(
        plan.compliant
        for size in [(33, 33), (45, 45), (64, 64), (33, 128), (128, 33), (240, 240)]
        if (plan := plan_qr(DEFAULT_URL, size))
    )
    for size in [(128, 32), (32, 128), (31, 31)]:
        reduced = plan_qr(DEFAULT_URL, size)
        assert reduced is not None
        assert reduced.border == 1
        assert not reduced.compliant
    assert plan_qr(DEFAULT_URL, (30, 30)) is None  # 29 + 2 * 1 does not fit


def test_always_a_full_qr_code() -> None:
    for url in URLS.values():
        for level in LEVELS:
            symbol = qr_symbol(url, level)
            assert symbol is not None
            assert not symbol.is_micro
            # The plan sizes symbols with a fixed mask: the version is the same.
            assert symbol.version == render_module.symbol_version(url, level)
    short = qr_symbol("HTTP://A", "L")  # short enough for Micro QR: still a full one
    assert short is not None
    assert not short.is_micro


def test_a_shorter_url_makes_128x32_compliant() -> None:
    """The fix the module docstring recommends: <= 47 alphanumeric characters."""
    short = "HTTPS://S2P.EU/Q/" + checkout_code(3)[:26]
    assert len(short) <= 47
    plan = plan_qr(short, (128, 32))
    assert plan is not None
    assert plan.compliant
    assert plan.version == 2
    wide = the_layout(GEOMETRIES["128x64"], short).plan
    assert wide.scale == 2


def test_a_url_too_long_for_the_panel_is_said_in_words() -> None:
    url = "HTTPS://PAY.EXAMPLE-MERCHANT.COM/CHECKOUT/Q/" + checkout_code(4) * 2
    geometry = GEOMETRIES["128x32"]
    assert layout_qr(url, geometry.width, geometry.height) is None
    frame = render(qr_view(url), geometry, NOW)
    assert frame.size == geometry.size
    assert frame.getbbox() is not None
    assert zxing_read(in_bezel(frame, 16)) == []


# --- text screens -----------------------------------------------------------


def missed(count: int) -> IdleScreen:
    """An idle screen with ``count`` missed payments, the newest an hour ago."""
    payments = tuple(
        EarlierPayment(f"chk_{n}", 1234 + 100 * n, "EUR", NOW - 3_600_000 * (n + 1))
        for n in range(count)
    )
    return IdleScreen("Bäckerei Müller am Markt", "Counter 1 · 4A3928", payments, count)


def text_views() -> dict[str, View]:
    return {
        "idle": View(IdleScreen("Bäckerei Müller am Markt")),
        "paid": View(OutcomeScreen("chk_1", "paid", 1234, "EUR")),
        "cancelled": View(OutcomeScreen("chk_1", "cancelled", 120_000, "JPY")),
        "expired": View(OutcomeScreen("chk_1", "expired", 1500, "KWD")),
        "refunded": View(OutcomeScreen("chk_1", "refunded", 500, "EUR")),
        "paid-banner": View(OutcomeScreen("chk_1", "paid", 1234, "EUR"), "No connection"),
        "paid-sticker": View(OutcomeScreen("chk_1", "paid", 1250, "EUR", via="Sticker 4A3928")),
        "idle-banner": View(IdleScreen("Corner Shop"), "No connection"),
        "idle-till": View(IdleScreen("Corner Shop", "Counter 1 · 4A3928")),
        "idle-earlier": View(missed(4)),
        "idle-earlier-banner": View(missed(1), "No connection"),
        "qr": qr_view(DEFAULT_URL),
        "qr-banner": qr_view(DEFAULT_URL, "No connection"),
        "qr-no-amount": View(QrScreen(None, DEFAULT_URL)),
    }


@pytest.mark.parametrize("view_name", list(text_views()))
@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_screens_have_the_geometry_and_are_deterministic(
    geometry_name: str, view_name: str
) -> None:
    geometry, view = GEOMETRIES[geometry_name], text_views()[view_name]
    first = render(view, geometry, NOW)
    assert first.size == geometry.size
    assert first.mode == geometry.mode
    render_module.clear_caches()
    again = render(view, geometry, NOW)
    assert again.tobytes() == first.tobytes()
    assert first.getbbox() is not None  # something is drawn


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_text_is_drawn_beside_the_qr(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    frame = render(qr_view(DEFAULT_URL), geometry, NOW)
    words = the_layout(geometry, DEFAULT_URL).text
    assert words is not None
    area = frame.crop(words.bounds)
    assert area.getbbox() is not None


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_banner_bar_runs_along_the_bottom_of_other_screens(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    view = text_views()["paid-banner"]
    frame = render(view, geometry, NOW)
    plain = render(View(view.screen), geometry, NOW)
    assert frame.tobytes() != plain.tobytes()
    fill = PALETTES[geometry.mode].banner_fill
    bottom_row = [frame.getpixel((x, geometry.height - 1)) for x in range(geometry.width)]
    assert bottom_row.count(fill) > geometry.width // 2


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_a_static_payment_names_its_sticker_where_there_is_room(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    views = text_views()
    with_sticker = render(views["paid-sticker"], geometry, NOW)
    plain = render(View(OutcomeScreen("chk_1", "paid", 1250, "EUR")), geometry, NOW)
    if geometry.height >= 64:
        assert with_sticker.tobytes() != plain.tobytes()


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_the_idle_screen_names_the_till_where_there_is_room(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    with_till = render(text_views()["idle-till"], geometry, NOW)
    plain = render(View(IdleScreen("Corner Shop")), geometry, NOW)
    if geometry.height >= 64:
        assert with_till.tobytes() != plain.tobytes()


def test_paid_and_cancelled_differ_on_128x64() -> None:
    geometry = GEOMETRIES["128x64"]
    views = text_views()
    paid = render(views["paid"], geometry, NOW)
    cancelled = render(View(OutcomeScreen("chk_1", "cancelled", 1234, "EUR")), geometry, NOW)
    expired = render(View(OutcomeScreen("chk_1", "expired", 1234, "EUR")), geometry, NOW)
    refunded = render(View(OutcomeScreen("chk_1", "refunded", 1234, "EUR")), geometry, NOW)
    frames = {paid.tobytes(), cancelled.tobytes(), expired.tobytes(), refunded.tobytes()}
    assert len(frames) == 4


def test_countdown_follows_now() -> None:
    geometry = GEOMETRIES["128x64"]
    early = render(qr_view(DEFAULT_URL), geometry, NOW)
    later = render(qr_view(DEFAULT_URL), geometry, NOW + 60_000)
    assert early.tobytes() != later.tobytes()
    lit = the_layout(geometry, DEFAULT_URL).lit
    assert early.crop(lit.bounds).tobytes() == later.crop(lit.bounds).tobytes()


# --- payments missed while away ----------------------------------------------


@pytest.mark.parametrize("geometry_name", GEOMETRIES)
def test_missed_payments_are_read_on_the_idle_screen(geometry_name: str) -> None:
    """The newest missed payment's amount and time can be read on every
    panel: listed under "Received earlier" where there is room, else in
    the one line that stands for them all."""
    geometry = GEOMETRIES[geometry_name]
    screen = missed(4)
    frame = render(View(screen), geometry, NOW)
    newest, summary = earlier_text(screen.earlier[0], NOW), earlier_summary(screen, NOW)
    assert summary is not None
    assert reads(frame, newest) or reads(frame, summary)
    assert not reads(render(View(IdleScreen(screen.merchant_name)), geometry, NOW), newest)
    if geometry.width >= 128 and geometry.height >= 64:
        assert reads(frame, "Received earlier")
        assert reads(frame, newest)
        assert reads(frame, earlier_text(screen.earlier[1], NOW))
        listed = next(
            n for n in (3, 2, 1) if reads(frame, earlier_text(screen.earlier[n - 1], NOW))
        )
        assert reads(frame, f"+{4 - listed} more")
    if geometry.height <= 32:
        assert reads(frame, summary)
    if geometry.width < 128:  # "Received earlier" is too wide to draw whole
        assert reads(frame, "Earlier")
        assert not reads(frame, "Received earlier")


def test_reading_tells_drawn_words_from_others() -> None:
    frame = render(View(missed(1)), GEOMETRIES["128x64"], NOW)
    assert reads(frame, "Received earlier")
    assert not reads(frame, "Received later")
    assert not reads(frame, "€99.34 · 21:13")


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_a_missed_payments_time_is_the_terminals_local_time(
    zone: Callable[[str], None],
) -> None:
    # NOW is 2023-11-14 22:13:20 UTC.
    zone("UTC0")
    assert paid_at_text(NOW - 3_600_000, NOW) == "21:13"
    assert paid_at_text(NOW - 30 * 3_600_000, NOW) == "13 Nov 16:13"
    zone("IST-5:30")  # India: 03:43 on the 15th
    assert paid_at_text(NOW - 3_600_000, NOW) == "02:43"
    assert paid_at_text(NOW - 5 * 3_600_000, NOW) == "14 Nov 22:43"


@pytest.mark.parametrize("currency", sorted(SIGNS))
def test_every_currency_renders(currency: str) -> None:
    view = View(OutcomeScreen("chk_1", "paid", 123_456, currency))
    for geometry in GEOMETRIES.values():
        assert render(view, geometry, NOW).getbbox() is not None


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (16, 16), (40, 40), (300, 20), (20, 300)])
def test_odd_and_tiny_panels_do_not_fail(size: tuple[int, int]) -> None:
    for mode in ("1", "L", "RGB"):
        geometry = Geometry(*size, mode)
        for view in text_views().values():
            frame = render(view, geometry, NOW)
            assert frame.size == size
            assert frame.mode == mode


# --- fonts ------------------------------------------------------------------


def shipped_fonts() -> list[Path]:
    fonts = sorted(FONTS.glob("*.ttf"))
    assert [font.name for font in fonts] == [
        "DejaVuSans-Bold-scan2pay.ttf",
        "DejaVuSans-scan2pay.ttf",
    ]
    return fonts


@pytest.mark.parametrize("font_file", shipped_fonts(), ids=lambda path: path.name)
def test_shipped_fonts_carry_the_signs_and_latin(font_file: Path) -> None:
    cmap = TTFont(font_file).getBestCmap()
    wanted = set("".join(SIGNS.values())) | set("✓✗…·\u2013\u2014")  # and the en and em dashes
    wanted |= {chr(c) for c in range(0x20, 0x7F)}
    wanted |= {chr(c) for c in range(0xA0, 0x180)}  # Latin-1 and Latin Extended-A
    assert sorted(c for c in wanted if ord(c) not in cmap) == []


def test_licence_and_readme_ship_with_the_fonts() -> None:
    assert "Bitstream" in (FONTS / "LICENSE-DejaVu.txt").read_text()
    assert "pyftsubset" in (FONTS / "README.md").read_text()


@pytest.fixture
def font_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every font render loads, with the caches emptied first so that it does."""
    loads: list[Path] = []
    real_truetype = ImageFont.truetype

    def watched(font: Any, *args: Any, **kwargs: Any) -> ImageFont.FreeTypeFont:
        loads.append(Path(font).resolve())
        return real_truetype(font, *args, **kwargs)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the renderer must not use Pillow's default font")

    monkeypatch.setattr(ImageFont, "truetype", watched)
    monkeypatch.setattr(ImageFont, "load_default", refused)
    monkeypatch.setattr(ImageFont, "load_path", refused)
    render_module.clear_caches()
    yield loads
    render_module.clear_caches()


def test_render_loads_only_the_shipped_fonts(font_loads: list[Path]) -> None:
    for geometry in GEOMETRIES.values():
        for view in text_views().values():
            render(view, geometry, NOW)
    assert font_loads  # the watch saw the loads
    assert {path.parent for path in font_loads} == {FONTS.resolve()}
    assert {path.name for path in font_loads} == {path.name for path in shipped_fonts()}
