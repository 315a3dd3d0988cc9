"""The small page a phone's camera app opens from the QR code."""

from __future__ import annotations

from html import escape

from scan2pay_common.money import format_major

_STATUS_TEXT = {
    "pending": "Waiting for payment",
    "paid": "Paid",
    "cancelled": "Cancelled",
    "expired": "Expired",
}


def render(*, merchant: str, amount: int, currency: str, status: str, expires_at: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {escape(merchant)}</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:2em auto;padding:0 1em;color:#111}}
.amount{{font-size:2.5em;font-weight:bold}}.status{{font-size:1.3em}}</style></head>
<body><main>
<h1>{escape(merchant)}</h1>
<p class="amount">{escape(format_major(amount, currency))} {escape(currency)}</p>
<p class="status">{escape(_STATUS_TEXT.get(status, status))}</p>
<p>Expires at <time datetime="{escape(expires_at)}">{escape(expires_at)}</time></p>
<p>Open this code with a scan2pay wallet app to pay.</p>
</main></body></html>
"""


def render_unknown() -> str:
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unknown code</title></head>
<body><main><h1>Unknown code</h1><p>This payment code does not exist.</p></main></body></html>
"""
