"""The board's page of printed till codes (``/merchant/static-codes``): every
code of the merchant with its till, label and short id, links to print its
sticker, a button to revoke it, and a form to make one (docs/static-qr.md)."""

from __future__ import annotations

from html import escape

from psp_server.core.static_codes import StaticCode
from psp_server.web.layout import notice_and_error, page
from scan2pay_common.money import format_display
from scan2pay_common.timefmt import to_rfc3339

FORMATS = ("png", "svg", "pdf")


def _amounts(code: StaticCode) -> str:
    amounts = code.open_amount
    if amounts is None:
        return "Only the till's checkout"
    low = format_display(amounts.minimum, amounts.currency)
    high = format_display(amounts.maximum, amounts.currency)
    return f"Typed, {low} to {high}"


def _row(code: StaticCode, root: str, csrf: str) -> str:
    label = escape(code.label)
    if code.revoked:
        when = escape(to_rfc3339(code.revoked_at or 0))
        state = f'<span class="pill status-cancelled">Revoked</span> <time>{when}</time>'
        actions = ""
    else:
        state = '<span class="pill status-paid">In use</span>'
        links = " ".join(
            f'<a class="button small" href="{root}merchant/static-codes/{escape(code.id)}'
            f'/sticker.{fmt}" target="_blank" rel="noopener">{fmt.upper()}</a>'
            for fmt in FORMATS
        )
        actions = (
            f'{links} <form method="post" action="{root}merchant/static-codes/'
            f'{escape(code.id)}/revoke" class="inline">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<button type="submit" class="small danger" aria-label="Revoke code {code.short_id}'
            f' of till {label}">Revoke</button></form>'
        )
    return (
        f'<tr data-id="{escape(code.id)}"><th scope="row">{escape(code.terminal_id)}</th>'
        f"<td>{label}</td><td><code>{code.short_id}</code></td><td>{escape(_amounts(code))}</td>"
        f"<td>{state}</td><td>{actions}</td></tr>"
    )


def static_codes(
    *,
    root: str,
    merchant: str,
    csrf: str,
    codes: list[StaticCode],
    error: str = "",
    notice: str = "",
) -> str:
    rows = "\n".join(_row(code, root, csrf) for code in codes)
    said = notice_and_error(notice, error, error_id="error")
    table = (
        f"""<div class="table-scroll" role="region" aria-labelledby="codes-title" tabindex="0">
<table id="codes">
<caption>Newest first. A revoked code's page says so; print the new one at once.</caption>
<thead><tr><th scope="col">Till</th><th scope="col">Label</th><th scope="col">Short id</th>
<th scope="col">Amounts</th><th scope="col">State</th>
<th scope="col">Sticker</th></tr></thead>
<tbody id="codes-body">
{rows}
</tbody>
</table>
</div>"""
        if codes
        else '<p id="no-codes" class="muted">No printed codes yet.</p>'
    )
    body = f"""<main class="wide">
<p><a href="{root}merchant">Back to the board</a></p>
<h1>Printed till codes of {escape(merchant)}</h1>
<p>A printed code stays on the counter for years. Compare the short id on the
sticker with the one the till's terminal shows after a payment; if they differ,
or the sticker looks tampered with, revoke the code here and print a new one.</p>
{said}<section>
<h2 id="codes-title">Codes</h2>
{table}
</section>
<section>
<h2 id="new-title">New code</h2>
<form method="post" action="{root}merchant/static-codes" class="card" aria-labelledby="new-title">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<label for="terminal">Terminal id</label>
<input id="terminal" name="terminal" required maxlength="64" spellcheck="false">
<label for="label">Till label on the sticker</label>
<input id="label" name="label" maxlength="40">
<label for="currency">Let customers type an amount in (leave empty if not)</label>
<input id="currency" name="currency" maxlength="3" placeholder="EUR" spellcheck="false">
<label for="min">From</label>
<input id="min" name="min" inputmode="decimal" placeholder="1.00">
<label for="max">To</label>
<input id="max" name="max" inputmode="decimal" placeholder="50.00">
<div class="actions"><button type="submit" class="primary">Make the code</button></div>
</form>
</section>
</main>"""
    return page(title=f"Printed till codes: {merchant}", body=body, root=root)
