"""The pages a printed till code opens (``/S/{CODE}``, docs/static-qr.md)
when the till has no checkout of its own to show: the form for an amount,
"nothing to pay at this till yet", a revoked code and an unknown one.

Every page names the merchant's verified name, the till's label and the
code's short id, so that a customer can check them against the sticker
and the till. The form needs no script (it posts as a form); the
waiting page asks again every few seconds (``static/waiting.js``), a
script rather than a meta refresh, which moves a page under a screen
reader's feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from psp_server.core.static_codes import OpenAmount
from psp_server.web.layout import page
from scan2pay_common.money import format_display, format_major

# Served from /S/{CODE}: the assets are one level up.
ROOT = "../"
# How often the waiting page asks again, in seconds.
POLL_SECONDS = 3


@dataclass(frozen=True, slots=True)
class Till:
    """What every page of a printed code names: the merchant's verified
    name, the till's label and the code's short id."""

    merchant: str
    label: str
    short_id: str


def till_line(label: str, short_id: str) -> str:
    return (
        f'<p id="till">Till <strong id="till-label">{escape(label)}</strong>'
        f' · code <strong id="short-id">{escape(short_id)}</strong></p>'
    )


def _till(till: Till) -> str:
    return (
        f'<p class="muted">Payment to</p><h1 id="merchant">{escape(till.merchant)}</h1>'
        + till_line(till.label, till.short_id)
    )


def render_open_amount(
    till: Till,
    *,
    code: str,
    open_amount: OpenAmount,
    problem: str | None = None,
    typed: str = "",
    again: bool = False,
) -> str:
    """The form where the customer types the amount; posted, it makes a
    checkout of their own and goes on to its payment page. ``again``: the
    form shown once more from its own post (``/S/{CODE}/checkouts``), one
    level further down, with what was wrong."""
    low = format_display(open_amount.minimum, open_amount.currency)
    high = format_display(open_amount.maximum, open_amount.currency)
    alert = f'<p id="message" class="message" role="alert">{escape(problem)}</p>' if problem else ""
    action = "checkouts" if again else f"{code}/checkouts"
    hint = format_major(open_amount.minimum, open_amount.currency)
    body = f"""<main data-status="open_amount">
{_till(till)}
<form id="amount-form" method="post" action="{escape(action)}">
<label for="amount">Amount in {escape(open_amount.currency)}</label>
<input id="amount" name="amount" inputmode="decimal" autocomplete="off" required
 value="{escape(typed)}" placeholder="{escape(hint)}"
 aria-describedby="amount-hint">
<p id="amount-hint" class="muted">From {escape(low)} to {escape(high)}.</p>
{alert}
<div class="actions"><button type="submit" class="primary">Continue to pay</button></div>
</form>
</main>"""
    root = ROOT + ("../" if again else "")
    return page(title=f"Pay {till.merchant}, till {till.label}", body=body, root=root)


def render_nothing_yet(till: Till) -> str:
    body = f"""<main data-status="nothing_yet">
{_till(till)}
<p class="status status-pending" id="status" role="status">Nothing to pay at this till yet</p>
<p id="advice">When the cashier has rung up your purchase, this page shows it by itself.</p>
<noscript><p>Reload this page once the cashier has rung up your purchase.</p></noscript>
</main>"""
    return page(
        title=f"Nothing to pay yet at {till.merchant}, till {till.label}",
        body=body,
        root=ROOT,
        scripts=("waiting.js",),
        data={"poll_ms": POLL_SECONDS * 1000},
    )


def render_revoked(till: Till) -> str:
    body = f"""<main data-status="revoked">
{_till(till)}
<p class="status status-cancelled" id="status" role="status">This code is no longer valid</p>
<p id="advice">The merchant has revoked this printed code. Do not pay through it:
ask at the till for the current one.</p>
</main>"""
    return page(title="This code was revoked", body=body, root=ROOT)


def render_unknown() -> str:
    body = """<main data-status="unknown">
<h1>Unknown code</h1>
<p class="status status-unknown" id="status" role="status">This till code does not exist.</p>
<p>Do not pay through it. Ask at the till.</p>
</main>"""
    return page(title="Unknown code", body=body, root=ROOT)
