/* Small dependency-free SVG charts for the taskrail overview: line charts and grouped bars.
 * Every label goes in with textContent, never as markup, so data is always shown as text. */
(function (global) {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  const W = 480, H = 190, LEFT = 44, RIGHT = 12, TOP = 12, BOTTOM = 24;
  const colors = {};

  function colorFor(name) {
    if (!(name in colors)) colors[name] = PALETTE[Object.keys(colors).length % PALETTE.length];
    return colors[name];
  }

  function svgEl(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function label(parent, x, y, text, anchor, cls) {
    const node = svgEl("text", { x: x, y: y, "text-anchor": anchor || "start", class: cls || "axis" }, parent);
    node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function legend(container, names, extra) {
    const box = document.createElement("div");
    box.className = "legend";
    for (const name of names) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colorFor(name);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    }
    if (extra) box.appendChild(extra);
    container.appendChild(box);
  }

  function empty(container, message) {
    clear(container);
    const p = document.createElement("p");
    p.className = "muted empty";
    p.textContent = message;
    container.appendChild(p);
  }

  /* series: [{name, values: [number]}]; opts: {xLabels: [first, last], format: fn, emptyText}. */
  function line(container, series, opts) {
    opts = opts || {};
    const format = opts.format || ((v) => String(Math.round(v * 100) / 100));
    const points = Math.max(0, ...series.map((s) => s.values.length));
    if (!series.length || points === 0) return empty(container, opts.emptyText || "no data yet");
    clear(container);
    let top = 0, total = 0;
    for (const s of series) for (const v of s.values) { top = Math.max(top, v); total += v; }
    const max = niceMax(top);
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img",
                               "data-total": total, "data-points": points }, container);
    const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    for (const frac of [0, 0.5, 1]) {
      const y = TOP + plotH * (1 - frac);
      svgEl("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, class: "grid" }, svg);
      label(svg, LEFT - 6, y + 4, format(max * frac), "end");
    }
    if (opts.xLabels) {
      label(svg, LEFT, H - 6, opts.xLabels[0], "start");
      label(svg, W - RIGHT, H - 6, opts.xLabels[1], "end");
    }
    const x = (i) => LEFT + (points === 1 ? plotW : (plotW * i) / (points - 1));
    const y = (v) => TOP + plotH * (1 - v / max);
    for (const s of series) {
      const offset = points - s.values.length;  // shorter series end at the right edge
      const d = s.values.map((v, i) => `${i ? "L" : "M"}${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const path = svgEl("path", { d: d, class: "series", stroke: colorFor(s.name) }, svg);
      if (s.values.length) {  // the latest value as a dot: a single sample still shows
        const last = s.values.length - 1;
        svgEl("circle", { cx: x(last + offset).toFixed(1), cy: y(s.values[last]).toFixed(1), r: 3,
                          fill: colorFor(s.name), class: "dot" }, svg);
      }
      path.setAttribute("data-series", s.name);
      const title = svgEl("title", {}, path);
      title.textContent = `${s.name}: ${format(s.values[s.values.length - 1] || 0)} now`;
    }
    legend(container, series.map((s) => s.name));
  }

  /* Shorten node's text in the middle until it fits its box; the whole text stays in its title. */
  function elide(node) {
    const full = node.title;
    node.textContent = full;
    if (node.scrollWidth <= node.clientWidth) return;
    let lo = 1, hi = full.length - 1;
    while (lo < hi) {  // the most characters that still fit, split between the head and the tail
      const keep = Math.ceil((lo + hi) / 2);
      node.textContent = middle(full, keep);
      if (node.scrollWidth <= node.clientWidth) lo = keep; else hi = keep - 1;
    }
    node.textContent = middle(full, lo);
  }

  function middle(text, keep) {
    const tail = Math.floor(keep / 2);
    return `${text.slice(0, keep - tail)}…${text.slice(text.length - tail)}`;
  }

  function elideAll() {
    for (const node of document.querySelectorAll(".bar-label")) elide(node);
  }

  /* rows: [{label, values: [a, b]}] as HTML: each label on its own line above its bars, whole (or elided in
   * the middle, whole on hover), so a long task name stays readable at any width, a phone's too. */
  function bars(container, rows, keys, opts) {
    opts = opts || {};
    const format = opts.format || String;
    if (!rows.length) return empty(container, opts.emptyText || "no data yet");
    clear(container);
    let top = 0;
    for (const r of rows) for (const v of r.values) top = Math.max(top, v || 0);
    const max = niceMax(top);
    const box = document.createElement("div");
    box.className = "bar-rows";
    box.dataset.rows = String(rows.length);
    container.appendChild(box);
    for (const r of rows) {
      const row = document.createElement("div");
      row.className = "bar-row";
      const name = document.createElement("div");
      name.className = "bar-label";
      name.title = r.label;
      name.textContent = r.label;
      row.appendChild(name);
      r.values.forEach((v, k) => {
        const track = document.createElement("div");
        track.className = "bar-track";
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = `${Math.max(0.3, (85 * (v || 0)) / max).toFixed(1)}%`;  // CSSOM: allowed by the CSP
        bar.style.background = colorFor(keys[k]);
        bar.title = `${r.label} ${keys[k]}: ${v == null ? "–" : format(v)}`;
        const value = document.createElement("span");
        value.className = "bar-value";
        value.textContent = v == null ? "–" : format(v);
        track.appendChild(bar);
        track.appendChild(value);
        row.appendChild(track);
      });
      box.appendChild(row);
    }
    legend(container, keys);
    for (const node of box.querySelectorAll(".bar-label")) elide(node);
  }

  window.addEventListener("resize", elideAll);

  global.Charts = { line: line, bars: bars, colorFor: colorFor };
})(window);
