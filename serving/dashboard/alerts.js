// The control room's alerts on every page: a banner when anything fires
// (the whole fleet silent is the loudest), the ingest state beside the
// speed lag, stale marks on tiles whose data stopped, and the Alerts page
// (firing, history, silences). Loaded before app.js, which calls
// decorateFreshness and decorateStale after each refresh.
"use strict";

// alertState is the newest GET /v1/alerts answer (null before the first).
let alertState = null;

async function pollAlerts() {
  try {
    alertState = await api("/v1/alerts");
    showBanner();
    decorateFreshness();
    decorateStale();
  } catch (e) {
    // An older server without /v1/alerts: no banner rather than a broken page.
  }
  setTimeout(pollAlerts, REFRESH_MS);
}

const silentFor = (s) => (s >= 3600 ? `${fmt(s / 3600, 1)} h` : s >= 60 ? `${fmt(s / 60, 1)} min` : `${fmt(s, 0)} s`);

function showBanner() {
  const el = document.getElementById("alert-banner");
  if (!el || !alertState) return;
  const firing = alertState.alerts || [];
  const ing = alertState.ingest;
  const fleetSilent = (ing && ing.stale) || firing.some((a) => a.kind === "pipeline" && a.subject === "fleet");
  if (!firing.length && !fleetSilent) {
    el.className = "alert-banner clear";
    el.dataset.state = "clear";
    el.innerHTML = "";
    return;
  }
  const crit = firing.filter((a) => a.severity === "critical").length;
  const parts = [];
  if (fleetSilent) {
    parts.push(`<b id="banner-fleet-silent">THE WHOLE FLEET IS SILENT</b>: no record has reached the pipeline for ${
      ing && ing.silent_s != null ? silentFor(ing.silent_s) : "a while"}${ing && ing.last_record_at ? ` (last at ${fmtDateTime(Date.parse(ing.last_record_at))})` : ""}`);
  }
  const others = firing.filter((a) => !(a.kind === "pipeline" && a.subject === "fleet"));
  if (others.length) {
    const top = others.slice(0, 3).map((a) => `${esc(a.rule)} on ${esc(a.subject)}`).join(", ");
    parts.push(`<span id="banner-count" data-value="${firing.length}">${firing.length}</span> alert${firing.length === 1 ? "" : "s"} firing` +
      (crit ? ` (${crit} critical)` : "") + `: ${top}${others.length > 3 ? ", …" : ""}`);
  }
  el.className = "alert-banner " + (fleetSilent ? "loudest" : crit ? "critical" : "warning");
  el.dataset.state = fleetSilent ? "fleet_silent" : "firing";
  el.innerHTML = parts.join(" · ") + ` <a href="#/alerts">see alerts</a>`;
}

// decorateFreshness keeps "speed lag 0" from looking calm while nothing
// arrives: a lag of zero records says nothing when no record comes.
function decorateFreshness() {
  const ing = alertState && alertState.ingest;
  const fr = document.getElementById("freshness");
  if (!fr || !ing) return;
  let mark = document.getElementById("fresh-ingest");
  if (!mark) {
    fr.insertAdjacentHTML("beforeend", ` · <b id="fresh-ingest"></b>`);
    mark = document.getElementById("fresh-ingest");
  }
  mark.className = ing.stale ? "lag-bad" : "";
  mark.dataset.stale = String(!!ing.stale);
  mark.textContent = ing.stale ? `INGEST STALE ${silentFor(ing.silent_s || 0)}` : "ingest live";
  document.getElementById("fresh-lag")?.classList.toggle("lag-bad", !!ing.stale);
}

// decorateStale marks the live tiles when no record arrives: their values
// are the last ones seen, not the fleet now.
function decorateStale() {
  const ing = alertState && alertState.ingest;
  const stale = !!(ing && ing.stale);
  document.querySelectorAll("#fleet-cards .card, #battery-latest .card").forEach((c) => {
    c.classList.toggle("stale", stale);
    let m = c.querySelector(".stale-mark");
    if (stale && !m) {
      c.insertAdjacentHTML("afterbegin", `<span class="stale-mark" title="no record reached the pipeline since ${esc(ing.last_record_at || "")}">stale</span>`);
    } else if (!stale && m) {
      m.remove();
    }
  });
}

// ---- the Alerts page -------------------------------------------------------

