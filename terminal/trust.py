"""What the terminal believes when it holds the PSP's public key(s): pure
checks, no I/O (docs/signing.md).

- A ``show_qr`` is shown only with a display ticket the PSP signed for this
  terminal, not expired, whose checkout, URL, amount, currency and expiry
  are the command's. Anyone who can publish on the display topic can send a
  command; only the PSP can make a ticket.
- An event counts only if the PSP signed it and it is this merchant's.

Each check answers None when all is well, or why not (for the log).
"""

from __future__ import annotations

from collections.abc import Sequence

from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent, DisplayTicket, ShowQr
from scan2pay_common.signing import PublicKey, verify, verify_json
from scan2pay_common.timefmt import from_rfc3339

_MUST_MATCH = ("checkout_id", "qr_url", "amount", "currency", "expires_at")


def ticket_problem(
    command: ShowQr, keys: Sequence[PublicKey], terminal_id: str, now: int
) -> str | None:
    raw = command.display_ticket
    if raw is None:
        return "it has no display ticket"
    if not verify(raw, keys):
        return "its display ticket is not signed by the PSP"
    try:
        ticket = DisplayTicket.from_dict(raw)
    except InvalidValue as exc:
        return f"its display ticket is off-contract: {exc.message}"
    if ticket.terminal_id != terminal_id:
        return f"its display ticket is for terminal {ticket.terminal_id!r}"
    if now >= from_rfc3339(ticket.expires_at):
        return "its display ticket has expired"
    for name in _MUST_MATCH:
        if getattr(ticket, name) != getattr(command, name):
            return f"its {name} is not the display ticket's"
    return None


def event_problem(
    payload: bytes, event: CheckoutEvent, keys: Sequence[PublicKey], merchant_id: str
) -> str | None:
    if event.merchant_id != merchant_id:
        return f"it is merchant {event.merchant_id}'s"
    if not verify_json(payload, keys):
        return "its signature is missing or not the PSP's"
    return None
