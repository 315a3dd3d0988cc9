"""One check's outcome, and the doctor's report of them: a line each for a
person, or one JSON object for a script."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from scan2pay_common.logredact import redact
from scan2pay_common.logtext import loggable

Status = Literal["ok", "fail", "skip"]
LABELS: dict[Status, str] = {"ok": "ok", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True, slots=True)
class Check:
    """``check`` names what was checked, ``detail`` what was found, and
    ``hint`` what to do about a failure (or why a check was skipped)."""

    check: str
    status: Status
    detail: str
    hint: str | None = None

    @classmethod
    def ok(cls, check: str, detail: str) -> Check:
        return cls(check, "ok", detail)

    @classmethod
    def fail(cls, check: str, detail: str, hint: str) -> Check:
        return cls(check, "fail", detail, hint)

    @classmethod
    def skip(cls, check: str, detail: str, hint: str | None = None) -> Check:
        return cls(check, "skip", detail, hint)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def shown(self) -> Check:
        """As it may be shown: printable (a broker's or the PSP's error text
        comes from outside), and with no secret in it (a config problem may
        quote an mqtt:// URL, password and all), as the logs."""
        hint = None if self.hint is None else redact(loggable(self.hint, None))
        return Check(self.check, self.status, redact(loggable(self.detail, None)), hint)

    def line(self) -> str:
        shown = self.shown()
        text = f"{LABELS[self.status]:<4} {self.check}: {shown.detail}"
        return text + (f" (hint: {shown.hint})" if shown.hint else "")


def as_text(checks: Sequence[Check]) -> str:
    return "\n".join(check.line() for check in checks)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps(
        {"ok": not any(c.failed for c in checks), "checks": [asdict(c.shown()) for c in checks]},
        ensure_ascii=False,
        indent=2,
    )
