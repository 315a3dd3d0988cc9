"""Asks the PSP for this terminal's events after a ``seq``: ``GET
/v1/events?after=SEQ`` with the terminal's own credential, ``Bearer
PAIRING_ID:DEVICE_SECRET`` (what pairing gave it; docs/pairing.md), which
the PSP answers with the events of this terminal's checkouts alone.

The events come back as the PSP signed them; each is checked like one
heard over MQTT (``terminal.trust.announce_problem``) before anything is
believed. Asked with ``terminal.psp_get``, in a worker thread, as
``terminal.psp_lookup`` asks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from scan2pay_common import jsonfields as jf

from .psp_get import NoAnswer, get_json_object

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
PAGE = 100
MAX_ANSWER = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events: each as canonical JSON bytes (what was signed,
    with its signature member), and the cursor to ask after next."""

    events: tuple[bytes, ...]
    next_after: int


def credential(pairing_id: str, device_secret: str) -> str:
    return f"{pairing_id}:{device_secret}"


def fetch_page(psp_url: str, token: str, after: int) -> Page | None:
    """Blocking; None when the PSP cannot be reached or refuses (logged)."""
    url = f"{psp_url.rstrip('/')}/v1/events?after={after}&limit={PAGE}"
    try:
        body = get_json_object(
            url,
            what="events page",
            timeout=TIMEOUT_SECONDS,
            max_bytes=MAX_ANSWER,
            headers={"Authorization": f"Bearer {token}"},
        )
    except NoAnswer as exc:
        log.warning("catching up: %s", exc)
        return None
    events: Any = body.get("events")
    next_after: Any = body.get("next_after")
    if not isinstance(events, list) or isinstance(next_after, bool):
        log.warning("catching up: the PSP's answer has no events list")
        return None
    if not isinstance(next_after, int) or next_after < after:
        log.warning("catching up: the PSP's answer has no next_after past %d", after)
        return None
    # Canonical bytes again: what the PSP signed, with its signature member.
    return Page(tuple(jf.dumps(event) for event in events), next_after)
