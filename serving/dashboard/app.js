// gridlake's dashboard: a small single-page app on the public /v1 API only,
// so it doubles as an example for third-party dashboard authors. No build
// step: plain JavaScript, uPlot for charts. Every number shown carries its
// raw value in data-value, which the browser test compares with the API.
"use strict";

const REFRESH_MS = 5000;
const PAGE_SIZE = 50;

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (x, d = 1) => (x == null || !isFinite(x) ? "–" : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
// num renders a number with its raw value attached for tests and tooltips.
const num = (id, value, digits = 1, unit = "") =>
  `<span ${id ? `id="${id}"` : ""} data-value="${value == null ? "" : value}" title="${value == null ? "" : value}">${fmt(value, digits)}${unit}</span>`;
const hours = (s) => fmt(s / 3600, 1) + " h";
const batteryLink = (id) => `<a href="#/battery/${encodeURIComponent(id)}">${esc(id)}</a>`;

// ---- the site: one time zone and one tariff for every page ------------------

// site is /v1/status's site: every time on every page is shown in its zone
// (never the browser's) and says so; money and CO2 come from its tariff.
const site = { timezone: "UTC", zone_abbr: "UTC", tariff: { currency: "EUR", price_per_kwh: 0, co2_g_per_kwh: 0 } };
const inZone = (opts) => new Intl.DateTimeFormat("en-GB", { timeZone: site.timezone, hourCycle: "h23", ...opts });
const fmtTime = (ms) => inZone({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
const fmtHM = (ms) => inZone({ hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
const fmtDateTime = (ms) => inZone({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
// siteDay is the site's local day (YYYY-MM-DD) at an instant.
const siteDay = (d = new Date()) => new Intl.DateTimeFormat("en-CA", { timeZone: site.timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
const zoneLabel = () => `times in ${site.timezone} (${site.zone_abbr})`;
const zoneNote = () => `<span class="sub zone-note">${esc(zoneLabel())}</span>`;
const addDays = (day, n) => { const d = new Date(day + "T12:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return d.toISOString().slice(0, 10); };

async function loadSite() {
  const st = await api("/v1/status");
  Object.assign(site, st.site || {});
  $("#zone").textContent = zoneLabel();
  $("#zone").dataset.zone = site.timezone;
}

// ---- units: one rule everywhere ---------------------------------------------

// energy shows Wh below 1 kWh and kWh from it, so "0.00 kWh" never sits
// beside "0.4 Wh"; cost and co2 price an amount of Wh with the tariff.
const energy = (wh) => (wh == null || !isFinite(wh) ? "–" : Math.abs(wh) < 1000 ? `${fmt(wh, 1)} Wh` : `${fmt(wh / 1000, 2)} kWh`);
const numWh = (id, wh) => `<span ${id ? `id="${id}"` : ""} data-value="${wh == null ? "" : wh}" title="${wh == null ? "" : wh} Wh">${energy(wh)}</span>`;
const money = (x) => { try { return new Intl.NumberFormat("en-US", { style: "currency", currency: site.tariff.currency }).format(x); } catch { return `${fmt(x, 2)} ${site.tariff.currency}`; } };
const cost = (wh) => money((wh / 1000) * site.tariff.price_per_kwh);
const co2 = (wh) => { const g = (wh / 1000) * site.tariff.co2_g_per_kwh; return g < 1000 ? `${fmt(g, 0)} g CO₂` : `${fmt(g / 1000, 2)} kg CO₂`; };
const priced = (wh) => `${cost(wh)} · ${co2(wh)}`;

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  // The session ended (signed out elsewhere, expired, user removed).
  if (r.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

// ---- freshness: always visible --------------------------------------------

function showFreshness(fr) {
  if (!fr) return;
  const cut = fr.cut_time ? new Date(fr.cut_time) : null;
  const lagClass = fr.speed_lag_records > 100000 ? "lag-bad" : "";
  $("#freshness").innerHTML =
    `batch <b id="fresh-version" data-value="${fr.batch_version}">v${fr.batch_version}</b>` +
    (cut ? ` · cut <b title="${esc(fr.cut_time)}">${fmtTime(cut.getTime())}</b>` : " · no batch yet") +
    (fr.closed_through ? ` · closed through <b>${esc(fr.closed_through)}</b>` : "") +
    ` · speed lag <b class="${lagClass}" id="fresh-lag" data-value="${fr.speed_lag_records}">${fmt(fr.speed_lag_records, 0)}</b> records` +
    ` · as of ${fmtTime(Date.parse(fr.as_of))}`;
  decorateFreshness(); // alerts.js: the ingest state beside the lag
}

// ---- who is signed in -----------------------------------------------------

async function showWho() {
  const me = await api("/v1/whoami");
  $("#who").innerHTML = `<span>signed in as <b id="who-name">${esc(me.name)}</b> (<span id="who-role">${esc(me.role)}</span>)</span>` +
    `<form method="post" action="/logout"><button id="signout" type="submit">Sign out</button></form>`;
}

// ---- charts ----------------------------------------------------------------

// bandChart draws mean lines with a min–max band per window of metric,
// and a dashed line at each threshold rule's fire value on it.
// setRange fixes its time axis to the queried range (ms); setThresholds
// takes the rules in force (thresholds.js) before the next setData.
function bandChart(el, title, unit, color, metric) {
  let xr = null, lines = [];
  const opts = {
    title, width: Math.max(el.clientWidth - 4, 280), height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), site.timezone),
    scales: { x: { time: true, range: (u, min, max) => xr || [min, max] }, y: { range: (u, min, max) => thresholdRange(min, max, lines) } },
    hooks: { draw: [(u) => drawThresholdLines(u, lines)] },
    axes: [{ stroke: "#8a94a6", grid: { stroke: "#273040" } }, { stroke: "#8a94a6", grid: { stroke: "#273040" }, size: 56 }],
    series: [{},
      { label: "max", stroke: color + "66", width: 1, value: (u, v) => fmt(v, 2) + unit },
      { label: "mean", stroke: color, width: 2, value: (u, v) => fmt(v, 2) + unit },
      { label: "min", stroke: color + "66", width: 1, value: (u, v) => fmt(v, 2) + unit }],
    bands: [{ series: [1, 3], fill: color + "26" }],
  };
  const chart = new uPlot(opts, [[], [], [], []], el);
  new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth - 4, 280), height: 200 })).observe(el);
  chart.setRange = (fromMs, toMs) => { xr = [fromMs / 1000, toMs / 1000]; };
  chart.setThresholds = () => { lines = rulesFor(metric); };
  // The chart on its element, so a test (or the console) can map a
  // line's pixel back to a value with the chart's own scale.
  el.dataset.metric = metric;
  el.uplot = chart;
  return chart;
}

// ---- pages -----------------------------------------------------------------

// The fleet lists' filters start where the alert rules fire
// (listDefault); a value typed in or carried by a link wins. listStart is
// only for a metric no threshold rule watches: a list needs some value.
const listStart = { temp_above: 40, soc_below: 20, voltage_below: 49 };
const userThresholds = {};
const ranges = [
  { key: "temp_above", metric: "temperature_c", op: ">", label: "Hot", unit: "°C", help: "temperature above" },
  { key: "soc_below", metric: "soc_pct", op: "<", label: "Low charge", unit: "%", help: "state of charge below" },
  { key: "voltage_below", metric: "voltage_v", op: "<", label: "Low voltage", unit: "V", help: "voltage below" },
];
function listThreshold(r) {
  if (r.key in userThresholds) return { value: userThresholds[r.key], from: "set here" };
  const d = listDefault(r.metric, r.op);
  return d ? { value: d.value, from: `rule ${d.rule}` } : { value: listStart[r.key], from: "no rule watches it" };
}
// mv is a shown value of a battery metric in its threshold look.
const mv = (metric, id, value, digits, unit) => markValue(metric, value, num(id, value, digits, unit));

const fleetPage = {
  tab: "temp_above", after: [""], chart: null, thresholds: true,
  mount(main, _id, params) {
    // #/?range=soc_below&threshold=15 opens a given list (shareable links).
    if (ranges.some((r) => r.key === params.get("range"))) this.tab = params.get("range");
    const th = parseFloat(params.get("threshold"));
    if (isFinite(th)) userThresholds[this.tab] = th;
    this.after = [""];
    main.innerHTML = `
      <h1>Fleet overview ${thresholdNote()}</h1>
      <div class="grid" id="fleet-cards"></div>
      <div class="grid wide">
        <div class="card"><h2>State of charge</h2><div class="hist" id="soc-hist"></div><div class="hist-labels">${
          [...Array(10)].map((_, i) => `<span>${i * 10}</span>`).join("")}</div></div>
        <div class="card"><h2>Extremes now</h2><div class="scroll" id="extremes"></div></div>
      </div>
      <div class="card" style="margin-bottom:14px"><h2>Fleet temperature, last hour (per minute)</h2><div id="fleet-chart"></div>${zoneNote()}</div>
      <div class="card">
        <h2>Out of range</h2>
        <div class="controls tabs" id="range-tabs">${ranges.map((r) =>
          `<button data-tab="${r.key}">${r.label}</button>`).join("")}
          <label id="threshold-label"></label>
          <input id="threshold" type="number" step="any" style="width:90px">
        </div>
        <div class="scroll" id="out-of-range"></div>
        <div class="controls"><button id="prev">‹ previous</button><button id="next">next ›</button><span class="sub" id="range-count"></span></div>
      </div>`;
    $("#range-tabs").addEventListener("click", (e) => {
      const t = e.target.closest("button[data-tab]");
      if (!t) return;
      this.tab = t.dataset.tab;
      this.after = [""];
      refresh();
    });
    $("#threshold").addEventListener("change", (e) => {
      const v = parseFloat(e.target.value);
      if (isFinite(v)) { userThresholds[this.tab] = v; this.after = [""]; refresh(); }
    });
    $("#next").addEventListener("click", () => { if (this.nextAfter) { this.after.push(this.nextAfter); refresh(); } });
    $("#prev").addEventListener("click", () => { if (this.after.length > 1) { this.after.pop(); refresh(); } });
    this.chart = bandChart($("#fleet-chart"), "", " °C", "#f5a623", "temperature_c");
  },
  async update() {
    const now = await api("/v1/fleet/now?stale_after=60s");
    const f = now.fleet;
    showFreshness(now.freshness);
    const ext = (m, unit, digits) => f.batteries ? `${mv(m, `${m}-min`, f[m].min, digits, unit)} (${batteryLink(f[m].min_battery_id)}) – ${mv(m, `${m}-max`, f[m].max, digits, unit)} (${batteryLink(f[m].max_battery_id)})` : "–";
    $("#fleet-cards").innerHTML = `
      <div class="card"><h2>Reporting now</h2><div class="big">${num("fleet-reporting", f.reporting, 0)}</div>
        <div class="sub">of ${num("fleet-batteries", f.batteries, 0)} batteries; a reading in the last ${f.stale_after_s} s</div></div>
      <div class="card"><h2>Mean state of charge</h2><div class="big">${mv("soc_pct", "fleet-soc-mean", f.soc_pct.mean, 1, " %")}</div>
        <div class="sub">latest reading of every battery; ${ext("soc_pct", " %", 1)}</div></div>
      <div class="card"><h2>Temperature</h2><div>${ext("temperature_c", " °C", 1)}</div><div class="sub">mean ${mv("temperature_c", "", f.temperature_c.mean, 1, " °C")}</div></div>
      <div class="card"><h2>Voltage</h2><div>${ext("voltage_v", " V", 2)}</div><div class="sub">mean ${mv("voltage_v", "", f.voltage_v.mean, 2, " V")}</div></div>`;
    const peak = Math.max(1, ...f.soc_histogram);
    $("#soc-hist").innerHTML = f.soc_histogram.map((n, i) =>
      `<div id="soc-bin-${i}" data-value="${n}" title="${i * 10}–${i * 10 + 10} %: ${n} batteries" style="height:${(100 * n) / peak}%"></div>`).join("");
    $("#extremes").innerHTML = `<table><tr><th>metric</th><th>min</th><th>battery</th><th>max</th><th>battery</th><th>mean</th></tr>${
      [["voltage_v", "Voltage", " V", 2], ["current_a", "Current", " A", 1], ["temperature_c", "Temperature", " °C", 1], ["soc_pct", "State of charge", " %", 1]]
        .map(([k, label, unit, d]) => `<tr><td>${label}</td><td>${mv(k, "", f[k].min, d, unit)}</td><td>${f.batteries ? batteryLink(f[k].min_battery_id) : ""}</td>
          <td>${mv(k, "", f[k].max, d, unit)}</td><td>${f.batteries ? batteryLink(f[k].max_battery_id) : ""}</td><td>${mv(k, "", f[k].mean, d, unit)}</td></tr>`).join("")}</table>`;

    const stats = await api("/v1/fleet/stats?res=1m");
    const w = stats.windows;
    this.chart.setRange(Date.parse(stats.from), Date.parse(stats.to));
    this.chart.setThresholds();
    this.chart.setData([w.map((x) => x.start_ms / 1000), w.map((x) => x.temperature_c.max), w.map((x) => x.temperature_c.mean), w.map((x) => x.temperature_c.min)]);

    // Out of range: one page of batteries at a time, never the whole fleet.
    const r = ranges.find((x) => x.key === this.tab);
    document.querySelectorAll("#range-tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === this.tab));
    const th = listThreshold(r);
    $("#threshold-label").textContent = r.help;
    $("#threshold").dataset.from = th.from;
    $("#threshold").title = `starts at ${th.from === "set here" ? "the value set here" : th.from === "no rule watches it" ? "a plain value: no alert rule watches this" : `where ${th.from} fires`}`;
    if (document.activeElement !== $("#threshold")) $("#threshold").value = th.value;
    const after = this.after[this.after.length - 1];
    const list = await api(`/v1/batteries?${this.tab}=${th.value}&limit=${PAGE_SIZE}&after=${encodeURIComponent(after)}`);
    this.nextAfter = list.next_after || "";
    $("#next").disabled = !this.nextAfter;
    $("#prev").disabled = this.after.length < 2;
    $("#range-count").innerHTML = `${num("range-matched", list.matched, 0)} of ${fmt(list.total, 0)} batteries ${r.help} ${th.value} ${r.unit} (${esc(th.from)})`;
    $("#out-of-range").innerHTML = `<table id="range-table"><tr><th>battery</th><th>voltage</th><th>current</th><th>temperature</th><th>state of charge</th><th>reading at</th></tr>${
      list.batteries.map((b) => `<tr data-battery="${esc(b.battery_id)}"><td>${batteryLink(b.battery_id)}</td><td>${mv("voltage_v", "", b.voltage_v, 2, " V")}</td>
        <td>${mv("current_a", "", b.current_a, 1, " A")}</td><td>${mv("temperature_c", "", b.temperature_c, 1, " °C")}</td><td>${mv("soc_pct", "", b.soc_pct, 1, " %")}</td>
        <td>${fmtTime(b.ts_ms)}</td></tr>`).join("")}</table>`;
  },
};

const metrics = [
  ["voltage_v", "Voltage", " V", "#4fb3ff"], ["current_a", "Current", " A", "#b48ead"],
  ["temperature_c", "Temperature", " °C", "#f5a623"], ["soc_pct", "State of charge", " %", "#3ecf8e"],
];

const batteryPage = {
  span: "hour", charts: [], thresholds: true,
  mount(main, id) {
    this.id = id;
    main.innerHTML = `
      <h1>Battery <span id="battery-id">${esc(id)}</span> ${thresholdNote()}</h1>
      <div class="controls tabs" id="span-tabs"><button data-span="hour">last hour · 1 min</button><button data-span="day">last day · 1 h</button></div>
      <div class="grid" id="battery-latest"></div>
      <div class="grid wide">${metrics.map(([k]) => `<div class="card"><div id="chart-${k}"></div></div>`).join("")}</div>`;
    $("#span-tabs").addEventListener("click", (e) => {
      const t = e.target.closest("button[data-span]");
      if (t) { this.span = t.dataset.span; refresh(); }
    });
    this.charts = metrics.map(([k, label, unit, color]) => bandChart($(`#chart-${k}`), label, unit, color, k));
  },
  async update() {
    const id = encodeURIComponent(this.id);
    document.querySelectorAll("#span-tabs button").forEach((b) => b.classList.toggle("on", b.dataset.span === this.span));
    const latest = await api(`/v1/batteries/${id}`);
    showFreshness(latest.freshness);
    const l = latest.latest;
    $("#battery-latest").innerHTML = metrics.map(([k, label, unit]) =>
      `<div class="card"><h2>${label}</h2><div class="big">${mv(k, `latest-${k}`, l[k], k === "voltage_v" ? 2 : 1, unit)}</div></div>`).join("") +
      `<div class="card"><h2>Latest reading</h2><div id="latest-ts" data-value="${l.ts_ms}">${fmtDateTime(l.ts_ms)}</div>
        <div class="sub">event time of the newest reading; ${esc(zoneLabel())}</div></div>`;
    const q = this.span === "hour" ? "res=1m" : `res=1h&from=${Date.now() - 86400000}`;
    const stats = await api(`/v1/batteries/${id}/stats?${q}`);
    const w = stats.windows;
    const x = w.map((s) => s.start_ms / 1000);
    metrics.forEach(([k], i) => this.charts[i].setRange(Date.parse(stats.from), Date.parse(stats.to)));
    metrics.forEach(([k], i) => this.charts[i].setThresholds());
    metrics.forEach(([k], i) => this.charts[i].setData([x, w.map((s) => s[k].max), w.map((s) => s[k].mean), w.map((s) => s[k].min)]));
    const last = w[w.length - 1];
    $("#battery-latest").insertAdjacentHTML("beforeend", `<div class="card"><h2>Windows</h2><div class="big">${num("windows-count", w.length, 0)}</div>
      <div class="sub">${num("windows-readings", w.reduce((a, s) => a + s.n, 0), 0)} readings${last ? `; last window mean ${num("last-window-soc", last.soc_pct.mean, 2, " %")}` : ""}</div></div>`);
  },
};

const usageCols = [["energy_wh", "energy"], ["waste_wh", "waste"], ["on_vacant_s", "on while vacant"], ["on_unsold_s", "on while unsold"]];
const usageCells = (u) => `<td>${numWh("", u.energy_wh)}</td><td class="${u.waste_wh > 0 ? "warn" : ""}">${numWh("", u.waste_wh)}</td><td>${hours(u.on_vacant_s)}</td><td>${hours(u.on_unsold_s)}</td>`;
// wasteBar shows waste's share of energy: red for the share, neutral for
// the rest; with no energy it is empty and says so, never all green.
const wasteBar = (u) => {
  if (!(u.energy_wh > 0)) return `<div class="bar-row"><div class="bar" title="no energy used"></div><span class="sub share" data-value="">–</span></div>`;
  const share = Math.min(100, Math.max(0, (100 * u.waste_wh) / u.energy_wh));
  return `<div class="bar-row"><div class="bar" title="waste ${fmt(share, 0)} % of energy"><span style="width:${share}%;background:var(--bad)"></span></div>` +
    `<span class="sub share" data-value="${share}">${fmt(share, 0)} %</span></div>`;
};
// energyTile is a tile of an amount of Wh with its cost and CO2; waste is
// orange only when there is some.
const energyTile = (title, id, wh, sub, waste) => `<div class="card"><h2>${title}</h2><div class="big ${waste && wh > 0 ? "warn" : ""}">${numWh(id, wh)}</div>
  <div class="sub" id="${id}-priced">${priced(wh)}</div>${sub}</div>`;

// trendSpan is the trend's length, shared by the hotel and room pages.
let trendSpan = "week";
const trendDays = () => (trendSpan === "week" ? 7 : 30);
const trendTabs = () => `<div class="controls tabs" id="trend-tabs"><button data-span="week" class="${trendSpan === "week" ? "on" : ""}">week</button>` +
  `<button data-span="month" class="${trendSpan === "month" ? "on" : ""}">month</button></div>`;
function onTrendTabs() {
  $("#trend-tabs").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-span]");
    if (!b) return;
    trendSpan = b.dataset.span;
    document.querySelectorAll("#trend-tabs button").forEach((x) => x.classList.toggle("on", x.dataset.span === trendSpan));
    refresh();
  });
}

// barsSVG draws energy bars with their waste part in red. rows are
// {label, title, energy_wh, waste_wh} (null: a slot not reached yet); the
// chart carries its totals in data attributes for tests and tooltips.
function barsSVG(id, rows, labelEvery) {
  const W = 600, H = 190, left = 70, bottom = 20, top = 8;
  const peak = Math.max(1, ...rows.map((r) => (r ? r.energy_wh : 0)));
  const bw = (W - left - 4) / Math.max(rows.length, 1);
  const y = (wh) => top + (H - top - bottom) * (1 - wh / peak);
  const tot = rows.reduce((a, r) => ({ e: a.e + (r ? r.energy_wh : 0), w: a.w + (r ? r.waste_wh : 0) }), { e: 0, w: 0 });
  let svg = `<svg id="${id}" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="energy and waste" data-bars="${rows.filter((r) => r).length}" data-energy-wh="${tot.e}" data-waste-wh="${tot.w}">`;
  for (const f of [0, 0.5, 1]) {
    svg += `<line x1="${left}" x2="${W}" y1="${y(peak * f)}" y2="${y(peak * f)}" stroke="#273040"/><text x="${left - 6}" y="${y(peak * f) + 4}" fill="#8a94a6" font-size="11" text-anchor="end">${esc(energy(peak * f))}</text>`;
  }
  rows.forEach((r, i) => {
    const x = left + i * bw;
    if (i % labelEvery === 0) svg += `<text x="${x + bw / 2}" y="${H - 4}" fill="#8a94a6" font-size="11" text-anchor="middle">${esc(r ? r.label : "")}</text>`;
    if (!r) return;
    const tip = `${r.title}: energy ${energy(r.energy_wh)} (${priced(r.energy_wh)}), waste ${energy(r.waste_wh)} (${priced(r.waste_wh)})`;
    svg += `<g class="bar-slot" data-energy-wh="${r.energy_wh}" data-waste-wh="${r.waste_wh}"><title>${esc(tip)}</title>` +
      `<rect x="${x + 1}" y="${y(r.energy_wh)}" width="${Math.max(bw - 2, 1)}" height="${y(0) - y(r.energy_wh)}" fill="var(--accent)"/>` +
      `<rect x="${x + 1}" y="${y(r.waste_wh)}" width="${Math.max(bw - 2, 1)}" height="${y(0) - y(r.waste_wh)}" fill="var(--bad)"/></g>`;
  });
  return svg + "</svg>";
}
const barsLegend = `<div class="legend"><span><i style="background:var(--accent)"></i>energy</span><span><i style="background:var(--bad)"></i>waste (on while vacant or unsold)</span></div>`;

// hourRows lays a day's hours out in its 23, 24 or 25 slots, labelled with
// their local start in the site zone (the hour the clocks go back shows
// 01:00 twice, with its zone).
const hourRows = (h) => [...Array(h.hours_in_day)].map((_, k) => {
  const x = h.hours[k];
  return x ? { label: fmtHM(x.start_ms), title: `${fmtHM(x.start_ms)}–${fmtHM(x.end_ms)} ${x.zone_abbr}`, energy_wh: x.energy_wh, waste_wh: x.waste_wh } : null;
});
const totalLine = (id, t, what) => `<div class="sub">${what}: <b>${numWh(`${id}-energy`, t.energy_wh)}</b> (${priced(t.energy_wh)}), waste <b>${numWh(`${id}-waste`, t.waste_wh)}</b> (${priced(t.waste_wh)})</div>`;
const trendRows = (days) => days.map((d) => ({ label: d.day.slice(5), title: d.day, energy_wh: d.energy_wh, waste_wh: d.waste_wh }));

const hotelPage = {
  offset: 0,
  mount(main, _id, params) {
    this.day = params.get("day") || this.day || siteDay();
    this.offset = 0;
    main.innerHTML = `
      <h1>Hotel energy</h1>
      <div class="controls"><label>day <input type="date" id="day" value="${esc(this.day)}"></label>
        <button id="day-prev">‹ day before</button><button id="day-next">day after ›</button><span class="sub" id="day-state"></span>${zoneNote()}</div>
      <div class="grid" id="hotel-cards"></div>
      <div class="grid wide">
        <div class="card"><h2>Energy by hour</h2><div id="hour-chart-box"></div><div id="hours-total"></div>${barsLegend}${zoneNote()}</div>
        <div class="card"><h2>Trend</h2>${trendTabs()}<div id="trend-chart-box"></div><div id="trend-total"></div>${barsLegend}</div>
      </div>
      <div class="card" style="margin-bottom:14px"><h2>By device type</h2><div class="scroll" id="by-type"></div></div>
      <div class="card"><h2>Rooms, most waste first</h2><div class="scroll" id="rooms"></div>
        <div class="controls"><button id="rooms-prev">‹ previous</button><button id="rooms-next">next ›</button></div></div>`;
    const go = (day) => { location.hash = `#/hotel?day=${day}`; };
    $("#day").addEventListener("change", (e) => e.target.value && go(e.target.value));
    $("#day-prev").addEventListener("click", () => go(addDays(this.day, -1)));
    $("#day-next").addEventListener("click", () => go(addDays(this.day, 1)));
    $("#rooms-next").addEventListener("click", () => { this.offset += PAGE_SIZE; refresh(); });
    $("#rooms-prev").addEventListener("click", () => { this.offset = Math.max(0, this.offset - PAGE_SIZE); refresh(); });
    onTrendTabs();
  },
  async update() {
    const day = encodeURIComponent(this.day);
    const [rooms, types, hrs, trend] = await Promise.all([
      api(`/v1/hotel/days/${day}?by=room&limit=${PAGE_SIZE}&offset=${this.offset}`),
      api(`/v1/hotel/days/${day}?by=device_type`),
      api(`/v1/hotel/days/${day}/hours`),
      api(`/v1/hotel/days?from=${addDays(this.day, 1 - trendDays())}&to=${day}`),
    ]);
    showFreshness(rooms.freshness);
    const t = rooms.total;
    $("#hotel-cards").innerHTML =
      energyTile("Energy", "hotel-energy", t.energy_wh, `<div class="sub">${num("hotel-rooms", rooms.rooms_reporting, 0)} rooms reporting</div>`, false) +
      energyTile("Waste", "hotel-waste", t.waste_wh, `<div class="sub">on while the room was vacant or unsold</div>${wasteBar(t)}`, true) + `
      <div class="card"><h2>On while vacant</h2><div class="big">${hours(t.on_vacant_s)}</div><div class="sub">device-hours</div></div>
      <div class="card"><h2>On while unsold</h2><div class="big">${hours(t.on_unsold_s)}</div><div class="sub">device-hours</div></div>`;
    $("#hour-chart-box").innerHTML = barsSVG("hour-chart", hourRows(hrs), 3);
    $("#hours-total").innerHTML = totalLine("hours", hrs.total, `${hrs.hours.length} of ${hrs.hours_in_day} hours`);
    $("#trend-chart-box").innerHTML = barsSVG("trend-chart", trendRows(trend.days), trendSpan === "week" ? 1 : 5);
    const tt = trend.days.reduce((a, d) => ({ energy_wh: a.energy_wh + d.energy_wh, waste_wh: a.waste_wh + d.waste_wh }), { energy_wh: 0, waste_wh: 0 });
    $("#trend-total").innerHTML = totalLine("trend", tt, `${esc(trend.from)} to ${esc(trend.to)}`);
    $("#by-type").innerHTML = `<table id="type-table"><tr><th>device type</th><th>rooms</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>waste share</th></tr>${
      types.device_types.map((u) => `<tr data-type="${esc(u.device_type)}"><td>${esc(u.device_type)}</td><td>${u.rooms}</td>${usageCells(u)}<td style="min-width:140px">${wasteBar(u)}</td></tr>`).join("")}</table>`;
    const sum = (r, k) => Object.values(r.by_type || {}).reduce((a, u) => a + u[k], 0);
    $("#rooms").innerHTML = `<table id="room-table"><tr><th>room</th><th>state</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>occupied</th><th>sold</th></tr>${
      rooms.rooms.map((r) => `<tr data-room="${esc(r.room_id)}"><td><a href="#/room/${encodeURIComponent(r.room_id)}?day=${day}">${esc(r.room_id)}</a></td>
        <td class="sub">${r.closed ? `closed r${r.revision}` : "open"}</td>${usageCells({ ...r, on_vacant_s: sum(r, "on_vacant_s"), on_unsold_s: sum(r, "on_unsold_s") })}
        <td>${hours(r.occupied_s)}</td><td>${hours(r.sold_s)}</td></tr>`).join("")}</table>`;
    $("#rooms-prev").disabled = this.offset === 0;
    $("#rooms-next").disabled = this.offset + PAGE_SIZE >= rooms.rooms_reporting;
    $("#day-state").textContent = rooms.freshness.closed_through && this.day <= rooms.freshness.closed_through ? "closed by batch" : "open: live from the speed layer";
  },
};

const typeColor = (t) => ({ light: "#f5d76e", hvac: "#4fb3ff", tv: "#b48ead" }[t] || "#8fbcbb");

const roomPage = {
  mount(main, id, params) {
    this.id = id;
    this.day = params.get("day") || siteDay();
    main.innerHTML = `
      <h1>Room <span id="room-id">${esc(id)}</span> · ${esc(this.day)}</h1>
      <div class="controls"><a href="#/hotel?day=${esc(this.day)}">‹ hotel report</a>${zoneNote()}</div>
      <div class="grid" id="room-cards"></div>
      <div class="card" style="margin-bottom:14px"><h2>Timeline</h2><div class="timeline" id="timeline"></div>
        <div class="legend"><span><i style="background:var(--good)"></i>occupied</span><span><i style="background:var(--accent)"></i>checked in (sold)</span>
        <span><i style="background:#f5d76e"></i>device on</span><span><i style="background:var(--bad)"></i>on while vacant or unsold</span></div>${zoneNote()}</div>
      <div class="grid wide">
        <div class="card"><h2>Energy by hour</h2><div id="room-hour-box"></div><div id="room-hours-total"></div>${barsLegend}</div>
        <div class="card"><h2>Trend</h2>${trendTabs()}<div id="room-trend-box"></div><div id="room-trend-total"></div>${barsLegend}</div>
      </div>
      <div class="card"><h2>By device type</h2><div class="scroll" id="room-types"></div></div>`;
    onTrendTabs();
  },
  async update() {
    const id = encodeURIComponent(this.id), day = encodeURIComponent(this.day);
    const [days, tl, hrs, trend] = await Promise.all([api(`/v1/rooms/${id}/days?from=${day}&to=${day}`), api(`/v1/rooms/${id}/timeline?day=${day}`),
      api(`/v1/rooms/${id}/hours?day=${day}`), api(`/v1/rooms/${id}/days?from=${addDays(this.day, 1 - trendDays())}&to=${day}`)]);
    showFreshness(days.freshness);
    const d = days.days[0] || { energy_wh: 0, waste_wh: 0, occupied_s: 0, sold_s: 0, by_type: {} };
    $("#room-cards").innerHTML =
      energyTile("Energy", "room-energy", d.energy_wh, `<div class="sub">${d.closed ? `closed by batch, revision ${d.revision}` : "open day, live"}</div>`, false) +
      energyTile("Waste", "room-waste", d.waste_wh, wasteBar(d), true) + `
      <div class="card"><h2>Occupied</h2><div class="big">${num("room-occupied", d.occupied_s / 3600, 2, " h")}</div></div>
      <div class="card"><h2>Sold</h2><div class="big">${num("room-sold", d.sold_s / 3600, 2, " h")}</div></div>`;
    $("#room-types").innerHTML = `<table id="room-type-table"><tr><th>device type</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>on</th></tr>${
      Object.entries(d.by_type || {}).sort((a, b) => b[1].waste_wh - a[1].waste_wh).map(([t, u]) =>
        `<tr data-type="${esc(t)}"><td>${esc(t)}</td>${usageCells(u)}<td>${hours(u.on_s)}</td></tr>`).join("")}</table>`;
    $("#timeline").innerHTML = timelineSVG(tl.timeline);
    $("#room-hour-box").innerHTML = barsSVG("room-hour-chart", hourRows(hrs), 3);
    $("#room-hours-total").innerHTML = totalLine("room-hours", hrs.total, `${hrs.hours.length} of ${hrs.hours_in_day} hours`);
    // A day the room sent nothing by is missing from its days: an empty slot.
    const byDay = Object.fromEntries(trend.days.map((x) => [x.day, x]));
    const slots = [...Array(trendDays())].map((_, i) => addDays(this.day, i + 1 - trendDays()));
    $("#room-trend-box").innerHTML = barsSVG("room-trend-chart", slots.map((k) => (byDay[k] ? trendRows([byDay[k]])[0] : null)), trendSpan === "week" ? 1 : 5);
    const tt = trend.days.reduce((a, x) => ({ energy_wh: a.energy_wh + x.energy_wh, waste_wh: a.waste_wh + x.waste_wh }), { energy_wh: 0, waste_wh: 0 });
    $("#room-trend-total").innerHTML = totalLine("room-trend", tt, `${esc(trend.from)} to ${esc(trend.to)}`);
  },
};

// timelineSVG draws a room's day: one lane per device, plus occupancy and
// stay; a device's on-time turns red where the room was vacant or unsold.
// Ticks and tooltips are site-zone times.
function timelineSVG(t) {
  const lanes = [{ label: "occupied", spans: t.occupied, color: "var(--good)" }, { label: "checked in", spans: t.sold, color: "var(--accent)" },
    ...t.devices.map((d) => ({ label: d.device_id.replace(/^R-\d+-/, ""), title: d.device_id, spans: d.on, color: typeColor(d.device_type), device: true }))];
  const W = 1000, left = 90, lane = 22, top = 20, H = top + lanes.length * lane + 4;
  // The axis is the whole local day (23 or 25 hours across a DST change
  // are drawn as 24); an open day ends at a "now" line.
  const span = Math.max(t.to_ms - t.from_ms, 86400000);
  const x = (ms) => left + ((ms - t.from_ms) / span) * (W - left - 4);
  const bad = (a, b) => { // parts of [a,b) where the room was vacant or unsold
    const good = [];
    for (const o of t.occupied) for (const s of t.sold) {
      const lo = Math.max(a, o.from_ms, s.from_ms), hi = Math.min(b, o.to_ms, s.to_ms);
      if (lo < hi) good.push([lo, hi]);
    }
    good.sort((p, q) => p[0] - q[0]);
    const out = []; let c = a;
    for (const [lo, hi] of good) { if (lo > c) out.push([c, lo]); c = Math.max(c, hi); }
    if (c < b) out.push([c, b]);
    return out;
  };
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="room timeline">`;
  for (let h = 0; h <= 24; h += 3) {
    const ms = t.from_ms + h * 3600000;
    svg += `<line x1="${x(ms)}" x2="${x(ms)}" y1="${top - 4}" y2="${H}" stroke="#273040"/><text x="${x(ms)}" y="12" fill="#8a94a6" font-size="11" text-anchor="${h === 24 ? "end" : h === 0 ? "start" : "middle"}">${h === 24 ? "24:00" : fmtHM(ms)}</text>`;
  }
  if (t.to_ms < t.from_ms + span) {
    svg += `<line x1="${x(t.to_ms)}" x2="${x(t.to_ms)}" y1="${top - 4}" y2="${H}" stroke="var(--accent)" stroke-dasharray="3 3"/><text x="${x(t.to_ms)}" y="${H - 2}" fill="var(--accent)" font-size="11" text-anchor="start" dx="3">now</text>`;
  }
  lanes.forEach((l, i) => {
    const y = top + i * lane;
    svg += `<text x="0" y="${y + 15}" fill="#d8dee9" font-size="12"><title>${esc(l.title || l.label)}</title>${esc(l.label)}</text>`;
    for (const s of l.spans) {
      svg += `<rect class="span" data-lane="${esc(l.title || l.label)}" data-from="${s.from_ms}" data-to="${s.to_ms}" x="${x(s.from_ms)}" y="${y + 3}" width="${Math.max(x(s.to_ms) - x(s.from_ms), 1)}" height="${lane - 8}" rx="2" fill="${l.color}"><title>${esc(l.title || l.label)}: ${fmtTime(s.from_ms)}–${fmtTime(s.to_ms)} ${esc(site.zone_abbr)}${s.power_w ? `, ${s.power_w} W` : ""}</title></rect>`;
      if (l.device) for (const [a, b] of bad(s.from_ms, s.to_ms)) {
        svg += `<rect x="${x(a)}" y="${y + lane - 7}" width="${Math.max(x(b) - x(a), 1)}" height="3" fill="var(--bad)"/>`;
      }
    }
  });
  return svg + "</svg>";
}

const jobsPage = {
  mount(main) { main.innerHTML = `<h1>Batch jobs</h1><div class="controls">${zoneNote()}</div><div class="card"><div class="scroll" id="jobs"></div></div>`; },
  async update() {
    const [st, jobs] = await Promise.all([api("/v1/status"), api("/v1/jobs")]);
    showFreshness(st.freshness);
    const when = (r) => (r ? fmtDateTime(Date.parse(r.started)) : "–");
    $("#jobs").innerHTML = `<table id="jobs-table"><tr><th>job</th><th>schedule</th><th>next</th><th>last run</th><th>status</th><th>by</th><th>last success</th><th>version</th></tr>${
      jobs.jobs.map((j) => `<tr data-job="${esc(j.name)}"><td title="${esc(j.help)}">${esc(j.name)}</td><td>${esc(j.schedule)}</td>
        <td>${j.next ? fmtTime(Date.parse(j.next)) : "–"}</td><td>${j.last ? `#${j.last.number} ${when(j.last)}` : "–"}</td>
        <td class="${j.failing ? "bad" : "good"}" title="${esc((j.last && j.last.error) || "")}">${j.last ? esc(j.last.status) : "–"}</td>
        <td class="by">${j.last && j.last.by ? esc(j.last.by) : "–"}</td>
        <td>${when(j.last_ok)}</td><td>${j.last_ok && j.last_ok.version ? "v" + j.last_ok.version : "–"}</td></tr>`).join("")}</table>`;
  },
};

// ---- routing and live refresh -----------------------------------------------

const pages = { "": fleetPage, battery: batteryPage, hotel: hotelPage, room: roomPage, jobs: jobsPage, alerts: alertsPage };
let current = null, timer = null, seq = 0;

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, id] = path.split("/").map(decodeURIComponent);
  const page = pages[name || ""] || fleetPage;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === ({ "": "fleet", battery: "fleet", room: "hotel" }[name || ""] || name)));
  current = page;
  page.mount($("#page"), id, new URLSearchParams(query || ""));
  refresh();
}

// refresh updates the page in place; the newest refresh wins.
async function refresh() {
  clearTimeout(timer);
  const mine = ++seq, page = current;
  try {
    if (page.thresholds) await loadThresholdRules(); // thresholds.js
    await page.update();
    decorateThresholds(); // thresholds.js
    decorateStale(); // alerts.js
    document.body.dataset.loaded = String(mine);
    $("#page .error")?.remove();
  } catch (e) {
    if (mine === seq && !$("#page .error")) $("#page").insertAdjacentHTML("afterbegin", `<div class="error">${esc(e.message)}</div>`);
  }
  if (mine === seq) timer = setTimeout(refresh, REFRESH_MS);
}

$("#refresh-s").textContent = REFRESH_MS / 1000;
window.addEventListener("hashchange", route);
showWho().catch(() => {});
pollAlerts();
// Times need the site's zone before any page draws one; without it they
// would silently be the browser's, so the page says so instead.
loadSite().catch((e) => { $("#zone").textContent = `site zone unknown (${e.message}): times in UTC`; }).finally(route);
