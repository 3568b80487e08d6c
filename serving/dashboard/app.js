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
const localDay = (d = new Date()) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);

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
    (cut ? ` · cut <b title="${esc(fr.cut_time)}">${cut.toLocaleTimeString()}</b>` : " · no batch yet") +
    (fr.closed_through ? ` · closed through <b>${esc(fr.closed_through)}</b>` : "") +
    ` · speed lag <b class="${lagClass}" id="fresh-lag" data-value="${fr.speed_lag_records}">${fmt(fr.speed_lag_records, 0)}</b> records` +
    ` · as of ${new Date(fr.as_of).toLocaleTimeString()}`;
}

// ---- who is signed in -----------------------------------------------------

async function showWho() {
  const me = await api("/v1/whoami");
  $("#who").innerHTML = `<span>signed in as <b id="who-name">${esc(me.name)}</b> (<span id="who-role">${esc(me.role)}</span>)</span>` +
    `<form method="post" action="/logout"><button id="signout" type="submit">Sign out</button></form>`;
}

// ---- charts ----------------------------------------------------------------

// bandChart draws mean lines with a min–max band per window.
// setRange fixes its time axis to the queried range (ms).
function bandChart(el, title, unit, color) {
  let xr = null;
  const opts = {
    title, width: Math.max(el.clientWidth - 4, 280), height: 200,
    scales: { x: { time: true, range: (u, min, max) => xr || [min, max] } },
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
  return chart;
}

// ---- pages -----------------------------------------------------------------

const thresholds = { temp_above: 40, soc_below: 20, voltage_below: 49 };
const ranges = [
  { key: "temp_above", label: "Hot", unit: "°C", help: "temperature above" },
  { key: "soc_below", label: "Low charge", unit: "%", help: "state of charge below" },
  { key: "voltage_below", label: "Low voltage", unit: "V", help: "voltage below" },
];

const fleetPage = {
  tab: "temp_above", after: [""], chart: null,
  mount(main, _id, params) {
    // #/?range=soc_below&threshold=15 opens a given list (shareable links).
    if (ranges.some((r) => r.key === params.get("range"))) this.tab = params.get("range");
    const th = parseFloat(params.get("threshold"));
    if (isFinite(th)) thresholds[this.tab] = th;
    this.after = [""];
    main.innerHTML = `
      <h1>Fleet overview</h1>
      <div class="grid" id="fleet-cards"></div>
      <div class="grid wide">
        <div class="card"><h2>State of charge</h2><div class="hist" id="soc-hist"></div><div class="hist-labels">${
          [...Array(10)].map((_, i) => `<span>${i * 10}</span>`).join("")}</div></div>
        <div class="card"><h2>Extremes now</h2><div class="scroll" id="extremes"></div></div>
      </div>
      <div class="card" style="margin-bottom:14px"><h2>Fleet temperature, last hour (per minute)</h2><div id="fleet-chart"></div></div>
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
      if (isFinite(v)) { thresholds[this.tab] = v; this.after = [""]; refresh(); }
    });
    $("#next").addEventListener("click", () => { if (this.nextAfter) { this.after.push(this.nextAfter); refresh(); } });
    $("#prev").addEventListener("click", () => { if (this.after.length > 1) { this.after.pop(); refresh(); } });
    this.chart = bandChart($("#fleet-chart"), "", " °C", "#f5a623");
  },
  async update() {
    const now = await api("/v1/fleet/now?stale_after=60s");
    const f = now.fleet;
    showFreshness(now.freshness);
    const ext = (m, unit, digits) => f.batteries ? `${num(`${m}-min`, f[m].min, digits, unit)} (${batteryLink(f[m].min_battery_id)}) – ${num(`${m}-max`, f[m].max, digits, unit)} (${batteryLink(f[m].max_battery_id)})` : "–";
    $("#fleet-cards").innerHTML = `
      <div class="card"><h2>Reporting now</h2><div class="big">${num("fleet-reporting", f.reporting, 0)}</div>
        <div class="sub">of ${num("fleet-batteries", f.batteries, 0)} batteries; a reading in the last ${f.stale_after_s} s</div></div>
      <div class="card"><h2>Mean state of charge</h2><div class="big">${num("fleet-soc-mean", f.soc_pct.mean, 1, " %")}</div>
        <div class="sub">latest reading of every battery</div></div>
      <div class="card"><h2>Temperature</h2><div>${ext("temperature_c", " °C", 1)}</div><div class="sub">mean ${num("", f.temperature_c.mean, 1, " °C")}</div></div>
      <div class="card"><h2>Voltage</h2><div>${ext("voltage_v", " V", 2)}</div><div class="sub">mean ${num("", f.voltage_v.mean, 2, " V")}</div></div>`;
    const peak = Math.max(1, ...f.soc_histogram);
    $("#soc-hist").innerHTML = f.soc_histogram.map((n, i) =>
      `<div id="soc-bin-${i}" data-value="${n}" title="${i * 10}–${i * 10 + 10} %: ${n} batteries" style="height:${(100 * n) / peak}%"></div>`).join("");
    $("#extremes").innerHTML = `<table><tr><th>metric</th><th>min</th><th>battery</th><th>max</th><th>battery</th><th>mean</th></tr>${
      [["voltage_v", "Voltage", " V", 2], ["current_a", "Current", " A", 1], ["temperature_c", "Temperature", " °C", 1], ["soc_pct", "State of charge", " %", 1]]
        .map(([k, label, unit, d]) => `<tr><td>${label}</td><td>${num("", f[k].min, d, unit)}</td><td>${f.batteries ? batteryLink(f[k].min_battery_id) : ""}</td>
          <td>${num("", f[k].max, d, unit)}</td><td>${f.batteries ? batteryLink(f[k].max_battery_id) : ""}</td><td>${num("", f[k].mean, d, unit)}</td></tr>`).join("")}</table>`;

    const stats = await api("/v1/fleet/stats?res=1m");
    const w = stats.windows;
    this.chart.setRange(Date.parse(stats.from), Date.parse(stats.to));
    this.chart.setData([w.map((x) => x.start_ms / 1000), w.map((x) => x.temperature_c.max), w.map((x) => x.temperature_c.mean), w.map((x) => x.temperature_c.min)]);

    // Out of range: one page of batteries at a time, never the whole fleet.
    const r = ranges.find((x) => x.key === this.tab);
    document.querySelectorAll("#range-tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === this.tab));
    $("#threshold-label").textContent = r.help;
    if (document.activeElement !== $("#threshold")) $("#threshold").value = thresholds[this.tab];
    const after = this.after[this.after.length - 1];
    const list = await api(`/v1/batteries?${this.tab}=${thresholds[this.tab]}&limit=${PAGE_SIZE}&after=${encodeURIComponent(after)}`);
    this.nextAfter = list.next_after || "";
    $("#next").disabled = !this.nextAfter;
    $("#prev").disabled = this.after.length < 2;
    $("#range-count").innerHTML = `${num("range-matched", list.matched, 0)} of ${fmt(list.total, 0)} batteries ${r.help} ${thresholds[this.tab]} ${r.unit}`;
    $("#out-of-range").innerHTML = `<table id="range-table"><tr><th>battery</th><th>voltage</th><th>current</th><th>temperature</th><th>state of charge</th><th>reading at</th></tr>${
      list.batteries.map((b) => `<tr data-battery="${esc(b.battery_id)}"><td>${batteryLink(b.battery_id)}</td><td>${num("", b.voltage_v, 2, " V")}</td>
        <td>${num("", b.current_a, 1, " A")}</td><td>${num("", b.temperature_c, 1, " °C")}</td><td>${num("", b.soc_pct, 1, " %")}</td>
        <td>${new Date(b.ts_ms).toLocaleTimeString()}</td></tr>`).join("")}</table>`;
  },
};

const metrics = [
  ["voltage_v", "Voltage", " V", "#4fb3ff"], ["current_a", "Current", " A", "#b48ead"],
  ["temperature_c", "Temperature", " °C", "#f5a623"], ["soc_pct", "State of charge", " %", "#3ecf8e"],
];

const batteryPage = {
  span: "hour", charts: [],
  mount(main, id) {
    this.id = id;
    main.innerHTML = `
      <h1>Battery <span id="battery-id">${esc(id)}</span></h1>
      <div class="controls tabs" id="span-tabs"><button data-span="hour">last hour · 1 min</button><button data-span="day">last day · 1 h</button></div>
      <div class="grid" id="battery-latest"></div>
      <div class="grid wide">${metrics.map(([k]) => `<div class="card"><div id="chart-${k}"></div></div>`).join("")}</div>`;
    $("#span-tabs").addEventListener("click", (e) => {
      const t = e.target.closest("button[data-span]");
      if (t) { this.span = t.dataset.span; refresh(); }
    });
    this.charts = metrics.map(([k, label, unit, color]) => bandChart($(`#chart-${k}`), label, unit, color));
  },
  async update() {
    const id = encodeURIComponent(this.id);
    document.querySelectorAll("#span-tabs button").forEach((b) => b.classList.toggle("on", b.dataset.span === this.span));
    const latest = await api(`/v1/batteries/${id}`);
    showFreshness(latest.freshness);
    const l = latest.latest;
    $("#battery-latest").innerHTML = metrics.map(([k, label, unit]) =>
      `<div class="card"><h2>${label}</h2><div class="big">${num(`latest-${k}`, l[k], k === "voltage_v" ? 2 : 1, unit)}</div></div>`).join("") +
      `<div class="card"><h2>Latest reading</h2><div id="latest-ts" data-value="${l.ts_ms}">${new Date(l.ts_ms).toLocaleString()}</div>
        <div class="sub">event time of the newest reading</div></div>`;
    const q = this.span === "hour" ? "res=1m" : `res=1h&from=${Date.now() - 86400000}`;
    const stats = await api(`/v1/batteries/${id}/stats?${q}`);
    const w = stats.windows;
    const x = w.map((s) => s.start_ms / 1000);
    metrics.forEach(([k], i) => this.charts[i].setRange(Date.parse(stats.from), Date.parse(stats.to)));
    metrics.forEach(([k], i) => this.charts[i].setData([x, w.map((s) => s[k].max), w.map((s) => s[k].mean), w.map((s) => s[k].min)]));
    const last = w[w.length - 1];
    $("#battery-latest").insertAdjacentHTML("beforeend", `<div class="card"><h2>Windows</h2><div class="big">${num("windows-count", w.length, 0)}</div>
      <div class="sub">${num("windows-readings", w.reduce((a, s) => a + s.n, 0), 0)} readings${last ? `; last window mean ${num("last-window-soc", last.soc_pct.mean, 2, " %")}` : ""}</div></div>`);
  },
};

const usageCols = [["energy_wh", "energy"], ["waste_wh", "waste"], ["on_vacant_s", "on while vacant"], ["on_unsold_s", "on while unsold"]];
const usageCells = (u) => `<td>${num("", u.energy_wh, 1, " Wh")}</td><td class="warn">${num("", u.waste_wh, 1, " Wh")}</td><td>${hours(u.on_vacant_s)}</td><td>${hours(u.on_unsold_s)}</td>`;
const wasteBar = (u) => {
  const e = Math.max(u.energy_wh, 1e-9);
  return `<div class="bar" title="waste ${fmt((100 * u.waste_wh) / e, 0)} % of energy"><span style="width:${(100 * (u.energy_wh - u.waste_wh)) / e}%;background:var(--good)"></span><span style="width:${(100 * u.waste_wh) / e}%;background:var(--bad)"></span></div>`;
};

const hotelPage = {
  offset: 0,
  mount(main, _id, params) {
    this.day = params.get("day") || this.day || localDay();
    this.offset = 0;
    main.innerHTML = `
      <h1>Hotel energy</h1>
      <div class="controls"><label>day <input type="date" id="day" value="${esc(this.day)}"></label>
        <button id="day-prev">‹ day before</button><button id="day-next">day after ›</button><span class="sub" id="day-state"></span></div>
      <div class="grid" id="hotel-cards"></div>
      <div class="card" style="margin-bottom:14px"><h2>By device type</h2><div class="scroll" id="by-type"></div></div>
      <div class="card"><h2>Rooms, most waste first</h2><div class="scroll" id="rooms"></div>
        <div class="controls"><button id="rooms-prev">‹ previous</button><button id="rooms-next">next ›</button></div></div>`;
    const go = (day) => { location.hash = `#/hotel?day=${day}`; };
    $("#day").addEventListener("change", (e) => e.target.value && go(e.target.value));
    const shift = (n) => { const d = new Date(this.day + "T12:00:00Z"); d.setUTCDate(d.getUTCDate() + n); go(d.toISOString().slice(0, 10)); };
    $("#day-prev").addEventListener("click", () => shift(-1));
    $("#day-next").addEventListener("click", () => shift(1));
    $("#rooms-next").addEventListener("click", () => { this.offset += PAGE_SIZE; refresh(); });
    $("#rooms-prev").addEventListener("click", () => { this.offset = Math.max(0, this.offset - PAGE_SIZE); refresh(); });
  },
  async update() {
    const day = encodeURIComponent(this.day);
    const [rooms, types] = await Promise.all([
      api(`/v1/hotel/days/${day}?by=room&limit=${PAGE_SIZE}&offset=${this.offset}`),
      api(`/v1/hotel/days/${day}?by=device_type`),
    ]);
    showFreshness(rooms.freshness);
    const t = rooms.total;
    $("#hotel-cards").innerHTML = `
      <div class="card"><h2>Energy</h2><div class="big">${num("hotel-energy", t.energy_wh / 1000, 2, " kWh")}</div><div class="sub">${num("hotel-rooms", rooms.rooms_reporting, 0)} rooms reporting</div></div>
      <div class="card"><h2>Waste</h2><div class="big warn">${num("hotel-waste", t.waste_wh / 1000, 2, " kWh")}</div><div class="sub">on while the room was vacant or unsold</div>${wasteBar(t)}</div>
      <div class="card"><h2>On while vacant</h2><div class="big">${hours(t.on_vacant_s)}</div><div class="sub">device-hours</div></div>
      <div class="card"><h2>On while unsold</h2><div class="big">${hours(t.on_unsold_s)}</div><div class="sub">device-hours</div></div>`;
    $("#by-type").innerHTML = `<table id="type-table"><tr><th>device type</th><th>rooms</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>waste share</th></tr>${
      types.device_types.map((u) => `<tr data-type="${esc(u.device_type)}"><td>${esc(u.device_type)}</td><td>${u.rooms}</td>${usageCells(u)}<td style="min-width:120px">${wasteBar(u)}</td></tr>`).join("")}</table>`;
    const sum = (r, k) => Object.values(r.by_type || {}).reduce((a, u) => a + u[k], 0);
    $("#rooms").innerHTML = `<table id="room-table"><tr><th>room</th><th>state</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>occupied</th><th>sold</th></tr>${
      rooms.rooms.map((r) => `<tr data-room="${esc(r.room_id)}"><td><a href="#/room/${encodeURIComponent(r.room_id)}?day=${day}">${esc(r.room_id)}</a></td>
        <td class="sub">${r.closed ? `closed r${r.revision}` : "open"}</td><td>${num("", r.energy_wh, 1, " Wh")}</td><td class="warn">${num("", r.waste_wh, 1, " Wh")}</td>
        <td>${hours(sum(r, "on_vacant_s"))}</td><td>${hours(sum(r, "on_unsold_s"))}</td><td>${hours(r.occupied_s)}</td><td>${hours(r.sold_s)}</td></tr>`).join("")}</table>`;
    $("#rooms-prev").disabled = this.offset === 0;
    $("#rooms-next").disabled = this.offset + PAGE_SIZE >= rooms.rooms_reporting;
    $("#day-state").textContent = rooms.freshness.closed_through && this.day <= rooms.freshness.closed_through ? "closed by batch" : "open: live from the speed layer";
  },
};

const typeColor = (t) => ({ light: "#f5d76e", hvac: "#4fb3ff", tv: "#b48ead" }[t] || "#8fbcbb");

const roomPage = {
  mount(main, id, params) {
    this.id = id;
    this.day = params.get("day") || localDay();
    main.innerHTML = `
      <h1>Room <span id="room-id">${esc(id)}</span> · ${esc(this.day)}</h1>
      <div class="controls"><a href="#/hotel?day=${esc(this.day)}">‹ hotel report</a></div>
      <div class="grid" id="room-cards"></div>
      <div class="card" style="margin-bottom:14px"><h2>Timeline</h2><div class="timeline" id="timeline"></div>
        <div class="legend"><span><i style="background:var(--good)"></i>occupied</span><span><i style="background:var(--accent)"></i>checked in (sold)</span>
        <span><i style="background:#f5d76e"></i>device on</span><span><i style="background:var(--bad)"></i>on while vacant or unsold</span></div></div>
      <div class="card"><h2>By device type</h2><div class="scroll" id="room-types"></div></div>`;
  },
  async update() {
    const id = encodeURIComponent(this.id), day = encodeURIComponent(this.day);
    const [days, tl] = await Promise.all([api(`/v1/rooms/${id}/days?from=${day}&to=${day}`), api(`/v1/rooms/${id}/timeline?day=${day}`)]);
    showFreshness(days.freshness);
    const d = days.days[0] || { energy_wh: 0, waste_wh: 0, occupied_s: 0, sold_s: 0, by_type: {} };
    $("#room-cards").innerHTML = `
      <div class="card"><h2>Energy</h2><div class="big">${num("room-energy", d.energy_wh, 1, " Wh")}</div><div class="sub">${d.closed ? `closed by batch, revision ${d.revision}` : "open day, live"}</div></div>
      <div class="card"><h2>Waste</h2><div class="big warn">${num("room-waste", d.waste_wh, 1, " Wh")}</div>${wasteBar(d)}</div>
      <div class="card"><h2>Occupied</h2><div class="big">${num("room-occupied", d.occupied_s / 3600, 2, " h")}</div></div>
      <div class="card"><h2>Sold</h2><div class="big">${num("room-sold", d.sold_s / 3600, 2, " h")}</div></div>`;
    $("#room-types").innerHTML = `<table id="room-type-table"><tr><th>device type</th>${usageCols.map(([, l]) => `<th>${l}</th>`).join("")}<th>on</th></tr>${
      Object.entries(d.by_type || {}).sort((a, b) => b[1].waste_wh - a[1].waste_wh).map(([t, u]) =>
        `<tr data-type="${esc(t)}"><td>${esc(t)}</td>${usageCells(u)}<td>${hours(u.on_s)}</td></tr>`).join("")}</table>`;
    $("#timeline").innerHTML = timelineSVG(tl.timeline);
  },
};

// timelineSVG draws a room's day: one lane per device, plus occupancy and
// stay; a device's on-time turns red where the room was vacant or unsold.
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
    svg += `<line x1="${x(ms)}" x2="${x(ms)}" y1="${top - 4}" y2="${H}" stroke="#273040"/><text x="${x(ms)}" y="12" fill="#8a94a6" font-size="11" text-anchor="${h === 24 ? "end" : h === 0 ? "start" : "middle"}">${String(h).padStart(2, "0")}:00</text>`;
  }
  if (t.to_ms < t.from_ms + span) {
    svg += `<line x1="${x(t.to_ms)}" x2="${x(t.to_ms)}" y1="${top - 4}" y2="${H}" stroke="var(--accent)" stroke-dasharray="3 3"/><text x="${x(t.to_ms)}" y="${H - 2}" fill="var(--accent)" font-size="11" text-anchor="start" dx="3">now</text>`;
  }
  lanes.forEach((l, i) => {
    const y = top + i * lane;
    svg += `<text x="0" y="${y + 15}" fill="#d8dee9" font-size="12"><title>${esc(l.title || l.label)}</title>${esc(l.label)}</text>`;
    for (const s of l.spans) {
      svg += `<rect class="span" data-lane="${esc(l.title || l.label)}" data-from="${s.from_ms}" data-to="${s.to_ms}" x="${x(s.from_ms)}" y="${y + 3}" width="${Math.max(x(s.to_ms) - x(s.from_ms), 1)}" height="${lane - 8}" rx="2" fill="${l.color}"><title>${esc(l.title || l.label)}: ${new Date(s.from_ms).toLocaleTimeString()}–${new Date(s.to_ms).toLocaleTimeString()}${s.power_w ? `, ${s.power_w} W` : ""}</title></rect>`;
      if (l.device) for (const [a, b] of bad(s.from_ms, s.to_ms)) {
        svg += `<rect x="${x(a)}" y="${y + lane - 7}" width="${Math.max(x(b) - x(a), 1)}" height="3" fill="var(--bad)"/>`;
      }
    }
  });
  return svg + "</svg>";
}

