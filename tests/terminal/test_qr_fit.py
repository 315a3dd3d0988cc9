"""EMV payloads on the terminal's panels: each panel that can show one draws
it at 2 pixels a module or more and both decoders read back the exact
payload; each that cannot is refused with the largest version that fits;
and docs/emv.md's table of versions and module sizes is what the renderer
does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardware.base import Geometry
from scan2pay_common import emv
from terminal.qr_fit import emv_fit, largest_version, longest_payload
from terminal.render import EMV_MIN_SCALE, MIN_BORDER, layout_qr, render
from terminal.screens import QrScreen, View
from tests.support.panels import GEOMETRIES
from tests.terminal.test_render import DECODERS, DEFAULT_URL, NOW, TRANSFORMS, native

DOC = Path(__file__).resolve().parents[2] / "docs" / "emv.md"
CAFE = emv.MerchantInfo("Café Müller", "5814", "DE", "Berlin")
SAMPLE = emv.dynamic_payload(
    DEFAULT_URL,
    CAFE,
    amount=1234,
    currency="EUR",
    reference="AGRG3VNX7VMNGQMMTBAMC7Y",
    terminal_label="lane-1",
)
LONGEST = longest_payload(None, "lane-1")
PAYLOADS = {"sample": SAMPLE, "longest": LONGEST}
# The panels that show EMV payloads; the others are refused at start.
SHOWS_EMV = {"128x128", "240x240", "320x240", "240x320"}


def emv_view(payload: str) -> View:
    url = emv.url_of_payload(payload)
    return View(QrScreen("co_1", url, 1234, "EUR", NOW + 299_500, "order-1", qr_payload=payload))


def test_the_panels_that_show_emv_are_the_documented_ones() -> None:
    shows = {name for name, g in GEOMETRIES.items() if emv_fit(g.width, g.height, LONGEST).fits}
    assert shows == SHOWS_EMV


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("payload_name", PAYLOADS)
@pytest.mark.parametrize("geometry_name", sorted(SHOWS_EMV))
def test_emv_payload_decodes_back_exactly(
    geometry_name: str, payload_name: str, decoder: str
) -> None:
    geometry, payload = GEOMETRIES[geometry_name], PAYLOADS[payload_name]
    frame = render(emv_view(payload), geometry, NOW)
    layout = layout_qr(payload, geometry.width, geometry.height, EMV_MIN_SCALE)
    assert layout is not None
    assert layout.plan.scale >= EMV_MIN_SCALE
    assert layout.plan.compliant
    assert DECODERS[decoder](native(frame, decoder, layout.plan.scale)) == [payload]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("geometry_name", sorted(SHOWS_EMV))
def test_emv_payload_decodes_through_a_camera(
    geometry_name: str, decoder: str, transform: str
) -> None:
    frame = render(emv_view(LONGEST), GEOMETRIES[geometry_name], NOW)
    assert DECODERS[decoder](TRANSFORMS[transform](frame)) == [LONGEST]


def test_the_url_screen_is_unchanged_by_the_emv_rule() -> None:
    geometry = GEOMETRIES["128x128"]
    plain = render(View(QrScreen("co_1", DEFAULT_URL, 1234, "EUR", NOW + 1000)), geometry, NOW)
    url_layout = layout_qr(DEFAULT_URL, geometry.width, geometry.height)
    assert url_layout is not None
    assert DECODERS["zxing-cpp"](native(plain, "zxing-cpp", url_layout.plan.scale)) == [DEFAULT_URL]


def brute_largest_version(width: int, height: int) -> int:
    """The largest version by trying them all: modules at 2 px with a
    2-module quiet zone on each side, inside the short side."""
    fitting = [
        v
        for v in range(1, 41)
        if (17 + 4 * v + 2 * MIN_BORDER) * EMV_MIN_SCALE <= min(width, height)
    ]
    return max(fitting, default=0)


@pytest.mark.parametrize("geometry_name", sorted(set(GEOMETRIES) - SHOWS_EMV))
def test_a_panel_that_cannot_show_emv_says_the_largest_version(geometry_name: str) -> None:
    geometry = GEOMETRIES[geometry_name]
    fit = emv_fit(geometry.width, geometry.height, LONGEST)
    problem = fit.problem()
    assert problem is not None
    largest = brute_largest_version(geometry.width, geometry.height)
    assert largest_version(geometry.width, geometry.height) == largest
    expected = f"largest that fits is version {largest}" if largest else "not even version 1"
    assert expected in problem
    assert f"{geometry.width}x{geometry.height}" in problem
    assert f"needs QR version {fit.needed} at least" in problem


def test_128x64_is_refused_with_version_2() -> None:
    problem = emv_fit(128, 64, LONGEST).problem()
    assert problem is not None
    assert "largest that fits is version 2" in problem
    assert "needs QR version 10 at least" in problem


def test_the_longest_payload_is_longer_than_any_real_one() -> None:
    long_merchant = emv.MerchantInfo("Bäckerei & Konditorei Müller-Lüdenscheidt", "5462", "DE",
                                     "Lüdenscheid")  # fmt: skip
    real = emv.dynamic_payload(
        "HTTP://127.0.0.1:8080/Q/" + "B" * 32,
        long_merchant,
        amount=987_654_32,
        currency="EUR",
        reference="AGRG3VNX7VMNGQMMTBAMC7Y",
        terminal_label="lane-1",
    )
    assert len(real) <= len(LONGEST)
    assert emv.parse_payload(LONGEST).url() == "HTTP://127.0.0.1:8080/Q/" + "A" * 32
    # A longer public URL leaves less room for the identifier, never none.
    long_url = "HTTPS://PAY.EXAMPLE-MERCHANT.COM"
    assert emv.url_of_payload(longest_payload(long_url, "lane-1")).startswith(long_url)


def plan_text(payload: str, geometry: Geometry, min_scale: int) -> str:
    layout = layout_qr(payload, geometry.width, geometry.height, min_scale)
    plan = None if layout is None else layout.plan
    if min_scale > 1 and (plan is None or plan.scale < min_scale or not plan.compliant):
        largest = largest_version(geometry.width, geometry.height)
        return f"refused (largest: version {largest})" if largest else "refused (no version)"
    if plan is None:
        return "does not fit"
    return f"version {plan.version} {plan.error}, {plan.scale} px/module"


def plan_table() -> list[tuple[str, str, str, str]]:
    rows = []
    for name, geometry in GEOMETRIES.items():
        rows.append(
            (
                name,
                plan_text(DEFAULT_URL, geometry, 1),
                plan_text(SAMPLE, geometry, EMV_MIN_SCALE),
                plan_text(LONGEST, geometry, EMV_MIN_SCALE),
            )
        )
    return rows


def test_docs_table_of_versions_and_module_sizes_is_the_renderers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = plan_table()
    with capsys.disabled():
        print(f"\nURL {len(DEFAULT_URL)}, sample EMV {len(SAMPLE)}, longest EMV {len(LONGEST)}")
        for row in rows:
            print(" | ".join(row))
    text = DOC.read_text(encoding="utf-8")
    documented = re.findall(
        r"^\| (\d+x\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, re.MULTILINE
    )
    assert [tuple(cell.strip() for cell in row) for row in documented] == rows


def test_qr_format_is_a_setting_checked_with_the_rest() -> None:
    from terminal.config import ConfigError, load

    ids = {"merchant": "mer_aaaaaaaaaaaaaaaaaaaa", "terminal": "lane-1"}
    assert load({**ids, "qr_format": "emv"}, env={}).qr_format == "emv"
    assert load(ids, env={"SCAN2PAY_QR_FORMAT": "emv"}).qr_format == "emv"
    assert load(ids, env={}).qr_format == "url"
    with pytest.raises(ConfigError) as caught:
        load({**ids, "qr_format": "barcode", "idle_after": "never"}, env={})
    problems = " ".join(caught.value.problems)
    assert "qr_format" in problems
    assert "idle_after" in problems  # reported at once with the rest
