"""Steps as people and programs read them: one human line, or one JSON object
(the CLI's --json lines, the local API's progress and event stream)."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, TextIO

from .errors import BridgeError, PspRefused
from .model import Step


def step_json(step: Step, started: float) -> dict[str, Any]:
    """``started`` is the time.monotonic() the elapsed time counts from."""
    return {
        "step": step.name,
        "message": step.message,
        "data": step.data,
        "elapsed_ms": round((step.at - started) * 1000, 1),
    }


def error_json(exc: BridgeError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "exit_code": exc.exit_code}
    if isinstance(exc, PspRefused) and exc.psp_code is not None:
        error["psp_code"] = exc.psp_code
    problems = getattr(exc, "problems", None)
    if problems:
        error["problems"] = [str(p) for p in problems]
    return error


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


class Printer:
    """One line per step on stdout; problems on stderr, or on stdout as a
    "failed" JSON line with --json so that a program reads one stream."""

    def __init__(
        self,
        *,
        as_json: bool,
        started: float,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.as_json = as_json
        self.started = started
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.seen: list[str] = []

    def _line(self, text: str, stream: TextIO) -> None:
        # A reader that went away must not stop the checkout.
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(text, file=stream, flush=True)

    def step(self, step: Step) -> None:
        self.seen.append(step.name)
        if self.as_json:
            self._line(dumps(step_json(step, self.started)), self.out)
        else:
            self._line(step.message, self.out)

    def failure(self, exc: BridgeError, elapsed_ms: float | None = None) -> None:
        if self.as_json:
            line: dict[str, Any] = {
                "step": "failed",
                "message": exc.message,
                "data": error_json(exc),
            }
            if elapsed_ms is not None:
                line["elapsed_ms"] = round(elapsed_ms, 1)
            self._line(dumps(line), self.out)
            return
        problems = getattr(exc, "problems", None)
        if problems:
            self._line("cashier-bridge: bad input:", self.err)
            for problem in problems:
                self._line(f"  - {problem}", self.err)
        else:
            self._line(f"cashier-bridge: {exc.message} (exit {exc.exit_code})", self.err)
