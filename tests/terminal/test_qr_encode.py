"""terminal.qr_encode makes segno's own symbols: for every URL and level the
same version, mask and matrix as ``segno.make_qr(..., boost_error=False)``,
and its bit-parallel scorer gives segno's ``mask_scores`` for every mask.
Pure: no I/O."""

from __future__ import annotations

import random
from typing import Any

import pytest
import segno
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from segno import encoder as _segno_encoder

from terminal import qr_encode
from terminal.qr_encode import ErrorLevel

# segno.encoder is not annotated (it is not segno's public API): Any here, as
# in terminal/qr_encode.py.
encoder: Any = _segno_encoder

LEVELS: tuple[ErrorLevel, ...] = ("L", "M", "Q", "H")
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
# The most alphanumeric characters a version 40 symbol holds, per level.
ALNUM_CAPACITY = {"L": 4296, "M": 3391, "Q": 2420, "H": 1852}


def default_url(rng: random.Random) -> str:
    """The terminal's default public URL: 56 alphanumeric characters."""
    return "HTTP://127.0.0.1:8080/Q/" + "".join(rng.choice(BASE32) for _ in range(32))


def lower_url(rng: random.Random) -> str:
    """Lower case: byte mode."""
    token = "".join(rng.choice(BASE32) for _ in range(32)).lower()
    return f"https://pay.example.com/q/{token}"


def byte_url(rng: random.Random) -> str:
    """Byte mode with a query, non-ASCII (ISO 8859-1 and UTF-8) and odd lengths."""
    word = "".join(rng.choice("abcxyz-_~ÄöüßéΩ€") for _ in range(rng.randint(1, 40)))
    return f"https://zahlung.example/pay?c={word}&n={rng.randint(0, 10**9)}"


def _reference(url: str, level: ErrorLevel) -> segno.QRCode | None:
    try:
        return segno.make_qr(url, error=level, boost_error=False)
    except segno.DataOverflowError:
        return None


def assert_same_symbol(url: str, level: ErrorLevel) -> int | None:
    """Compares with segno; returns the mask (None if nothing fits)."""
    expected = _reference(url, level)
    got = qr_encode.make_symbol(url, level)
    if expected is None:
        assert got is None
        assert qr_encode.symbol_version(url, level) is None
        return None
    assert got is not None
    assert qr_encode.symbol_version(url, level) == expected.version
    assert (got.version, got.mask, got.error, got.mode) == (
        expected.version,
        expected.mask,
        expected.error,
        expected.mode,
    )
    assert not got.is_micro
    assert len(got.matrix) == len(expected.matrix)
    for row, (mine, theirs) in enumerate(zip(got.matrix, expected.matrix, strict=True)):
        assert mine == theirs, f"row {row} differs for {url!r} at {level}"
    return int(got.mask)


def _urls() -> list[str]:
    rng = random.Random(20240611)  # noqa: S311 - seeded test data, nothing secret
    urls = [default_url(rng) for _ in range(40)]
    urls += [lower_url(rng) for _ in range(12)]
    urls += [byte_url(rng) for _ in range(12)]
    urls += ["HTTP://A", "https://a", "0", "12345678901234567890", "日本語のテキスト"]
    return urls


URLS = _urls()


@pytest.mark.parametrize("level", LEVELS)
def test_same_symbol_as_segno_for_checkout_urls(level: ErrorLevel) -> None:
    masks = [assert_same_symbol(url, level) for url in URLS]
    # A scorer that got the choice wrong would show: the masks vary.
    assert len(set(masks)) >= 5
    assert any(mask != 0 for mask in masks)


@pytest.mark.parametrize("level", LEVELS)
def test_same_symbol_as_segno_from_1_character_to_capacity(level: ErrorLevel) -> None:
    rng = random.Random(level)  # noqa: S311 - seeded test data, nothing secret
    capacity = ALNUM_CAPACITY[level]
    lengths = [1, 2, 7, 20, 47, 48, 61, 100, 150, 260, 400, 700, 1100, capacity]
    for length in lengths:
        url = "".join(rng.choice(ALNUM) for _ in range(length))
        assert assert_same_symbol(url, level) is not None
    assert qr_encode.symbol_version("A" * capacity, level) == 40


@pytest.mark.parametrize("level", LEVELS)
def test_too_long_for_any_symbol_is_none(level: ErrorLevel) -> None:
    url = "A" * (ALNUM_CAPACITY[level] + 1)
    with pytest.raises(segno.DataOverflowError):
        segno.make_qr(url, error=level, boost_error=False)
    assert qr_encode.make_symbol(url, level) is None
    assert qr_encode.symbol_version(url, level) is None
    lower = "a" * 2954  # byte mode: version 40-L holds 2953 bytes
    with pytest.raises(segno.DataOverflowError):
        segno.make_qr(lower, error=level, boost_error=False)
    assert qr_encode.make_symbol(lower, level) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=120), level=st.sampled_from(LEVELS))
@example(text="", level="L")
@example(text="HTTP://127.0.0.1:8080/Q/" + BASE32, level="M")
def test_same_symbol_as_segno_for_any_text(text: str, level: ErrorLevel) -> None:
    assert_same_symbol(text, level)


