"""Slow headers (slowloris): a connection that takes longer than the header
timeout to send a request's headers is closed, an idle keep-alive connection
too, and the server goes on serving everyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from psp_server.api.appkeys import DEADLINES
from tests.support.psp import Psp, start_psp, stop_psp


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "slow.db"), header_timeout=1.0)
    yield server
    await stop_psp(server)


async def open_connection(psp: Psp) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(psp.url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def test_headers_sent_a_byte_at_a_time_are_cut_off(quick: Psp) -> None:
    reader, writer = await open_connection(quick)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    for _ in range(40):  # up to 8 s of a header byte every 0.2 s
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            closed_after = time.monotonic() - started
            break
        if reader.at_eof() or await _closed(reader):
            closed_after = time.monotonic() - started
            break
        # Meanwhile everyone else is served.
        status, _ = await quick.call("GET", "/healthz")
        assert status == 200
    writer.close()
    print(f"\nslow headers cut off after {closed_after} s (header timeout 1 s)")
    assert closed_after is not None
    assert closed_after < 2.5
    assert quick.server.app[DEADLINES].closed >= 1


async def test_an_idle_keep_alive_connection_is_closed(quick: Psp) -> None:
    reader, writer = await open_connection(quick)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert answer.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    await asyncio.wait_for(reader.read(), 5)  # the rest of the answer, then EOF
    assert reader.at_eof()
    assert time.monotonic() - started < 2.5
    writer.close()


async def test_a_prompt_client_keeps_its_connection(quick: Psp) -> None:
    reader, writer = await open_connection(quick)
    for _ in range(3):  # three requests on one connection, each well in time
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        await reader.readexactly(length)
        await asyncio.sleep(0.5)
    writer.close()


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), 0.2)
    except TimeoutError:
        return False
    return data == b""
