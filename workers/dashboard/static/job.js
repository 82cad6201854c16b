/* The job page's requeue and revoke buttons: POST to the API with the CSRF token, then reload. */
(function () {
  "use strict";
  const root = document.getElementById("job");
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const status = document.getElementById("action-status");
  for (const button of root.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const url = `/api/jobs/${encodeURIComponent(root.dataset.jobId)}/${button.dataset.action}`;
      const response = await fetch(url, { method: "POST", credentials: "same-origin",
                                          headers: { "X-CSRF-Token": csrf, Accept: "application/json" } });
      const body = await response.json();
      status.textContent = response.ok ? body.outcome : body.error;
      if (response.ok) setTimeout(() => location.reload(), 800);
    });
  }
})();
