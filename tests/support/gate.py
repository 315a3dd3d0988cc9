"""Holds one storage method of a running PSP at its door, so that a test
can have a request in flight for as long as it likes, deterministically."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.psp import Psp


class Gate:
    def __init__(self) -> None:
        self.entered = asyncio.Event()  # a request reached the method
        self.opened = asyncio.Event()  # it may go on

    async def wait_entered(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.entered.wait(), timeout)


@contextlib.asynccontextmanager
async def gated(psp: Psp, method: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gate]:
    """Calls of ``psp.storage.<method>`` wait until the gate opens (at the
    latest when the block ends)."""
    gate = Gate()
    original = getattr(psp.storage, method)

    async def held(*args: Any, **kwargs: Any) -> Any:
        gate.entered.set()
        await gate.opened.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(psp.storage, method, held)
    try:
        yield gate
    finally:
        gate.opened.set()
