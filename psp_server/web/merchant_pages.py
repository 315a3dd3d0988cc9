"""The merchant's pages as HTML: the sign-in form, the board's frame (its
rows come from the stream, drawn by ``static/board.js``), and the page of a
refused request. ``root`` is the way back to the application's root from
the page's URL, so that the pages work under a proxy's path prefix."""

from __future__ import annotations

from html import escape

from psp_server.web.layout import notice_and_error, page


def sign_in(
    *, root: str, form_token: str, error: str = "", notice: str = "", then: str = ""
) -> str:
    """``then``: a pairing code to go on to (``merchant_routes.pairing_code``)."""
    invalid = ' aria-invalid="true" aria-errormessage="signin-error"' if error else ""
    said = notice_and_error(notice, error, error_id="signin-error")
    described = "key-hint signin-error" if error else "key-hint"
    hidden_then = f'<input type="hidden" name="then" value="{escape(then)}">\n' if then else ""
    body = f"""<main>
<h1>Merchant sign-in</h1>
<p>Sign in with your merchant key to watch today's checkouts as they happen.</p>
{said}<form method="post" action="{root}merchant/sign-in" class="card">
<input type="hidden" name="csrf" value="{escape(form_token)}">
{hidden_then}<label for="key">Merchant key</label>
<input id="key" name="key" type="password" autocomplete="current-password" spellcheck="false"
 required aria-describedby="{described}"{invalid}>
<p id="key-hint" class="muted">It starts with <code>mk_</code>: the API key that
<code>psp-server merchant create</code> showed once.</p>
<div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>
</main>"""
    return page(title="Merchant sign-in", body=body, root=root)


def board(*, root: str, merchant: str, csrf: str) -> str:
    name = escape(merchant)
    body = f"""<header class="board-head">
<div class="bar">
<h1>{name}</h1>
<p id="live" class="live" role="status" data-state="connecting">Connecting…</p>
<a href="{root}merchant/pair" class="button small">Pair a terminal</a>
<a href="{root}merchant/static-codes" class="button small">Printed codes</a>
<form method="post" action="{root}merchant/sign-out" class="sign-out">
<input type="hidden" name="csrf" value="{escape(csrf)}">
<button type="submit" class="small">Sign out</button>
</form>
</div>
</header>
<main class="wide board">
<p id="board-message" class="message error" role="alert"></p>
<div class="board-top">
<!-- Each table's frame is the landmark: a phone scrolls it, by keyboard too. -->
<section>
<h2 id="totals-title">Today's totals</h2>
<div class="table-scroll" role="region" aria-labelledby="totals-title" tabindex="0">
<table id="totals">
<caption class="visually-hidden">Today's totals per currency</caption>
<thead><tr><th scope="col">Currency</th><th scope="col" class="num">Paid, net</th>
<th scope="col" class="num">Pending</th><th scope="col" class="num">Cancelled</th>
<th scope="col" class="num">Expired</th><th scope="col" class="num">Refunded</th></tr></thead>
<tbody id="totals-body"></tbody>
</table>
</div>
<p id="no-totals" class="muted">Nothing yet today.</p>
</section>
<section aria-labelledby="terminals-title">
<h2 id="terminals-title">Terminals</h2>
<p id="terminals-note" class="muted"></p>
<ul id="terminals" class="terminals"></ul>
</section>
</div>
<section>
<h2 id="checkouts-title">Today's checkouts</h2>
<div class="table-scroll" role="region" aria-labelledby="checkouts-title" tabindex="0">
<table id="checkouts">
<caption>Newest first; the list follows the payments live.</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Order</th>
<th scope="col" class="terminal">Terminal</th><th scope="col" class="num">Amount</th>
<th scope="col">Status</th><th scope="col"><span class="visually-hidden">Action</span></th>
</tr></thead>
<tbody id="rows"></tbody>
</table>
</div>
<p id="no-rows" class="muted">No checkouts yet today.</p>
</section>
<div id="announcer" class="visually-hidden" aria-live="polite"></div>
<noscript><p>The board needs JavaScript to show the checkouts live.</p></noscript>
</main>"""
    return page(
        title=f"Today's checkouts: {merchant}",
        body=body,
        root=root,
        scripts=("board.js",),
        data={"merchant": merchant, "csrf": csrf},
    )


def refused(*, root: str, title: str, message: str) -> str:
    body = f"""<main>
<h1>{escape(title)}</h1>
<p class="message error" role="alert">{escape(message)}</p>
<p><a href="{root}merchant">Back to the merchant board</a></p>
</main>"""
    return page(title=title, body=body, root=root)