# --- the scorer, mask by mask -------------------------------------------------


def segno_scores(unmasked: tuple[bytearray, ...], mask: int) -> tuple[int, ...]:
    """segno's own mask application and scores, as make_qr evaluates a mask."""
    matrix = tuple(bytearray(row) for row in unmasked)
    width = len(matrix)
    _, matrix = encoder.find_and_apply_best_mask(matrix, width, width, proposed_mask=mask)
    return tuple(encoder.mask_scores(matrix, width, width))


def _scored_symbols() -> list[tuple[str, ErrorLevel]]:
    rng = random.Random(7)  # noqa: S311 - seeded test data, nothing secret
    cases: list[tuple[str, ErrorLevel]] = [(default_url(rng), level) for level in LEVELS]
    cases += [(lower_url(rng), "Q"), (byte_url(rng), "H"), ("HTTP://A", "L")]
    # Versions 7 and up carry version information areas.
    long: tuple[tuple[int, ErrorLevel], ...] = (
        (150, "M"),
        (230, "L"),
        (400, "Q"),
        (900, "H"),
        (1800, "M"),
    )
    for length, level in long:
        cases.append(("".join(rng.choice(ALNUM) for _ in range(length)), level))
    cases.append(("https://x.example/" + "ab" * 600, "L"))
    return cases


@pytest.mark.parametrize(("url", "level"), _scored_symbols())
def test_every_mask_scores_as_in_segno(url: str, level: ErrorLevel) -> None:
    segments = encoder.prepare_data(url, None, None)
    error = encoder.normalize_errorlevel(level)
    version = encoder.find_version(segments, error, eci=False, micro=False)
    unmasked = qr_encode.unmasked_matrix(segments, error, version)
    penalties = qr_encode.mask_penalties(unmasked, version)
    assert len(penalties) == 8
    for mask, scores in enumerate(penalties):
        assert scores == segno_scores(unmasked, mask), f"mask {mask}, version {version}"


def test_scored_symbols_cover_version_information() -> None:
    versions = {qr_encode.symbol_version(url, level) for url, level in _scored_symbols()}
    assert min(v for v in versions if v is not None) <= 3
    assert len({v for v in versions if v is not None and v >= 7}) >= 4


# Pieces that make N3's rules matter: the pattern, the pattern overlapping
# itself at distances 4 and 6, light and dark runs.
PIECES = ["1011101", "10111011101", "1011101011101", "0000", "00000", "11111", "0", "1", "01"]


@st.composite
def matrices(draw: st.DrawFn) -> tuple[bytearray, ...]:
    size = draw(st.integers(1, 45))
    rows = []
    for _ in range(size):
        line = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14)))
        fill = draw(st.integers(0, (1 << size) - 1))
        line += format(fill, f"0{size}b")
        start = draw(st.integers(0, max(0, len(line) - size)))
        rows.append(bytearray(int(bit) for bit in line[start : start + size]))
    if draw(st.booleans()):  # the same shapes in columns
        rows = [bytearray(column) for column in zip(*rows, strict=True)]
    return tuple(rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrices())
def test_matrix_scores_as_in_segno(matrix: tuple[bytearray, ...]) -> None:
    size = len(matrix)
    assert qr_encode.matrix_scores(matrix) == tuple(encoder.mask_scores(matrix, size, size))


@pytest.mark.parametrize(
    ("line", "skips"),
    [
        # Two overlapping matches (distance 4): segno counts the first and
        # skips the second, which would count too on its own.
        ("0000" + "10111011101" + "000000", True),
        # Distance 6.
        ("0000" + "1011101011101" + "0000", True),
        # The first is not counted (no light around it), so the second is.
        ("11" + "10111011101" + "00001111", False),
        # Three in a chain, at the edges (fewer than 4 modules beyond).
        ("101110111011101" + "00", False),
        ("01" + "1011101011101" + "0" + "1011101", False),
        ("1011101" + "0" + "1011101", False),
    ],
)
def test_overlapping_finder_like_patterns_follow_segnos_search(line: str, skips: bool) -> None:
    size = len(line)
    row = bytearray(int(bit) for bit in line)
    for matrix in (
        tuple(bytearray(row) for _ in range(size)),  # in every row
        tuple(bytearray([bit] * size) for bit in row),  # in every column
    ):
        expected = tuple(encoder.mask_scores(matrix, size, size))
        assert qr_encode.matrix_scores(matrix) == expected
    # Where segno skips a match, counting every qualifying one would be wrong.
    assert (expected[2] != 40 * size * _qualifying(line)) == skips


def _qualifying(line: str) -> int:
    """Every match with 4 light modules (or the edge) on one side, overlaps
    and all: what counting without segno's resume rule would give."""
    count = 0
    for at in range(len(line) - 6):
        if line[at : at + 7] == "1011101":
            before, after = line[max(at - 4, 0) : at], line[at + 7 : at + 11]
            count += "1" not in before or "1" not in after
    return count


def test_layout_keeps_lines_apart() -> None:
    lay = qr_encode.layout(21)
    assert lay.cells & lay.guards == 0
    assert (lay.cells | lay.guards).bit_count() == qr_encode.GUARD + 21 * lay.stride
    assert lay.cells.bit_count() == 21 * 21