const jobsPage = {
  mount(main) { main.innerHTML = `<h1>Batch jobs</h1><div class="card"><div class="scroll" id="jobs"></div></div>`; },
  async update() {
    const [st, jobs] = await Promise.all([api("/v1/status"), api("/v1/jobs")]);
    showFreshness(st.freshness);
    const when = (r) => (r ? new Date(r.started).toLocaleString() : "–");
    $("#jobs").innerHTML = `<table id="jobs-table"><tr><th>job</th><th>schedule</th><th>next</th><th>last run</th><th>status</th><th>by</th><th>last success</th><th>version</th></tr>${
      jobs.jobs.map((j) => `<tr data-job="${esc(j.name)}"><td title="${esc(j.help)}">${esc(j.name)}</td><td>${esc(j.schedule)}</td>
        <td>${j.next ? new Date(j.next).toLocaleTimeString() : "–"}</td><td>${j.last ? `#${j.last.number} ${when(j.last)}` : "–"}</td>
        <td class="${j.failing ? "bad" : "good"}" title="${esc((j.last && j.last.error) || "")}">${j.last ? esc(j.last.status) : "–"}</td>
        <td class="by">${j.last && j.last.by ? esc(j.last.by) : "–"}</td>
        <td>${when(j.last_ok)}</td><td>${j.last_ok && j.last_ok.version ? "v" + j.last_ok.version : "–"}</td></tr>`).join("")}</table>`;
  },
};

// ---- routing and live refresh -----------------------------------------------

const pages = { "": fleetPage, battery: batteryPage, hotel: hotelPage, room: roomPage, jobs: jobsPage };
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
    await page.update();
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
route();
