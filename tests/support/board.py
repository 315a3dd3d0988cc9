"""The merchant board over plain HTTP, as a browser would speak to it:
cookies handled by hand (the tests look at their flags), the sign-in
form's token read off the page, and server-sent events read line by line."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any, Protocol

import aiohttp

_PAGE_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)
_CSRF_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')


class Client(Protocol):
    """A PSP to talk to, in this process (tests.support.psp.Psp) or not."""

    @property
    def http(self) -> aiohttp.ClientSession: ...

    @property
    def url(self) -> str: ...


def cookies_of(response: aiohttp.ClientResponse) -> dict[str, Morsel[str]]:
    """Each Set-Cookie of the answer, by name."""
    found: dict[str, Morsel[str]] = {}
    for header in response.headers.getall("Set-Cookie", []):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        found.update(parsed)
    return found


def csrf_field(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf field in the page"
    return match.group(1)


def page_data(html: str) -> dict[str, Any]:
    match = _PAGE_DATA.search(html)
    assert match, "no page data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def local_midnight() -> int:
    """As board.js computes it, in this machine's time zone."""
    day = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return int(day.timestamp() * 1000)


@dataclass
class Signed:
    """A signed-in browser, reduced to its cookie and the board's token."""

    cookie_name: str
    cookie: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{self.cookie_name}={self.cookie}"}


async def request(
    psp: Client,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    data: Any = None,
) -> tuple[aiohttp.ClientResponse, str]:
    """One request without following redirects; the answer and its text."""
    async with psp.http.request(
        method, psp.url + path, headers=headers, data=data, allow_redirects=False
    ) as response:
        return response, await response.text()


async def sign_in_form(psp: Client) -> tuple[str, str, str]:
    """GET /merchant signed out: (form cookie name, its value, the field's value)."""
    response, html = await request(psp, "GET", "/merchant")
    assert response.status == 200, html
    (name, morsel), *_ = cookies_of(response).items()
    return name, morsel.value, csrf_field(html)


async def sign_in(psp: Client, key: str) -> Signed:
    name, token, field = await sign_in_form(psp)
    response, body = await request(
        psp,
        "POST",
        "/merchant/sign-in",
        headers={"Cookie": f"{name}={token}"},
        data={"csrf": field, "key": key},
    )
    assert response.status == 303, body
    session_name = name.replace("s2p-signin", "s2p-merchant")
    cookie = cookies_of(response)[session_name].value
    signed = Signed(session_name, cookie, "")
    board, html = await request(psp, "GET", "/merchant", headers=signed.headers)
    assert board.status == 200, html
    signed.csrf = page_data(html)["csrf"]
    return signed


class EventStream:
    """``GET /merchant/stream``'s messages, one ``next()`` at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        event = "message"
        data: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    return event, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event, data = await self.next(timeout)
            if event == kind:
                return data
