"""The board's pairing page as HTML: the form that approves a terminal's
code (filled in when the merchant came from the terminal's QR), and the
merchant's paired terminals, each with a button that unpairs it. Plain
forms, no script: the page works on any phone that scanned the QR."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from psp_server.web.layout import notice_and_error, page
from scan2pay_common.timefmt import to_rfc3339


@dataclass(frozen=True, slots=True)
class Listed:
    terminal_id: str
    paired_at: int
    collected: bool


def pair(
    *,
    root: str,
    merchant: str,
    merchant_id: str,
    csrf: str,
    terminals: list[Listed],
    code: str = "",
    terminal_id: str = "",
    error: str = "",
    notice: str = "",
) -> str:
    said = notice_and_error(notice, error, error_id="pair-error")
    invalid = ' aria-invalid="true" aria-errormessage="pair-error"' if error else ""
    body = f"""<main>
<p><a href="{root}merchant">Back to the board</a></p>
<h1>Pair a terminal</h1>
<p>A new terminal shows a code and a QR code. Enter the code, or scan the
QR with this phone, and give the terminal a name: it gets its settings
within seconds.</p>
{said}<form method="post" action="{root}merchant/pair" class="card">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="merchant" value="{escape(merchant_id)}">
<label for="code">Code on the terminal's screen</label>
<input id="code" name="code" value="{escape(code)}" autocomplete="off" autocapitalize="characters"
 spellcheck="false" required aria-describedby="code-hint"{invalid}>
<p id="code-hint" class="muted">Ten letters and digits, like <code>ABCD-EFGH-JK</code>;
a code lasts ten minutes and pairs one terminal.</p>
<label for="terminal">Terminal id</label>
<input id="terminal" name="terminal_id" value="{escape(terminal_id)}" autocomplete="off"
 spellcheck="false" required maxlength="64" aria-describedby="terminal-hint"{invalid}>
<p id="terminal-hint" class="muted">How your cashier PCs name this terminal, like
<code>lane-1</code>: letters, digits, <code>.</code>, <code>_</code> and <code>-</code>.</p>
<div class="actions"><button type="submit" class="primary">Pair this terminal</button></div>
</form>
<section aria-labelledby="paired-title">
<h2 id="paired-title">Paired terminals of {escape(merchant)}</h2>
{_listed(root, csrf, terminals)}
</section>
</main>"""
    return page(title=f"Pair a terminal: {merchant}", body=body, root=root)


def _listed(root: str, csrf: str, terminals: list[Listed]) -> str:
    if not terminals:
        return '<p id="no-paired" class="muted">None yet.</p>'
    items = []
    for terminal in terminals:
        name = escape(terminal.terminal_id)
        state = "paired" if terminal.collected else "paired, collecting its settings"
        items.append(
            f"""<li class="card"><strong>{name}</strong>
<span class="muted">{state} since {escape(to_rfc3339(terminal.paired_at))}</span>
<form method="post" action="{root}merchant/pair/unpair">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<input type="hidden" name="terminal_id" value="{name}">
<button type="submit" class="small danger" aria-label="Unpair {name}">Unpair</button>
</form></li>"""
        )
    return '<ul id="paired" class="paired">\n' + "\n".join(items) + "\n</ul>"
