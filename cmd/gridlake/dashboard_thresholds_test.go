package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/headless"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// apiRule is a threshold rule as GET /v1/alerts/rules shows it.
type apiRule struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"`
	Metric   string   `json:"metric"`
	Op       string   `json:"op"`
	Fire     *float64 `json:"fire"`
	Clear    *float64 `json:"clear"`
}

func (r apiRule) String() string {
	return fmt.Sprintf("%s(%s %s %s %g, clear %g)", r.Name, r.Severity, r.Metric, r.Op, *r.Fire, *r.Clear)
}

var thrRank = map[string]int{"": 0, "near": 1, "info": 2, "warning": 3, "critical": 4}

// thrLevel is the look a value of metric must have under rules: the worst
// severity of the rules it is past, else near when past a rule's clear
// value, else none. The test's own reading of the rules the API serves.
func thrLevel(rules []apiRule, metric string, v float64) string {
	level := ""
	for _, r := range rules {
		if r.Kind != "threshold" || r.Metric != metric {
			continue
		}
		above := r.Op == ">"
		l := ""
		switch {
		case above && v > *r.Fire, !above && v < *r.Fire:
			l = r.Severity
		case above && v > *r.Clear, !above && v < *r.Clear:
			l = "near"
		}
		if thrRank[l] > thrRank[level] {
			level = l
		}
	}
	return level
}

func worstLevel(levels ...string) string {
	w := ""
	for _, l := range levels {
		if thrRank[l] > thrRank[w] {
			w = l
		}
	}
	return w
}

