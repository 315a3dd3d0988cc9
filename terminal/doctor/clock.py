"""Is this machine's clock right? A Pi has no real-time clock: until NTP
has set it, it starts from the last time it saved, and the countdowns and
the display tickets' expiry read it. Asked two ways:

- the system's own word: systemd-timedated's ``NTPSynchronized`` where
  ``timedatectl`` can ask it, else systemd-timesyncd's flag file; where
  neither answers (no systemd, a container) it is not known, which is no
  failure;
- the PSP's: how far this clock is from the ``Date`` of the PSP's answer
  (``terminal.doctor.psp``).
"""

from __future__ import annotations

import shutil
import subprocess
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..timesync import child_environment
from .report import Check

TIMEDATECTL = ("show", "-p", "NTPSynchronized", "--value")
TIMEDATECTL_SECONDS = 2.0
# systemd-timesyncd touches it once it has synchronised the clock.
SYNCED_FLAG = Path("/run/systemd/timesync/synchronized")
# Beyond this the countdown on screen and a ticket's expiry are visibly off.
# A Date header counts whole seconds, so a right clock may read up to 1 s off.
MAX_SKEW_SECONDS = 5.0

NOT_SYNCED_HINT = (
    "a Pi has no real-time clock: check that NTP runs and reaches a server"
    " (timedatectl timesync-status; sudo timedatectl set-ntp true)"
)


def system_synced() -> tuple[bool | None, str]:
    """Whether the system says its clock is synchronised (None: it does not
    say), and who said so."""
    program = shutil.which("timedatectl")
    if program is not None:
        try:
            done = subprocess.run(  # noqa: S603 - a fixed argv, no shell
                [program, *TIMEDATECTL],
                capture_output=True,
                text=True,
                timeout=TIMEDATECTL_SECONDS,
                check=False,
                env=child_environment(),
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        answer = done.stdout.strip() if done is not None and done.returncode == 0 else ""
        if answer in ("yes", "no"):
            return answer == "yes", f"timedatectl says NTPSynchronized={answer}"
    if SYNCED_FLAG.exists():
        return True, f"systemd-timesyncd has synchronised it ({SYNCED_FLAG})"
    return None, f"unknown here: timedatectl does not answer and there is no {SYNCED_FLAG}"


def sync_check() -> Check:
    synced, source = system_synced()
    if synced is None:
        return Check.skip("clock", source)
    if synced:
        return Check.ok("clock", source)
    return Check.fail("clock", f"not synchronised: {source}", NOT_SYNCED_HINT)


def skew_seconds(date_header: str, sent: float, received: float) -> float:
    """How far this clock (``time.time()`` around the request) is ahead of
    the server's ``Date``; ValueError if the header is not an HTTP date. The
    header counts whole seconds: its middle is the best guess."""
    server = parsedate_to_datetime(date_header).timestamp() + 0.5
    return (sent + received) / 2 - server


def skew_check(date_header: str | None, sent: float, received: float) -> Check:
    if date_header is None:
        return Check.skip("clock skew", "the PSP's answer has no Date header")
    try:
        skew = skew_seconds(date_header, sent, received)
    except (TypeError, ValueError):
        return Check.skip("clock skew", f"the PSP's Date header {date_header!r} is not a date")
    where = "ahead of" if skew > 0 else "behind"
    detail = f"{abs(skew):.1f} s {where} the PSP's clock"
    if abs(skew) <= MAX_SKEW_SECONDS:
        return Check.ok("clock skew", detail)
    return Check.fail(
        "clock skew",
        f"{detail}, more than {MAX_SKEW_SECONDS:.0f} s",
        "countdowns and ticket expiry read this clock: " + NOT_SYNCED_HINT,
    )
