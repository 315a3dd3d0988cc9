"""Full QR symbols, byte for byte segno's, made fast enough for a new checkout.

Why this module exists
----------------------
Every new checkout needs a new QR symbol, and the time from checkout to code
on screen has a p99 budget of 15 ms. ``segno.make_qr`` (1.6) spends most of
its time choosing the data mask: it applies each of the 8 masks and scores
each masked matrix module by module in pure Python (``find_and_apply_best_mask``
-> ``apply_mask`` + ``mask_scores``), some 3-4 ms per new URL on the terminal.
Finding the version the same way (a whole symbol at a fixed mask, for each of
four levels) cost another 0.6-0.8 ms per level.

This module gives the same results without that work:

* ``symbol_version`` runs only segno's own data analysis, ``prepare_data`` and
  ``find_version``, as ``segno.make_qr(url, error=..., boost_error=False)``
  does; no matrix is built.
* ``make_symbol`` runs segno's ``_encode`` pipeline with segno's functions up
  to the unmasked matrix (``add_codewords``), scores the 8 masks with a
  bit-parallel copy of ``segno.encoder.mask_scores`` (below), then lets segno
  apply the winner (``find_and_apply_best_mask(..., proposed_mask=best)``) and
  add the format and version information, and wraps the result as ``make``
  does. Same version, mask and matrix as ``segno.make_qr``; the tests in
  ``tests/terminal/test_qr_encode.py`` check it symbol by symbol and score by score.

The scorer
----------
A matrix is packed into one Python int: row ``i`` (or, for the column scores,
column ``i``) occupies bits ``G + i*(n+G)`` up to ``+n``, module ``j`` at bit
``+j``, with ``G = 4`` guard bits before every line and after the last.
Guards are 0 in both the dark and the light int, so no run or pattern crosses
from one line to the next; for the "4 light modules" test of N3 the guards
count as light, which is exactly segno's rule at the edges (it looks at fewer
than 4 modules there). The masks are packed the same way, restricted to the
encoding region, once per version. Then, for dark and light alike:

* N1 (runs of 5 + i in a line: 3 + i): with ``w5 = v & v>>1 & ... & v>>4``,
  a run of L >= 5 leaves L - 4 bits, so N1 = popcount(w5) + 2 * runs(w5).
* N2 (2x2 blocks: 3 each): ``v & v>>1`` anded with itself one line on.
* N3 (1011101 with 4 light modules before or after, or at either end of the
  line: 40 each). segno's search resumes 7 modules after a counted match and
  4 after an uncounted one; the pattern overlaps itself only at distances 4
  and 6, so this differs from counting every qualifying match only where two
  matches overlap: such lines are walked match by match with segno's rule.
* N4 (dark proportion): segno's float formula, from a popcount.

This depends on segno internals (``segno.encoder`` is not its public API):
the dependency is pinned to ``segno>=1.6,<1.7`` in pyproject.toml, and the
tests compare with ``segno.make_qr`` itself, so a change shows up there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, cast

import segno
from segno import consts as _segno_consts
from segno import encoder as _segno_encoder

# segno.encoder is not annotated (it is not segno's public API): Any here.
_segno: Any = _segno_encoder
_consts: Any = _segno_consts

ErrorLevel = Literal["H", "Q", "M", "L"]

GUARD = 4  # guard bits before each packed line and after the last
N3_POINTS = 40
_TO_ASCII = bytes.maketrans(b"\x00\x01", b"01")

Matrix = tuple[bytearray, ...]
Scores = tuple[int, int, int, int]


# --- segno's pipeline -----------------------------------------------------


@functools.lru_cache(maxsize=16)
def _segments(url: str) -> Any:
    """segno's data segments for the URL, as ``make_qr`` builds them (mode and
    encoding chosen by segno). The same for every level; never changed."""
    return _segno.prepare_data(url, None, None)


def _error_constant(error: ErrorLevel) -> int:
    return int(_segno.normalize_errorlevel(error))


def _version(segments: Any, error: int) -> int | None:
    try:
        return int(_segno.find_version(segments, error, eci=False, micro=False))
    except segno.DataOverflowError:
        return None


def symbol_version(url: str, error: ErrorLevel) -> int | None:
    """The version of ``segno.make_qr(url, error=error, boost_error=False)``,
    without making the symbol; None if no QR symbol holds the URL."""
    return _version(_segments(url), _error_constant(error))


def unmasked_matrix(segments: Any, error: int, version: int) -> Matrix:
    """segno's ``_encode`` (no boost, no ECI, no structured append) up to
    ``add_codewords``: the matrix the masks are tried on."""
    buff = _segno.Buffer()
    ver_range = _segno.version_range(version)
    for segment in segments:
        _segno.write_segment(buff, segment, None, ver_range, False)
    capacity = _consts.SYMBOL_CAPACITY[version][error]
    _segno.write_terminator(buff, capacity, None, len(buff))
    _segno.write_padding_bits(buff, version, len(buff))
    _segno.write_pad_codewords(buff, version, capacity, len(buff))
    buff = _segno.make_final_message(version, error, buff)
    width = int(_segno.calc_matrix_size(version))
    matrix = cast(Matrix, _segno.make_matrix(width, width))
    _segno.add_finder_patterns(matrix, width, width)
    _segno.add_alignment_patterns(matrix, width, width)
    _segno.add_codewords(matrix, buff, version)
    return matrix


def make_symbol(url: str, error: ErrorLevel) -> segno.QRCode | None:
    """``segno.make_qr(url, error=error, boost_error=False)``: the same
    version, mask and matrix, the mask chosen fast. None if the URL does not
    fit any QR symbol at this level."""
    segments = _segments(url)
    level = _error_constant(error)
    version = _version(segments, level)
    if version is None:
        return None
    matrix = unmasked_matrix(segments, level, version)
    width = len(matrix)
    totals = [sum(scores) for scores in mask_penalties(matrix, version)]
    best = totals.index(min(totals))  # segno keeps the first of equal scores
    mask, matrix = _segno.find_and_apply_best_mask(matrix, width, width, proposed_mask=best)
    _segno.add_format_info(matrix, version, level, mask)
    _segno.add_version_info(matrix, version)
    code = _segno.Code(matrix, version, level, mask, segments)
    return segno.QRCode(code)  # type: ignore[call-arg]  # as segno.make does


# --- packing ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the bits of an n x n matrix go (see the module docstring)."""

    size: int
    stride: int
    cells: int  # every module bit set, guards clear
    guards: int  # every guard bit set

    def pack(self, lines: list[bytes] | Matrix) -> int:
        """Lines of 0/1 bytes (rows, or columns) as one int."""
        pad = b"0" * GUARD
        text = pad + pad.join(bytes(line).translate(_TO_ASCII) for line in lines) + pad
        return int(text[::-1], 2)

    def pack_rows(self, matrix: Matrix) -> int:
        return self.pack(matrix)

    def pack_columns(self, matrix: Matrix) -> int:
        flat = b"".join(matrix)
        return self.pack([flat[j :: self.size] for j in range(self.size)])


