// Refresh the fleet dashboard's table in place: every few seconds fetch the server-rendered
// table (same filters as the page) and swap it in. No reload, no build step.
(function () {
  "use strict";

  const container = document.getElementById("fleet-table");
  const status = document.getElementById("fleet-refresh-status");
  if (!container || !status) {
    return;
  }
  const url = container.dataset.refreshUrl + window.location.search;
  const delay = Number(container.dataset.refreshSeconds) * 1000;
  if (!(delay > 0)) {
    return;
  }

  async function refresh() {
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      });
      if (response.redirected) {
        // The session ended: the whole page shows the login form.
        window.location.reload();
        return;
      }
      if (!response.headers.has("X-Fleet-Table")) {
        // Not our table (a proxy's error page, a 403 after a role change): keep the last one.
        status.textContent = "Refresh failed at " + new Date().toLocaleTimeString() +
          ": HTTP " + response.status + "; showing the last table.";
      } else {
        container.innerHTML = await response.text();
        status.textContent = "";
      }
    } catch (error) {
      status.textContent = "Refresh failed at " + new Date().toLocaleTimeString() +
        ": " + error.message + "; showing the last table.";
    }
    window.setTimeout(refresh, delay);
  }

  window.setTimeout(refresh, delay);
})();