const alertsPage = {
  mount(main) {
    main.innerHTML = `
      <h1>Alerts</h1>
      <div class="card" style="margin-bottom:14px"><h2>Firing now</h2><div class="scroll" id="alerts-firing"></div></div>
      <div class="card" style="margin-bottom:14px"><h2>Silences</h2><div class="scroll" id="alerts-silences"></div>
        <form id="silence-form" class="controls" hidden>
          <select id="silence-field"><option value="rule">rule</option><option value="subject">subject</option></select>
          <input id="silence-value" placeholder="battery_hot or B-00042" required>
          <label><input id="silence-prefix" type="checkbox"> prefix</label>
          <input id="silence-duration" value="2h" style="width:70px" title="how long, e.g. 30m, 2h">
          <input id="silence-comment" placeholder="why" required>
          <button id="silence-create" type="submit">Silence</button><span class="sub" id="silence-msg"></span>
        </form></div>
      <div class="card"><h2>History</h2><div class="scroll" id="alerts-history"></div></div>
      <div class="card" style="margin-top:14px"><h2>Rules</h2><div class="scroll" id="alerts-rules"></div></div>`;
    api("/v1/whoami").then((me) => { if (me.role === "engineer" || me.role === "admin") $("#silence-form").hidden = false; }).catch(() => {});
    $("#silence-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { matchers: [{ field: $("#silence-field").value, value: $("#silence-value").value, prefix: $("#silence-prefix").checked }],
        duration: $("#silence-duration").value, comment: $("#silence-comment").value };
      const r = await fetch("/v1/alerts/silences", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body) });
      const out = await r.json().catch(() => ({}));
      $("#silence-msg").textContent = r.ok ? `silence ${out.silence.id} created` : out.error || r.statusText;
      refresh();
    });
    $("#alerts-silences").addEventListener("click", async (e) => {
      const b = e.target.closest("button[data-silence]");
      if (!b) return;
      const r = await fetch(`/v1/alerts/silences/${b.dataset.silence}`, { method: "DELETE", headers: { Accept: "application/json" } });
      if (!r.ok) $("#silence-msg").textContent = (await r.json().catch(() => ({}))).error || r.statusText;
      refresh();
    });
  },
  async update() {
    const [firing, hist, sil, rules] = await Promise.all([api("/v1/alerts"), api("/v1/alerts/history?limit=50"), api("/v1/alerts/silences"), api("/v1/alerts/rules")]);
    alertState = firing;
    showBanner();
    const row = (a) => `<tr class="sev-${esc(a.severity)}" id="alert-${esc(a.fingerprint)}"><td>${esc(a.rule)}</td><td>${esc(a.subject)}</td><td>${esc(a.severity)}</td>
      <td>${esc(a.state)}${a.silenced ? ' <span class="sub">silenced</span>' : ""}</td><td>${fmtDateTime(a.start_ms)}</td><td>${fmtDateTime(a.at_ms)}</td><td>${esc(a.summary)}</td></tr>`;
    const head = `<tr><th>rule</th><th>subject</th><th>severity</th><th>state</th><th>since</th><th>at</th><th>summary</th></tr>`;
    $("#alerts-firing").innerHTML = firing.alerts.length ? `<table id="firing-table" data-value="${firing.alerts.length}">${head}${firing.alerts.map(row).join("")}</table>`
      : `<p class="good" id="firing-none">Nothing fires.</p>`;
    $("#alerts-history").innerHTML = `<table>${head}${hist.transitions.map(row).join("")}</table>`;
    $("#alerts-silences").innerHTML = sil.silences.length ? `<table><tr><th>matchers</th><th>from</th><th>until</th><th>by</th><th>comment</th><th></th></tr>${
      sil.silences.map((s) => `<tr><td>${s.matchers.map((m) => `${esc(m.field)} ${m.prefix ? "starts with" : "="} ${esc(m.value)}`).join(", ")}</td>
        <td>${fmtDateTime(Date.parse(s.starts_at))}</td><td>${fmtDateTime(Date.parse(s.ends_at))}</td><td>${esc(s.created_by)}</td><td>${esc(s.comment)}</td>
        <td><button data-silence="${esc(s.id)}">delete</button></td></tr>`).join("")}</table>` : `<p class="sub">No silences.</p>`;
    $("#alerts-rules").innerHTML = `<table><tr><th>rule</th><th>kind</th><th>severity</th><th>condition</th></tr>${rules.rules.map((r) =>
      `<tr><td>${esc(r.name)}</td><td>${esc(r.kind)}</td><td>${esc(r.severity)}</td><td>${esc(ruleText(r))}</td></tr>`).join("")}</table>`;
  },
};

function ruleText(r) {
  switch (r.kind) {
    case "threshold": return `${r.metric} ${r.op} ${r.fire} for ${r.for_s || 0} s, clears ${r.op === ">" ? "<" : ">"} ${r.clear}`;
    case "silent": case "room_waste": return `after ${r.after_s} s`;
    case "fleet_share": return `reporting share below ${r.below} for ${r.for_s} s`;
    default: return `${r.check}${r.above != null ? ` above ${r.above}` : ""}${r.for_s ? ` for ${r.for_s} s` : ""}`;
  }
}
