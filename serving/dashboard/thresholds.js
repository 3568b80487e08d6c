// Threshold colours and lines from the alert rules in force. The pages ask
// judge() how a battery metric's value stands against the threshold rules
// and charts draw each rule's fire value. No number lives here: the rules
// come from GET /v1/alerts/rules on every refresh, so a changed rules file
// recolours the pages and moves the lines within one refresh. Loaded after
// alerts.js and before app.js, which calls loadThresholdRules before a
// page that shows battery metrics updates, and decorateThresholds after.
"use strict";

const metricUnits = { temperature_c: "°C", soc_pct: "%", voltage_v: "V", current_a: "A" };
const metricNames = { temperature_c: "temperature", soc_pct: "state of charge", voltage_v: "voltage", current_a: "current" };
// sevRank orders the looks: a value past several rules takes the worst;
// "near" (past the clear value, not yet the fire value) is the softest.
const sevRank = { "": 0, near: 1, info: 2, warning: 3, critical: 4 };
const worse = (a, b) => ((sevRank[b] || 0) > (sevRank[a] || 0) ? b : a);

// thresholdRules are the threshold rules of the newest answer; error says
// why there are none when the server did not answer (alerts off: 404).
const thresholdRules = { list: [], error: "" };

async function loadThresholdRules() {
  try {
    const body = await api("/v1/alerts/rules");
    thresholdRules.list = (body.rules || []).filter((r) => r.kind === "threshold" && metricUnits[r.metric] &&
      (r.op === ">" || r.op === "<") && isFinite(r.fire) && isFinite(r.clear));
    thresholdRules.error = "";
  } catch (e) {
    // Colours from rules no longer known would mislead: show none, say why.
    thresholdRules.list = [];
    thresholdRules.error = e.message;
  }
}

const rulesFor = (metric) => thresholdRules.list.filter((r) => r.metric === metric);
const ruleCond = (r, v = r.fire) => `${metricNames[r.metric]} ${r.op} ${v} ${metricUnits[r.metric]}`;

// listDefault is the value a fleet list filter (metric beyond op) starts
// at: the first value any rule on it fires at, so the list holds exactly
// the batteries some rule calls out; null when no rule watches it.
function listDefault(metric, op) {
  const fires = rulesFor(metric).filter((r) => r.op === op).map((r) => r.fire);
  if (!fires.length) return null;
  const rule = rulesFor(metric).find((r) => r.op === op && r.fire === (op === ">" ? Math.min(...fires) : Math.max(...fires)));
  return { value: rule.fire, rule: rule.name };
}

// judge says how value stands against metric's rules: level is the worst
// severity of the rules it is past, else "near" when it is past a rule's
// clear value (inside the hysteresis band), else "".
function judge(metric, value) {
  const out = { level: "", past: [], near: [] };
  if (value == null || !isFinite(value)) return out;
  for (const r of rulesFor(metric)) {
    const past = r.op === ">" ? value > r.fire : value < r.fire;
    if (past) {
      out.past.push(r);
      out.level = worse(out.level, r.severity);
    } else if (r.op === ">" ? value > r.clear : value < r.clear) {
      out.near.push(r);
      out.level = worse(out.level, "near");
    }
  }
  return out;
}

// markValue wraps a shown value of metric in its threshold look: a class
// by severity, the rules it is past in data-rules, and a visible arrow
// with the rules spelled out in its title, so colour is never the only
// sign.
function markValue(metric, value, html) {
  const j = judge(metric, value);
  if (!j.level) return html;
  const rules = j.past.length ? j.past : j.near;
  const title = j.past.length
    ? "past " + j.past.map((r) => `${r.name} (${r.severity}): ${ruleCond(r)}`).join("; ")
    : "near " + j.near.map((r) => `${r.name} (${r.severity}): fires at ${ruleCond(r)}, clears at ${r.clear} ${metricUnits[r.metric]}`).join("; ");
  const sym = j.past.length ? (j.past[0].op === ">" ? "▲" : "▼") : "≈";
  return `<span class="thr thr-${j.level}" data-thr="${j.level}" data-rules="${esc(rules.map((r) => r.name).join(" "))}">${html}` +
    `<span class="thr-mark" role="img" aria-label="${esc(title)}" title="${esc(title)}">${sym}</span></span>`;
}

// thresholdNote is where a page says what its colours come from.
const thresholdNote = () => `<a class="sub thr-note" id="thr-note" href="#/alerts"></a>`;

// decorateThresholds gives each tile and battery row the worst look of the
// values it shows, with the severity written out beside the colour.
function decorateThresholds() {
  const note = document.getElementById("thr-note");
  if (note) {
    const n = thresholdRules.list.length;
    note.dataset.rules = String(n);
    note.textContent = thresholdRules.error ? `no threshold colours: the alert rules did not load (${thresholdRules.error})`
      : `colours and lines from ${n} threshold rule${n === 1 ? "" : "s"}`;
  }
  document.querySelectorAll("#fleet-cards .card, #battery-latest .card, tr[data-battery]").forEach((el) => {
    let level = "";
    const rules = new Set();
    el.querySelectorAll(".thr[data-thr]").forEach((m) => {
      level = worse(level, m.dataset.thr);
      m.dataset.rules.split(" ").forEach((n) => rules.add(n));
    });
    Object.keys(sevRank).forEach((s) => s && el.classList.remove(`thr-${s}`));
    el.querySelectorAll(".thr-badge").forEach((b) => b.remove());
    if (!level) {
      delete el.dataset.thr;
      delete el.dataset.rules;
      return;
    }
    el.classList.add(`thr-${level}`);
    el.dataset.thr = level;
    el.dataset.rules = [...rules].join(" ");
    const badge = `<span class="thr-badge thr-${level}" title="${esc([...rules].join(", "))}">${level === "near" ? "near threshold" : level}</span>`;
    (el.querySelector("h2") || el.querySelector("td") || el).insertAdjacentHTML("beforeend", " " + badge);
  });
}

// thresholdRange is a y scale range that holds the data and every line,
// so a threshold the data stays far from is still drawn.
function thresholdRange(min, max, rules) {
  const fires = rules.map((r) => r.fire);
  if (min == null || !isFinite(min)) {
    if (!fires.length) return [0, 1];
    min = max = fires[0];
  }
  // Padded by a tenth of the span on each side, so a line at the edge of
  // the data is not drawn on the chart's border.
  const lo = Math.min(min, ...fires), hi = Math.max(max, ...fires);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.1;
  return [lo - pad, hi + pad];
}

// drawThresholdLines draws a dashed line per rule at its fire value over a
// uPlot chart, labelled with the rule and value. They are elements, not
// canvas strokes, so they carry their rule and value like every number.
function drawThresholdLines(u, rules) {
  let box = u.over.querySelector(".thr-lines");
  if (!box) {
    box = document.createElement("div");
    box.className = "thr-lines";
    u.over.appendChild(box);
  }
  box.innerHTML = rules.map((r) => {
    const y = u.valToPos(r.fire, "y");
    const label = `${r.name} ${r.op} ${r.fire} ${metricUnits[r.metric]}`;
    // A line near the top keeps its label below it, inside the chart.
    return `<div class="thr-line thr-${esc(r.severity)}${y < 14 ? " below" : ""}" data-rule="${esc(r.name)}" data-value="${r.fire}" style="top:${y}px" title="${esc(`${r.name} (${r.severity}) fires at ${ruleCond(r)}`)}">` +
      `<span class="thr-label">${esc(label)}</span></div>`;
  }).join("");
}
