"""The server's log handler: a loop iteration's lines in one write, warnings
at once, the usual stamp format (psp_server/runtime/logs.py)."""

from __future__ import annotations

import asyncio
import io
import logging
import re

from psp_server.runtime.logs import FORMAT, BatchingStreamHandler, _CachedTimeFormatter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def logger_to(stream: CountingStream) -> tuple[logging.Logger, BatchingStreamHandler]:
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(_CachedTimeFormatter(FORMAT))
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


async def test_one_iterations_lines_are_one_write() -> None:
    stream = CountingStream()
    logger, _ = logger_to(stream)
    for n in range(50):
        logger.info("request %d", n)
    assert stream.writes == 0  # not yet: at the end of this iteration
    await asyncio.sleep(0)
    assert stream.writes == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 50
    assert lines[-1].endswith("INFO " + logger.name + " request 49")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", lines[0])


async def test_a_warning_goes_out_at_once_with_what_came_before() -> None:
    stream = CountingStream()
    logger, _ = logger_to(stream)
    logger.info("first")
    logger.warning("trouble")
    text = stream.getvalue()
    assert "first" in text
    assert "trouble" in text
    assert text.index("first") < text.index("trouble")


def test_without_a_loop_each_line_goes_out_at_once() -> None:
    stream = CountingStream()
    logger, handler = logger_to(stream)
    logger.info("now")
    assert "now" in stream.getvalue()
    handler.close()
