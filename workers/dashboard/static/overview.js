/* The live overview: every few seconds, read /api/queues, /api/stats and /api/failed and redraw.
 * Data goes into the page as text only (textContent), never as markup. */
(function () {
  "use strict";
  const root = document.getElementById("overview");
  const refreshMs = parseInt(root.dataset.refreshMs, 10) || 3000;
  const rqPrefix = root.dataset.rqPrefix;
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const HISTORY = 60;  // samples of queue depth and workers kept in the page
  const depth = {};
  const workers = { busy: [], total: [] };

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      location.href = "/login?next=/";
      throw new Error("logged out");
    }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  async function post(url) {
    const response = await fetch(url, { method: "POST", credentials: "same-origin",
                                        headers: { "X-CSRF-Token": csrf, Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function cell(row, value, cls) {
    const td = document.createElement("td");
    if (value instanceof Node) td.appendChild(value); else td.textContent = value == null ? "–" : String(value);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = String(text);
    return a;
  }

  function rqJobs(queue, registry) {
    return `${rqPrefix}/0/view/jobs/${encodeURIComponent(queue)}/${registry}/8/asc/1`;
  }

  function age(seconds) {
    if (seconds == null) return "–";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function duration(seconds) {
    if (seconds == null) return "–";
    return seconds < 1 ? `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms` : `${seconds.toFixed(2)} s`;
  }

  function clock(epochSeconds) {
    return new Date(epochSeconds * 1000).toTimeString().slice(0, 5);
  }

  function renderQueues(queues) {
    const body = document.querySelector("#queues tbody");
    body.replaceChildren();
    if (!queues.length) {
      cell(body.insertRow(), "no queues yet").colSpan = 11;
      return;
    }
    for (const q of queues) {
      const row = body.insertRow();
      row.dataset.queue = q.name;
      const name = link(rqJobs(q.name, "queued"), q.name);
      const nameCell = cell(row, name);
      if (q.paused) nameCell.appendChild(Object.assign(document.createElement("span"), { className: "tag", textContent: "paused" }));
      cell(row, link(rqJobs(q.name, "queued"), q.counts.waiting), "num");
      cell(row, link(rqJobs(q.name, "scheduled"), q.counts.scheduled), "num");
      cell(row, link(rqJobs(q.name, "started"), q.counts.started), "num");
      cell(row, link(rqJobs(q.name, "finished"), q.counts.finished), "num");
      cell(row, link(rqJobs(q.name, "failed"), q.counts.failed), q.counts.failed ? "num bad" : "num");
      cell(row, link(rqJobs(q.name, "deferred"), q.counts.deferred), "num");
      cell(row, `${q.workers} (${q.workers_busy})`, "num");
      cell(row, age(q.oldest_age_s), "num");
      cell(row, `${q.completed_last_minute} / ${q.failed_last_minute}`, "num");
      const button = document.createElement("button");
      button.textContent = q.paused ? "Resume" : "Pause";
      button.addEventListener("click", () => {
        post(`/api/queues/${encodeURIComponent(q.name)}/${q.paused ? "resume" : "pause"}`).then(refreshOnce, showError);
      });
      cell(row, button);
    }
  }

  function renderFailures(jobs) {
    const body = document.querySelector("#failures tbody");
    body.replaceChildren();
    if (!jobs.length) {
      cell(body.insertRow(), "no failed jobs").colSpan = 6;
      return;
    }
    for (const job of jobs) {
      const row = body.insertRow();
      cell(row, link(`/jobs/${encodeURIComponent(job.id)}`, job.id.slice(0, 12)), "mono");
      cell(row, job.task, "mono");
      const args = JSON.stringify(job.args).slice(1, -1);
      const kwargs = Object.entries(job.kwargs).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
      cell(row, [args, kwargs].filter(Boolean).join(", "), "mono args");
      cell(row, `${job.exc_type}: ${job.message}`);
      const when = new Date(job.failed_at);
      cell(row, isNaN(when) ? job.failed_at : when.toLocaleString());
      const button = document.createElement("button");
      button.textContent = "Requeue";
      button.addEventListener("click", () => post(`/api/jobs/${encodeURIComponent(job.id)}/requeue`).then(refreshOnce, showError));
      cell(row, button);
    }
  }

  function remember(series, value) {
    series.push(value);
    if (series.length > HISTORY) series.shift();
  }

  function renderCharts(queues, stats) {
    const minutes = stats.rates.minutes;
    const xLabels = minutes.length ? [clock(minutes[0]), clock(minutes[minutes.length - 1])] : null;
    const names = Object.keys(stats.rates.queues);
    const rate = (kind) => names.map((q) => ({ name: q, values: stats.rates.queues[q][kind] }));
    Charts.line(document.getElementById("chart-completed"), rate("completed"), { xLabels: xLabels });
    Charts.line(document.getElementById("chart-failed"), rate("failed"), { xLabels: xLabels });
    for (const q of queues) remember(depth[q.name] = depth[q.name] || [], q.counts.waiting);
    const sampled = `last ${Math.round((HISTORY * refreshMs) / 60000)} min`;
    Charts.line(document.getElementById("chart-depth"),
                Object.keys(depth).map((q) => ({ name: q, values: depth[q] })), { xLabels: [sampled, "now"] });
    remember(workers.busy, stats.workers.busy);
    remember(workers.total, stats.workers.total);
    Charts.line(document.getElementById("chart-workers"),
                [{ name: "busy", values: workers.busy }, { name: "total", values: workers.total }],
                { xLabels: [sampled, "now"] });
    Charts.bars(document.getElementById("chart-durations"),
                stats.durations.map((d) => ({ label: d.task, values: [d.p50_s, d.p95_s] })), ["p50", "p95"],
                { format: duration, emptyText: "no finished jobs yet" });
  }

  function showError(error) {
    document.getElementById("status").textContent = `error: ${error.message}`;
  }

  async function refreshOnce() {
    const [queues, stats, failed] = await Promise.all([
      getJSON("/api/queues"), getJSON("/api/stats"), getJSON("/api/failed?limit=10"),
    ]);
    renderQueues(queues.queues);
    renderFailures(failed.jobs);
    renderCharts(queues.queues, stats);
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  async function loop() {
    try {
      await refreshOnce();
    } catch (error) {
      showError(error);
    }
    setTimeout(loop, refreshMs);
  }

  document.getElementById("open-job").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = document.getElementById("job-id").value.trim();
    if (id) location.href = `/jobs/${encodeURIComponent(id)}`;
  });
  loop();
})();