// TestDashboard_ThresholdColoursAndLinesFollowTheRules drives headless
// Chromium against `gridlake up` with a rules file and four batteries of
// known readings: every battery row on the fleet list, the fleet tiles and
// a battery's own tiles carry the look the rules the API serves give their
// values (the rule's severity, "near" inside the hysteresis band, a badge
// that writes it out), the Hot list starts where the lowest temperature
// rule fires, and each battery chart draws a dashed line per threshold
// rule on its metric, labelled with the rule and value, at the pixel the
// chart's own scale gives the fire value. The rules file is then
// rewritten: the page follows within a refresh. Screenshots land in
// artifacts/dashboard/.
func TestDashboard_ThresholdColoursAndLinesFollowTheRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	const (
		v1 = "rules:\n" +
			"  - {name: hot, kind: threshold, severity: critical, metric: temperature_c, op: \">\", fire: 45, clear: 42, for: 30s}\n" +
			"  - {name: soc_low, kind: threshold, severity: warning, metric: soc_pct, op: \"<\", fire: 10, clear: 15, for: 1m}\n" +
			"  - {name: battery_silent, kind: silent, severity: warning, after: 5m}\n"
		// hot moves up past B-HOT, warm is new below it, soc_low turns
		// critical at a lower value.
		v2 = "rules:\n" +
			"  - {name: hot, kind: threshold, severity: critical, metric: temperature_c, op: \">\", fire: 55, clear: 52, for: 30s}\n" +
			"  - {name: warm, kind: threshold, severity: warning, metric: temperature_c, op: \">\", fire: 40, clear: 38, for: 30s}\n" +
			"  - {name: soc_low, kind: threshold, severity: critical, metric: soc_pct, op: \"<\", fire: 8, clear: 12, for: 1m}\n"
	)
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	users, tokens := testUsersFile(t)
	u := startUp(t, "--simulate=false", "--jobs-enabled=false", "--auth-users-file", users, "--alerts-rules-file", path)
	token := tokens[auth.Viewer]
	base := "http://" + u.http
	shots := screenshotDir(t)

	// Four batteries, six readings each over the last five minutes:
	// temperature and state of charge on either side of the rules.
	batteries := map[string][2]float64{ // temperature_c, soc_pct
		"B-HOT": {50, 60}, "B-NEAR": {43.5, 60}, "B-LOW": {30, 5}, "B-OK": {30, 60},
	}
	w := kafkaio.NewWriter([]string{u.kafka})
	defer w.Close()
	t0 := time.Now().Add(-5 * time.Minute)
	for i := 0; i < 6; i++ {
		for id, v := range batteries {
			ts := t0.Add(time.Duration(i) * 50 * time.Second)
			body := fmt.Sprintf(`{"battery_id":%q,"ts":%d,"voltage_v":50,"current_a":1,"temperature_c":%g,"soc_pct":%g}`, id, ts.UnixMilli(), v[0], v[1])
			if err := w.WriteMessages(context.Background(), kafka.Message{Topic: schemas.TopicBattery, Key: []byte(id), Value: []byte(body), Time: ts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.WaitUntil(t, 60*time.Second, "the speed layer to hold the four batteries", func() bool {
		var now struct {
			Fleet     struct{ Batteries int }
			Freshness struct {
				SpeedLag int64 `json:"speed_lag_records"`
			}
		}
		getJSON(t, token, base+"/v1/fleet/now?stale_after=10m", &now)
		return now.Fleet.Batteries == len(batteries) && now.Freshness.SpeedLag == 0
	}, u.stderr)

	// rulesNow waits until the API serves the threshold rules named.
	rulesNow := func(step string, names ...string) []apiRule {
		t.Helper()
		var rules []apiRule
		testenv.WaitUntil(t, 30*time.Second, step+": /v1/alerts/rules lists "+strings.Join(names, ","), func() bool {
			var out struct{ Rules []apiRule }
			getJSON(t, token, base+"/v1/alerts/rules", &out)
			rules = nil
			var got []string
			for _, r := range out.Rules {
				if r.Kind == "threshold" {
					rules = append(rules, r)
					got = append(got, fmt.Sprintf("%s:%g", r.Name, *r.Fire))
				}
			}
			return strings.Join(got, ",") == strings.Join(names, ",")
		}, u.stderr)
		return rules
	}

	b := browser(t)
	signIn(t, b, base, "vera", "vera-password", shots)

	rules := rulesNow("v1", "hot:45", "soc_low:10")
	levels := checkFleetThresholds(t, b, token, base, rules, filepath.Join(shots, "fleet-thresholds.png"))
	// The scenario means something only if every look is on the page.
	for _, want := range []string{"critical", "warning", "near", ""} {
		if !levels[want] {
			t.Fatalf("v1: no battery row looks %q; the readings do not exercise the rules (%v)", want, levels)
		}
	}
	checkBatteryThresholds(t, b, token, base, "B-HOT", rules, filepath.Join(shots, "battery-thresholds.png"))
	// A pack inside the hysteresis band is not calm on its own page.
	checkBatteryThresholds(t, b, token, base, "B-NEAR", rules, filepath.Join(shots, "battery-thresholds-near.png"))

	// The rules change under the open page: it follows within a refresh.
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour) // a modification time that differs whatever the file system's resolution
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	rules = rulesNow("v2", "hot:55", "warm:40", "soc_low:8")
	if err := b.WaitFor(`(() => { const l = document.querySelector('#chart-temperature_c .thr-line[data-rule="warm"]');
		const h = document.querySelector('#chart-temperature_c .thr-line[data-rule="hot"]');
		return l && h && h.dataset.value === "55"; })()`, 30*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("the battery page's chart did not follow the changed rules: %v\n%s", err, dom)
	}
	checkBatteryThresholds(t, b, token, base, "B-HOT", rules, filepath.Join(shots, "battery-thresholds-changed.png"))
	checkFleetThresholds(t, b, token, base, rules, filepath.Join(shots, "fleet-thresholds-changed.png"))
}

// checkFleetThresholds opens the fleet page with a list of every battery
// and checks each row's and tile's look against rules, then the Hot list
// as it opens: it starts where the lowest temperature rule fires. It
// returns the looks the rows showed.
func checkFleetThresholds(t *testing.T, b *headless.Browser, token, base string, rules []apiRule, shot string) map[string]bool {
	t.Helper()
	chromium(t, b, base+"/#/?range=temp_above&threshold=-100", shot, 1280, 1100)
	var list struct {
		Batteries []struct {
			ID           string  `json:"battery_id"`
			VoltageV     float64 `json:"voltage_v"`
			CurrentA     float64 `json:"current_a"`
			TemperatureC float64 `json:"temperature_c"`
			SOCPct       float64 `json:"soc_pct"`
		}
	}
	getJSON(t, token, base+"/v1/batteries?temp_above=-100&limit=50", &list)
	type look struct {
		Thr, Class, Badge, Rules string
	}
	var rows map[string]look
	if err := b.Eval(`Object.fromEntries([...document.querySelectorAll("#range-table tr[data-battery]")].map((r) =>
		[r.dataset.battery, { Thr: r.dataset.thr || "", Class: r.className, Badge: r.querySelector(".thr-badge")?.textContent || "", Rules: r.dataset.rules || "" }]))`, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(list.Batteries) || len(rows) == 0 {
		t.Fatalf("the fleet list shows %d rows, the API lists %d batteries", len(rows), len(list.Batteries))
	}
	seen := map[string]bool{}
	for _, x := range list.Batteries {
		want := worstLevel(thrLevel(rules, "voltage_v", x.VoltageV), thrLevel(rules, "current_a", x.CurrentA),
			thrLevel(rules, "temperature_c", x.TemperatureC), thrLevel(rules, "soc_pct", x.SOCPct))
		got, ok := rows[x.ID]
		if !ok {
			t.Fatalf("the fleet list has no row for %s", x.ID)
		}
		seen[got.Thr] = true
		if got.Thr != want || (want != "") != strings.Contains(got.Class, "thr-"+want) || (want != "") == (got.Badge == "") {
			t.Errorf("fleet list row %s (%g °C, %g %%) looks %+v; the rules %v give %q", x.ID, x.TemperatureC, x.SOCPct, got, rules, want)
		}
	}

	// The tiles: each takes the worst look of the values it shows.
	var now struct {
		Fleet struct {
			Temperature struct{ Min, Max, Mean float64 } `json:"temperature_c"`
			SOC         struct{ Min, Max, Mean float64 } `json:"soc_pct"`
		}
	}
	getJSON(t, token, base+"/v1/fleet/now?stale_after=60s", &now)
	tile := func(id string) string {
		var s string
		if err := b.Eval(`document.getElementById(`+strconv.Quote(id)+`).closest(".card").dataset.thr || ""`, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tm, sc := now.Fleet.Temperature, now.Fleet.SOC
	if got, want := tile("temperature_c-max"), worstLevel(thrLevel(rules, "temperature_c", tm.Min), thrLevel(rules, "temperature_c", tm.Max), thrLevel(rules, "temperature_c", tm.Mean)); got != want {
		t.Errorf("the fleet temperature tile (%+v) looks %q, the rules give %q", tm, got, want)
	}
	if got, want := tile("fleet-soc-mean"), worstLevel(thrLevel(rules, "soc_pct", sc.Min), thrLevel(rules, "soc_pct", sc.Max), thrLevel(rules, "soc_pct", sc.Mean)); got != want {
		t.Errorf("the fleet state-of-charge tile (%+v) looks %q, the rules give %q", sc, got, want)
	}

	// The Hot list as it opens: from the lowest temperature rule's fire
	// value, every row past a rule.
	chromium(t, b, base+"/#/", "", 1280, 1100)
	start, rule := math.Inf(1), ""
	for _, r := range rules {
		if r.Metric == "temperature_c" && r.Op == ">" && *r.Fire < start {
			start, rule = *r.Fire, r.Name
		}
	}
	var hot struct {
		Value, From string
		Rows        []string
	}
	if err := b.Eval(`({ Value: document.querySelector("#threshold").value, From: document.querySelector("#threshold").dataset.from,
		Rows: [...document.querySelectorAll("#range-table tr[data-battery]")].map((r) => r.dataset.battery + ":" + (r.dataset.thr || "")) })`, &hot); err != nil {
		t.Fatal(err)
	}
	if v, err := strconv.ParseFloat(hot.Value, 64); err != nil || v != start || hot.From != "rule "+rule {
		t.Errorf("the Hot list starts at %q (%s); the lowest temperature rule %s fires at %g", hot.Value, hot.From, rule, start)
	}
	var wantHot []string
	for _, x := range list.Batteries {
		if x.TemperatureC > start {
			wantHot = append(wantHot, x.ID+":"+thrLevel(rules, "temperature_c", x.TemperatureC))
		}
	}
	if strings.Join(hot.Rows, ",") != strings.Join(wantHot, ",") || len(wantHot) == 0 {
		t.Errorf("the Hot list shows %v, want %v", hot.Rows, wantHot)
	}
	return seen
}

// checkBatteryThresholds opens a battery's page: each metric tile looks
// as the rules give its latest value, and each chart draws exactly one
// line per threshold rule on its metric, at the fire value by the chart's
// own scale, labelled with the rule, value and unit.
func checkBatteryThresholds(t *testing.T, b *headless.Browser, token, base, id string, rules []apiRule, shot string) {
	t.Helper()
	chromium(t, b, base+"/#/battery/"+id, shot, 1280, 1100)
	var latest struct{ Latest map[string]float64 }
	getJSON(t, token, base+"/v1/batteries/"+id, &latest)
	units := map[string]string{"temperature_c": "°C", "soc_pct": "%", "voltage_v": "V", "current_a": "A"}
	for metric, unit := range units {
		var tile struct{ Thr, Badge string }
		if err := b.Eval(`(() => { const c = document.getElementById("latest-`+metric+`").closest(".card");
			return { Thr: c.dataset.thr || "", Badge: c.querySelector(".thr-badge")?.textContent || "" }; })()`, &tile); err != nil {
			t.Fatal(err)
		}
		if want := thrLevel(rules, metric, latest.Latest[metric]); tile.Thr != want || (want != "") == (tile.Badge == "") {
			t.Errorf("%s: the %s tile (%g) looks %+v; the rules give %q", id, metric, latest.Latest[metric], tile, want)
		}

		type line struct {
			Value      float64
			Label, Sev string
			At, Tol    float64
			Top, H     float64
		}
		var lines map[string]line
		if err := b.Eval(`(() => { const el = document.getElementById("chart-`+metric+`"), c = el.uplot, out = {};
			el.querySelectorAll(".thr-line").forEach((l) => { const top = parseFloat(l.style.top);
				out[l.dataset.rule] = { Value: +l.dataset.value, Label: l.textContent, Sev: l.className, At: c.posToVal(top, "y"),
					Tol: Math.abs(c.posToVal(top + 1, "y") - c.posToVal(top, "y")), Top: top, H: c.over.clientHeight }; });
			return out; })()`, &lines); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, r := range rules {
			if r.Metric != metric {
				continue
			}
			want++
			l, ok := lines[r.Name]
			label := r.Name + " " + r.Op + " " + strconv.FormatFloat(*r.Fire, 'f', -1, 64) + " " + unit
			switch {
			case !ok:
				t.Errorf("%s: the %s chart has no line for rule %s", id, metric, r.Name)
			case l.Value != *r.Fire || l.Label != label || !strings.Contains(l.Sev, "thr-"+r.Severity):
				t.Errorf("%s: the %s chart's line for %s is %+v; the API's rule fires at %g (%s), want label %q", id, metric, r.Name, l, *r.Fire, r.Severity, label)
			case math.Abs(l.At-*r.Fire) > l.Tol || l.Top < 0 || l.Top > l.H:
				t.Errorf("%s: the %s chart draws %s at pixel %g of %g, which its scale reads as %g; the rule fires at %g", id, metric, r.Name, l.Top, l.H, l.At, *r.Fire)
			}
		}
		if len(lines) != want {
			t.Errorf("%s: the %s chart draws %d threshold lines %v; the API has %d rules on it", id, metric, len(lines), lines, want)
		}
	}
}
