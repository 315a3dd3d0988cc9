"""A plain function that awaits through the bridge (psp_server/storage/sync_bridge.py)."""

from __future__ import annotations

import asyncio

import pytest

from psp_server.storage.sync_bridge import await_only, run_sync


async def _double(value: int) -> int:
    await asyncio.sleep(0)  # a real suspension on the loop
    return value * 2


async def _fail() -> None:
    await asyncio.sleep(0)
    raise KeyError("from the loop")


def _plain(start: int) -> list[int]:
    """What a storage operation looks like: sync code, several awaits."""
    return [await_only(_double(start)), await_only(_double(start + 1))]


async def test_a_plain_function_awaits_and_returns() -> None:
    assert await run_sync(_plain, 5) == [10, 12]


async def test_an_error_of_an_awaitable_reaches_the_function() -> None:
    def catches() -> str:
        try:
            await_only(_fail())
        except KeyError as exc:
            return f"caught {exc.args[0]}"
        return "not raised"

    assert await run_sync(catches) == "caught from the loop"


async def test_an_error_of_the_function_reaches_the_caller() -> None:
    def raises() -> None:
        await_only(_double(1))
        raise ValueError("from the function")

    with pytest.raises(ValueError, match="from the function"):
        await run_sync(raises)


async def test_calls_run_side_by_side_on_one_loop() -> None:
    results = await asyncio.gather(*(run_sync(_plain, n) for n in range(20)))
    assert results == [[2 * n, 2 * n + 2] for n in range(20)]


def test_await_only_outside_run_sync_is_an_error() -> None:
    awaitable = _double(1)
    with pytest.raises(RuntimeError, match="outside run_sync"):
        await_only(awaitable)
    awaitable.close()
