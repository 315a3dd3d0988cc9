"""The page a phone's camera app opens from the QR code: who asks, how much,
whether it is still to pay and for how long; and, while it is, a demo
wallet that pays from the browser (``static/pay.js``).

Each outcome has a page of its own (paid, expired, cancelled, unknown), so
that a glance tells it even with scripts off. The script only adds to the
pending page: the countdown, the wallet, and a reload when the status
changes under it.
"""

from __future__ import annotations

from html import escape

from psp_server.web import static_page
from psp_server.web.layout import page
from scan2pay_common.money import format_display, format_major

# Every page is served from /Q/{CODE}: its assets are one level up.
ROOT = "../"

_HEADLINE = {
    "pending": "Waiting for payment",
    "paid": "Paid",
    "cancelled": "This checkout was cancelled",
    "expired": "This code has expired",
}
_ADVICE = {
    "paid": "Nothing more to do: the merchant has been told.",
    "cancelled": "Ask the cashier for a new code if you still want to pay.",
    "expired": "Ask the cashier for a new code.",
}


def _countdown(seconds: int) -> str:
    minutes, seconds = divmod(max(0, seconds), 60)
    return f"{minutes}:{seconds:02d}"


def render(
    *,
    merchant: str,
    amount: int,
    currency: str,
    status: str,
    code: str,
    expires_at: str,
    expires_at_ms: int,
    now_ms: int,
    qr_payload: str | None = None,
    till: tuple[str, str] | None = None,
) -> str:
    """``qr_payload``: the EMV payload of an EMV merchant's checkout
    (docs/emv.md), offered to copy into a banking app while it is pending.
    ``till``: the label and short id of the printed till code the page was
    opened from (``/S/{CODE}``), shown under the merchant's name."""
    shown_amount = format_display(amount, currency)
    parts = [
        f'<main data-status="{escape(status)}">',
        f'<p class="muted">Payment to</p><h1 id="merchant">{escape(merchant)}</h1>',
    ]
    if till is not None:
        parts.append(static_page.till_line(*till))
    parts += [
        f'<p class="amount" id="amount">{escape(shown_amount)}</p>',
        f'<p class="status status-{escape(status)}" id="status" role="status">'
        f"{escape(_HEADLINE.get(status, status))}</p>",
    ]
    if status == "pending":
        remaining = (expires_at_ms - now_ms) // 1000
        parts.append(
            '<p class="countdown">Expires in '
            f'<time id="countdown" datetime="{escape(expires_at)}">{_countdown(remaining)}</time>'
            "</p>"
        )
        parts.append(_WALLET)
        if qr_payload is not None:
            parts.append(_EMV_CODE.format(payload=escape(qr_payload)))
    else:
        parts.append(f'<p id="advice">{escape(_ADVICE.get(status, ""))}</p>')
    parts.append(_RECEIPT)
    parts.append("</main>")
    return page(
        title=f"{_HEADLINE.get(status, status)}: {shown_amount} to {merchant}",
        body="\n".join(parts),
        root=ROOT,
        scripts=("pay.js",),
        data={
            "code": code,
            "status": status,
            "merchant": merchant,
            "amount": amount,
            "amount_text": shown_amount,
            "amount_major": format_major(amount, currency),
            "currency": currency,
            "expires_at_ms": expires_at_ms,
            "server_now_ms": now_ms,
        },
    )


# The wallet asks for its token once; the browser keeps it (localStorage).
_WALLET = """<section id="wallet" aria-label="Pay from this browser">
<button id="pay" type="button" class="primary">Pay with the demo wallet</button>
<form id="token-form" hidden>
<label for="token">Demo wallet token</label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required
 aria-describedby="token-hint">
<p id="token-hint" class="muted">It starts with <code>wt_</code>. This browser keeps it,
so you are asked only once.</p>
<div class="actions"><button type="submit" class="primary">Save and pay</button></div>
</form>
<p id="message" class="message" role="alert"></p>
<p><button id="forget" type="button" class="small" hidden>Forget the wallet token</button></p>
<noscript><p>Open this code with a scan2pay wallet app to pay.</p></noscript>
</section>"""

# The code the terminal shows, as text: what a banking app that reads EMV
# payloads takes when pasted ("copy and paste" codes, as PIX offers).
_EMV_CODE = """<section id="emv-code" aria-labelledby="emv-code-title">
<h2 id="emv-code-title">Pay with a banking app</h2>
<label for="qr-payload">Payment code to copy into an app that reads EMV QR codes</label>
<textarea id="qr-payload" readonly rows="4" spellcheck="false">{payload}</textarea>
</section>"""

_RECEIPT = """<section id="receipt" class="card" hidden aria-labelledby="receipt-title">
<h2 id="receipt-title">Receipt</h2>
<dl class="receipt">
<dt>Paid to</dt><dd id="receipt-merchant"></dd>
<dt>Amount</dt><dd id="receipt-amount"></dd>
<dt>Payment</dt><dd id="receipt-payment"></dd>
<dt>Time</dt><dd><time id="receipt-time"></time></dd>
</dl>
</section>"""


def render_unknown() -> str:
    body = """<main data-status="unknown">
<h1>Unknown code</h1>
<p class="status status-unknown" role="status">This payment code does not exist.</p>
<p>Check that you scanned the code on the checkout's display, or ask the cashier
for a new one.</p>
</main>"""
    return page(title="Unknown code", body=body, root=ROOT)
