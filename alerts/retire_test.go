package alerts_test

import (
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/schemas"
)

// A reload that removes a rule resolves the alerts firing under it, under
// their own identities; rules kept by name and kind keep theirs firing.
func TestRetired_ResolvesAlertsOfRemovedRules(t *testing.T) {
	rules := []alerts.Rule{
		{Name: "hot", Kind: alerts.KindThreshold, Severity: "critical", Metric: "temperature_c", Op: ">", Fire: 45, Clear: 42},
		{Name: "warm", Kind: alerts.KindThreshold, Severity: "info", Metric: "temperature_c", Op: ">", Fire: 40, Clear: 38},
	}
	if err := alerts.Validate(rules); err != nil {
		t.Fatal(err)
	}
	ev := alerts.NewEvaluator(rules, 1000, 300_000, true)
	ev.SetNext(0)
	for i, ts := range []int64{1000, 2000, 10_000} {
		e := schemas.Event{Kind: schemas.KindBattery, Battery: schemas.Battery{BatteryID: "b", TS: ts, TemperatureC: 50, SOCPct: 50}}
		ev.Observe(int64(i), ts, &e)
	}
	fired := map[string]bool{}
	for _, tr := range ev.Drain(nil) {
		if tr.State == alerts.Firing {
			fired[tr.ID()] = true
		}
	}
	if len(fired) != 2 {
		t.Fatalf("want hot and warm firing, got %v", fired)
	}
	snap := ev.Snapshot()
	wm, _ := ev.Watermark()
	if got := alerts.Retired(rules, rules, snap, wm); len(got) != 0 {
		t.Fatalf("same rules: got %v", got)
	}
	got := alerts.Retired(rules, rules[1:], snap, wm)
	if len(got) != 1 || got[0].Rule != "hot" || got[0].State != alerts.Resolved || !fired[got[0].ID()] || got[0].At != wm {
		t.Fatalf("hot removed: got %+v, want one resolved of %v at %d", got, fired, wm)
	}
	moved := []alerts.Rule{{Name: "hot", Kind: alerts.KindSilent, Severity: "warning", After: alerts.Duration(time.Minute)}, rules[1]}
	if got := alerts.Retired(rules, moved, snap, wm); len(got) != 1 || got[0].Rule != "hot" {
		t.Fatalf("hot now another kind: got %+v", got)
	}
}
