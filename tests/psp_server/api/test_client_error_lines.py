"""A client cannot write tracebacks into the PSP's log: a request the
parser refused, or one whose client hung up halfway through its body,
costs one line at most, and only so many lines a minute."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from psp_server.api.client_errors import BURST, PER_SECONDS, ClientErrorLines
from tests.support.process import PspProcess, create_merchant, create_wallet


@pytest.fixture
def psp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PspProcess, str]]:
    db = tmp_path_factory.mktemp("client-errors") / "psp.db"
    create_merchant(db)
    token = create_wallet(db)["token"]
    server = PspProcess(db)
    yield server, token
    server.stop()


def address(server: PspProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_a_flood_of_malformed_requests_is_a_few_lines_without_tracebacks(
    psp: tuple[PspProcess, str],
) -> None:
    server, _ = psp
    for n in range(40):
        with socket.create_connection(address(server), timeout=10) as sock:
            sock.sendall(b"GET /v1/merchant HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b%d\r\n\r\n" % n)
            assert sock.recv(100).split(b" ", 2)[1] == b"400"
    time.sleep(0.3)  # the log is written a loop iteration at a time
    log = server.log()
    assert "Traceback" not in log
    assert "  | " not in log  # no traceback lines of any kind
    assert 1 <= log.count("Error handling request") <= BURST


def test_a_client_that_hangs_up_mid_body_costs_one_line(psp: tuple[PspProcess, str]) -> None:
    server, token = psp
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 200\r\n\r\n"
            b'{"code": "ABC'
        )
        time.sleep(0.2)
    time.sleep(0.5)
    log = server.log()
    assert "Traceback" not in log
    assert "unhandled error" not in log
    assert log.count("\n") <= 6  # start-up lines and at most one for the hang-up


def test_past_the_burst_lines_are_counted_and_said_with_the_next() -> None:
    now = [0.0]
    lines = ClientErrorLines(clock=lambda: now[0])

    def error(n: int) -> logging.LogRecord:
        try:
            raise ConnectionResetError(f"reset {n}")
        except ConnectionResetError as exc:
            return logging.LogRecord(
                "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", None,
                (type(exc), exc, exc.__traceback__),
            )  # fmt: skip

    kept = [record for n in range(BURST + 5) if lines.filter(record := error(n))]
    assert len(kept) == BURST
    assert all(record.exc_info is None for record in kept)
    assert kept[0].getMessage() == "Error handling request: ConnectionResetError: reset 0"
    now[0] += PER_SECONDS / BURST  # one line's worth of time
    later = error(99)
    assert lines.filter(later)
    assert later.getMessage().endswith("reset 99 (5 more like it left out)")


def test_an_error_that_is_not_the_clients_keeps_its_traceback() -> None:
    lines = ClientErrorLines()
    try:
        raise KeyError("a bug of ours")
    except KeyError as exc:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", None,
            (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
    assert lines.filter(record)
    assert record.exc_info is not None
