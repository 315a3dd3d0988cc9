"""Whether the system says its clock is synchronised: systemd-timesyncd's
flag file first (a stat, no process), then ``timedatectl``, which asks
systemd-timedated and so also knows chrony's or ntpd's word.

None when neither can tell (no systemd: a container, another init): the
terminal then judges by the PSP's time where it differs (``terminal.clock``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Written by systemd-timesyncd once it has synchronised the clock (it is
# what Raspberry Pi OS runs), removed at boot.
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
TIMEDATECTL_SECONDS = 5


def system_clock_synced(flag: Path = TIMESYNCD_FLAG) -> bool | None:
    """True, False, or None when the system cannot say. Blocks up to a few
    seconds (timedatectl asks over D-Bus)."""
    if flag.exists():
        return True
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None:
        return None
    try:
        answer = subprocess.run(  # noqa: S603 - systemd's own tool, fixed arguments, no shell
            [timedatectl, "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEDATECTL_SECONDS,
            check=False,
            env=child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = answer.stdout.strip()
    if answer.returncode != 0 or value not in ("yes", "no"):
        return None  # no systemd as init, or no D-Bus: it cannot tell
    return value == "yes"


def child_environment() -> dict[str, str]:
    """The daemon's environment without ``NOTIFY_SOCKET``: systemd's tools
    report their own failures there ("ERRNO=112" from a timedatectl without
    D-Bus), and a child must never speak to systemd for the service."""
    return {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
