"""A lean HTTP/1.1 client for load generation: one keep-alive connection per
simulated client, requests written as prepared bytes, responses framed by
Content-Length. It exists because the load generator shares this machine's
two cores with the server it measures: aiohttp's client costs more CPU per
request than the server under test, and would make the benchmark measure
the client instead.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HttpError(Exception):
    pass


class Connection(asyncio.Protocol):
    def __init__(self, host: str) -> None:
        self._host = host.encode()
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: BaseException | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(f"{host}:{port}"), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or HttpError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            self._waiter.set_exception(HttpError("a response without Content-Length"))
            return
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop > 0 else None])
        total = end + 4 + length
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        waiter, self._waiter = self._waiter, None
        waiter.set_result((int(head[9:12]), body))

    async def request(
        self, method: str, path: str, *, token: str, body: Any = None
    ) -> tuple[int, bytes]:
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None
        assert self._waiter is None
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host.decode()}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(head + payload)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
