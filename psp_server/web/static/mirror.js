// The demo's display mirror (/demo): the terminal's frames as the server
// sends them (server-sent events), a link to pay the QR on screen, a form
// that starts a checkout, and the demo wallet lent to this browser.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const TOKEN_KEY = "scan2pay.wallet_token";
  const $ = (id) => document.getElementById(id);

  function sentence(frame) {
    return "Terminal " + data.terminal_id + " shows " + frame.text;
  }

  // The words and the link follow a new screen at once; the picture is
  // swapped once the next one has loaded, so that it never goes blank.
  let loading = false;
  let waiting = null;

  function showFrame(frame) {
    const status = $("screen-status");
    // Set only when it changes: the status is a live region, read aloud.
    if (status.textContent !== sentence(frame)) status.textContent = sentence(frame);
    const link = $("pay-link");
    if (frame.qr_url) link.href = frame.qr_url;
    $("pay-row").hidden = !frame.qr_url;
    waiting = frame;
    if (!loading) loadNext();
  }

  function loadNext() {
    const frame = waiting;
    waiting = null;
    if (!frame) return;
    loading = true;
    const next = new Image();
    next.onload = () => {
      const current = $("screen");
      next.id = "screen";
      next.className = current.className;
      next.width = current.width;
      next.height = current.height;
      next.alt = sentence(frame);
      next.dataset.n = String(frame.n);
      next.dataset.kind = frame.kind || "";
      current.replaceWith(next);
      loading = false;
      loadNext();
    };
    next.onerror = () => {
      // The demo stopped or the frame is gone; the next message brings another.
      loading = false;
      loadNext();
    };
    next.src = "demo/display.png?n=" + frame.n;
  }

  function showCheckout(run) {
    if (run) $("checkout-state").textContent = run.text;
  }

  // EventSource reconnects by itself after a dropped stream; an answer it
  // cannot take (the demo stopping: 503) closes it for good, so then this
  // page opens a new one, waiting longer each time.
  let source = null;
  let delay = 1000;

  function live(text) {
    $("live").textContent = text;
  }

  function connect() {
    source = new EventSource("demo/stream");
    source.onopen = () => {
      delay = 1000;
      live("Live: the picture follows the terminal.");
    };
    source.onmessage = (event) => showFrame(JSON.parse(event.data));
    source.addEventListener("checkout", (event) => showCheckout(JSON.parse(event.data)));
    source.onerror = () => {
      live("Lost the connection to the demo; reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 15000);
      }
    };
  }

  const form = $("checkout-form");
  const amount = $("amount");

  function refuse(text) {
    const error = $("checkout-error");
    error.textContent = text;
    error.classList.toggle("error", Boolean(text));
    if (text) {
      amount.setAttribute("aria-invalid", "true");
      amount.focus();
    } else {
      amount.removeAttribute("aria-invalid");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    refuse("");
    let response;
    let body = {};
    try {
      response = await fetch("demo/checkouts", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-Demo-Token": data.demo_token,
        },
        body: JSON.stringify({ amount: amount.value.trim() }),
      });
      body = await response.json().catch(() => ({}));
    } catch (err) {
      button.disabled = false;
      refuse("Could not reach the demo. Is it still running?");
      return;
    }
    button.disabled = false;
    if (response.ok) {
      showCheckout(body);
      return;
    }
    const error = body.error || {};
    refuse("Not started: " + (error.message || "error " + response.status) + ".");
  });

  function walletInUse() {
    return localStorage.getItem(TOKEN_KEY) === data.wallet_token;
  }

  $("use-wallet").addEventListener("click", () => {
    localStorage.setItem(TOKEN_KEY, data.wallet_token);
    $("wallet-message").textContent =
      "This browser now pays with " + data.wallet_name + "'s demo wallet: the payment page will not ask for a token.";
  });
  if (walletInUse()) {
    $("wallet-message").textContent = "This browser already pays with " + data.wallet_name + "'s demo wallet.";
  }

  connect();
})();
