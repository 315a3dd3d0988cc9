"""Untrusted text made safe to log (scan2pay_common/logtext.py): what each
kind of hostile character becomes, the cut, bytes, and that ordinary text
passes through untouched and cheaply."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from scan2pay_common.logtext import LIMIT, loggable
from tests.support.hostile import ANSI, BIDI, FORGED, message_problem


def test_ordinary_text_is_unchanged_and_not_copied() -> None:
    for text in (
        "",
        "checkout co_0123 paid",
        'unknown field(s): "x y"',
        "Café Müller, 日本橋, ½ €, 😀, a\u00a0b",  # NBSP and emoji are harmless
        "a\\nb",  # a backslash typed by the sender is left alone
    ):
        assert loggable(text) is text


def test_lone_surrogates_become_escapes_and_the_result_encodes() -> None:
    shown = loggable("a\ud867b\udcff")
    assert shown == "a\\ud867b\\udcff"
    shown.encode("utf-8")  # strict: this is what broke pytest-xdist's report


def test_nul_and_other_c0_controls() -> None:
    assert loggable("a\x00b\x07c\x08d\tx\x0b\x0c\x1f") == "a\\x00b\\x07c\\x08d\\tx\\x0b\\x0c\\x1f"


def test_cr_lf_cannot_start_a_forged_record() -> None:
    shown = loggable("id" + FORGED)
    assert shown == "id\\r\\n" + FORGED[2:]
    assert shown.splitlines() == [shown]


def test_ansi_escape_sequences_are_shown_not_run() -> None:
    assert loggable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    shown = loggable(ANSI)
    assert "\x1b" not in shown
    assert "\x9b" not in shown
    assert "\x07" not in shown
    assert "\\x1b[2J" in shown
    assert "\\x9b31m" in shown


def test_del_and_c1_controls() -> None:
    assert loggable("a\x7fb\x85c\x9bd\x80") == "a\\x7fb\\x85c\\x9bd\\x80"


def test_bidi_controls_and_line_separators() -> None:
    assert loggable("\u202etxt.exe") == "\\u202etxt.exe"
    assert loggable(BIDI) == "\\u202etxt.exe\\u202c\\u2066\\u2069\\u200f"
    assert loggable("\u061c\u200e\u202a\u202b\u202d\u2067\u2068") == (
        "\\u061c\\u200e\\u202a\\u202b\\u202d\\u2067\\u2068"
    )
    assert loggable("a\u2028b\u2029c") == "a\\u2028b\\u2029c"


def test_a_megabyte_is_cut_cheaply_with_a_note_of_what_was_left_out() -> None:
    text = "x" * (1 << 20)
    started = time.perf_counter()
    for _ in range(100):
        shown = loggable(text)
    per_call = (time.perf_counter() - started) / 100
    assert shown == "x" * LIMIT + f"…(+{len(text) - LIMIT} chars)"
    # Reading the whole megabyte would take some hundred microseconds.
    assert per_call < 50e-6, per_call


def test_a_megabyte_of_hostile_text_is_cut_to_the_limit_escapes_included() -> None:
    text = ("\x1b[31m" + "\ud867" + "\r\n") * (1 << 18)
    shown = loggable(text)
    head, _, note = shown.partition("…")
    assert len(head) <= LIMIT
    assert message_problem(shown) is None
    shown_chars = len(head.replace("\\x1b", "E").replace("\\ud867", "S").replace("\\r", "R"))
    shown_chars -= head.count("\\n")
    assert note == f"(+{len(text) - shown_chars} chars)"


def test_the_limit_can_be_set_or_lifted() -> None:
    assert loggable("abcdef", 3) == "abc…(+3 chars)"
    assert loggable("\n\n\n", 4) == "\\n\\n…(+1 chars)"
    assert loggable("\n" * 1000, None) == "\\n" * 1000
    assert loggable("y" * 1000, None) == "y" * 1000


def test_bytes_are_read_as_utf8_and_others_shown_as_hex() -> None:
    assert loggable(b"caf\xc3\xa9") == "café"
    assert loggable(b"\xff\xfeA\xed\xa0\x80\x00\x1b") == "\\xff\\xfeA\\xed\\xa0\\x80\\x00\\x1b"
    assert loggable(bytearray(b"ok\n")) == "ok\\n"


def test_bytes_are_cut_without_splitting_a_character() -> None:
    euros = "€".encode() * 1000  # three bytes each
    assert loggable(euros, 10) == "€" * 10 + f"…(+{3000 - 30} bytes)"
    shown = loggable(b"\xff" * (1 << 20))
    assert shown.startswith("\\xff" * (LIMIT // 4) + "…(+")
    assert shown.endswith(f"(+{(1 << 20) - LIMIT // 4} bytes)")


def test_other_values_are_shown_by_str() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert loggable(12) == "12"
    assert loggable(None) == "None"
    assert loggable(ValueError("bad\nvalue")) == "bad\\nvalue"
    assert loggable(Broken()) == "<a Broken that cannot be shown>"


def test_plain_short_text_costs_next_to_nothing() -> None:
    line = "POST /v1/checkouts 201"
    started = time.perf_counter()
    for _ in range(100_000):
        loggable(line)
    per_call = (time.perf_counter() - started) / 100_000
    assert per_call < 2e-6, per_call  # some 0.1 us here; room for a slow machine


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.binary(),
        # Surrogates, controls, format characters (bidi), separators, letters.
        st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Ll"])),
    )
)
def test_any_value_comes_out_one_safe_bounded_line(value: str | bytes) -> None:
    shown = loggable(value)
    assert message_problem(shown, longest=LIMIT + 40) is None, shown
    shown.encode("utf-8")
    assert len(shown.splitlines()) <= 1
