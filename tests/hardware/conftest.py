from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.serial_pty import Pty


@pytest.fixture
def pty() -> Iterator[Pty]:
    """A pseudo-terminal for a serial display or printer to open."""
    pair = Pty()
    yield pair
    pair.unplug()
