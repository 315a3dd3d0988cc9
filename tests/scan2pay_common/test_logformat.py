"""The formatters' guard (scan2pay_common/logformat.py, and the PSP's
formatter built on it): one line per record whatever a call site passes,
tracebacks readable but indented and escaped, bounded lines, and a
stream that never raises on a character its encoding lacks."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from typing import TextIO

import pytest

from psp_server.runtime import logs
from scan2pay_common import logformat
from scan2pay_common.logformat import (
    CONTINUATION,
    LINE_LIMIT,
    REQUEST_ID,
    JsonLineFormatter,
    OneLineFormatter,
)
from tests.support.hostile import ANSI, BIDI, FORGED, MEGABYTE, log_problems

Formatters = Callable[[], logging.Formatter]


def _psp_worker_formatter() -> logging.Formatter:
    """The one ``name_worker`` gives the root logger's handlers."""
    handler = logs.BatchingStreamHandler(io.StringIO())
    logging.getLogger().addHandler(handler)
    try:
        logs.name_worker(3)
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.formatter is not None
    return handler.formatter


FORMATTERS: dict[str, Formatters] = {
    "common": lambda: OneLineFormatter(logformat.FORMAT),
    "psp": lambda: logs._CachedTimeFormatter(logs.FORMAT),
    "psp worker": _psp_worker_formatter,
}


@pytest.fixture(params=sorted(FORMATTERS))
def formatter(request: pytest.FixtureRequest) -> logging.Formatter:
    return FORMATTERS[request.param]()


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(
        "psp_server.test", logging.WARNING, __file__, 1, message, args, exc_info
    )


def raised(error: Exception) -> Exception:
    """``error`` with a traceback, as a logged exception has one."""
    try:
        raise error
    except Exception as caught:  # noqa: BLE001 - any error the test hands in, given back
        return caught


def test_a_raw_message_is_one_escaped_line(formatter: logging.Formatter) -> None:
    raw = "id \ud867\x00" + FORGED + ANSI + BIDI
    line = formatter.format(record("ignored %s", raw))
    assert "\n" not in line
    assert log_problems((line + "\n").encode()) == []
    assert "\\ud867\\x00\\r\\n2026-01-01" in line
    assert "\\x1b[2J" in line
    assert "\\u202e" in line


def test_plain_lines_are_as_logging_makes_them(formatter: logging.Formatter) -> None:
    line = formatter.format(record("checkout %s paid (%d ms) Café", "co_1", 12))
    assert " WARNING " in line
    assert line.endswith(" psp_server.test checkout co_1 paid (12 ms) Café")


def test_a_huge_message_is_cut(formatter: logging.Formatter) -> None:
    line = formatter.format(record("payload %s", MEGABYTE))
    message = line.partition(" psp_server.test ")[2]
    assert (
        message
        == f"payload {MEGABYTE}"[:LINE_LIMIT] + f"…(+{len(MEGABYTE) + 8 - LINE_LIMIT} chars)"
    )


def test_a_traceback_stays_readable_but_cannot_forge_a_record(
    formatter: logging.Formatter,
) -> None:
    error = raised(ValueError("bad value" + FORGED + ANSI + "\ud867"))
    text = formatter.format(record("failed", exc=error))
    first, *rest = text.split("\n")
    assert " WARNING " in first
    assert first.endswith(" psp_server.test failed")
    assert rest[0] == CONTINUATION + "Traceback (most recent call last):"
    assert all(line.startswith(CONTINUATION) for line in rest)
    # The forged line is there to read, indented as part of the traceback.
    forged = CONTINUATION + FORGED.removeprefix("\r\n") + "\\x1b[2J\\x1b[31;1mRED"
    assert any(line.startswith(forged) for line in rest), rest
    assert rest[-2].endswith("ValueError: bad value\\r")
    assert log_problems((text + "\n").encode()) == []


def test_stack_info_is_indented_too(formatter: logging.Formatter) -> None:
    entry = record("here")
    entry.stack_info = "Stack (most recent call last):\n  File 'x\x1b[2J'\n" + FORGED
    text = formatter.format(entry)
    assert log_problems((text + "\n").encode()) == []
    assert text.split("\n")[1:3] == [
        CONTINUATION + "Stack (most recent call last):",
        CONTINUATION + "  File 'x\\x1b[2J'",
    ]


def test_the_traceback_cached_on_the_record_stays_the_plain_one() -> None:
    """Another handler (pytest's, a second one) formats the same record."""
    entry = record("failed", exc=raised(ValueError("a\nb")))
    OneLineFormatter(logformat.FORMAT).format(entry)
    assert entry.exc_text is not None
    assert entry.exc_text.endswith("ValueError: a\nb")


