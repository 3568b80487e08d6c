package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
)

// alertRulesFile writes a rules file: the defaults with ingest_stale
// after d, so a test sees the fleet go silent within seconds.
func alertRulesFile(t *testing.T, d time.Duration) string {
	t.Helper()
	rules := alerts.Defaults()
	for i := range rules {
		if rules[i].Check == "ingest_stale" {
			rules[i].For = alerts.Duration(d)
		}
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for _, r := range rules {
		b.WriteString("  - {name: " + r.Name + ", kind: " + string(r.Kind) + ", severity: " + r.Severity)
		switch r.Kind {
		case alerts.KindThreshold:
			b.WriteString(", metric: " + r.Metric + `, op: "` + r.Op + `", fire: ` + jsonNum(r.Fire) + ", clear: " + jsonNum(r.Clear) + ", for: " + time.Duration(r.For).String())
		case alerts.KindSilent, alerts.KindRoomWaste:
			b.WriteString(", after: " + time.Duration(r.After).String())
		case alerts.KindFleetShare:
			b.WriteString(", below: " + jsonNum(r.Below) + ", for: " + time.Duration(r.For).String())
		case alerts.KindPipeline:
			b.WriteString(", check: " + r.Check)
			if r.Check == "speed_lag" || r.Check == "dlq_rate" {
				b.WriteString(", above: " + jsonNum(r.Above))
			}
			if r.For > 0 {
				b.WriteString(", for: " + time.Duration(r.For).String())
			}
		}
		b.WriteString("}\n")
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alerts.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

type apiCaller struct {
	t    *testing.T
	base string
}

func (c apiCaller) do(token, method, path, body string, out any) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tokenClient(token, 30*time.Second).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

type alertsPage struct {
	Alerts      []serveAlert `json:"alerts"`
	Transitions []serveAlert `json:"transitions"`
	NextCursor  uint64       `json:"next_cursor"`
	Complete    bool         `json:"complete"`
	Ingest      struct {
		Stale bool `json:"stale"`
	} `json:"ingest"`
}

type serveAlert struct {
	ID       string `json:"id"`
	Rule     string `json:"rule"`
	Subject  string `json:"subject"`
	State    string `json:"state"`
	Silenced bool   `json:"silenced"`
}

func ids(list []serveAlert) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.ID + ":" + a.State
	}
	return out
}

// TestAlerts_APIFiltersHistorySilencesAndIngestOnUp: transitions written
// to gridlake.alerts show in /v1/alerts with filters and in the paged
// history; silences are created by engineers only (a viewer gets 403),
// mark the alerts they match, and are deleted; when the simulator stops,
// the fleet_silent pipeline alert fires and /readyz says ingest is stale.
func TestAlerts_APIFiltersHistorySilencesAndIngestOnUp(t *testing.T) {
	users, tokens := testUsersFile(t)
	u := startUp(t, "--auth-users-file", users, "--jobs-enabled=false", "--simulate-duration", "3s",
		"--alerts-rules-file", alertRulesFile(t, 3*time.Second), "--notify-pipeline-every", "200ms", "--notify-silence-poll", "200ms")
	c := apiCaller{t: t, base: "http://" + u.http}
	viewer, engineer := tokens[auth.Viewer], tokens[auth.Engineer]

	w := kafkaio.NewWriter([]string{u.kafka})
	defer w.Close()
	const t0 = 1795434115105
	mk := func(rule string, kind alerts.Kind, subject string, start int64, st alerts.State, sev string) alerts.Transition {
		return alerts.Transition{Rule: rule, Kind: kind, Subject: subject, Start: start, State: st, At: start + 1000, Severity: sev, Summary: rule}
	}
	hot1 := mk("battery_hot", alerts.KindThreshold, "B-00001", t0, alerts.Firing, "critical")
	hot2 := mk("battery_hot", alerts.KindThreshold, "B-00002", t0+10, alerts.Firing, "critical")
	soc := mk("battery_soc_low", alerts.KindThreshold, "B-00003", t0+20, alerts.Firing, "warning")
	room := mk("room_device_wasting", alerts.KindRoomWaste, "R-0101/hvac", t0+30, alerts.Firing, "warning")
	hot1Res := hot1
	hot1Res.State, hot1Res.At = alerts.Resolved, t0+5000
	// The history is in the order this process read the transitions; the
	// topic's partitions are read side by side, so each is written once
	// the one before it is in the history (the copy of hot2 is dropped).
	for i, x := range []alerts.Transition{hot1, hot2, soc, room, hot2, hot1Res} {
		m, err := alertd.Encode(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMessages(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			continue
		}
		testenv.WaitUntil(t, 30*time.Second, "transition "+x.ID()+" in /v1/alerts/history", func() bool {
			var p alertsPage
			c.do(viewer, "GET", "/v1/alerts/history?limit=100", "", &p)
			for _, a := range p.Transitions {
				if a.ID == x.ID() && a.State == string(x.State) {
					return true
				}
			}
			return false
		}, u.stderr)
	}
	var page alertsPage
	testenv.WaitUntil(t, 30*time.Second, "the transitions in /v1/alerts/history", func() bool {
		c.do(viewer, "GET", "/v1/alerts/history?kind=threshold&kind=room_waste", "", &page)
		n := 0
		for _, a := range page.Transitions {
			if a.Rule != "fleet_silent" {
				n++
			}
		}
		return n >= 4
	}, u.stderr)

	// Firing now, with filters.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?kind=threshold", []string{hot2.ID() + ":firing", soc.ID() + ":firing"}},
		{"?rule=battery_hot", []string{hot2.ID() + ":firing"}},
		{"?severity=warning&kind=room_waste", []string{room.ID() + ":firing"}},
		{"?subject=R-0101*", []string{room.ID() + ":firing"}},
		{"?subject=B-00003", []string{soc.ID() + ":firing"}},
	} {
		var p alertsPage
		if code, body := c.do(viewer, "GET", "/v1/alerts"+tc.query, "", &p); code != 200 || !p.Complete || strings.Join(ids(p.Alerts), ",") != strings.Join(tc.want, ",") {
			t.Errorf("GET /v1/alerts%s: %d %v, want %v (%s)", tc.query, code, ids(p.Alerts), tc.want, body)
		}
	}
	// History: newest first, paged, de-duplicated.
	var p1, p2 alertsPage
	c.do(viewer, "GET", "/v1/alerts/history?kind=threshold&limit=2", "", &p1)
	if got := ids(p1.Transitions); strings.Join(got, ",") != hot1Res.ID()+":resolved,"+soc.ID()+":firing" || p1.NextCursor == 0 {
		t.Errorf("history page 1: %v next %d", got, p1.NextCursor)
	}
	c.do(viewer, "GET", "/v1/alerts/history?kind=threshold&limit=2&cursor="+jsonNum(float64(p1.NextCursor)), "", &p2)
	if got := ids(p2.Transitions); strings.Join(got, ",") != hot2.ID()+":firing,"+hot1.ID()+":firing" || p2.NextCursor != 0 {
		t.Errorf("history page 2: %v next %d", got, p2.NextCursor)
	}
	var pr alertsPage
	c.do(viewer, "GET", "/v1/alerts/history?rule=battery_hot&from="+jsonNum(t0+2000), "", &pr)
	if got := ids(pr.Transitions); strings.Join(got, ",") != hot1Res.ID()+":resolved" {
		t.Errorf("history from a time: %v", got)
	}
	for _, bad := range []string{"/v1/alerts?kind=loud", "/v1/alerts?severity=x", "/v1/alerts?rule=Bad-Rule", "/v1/alerts?from=1",
		"/v1/alerts/history?limit=0", "/v1/alerts/history?cursor=x", "/v1/alerts/history?from=5&to=4", "/v1/alerts?subject=a%00b"} {
		if code, body := c.do(viewer, "GET", bad, "", nil); code != 400 || !strings.Contains(body, "error") {
			t.Errorf("GET %s: %d %s, want 400", bad, code, body)
		}
	}

	// Silences: engineers create and delete them; viewers may only look.
	body := `{"matchers":[{"field":"rule","value":"battery_soc"," prefix":true}],"duration":"1h","comment":"replacing packs"}`
	if code, _ := c.do(engineer, "POST", "/v1/alerts/silences", body, nil); code != 400 {
		t.Errorf("a silence with an unknown field: %d, want 400", code)
	}
	body = `{"matchers":[{"field":"rule","value":"battery_soc","prefix":true}],"duration":"1h","comment":"replacing packs"}`
	if code, resp := c.do(viewer, "POST", "/v1/alerts/silences", body, nil); code != http.StatusForbidden {
		t.Errorf("a viewer's silence: %d %s, want 403", code, resp)
	}
	var created struct{ Silence alertd.Silence }
	if code, resp := c.do(engineer, "POST", "/v1/alerts/silences", body, &created); code != http.StatusCreated || created.Silence.CreatedBy != "token:engineer" || created.Silence.ID == "" {
		t.Fatalf("an engineer's silence: %d %s", code, resp)
	}
	var sl struct{ Silences []alertd.Silence }
	if c.do(viewer, "GET", "/v1/alerts/silences", "", &sl); len(sl.Silences) != 1 || sl.Silences[0].ID != created.Silence.ID {
		t.Errorf("silences: %+v", sl)
	}
	var ps alertsPage
	c.do(viewer, "GET", "/v1/alerts?kind=threshold", "", &ps)
	for _, a := range ps.Alerts {
		if a.Silenced != (a.Rule == "battery_soc_low") {
			t.Errorf("%s silenced %v", a.ID, a.Silenced)
		}
	}
	if code, _ := c.do(viewer, "DELETE", "/v1/alerts/silences/"+created.Silence.ID, "", nil); code != http.StatusForbidden {
		t.Errorf("a viewer's delete: %d, want 403", code)
	}
	if code, resp := c.do(engineer, "DELETE", "/v1/alerts/silences/"+created.Silence.ID, "", nil); code != 200 {
		t.Errorf("delete: %d %s", code, resp)
	}
	if code, _ := c.do(engineer, "DELETE", "/v1/alerts/silences/"+created.Silence.ID, "", nil); code != 404 {
		t.Errorf("a second delete: %d, want 404", code)
	}
	if c.do(viewer, "GET", "/v1/alerts/silences", "", &sl); len(sl.Silences) != 0 {
		t.Errorf("silences after delete: %+v", sl)
	}

	// The simulator stopped after 3 s: the whole fleet is silent.
	testenv.WaitUntil(t, 60*time.Second, "fleet_silent firing", func() bool {
		var p alertsPage
		c.do(viewer, "GET", "/v1/alerts?rule=fleet_silent", "", &p)
		return len(p.Alerts) == 1 && p.Alerts[0].Subject == alertd.SubjectFleet && p.Ingest.Stale
	}, u.stderr)
	code, rz := c.do("", "GET", "/readyz", "", nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(rz, "no record reached the speed layer") {
		t.Errorf("/readyz while the fleet is silent: %d %s", code, rz)
	}
}
