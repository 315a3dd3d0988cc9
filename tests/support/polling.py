"""Waiting for something another task, thread or process does in its own
time (a broker, a server, a terminal): ask again and again until it holds,
and fail saying what never came.

``what`` names what was awaited; it may be a function, called only on
failure, to tell the state things were in then (a log, what was seen)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

What = str | Callable[[], str]


def _failure(what: What, timeout: float, last: object) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"not within {timeout}s: {said}; last saw {last!r:.300}")


def wait_until(
    check: Callable[[], Any], what: What = "", timeout: float = 10.0, every: float = 0.01
) -> Any:
    """``check()``'s first true value, asked every ``every`` seconds, or an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _failure(what or repr(check), timeout, result)
        time.sleep(every)


@overload
async def until(
    check: Callable[[], Awaitable[T | None]],
    *,
    what: What,
    timeout: float = ...,
    every: float = ...,
) -> T: ...
@overload
async def until(
    check: Callable[[], T | None], *, what: What, timeout: float = ..., every: float = ...
) -> T: ...
async def until(
    check: Callable[[], Any], *, what: What, timeout: float = 10.0, every: float = 0.01
) -> Any:
    """``check()``'s first true value (awaited, when it is a coroutine),
    asked every ``every`` seconds without blocking the loop, or an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, result)
        await asyncio.sleep(every)