def test_a_stream_that_would_raise_on_encoding_writes_escapes() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")

    class Strict(logging.StreamHandler[TextIO]):
        def handleError(self, record: logging.LogRecord) -> None:
            pytest.fail("the handler failed")

    handler = Strict(logformat.forgiving(stream))
    handler.setFormatter(OneLineFormatter("%(message)s"))
    handler.emit(record("Café \ud867"))
    stream.flush()
    assert raw.getvalue() == b"Caf\\xe9 \\ud867\n"


def test_configure_guards_stderr_in_a_fresh_process() -> None:
    """What the terminal, the cashier bridge and the demo call."""
    script = (
        "import logging, sys\n"
        "from scan2pay_common import logformat\n"
        "sys.stderr.reconfigure(encoding='ascii', errors='strict')\n"
        "logformat.configure('INFO')\n"
        "log = logging.getLogger('t')\n"
        f"log.warning('x %s', {('€' + FORGED + ANSI + BIDI + chr(0xD867))!r})\n"
        "try:\n"
        f"    raise ValueError({('v' + FORGED)!r})\n"
        "except ValueError:\n"
        "    log.exception('failed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=True
    )
    assert log_problems(result.stderr) == [], result.stderr
    lines = result.stderr.decode().splitlines()
    assert " WARNING t x \\u20ac\\r\\n2026-01-01 00:00:00,000 CRITICAL" in lines[0]
    assert lines[1].endswith(" ERROR t failed")
    assert lines[2:4] == [
        CONTINUATION + "Traceback (most recent call last):",
        CONTINUATION + '  File "<string>", line 8, in <module>',
    ]


# The JSON format (--log-format json): one object per line.


def _json_worker_formatter() -> logging.Formatter:
    handler = logs.BatchingStreamHandler(io.StringIO())
    handler.setFormatter(JsonLineFormatter())
    logging.getLogger().addHandler(handler)
    try:
        logs.name_worker(3)
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.formatter is not None
    return handler.formatter


def test_a_json_record_has_the_standard_fields() -> None:
    entry = record("checkout %s paid (%d ms) Café", "co_1", 12)
    entry.created = 1_764_950_400.0421  # 2025-12-05T16:00:00.042Z
    line = JsonLineFormatter().format(entry)
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2025-12-05T16:00:00.042Z",
        "level": "WARNING",
        "logger": "psp_server.test",
        "message": "checkout co_1 paid (12 ms) Café",
    }


def test_a_json_record_carries_the_request_id_and_the_fields_it_was_given() -> None:
    token = REQUEST_ID.set("req-1")
    try:
        made = JsonLineFormatter().format(record("inside"))
    finally:
        REQUEST_ID.reset(token)
    assert json.loads(made)["request_id"] == "req-1"
    assert "request_id" not in json.loads(JsonLineFormatter().format(record("outside")))
    # The access log names its request and its fields itself.
    entry = record("ignored in json")
    entry.request_id = "req-2"
    entry.fields = {"method": "GET", "route": "/healthz", "status": 200}
    line = json.loads(JsonLineFormatter().format(entry))
    assert (line["request_id"], line["route"], line["status"]) == ("req-2", "/healthz", 200)
    # A worker of --workers N says which it is.
    worker = json.loads(_json_worker_formatter().format(record("x")))
    assert worker["worker"] == 3
    assert worker["pid"] == os.getpid()


def test_a_hostile_json_record_is_one_escaped_line_and_its_traceback_too() -> None:
    raw = "id \ud867\x00" + FORGED + ANSI + BIDI
    error = raised(ValueError("bad" + FORGED + BIDI))
    line = JsonLineFormatter().format(record("got %s", raw + MEGABYTE, exc=error))
    assert "\n" not in line
    assert "\u202e" not in line
    assert "\x1b" not in line
    parsed = json.loads(line)
    assert parsed["message"].startswith("got id \\ud867\\x00\\r\\n2026-01-01")
    assert len(parsed["message"]) < LINE_LIMIT + 40
    assert parsed["exc"].startswith("Traceback (most recent call last):\n")
    # A forged line inside the traceback stays inside the record's string.
    assert "ValueError: bad\\r\n2026-01-01 00:00:00,000 CRITICAL" in parsed["exc"]
    assert parsed["exc"].endswith("forged record\\u202etxt.exe\\u202c\\u2066\\u2069\\u200f")


def test_configure_json_writes_objects_in_a_fresh_process() -> None:
    script = (
        "import logging\n"
        "from scan2pay_common import logformat\n"
        "logformat.configure('INFO', json=True)\n"
        "log = logging.getLogger('t')\n"
        "log.warning('card 4111 1111 1111 1111 and Bearer wt_abcdefghijkl')\n"
        "try:\n"
        "    raise ValueError('v')\n"
        "except ValueError:\n"
        "    log.exception('failed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=True
    )
    lines = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert [line["message"] for line in lines] == [
        "card [card [redacted]] and Bearer [redacted]",
        "failed",
    ]
    assert lines[1]["exc"].endswith("ValueError: v")
