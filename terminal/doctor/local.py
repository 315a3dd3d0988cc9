"""The checks of this machine's own parts: its display and the fonts the
screens are drawn with."""

from __future__ import annotations

from hardware.errors import HardwareError
from hardware.probe import ProbeFailure, probe

from .report import Check

FONT_SAMPLE = "€12.34 Scan to pay 4:59"


def display_check(spec: str) -> Check:
    from hardware.registry import parse_spec

    try:
        answer = probe(parse_spec(spec))
    except ProbeFailure as failure:
        return Check.fail("display", f"{spec}: {failure.what}", failure.hint)
    except HardwareError as error:  # a value the config let through but the hardware layer not
        return Check.fail("display", f"{spec}: {error}", "correct the display setting")
    return Check.ok("display", f"{spec}: {answer}")


def fonts_check() -> Check:
    """Both shipped faces load and draw the screens' characters (a broken
    install, or a Pillow without FreeType, fails here)."""
    from terminal import render

    try:
        names = [render.font_path(bold).name for bold in (False, True)]
        for bold in (False, True):
            render.ink_box(FONT_SAMPLE, render.COMFORTABLE_FONT, bold)
    except (OSError, ImportError, ValueError) as error:
        return Check.fail(
            "fonts",
            f"the screens' fonts do not load: {error}",
            "reinstall scan2pay (terminal/fonts/), and Pillow with FreeType",
        )
    return Check.ok("fonts", f"{' and '.join(names)} load")
