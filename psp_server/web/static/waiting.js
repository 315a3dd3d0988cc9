// A printed till code's waiting page: asks the PSP every few seconds
// whether the till has a checkout now, and shows it when it does. A script
// rather than a meta refresh, which moves the page under a screen reader.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  async function ask() {
    try {
      const response = await fetch(location.pathname, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const now = await response.json();
      if (now.checkout || now.open_amount) location.reload();
    } catch (err) {
      /* offline for a moment: the next poll tries again */
    }
  }
  setInterval(ask, data.poll_ms);
})();