@functools.lru_cache(maxsize=48)
def layout(size: int) -> Layout:
    stride = size + GUARD
    line = (1 << size) - 1
    cells = 0
    for i in range(size):
        cells |= line << (GUARD + i * stride)
    total = GUARD + size * stride
    return Layout(size, stride, cells, ((1 << total) - 1) ^ cells)


@functools.lru_cache(maxsize=40)
def mask_patterns(version: int) -> tuple[tuple[int, int], ...]:
    """For each of the 8 masks, the modules it flips (its pattern within the
    encoding region, as segno's ``find_and_apply_best_mask`` decides it),
    packed by rows and by columns."""
    width = int(_segno.calc_matrix_size(version))
    function_matrix = cast(Matrix, _segno.make_matrix(width, width))
    _segno.add_finder_patterns(function_matrix, width, width)
    _segno.add_alignment_patterns(function_matrix, width, width)
    function_matrix[-8][8] = 0x1  # the dark module, as segno marks it
    region = [(i, j) for i in range(width) for j in range(width) if function_matrix[i][j] > 0x1]
    lay = layout(width)
    patterns = []
    for fn in _segno.get_data_mask_functions(False):
        rows = tuple(bytearray(width) for _ in range(width))
        for i, j in region:
            if fn(i, j):
                rows[i][j] = 1
        patterns.append((lay.pack_rows(rows), lay.pack_columns(rows)))
    return tuple(patterns)


# --- the scorer ---------------------------------------------------------------


def score_packed(rows: int, columns: int, lay: Layout) -> Scores:
    """segno's ``mask_scores`` (N1, N2, N3, N4) of the matrix packed as
    ``rows`` and ``columns`` (dark = 1)."""
    n1 = n2 = n3 = 0
    for dark, first in ((rows, True), (columns, False)):
        light = dark ^ lay.cells
        for v in (dark, light):
            w5 = v & v >> 1 & v >> 2 & v >> 3 & v >> 4
            if w5:
                n1 += w5.bit_count() + 2 * (w5 & ~(w5 << 1)).bit_count()
            if first:  # N2 from the rows alone: blocks are the same either way
                pairs = v & v >> 1
                n2 += (pairs & pairs >> lay.stride).bit_count()
        n3 += _n3(dark, light, lay)
    dark_modules = rows.bit_count()
    percent = float(dark_modules) / (lay.size**2)
    n4 = 10 * int(abs(percent * 100 - 50) / 5)
    return n1, 3 * n2, n3, n4


def _n3(dark: int, light: int, lay: Layout) -> int:
    found = (
        dark & light >> 1 & dark >> 2 & dark >> 3 & dark >> 4 & light >> 5 & dark >> 6
    )  # 1011101 starting at each set bit
    if not found:
        return 0
    lit = light | lay.guards  # beyond the line counts as light (segno's edge rule)
    before = lit << 1 & lit << 2 & lit << 3 & lit << 4
    after = lit >> 7 & lit >> 8 & lit >> 9 & lit >> 10
    counted = found & (before | after)
    if not found & (found >> 4 | found >> 6):
        return N3_POINTS * counted.bit_count()
    # Overlapping matches: segno resumes its search 7 modules after a counted
    # match (skipping the overlaps) and 4 after an uncounted one.
    score = 0
    resume = 0
    while found:
        low = found & -found
        found ^= low
        at = low.bit_length() - 1
        if at >= resume and counted & low:
            score += N3_POINTS
            resume = at + 7
    return score


def mask_penalties(matrix: Matrix, version: int) -> list[Scores]:
    """segno's ``mask_scores`` of the unmasked matrix under each of the 8
    masks (before format and version information, as segno scores them)."""
    lay = layout(len(matrix))
    rows = lay.pack_rows(matrix)
    columns = lay.pack_columns(matrix)
    return [
        score_packed(rows ^ row_mask, columns ^ column_mask, lay)
        for row_mask, column_mask in mask_patterns(version)
    ]


def matrix_scores(matrix: Matrix) -> Scores:
    """segno's ``mask_scores`` of any square matrix of 0/1 modules."""
    lay = layout(len(matrix))
    return score_packed(lay.pack_rows(matrix), lay.pack_columns(matrix), lay)
