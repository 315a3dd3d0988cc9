"""``/pay``: the page where a person gives a payment code as text (a link,
or an EMV payload a banking app or a phone's scanner app shows as text),
and goes on to its payment page (docs/web.md). A form that posts itself:
no script. A refusal is the form again with the reason, the text kept so
that it can be corrected."""

from __future__ import annotations

from html import escape

from psp_server.web.layout import page

# Served from /pay: the assets are at the same level.
ROOT = ""


def render(*, public_url: str, problem: str | None = None, typed: str = "") -> str:
    """The form; ``problem``, what was wrong with ``typed`` (text from
    outside, already cut to a bounded length by the caller)."""
    example = escape(f"{public_url.rstrip('/')}/Q/…")
    described = "code-hint message" if problem else "code-hint"
    invalid = ' aria-invalid="true"' if problem else ""
    alert = (
        f'<p id="message" class="message error" role="alert">{escape(_sentence(problem))}</p>'
        if problem
        else ""
    )
    body = f"""<main data-status="{"refused" if problem else "form"}">
<h1>Pay with a payment code</h1>
<p>Paste the link or the text of the payment code that the checkout's display,
a banking app or your phone's scanner gave you.</p>
<form id="code-form" method="post" action="pay">
<label for="code">Payment link or code</label>
<textarea id="code" name="code" rows="5" required spellcheck="false" autocomplete="off"
 autocapitalize="off" aria-describedby="{described}"{invalid}>{escape(typed)}</textarea>
<p id="code-hint" class="muted">A link like <code>{example}</code>, or a code that
starts with <code>000201</code>.</p>
{alert}
<div class="actions"><button type="submit" class="primary">Continue to pay</button></div>
</form>
</main>"""
    title = "Payment code not accepted" if problem else "Pay with a payment code"
    return page(title=title, body=body, root=ROOT)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
