"""Display commands as a cashier publishes them."""

from __future__ import annotations

import json
from typing import Any


def show_qr_of(created: dict[str, Any], **changes: Any) -> bytes:
    """The show_qr a cashier makes of a create's answer, display ticket and
    all, as cashier-bridge does; a change to None leaves the field out."""
    command = {
        "type": "show_qr",
        "checkout_id": created["id"],
        "qr_url": created["qr_url"],
        "amount": created["amount"],
        "currency": created["currency"],
        "expires_at": created["expires_at"],
        "order_id": created["order_id"],
        "display_ticket": created["display_ticket"],
        **changes,
    }
    return json.dumps({k: v for k, v in command.items() if v is not None}).encode()
