package alertd

import (
	"context"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
)

type fakeProbe struct {
	records int64
	lag     int64
	down    bool
	since   time.Time
}

func (f *fakeProbe) SpeedLag() int64                           { return f.lag }
func (f *fakeProbe) DeadLetters() uint64                       { return 0 }
func (f *fakeProbe) Records() (int64, bool)                    { return f.records, true }
func (f *fakeProbe) Store() (bool, time.Time, string)          { return f.down, f.since, "refused" }
func (f *fakeProbe) Jobs(context.Context) ([]FailedJob, error) { return nil, nil }

// TestPipeline_IngestStaleAndStoreOnTheWallClock: fleet_silent fires once
// no record arrived for its For, with the last arrival as its start;
// resolves when records come; a restarted evaluator takes over a firing
// alert with the same identity instead of starting another; the store
// alert starts when the store stopped answering.
func TestPipeline_IngestStaleAndStoreOnTheWallClock(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rules := alerts.Defaults() // fleet_silent after 1m, store_unreachable after 1m, speed_lag above 100000
	probe := &fakeProbe{records: 10}
	var written []alerts.Transition
	book := NewBook(100, nil)
	newPipeline := func() *Pipeline {
		return &Pipeline{Rules: func() []alerts.Rule { return rules }, Probe: probe, Book: book, Now: func() time.Time { return now },
			Write: func(_ context.Context, ts ...alerts.Transition) error {
				written = append(written, ts...)
				for _, t := range ts {
					book.Apply(t)
				}
				return nil
			}}
	}
	p := newPipeline()
	step := func(d time.Duration) {
		t.Helper()
		now = now.Add(d)
		if err := p.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	step(0)
	last := now
	step(30 * time.Second)
	if len(written) != 0 {
		t.Fatalf("fired before For: %v", written)
	}
	step(31 * time.Second)
	if len(written) != 1 || written[0].Rule != "fleet_silent" || written[0].State != alerts.Firing || written[0].Start != last.UnixMilli() || written[0].Subject != SubjectFleet {
		t.Fatalf("after 61 s of silence: %+v", written)
	}
	if stale, at, _, ok := p.Stale(); !ok || !stale || !at.Equal(last) {
		t.Errorf("Stale: %v %v %v", stale, at, ok)
	}
	// A restart: the new evaluator takes the firing alert over.
	p = newPipeline()
	step(5 * time.Second)
	step(5 * time.Second)
	if len(written) != 1 {
		t.Fatalf("a restarted evaluator wrote %+v", written[1:])
	}
	probe.records = 20 // records again
	step(time.Second)
	if len(written) != 2 || written[1].State != alerts.Resolved || written[1].ID() != written[0].ID() {
		t.Fatalf("after records came: %+v", written)
	}
	// The store stopped answering 90 s ago.
	probe.down, probe.since = true, now.Add(-90*time.Second)
	step(time.Second)
	if len(written) != 3 || written[2].Rule != "store_unreachable" || written[2].Start != probe.since.UnixMilli() {
		t.Fatalf("store down: %+v", written[2:])
	}
}
