// The merchant's live board: today's checkouts, totals per currency and
// the terminals, kept up to date from the PSP's event stream
// (GET merchant/stream, server-sent events) without a reload. Data goes
// into the page as text only (textContent), never as markup.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const $ = (id) => document.getElementById(id);
  const FINAL = new Set(["paid", "cancelled", "expired"]);
  const STATUS_TEXT = {
    pending: "Pending",
    paid: "Paid",
    cancelled: "Cancelled",
    expired: "Expired",
  };
  const SCREEN_TEXT = {
    idle: "idle",
    qr: "showing a QR code",
    paid: "showing “Paid”",
    cancelled: "showing “Cancelled”",
    expired: "showing “Expired”",
    refunded: "showing “Refunded”",
    offline: "offline",
    error: "showing an error",
    display_error: "online, its display failing",
  };
  const shown = new Map(); // checkout id -> the row as last drawn
  const lines = new Map(); // checkout id -> its <tr>
  let source = null;
  let since = 0;
  let retryTimer = null;
  let signedOut = false;

  function localMidnight() {
    const day = new Date();
    day.setHours(0, 0, 0, 0);
    return day.getTime();
  }

  function setLive(state, text) {
    const live = $("live");
    live.dataset.state = state;
    live.textContent = text;
  }

  function announce(text) {
    const announcer = $("announcer");
    // A new node each time, so that the same words twice are read twice.
    const line = document.createElement("p");
    line.textContent = text;
    announcer.replaceChildren(line);
  }

  function say(text) {
    $("board-message").textContent = text;
  }

  // Rows may arrive more than once and out of order (the stream resends,
  // a cancel answers too): a final status beats pending, and a larger
  // refunded amount a smaller one, so nothing ever steps back.
  function supersedes(old, row) {
    if (!old) return true;
    if (FINAL.has(old.status)) {
      return row.status === old.status && row.refunded_amount > old.refunded_amount;
    }
    return row.status !== old.status || row.refunded_amount > old.refunded_amount;
  }

  function newerFirst(a, b) {
    if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function cancelForm(row) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = "merchant/checkouts/" + encodeURIComponent(row.id) + "/cancel";
    form.className = "cancel";
    const csrf = document.createElement("input");
    csrf.type = "hidden";
    csrf.name = "csrf";
    csrf.value = data.csrf;
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "small danger";
    button.textContent = "Cancel";
    button.setAttribute("aria-label", "Cancel order " + row.order_id);
    form.append(csrf, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      cancel(form, row);
    });
    return form;
  }

  // The till, and for an amount a customer typed at a printed till code,
  // that code's short id: the sticker it came through.
  function terminalText(row) {
    const till = row.terminal_id || "—";
    return row.source === "static" ? till + " · static QR " + row.static_short_id : till;
  }

  function fillLine(tr, row) {
    const time = document.createElement("time");
    time.dateTime = row.created_at;
    time.textContent = new Date(row.created_at).toLocaleTimeString();
    const when = document.createElement("td");
    when.append(time);
    const order = document.createElement("th");
    order.scope = "row";
    order.textContent = row.order_id;
    let amount = row.amount_text;
    if (row.refunded_amount > 0) amount += " (" + row.refunded_text + " refunded)";
    const status = cell(STATUS_TEXT[row.status] || row.status, "pill status-" + row.status);
    status.tabIndex = -1; // where the focus goes when the row's Cancel button goes away
    const action = document.createElement("td");
    if (row.status === "pending") action.append(cancelForm(row));
    tr.dataset.status = row.status;
    tr.replaceChildren(
      when,
      order,
      cell(terminalText(row), "terminal"),
      cell(amount, "num"),
      status,
      action,
    );
  }

  function placeLine(tr, row) {
    // Existing lines never move (a line that holds the focus would lose
    // it): a new one goes before the first line older than it.
    const body = $("rows");
    for (const other of body.children) {
      if (newerFirst(row, shown.get(other.dataset.id)) < 0) {
        body.insertBefore(tr, other);
        return;
      }
    }
    body.append(tr);
  }

  function describe(row) {
    if (row.status === "paid" && row.refunded_amount > 0) {
      return "Order " + row.order_id + " refunded " + row.refunded_text;
    }
    return "Order " + row.order_id + " " + (STATUS_TEXT[row.status] || row.status).toLowerCase();
  }

  function merge(row, quietly) {
    const old = shown.get(row.id);
    if (!supersedes(old, row)) return;
    shown.set(row.id, row);
    let tr = lines.get(row.id);
    const hadFocus = tr && tr.contains(document.activeElement);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = row.id;
      lines.set(row.id, tr);
      fillLine(tr, row);
      placeLine(tr, row);
    } else {
      fillLine(tr, row);
    }
    if (hadFocus) tr.querySelector(".pill").focus();
    $("no-rows").hidden = true;
    if (quietly) return;
    if (!old) {
      const through = row.source === "static" ? " at printed code " + row.static_short_id : "";
      announce("New checkout: order " + row.order_id + ", " + row.amount_text + through);
    } else {
      announce(describe(row));
    }
  }

  function drawTotals(totals) {
    const body = $("totals-body");
    const made = totals.map((total) => {
      const tr = document.createElement("tr");
      tr.dataset.currency = total.currency;
      const currency = document.createElement("th");
      currency.scope = "row";
      currency.textContent = total.currency;
      // Nothing is "0": the columns stay narrow enough for a phone.
      const withCount = (part) => (part.count ? part.text + " (" + part.count + ")" : "0");
      const money = (part) => (part.amount ? part.text : "0");
      tr.append(
        currency,
        cell(withCount(total.paid), "num paid"),
        cell(withCount(total.pending), "num pending"),
        cell(withCount(total.cancelled), "num cancelled"),
        cell(withCount(total.expired), "num expired"),
        cell(money(total.refunded), "num refunded"),
      );
      return tr;
    });
    body.replaceChildren(...made);
    $("no-totals").hidden = made.length > 0;
    $("totals").hidden = made.length === 0;
  }

  function orderOf(checkoutId) {
    const row = checkoutId && shown.get(checkoutId);
    return row ? " for order " + row.order_id : "";
  }

  function drawTerminals(info) {
    const note = $("terminals-note");
    const list = $("terminals");
    if (info.unknown === "no_broker") {
      note.textContent = "Terminal status unknown: this PSP runs without an MQTT broker.";
    } else if (info.unknown) {
      note.textContent = "Terminal status unknown: the PSP is not connected to its MQTT broker now.";
    } else if (info.terminals.length === 0) {
      note.textContent = "No terminal has reported its state yet.";
    } else {
      note.textContent = "";
    }
    note.hidden = note.textContent === "";
    const items = info.unknown ? [] : info.terminals.map((terminal) => {
      const li = document.createElement("li");
      li.dataset.terminal = terminal.terminal_id;
      li.dataset.online = String(terminal.online);
      const name = document.createElement("span");
      name.className = "terminal-name";
      name.textContent = terminal.terminal_id;
      const state = document.createElement("span");
      state.className = "pill " + (terminal.online ? "online" : "offline");
      state.textContent = terminal.online ? "Online" : "Offline";
      const detail = document.createElement("span");
      detail.className = "muted";
      const since = new Date(terminal.since).toLocaleTimeString();
      detail.textContent = terminal.online
        ? (SCREEN_TEXT[terminal.screen] || terminal.screen) + orderOf(terminal.checkout_id) + ", since " + since
        : "since " + since;
      li.append(name, " ", state, " ", detail);
      return li;
    });
    list.replaceChildren(...items);
  }

  function onSnapshot(message) {
    const snapshot = JSON.parse(message.data);
    const first = shown.size === 0;
    if (!first) {
      // A reconnect: the snapshot is the truth of now, merged like any row.
      snapshot.rows.forEach((row) => merge(row, false));
    } else {
      snapshot.rows.forEach((row) => merge(row, true));
    }
    $("no-rows").hidden = shown.size > 0;
    drawTotals(snapshot.totals);
    drawTerminals(snapshot.terminals);
    setLive("live", "Live");
  }

  function onRows(message) {
    const change = JSON.parse(message.data);
    change.rows.forEach((row) => merge(row, false));
    drawTotals(change.totals);
  }

  function onTerminals(message) {
    drawTerminals(JSON.parse(message.data));
  }

  async function sessionHolds() {
    try {
      const response = await fetch("merchant/session", { headers: { Accept: "application/json" } });
      return response.status !== 401;
    } catch (err) {
      return true; // the network, not the session: keep trying
    }
  }

  function showSignedOut() {
    signedOut = true;
    setLive("off", "Signed out");
    say("Your session has ended. Reload the page to sign in again.");
    document.querySelectorAll("form.cancel button").forEach((button) => {
      button.disabled = true;
    });
  }

  function connect() {
    if (source) source.close();
    clearTimeout(retryTimer);
    since = localMidnight();
    source = new EventSource("merchant/stream?since=" + since);
    source.addEventListener("snapshot", onSnapshot);
    source.addEventListener("rows", onRows);
    source.addEventListener("terminals", onTerminals);
    // The key was rotated or revoked, or the session ran out.
    source.addEventListener("signed_out", () => {
      source.close();
      showSignedOut();
    });
    source.addEventListener("error", async () => {
      setLive("reconnecting", "Reconnecting…");
      // The browser retries by itself unless the PSP answered with an
      // error (a stream refused): then ask why, and try again later.
      if (source.readyState !== EventSource.CLOSED) return;
      if (!(await sessionHolds())) {
        showSignedOut();
        return;
      }
      retryTimer = setTimeout(connect, 3000);
    });
  }

  function startOver() {
    // A new day: yesterday's rows and totals are not today's.
    shown.clear();
    lines.clear();
    $("rows").replaceChildren();
    $("no-rows").hidden = false;
    connect();
  }

  async function cancel(form, row) {
    const button = form.querySelector("button");
    // Busy, not disabled: a disabled button drops the keyboard focus,
    // which should stay in the row (merge moves it to the new status).
    if (form.dataset.busy) return;
    form.dataset.busy = "yes";
    button.setAttribute("aria-disabled", "true");
    const done = () => {
      delete form.dataset.busy;
      button.removeAttribute("aria-disabled");
    };
    say("");
    let response;
    let body = {};
    try {
      response = await fetch(form.action, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(form)),
      });
      body = await response.json().catch(() => ({}));
    } catch (err) {
      done();
      say("Could not reach the PSP; order " + row.order_id + " was not cancelled. Try again.");
      return;
    }
    if (response.ok) {
      merge(body.row, false);
      return;
    }
    if (response.status === 401) {
      showSignedOut();
      return;
    }
    done();
    const error = body.error || {};
    say("Order " + row.order_id + " was not cancelled: " + (error.message || "error " + response.status) + ".");
  }

  connect();
  // Past midnight the board turns to the new day.
  setInterval(() => {
    if (!signedOut && localMidnight() !== since) startOver();
  }, 60000);
})();
