"""Runs a plain function on the event loop's thread while it waits for
awaitables: the storage's operations are functions of a connection
(SQLite runs them as they are), and on PostgreSQL each of their statements
is a coroutine of psycopg's async driver.

A greenlet carries the function; ``await_only`` switches back to the
coroutine in ``run_sync``, which awaits the awaitable on the loop and
switches into the function again with its result. SQLAlchemy runs its
synchronous ORM over asyncio drivers the same way; greenlet is the library
both build on.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

T = TypeVar("T")


class _Bridged(greenlet):  # type: ignore[misc]  # greenlet ships no stubs: a subclass of Any
    """The greenlet of one ``run_sync`` call."""


def await_only(awaitable: Awaitable[T]) -> T:
    """The awaitable's result, from a function that ``run_sync`` runs."""
    current = getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("await_only() called outside run_sync()")
    result: T = current.parent.switch(awaitable)
    return result


async def run_sync(function: Callable[..., T], *args: Any) -> T:
    """Runs ``function(*args)``, awaiting on the loop whatever it hands to
    ``await_only``, and returns what it returns (or raises what it raises)."""
    bridged = _Bridged(function, getcurrent())
    result: Any = bridged.switch(*args)
    while not bridged.dead:
        try:
            value = await result
        except BaseException:  # noqa: BLE001 - thrown into the function, which sees what its await raised
            result = bridged.throw(*sys.exc_info())
        else:
            result = bridged.switch(value)
    returned: T = result  # the function's own return value, once its greenlet ended
    return returned
