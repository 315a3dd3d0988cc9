"""Keys, tokens and payment codes never reach the log, whichever logger
writes them: aiohttp's own "Error handling request" quotes the raw header
line its parser refused. Each malformed request below is sent as raw bytes
to a real psp-server, and its log is then searched for the secrets."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from scan2pay_common.logredact import MASK, redact
from tests.support.polling import wait_until
from tests.support.process import PspProcess, create_merchant


def send_raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.fixture(scope="module")
def psp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PspProcess, str, str]]:
    """A PSP, a merchant key and a live payment code."""
    db = tmp_path_factory.mktemp("redaction") / "psp.db"
    key = create_merchant(db)["api_key"]
    server = PspProcess(db)
    request = urllib.request.Request(  # noqa: S310 - the test's own server on loopback
        server.url + "/v1/checkouts",
        data=json.dumps({"order_id": "R-1", "amount": 100, "currency": "EUR"}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the test's own server on loopback
        code = json.loads(answer.read())["qr_url"].rsplit("/Q/", 1)[1]
    yield server, key, code
    server.stop()


SHAPES = {
    "a stray CR, as a key read from a CRLF file carries": b"Bearer {key}\r",
    "a NUL": b"Bearer {key}\x00",
    "a control character": b"Bearer {key}\x01",
    "DEL": b"Bearer {key}\x7f",
    "a header line over 8190 bytes": b"Bearer {key}" + b"A" * 9000,
}


@pytest.mark.parametrize("value", SHAPES.values(), ids=list(SHAPES))
def test_a_malformed_authorization_header_logs_no_key(
    psp: tuple[PspProcess, str, str], value: bytes
) -> None:
    server, key, _ = psp
    before = len(server.log())
    header = value.replace(b"{key}", key.encode())
    answer = send_raw(
        server.url,
        b"GET /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: " + header + b"\r\n\r\n",
    )
    assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:200]
    logged = wait_for_log(server, before)
    assert key not in logged
    assert key[3:20] not in logged


def test_a_malformed_request_line_logs_no_payment_code(psp: tuple[PspProcess, str, str]) -> None:
    server, _, code = psp
    before = len(server.log())
    answer = send_raw(
        server.url, b"GET /Q/" + code.encode() + b"\xff\x00 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:200]
    logged = wait_for_log(server, before)
    assert code not in logged
    assert code[:16] not in logged


def wait_for_log(server: PspProcess, before: int) -> str:
    """What the server logged after ``before`` characters, once it has
    logged the refusal (its lines come a loop iteration at a time)."""

    def refused() -> bool:
        logged = server.log()[before:]
        return '"status":400' in logged or "Error handling request" in logged

    wait_until(
        refused,
        lambda: f"the refused request logged: {server.log()[before:]!r}",
        timeout=5,
        every=0.02,
    )
    time.sleep(0.1)  # the traceback's lines come with it, but be sure
    return server.log()[before:]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer mk_abcdefghijklmnop\r", f"Authorization: Bearer {MASK}\r"),
        ("b'Bearer wt_abcdefghijklmnop\\x00'", f"b'Bearer {MASK}"),
        ("secret whsec_abcdefghijklmnopqrstu", f"secret whsec_{MASK}"),
        ("GET /Q/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567 HTTP/1.1", f"GET /Q/{MASK} HTTP/1.1"),
        ("code ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", f"code {MASK}"),
        (
            "Cookie: __Host-s2p-merchant=v1.mer_1.2.ab.cd; x=1",
            f"Cookie: __Host-s2p-merchant={MASK}; x=1",
        ),
        ("s2p-signin=abcdefgh", f"s2p-signin={MASK}"),
        ("X-Demo-Token: abcdefgh", f"X-Demo-Token: {MASK}"),
        ("mqtts://lane-1:pa55word@broker:8883", f"mqtts://lane-1:{MASK}@broker:8883"),
        # Card numbers that pass the Luhn check, however they are spaced.
        ("pan 4111111111111111 x", f"pan [card {MASK}] x"),
        ("pan 4111 1111 1111 1111 x", f"pan [card {MASK}] x"),
        ("pan 4111-1111-1111-1111 x", f"pan [card {MASK}] x"),
        ('{"card":"5500005555555559"}', f'{{"card":"[card {MASK}]"}}'),
        ("amex 378282246310005.", f"amex [card {MASK}]."),
        ("19 digits 6011000990139424009?", f"19 digits [card {MASK}]?"),
    ],
)
def test_each_secret_shape_is_masked(text: str, shown: str) -> None:
    assert redact(text).startswith(shown)


@pytest.mark.parametrize(
    "text",
    [
        '{"method":"POST","route":"/v1/checkouts","status":201,"ms":1.0}',
        "checkout co_0193a1b2c3d4e5f6a7b8c9d0e1f2 paid",
        "merchant mer_0123456789abcdef0123 signed in",
        # Digits that fail the Luhn check, or are too few or too many.
        "order 4111111111111112 total",
        "amount 123456789012",
        "id 12345678901234567890123",
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) is text
