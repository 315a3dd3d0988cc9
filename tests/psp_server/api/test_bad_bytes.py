"""Bytes that are not UTF-8 where a secret is read (the Authorization
header, the session and sign-in cookies) are a refusal, never a 500: the
secret matches nothing, and the server goes on serving."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.support.process import PspProcess, create_merchant

BAD = b"\xff\xfe\x80 \xc3"  # not UTF-8: aiohttp passes such bytes on as lone surrogates


def raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Sends bytes exactly as given (no client library would send these)
    and returns the status and the body."""
    status, _, answer = raw_exchange(url, head, body)
    return status, answer


def raw_exchange(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """The status, the header block and the body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def psp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PspProcess, str]]:
    db = tmp_path_factory.mktemp("bad-bytes") / "psp.db"
    merchant = create_merchant(db)
    server = PspProcess(db)
    yield server, merchant["api_key"]
    server.stop()


def host(server: PspProcess) -> bytes:
    return server.url.removeprefix("http://").encode()


@pytest.mark.parametrize("path", ["/v1/merchant", "/v1/events", "/v1/webhooks"])
def test_a_merchant_key_that_is_not_utf8_is_401(psp: tuple[PspProcess, str], path: str) -> None:
    server, key = psp
    head = b"GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s%s\r\n" % (
        path.encode(),
        host(server),
        key.encode(),
        BAD,
    )
    status, body = raw_request(server.url, head)
    assert status == 401, body
    assert b'"unauthorized"' in body


def test_a_wallet_token_that_is_not_utf8_is_401(psp: tuple[PspProcess, str]) -> None:
    server, _ = psp
    body = b'{"code": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"}'
    head = (
        b"POST /v1/payments HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer wt_%s\r\n"
        b"Content-Type: application/json\r\n" % (host(server), BAD)
    )
    status, answer = raw_request(server.url, head, body)
    assert status == 401, answer


@pytest.mark.parametrize("cookie", ["s2p-merchant", "s2p-signin"])
def test_a_planted_cookie_that_is_not_utf8_shows_a_fresh_sign_in_page(
    psp: tuple[PspProcess, str], cookie: str
) -> None:
    server, _ = psp
    head = b"GET /merchant HTTP/1.1\r\nHost: %s\r\nCookie: %s=v1.%s.1\r\n" % (
        host(server),
        cookie.encode(),
        BAD,
    )
    status, body = raw_request(server.url, head)
    assert status == 200, body
    assert b'name="key"' in body  # the sign-in form


def test_the_board_session_check_with_a_cookie_that_is_not_utf8_is_401(
    psp: tuple[PspProcess, str],
) -> None:
    server, _ = psp
    head = b"GET /merchant/session HTTP/1.1\r\nHost: %s\r\nCookie: s2p-merchant=%s\r\n" % (
        host(server),
        BAD,
    )
    status, body = raw_request(server.url, head)
    assert status == 401, body


@pytest.mark.parametrize("key", [BAD, b"mk_%FF%FE%ED%A0%80"])
def test_a_sign_in_key_that_is_not_utf8_is_not_accepted(
    psp: tuple[PspProcess, str], key: bytes
) -> None:
    """Through the form, as a browser would send it: raw or percent-encoded."""
    server, _ = psp
    _, headers, page = raw_exchange(
        server.url, b"GET /merchant HTTP/1.1\r\nHost: %s\r\n" % host(server)
    )
    cookie = re.search(rb"Set-Cookie: (s2p-signin=[^;]+)", headers)
    field = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert cookie is not None, headers
    assert field is not None, page
    head = (
        b"POST /merchant/sign-in HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        % (host(server), server.url.encode(), cookie.group(1))
    )
    form = b"csrf=%s&key=%s" % (field.group(1), key)
    status, headers, answer = raw_exchange(server.url, head, form)
    # Percent-encoded, the key is read and matches no merchant; raw, the
    # form cannot be read at all and is refused as a stale one.
    assert status in (401, 403), answer
    assert b"s2p-merchant=" not in headers  # no session


def test_a_sign_in_with_a_cookie_that_is_not_utf8_is_refused_not_500(
    psp: tuple[PspProcess, str],
) -> None:
    server, key = psp
    form = b"csrf=x%s&key=%s" % (BAD, key.encode())
    head = (
        b"POST /merchant/sign-in HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\n"
        b"Cookie: s2p-signin=%s; s2p-merchant=%s\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        % (host(server), server.url.encode(), BAD, BAD)
    )
    status, body = raw_request(server.url, head, form)
    assert status == 403, body


def test_the_server_logged_no_traceback(psp: tuple[PspProcess, str]) -> None:
    server, _ = psp
    raw_request(
        server.url,
        b"GET /v1/merchant HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
        % (host(server), BAD),
    )
    assert "Traceback" not in server.log()
    assert 'status":500' not in server.log()
