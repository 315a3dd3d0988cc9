// The QR landing page: the expiry countdown, the demo wallet, and a reload
// when the checkout's status changes under the page (paid elsewhere,
// cancelled at the till, expired). No framework: the page must load fast on
// a phone and work from the PSP alone.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const TOKEN_KEY = "scan2pay.wallet_token";
  const receiptKey = "scan2pay.receipt." + data.code;
  const attemptKey = "scan2pay.attempt." + data.code;
  // The API is beside /Q/ (and a till's printed code, /S/), wherever the
  // PSP is mounted.
  const apiRoot = location.pathname.replace(/\/[QS]\/[^/]*$/, "");
  // The checkout's own page: a till's printed code shows the till's
  // checkout only while it is pending, so its outcome is read from here.
  const checkoutPage = apiRoot + "/Q/" + data.code;
  // The server's clock decides expiry; the phone's may be off.
  const skew = data.server_now_ms - Date.now();
  const $ = (id) => document.getElementById(id);

  function say(text, isError) {
    const message = $("message");
    if (!message) return;
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function showReceipt(receipt) {
    $("receipt-merchant").textContent = receipt.merchant;
    $("receipt-amount").textContent = receipt.amount_text;
    $("receipt-payment").textContent = receipt.payment_id;
    const time = $("receipt-time");
    time.dateTime = receipt.paid_at;
    time.textContent = new Date(receipt.paid_at).toLocaleString();
    $("receipt").hidden = false;
  }

  function showPaid(receipt) {
    stopTimers();
    const status = $("status");
    status.textContent = "Paid";
    status.className = "status status-paid";
    const wallet = $("wallet");
    if (wallet) wallet.hidden = true;
    const countdown = $("countdown");
    if (countdown) countdown.parentElement.hidden = true;
    document.title = "Paid: " + data.amount_text + " to " + data.merchant;
    showReceipt(receipt);
    const shown = $("receipt");
    shown.tabIndex = -1; // focusable, so that a screen reader reads the receipt next
    shown.focus();
  }

  // A retry of the same attempt reuses its key, so that a lost answer can
  // never pay twice (the PSP replays the first answer).
  function attemptId() {
    let id = sessionStorage.getItem(attemptKey);
    if (!id) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(attemptKey, id);
    }
    return id;
  }

  function askForToken() {
    $("pay").hidden = true;
    $("token-form").hidden = false;
    $("token").focus();
  }

  async function pay() {
    const token = localStorage.getItem(TOKEN_KEY);
    if (!token) {
      askForToken();
      return;
    }
    const button = $("pay");
    button.disabled = true;
    say("Paying…");
    let response;
    let body = {};
    try {
      response = await fetch(apiRoot + "/v1/payments", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Authorization": "Bearer " + token,
          "Idempotency-Key": attemptId(),
        },
        body: JSON.stringify({ code: data.code }),
      });
      body = await response.json().catch(() => ({}));
    } catch (err) {
      button.disabled = false;
      say("Could not reach the payment service. Check the connection and try again.", true);
      return;
    }
    button.disabled = false;
    if (response.ok) {
      const receipt = {
        merchant: data.merchant,
        amount_text: data.amount_text,
        payment_id: body.id,
        paid_at: body.paid_at,
      };
      sessionStorage.setItem(receiptKey, JSON.stringify(receipt));
      sessionStorage.removeItem(attemptKey);
      say("");
      showPaid(receipt);
      return;
    }
    sessionStorage.removeItem(attemptKey);
    const error = body.error || {};
    if (response.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      $("forget").hidden = true;
      say("The wallet did not accept that token. Enter it again.", true);
      askForToken();
      return;
    }
    say(error.message ? "Not paid: " + error.message + "." : "Not paid (error " + response.status + ").", true);
    if (response.status === 409 || response.status === 410) checkStatus();
  }

  let timers = [];
  function stopTimers() {
    timers.forEach(clearInterval);
    timers = [];
  }

  async function checkStatus() {
    try {
      const response = await fetch(checkoutPage, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const now = await response.json();
      if (now.status !== data.status && !sessionStorage.getItem(receiptKey)) {
        location.replace(checkoutPage);
      }
    } catch (err) {
      /* offline for a moment: the next poll tries again */
    }
  }

  let ticking = null;
  function tick() {
    const left = Math.max(0, Math.ceil((data.expires_at_ms - (Date.now() + skew)) / 1000));
    const countdown = $("countdown");
    if (countdown) countdown.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    if (left === 0 && ticking !== null) {
      // The PSP says "expired" from its own clock; ask it now and again soon.
      clearInterval(ticking);
      ticking = null;
      checkStatus();
      setTimeout(checkStatus, 500);
    }
  }

  const saved = sessionStorage.getItem(receiptKey);
  if (saved) {
    showPaid(JSON.parse(saved));
    return;
  }
  if (data.status !== "pending") return;

  $("pay").addEventListener("click", pay);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("token-form").hidden = true;
    $("pay").hidden = false;
    $("forget").hidden = false;
    $("pay").focus();
    pay();
  });
  $("forget").hidden = !localStorage.getItem(TOKEN_KEY);
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    $("forget").hidden = true;
    say("This browser no longer keeps the wallet token.");
  });
  ticking = setInterval(tick, 1000);
  timers.push(ticking);
  tick();
  timers.push(setInterval(checkStatus, 3000));
})();
