"""Property tests are reproducible: unless HYPOTHESIS_PROFILE says
otherwise, every run draws the same examples (tests/conftest.py)."""

from __future__ import annotations

import os

from hypothesis import settings


def test_property_tests_draw_the_same_examples_on_every_run() -> None:
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci":
        return  # a developer asked for random examples on purpose
    current = settings.default
    assert current is not None
    assert current.derandomize
    assert current.database is None
