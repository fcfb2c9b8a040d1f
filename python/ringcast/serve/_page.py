"""The status page served at ``/`` of the metrics port: one HTML document,
no framework and nothing fetched from elsewhere (inline CSS, JS and SVG).
It reads ``status.json`` every second and shows the service, its items, the
rings with their rates, lag and losses, and a latency percentile plot.

Elements the tests (and anyone scripting the page) can rely on:
``#service-name``, ``#service-state``, ``#items tr[data-item=NAME]`` (cells
``.state``, ``.restarts``, ``.pid``), ``#rings tr.ring[data-ring=NAME]``
(cells ``.published``, ``.rate``, ``.subscribers``, ``.lag``, ``.lost``,
``.evictions``; attributes ``data-published``, ``data-subscribers``),
``#rings tr.subscriber[data-ring=NAME][data-subscriber=INDEX]``,
``#latency-plot path.latency-line[data-item=NAME]``, ``#updated``
(``data-time``: the snapshot's Unix time) and ``#error``.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringcast serve</title>
<style>
  :root { --fg: #1d232a; --dim: #69737d; --line: #d9dee3; --bg: #fff; --warn: #b35c00;
          --bad: #c0262d; --good: #1f7a3a; --head: #f3f5f7; }
  body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
         background: var(--bg); margin: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 20px 0 6px; }
  .meta, .dim { color: var(--dim); }
  table { border-collapse: collapse; min-width: 60%; }
  th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { background: var(--head); text-align: left; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.subscriber td { color: var(--dim); font-size: 12px; }
  tr.subscriber td:first-child { padding-left: 28px; }
  .state { font-weight: 600; }
  .state-running, .state-active, .ok { color: var(--good); }
  .state-starting, .state-stopping, .state-backoff, .state-joining, .warn { color: var(--warn); }
  .state-crash_loop, .state-exited, .state-evicted, .bad { color: var(--bad); }
  .state-stopped { color: var(--dim); }
  #error { background: #fdecea; color: var(--bad); padding: 6px 10px; margin: 8px 0; }
  #latency-plot { border: 1px solid var(--line); background: #fff; }
  #latency-plot text { font-size: 11px; fill: var(--dim); }
  #latency-plot .grid { stroke: var(--line); stroke-width: 1; }
  #latency-plot .latency-line { fill: none; stroke-width: 2; }
  .legend span.swatch { display: inline-block; width: 12px; height: 3px; margin: 0 6px 3px 14px;
                        vertical-align: middle; }
  footer { margin-top: 16px; color: var(--dim); }
</style>
</head>
<body>
<header>
  <h1><span id="service-name">ringcast serve</span>
      <span id="service-state" class="state"></span></h1>
  <div id="service-meta" class="meta"></div>
  <div id="error" hidden></div>
</header>

<section>
  <h2>Items</h2>
  <table id="items">
    <thead><tr><th>item</th><th>kind</th><th>state</th><th class="num">restarts</th>
      <th class="num">pid</th><th>up</th><th>progress</th><th>last exit</th></tr></thead>
    <tbody></tbody>
  </table>
</section>

<section>
  <h2>Rings <span id="ring-dir" class="dim"></span></h2>
  <label class="dim"><input type="checkbox" id="show-subscribers"> subscribers</label>
  <table id="rings">
    <thead><tr><th>ring</th><th>mode</th><th>publisher</th><th class="num">published</th>
      <th class="num">rate</th><th class="num">capacity</th><th class="num">subscribers</th>
      <th class="num">lag (max)</th><th class="num">lost</th><th class="num">evictions</th>
      </tr></thead>
    <tbody></tbody>
  </table>
  <div id="unreadable" class="bad"></div>
</section>

<section>
  <h2>Latency</h2>
  <svg id="latency-plot" width="720" height="320" viewBox="0 0 720 320"
       xmlns="http://www.w3.org/2000/svg" role="img" aria-label="latency by percentile"></svg>
  <div id="latency-legend" class="legend"></div>
</section>

<footer id="updated">waiting for the first status</footer>

<script>
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
let subscribersChoice = null;  // the user's, once they click

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function int(n) { return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"); }
function si(n) {
  if (n === null || n === undefined) return "";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return n.toFixed(a >= 10 || n === 0 ? 0 : 1);
}
function rate(r) { return r === null || r === undefined ? "\\u2013" : si(r) + "/s"; }
function duration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
  const m = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + sec + "s";
  return sec + "s";
}
function seconds(v) {
  if (v >= 1) return v.toFixed(2) + " s";
  if (v >= 1e-3) return (v * 1e3).toFixed(v >= 1e-2 ? 1 : 2) + " ms";
  if (v >= 1e-6) return (v * 1e6).toFixed(v >= 1e-5 ? 1 : 2) + " \\u00b5s";
  return (v * 1e9).toFixed(0) + " ns";
}
function decadeLabel(e) {
  const [unit, shift] =
    e < -6 ? ["ns", 9] : e < -3 ? ["\\u00b5s", 6] : e < 0 ? ["ms", 3] : ["s", 0];
  return Math.pow(10, e + shift).toFixed(0) + " " + unit;
}
function td(cls, text, attrs) { return el("td", Object.assign({class: cls}, attrs || {}), text); }

function progress(item) {
  const r = item.report || {};
  if (item.kind === "feed") {
    const parts = [];
    if (r.delivered !== undefined) parts.push(int(r.delivered) + " delivered");
    if (r.gaps) parts.push(int(r.gaps) + " gaps");
    if (r.lost) parts.push(int(r.lost) + " unrecovered");
    return parts.join(", ");
  }
  if (item.kind === "books" && r.updates !== undefined) return int(r.updates) + " updates";
  if (r.processed !== undefined) return int(r.processed) + " processed";
  return "";
}

function renderService(st) {
  const svc = st.service;
  const name = document.getElementById("service-name");
  const state = document.getElementById("service-state");
  const meta = document.getElementById("service-meta");
  if (!svc) {
    name.textContent = "ringcast";
    state.textContent = "";
    meta.textContent = st.status_error ? "status unavailable: " + st.status_error : "";
    return;
  }
  name.textContent = svc.name;
  document.title = svc.name + " \\u2013 ringcast serve";
  state.textContent = svc.state;
  state.className = "state state-" + svc.state;
  state.dataset.state = svc.state;
  const parts = ["pid " + svc.pid, "up " + duration(st.time - svc.started_unix),
                 "config " + svc.config, svc.reloads + " reloads"];
  if (svc.last_reload_error) parts.push("last reload refused: " + svc.last_reload_error);
  meta.textContent = parts.join(" \\u00b7 ");
}

function renderItems(st) {
  const body = document.querySelector("#items tbody");
  const rows = [];
  for (const it of st.items || []) {
    const tr = el("tr", {"data-item": it.name, "data-kind": it.kind, "data-state": it.state});
    tr.append(td("name", it.name), td("kind", it.kind),
              td("state state-" + it.state, it.state), td("restarts num", int(it.restarts)),
              td("pid num", it.pid === null ? "" : it.pid),
              td("up", it.started_unix ? duration(st.time - it.started_unix) : ""),
              td("progress", progress(it)), td("last-exit dim", it.last_exit || ""));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function renderRings(st) {
  const body = document.querySelector("#rings tbody");
  const rings = st.rings || [];
  const nsubs = rings.reduce((n, r) => n + r.subscribers.length, 0);
  const box = document.getElementById("show-subscribers");
  if (subscribersChoice === null) box.checked = nsubs <= 48;
  const showSubs = box.checked;
  document.getElementById("ring-dir").textContent = st.dir ? "in " + st.dir : "";
  const rows = [];
  for (const r of rings) {
    const subs = r.subscribers;
    const maxLag = subs.reduce((m, s) => Math.max(m, s.lag), 0);
    const lost = subs.reduce((n, s) => n + s.lost, 0);
    const pub = r.publisher.closed ? "closed" : r.publisher.alive ? "alive" : "gone";
    const tr = el("tr", {"class": "ring", "data-ring": r.name, "data-published": r.published,
                         "data-subscribers": subs.length});
    tr.append(td("name", r.name), td("mode dim", r.mode + (r.producers === "many" ? ", mpmc" : "")),
              td("publisher " + (pub === "alive" ? "ok" : pub === "gone" ? "bad" : "dim"),
                 pub + (r.publisher.pid ? " (pid " + r.publisher.pid + ")" : "")),
              td("published num", int(r.published)), td("rate num", rate(r.rate)),
              td("capacity num", int(r.capacity)), td("subscribers num", subs.length),
              td("lag num" + (maxLag > r.capacity / 2 ? " warn" : ""), int(maxLag)),
              td("lost num" + (lost ? " bad" : ""), int(lost)),
              td("evictions num" + (r.evictions ? " bad" : ""), int(r.evictions)));
    rows.push(tr);
    if (!showSubs) continue;
    for (const s of subs) {
      const sr = el("tr", {"class": "subscriber", "data-ring": r.name,
                           "data-subscriber": s.index, "data-pid": s.pid});
      const who = "#" + s.index + " pid " + s.pid + (s.stage ? " stage " + s.stage : "");
      const wait = s.wait + (s.parked ? " (" + s.parked + " parked)" : "");
      sr.append(td("name", who), td("wait", wait),
                td("state state-" + (s.alive ? s.state : "exited"),
                   s.alive ? s.state : "dead"),
                td("position num", int(s.position)), td("rate num", rate(s.rate)), td("", ""),
                td("received num", int(s.received) + " recv"),
                td("lag num" + (s.lag > r.capacity / 2 ? " warn" : ""), int(s.lag)),
                td("lost num" + (s.lost ? " bad" : ""),
                   int(s.lost) + (s.lost_rate ? " (" + rate(s.lost_rate) + ")" : "")),
                td("", ""));
      rows.push(sr);
    }
  }
  body.replaceChildren(...rows);
  const bad = st.unreadable || [];
  document.getElementById("unreadable").textContent = st.rings_error
    ? "cannot read the rings: " + st.rings_error
    : bad.length ? "unreadable: " + bad.map(u => u.name + " (" + u.error + ")").join("; ") : "";
}

// x: 1/(1 - p) on a log scale, as HdrHistogram plots percentiles.
function xOf(p) { return Math.log10(1 / (1 - p / 100)); }
function decades(values) {
  const pos = values.filter(v => v > 0);
  if (!pos.length) return [-6, -3];
  let lo = Math.floor(Math.log10(Math.min(...pos)));
  let hi = Math.ceil(Math.log10(Math.max(...pos)));
  if (hi - lo < 2) { lo = Math.min(lo, hi - 2); }
  return [lo, hi];
}

function renderLatency(st) {
  const plot = document.getElementById("latency-plot");
  const legend = document.getElementById("latency-legend");
  const W = 720, H = 320, L = 70, R = 20, T = 14, B = 40;
  const series = Object.entries(st.latency || {}).filter(([, v]) => v.percentiles.length);
  const parts = [];
  const xmin = xOf(50), xmax = xOf(99.99);
  // y: seconds on a log scale, whole decades (latencies span ns to s).
  const [lo, hi] = decades(series.flatMap(([, v]) => v.percentiles.map(p => p[1])));
  const px = x => L + (x - xmin) / (xmax - xmin) * (W - L - R);
  const py = y => H - B - (Math.log10(Math.max(y, Math.pow(10, lo))) - lo) / (hi - lo) *
    (H - T - B);
  for (const p of [50, 90, 99, 99.9, 99.99]) {
    const x = px(xOf(p));
    parts.push(svg("line", {class: "grid", x1: x, x2: x, y1: T, y2: H - B}));
    parts.push(svg("text", {x: x, y: H - B + 16, "text-anchor": "middle"}, p + "%"));
  }
  for (let e = lo; e <= hi; e++) {
    const y = py(Math.pow(10, e));
    parts.push(svg("line", {class: "grid", x1: L, x2: W - R, y1: y, y2: y}));
    parts.push(svg("text", {x: L - 6, y: y + 4, "text-anchor": "end"}, decadeLabel(e)));
  }
  parts.push(svg("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, "percentile"));
  const keys = [];
  series.forEach(([name, v], i) => {
    const color = COLORS[i % COLORS.length];
    const d = v.percentiles.map((p, j) =>
      (j ? "L" : "M") + px(xOf(Math.min(p[0], 99.99))).toFixed(1) + "," + py(p[1]).toFixed(1));
    const path = svg("path", {class: "latency-line", "data-item": name, d: d.join(" "),
                              stroke: color});
    path.append(svg("title", {}, name + " " + v.what));
    parts.push(path);
    const p99 = v.percentiles.find(p => p[0] >= 99);
    const key = el("span", {"data-item": name});
    key.append(el("span", {class: "swatch", style: "background:" + color}),
               document.createTextNode(name + " (" + v.what + ", " + int(v.count) + " values" +
                 (p99 ? ", p99 " + seconds(p99[1]) : "") + ")"));
    keys.push(key);
  });
  if (!series.length) {
    parts.push(svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle"},
                   "no latency reported yet"));
  }
  plot.replaceChildren(...parts);
  legend.replaceChildren(...keys);
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const resp = await fetch("status.json", {cache: "no-store"});
    if (!resp.ok) throw new Error("status.json: HTTP " + resp.status);
    const st = await resp.json();
    renderService(st);
    renderItems(st);
    renderRings(st);
    renderLatency(st);
    const up = document.getElementById("updated");
    up.textContent = "updated " + new Date(st.time * 1000).toLocaleTimeString() +
      " \\u00b7 refreshes every second \\u00b7 metrics at /metrics";
    up.dataset.time = st.time;
    err.hidden = true;
  } catch (e) {
    err.textContent = "cannot read the service's status: " + e.message;
    err.hidden = false;
  }
  setTimeout(refresh, 1000);
}
document.getElementById("show-subscribers").addEventListener("change", e => {
  subscribersChoice = e.target.checked;
});
refresh();
</script>
</body>
</html>
"""
