from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import serial

from tests.support.serial_pty import Pty


@pytest.fixture
def pty() -> Iterator[Pty]:
    """A pseudo-terminal for a serial display or printer to open."""
    pair = Pty()
    yield pair
    pair.unplug()


@pytest.fixture
def opened_ports(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every port pyserial opens from a URL (``loop://``) during the test,
    in order: the test reads back what a display or printer wrote."""
    opened: list[Any] = []
    real_serial_for_url = serial.serial_for_url

    def keep(*args: Any, **kwargs: Any) -> Any:
        port = real_serial_for_url(*args, **kwargs)
        opened.append(port)
        return port

    monkeypatch.setattr(serial, "serial_for_url", keep)
    return opened
